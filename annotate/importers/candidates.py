"""Shape 2: `{prompt, responses: [...]}`, candidates for one prompt that the tool pairs.

Which pairs: with up to 5 candidates, every pair (at most 10). With more, a ring first
(1-2, 2-3, ..., n-1) so that every candidate is compared twice, then pairs two apart
(1-3, 2-4, ...), three apart, and so on, until there are max(10, n) pairs. The order is the
order of the list, so re-importing makes the same pairs.
"""

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
)

NAME = "candidates"
SHAPE = '{"prompt", "responses": [...]}: candidates for one prompt, paired by the tool'
KNOWN = {"prompt", "responses", "models", "id", "prompt_id", "metadata"}
CAP = 10


def matches(row: dict[str, Any]) -> bool:
    return "responses" in row and "prompt" in row


def pair_indices(n: int) -> list[tuple[int, int]]:
    """The pairs (i, j), i < j, of n candidates, by the rule in the module docstring."""
    if n * (n - 1) // 2 <= CAP:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    chosen: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    limit = max(CAP, n)
    for distance in range(1, n // 2 + 1):
        for i in range(n):
            pair = tuple(sorted((i, (i + distance) % n)))
            if pair not in seen:
                seen.add(pair)
                chosen.append(pair)
                if len(chosen) == limit:
                    return chosen
    return chosen


def _candidate(value: Any, i: int, models: list[Any] | None) -> Candidate:
    where = f"responses item {i + 1}"
    model = models[i] if models and i < len(models) and isinstance(models[i], str) else ""
    if isinstance(value, dict):
        text = value.get("text", value.get("content"))
        model = optional_text(value, "model", "model_name") or model
    else:
        text = value
    if not isinstance(text, str):
        raise RowInvalid(f"{where} must be text or an object with text")
    if not text.strip():
        raise RowInvalid(f"{where} is empty")
    return Candidate(text, model)


def response_texts(row: dict[str, Any]) -> list[str]:
    """The text of each item of the row's `responses`, in order, repeats included (what a
    score is given for, one per item); RowInvalid as parse raises it."""
    responses = row.get("responses")
    if not isinstance(responses, list):
        raise RowInvalid("responses must be a list")
    return [_candidate(value, i, None).text for i, value in enumerate(responses)]


def parse(row: dict[str, Any]) -> ParsedRow:
    prompt = prompt_messages(row.get("prompt"))
    responses = row.get("responses")
    if not isinstance(responses, list):
        raise RowInvalid("responses must be a list")
    models = row.get("models") if isinstance(row.get("models"), list) else None
    candidates: list[Candidate] = []
    texts: set[str] = set()
    for i, value in enumerate(responses):
        candidate = _candidate(value, i, models)
        # The same text twice is one Response; comparing it with itself means nothing.
        if candidate.text not in texts:
            texts.add(candidate.text)
            candidates.append(candidate)
    if len(candidates) < 2:
        raise RowInvalid("responses must hold at least two different texts")
    pairs = [PairSpec(candidates[i], candidates[j]) for i, j in pair_indices(len(candidates))]
    return ParsedRow(
        prompt=prompt,
        pairs=pairs,
        external_id=optional_text(row, "prompt_id", "id"),
        row_id=optional_text(row, "id"),
        metadata=metadata_field(row, extra_fields(row, KNOWN)),
    )
