"""Quality figures of a Project: its comparisons aggregated in the database
(annotate.selectors.quality_counts: one row per pair or labeler, never one per comparison)
and handed to the plain measures of annotate.quality (agreement, labelers, leaderboard,
review, judges). annotate.services.quality stores them; pages and the API read the stored
figures.

AI judges are measured beside the people, never among them: agreement, the labelers' table,
the leaderboard, progress and pace count people's judgments only; each judge gets its own
row (annotate.quality.judges) against the people's majority. Reliability is the crowd
model's, fitted to the votes training uses, judges among them when they enter training.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Min, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.shortcuts import get_object_or_404
from django.utils import timezone

from annotate.models import Comparison, Judge, Membership, Pair, Project, ReviewItem
from annotate.quality.aggregation import MAJORITY
from annotate.quality.agreement import Ratings, agreement_from_ratings
from annotate.quality.judges import PeoplesRates, judge_row
from annotate.quality.labelers import LabelerCounts, labeler_rows, merge_bands
from annotate.quality.leaderboard import battle_type, leaderboard_of_types
from annotate.quality.review import review_queue
from annotate.selectors import quality_counts
from annotate.selectors.aggregation import PairPosteriors, posteriors_fit
from annotate.selectors.dataset import DatasetFilter, comparisons_for_dataset, dataset_posteriors
from annotate.selectors.judge_first import judge_sure
from annotate.selectors.judges import verdicts_by_pair
from annotate.selectors.quality_rankings import rankings_quality, ratings_quality

# The pace behind the ETA: human labels over this recent window.
PACE_WINDOW = timedelta(hours=24)
# Review items listed in the API answer (the size always counts them all).
REVIEW_ITEMS = 50


def _excluded(project: Project) -> dict[int, str]:
    return dict(
        Membership.objects.filter(project=project, excluded=True).values_list(
            "user_id", "excluded_reason"
        )
    )


def _human_judgments(project: Project):
    """Judgments by a person (staff rulings, AI judges and anonymous imports left out)."""
    return Comparison.objects.filter(project=project, labeler__isnull=False).exclude(
        source__in=[Comparison.Source.ADJUDICATION, Comparison.Source.AI_JUDGE]
    )


def _progress(project: Project, now: datetime) -> dict[str, Any]:
    """Pairs at full redundancy, the queue, the pace and the time left at that pace. Under
    judge-first the pairs the AI judges settled wait for nobody: they leave the queue and the
    judgments needed, and are counted apart."""
    redundancy = project.redundancy
    pairs = Pair.objects.filter(project=project)
    complete = pairs.filter(human_count__gte=redundancy).count()
    waiting = pairs.filter(is_open=True, human_count__lt=redundancy).aggregate(
        n=Count("id"), have=Sum("human_count")
    )
    depth = waiting["n"] or 0
    needed = depth * redundancy - (waiting["have"] or 0)
    settled = None
    sure = judge_sure(project)
    if sure is not None:
        settled, have = quality_counts.judge_settled(project.pk, redundancy, sure)
        depth -= settled
        needed -= settled * redundancy - have

    recent = (
        _human_judgments(project)
        .filter(is_repeat=False, created_at__gte=now - PACE_WINDOW)
        .aggregate(n=Count("id"), first=Min("created_at"))
    )
    pace = None
    if recent["n"]:
        # Over the hours since the first recent label, at least one: a fresh start is not
        # stretched over a whole idle day, nor a burst of two labels read as a flood.
        hours = max((now - recent["first"]).total_seconds() / 3600, 1.0)
        pace = recent["n"] / hours
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
        # Under judge-first: open pairs short of their redundancy that the judges settled.
        "judge_settled": settled,
        "pace_per_hour": round(pace, 2) if pace else None,
        "eta_hours": round(eta_hours, 2) if eta_hours is not None else None,
        "eta_at": (now + timedelta(hours=eta_hours)).isoformat() if eta_hours else None,
    }


def _throughput(project: Project, now: datetime) -> dict[str, Any]:
    """Human labels per hour over the last two days of a young project, else per day over
    the last 30 days (counted per bucket in the database)."""
    judged = _human_judgments(project)
    first = judged.aggregate(first=Min("created_at"))["first"]
    if first is None:
        return {"bucket": "day", "series": []}
    young = now - first <= timedelta(days=2)
    if young:
        size, trunc = timedelta(hours=1), TruncHour("created_at", tzinfo=UTC)
        start = first.replace(minute=0, second=0, microsecond=0)
    else:
        size, trunc = timedelta(days=1), TruncDay("created_at", tzinfo=UTC)
        start = max(first, now - timedelta(days=29)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
    buckets = int((now - start) / size) + 1
    counts = Counter()
    for at, n in (
        judged.filter(created_at__gte=start)
        .annotate(bucket=trunc)
        .values_list("bucket")
        .annotate(n=Count("id"))
        .values_list("bucket", "n")
        .order_by()
    ):
        counts[int((at - start) / size)] += n
    return {
        "bucket": "hour" if young else "day",
        "series": [
            {"start": (start + i * size).isoformat(), "count": counts.get(i, 0)}
            for i in range(buckets)
        ],
    }


def _agreement(votes: quality_counts.PairVotes, n_boot: int, seed: int) -> dict[str, Any]:
    choices = votes.choices
    sizes = choices.sum(1)
    pairable = sizes[sizes >= 2]
    raters = None
    if len(pairable):
        # The most common number of judgments, the larger on a tie.
        values, counts = np.unique(pairable, return_counts=True)
        raters = int(max(zip(counts, values, strict=True))[1])
    return agreement_from_ratings(
        Ratings.of_counts(quality_counts.CHOICES, choices),
        Ratings.of_counts(votes.signed_values, votes.signed),
        Ratings.of_counts(quality_counts.CHOICES, choices[sizes == raters]),
        raters,
        n_boot=n_boot,
        seed=seed,
    )


def _review(
    votes: quality_counts.PairVotes, posteriors: PairPosteriors | None, bands: dict[str, float]
) -> list[dict[str, Any]]:
    posterior = np.full(len(votes.pair_ids), np.nan)
    if posteriors is not None and len(posteriors.pair_ids):
        at = np.clip(np.searchsorted(posteriors.pair_ids, votes.pair_ids), 0, None)
        at = np.minimum(at, len(posteriors.pair_ids) - 1)
        fitted = posteriors.pair_ids[at] == votes.pair_ids
        posterior[fitted] = posteriors.p_a[at[fitted]]
    candidates = ~votes.settled & _may_be_listed(votes, posterior, bands)

    def pairs():
        for i in np.flatnonzero(candidates):
            # The choices voted, in the order of their first vote.
            present = [k for k in np.argsort(votes.first_of[i]) if votes.choices[i, k]]
            counts = {quality_counts.CHOICES[k]: int(votes.choices[i, k]) for k in present}
            model_p_a = None if np.isnan(votes.model_p_a[i]) else float(votes.model_p_a[i])
            p = None if np.isnan(posterior[i]) else float(posterior[i])
            yield int(votes.pair_ids[i]), counts, model_p_a, p

    # The review rule itself decides, pair by pair, for the few candidates.
    return review_queue(
        pairs(),
        split_max_agreement=bands["review_split_max_agreement"],
        model_p_min=bands["review_model_p_min"],
        posterior_max=bands["review_posterior_max"],
    )


def _may_be_listed(
    votes: quality_counts.PairVotes, posterior: np.ndarray, bands: dict[str, float]
) -> np.ndarray:
    """The review rule (annotate.quality.review.review_reasons) over all pairs at once, to
    leave out the pairs it cannot list: split, or a confident model against the human side."""
    counts = votes.choices
    n = counts.sum(1)
    top = counts.max(1)
    voted = n >= 2
    modelled = ~np.isnan(posterior)
    with np.errstate(invalid="ignore", divide="ignore"):
        split = np.where(
            modelled,
            voted & (np.maximum(posterior, 1.0 - posterior) <= bands["review_posterior_max"]),
            voted & (top / np.maximum(n, 1) <= bands["review_split_max_agreement"]),
        )
    unique_top = (counts == top[:, None]).sum(1) == 1
    a, b = quality_counts.CHOICES.index("a"), quality_counts.CHOICES.index("b")
    says_a = np.where(modelled, posterior > 0.5, unique_top & (counts.argmax(1) == a) & (top > 0))
    says_b = np.where(modelled, posterior < 0.5, unique_top & (counts.argmax(1) == b) & (top > 0))
    m = votes.model_p_a
    with np.errstate(invalid="ignore"):
        model = (says_a & (1.0 - m >= bands["review_model_p_min"])) | (
            says_b & (m >= bands["review_model_p_min"])
        )
    return split | model


def _reliability(
    project: Project, posteriors: PairPosteriors | None, excluded: dict[int, str]
) -> PairPosteriors:
    """Every labeler's reliability under the project's aggregation, excluded ones too (staff
    judge them by it); the training fit serves when nobody is excluded. Under majority it is
    counted in the database."""
    if posteriors is not None and not excluded:
        return posteriors
    if posteriors is None:
        reliability, votes, seconds = quality_counts.majority_reliability(
            project.pk, judges=project.judges_in_training
        )
        return PairPosteriors(
            method=project.aggregation, reliability=reliability, votes=votes, seconds=seconds
        )
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
    counts: dict[int, LabelerCounts],
    excluded: dict[int, str],
    bands: dict[str, float],
    reliability: dict,
) -> list[dict[str, Any]]:
    stats = labeler_rows(counts, excluded, bands)
    names = dict(get_user_model().objects.filter(id__in=stats).values_list("id", "username"))
    rows = []
    for user_id, row in stats.items():
        rows.append(
            {
                "user_id": user_id,
                "username": names.get(user_id, str(user_id)),
                "excluded": user_id in excluded,
                "excluded_reason": excluded.get(user_id, ""),
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()},
                "reliability": (round(reliability[user_id], 4) if user_id in reliability else None),
            }
        )
    return sorted(rows, key=lambda r: r["username"])


def _judge_reliability(
    project: Project, fit: PairPosteriors, judge_users: list[int]
) -> dict[int, float]:
    """The judges' reliability: from the crowd model's fit when they enter training (it holds
    them); otherwise from a fit of the same votes with theirs added, for measure only."""
    if not judge_users or project.judges_in_training:
        return fit.reliability
    if project.aggregation == MAJORITY:
        return quality_counts.majority_reliability(project.pk, judges=True)[0]
    qs = comparisons_for_dataset(
        project, DatasetFilter(include_excluded=True, include_ai_judge=True)
    )
    return posteriors_fit(project=project, comparisons=qs).reliability


def _judges(
    project: Project,
    *,
    people: dict[int, LabelerCounts],
    excluded: dict[int, str],
    bands: dict[str, float],
    fit: PairPosteriors,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Each AI judge of the project measured against the people (annotate.quality.judges),
    the people's pooled figures beside them, and how the project counts judges."""
    judges = list(
        Judge.objects.filter(project=project)
        .order_by("name")
        .values_list("id", "name", "model", "user_id", "user__username")
    )
    counts = quality_counts.judge_counts(
        project.pk, excluded, {judge_id: user_id for judge_id, _, _, user_id, _ in judges}
    )
    rates = PeoplesRates.pooled(c for user, c in people.items() if user not in excluded)
    reliability = _judge_reliability(project, fit, [user_id for *_, user_id, _ in judges])
    rows = []
    for judge_id, name, model, user_id, username in judges:
        row = judge_row(counts[user_id], rates, bands=bands, n_boot=n_boot, seed=seed)
        rows.append(
            {
                "judge_id": judge_id,
                "name": name,
                "model": model,
                "user_id": user_id,
                "username": username,
                "excluded": user_id in excluded,
                "reliability": round(reliability[user_id], 4) if user_id in reliability else None,
                **row,
            }
        )
    return {
        "in_training": project.judges_in_training,
        "count_toward_redundancy": project.judges_count_toward_redundancy,
        "judge_first": project.judge_first,
        "humans": rates.as_dict(),
        "rows": rows,
    }


