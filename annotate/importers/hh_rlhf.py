"""Shape 4: Anthropic HH-RLHF, `{chosen, rejected}` as whole transcripts
("\\n\\nHuman: ...\\n\\nAssistant: ..."): the shared conversation is the prompt and the two
final assistant replies are the pair.

Rows are imported as published: a reply may be empty (a transcript ending in "Assistant: "),
and where the two transcripts part before their last reply (one side holds two assistant turns
in a row) each side keeps its own later turns (base.split_conversations)."""

from __future__ import annotations

from typing import Any

from .base import (
    Candidate,
    Judgment,
    PairSpec,
    ParsedRow,
    extra_fields,
    hh_messages,
    metadata_field,
    optional_text,
    split_conversations,
    text_field,
    two_candidates,
)

NAME = "hh-rlhf"
SHAPE = (
    '{"chosen", "rejected"} as "\\n\\nHuman: ...\\n\\nAssistant: ..." transcripts '
    "(Anthropic HH-RLHF): a pair with its judgment"
)
KNOWN = {"chosen", "rejected", "id", "metadata"}


def matches(row: dict[str, Any]) -> bool:
    return "chosen" in row and "rejected" in row and "prompt" not in row


def parse(row: dict[str, Any]) -> ParsedRow:
    chosen = hh_messages(text_field(row, "chosen"), "chosen")
    rejected = hh_messages(text_field(row, "rejected"), "rejected")
    prompt, chosen_text, rejected_text = split_conversations(
        chosen, rejected, ("chosen", "rejected")
    )
    first, second = Candidate(chosen_text), Candidate(rejected_text)
    two_candidates(first, second, ("chosen", "rejected"))
    return ParsedRow(
        prompt=prompt,
        pairs=[PairSpec(first, second, [Judgment("first")])],
        external_id=optional_text(row, "id"),
        row_id=optional_text(row, "id"),
        metadata=metadata_field(row, extra_fields(row, KNOWN)),
    )
