"""Per-labeler statistics (pace, agreement, gold accuracy, self-consistency, position and length
bias, agreement with the reward model) and the flags raised when one falls outside its band.

Choices are canonical by response ("a" is the pair's response_a); `left` only says where a
response was shown, which is what the position-bias measure needs.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# Thresholds of the flags and of the review queue; Project.quality_bands overrides any by key.
DEFAULT_BANDS: dict[str, float] = {
    # Left-side rate: flagged when the exact binomial test against 50% gives p below this.
    "left_p_max": 0.01,
    # Longer-response rate: flagged when the binomial test against the other labelers' rate
    # gives p below this.
    "longer_p_max": 0.01,
    "gold_accuracy_min": 0.7,
    "median_seconds_min": 3.0,
    "agreement_min": 0.6,
    "self_consistency_min": 0.6,
    # Rates from fewer judgments than this are shown but never flagged: they are noise.
    "min_count": 5,
    # Review queue (see annotate.quality.review): a split pair's top outcome holds at most this
    # share of the votes; a contradicting model gives the other response at least this P.
    "review_split_max_agreement": 0.5,
    "review_model_p_min": 0.9,
    # Under a reliability aggregation: a pair whose posterior favours neither response by more
    # than this is "split" (a 2-1 of mediocre labelers is; of reliable ones, not).
    "review_posterior_max": 0.75,
}

# A pause longer than this between two judgments is a break, not labeling time.
BREAK = timedelta(minutes=10)


@dataclass(frozen=True)
class Judgment:
    """One comparison as these measures see it. `labeler` is None for anonymous imported votes,
    which count toward the majority of others but get no statistics of their own."""

    pair_id: int
    labeler: int | None
    choice: str
    left: str = ""
    seconds: float | None = None
    at: datetime | None = None
    is_repeat: bool = False


@dataclass(frozen=True)
class PairFacts:
    """What is known about a pair apart from its votes."""

    longer: str | None = None  # "a" or "b": the response with more characters; None if equal
    gold: str = ""  # the known answer, or "" when the pair is not gold
    model_p_a: float | None = None  # the active reward model's P(response_a better)


def merge_bands(overrides: Mapping[str, Any] | None) -> dict[str, float]:
    """The default bands with a project's overrides; unknown keys and non-numbers are ignored
    so that a typo in the admin never breaks the dashboard."""
    bands = dict(DEFAULT_BANDS)
    for key, value in (overrides or {}).items():
        if key in bands and isinstance(value, int | float) and not isinstance(value, bool):
            bands[key] = float(value)
    return bands


def binomial_p_value(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test (scipy.stats.binomtest): the probability, under rate p,
    of an outcome no more likely than k successes in n; 1.0 when there are no trials."""
    if n == 0:
        return 1.0
    # Imported here: scipy.stats costs about a second, and this module loads with the URLs.
    from scipy.stats import binomtest

    return float(binomtest(k, n, p).pvalue)


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def _majority(counts: Mapping[str, int], without: str | None = None) -> str | None:
    """The outcome with strictly the most votes, leaving out one vote for `without`; None
    when there are no votes or the top is shared."""
    best, best_n, shared = None, 0, False
    for outcome, n in counts.items():
        n -= outcome == without
        if n > best_n:
            best, best_n, shared = outcome, n, False
        elif n == best_n and n > 0:
            shared = True
    return None if shared else best


def active_seconds(judgments: Iterable[Judgment]) -> float:
    """Labeling time: the gaps between consecutive judgments, where a gap longer than BREAK
    counts as a break and only that judgment's own time on the page counts."""
    timed = sorted((j for j in judgments if j.at is not None), key=lambda j: j.at)
    total = 0.0
    previous = None
    for j in timed:
        gap = (j.at - previous).total_seconds() if previous is not None else None
        if gap is not None and gap <= BREAK.total_seconds():
            total += gap
        else:
            total += j.seconds or 0.0
        previous = j.at
    return total


@dataclass
class LabelerCounts:
    """What one labeler's statistics are made of: counts over their judgments, whether read
    from lists of Judgments (labeler_counts) or aggregated in the database
    (annotate.selectors.quality_counts)."""

    comparisons: int = 0  # first judgments
    repeats: int = 0  # swapped repeats
    active_seconds: float = 0.0  # see active_seconds
    median_seconds: float | None = None  # of every judgment's own time on the page
    agree: int = 0  # first judgments that match the others' strict majority ...
    agree_n: int = 0  # ... of those on a pair where the others have one
    gold_right: int = 0
    gold_n: int = 0  # first judgments of gold pairs
    consistent: int = 0  # repeats that repeat the first judgment ...
    repeat_n: int = 0  # ... of the repeats of a pair they judged first
    left_k: int = 0  # A/B choices of the response shown on the left ...
    left_n: int = 0  # ... of A/B choices with a known side (repeats too)
    longer_k: int = 0  # first A/B choices of the longer response ...
    longer_n: int = 0  # ... on pairs whose responses differ in length
    model_agree: int = 0  # first A/B choices on the model's side ...
    model_n: int = 0  # ... where the model leans (P(A) known and not 0.5)


