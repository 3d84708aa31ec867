"""Quality figures of a project's rankings and ratings: the counted rows read lean (ids and
values, no texts) and handed to annotate.quality.rankings and annotate.quality.ratings.
annotate.selectors.quality puts them in the stored figures under `rankings` and `ratings`.

Counted, as for pairs: first judgments only (swapped repeats measure self-consistency), by a
person (anonymous imports have no labeler to compare), excluded labelers left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model

from annotate.models import Project, Ranking, Rating
from annotate.quality.rankings import (
    LabelerRanking,
    consensus,
    rankings_report,
    reliability_weights,
)
from annotate.quality.ratings import LabelerRating, ratings_report
from annotate.selectors.rankings import project_aspects


def _counted(model, project: Project, excluded: Iterable[int]):
    return (
        model.objects.filter(project=project, is_repeat=False, labeler__isnull=False)
        .exclude(labeler_id__in=list(excluded))
        .order_by("id")
    )


def counted_rankings(*, project: Project, excluded: Iterable[int] = ()) -> list[LabelerRanking]:
    rows = _counted(Ranking, project, excluded).values_list(
        "response_set_id", "labeler_id", "groups", "shown", "response_set__prompt_id"
    )
    return [
        LabelerRanking.of(set_id, labeler, groups, shown, prompt_id)
        for set_id, labeler, groups, shown, prompt_id in rows.iterator(chunk_size=2000)
    ]


def counted_ratings(*, project: Project, excluded: Iterable[int] = ()) -> list[LabelerRating]:
    rows = _counted(Rating, project, excluded).values_list(
        "response_set_id", "response_id", "aspect", "labeler_id", "value"
    )
    return [LabelerRating(*row) for row in rows.iterator(chunk_size=2000)]


def _usernames(rows: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    names = dict(get_user_model().objects.filter(id__in=rows).values_list("id", "username"))
    return sorted(
        (
            {"user_id": user_id, "username": names.get(user_id, str(user_id)), **row}
            for user_id, row in rows.items()
        ),
        key=lambda r: r["username"],
    )


def rankings_quality(
    *, project: Project, excluded: Iterable[int] = (), n_boot: int = 1000, seed: int = 0
) -> dict[str, Any] | None:
    """The ranking figures (annotate.quality.rankings.rankings_report) with the labelers as
    a list of rows with their usernames; None when the project has no counted ranking. The
    consensus is weighted by the reliability model of the project's aggregation setting."""
    rankings = counted_rankings(project=project, excluded=excluded)
    if not rankings:
        return None
    report = rankings_report(rankings, method=project.aggregation, n_boot=n_boot, seed=seed)
    report["labelers"] = _usernames(report["labelers"])
    return report


def ratings_quality(
    *, project: Project, excluded: Iterable[int] = (), n_boot: int = 1000, seed: int = 0
) -> dict[str, Any] | None:
    """The rating figures (annotate.quality.ratings.ratings_report), labelers as rows with
    their usernames; None when the project has no counted rating."""
    ratings = counted_ratings(project=project, excluded=excluded)
    if not ratings:
        return None
    scales = {a.name: (a.min, a.max) for a in project_aspects(project)}
    report = ratings_report(ratings, scales, n_boot=n_boot, seed=seed)
    report["labelers"] = _usernames(report["labelers"])
    return report


def ranking_consensus(*, project: Project, excluded: Iterable[int] = ()) -> dict[int, list]:
    """Each ranked set's Plackett-Luce consensus order across its counted rankings, {set id:
    groups of response ids, best first}, weighted as the figures' consensus is."""
    by_set: dict[int, list[LabelerRanking]] = {}
    for r in counted_rankings(project=project, excluded=excluded):
        if len(r.items) >= 2:
            by_set.setdefault(r.set_id, []).append(r)
    _reliability, weights = reliability_weights(by_set, project.aggregation)
    return consensus(by_set, weights)
