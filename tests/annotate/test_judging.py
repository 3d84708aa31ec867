"""The judging core (annotate/judging), plain and exact: the rubric and its placeholders, the
strict verdict line, the B/A reading in the pair's terms, P(response 1) from OpenAI-shaped
logprobs, and the one judgment two readings make."""

from __future__ import annotations

import math

import httpx2 as httpx
import pytest

from annotate.generation.client import Endpoint, EndpointError, _parse, request_body
from annotate.judging.rubric import (
    RubricInvalid,
    allowed_verdicts,
    default_rubric,
    judge_messages,
    prompt_text,
    rubric_check,
)
from annotate.judging.verdict import (
    Judgment,
    VerdictUnparsable,
    in_pair_terms,
    p_a_of,
    p_first,
    readings_combine,
    verdict_parse,
)

ALL = ("1", "2", "tie", "both bad")


@pytest.mark.parametrize(
    ("reply", "shown", "rationale"),
    [
        ("Response 1 answers the question.\nVerdict: 1", "1", "Response 1 answers the question."),
        ("Both miss it.\n\n**Verdict:** Both Bad.\n", "both bad", "Both miss it."),
        ("verdict : 2", "2", ""),
        ("Same.\n`Verdict: tie`", "tie", "Same."),
        ("## Verdict: both_bad", "both bad", ""),
    ],
)
def test_the_last_line_is_the_verdict(reply, shown, rationale):
    verdict = verdict_parse(reply, ALL)
    assert (verdict.shown, verdict.rationale) == (shown, rationale)


@pytest.mark.parametrize(
    ("reply", "allowed", "why"),
    [
        ("", ALL, "the reply is empty"),
        ("Verdict: 1\nI hope this helps.", ALL, "its last line is not a verdict line"),
        ("Verdict: 1 because it is shorter", ALL, "its last line is not a verdict line"),
        ("w3 w4 good", ALL, "'w3 w4 good'"),
        ("Verdict: A", ALL, "not a verdict line"),
        ("Verdict: tie", ("1", "2"), "'Verdict: tie' is not a choice of this project"),
    ],
)
def test_anything_else_is_unparsable_never_guessed(reply, allowed, why):
    with pytest.raises(VerdictUnparsable, match=why):
        verdict_parse(reply, allowed)


def test_a_reading_in_b_a_order_is_turned_into_the_pairs_terms():
    assert [in_pair_terms(v, "ab") for v in ALL] == ["a", "b", "tie", "both_bad"]
    assert [in_pair_terms(v, "ba") for v in ALL] == ["b", "a", "tie", "both_bad"]
    assert p_a_of(0.8, "ab") == 0.8 and math.isclose(p_a_of(0.8, "ba"), 0.2)
    assert p_a_of(None, "ba") is None


def _token(token: str, p: float, top: dict[str, float]) -> dict:
    """One token of OpenAI's choices[0].logprobs.content."""
    return {
        "token": token,
        "logprob": math.log(p),
        "bytes": list(token.encode()),
        "top_logprobs": [{"token": t, "logprob": math.log(q)} for t, q in top.items()],
    }


def test_p_of_response_1_comes_from_the_verdict_tokens_logprobs():
    content = [
        _token("Ver", 0.9, {"Ver": 0.9}),
        _token("dict", 1.0, {"dict": 1.0}),
        _token(":", 1.0, {":": 1.0}),
        _token(" 1", 0.6, {" 1": 0.6, " 2": 0.3, " tie": 0.1}),
        _token(".", 1.0, {".": 1.0}),
    ]
    # Normalised over "1" and "2" only (RLAIF): 0.6 / 0.9.
    assert math.isclose(p_first(content, "1"), 2 / 3)
    # Spellings of one choice add up; the chosen token counts even when not in its own list.
    content[3] = _token("1", 0.5, {" 1": 0.2, "2": 0.1, " 2": 0.1})
    assert math.isclose(p_first(content, "1"), 0.7 / 0.9)
    # "both bad" is found by its first token; the 1/2 split stays informative.
    tail = [_token(" both", 0.7, {" both": 0.7, " 1": 0.1, " 2": 0.2}), _token(" bad", 1, {})]
    assert math.isclose(p_first(content[:3] + tail, "both bad"), 1 / 3)