def labeler_counts(
    judgments: Iterable[Judgment],
    pairs: Mapping[int, PairFacts],
    *,
    excluded: Iterable[int] = (),
) -> dict[int, LabelerCounts]:
    """Each labeler's counts from plain Judgments: the definitions the database aggregates
    follow. Excluded labelers' votes leave the majority the others are compared against."""
    judgments = list(judgments)
    excluded = set(excluded)
    votes: dict[int, Counter] = defaultdict(Counter)
    originals: dict[tuple[int, int], str] = {}
    by_labeler: dict[int, list[Judgment]] = defaultdict(list)
    for j in judgments:
        if j.labeler is not None:
            by_labeler[j.labeler].append(j)
        if j.is_repeat:
            continue
        if j.labeler is not None:
            originals[(j.labeler, j.pair_id)] = j.choice
        if j.labeler not in excluded:
            votes[j.pair_id][j.choice] += 1
    return {
        labeler: _counts_of(labeler, own, pairs, votes, originals, labeler not in excluded)
        for labeler, own in by_labeler.items()
    }


def _counts_of(
    labeler: int,
    own: list[Judgment],
    pairs: Mapping[int, PairFacts],
    votes: Mapping[int, Counter],
    originals: Mapping[tuple[int, int], str],
    counted: bool,
) -> LabelerCounts:
    facts = {j.pair_id: pairs.get(j.pair_id, PairFacts()) for j in own}
    first = [j for j in own if not j.is_repeat]
    repeats = [j for j in own if j.is_repeat]
    c = LabelerCounts(comparisons=len(first), repeats=len(repeats))
    for j in first:
        majority = _majority(votes.get(j.pair_id, {}), without=j.choice if counted else None)
        if majority is not None:
            c.agree_n += 1
            c.agree += j.choice == majority
        gold = facts[j.pair_id].gold
        if gold:
            c.gold_n += 1
            c.gold_right += j.choice == gold
        if j.choice in ("a", "b") and facts[j.pair_id].longer:
            c.longer_n += 1
            c.longer_k += j.choice == facts[j.pair_id].longer
        p = facts[j.pair_id].model_p_a
        if j.choice in ("a", "b") and p not in (None, 0.5):
            c.model_n += 1
            c.model_agree += j.choice == ("a" if p > 0.5 else "b")
    for j in repeats:
        if (labeler, j.pair_id) in originals:
            c.repeat_n += 1
            c.consistent += originals[(labeler, j.pair_id)] == j.choice
    sided = [j for j in own if j.choice in ("a", "b") and j.left in ("a", "b")]
    c.left_n, c.left_k = len(sided), sum(j.choice == j.left for j in sided)
    seconds = [j.seconds for j in own if j.seconds is not None]
    c.median_seconds = statistics.median(seconds) if seconds else None
    c.active_seconds = active_seconds(own)
    return c


def labeler_stats(
    judgments: Iterable[Judgment],
    pairs: Mapping[int, PairFacts],
    *,
    excluded: Iterable[int] = (),
    bands: Mapping[str, Any] | None = None,
) -> dict[int, dict[str, Any]]:
    """Statistics and flags per labeler id, from plain Judgments (see labeler_rows)."""
    excluded = set(excluded)
    return labeler_rows(labeler_counts(judgments, pairs, excluded=excluded), excluded, bands)


def labeler_rows(
    counts: Mapping[int, LabelerCounts],
    excluded: Iterable[int] = (),
    bands: Mapping[str, Any] | None = None,
) -> dict[int, dict[str, Any]]:
    """Statistics and flags per labeler id from their counts.

    Excluded labelers get statistics too, but their votes leave the majority and the pool that
    everybody else is compared against. The longer-response rate is tested against the median
    rate of the other labelers (each with at least min_count such choices), so one labeler who
    always picks the longer answer does not move their own yardstick.
    """
    excluded = set(excluded)
    bands = merge_bands(bands)
    pool = {
        labeler: c.longer_k / c.longer_n
        for labeler, c in counts.items()
        if labeler not in excluded and c.longer_n >= bands["min_count"]
    }
    result = {}
    for labeler, c in counts.items():
        others = [rate for other, rate in pool.items() if other != labeler]
        yardstick = statistics.median(others) if others else None
        result[labeler] = _one_labeler(c, yardstick, bands)
    return result


