"""An independent oracle for annotate/selectors/quality.py: every quality figure recomputed
from its definition, plainly, in Python over every comparison read as a model object (no
aggregate query, no code shared with the selector's database path).

The measures themselves (agreement, labeler rates, the leaderboard, the review rule) are the
plain functions of annotate.quality, called on lists; those are held to krippendorff,
crowd-kit and scipy in tests/annotate/quality/, so this file checks only what the selector
adds: which comparisons count, and how they are counted, bucketed and rounded."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from annotate.models import Comparison, Judge, JudgeVerdict, Membership, Pair, Project
from annotate.quality.agreement import agreement_report, signed_strength
from annotate.quality.judges import JudgeCounts, PeoplesRates, judge_row
from annotate.quality.labelers import (
    Judgment,
    PairFacts,
    labeler_counts,
    labeler_stats,
    merge_bands,
)
from annotate.quality.leaderboard import leaderboard
from annotate.quality.review import majority, review_queue
from annotate.selectors.aggregation import posteriors_fit
from annotate.selectors.dataset import DatasetFilter, comparisons_for_dataset, dataset_posteriors

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
LISTED_REVIEW_ITEMS = 50  # the answer lists this many; its size counts them all


NOT_PEOPLE = (Comparison.Source.ADJUDICATION, Comparison.Source.AI_JUDGE)


def _is_human(c: Comparison) -> bool:
    """A person's own judgment: not an anonymous import, a staff ruling or an AI judge's."""
    return c.labeler_id is not None and c.source not in NOT_PEOPLE


def _counted_votes(comparisons: list[Comparison], excluded: set[int]) -> dict[int, list]:
    """Per pair, in comparison order, the (choice, strength) that count: first judgments of
    people who are not excluded, and anonymous imports; never a staff ruling or an AI judge."""
    votes: dict[int, list] = {}
    for c in comparisons:
        if c.source in NOT_PEOPLE or c.is_repeat:
            continue
        if c.labeler_id in excluded:
            continue
        votes.setdefault(c.pair_id, []).append((c.choice, c.strength))
    return votes


def _settled_by_judges(project: Project, pair: Pair, comparisons: list[Comparison]) -> bool:
    """Judge-first's rule, read off the comparisons: the pair's judges (staff did not exclude
    them) all chose the same response, each sure (P at least 0.5 + the margin), and the
    model, when it has a view, does not lean to the other one."""
    excluded = set(
        Membership.objects.filter(project=project, excluded=True).values_list("user_id", flat=True)
    )
    judged = [
        c
        for c in comparisons
        if c.pair_id == pair.pk
        and c.source == Comparison.Source.AI_JUDGE
        and not c.is_repeat
        and c.labeler_id not in excluded
    ]
    choices = {c.choice for c in judged}
    if not judged or len(choices) != 1 or not choices <= {"a", "b"}:
        return False
    if any((c.p_chosen or 0) < 0.5 + project.judge_first_margin for c in judged):
        return False
    m = pair.model_p_a
    return m is None or m == 0.5 or (m > 0.5) == (choices == {"a"})


def _progress(
    project: Project,
    pairs: list[Pair],
    human: list[Comparison],
    now: datetime,
    comparisons: list[Comparison],
):
    """Complete pairs have `redundancy` human judgments; the queue is the open pairs short of
    it (under judge-first, less those the judges settled), and what they still need; the
    pace is first human judgments of the last 24 hours over the hours since the earliest of
    them (one hour at least)."""
    want = project.redundancy
    complete = [p for p in pairs if p.human_count >= want]
    short = [p for p in pairs if p.is_open and p.human_count < want]
    settled = None
    if project.judge_first:
        settled_pairs = [p for p in short if _settled_by_judges(project, p, comparisons)]
        settled = len(settled_pairs)
        short = [p for p in short if p not in settled_pairs]
    needed = sum(want - p.human_count for p in short)
    recent = [c.created_at for c in human if not c.is_repeat and now - c.created_at <= DAY]
    pace = len(recent) / max((now - min(recent)) / HOUR, 1.0) if recent else None
    if needed == 0:
        eta = 0.0
    elif pace:
        eta = needed / pace
    else:
        eta = None
    return {
        "progress": {
            "pairs_total": project.pair_count,
            "pairs_complete": len(complete),
            "share": round(len(complete) / project.pair_count, 4) if project.pair_count else None,
            "redundancy": want,
        },
        "queue_depth": len(short),
        "judgments_needed": needed,
        "judge_settled": settled,
        "pace_per_hour": None if pace is None else round(pace, 2),
        "eta_hours": None if eta is None else round(eta, 2),
        "eta_at": (now + eta * HOUR).isoformat() if eta else None,
    }


def _floor(t: datetime, unit: timedelta) -> datetime:
    if unit == HOUR:
        return datetime(t.year, t.month, t.day, t.hour, tzinfo=t.tzinfo)
    return datetime(t.year, t.month, t.day, tzinfo=t.tzinfo)


def _throughput(human: list[Comparison], now: datetime) -> dict[str, Any]:
    """Human judgments (repeats too) per hour from the first one when it is at most two days
    old, else per day over the last 30 days; every bucket up to now, empty ones as 0."""
    stamps = [c.created_at for c in human]
    if not stamps:
        return {"bucket": "day", "series": []}
    first = min(stamps)
    unit = HOUR if now - first <= 2 * DAY else DAY
    start = _floor(first if unit == HOUR else max(first, now - 29 * DAY), unit)
    series = []
    edge = start
    while edge <= now:
        n = sum(1 for t in stamps if edge <= t < edge + unit)
        series.append({"start": edge.isoformat(), "count": n})
        edge += unit
    return {"bucket": "hour" if unit == HOUR else "day", "series": series}


def _judgments(comparisons) -> list[Judgment]:
    return [
        Judgment(
            pair_id=c.pair_id,
            labeler=c.labeler_id,
            choice=c.choice,
            left=c.left,
            seconds=None if c.time_spent_ms is None else c.time_spent_ms / 1000,
            at=c.created_at,
            is_repeat=c.is_repeat,
        )
        for c in comparisons
        if c.source not in NOT_PEOPLE
    ]


def _facts(pairs) -> dict[int, PairFacts]:
    facts = {}
    for p in pairs:
        a, b = len(p.response_a.text), len(p.response_b.text)
        facts[p.pk] = PairFacts(
            longer=None if a == b else ("a" if a > b else "b"), gold=p.gold, model_p_a=p.model_p_a
        )
    return facts


def _labelers(comparisons, pairs, excluded, bands, reliability) -> list[dict[str, Any]]:
    """Each labeler's rates (annotate.quality.labelers over their judgments), with their name,
    exclusion and reliability under the project's aggregation, fitted on everyone's votes."""
    stats = labeler_stats(_judgments(comparisons), _facts(pairs), excluded=excluded, bands=bands)
    users = {u.pk: u.username for u in get_user_model().objects.filter(pk__in=list(stats))}
    rows = []
    for user_id, figures in stats.items():
        row = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
        row["user_id"] = user_id
        row["username"] = users.get(user_id, str(user_id))
        row["excluded"] = user_id in excluded
        row["excluded_reason"] = excluded.get(user_id, "")
        row["reliability"] = round(reliability[user_id], 4) if user_id in reliability else None
        rows.append(row)
    rows.sort(key=lambda row: row["username"])
    return rows


def _judges(project, comparisons, pairs, votes, excluded, bands, fit, n_boot, seed):
    """Each AI judge's figures from its comparisons and readings, one by one: agreement with
    the strict majority of the people's counted votes, gold, longer choices, the readings'
    first-shown choices and the pairs whose two readings agree; beside the people's pooled
    counts (excluded people left out)."""
    facts = _facts(pairs)
    people = labeler_counts(_judgments(comparisons), facts, excluded=excluded)
    rates = PeoplesRates.pooled(c for user, c in people.items() if user not in excluded)
    judges = list(Judge.objects.filter(project=project).select_related("user").order_by("name"))
    if project.judges_in_training or not judges:
        reliability = fit.reliability
    else:
        with_judges = DatasetFilter(include_excluded=True, include_ai_judge=True)
        reliability = posteriors_fit(
            project=project, comparisons=comparisons_for_dataset(project, with_judges)
        ).reliability
    rows = []
    for judge in judges:
        c = JudgeCounts()
        for j in comparisons:
            if j.source != Comparison.Source.AI_JUDGE or j.labeler_id != judge.user_id:
                continue
            if j.is_repeat:
                continue
            c.comparisons += 1
            people_says = majority(Counter(choice for choice, _ in votes.get(j.pair_id, [])))
            if people_says is not None:
                c.agree_n += 1
                c.agree += j.choice == people_says
            fact = facts[j.pair_id]
            if fact.gold:
                c.gold_n += 1
                c.gold_right += j.choice == fact.gold
            if j.choice in ("a", "b") and fact.longer:
                c.longer_n += 1
                c.longer_k += j.choice == fact.longer
        readings: dict[int, dict[str, str]] = {}
        for v in JudgeVerdict.objects.filter(judge=judge):
            readings.setdefault(v.pair_id, {})[v.order] = v.choice
            c.unparsable += v.choice == ""
            if v.choice in ("a", "b"):
                c.readings += 1
                c.first_k += v.choice == ("a" if v.order == "ab" else "b")
        for both in readings.values():
            if both.get("ab") and both.get("ba"):
                c.both_orders += 1
                c.orders_agree += both["ab"] == both["ba"]
        row = judge_row(c, rates, bands=bands, n_boot=n_boot, seed=seed)
        rows.append(
            {
                "judge_id": judge.pk,
                "name": judge.name,
                "model": judge.model,
                "user_id": judge.user_id,
                "username": judge.user.username,
                "excluded": judge.user_id in excluded,
                "reliability": (
                    round(reliability[judge.user_id], 4) if judge.user_id in reliability else None
                ),
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


def reference_quality(
    *, project: Project, n_boot: int = 1000, seed: int = 0, now: datetime | None = None
) -> dict[str, Any]:
    """The figures quality_figures gives, plus "review_all": the whole review queue."""
    now = now or timezone.now()
    pairs = list(Pair.objects.filter(project=project).select_related("response_a", "response_b"))
    by_id = {p.pk: p for p in pairs}
    comparisons = list(Comparison.objects.filter(project=project).order_by("pk"))
    human = [c for c in comparisons if _is_human(c)]
    excluded = {
        m.user_id: m.excluded_reason
        for m in Membership.objects.filter(project=project, excluded=True)
    }
    votes = _counted_votes(comparisons, set(excluded))
    bands = merge_bands(project.quality_bands)

    ruled = {c.pair_id for c in comparisons if c.source == Comparison.Source.ADJUDICATION}
    training_fit = dataset_posteriors(project)
    review = review_queue(
        (
            (
                pair_id,
                Counter(choice for choice, _ in pair_votes),
                by_id[pair_id].model_p_a,
                None if training_fit is None else training_fit.get(pair_id),
            )
            for pair_id, pair_votes in votes.items()
            if not by_id[pair_id].ambiguous and pair_id not in ruled
        ),
        split_max_agreement=bands["review_split_max_agreement"],
        model_p_min=bands["review_model_p_min"],
        posterior_max=bands["review_posterior_max"],
    )
    everyone = comparisons_for_dataset(project, DatasetFilter(include_excluded=True))
    fit = posteriors_fit(project=project, comparisons=everyone)
    battles = [
        (by_id[pair_id].response_a.model_name, by_id[pair_id].response_b.model_name, choice)
        for pair_id, pair_votes in votes.items()
        for choice, _ in pair_votes
    ]
    return {
        "project": {"slug": project.slug, "name": project.name},
        "generated_at": now.isoformat(),
        **_progress(project, pairs, human, now, comparisons),
        "throughput": _throughput(human, now),
        "agreement": agreement_report(
            [[choice for choice, _ in v] for v in votes.values()],
            [
                [s for c, st in v if (s := signed_strength(c, st)) is not None]
                for v in votes.values()
            ],
            n_boot=n_boot,
            seed=seed,
        ),
        "aggregation": {
            "method": fit.method,
            "model": fit.model_name,
            "votes": fit.votes,
            "seconds": round(fit.seconds, 3),
        },
        "labelers": _labelers(comparisons, pairs, excluded, bands, fit.reliability),
        "bands": bands,
        "judges": _judges(project, comparisons, pairs, votes, excluded, bands, fit, n_boot, seed),
        "leaderboard": leaderboard(battles, n_boot=n_boot, seed=seed),
        "review_queue": {"size": len(review), "items": review[:LISTED_REVIEW_ITEMS]},
        "review_all": review,
    }