def test_without_usable_logprobs_p_comes_from_the_verdicts():
    assert p_first(None, "1") is None and p_first([], "1") is None
    # The last verdict-like token is not the verdict read: a tokenizer that merged it.
    assert p_first([_token(" 2", 0.5, {" 2": 0.5})], "1") is None
    assert p_first([_token("Verdict:1", 1.0, {})], "1") is None


@pytest.mark.parametrize(
    ("readings", "judgment"),
    [
        # Both orders pick the same response: sure.
        ([("a", None), ("a", None)], Judgment("a", 1.0)),
        ([("both_bad", None), ("both_bad", None)], Judgment("both_bad", 1.0)),
        # "1" in both orders: position bias, no preference: a tie at 0.5.
        ([("a", None), ("b", None)], Judgment("tie", 0.5)),
        # One order unparsable: the other alone.
        ([("b", None)], Judgment("b", 1.0)),
        # A side against a tie: the side, unsure.
        ([("a", None), ("tie", None)], Judgment("a", 0.5)),
        # Logprobs: the mean P(A), RLAIF's position-debiased soft label.
        ([("a", 0.8), ("b", 0.3)], Judgment("a", 0.55)),
        ([("a", 0.6), ("b", 0.2)], Judgment("b", 0.6)),
        ([], None),
    ],
)
def test_two_readings_make_one_judgment(readings, judgment):
    assert readings_combine(readings) == judgment


def test_a_custom_rubric_must_place_the_prompt_and_both_responses():
    rubric_check("")
    rubric_check("Q: {prompt}\n1: {response_1}\n2: {response_2}")
    with pytest.raises(RubricInvalid, match=r"it lacks \{response_2\}$"):
        rubric_check("Q: {prompt}\n1: {response_1}")
    with pytest.raises(RubricInvalid, match=r"lacks \{prompt\}, \{response_1\}, \{response_2\}"):
        rubric_check("Which is better?")


def test_the_messages_hold_the_rubric_with_the_texts_and_the_format():
    allowed = allowed_verdicts(allow_tie=False, allow_both_bad=True)
    assert allowed == ("1", "2", "both bad")
    rubric = default_rubric(instructions="Prefer *honest* answers.", allowed=allowed)
    assert "Prefer *honest* answers." in rubric
    system, user = judge_messages(
        rubric=rubric,
        allowed=allowed,
        prompt="What is {x}?",
        # Replaced once: a response quoting a placeholder stays as written.
        response_1="It says {response_2}",
        response_2="Two",
    )
    assert system["role"] == "system" and "`Verdict: both bad`" in system["content"]
    assert "tie" not in system["content"]
    assert user["role"] == "user"
    assert "[Prompt]\nWhat is {x}?\n\n[Response 1]\nIt says {response_2}\n\n" in user["content"]
    assert "[Response 2]\nTwo\n\n" in user["content"]


def test_a_conversation_is_read_as_role_lines():
    assert prompt_text([{"role": "user", "content": "hi"}]) == "hi"
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"},
    ]
    assert prompt_text(chat) == "system: Be brief.\n\nuser: hi\n\nassistant: hello\n\nuser: bye"


def test_the_client_asks_for_logprobs_and_names_a_judge_in_its_errors():
    judge = Endpoint(name="j", base_url="http://h/v1", model="m", kind="judge", top_logprobs=5)
    assert request_body(judge, [], seed=None)["top_logprobs"] == 5
    assert "logprobs" not in request_body(Endpoint(name="g", base_url="u", model="m"), [], seed=1)
    assert str(EndpointError("j", "down", kind="judge")) == "judge 'j': down"
    assert str(EndpointError("g", "down")) == "generator 'g': down"
    content = [_token(" 1", 0.9, {" 1": 0.9})]
    answer = httpx.Response(
        200,
        json={
            "model": "m",
            "choices": [{"message": {"content": "Verdict: 1"}, "logprobs": {"content": content}}],
        },
    )
    assert _parse(judge, answer, 1.0).logprobs == content
