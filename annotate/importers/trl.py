"""Shape 3: TRL's preference format. `{prompt, chosen, rejected}` with text or with lists of
`{role, content}` messages, and the implicit-prompt `{chosen, rejected}` where both are whole
conversations (the shared beginning is the prompt)."""

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
    prompt_messages,
    reply_field,
    reply_text,
    split_conversations,
    two_candidates,
)

NAME = "trl"
SHAPE = (
    '{"prompt", "chosen", "rejected"} (TRL; text or {role, content} message lists, '
    "or {chosen, rejected} as whole message lists): a pair with its judgment"
)
KNOWN = {"prompt", "chosen", "rejected", "id", "prompt_id", "metadata"}


def matches(row: dict[str, Any]) -> bool:
    if "chosen" not in row or "rejected" not in row:
        return False
    return "prompt" in row or isinstance(row["chosen"], list)


def _reply(row: dict[str, Any], name: str) -> str:
    # A judged reply may be empty (base.reply_field): "" as text, or an empty assistant message.
    value = row.get(name)
    if isinstance(value, list):
        return reply_text(message_list(value, name, empty_replies=True), name)
    return reply_field(row, name)


def _whole_conversations(row: dict[str, Any]) -> bool:
    """chosen and rejected hold the whole conversation, prompt included (the implicit-prompt
    variant, and UltraFeedback-style rows that also carry the prompt as text)."""
    if row.get("prompt") is None:
        return True
    chosen, rejected = row.get("chosen"), row.get("rejected")
    first = chosen[0] if isinstance(chosen, list) and chosen else None
    return (
        isinstance(rejected, list) and isinstance(first, dict) and first.get("role") != "assistant"
    )


def parse(row: dict[str, Any]) -> ParsedRow:
    if _whole_conversations(row):
        chosen, rejected = row.get("chosen"), row.get("rejected")
        if not isinstance(chosen, list) or not isinstance(rejected, list):
            raise RowInvalid("without a prompt, chosen and rejected must both be message lists")
        prompt, chosen_text, rejected_text = split_conversations(
            message_list(chosen, "chosen", empty_replies=True),
            message_list(rejected, "rejected", empty_replies=True),
            ("chosen", "rejected"),
        )
    else:
        prompt = prompt_messages(row.get("prompt"))
        chosen_text, rejected_text = _reply(row, "chosen"), _reply(row, "rejected")
    first, second = Candidate(chosen_text), Candidate(rejected_text)
    two_candidates(first, second, ("chosen", "rejected"))
    return ParsedRow(
        prompt=prompt,
        pairs=[PairSpec(first, second, [Judgment("first")])],
        external_id=optional_text(row, "prompt_id", "id"),
        row_id=optional_text(row, "id"),
        metadata=metadata_field(row, extra_fields(row, KNOWN)),
    )
