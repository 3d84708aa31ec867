"""UltraFeedback rows (openbmb/UltraFeedback): `{instruction, completions: [{model, response,
annotations: {aspect: {Rating, Rationale}}, fine-grained_score, overall_score}]}`.

The completions of a row are one set. Each aspect's `Rating` is a rating ("N/A" is no rating);
when every completion has an `overall_score` (the critique's score) the completions are also
ranked by it, equal scores tied; without annotations, `fine-grained_score` ranks them instead.
"""

from __future__ import annotations

from typing import Any

from .base import Candidate, RowInvalid, extra_fields, json_type, optional_text, text_field
from .base import prompt_messages as _prompt
from .sets import SETS, ParsedSet, RankSpec, RateSpec, distinct_candidates, whole_rating

NAME = "ultrafeedback"
KIND = SETS
SHAPE = (
    '{"instruction", "completions": [{"model", "response", "annotations": {aspect: '
    '{"Rating"}}, "overall_score"}]}: UltraFeedback, one set per row'
)
KNOWN = {"instruction", "completions", "models", "id", "prompt_id"}
SCORES = ("overall_score", "fine-grained_score")


def matches(row: dict[str, Any]) -> bool:
    return "instruction" in row and "completions" in row


def _ratings(index: int, completion: dict[str, Any]) -> list[RateSpec]:
    annotations = completion.get("annotations") or {}
    where = f"completion {index + 1}"
    if not isinstance(annotations, dict):
        raise RowInvalid(f"{where} annotations must be an object, not {json_type(annotations)}")
    ratings = []
    for aspect, annotation in annotations.items():
        if not isinstance(annotation, dict) or "Rating" not in annotation:
            raise RowInvalid(f"{where} annotation {aspect!r} has no Rating")
        value = whole_rating(annotation["Rating"], f"{where} {aspect} Rating")
        if value is not None:
            ratings.append(RateSpec(index, aspect, value))
    return ratings


def _ranking(completions: list[dict[str, Any]], rated: bool) -> list[RankSpec]:
    """Completions ranked by their score, best (highest) first, equal scores tied."""
    for name in SCORES:
        if name == "fine-grained_score" and rated:
            return []  # the mean of the ratings just imported, not a judgment of its own
        scores = [c.get(name) for c in completions]
        if all(isinstance(s, int | float) and not isinstance(s, bool) for s in scores):
            order = sorted(set(scores), reverse=True)
            groups = [[i for i, s in enumerate(scores) if s == score] for score in order]
            return [RankSpec(groups, key=name)]
    return []


def parse(row: dict[str, Any]) -> ParsedSet:
    prompt = _prompt(text_field(row, "instruction"), "instruction")
    completions = row.get("completions")
    if not isinstance(completions, list) or not completions:
        raise RowInvalid("completions must be a non-empty list")
    candidates, ratings, extras = [], [], []
    for i, completion in enumerate(completions):
        if not isinstance(completion, dict):
            raise RowInvalid(f"completion {i + 1} must be an object")
        text = text_field(completion, "response")
        candidates.append(Candidate(text, optional_text(completion, "model")))
        ratings += _ratings(i, completion)
        extras.append(extra_fields(completion, {"response", "model"}))
    distinct_candidates(candidates, "completions")
    return ParsedSet(
        prompt=prompt,
        candidates=candidates,
        rankings=_ranking(completions, bool(ratings)),
        ratings=ratings,
        external_id=optional_text(row, "prompt_id", "id"),
        metadata=extra_fields(row, KNOWN),
        row_id=optional_text(row, "id"),
        response_metadata=extras,
    )
