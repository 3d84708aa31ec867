"""Quality figures of a Project: its comparisons read once from the database and handed to the
plain measures of annotate.quality (agreement, labelers, leaderboard, review)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Sum
from django.db.models.functions import Length
from django.shortcuts import get_object_or_404
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


def project_quality(
    *,
    project: Project,
    n_boot: int = 1000,
    seed: int = 0,
    now: datetime | None = None,
    review_details: int = 0,
) -> dict[str, Any]:
    """Every quality figure of a project as JSON-ready data (the API's answer and the
    dashboard's context). With `review_details`, the first that many review items also come
    with their Pair and every judgment under "review_details" (for pages: not JSON).

    Counted votes follow the dataset rule: first judgments only (swapped repeats measure
    self-consistency), excluded labelers left out; adjudications settle a pair instead of
    voting. Bootstrap intervals use `n_boot` resamples with a fixed seed, so a page reload
    shows the same figures.
    """
    now = now or timezone.now()
    data = _load(project)
    data.posteriors = dataset_posteriors(project)
    fit = _reliability(project, data)
    bands = merge_bands(project.quality_bands)
    review = _review(data, bands)
    figures = {
        "project": {"slug": project.slug, "name": project.name},
        "generated_at": now.isoformat(),
        **_progress(project, now, data),
        "throughput": _throughput(now, data),
        "agreement": _agreement(data, n_boot, seed),
        # The model behind labelers[].reliability and the review queue's posteriors.
        "aggregation": _aggregation(fit),
        "labelers": _labelers(data, bands, fit.reliability),
        "bands": bands,
        "leaderboard": _leaderboard(data, n_boot, seed),
        "review_queue": {"size": len(review), "items": review[:REVIEW_ITEMS]},
    }
    if review_details:
        figures["review_details"] = _review_details(review[:review_details], data)
    return figures


def review_page(*, project: Project, limit: int = 20) -> dict[str, Any]:
    """The review queue's size and its first `limit` pairs with their prompt, both responses,
    every judgment (repeats and excluded labelers marked) and the model's view."""
    data = _load(project)
    data.posteriors = dataset_posteriors(project)
    items = _review(data, merge_bands(project.quality_bands))
    return {"size": len(items), "items": _review_details(items[:limit], data)}


def _review_details(items: list[dict[str, Any]], data: _Data) -> list[dict[str, Any]]:
    ids = [item["pair_id"] for item in items]
    pairs = Pair.objects.filter(id__in=ids).select_related("prompt", "response_a", "response_b")
    by_id = {p.id: p for p in pairs}
    judgments = defaultdict(list)
    for c in (
        Comparison.objects.filter(pair_id__in=ids)
        .select_related("labeler")
        .order_by("pair_id", "created_at", "id")
    ):
        judgments[c.pair_id].append(
            {
                "username": c.labeler.username if c.labeler else "(imported)",
                "choice": c.choice,
                "choice_label": c.get_choice_display(),
                "strength": c.strength,
                "left": c.left,
                "source": c.source,
                "is_repeat": c.is_repeat,
                "excluded": c.labeler_id in data.excluded,
                "seconds": c.time_spent_ms / 1000 if c.time_spent_ms is not None else None,
                "created_at": c.created_at,
            }
        )
    return [
        {**item, "pair": by_id[item["pair_id"]], "judgments": judgments[item["pair_id"]]}
        for item in items
        if item["pair_id"] in by_id
    ]


def pair_get_for_staff(*, user: AbstractBaseUser, project: Project, pair_id: int) -> Pair:
    """A pair of the project, for staff only."""
    if not user.is_authenticated or not user.is_staff:
        raise PermissionDenied("Review is for staff.")
    return get_object_or_404(Pair.objects.select_related("project"), pk=pair_id, project=project)


def labeler_detail(
    *, project: Project, user: AbstractBaseUser, recent: int = 40
) -> dict[str, Any] | None:
    """One labeler's figures and flags on a project (the dashboard's row) and their latest
    `recent` judgments, each beside the other labelers' counted votes on the same pair; None
    when they have judged nothing here."""
    data = _load(project)
    rows = _labelers(
        data, merge_bands(project.quality_bands), _reliability(project, data).reliability
    )
    row = next((r for r in rows if r["user_id"] == user.pk), None)
    if row is None:
        return None
    latest = list(
        Comparison.objects.filter(project=project, labeler=user)
        .select_related("pair__prompt", "pair__response_a", "pair__response_b")
        .order_by("-created_at", "-id")[:recent]
    )
    others: dict[int, Counter] = defaultdict(Counter)
    for j in data.judgments:
        if j.labeler != user.pk and not j.is_repeat and j.labeler not in data.excluded:
            others[j.pair_id][j.choice] += 1
    return {
        "row": row,
        "judgments": [
            {
                "comparison": c,
                "others": dict(others.get(c.pair_id, {})),
                "seconds": c.time_spent_ms / 1000 if c.time_spent_ms is not None else None,
            }
            for c in latest
        ],
    }
