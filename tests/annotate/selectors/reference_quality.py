"""The quality figures as annotate/selectors/quality.py computed them before they were
aggregated in the database (every comparison read into a Python object): kept here, and only
here, as the reference that the new computation is held to."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Sum
from django.db.models.functions import Length
from django.utils import timezone

from annotate.models import Comparison, Membership, Pair, Project
from annotate.quality.agreement import agreement_report, signed_strength
from annotate.quality.labelers import Judgment, PairFacts, labeler_stats, merge_bands
from annotate.quality.leaderboard import leaderboard
from annotate.quality.review import review_queue
from annotate.selectors.aggregation import PairPosteriors, posteriors_fit
from annotate.selectors.dataset import DatasetFilter, comparisons_for_dataset, dataset_posteriors

# The pace behind the ETA: human labels over this recent window.
PACE_WINDOW = timedelta(hours=24)
# Review items listed in the API answer (the size always counts them all).
REVIEW_ITEMS = 50


@dataclass
class _Data:
    """A project's comparisons and pairs as the measures need them."""

    judgments: list[Judgment] = field(default_factory=list)
    facts: dict[int, PairFacts] = field(default_factory=dict)
    models: dict[int, tuple[str, str]] = field(default_factory=dict)
    ambiguous: set[int] = field(default_factory=set)
    adjudicated: set[int] = field(default_factory=set)
    excluded: dict[int, str] = field(default_factory=dict)
    # Counted votes per pair: first judgments of labelers not excluded, and anonymous imports.
    votes: dict[int, list[tuple[str, int | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # The project's aggregation as training fits it (None under majority).
    posteriors: PairPosteriors | None = None


def _load(project: Project) -> _Data:
    data = _Data()
    data.excluded = dict(
        Membership.objects.filter(project=project, excluded=True).values_list(
            "user_id", "excluded_reason"
        )
    )
    pairs = (
        Pair.objects.filter(project=project)
        .annotate(len_a=Length("response_a__text"), len_b=Length("response_b__text"))
        .values_list(
            "id",
            "gold",
            "model_p_a",
            "ambiguous",
            "len_a",
            "len_b",
            "response_a__model_name",
            "response_b__model_name",
        )
    )
    for pair_id, gold, model_p_a, ambiguous, len_a, len_b, model_a, model_b in pairs.iterator(
        chunk_size=2000
    ):
        longer = "a" if len_a > len_b else "b" if len_b > len_a else None
        data.facts[pair_id] = PairFacts(longer=longer, gold=gold, model_p_a=model_p_a)
        data.models[pair_id] = (model_a, model_b)
        if ambiguous:
            data.ambiguous.add(pair_id)

    rows = (
        Comparison.objects.filter(project=project)
        .order_by("id")
        .values_list(
            "pair_id",
            "labeler_id",
            "source",
            "choice",
            "strength",
            "left",
            "time_spent_ms",
            "created_at",
            "is_repeat",
        )
    )
    for pair_id, labeler, source, choice, strength, left, ms, at, repeat in rows.iterator(
        chunk_size=2000
    ):
        if source == Comparison.Source.ADJUDICATION:
            # A staff decision, not a labeler's vote: it settles the pair (see dataset.py).
            data.adjudicated.add(pair_id)
            continue
        data.judgments.append(
            Judgment(
                pair_id=pair_id,
                labeler=labeler,
                choice=choice,
                left=left,
                seconds=ms / 1000 if ms is not None else None,
                at=at,
                is_repeat=repeat,
            )
        )
        if not repeat and labeler not in data.excluded:
            data.votes[pair_id].append((choice, strength))
    return data


def _progress(project: Project, now: datetime, data: _Data) -> dict[str, Any]:
    """Pairs at full redundancy, the queue, the pace and the time left at that pace."""
    redundancy = project.redundancy
    pairs = Pair.objects.filter(project=project)
    complete = pairs.filter(human_count__gte=redundancy).count()
    waiting = pairs.filter(is_open=True, human_count__lt=redundancy).aggregate(
        n=Count("id"), have=Sum("human_count")
    )
    depth = waiting["n"] or 0
    needed = depth * redundancy - (waiting["have"] or 0)

    since = now - PACE_WINDOW
    recent = [
        j.at
        for j in data.judgments
        if j.labeler is not None and not j.is_repeat and j.at and j.at >= since
    ]
    pace = None
    if recent:
        # Over the hours since the first recent label, at least one: a fresh start is not
        # stretched over a whole idle day, nor a burst of two labels read as a flood.
        hours = max((now - min(recent)).total_seconds() / 3600, 1.0)
        pace = len(recent) / hours
    eta_hours = needed / pace if pace and needed else (0.0 if not needed else None)
    total = project.pair_count
    return {
        "progress": {
            "pairs_total": total,
            "pairs_complete": complete,
            "share": round(complete / total, 4) if total else None,
            "redundancy": redundancy,
        },
        "queue_depth": depth,
        "judgments_needed": needed,
        "pace_per_hour": round(pace, 2) if pace else None,
        "eta_hours": round(eta_hours, 2) if eta_hours is not None else None,
        "eta_at": (now + timedelta(hours=eta_hours)).isoformat() if eta_hours else None,
    }


def _throughput(now: datetime, data: _Data) -> dict[str, Any]:
    """Human labels per hour over the last two days of a young project, else per day over
    the last 30 days."""
    stamps = [j.at for j in data.judgments if j.labeler is not None and j.at is not None]
    if not stamps:
        return {"bucket": "day", "series": []}
    young = now - min(stamps) <= timedelta(days=2)
    if young:
        size = timedelta(hours=1)
        start = min(stamps).replace(minute=0, second=0, microsecond=0)
    else:
        size = timedelta(days=1)
        start = max(min(stamps), now - timedelta(days=29)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
    buckets = int((now - start) / size) + 1
    counts = Counter(int((t - start) / size) for t in stamps if t >= start)
    return {
        "bucket": "hour" if young else "day",
        "series": [
            {"start": (start + i * size).isoformat(), "count": counts.get(i, 0)}
            for i in range(buckets)
        ],
    }


def _agreement(data: _Data, n_boot: int, seed: int) -> dict[str, Any]:
    choices = [[c for c, _ in votes] for votes in data.votes.values()]
    signed = [
        [v for c, s in votes if (v := signed_strength(c, s)) is not None]
        for votes in data.votes.values()
    ]
    return agreement_report(choices, signed, n_boot=n_boot, seed=seed)


def _review(data: _Data, bands: dict[str, float]) -> list[dict[str, Any]]:
    posteriors = data.posteriors
    open_votes = (
        (
            pair_id,
            Counter(c for c, _ in votes),
            data.facts[pair_id].model_p_a,
            posteriors.get(pair_id) if posteriors is not None else None,
        )
        for pair_id, votes in data.votes.items()
        if pair_id not in data.ambiguous and pair_id not in data.adjudicated
    )
    return review_queue(
        open_votes,
        split_max_agreement=bands["review_split_max_agreement"],
        model_p_min=bands["review_model_p_min"],
        posterior_max=bands["review_posterior_max"],
    )


def _reliability(project: Project, data: _Data) -> PairPosteriors:
    """Every labeler's reliability under the project's aggregation, excluded ones too (staff
    judge them by it); the training fit serves when nobody is excluded."""
    if data.posteriors is not None and not data.excluded:
        return data.posteriors
    qs = comparisons_for_dataset(project, DatasetFilter(include_excluded=True))
    return posteriors_fit(project=project, comparisons=qs)


def _aggregation(fit: PairPosteriors) -> dict[str, Any]:
    return {
        "method": fit.method,
        "model": fit.model_name,
        "votes": fit.votes,
        "seconds": round(fit.seconds, 3),
    }


def _labelers(
    data: _Data, bands: dict[str, float], reliability: dict[int, float]
) -> list[dict[str, Any]]:
    stats = labeler_stats(data.judgments, data.facts, excluded=data.excluded, bands=bands)
    names = dict(get_user_model().objects.filter(id__in=stats).values_list("id", "username"))
    rows = []
    for user_id, row in stats.items():
        rows.append(
            {
                "user_id": user_id,
                "username": names.get(user_id, str(user_id)),
                "excluded": user_id in data.excluded,
                "excluded_reason": data.excluded.get(user_id, ""),
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()},
                "reliability": (round(reliability[user_id], 4) if user_id in reliability else None),
            }
        )
    return sorted(rows, key=lambda r: r["username"])


def _leaderboard(data: _Data, n_boot: int, seed: int) -> dict[str, Any]:
    battles = (
        (*data.models[pair_id], choice)
        for pair_id, votes in data.votes.items()
        for choice, _ in votes
    )
    return leaderboard(battles, n_boot=n_boot, seed=seed)


def reference_quality(
    *, project: Project, n_boot: int = 1000, seed: int = 0, now: datetime | None = None
) -> dict[str, Any]:
    """The figures as the app computed them before they were aggregated in the database."""
    now = now or timezone.now()
    data = _load(project)
    data.posteriors = dataset_posteriors(project)
    fit = _reliability(project, data)
    bands = merge_bands(project.quality_bands)
    review = _review(data, bands)
    return {
        "project": {"slug": project.slug, "name": project.name},
        "generated_at": now.isoformat(),
        **_progress(project, now, data),
        "throughput": _throughput(now, data),
        "agreement": _agreement(data, n_boot, seed),
        "aggregation": _aggregation(fit),
        "labelers": _labelers(data, bands, fit.reliability),
        "bands": bands,
        "leaderboard": _leaderboard(data, n_boot, seed),
        "review_queue": {"size": len(review), "items": review[:REVIEW_ITEMS]},
        "review_all": review,
    }
