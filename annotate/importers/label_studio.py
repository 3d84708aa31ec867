"""Shape 7: a Label Studio JSON export of a pairwise project: a JSON array of tasks, `data`
holding the prompt and the two texts, `annotations[].result[]` with `type: "pairwise"` and
`value.selected` "left" or "right" (left is the first text). Each annotation that is not
cancelled becomes one imported judgment; a task without one is an unlabelled pair."""

from __future__ import annotations

from typing import Any

from .base import (
    Candidate,
    Judgment,
    PairSpec,
    ParsedRow,
    RowInvalid,
    json_type,
    metadata_field,
    optional_text,
    prompt_messages,
    two_candidates,
)

NAME = "label-studio"
SHAPE = (
    '[{"data": {"prompt", "answer1", "answer2"}, "annotations": [{"result": '
    '[{"type": "pairwise", "value": {"selected": "left"}}]}]}] (Label Studio JSON export)'
)
PROMPT_KEYS = ("prompt", "question", "instruction", "input", "text")
TEXT_KEYS = [
    ("answer1", "answer2"),
    ("response1", "response2"),
    ("response_a", "response_b"),
    ("answer_a", "answer_b"),
    ("text1", "text2"),
    ("left", "right"),
]
SELECTED = {"left": "first", "right": "second"}


def matches(row: dict[str, Any]) -> bool:
    return isinstance(row.get("data"), dict) and ("annotations" in row or "id" in row)


def _texts(data: dict[str, Any]) -> tuple[str, str, str]:
    prompt_key = next((k for k in PROMPT_KEYS if k in data), None)
    if prompt_key is None:
        raise RowInvalid(f"data has no prompt (one of: {', '.join(PROMPT_KEYS)})")
    for left, right in TEXT_KEYS:
        if left in data and right in data:
            return prompt_key, left, right
    names = ", ".join(f"{a}/{b}" for a, b in TEXT_KEYS)
    raise RowInvalid(f"data has no pair of texts (one of: {names})")


def _judgments(annotations: Any) -> list[Judgment]:
    if annotations in (None, ""):
        return []
    if not isinstance(annotations, list):
        raise RowInvalid(f"annotations must be a list, not {json_type(annotations)}")
    judgments = []
    for i, annotation in enumerate(annotations, 1):
        if not isinstance(annotation, dict):
            raise RowInvalid(f"annotation {i} must be an object")
        if annotation.get("was_cancelled"):
            continue
        results = annotation.get("result") or []
        if not isinstance(results, list):
            raise RowInvalid(f"annotation {i}: result must be a list")
        pairwise = [r for r in results if isinstance(r, dict) and r.get("type") == "pairwise"]
        if not pairwise:
            continue
        value = pairwise[0].get("value")
        selected = value.get("selected") if isinstance(value, dict) else None
        if selected not in SELECTED:
            raise RowInvalid(f'annotation {i}: value.selected must be "left" or "right"')
        key = str(annotation.get("id", i))
        judgments.append(Judgment(SELECTED[selected], left="first", key=key))
    return judgments


def parse(row: dict[str, Any]) -> ParsedRow:
    data = row["data"]
    prompt_key, left_key, right_key = _texts(data)
    prompt = prompt_messages(data[prompt_key], f"data.{prompt_key}")
    texts = []
    for key in (left_key, right_key):
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            raise RowInvalid(f"data.{key} must be non-empty text")
        texts.append(value)
    first, second = Candidate(texts[0]), Candidate(texts[1])
    two_candidates(first, second, (f"data.{left_key}", f"data.{right_key}"))
    extra = {k: v for k, v in data.items() if k not in (prompt_key, left_key, right_key)}
    if isinstance(row.get("meta"), dict) and row["meta"]:
        extra["meta"] = row["meta"]
    return ParsedRow(
        prompt=prompt,
        pairs=[PairSpec(first, second, _judgments(row.get("annotations")))],
        external_id=optional_text(row, "id"),
        row_id=optional_text(row, "id"),
        metadata=metadata_field({}, extra),
    )
