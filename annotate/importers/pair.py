"""Shape 1: `{prompt, response_a, response_b}`, an unlabelled pair (optional `model_a`,
`model_b`, `id`, `metadata`)."""

from __future__ import annotations

from typing import Any

from .base import (
    Candidate,
    PairSpec,
    ParsedRow,
    RowInvalid,
    extra_fields,
    metadata_field,
    optional_text,
    prompt_messages,
    text_field,
    two_candidates,
)

NAME = "pair"
SHAPE = '{"prompt", "response_a", "response_b"}: an unlabelled pair'
KNOWN = {
    "prompt",
    "response_a",
    "response_b",
    "model_a",
    "model_b",
    "id",
    "prompt_id",
    "metadata",
    "gold",
}
GOLD_VALUES = ("a", "b", "tie", "both_bad")


def matches(row: dict[str, Any]) -> bool:
    return "response_a" in row and "response_b" in row


def parse(row: dict[str, Any]) -> ParsedRow:
    prompt = prompt_messages(row.get("prompt"))
    first = Candidate(text_field(row, "response_a"), optional_text(row, "model_a"))
    second = Candidate(text_field(row, "response_b"), optional_text(row, "model_b"))
    two_candidates(first, second, ("response_a", "response_b"))
    gold = optional_text(row, "gold")
    if gold and gold not in GOLD_VALUES:
        raise RowInvalid(f"gold must be one of {', '.join(GOLD_VALUES)} (got {gold!r})")
    return ParsedRow(
        prompt=prompt,
        pairs=[PairSpec(first, second, gold=gold)],
        external_id=optional_text(row, "prompt_id", "id"),
        row_id=optional_text(row, "id"),
        metadata=metadata_field(row, extra_fields(row, KNOWN)),
    )
