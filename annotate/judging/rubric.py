"""The judge's prompt: a system message that fixes the answer's format, and the rubric (the
project's own, or one built from its instructions) with the prompt and the two responses in
place of {prompt}, {response_1} and {response_2}. Nothing else of the pair reaches it: no
gold answer, no labeler's vote, no model reward."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

PLACEHOLDERS = ("{prompt}", "{response_1}", "{response_2}")
# One pass over the rubric: a response that itself contains "{response_2}" stays as written.
_PLACEHOLDER = re.compile(r"\{(prompt|response_1|response_2)\}")

# The verdicts a reply may end with, in the reply's terms ("1" is whichever response was
# shown first), and what each means.
SHOWN_MEANING = {
    "1": "response 1 is better",
    "2": "response 2 is better",
    "tie": "they are equally good",
    "both bad": "neither is acceptable",
}


class RubricInvalid(ValueError):
    """A rubric that cannot be used; the message says what it lacks."""


def allowed_verdicts(*, allow_tie: bool, allow_both_bad: bool) -> tuple[str, ...]:
    """The verdicts the project's labelers may give, in the reply's terms."""
    return (
        "1",
        "2",
        *(("tie",) if allow_tie else ()),
        *(("both bad",) if allow_both_bad else ()),
    )


def rubric_check(rubric: str) -> None:
    """A custom rubric must place the prompt and both responses; blank means the default."""
    if not rubric.strip():
        return
    missing = [p for p in PLACEHOLDERS if p not in rubric]
    if missing:
        raise RubricInvalid(
            "the rubric must contain {prompt}, {response_1} and {response_2}; it lacks "
            + ", ".join(missing)
        )


def default_rubric(*, instructions: str, allowed: Sequence[str]) -> str:
    """The rubric of a judge that has none: the project's instructions to its labelers, the
    prompt and the two responses, and the question."""
    guidance = (
        f"The labelers of this project follow these instructions:\n\n{instructions.strip()}\n\n"
        if instructions.strip()
        else ""
    )
    return (
        "Compare two responses to the same prompt, as a careful human labeler would.\n\n"
        f"{guidance}"
        "[Prompt]\n{prompt}\n\n"
        "[Response 1]\n{response_1}\n\n"
        "[Response 2]\n{response_2}\n\n"
        "Which response is better? Judge what they say, not their order or their length. "
        f"Give a short rationale, then the verdict line: {_verdict_lines(allowed)}."
    )


def format_instructions(allowed: Sequence[str]) -> str:
    """The system message: the reply's format, whatever the rubric says."""
    meanings = "; ".join(f"`Verdict: {v}` if {SHOWN_MEANING[v]}" for v in allowed)
    return (
        "You are a judge comparing two responses. Reply with a short rationale (two or three "
        "sentences), then end with one last line that is exactly one of: "
        f"{meanings}."
    )


def reminder(allowed: Sequence[str], problem: str) -> str:
    """The follow-up to a reply without a readable verdict (asked once)."""
    return (
        f"Your reply could not be read: {problem}. Reply again with a short rationale, then "
        f"a last line that is exactly one of {_verdict_lines(allowed)}."
    )


def prompt_text(messages: Iterable[dict[str, Any]]) -> str:
    """The prompt as the judge reads it: a single user message as it is, a conversation as
    `role: content` lines."""
    messages = list(messages)
    if len(messages) == 1 and messages[0].get("role", "user") == "user":
        return str(messages[0].get("content", ""))
    return "\n\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages)


def judge_messages(
    *, rubric: str, allowed: Sequence[str], prompt: str, response_1: str, response_2: str
) -> list[dict[str, str]]:
    """The chat messages of one reading: the format as the system message, the rubric with
    the texts in place as the user's."""
    values = {"prompt": prompt, "response_1": response_1, "response_2": response_2}
    text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], rubric)
    return [
        {"role": "system", "content": format_instructions(allowed)},
        {"role": "user", "content": text},
    ]


def _verdict_lines(allowed: Sequence[str]) -> str:
    return ", ".join(f"`Verdict: {v}`" for v in allowed)
