"""Shape 5: OpenAI's preference fine-tuning format, `{input: {messages}, preferred_output,
non_preferred_output}` where each output is a list of assistant messages."""

from __future__ import annotations

from typing import Any

from .base import (
    Candidate,
    Judgment,
    PairSpec,
    ParsedRow,
    RowInvalid,
    extra_fields,
    message_list,
    metadata_field,
    optional_text,
    reply_text,
    two_candidates,
)

NAME = "openai"
SHAPE = (
    '{"input": {"messages"}, "preferred_output", "non_preferred_output"} '
    "(OpenAI preference fine-tuning): a pair with its judgment"
)
KNOWN = {"input", "preferred_output", "non_preferred_output", "id", "metadata"}


def matches(row: dict[str, Any]) -> bool:
    return "input" in row and "preferred_output" in row


def parse(row: dict[str, Any]) -> ParsedRow:
    source = row.get("input")
    if not isinstance(source, dict):
        raise RowInvalid("input must be an object with messages")
    prompt = message_list(source.get("messages"), "input.messages")
    texts = []
    for name in ("preferred_output", "non_preferred_output"):
        # A judged reply may be empty (base.reply_field).
        messages = message_list(row.get(name), name, empty_replies=True)
        texts.append(reply_text(messages, name))
    first, second = Candidate(texts[0]), Candidate(texts[1])
    two_candidates(first, second, ("preferred_output", "non_preferred_output"))
    # Tools and other request settings are kept with the prompt, not dropped.
    extra = extra_fields(row, KNOWN)
    rest = {k: v for k, v in source.items() if k != "messages"}
    if rest:
        extra["input"] = rest
    return ParsedRow(
        prompt=prompt,
        pairs=[PairSpec(first, second, [Judgment("first")])],
        external_id=optional_text(row, "id"),
        row_id=optional_text(row, "id"),
        metadata=metadata_field(row, extra),
    )