def _leaderboard(
    project: Project, excluded: dict[int, str], n_boot: int, seed: int
) -> dict[str, Any]:
    first: dict[tuple[str, str, float], int] = {}
    n: Counter[tuple[str, str, float]] = Counter()
    for model_a, model_b, choice, count, key in quality_counts.battle_counts(project.pk, excluded):
        battle = battle_type(model_a, model_b, choice)
        if battle is not None:
            n[battle] += count
            first[battle] = min(first.get(battle, key), key)
    # In the order the votes first show each type: the bootstrap draws them in that order.
    types = Counter({battle: n[battle] for battle in sorted(n, key=first.__getitem__)})
    return leaderboard_of_types(types, n_boot=n_boot, seed=seed)


def quality_figures(
    *, project: Project, n_boot: int = 1000, seed: int = 0, now: datetime | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every quality figure of a project as JSON-ready data, and its whole review queue (most
    urgent first): what the background computation stores (annotate.services.quality).

    Counted votes follow the dataset rule: first judgments only (swapped repeats measure
    self-consistency), excluded labelers left out; adjudications settle a pair instead of
    voting. Bootstrap intervals use `n_boot` resamples with a fixed seed, so a recomputation
    of the same data gives the same figures.
    """
    figures, review, _excluded_ids = _compute(project, n_boot=n_boot, seed=seed, now=now)
    return figures, review


def _compute(
    project: Project, *, n_boot: int, seed: int, now: datetime | None
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[int, str]]:
    now = now or timezone.now()
    excluded = _excluded(project)
    votes = quality_counts.pair_votes(project.pk, excluded)
    posteriors = dataset_posteriors(project)
    fit = _reliability(project, posteriors, excluded)
    bands = merge_bands(project.quality_bands)
    review = _review(votes, posteriors, bands)
    people = quality_counts.labeler_counts(project.pk, excluded)
    figures = {
        "project": {"slug": project.slug, "name": project.name},
        "generated_at": now.isoformat(),
        **_progress(project, now),
        "throughput": _throughput(project, now),
        "agreement": _agreement(votes, n_boot, seed),
        # The model behind labelers[].reliability and the review queue's posteriors.
        "aggregation": _aggregation(fit),
        "labelers": _labelers(people, excluded, bands, fit.reliability),
        "bands": bands,
        "judges": _judges(
            project,
            people=people,
            excluded=excluded,
            bands=bands,
            fit=fit,
            n_boot=n_boot,
            seed=seed,
        ),
        "leaderboard": _leaderboard(project, excluded, n_boot, seed),
        # Rankings and ratings (annotate.selectors.quality_rankings); None when none.
        "rankings": rankings_quality(project=project, excluded=excluded, n_boot=n_boot, seed=seed),
        "ratings": ratings_quality(project=project, excluded=excluded, n_boot=n_boot, seed=seed),
        "review_queue": {"size": len(review), "items": review[:REVIEW_ITEMS]},
    }
    return figures, review, excluded


def project_quality(
    *,
    project: Project,
    n_boot: int = 1000,
    seed: int = 0,
    now: datetime | None = None,
    review_details: int = 0,
) -> dict[str, Any]:
    """quality_figures' figures computed now (see there). With `review_details`, the first
    that many review items also come with their Pair and every judgment under
    "review_details" (not JSON)."""
    figures, review, excluded = _compute(project, n_boot=n_boot, seed=seed, now=now)
    if review_details:
        figures["review_details"] = _review_details(review[:review_details], excluded)
    return figures


def review_items(*, project: Project, limit: int = REVIEW_ITEMS) -> dict[str, Any]:
    """The stored review queue (as of the last computation, less the pairs settled since):
    its size and its first `limit` items, read through the (project, rank) index."""
    stored = ReviewItem.objects.filter(project=project)
    items = [
        {
            "pair_id": item.pair_id,
            "reasons": item.reasons,
            "counts": item.counts,
            "majority": item.majority or None,
            "agreement": item.agreement,
            "posterior_p_a": item.posterior_p_a,
            "model_p_a": item.model_p_a,
        }
        for item in stored.order_by("rank")[:limit]
    ]
    return {"size": stored.count(), "items": items}


def review_page(*, project: Project, limit: int = 20) -> dict[str, Any]:
    """The stored review queue's size and its first `limit` pairs with their prompt, both
    responses, every judgment (repeats and excluded labelers marked, read now) and the
    model's view."""
    queue = review_items(project=project, limit=limit)
    excluded = set(
        Membership.objects.filter(project=project, excluded=True).values_list("user_id", flat=True)
    )
    return {"size": queue["size"], "items": _review_details(queue["items"], excluded)}


def _review_details(items: list[dict[str, Any]], excluded: Iterable[int]) -> list[dict[str, Any]]:
    excluded = set(excluded)
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
                "excluded": c.labeler_id in excluded,
                "seconds": c.time_spent_ms / 1000 if c.time_spent_ms is not None else None,
                "created_at": c.created_at,
            }
        )
    verdicts = verdicts_by_pair(pair_ids=ids)  # AI judges' readings, beside the votes
    return [
        {
            **item,
            "pair": by_id[item["pair_id"]],
            "judgments": judgments[item["pair_id"]],
            "verdicts": verdicts.get(item["pair_id"], []),
        }
        for item in items
        if item["pair_id"] in by_id
    ]


