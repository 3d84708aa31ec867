"""What the exports of rankings and ratings write from: one set's judgments by one rater (a
labeler, or one imported row), plain data read by annotate/services/exports_sets.py. Each
format module (ultrafeedback, helpsteer2, argilla, oasst, pairs_from) turns these into records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RaterJudgment:
    """One rater's ranking (groups of response ids, best first) and/or ratings of a set."""

    rater: str  # a labeler's pseudonym (or username), or "import:<key>"
    source: str
    groups: list[list[int]] | None = None  # None: no ranking by this rater
    all_bad: bool = False
    ranking_id: int | None = None
    ratings: dict[tuple[int, str], int] = field(default_factory=dict)


@dataclass
class SetBundle:
    """A ResponseSet with its prompt, its responses (id -> (text, model)) and its judgments,
    one per rater, in the order they were made."""

    set_id: int
    prompt: list[dict[str, Any]]
    split: str
    responses: dict[int, tuple[str, str]]
    judgments: list[RaterJudgment] = field(default_factory=list)

    @property
    def response_ids(self) -> list[int]:
        return sorted(self.responses)

    def text(self, response_id: int) -> str:
        return self.responses[response_id][0]

    def model(self, response_id: int) -> str:
        return self.responses[response_id][1]


def consensus(bundle: SetBundle) -> list[int]:
    """The set's response ids by their mean place over its rankings (Borda), best first;
    equal means by id. Unranked responses go last."""
    places: dict[int, list[float]] = {i: [] for i in bundle.response_ids}
    for judgment in bundle.judgments:
        if not judgment.groups:
            continue
        place = 0
        for group in judgment.groups:
            # A tie shares the mean of the places it spans.
            shared = place + (len(group) - 1) / 2
            for response_id in group:
                places[response_id].append(shared)
            place += len(group)
    return sorted(places, key=lambda i: (sum(places[i]) / len(places[i]) if places[i] else 1e9, i))