def _one_labeler(
    c: LabelerCounts, pool_rate: float | None, bands: Mapping[str, float]
) -> dict[str, Any]:
    left_p = binomial_p_value(c.left_k, c.left_n, 0.5) if c.left_n else None
    longer_p = (
        binomial_p_value(c.longer_k, c.longer_n, pool_rate)
        if c.longer_n and pool_rate is not None
        else None
    )
    judged = c.comparisons + c.repeats
    active = c.active_seconds
    stats: dict[str, Any] = {
        "comparisons": c.comparisons,
        "repeats": c.repeats,
        "active_hours": round(active / 3600, 3),
        "labels_per_hour": round(judged / (active / 3600), 1) if active > 0 else None,
        "median_seconds": round(c.median_seconds, 2) if c.median_seconds is not None else None,
        "agreement_with_majority": _rate(c.agree, c.agree_n),
        "agreement_n": c.agree_n,
        "gold_accuracy": _rate(c.gold_right, c.gold_n),
        "gold_n": c.gold_n,
        "self_consistency": _rate(c.consistent, c.repeat_n),
        "repeat_n": c.repeat_n,
        "left_rate": _rate(c.left_k, c.left_n),
        "left_n": c.left_n,
        "left_p": left_p,
        "longer_rate": _rate(c.longer_k, c.longer_n),
        "longer_n": c.longer_n,
        "longer_pool_rate": pool_rate,
        "longer_p": longer_p,
        "model_agreement": _rate(c.model_agree, c.model_n),
        "model_n": c.model_n,
    }
    stats["flags"] = flags_for(stats, bands)
    return stats


def percent_text(x: float) -> str:
    return f"{x * 100:.0f}%"


def p_value_text(p: float) -> str:
    return "p < 0.0001" if p < 0.0001 else f"p = {p:.4f}"


def flags_for(stats: Mapping[str, Any], bands: Mapping[str, float]) -> list[dict[str, str]]:
    """The flags of one labeler's statistics: [{"code", "reason"}], each reason in words."""
    flags = []
    least = bands["min_count"]
    if stats["left_p"] is not None and stats["left_p"] < bands["left_p_max"]:
        flags.append(
            {
                "code": "left_bias",
                "reason": f"Chose the response shown on the left in {percent_text(stats['left_rate'])} "
                f"of {stats['left_n']} A/B choices (binomial test against 50%: "
                f"{p_value_text(stats['left_p'])}).",
            }
        )
    if stats["longer_p"] is not None and stats["longer_p"] < bands["longer_p_max"]:
        flags.append(
            {
                "code": "length_bias",
                "reason": f"Chose the longer response in {percent_text(stats['longer_rate'])} of "
                f"{stats['longer_n']} A/B choices against {percent_text(stats['longer_pool_rate'])} "
                f"for the other labelers ({p_value_text(stats['longer_p'])}).",
            }
        )
    if stats["gold_n"] >= least and stats["gold_accuracy"] < bands["gold_accuracy_min"]:
        flags.append(
            {
                "code": "gold",
                "reason": f"Gold accuracy {percent_text(stats['gold_accuracy'])} on {stats['gold_n']} "
                f"gold pairs (band: at least {percent_text(bands['gold_accuracy_min'])}).",
            }
        )
    timed = stats["median_seconds"]
    if timed is not None and stats["comparisons"] >= least and timed < bands["median_seconds_min"]:
        flags.append(
            {
                "code": "too_fast",
                "reason": f"Median {timed:.1f} s per comparison (band: at least "
                f"{bands['median_seconds_min']:g} s).",
            }
        )
    if stats["agreement_n"] >= least and stats["agreement_with_majority"] < bands["agreement_min"]:
        flags.append(
            {
                "code": "low_agreement",
                "reason": f"Agrees with the majority of the other labelers on "
                f"{percent_text(stats['agreement_with_majority'])} of {stats['agreement_n']} pairs "
                f"(band: at least {percent_text(bands['agreement_min'])}).",
            }
        )
    if stats["repeat_n"] >= least and stats["self_consistency"] < bands["self_consistency_min"]:
        flags.append(
            {
                "code": "inconsistent",
                "reason": f"Gave the same answer to {percent_text(stats['self_consistency'])} of "
                f"{stats['repeat_n']} pairs shown again with the sides swapped (band: at least "
                f"{percent_text(bands['self_consistency_min'])}).",
            }
        )
    return flags
