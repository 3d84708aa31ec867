"""The reward server's request bodies (rewardtrain/serving/inputs.py), checked without a
server: what a valid body gives, and the field each refusal names. test_server.py posts the
same bodies over HTTP and reads the 400s."""

from __future__ import annotations

import json

import pytest

from rewardtrain.serving.inputs import (
    MAX_DEPTH,
    InputError,
    openrlhf_items,
    parse_body,
    reward_items,
)


def refusal(call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(InputError) as caught:
        call(*args, **kwargs)
    return caught.value.field, caught.value.message


def nested(levels: int) -> object:
    """`levels` lists, one inside the other."""
    value: object = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_a_body_is_a_json_object():
    assert parse_body(b'{"items": []}') == {"items": []}
    assert refusal(parse_body, b"[1, 2]") == ("body", "must be a JSON object, got a list")
    assert refusal(parse_body, b"null") == ("body", "must be a JSON object, got null")
    field, message = refusal(parse_body, b'{"items": ')
    assert field == "body" and message.startswith("not valid JSON (")
    field, message = refusal(parse_body, b"\xff\xfe{")
    assert field == "body" and message.startswith("not valid JSON (")


def test_a_body_nests_at_most_max_depth_levels_counting_the_top_object():
    deepest = {"items": nested(MAX_DEPTH - 1)}
    assert parse_body(json.dumps(deepest).encode()) == deepest
    too_deep = json.dumps({"items": nested(MAX_DEPTH)}).encode()
    assert refusal(parse_body, too_deep) == ("items", f"nested deeper than {MAX_DEPTH} levels")
    # Deeper than the JSON parser recurses: refused as a body, not a crash.
    assert refusal(parse_body, b"[" * 100_000) == (
        "body",
        f"nested deeper than {MAX_DEPTH} levels",
    )


def test_reward_items_are_prompts_and_responses_with_messages_kept_to_role_and_content():
    body = {
        "items": [
            {"prompt": "Hi", "response": "Hello"},
            {
                "prompt": [{"role": "user", "content": "2+2?", "name": "ignored"}],
                "response": "4",
            },
        ]
    }
    assert reward_items(body, max_items=2) == (
        ["Hi", [{"role": "user", "content": "2+2?"}]],
        ["Hello", "4"],
    )


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "items", "required"),
        ({"items": {}}, "items", "must be a list, got an object"),
        ({"items": [{}, {}, {}]}, "items", "3 items, at most 2 per request"),
        ({"items": ["x"]}, "items[0]", "must be an object with prompt and response, got a string"),
        ({"items": [{"prompt": "p"}]}, "items[0].response", "required"),
        ({"items": [{"prompt": 1, "response": "r"}]}, "items[0].prompt", "must be a string or"),
        ({"items": [{"prompt": [], "response": "r"}]}, "items[0].prompt", "must be a string or"),
        (
            {"items": [{"prompt": [1], "response": "r"}]},
            "items[0].prompt[0]",
            "must be a {role, content} object, got a number",
        ),
        (
            {"items": [{"prompt": [{"role": "user"}], "response": "r"}]},
            "items[0].prompt[0].content",
            "required",
        ),
        (
            {"items": [{"prompt": "p", "response": "r"}, {"prompt": "p", "response": True}]},
            "items[1].response",
            "must be a string, got a boolean",
        ),
    ],
)
def test_a_refused_reward_body_names_the_field(body, field, message):
    got_field, got_message = refusal(reward_items, body, max_items=2)
    assert got_field == field and got_message.startswith(message)
    assert str(InputError(got_field, got_message)) == f"{got_field}: {got_message}"


def test_openrlhf_queries_that_start_with_their_prompt_are_split_there():
    body = {
        "query": ["Q: hi A: hello", "unrelated text", "anything"],
        "prompts": ["Q: hi A:", "Q: other", ""],
        "labels": ["not used"],
    }
    assert openrlhf_items(body, max_items=3) == (
        ["Q: hi A:", None, None],
        [" hello", "unrelated text", "anything"],
    )
    # Without prompts every query is scored as given.
    assert openrlhf_items({"query": ["a", "b"]}, max_items=2) == ([None, None], ["a", "b"])


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"prompts": []}, "query", "required"),
        ({"query": ["a", 1]}, "query[1]", "must be a string, got a number"),
        ({"query": ["a"], "prompts": "a"}, "prompts", "must be a list of strings, got a string"),
        ({"query": ["a"], "prompts": ["a", "b"]}, "prompts", "2 prompts for 1 queries"),
        ({"query": ["a"], "prompts": [None]}, "prompts[0]", "must be a string, got null"),
        ({"query": ["a", "b", "c"]}, "query", "3 items, at most 2 per request"),
    ],
)
def test_a_refused_openrlhf_body_names_the_field(body, field, message):
    assert refusal(openrlhf_items, body, max_items=2) == (field, message)
