"""Comparisons aggregated into one preference row per pair: the rule that training, evaluation
and export all share.

The rule, per pair:
- votes are counted by response (a, b, tie, both_bad); swapped repeats never count, nor do
  labelers that staff excluded (unless asked), nor pairs staff marked ambiguous;
- an AI judge's comparison is a vote like a person's when the project's judges enter
  training (`judges_in_training`, the default): one vote under `majority`, weighed by the
  judge's fitted reliability under a labeler-reliability model;
- a staff adjudication, when present, replaces the votes;
- when both_bad has strictly the most votes, the pair is "both bad": left out of training
  and counted (`DatasetStats.both_bad`);
- otherwise the soft label is p(a) = (votes_ab * q + votes_tie / 2) / (votes_ab + votes_tie),
  where votes_ab = votes_a + votes_b and q is the project's aggregation of the A/B votes:
  the vote share votes_a / votes_ab under `majority` (so p(a) is the plain vote share, ties
  counting half), or the posterior P(A better) of a labeler-reliability model
  (annotate.quality.aggregation) fitted to all the counted A/B votes at once. The chosen
  response is the one with p > 0.5, and p == 0.5 is a tie;
- `agreement` is the share of all votes that went to the most voted outcome.

Rows stream (ordered by pair id) so that a million comparisons never sit in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q

from annotate.models import Choice, Comparison, Membership, Pair, Project
from annotate.quality.aggregation import MAJORITY
from annotate.selectors.aggregation import PairPosteriors, posteriors_fit
from annotate.splits import split_of

CHUNK = 2000


@dataclass
class DatasetFilter:
    """Which comparisons count. The defaults are what training uses."""

    include_human: bool = True
    include_imported: bool = True
    # AI judges' comparisons; None: as the project says (judges_in_training).
    include_ai_judge: bool | None = None
    include_excluded: bool = False
    labeler_ids: list[int] | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class DatasetStats:
    pairs: int = 0
    both_bad: int = 0
    ties: int = 0
    comparisons: int = 0
    # Of `comparisons`, those of AI judges.
    ai_judge_comparisons: int = 0
    by_split: dict[str, int] = field(default_factory=dict)
    # The aggregation that made the rows (the project's setting).
    aggregation: str = MAJORITY


def excluded_labeler_ids(project: Project) -> set[int]:
    return set(
        Membership.objects.filter(project=project, excluded=True).values_list("user_id", flat=True)
    )


def includes_ai_judges(project: Project, flt: DatasetFilter) -> bool:
    """Whether AI judges' comparisons count under the filter."""
    if flt.include_ai_judge is None:
        return project.judges_in_training
    return flt.include_ai_judge


def comparisons_for_dataset(project: Project, flt: DatasetFilter):
    """The comparisons that count under a filter, as a queryset (ordered by pair)."""
    qs = Comparison.objects.filter(project=project, is_repeat=False, pair__ambiguous=False)
    sources = [Comparison.Source.ADJUDICATION]
    if flt.include_human:
        sources.append(Comparison.Source.HUMAN)
    if flt.include_imported:
        sources.append(Comparison.Source.IMPORT)
    if includes_ai_judges(project, flt):
        sources.append(Comparison.Source.AI_JUDGE)
    qs = qs.filter(source__in=sources)
    if not flt.include_excluded:
        excluded = excluded_labeler_ids(project)
        if excluded:
            qs = qs.filter(Q(labeler_id__isnull=True) | ~Q(labeler_id__in=excluded))
    if flt.labeler_ids is not None:
        qs = qs.filter(Q(labeler_id__in=flt.labeler_ids) | Q(source=Comparison.Source.ADJUDICATION))
    if flt.since:
        qs = qs.filter(created_at__gte=flt.since)
    if flt.until:
        qs = qs.filter(created_at__lt=flt.until)
    return qs.order_by("pair_id", "id")


def aggregate_votes(
    votes: list[tuple[str, int | None, str]], model_p_a: float | None = None
) -> dict[str, Any] | None:
    """One pair's outcome from its (choice, strength, source) votes; None when there are none.
    `model_p_a` is the aggregation model's P(A better) from the A/B votes (None: vote share).

    Returns {"outcome": "a"|"b"|"tie"|"both_bad", "p_a", "counts", "agreement",
    "mean_strength", "n", "ai_judge" (of n, AI judges' votes), "adjudicated"}.
    """
    if not votes:
        return None
    adjudicated = [v for v in votes if v[2] == Comparison.Source.ADJUDICATION]
    counted = adjudicated[-1:] if adjudicated else votes
    counts = {c.value: 0 for c in Choice}
    for choice, _strength, _source in counted:
        counts[choice] += 1
    n = len(counted)
    top = max(counts.values())
    agreement = top / n
    if counts["both_bad"] == top and sum(1 for v in counts.values() if v == top) == 1:
        outcome, p_a = "both_bad", None
    else:
        decided = counts["a"] + counts["b"]
        a_share = counts["a"] if model_p_a is None or adjudicated else decided * model_p_a
        p_a = (a_share + counts["tie"] / 2) / (decided + counts["tie"])
        outcome = "a" if p_a > 0.5 else "b" if p_a < 0.5 else "tie"
    strengths = [s for c, s, _ in counted if s is not None and c == outcome]
    return {
        "outcome": outcome,
        "p_a": p_a,
        "counts": counts,
        "agreement": agreement,
        "mean_strength": sum(strengths) / len(strengths) if strengths else None,
        "n": n,
        "ai_judge": sum(1 for v in counted if v[2] == Comparison.Source.AI_JUDGE),
        "adjudicated": bool(adjudicated),
    }


