"""What the importers of rankings and ratings return for one row: a prompt, the responses of
one set, and the judgments about them (annotate/services/imports_sets.py writes them).

A judgment names responses by their index in `candidates`; the write turns indexes into
Response ids. Checks that need the project (its aspects and their scales) happen at the write,
still per line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import Candidate, RowInvalid, json_type

# Marks an importer whose rows are sets (imports_sets), not pairs.
SETS = "sets"


@dataclass(frozen=True)
class RankSpec:
    """One ranking: groups of candidate indexes, best first, each group a tie. `key` tells
    apart several rankings of one row (one per annotator)."""

    groups: list[list[int]]
    all_bad: bool = False
    key: str = ""


# The judgment keys that say which judgment of a row it is, not who made it: an UltraFeedback
# row's ratings and its score ranking, an Open-Assistant tree's reply ranks, are one rater's.
ROW_JUDGMENT_KEYS = ("overall_score", "fine-grained_score", "rank")


def rater_of(import_key: str) -> str:
    """Who made an imported judgment, from its stored import key (the row's, then the
    judgment's own key): the key less a ROW_JUDGMENT_KEYS ending."""
    for name in ROW_JUDGMENT_KEYS:
        import_key = import_key.removesuffix(f":{name}")
    return import_key


@dataclass(frozen=True)
class RateSpec:
    """One rating: candidate `index` got `value` on `aspect` (the source's name for it)."""

    index: int
    aspect: str
    value: int
    key: str = ""


@dataclass
class ParsedSet:
    """One row: its prompt, the responses of one set and their rankings and ratings."""

    prompt: list[dict[str, str]]
    candidates: list[Candidate]
    rankings: list[RankSpec] = field(default_factory=list)
    ratings: list[RateSpec] = field(default_factory=list)
    external_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    row_id: str = ""
    # Per candidate, what the source says about it beyond its text and model (kept on the
    # Response when the import creates it).
    response_metadata: list[dict[str, Any]] = field(default_factory=list)


def groups_from_ranks(ranks: list[tuple[int, Any]], where: str, *, ties: bool) -> list[list[int]]:
    """(candidate index, rank) -> groups of indexes, lowest rank first. Equal ranks are a tie
    when `ties`, else an error naming the rank that repeats."""
    by_rank: dict[float, list[int]] = {}
    for index, rank in ranks:
        if isinstance(rank, bool) or not isinstance(rank, int | float):
            raise RowInvalid(f"{where}: a rank must be a number, not {json_type(rank)}")
        if rank in by_rank and not ties:
            raise RowInvalid(f"{where}: rank {rank} repeats")
        by_rank.setdefault(rank, []).append(index)
    return [by_rank[rank] for rank in sorted(by_rank)]


def distinct_candidates(candidates: list[Candidate], what: str) -> None:
    """A set holds each response once: two equal texts would be one Response ranked twice."""
    seen: dict[str, int] = {}
    for i, candidate in enumerate(candidates, 1):
        if candidate.text in seen:
            raise RowInvalid(f"{what} {seen[candidate.text]} and {i} are the same text")
        seen[candidate.text] = i


def whole_rating(value: Any, where: str) -> int | None:
    """A rating as a whole number; None for "N/A" (the source's "not applicable"). Text holding
    a whole number ("4", as UltraFeedback writes them) is read as that number."""
    if isinstance(value, str):
        text = value.strip()
        if text.upper() in ("N/A", "NA", ""):
            return None
        try:
            value = float(text)
        except ValueError:
            raise RowInvalid(f"{where} must be a whole number, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RowInvalid(f"{where} must be a whole number, not {json_type(value)}")
    if value != int(value):
        raise RowInvalid(f"{where} must be a whole number, not {value}")
    return int(value)