def pair_get_for_staff(*, user: AbstractBaseUser, project: Project, pair_id: int) -> Pair:
    """A pair of the project, for staff only."""
    if not user.is_authenticated or not user.is_staff:
        raise PermissionDenied("Review is for staff.")
    return get_object_or_404(Pair.objects.select_related("project"), pk=pair_id, project=project)


def labeler_detail(
    *, project: Project, user: AbstractBaseUser, rows: list[dict[str, Any]], recent: int = 40
) -> dict[str, Any] | None:
    """One labeler's figures and flags on a project (their row among the stored figures'
    `rows`) and their latest `recent` judgments, each beside the other labelers' counted votes
    on the same pair (read now); None when they have no row."""
    row = next((r for r in rows if r["user_id"] == user.pk), None)
    if row is None:
        return None
    latest = list(
        Comparison.objects.filter(project=project, labeler=user)
        .select_related("pair__prompt", "pair__response_a", "pair__response_b")
        .order_by("-created_at", "-id")[:recent]
    )
    excluded = Membership.objects.filter(project=project, excluded=True).values_list(
        "user_id", flat=True
    )
    votes = (
        Comparison.objects.filter(pair_id__in={c.pair_id for c in latest}, is_repeat=False)
        .exclude(source__in=[Comparison.Source.ADJUDICATION, Comparison.Source.AI_JUDGE])
        .exclude(labeler=user)
        .exclude(labeler_id__in=excluded)
        .values_list("pair_id", "choice")
    )
    others: dict[int, Counter] = defaultdict(Counter)
    for pair_id, choice in votes:
        others[pair_id][choice] += 1
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