def _pair_texts(pair_ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = Pair.objects.filter(id__in=pair_ids).values(
        "id",
        "prompt_id",
        "prompt__messages",
        "prompt__content_hash",
        "prompt__external_id",
        "response_a_id",
        "response_a__text",
        "response_a__model_name",
        "response_b_id",
        "response_b__text",
        "response_b__model_name",
    )
    return {r["id"]: r for r in rows}


def _row(pair: dict[str, Any], agg: dict[str, Any], split: str) -> dict[str, Any]:
    a_wins = agg["outcome"] in ("a", "tie")
    chosen, rejected = ("a", "b") if a_wins else ("b", "a")
    p_a = agg["p_a"]
    return {
        "pair_id": pair["id"],
        "prompt_id": pair["prompt_id"],
        "prompt": pair["prompt__messages"],
        "prompt_key": pair["prompt__content_hash"],
        "chosen": pair[f"response_{chosen}__text"],
        "rejected": pair[f"response_{rejected}__text"],
        "chosen_id": pair[f"response_{chosen}_id"],
        "rejected_id": pair[f"response_{rejected}_id"],
        "chosen_model": pair[f"response_{chosen}__model_name"],
        "rejected_model": pair[f"response_{rejected}__model_name"],
        "tie": agg["outcome"] == "tie",
        # P(chosen is better) under the aggregation (the vote share under majority).
        "p_chosen": (p_a if a_wins else 1 - p_a) if p_a is not None else None,
        "strength": agg["mean_strength"],
        "votes": agg["counts"],
        "agreement": agg["agreement"],
        "n": agg["n"],
        # Of n, AI judges' votes.
        "ai_judge_n": agg["ai_judge"],
        "adjudicated": agg["adjudicated"],
        "split": split,
    }


def dataset_posteriors(
    project: Project, flt: DatasetFilter | None = None, aggregation: str | None = None
) -> PairPosteriors | None:
    """The aggregation model fitted to the comparisons a filter counts; None under majority
    (the vote share needs no fit)."""
    method = aggregation or project.aggregation
    if method == MAJORITY:
        return None
    qs = comparisons_for_dataset(project, flt or DatasetFilter())
    return posteriors_fit(project=project, comparisons=qs, method=method)


def iter_pair_outcomes(
    project: Project,
    flt: DatasetFilter | None = None,
    posteriors: PairPosteriors | None = None,
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(pair fields, aggregate) for each pair with at least one counted comparison;
    `posteriors` (dataset_posteriors' answer for the same filter) replace the vote share."""
    flt = flt or DatasetFilter()
    votes = comparisons_for_dataset(project, flt).values_list(
        "pair_id", "choice", "strength", "source"
    )
    pending: list[tuple[int, list]] = []
    current_id, current_votes = None, []

    def flush(batch: list[tuple[int, list]]):
        texts = _pair_texts([pid for pid, _ in batch])
        for pid, pair_votes in batch:
            model_p_a = posteriors.get(pid) if posteriors is not None else None
            agg = aggregate_votes(pair_votes, model_p_a)
            if agg is not None:
                yield texts[pid], agg

    for pair_id, choice, strength, source in votes.iterator(chunk_size=CHUNK):
        if pair_id != current_id:
            if current_id is not None:
                pending.append((current_id, current_votes))
                if len(pending) >= CHUNK:
                    yield from flush(pending)
                    pending = []
            current_id, current_votes = pair_id, []
        current_votes.append((choice, strength, source))
    if current_id is not None:
        pending.append((current_id, current_votes))
    if pending:
        yield from flush(pending)


def preference_rows(
    project: Project,
    flt: DatasetFilter | None = None,
    stats: DatasetStats | None = None,
    validation_share: float = 0.1,
    test_share: float = 0.1,
    aggregation: str | None = None,
) -> Iterator[dict[str, Any]]:
    """One preference row per pair (TRL's keys plus votes, soft label and split), streamed in
    pair-id order, under the project's aggregation (or `aggregation`). Both-bad pairs are
    counted in `stats` and not yielded."""
    stats = stats if stats is not None else DatasetStats()
    stats.aggregation = aggregation or project.aggregation
    posteriors = dataset_posteriors(project, flt, stats.aggregation)
    for pair, agg in iter_pair_outcomes(project, flt, posteriors):
        stats.comparisons += agg["n"]
        stats.ai_judge_comparisons += agg["ai_judge"]
        if agg["outcome"] == "both_bad":
            stats.both_bad += 1
            continue
        split = split_of(pair["prompt__content_hash"], validation_share, test_share)
        row = _row(pair, agg, split)
        stats.pairs += 1
        stats.ties += int(row["tie"])
        stats.by_split[split] = stats.by_split.get(split, 0) + 1
        yield row
