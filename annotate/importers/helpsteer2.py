"""HelpSteer2 rows (nvidia/HelpSteer2): `{prompt, response, helpfulness, correctness,
coherence, complexity, verbosity}`, one response per row rated 0-4 on each attribute.

Adjacent rows of the same prompt (the dataset lists a prompt's responses one after another)
make one set: the import merges them (annotate/services/imports_sets.py, ADJACENT). Every
column holding a whole number, other than the known ones, is read as an aspect.
"""

from __future__ import annotations

from typing import Any

from .base import Candidate, extra_fields, optional_text, prompt_messages, text_field
from .sets import SETS, ParsedSet, RateSpec, whole_rating

NAME = "helpsteer2"
KIND = SETS
# Rows of one prompt, one after another, are one set.
ADJACENT = True
SHAPE = (
    '{"prompt", "response", "helpfulness", "correctness", "coherence", "complexity", '
    '"verbosity"}: HelpSteer2, one rated response per row'
)
ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
KNOWN = {"prompt", "response", "model", "id", "prompt_id", "metadata"}


def matches(row: dict[str, Any]) -> bool:
    return "prompt" in row and "response" in row and any(a in row for a in ATTRIBUTES)


def _is_rating(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    # A CSV cell is text: a whole number in it is a rating too.
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def parse(row: dict[str, Any]) -> ParsedSet:
    prompt = prompt_messages(text_field(row, "prompt"))
    candidate = Candidate(text_field(row, "response"), optional_text(row, "model"))
    ratings = []
    for name, value in row.items():
        if name in KNOWN or not (name in ATTRIBUTES or _is_rating(value)):
            continue
        rating = whole_rating(value, name)
        if rating is not None:
            ratings.append(RateSpec(0, name, rating))
    aspects = {r.aspect for r in ratings}
    return ParsedSet(
        prompt=prompt,
        candidates=[candidate],
        ratings=ratings,
        external_id=optional_text(row, "prompt_id"),
        metadata=extra_fields(row, KNOWN | aspects),
        row_id=optional_text(row, "id"),
    )
