"""Per-labeler statistics (pace, agreement, gold accuracy, self-consistency, position and length
bias, agreement with the reward model) and the flags raised when one falls outside its band.

Choices are canonical by response ("a" is the pair's response_a); `left` only says where a
response was shown, which is what the position-bias measure needs.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

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
    """Exact two-sided binomial test: the probability, under rate p, of an outcome no more
    likely than k successes in n (the same rule as scipy.stats.binomtest)."""
    if n == 0:
        return 1.0
    if p <= 0.0 or p >= 1.0:
        return 1.0 if k == (0 if p <= 0.0 else n) else 0.0
    i = np.arange(n)
    # log pmf by the ratio pmf(i+1)/pmf(i) = (n-i)/(i+1) * p/(1-p): exact and O(n).
    steps = np.log((n - i) / (i + 1)) + math.log(p / (1 - p))
    log_pmf = np.concatenate([[n * math.log(1 - p)], n * math.log(1 - p) + np.cumsum(steps)])
    # Relative tolerance as in scipy: outcomes equally likely up to rounding count as extreme.
    extreme = log_pmf <= log_pmf[k] + math.log1p(1e-7)
    return float(min(1.0, np.exp(log_pmf[extreme]).sum()))


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


def labeler_stats(
    judgments: Iterable[Judgment],
    pairs: Mapping[int, PairFacts],
    *,
    excluded: Iterable[int] = (),
    bands: Mapping[str, Any] | None = None,
) -> dict[int, dict[str, Any]]:
    """Statistics and flags per labeler id.

    Excluded labelers get statistics too, but their votes leave the majority and the pool that
    everybody else is compared against. The longer-response rate is tested against the median
    rate of the other labelers (each with at least min_count such choices).
    """
    judgments = list(judgments)
    excluded = set(excluded)
    bands = merge_bands(bands)
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

    # Each labeler's longer-response choices; the yardstick for one labeler is the median
    # of the others' rates, so one labeler who always picks the longer answer does not move it.
    longer = {labeler: _longer_choices(own, pairs) for labeler, own in by_labeler.items()}
    pool = {
        labeler: sum(choices) / len(choices)
        for labeler, choices in longer.items()
        if labeler not in excluded and len(choices) >= bands["min_count"]
    }
    result = {}
    for labeler, own in by_labeler.items():
        others = [rate for other, rate in pool.items() if other != labeler]
        yardstick = statistics.median(others) if others else None
        result[labeler] = _one_labeler(
            labeler, own, pairs, votes, originals, longer[labeler], yardstick, excluded, bands
        )
    return result


def _longer_choices(own: list[Judgment], pairs: Mapping[int, PairFacts]) -> list[bool]:
    """For each A/B choice on a pair whose responses differ in length: was it the longer one?"""
    return [
        j.choice == pairs[j.pair_id].longer
        for j in own
        if not j.is_repeat and j.choice in ("a", "b") and pairs.get(j.pair_id, PairFacts()).longer
    ]


def _one_labeler(
    labeler: int,
    own: list[Judgment],
    pairs: Mapping[int, PairFacts],
    votes: Mapping[int, Counter],
    originals: Mapping[tuple[int, int], str],
    longer: list[bool],
    pool_rate: float | None,
    excluded: set[int],
    bands: Mapping[str, float],
) -> dict[str, Any]:
    first = [j for j in own if not j.is_repeat]
    repeats = [j for j in own if j.is_repeat]
    counted = labeler not in excluded

    agree = agree_n = 0
    for j in first:
        majority = _majority(votes.get(j.pair_id, {}), without=j.choice if counted else None)
        if majority is not None:
            agree_n += 1
            agree += j.choice == majority

    gold = [
        (j.choice, pairs[j.pair_id].gold) for j in first if pairs.get(j.pair_id, PairFacts()).gold
    ]
    gold_right = sum(c == g for c, g in gold)

    consistent = sum(
        originals.get((labeler, j.pair_id)) == j.choice
        for j in repeats
        if (labeler, j.pair_id) in originals
    )
    repeat_n = sum((labeler, j.pair_id) in originals for j in repeats)

    sided = [j for j in own if j.choice in ("a", "b") and j.left in ("a", "b")]
    left_k = sum(j.choice == j.left for j in sided)
    left_p = binomial_p_value(left_k, len(sided), 0.5) if sided else None

    longer_k, longer_n = sum(longer), len(longer)
    longer_p = (
        binomial_p_value(longer_k, longer_n, pool_rate)
        if longer_n and pool_rate is not None
        else None
    )

    modelled = [
        (j.choice, pairs[j.pair_id].model_p_a)
        for j in first
        if j.choice in ("a", "b") and pairs.get(j.pair_id, PairFacts()).model_p_a not in (None, 0.5)
    ]
    model_agree = sum(c == ("a" if p > 0.5 else "b") for c, p in modelled)

    seconds = [j.seconds for j in own if j.seconds is not None]
    active = active_seconds(own)
    stats: dict[str, Any] = {
        "comparisons": len(first),
        "repeats": len(repeats),
        "active_hours": round(active / 3600, 3),
        "labels_per_hour": round(len(own) / (active / 3600), 1) if active > 0 else None,
        "median_seconds": round(statistics.median(seconds), 2) if seconds else None,
        "agreement_with_majority": _rate(agree, agree_n),
        "agreement_n": agree_n,
        "gold_accuracy": _rate(gold_right, len(gold)),
        "gold_n": len(gold),
        "self_consistency": _rate(consistent, repeat_n),
        "repeat_n": repeat_n,
        "left_rate": _rate(left_k, len(sided)),
        "left_n": len(sided),
        "left_p": left_p,
        "longer_rate": _rate(longer_k, longer_n),
        "longer_n": longer_n,
        "longer_pool_rate": pool_rate,
        "longer_p": longer_p,
        "model_agreement": _rate(model_agree, len(modelled)),
        "model_n": len(modelled),
    }
    stats["flags"] = flags_for(stats, bands)
    return stats


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _p(p: float) -> str:
    return "p < 0.0001" if p < 0.0001 else f"p = {p:.4f}"


def flags_for(stats: Mapping[str, Any], bands: Mapping[str, float]) -> list[dict[str, str]]:
    """The flags of one labeler's statistics: [{"code", "reason"}], each reason in words."""
    flags = []
    least = bands["min_count"]
    if stats["left_p"] is not None and stats["left_p"] < bands["left_p_max"]:
        flags.append(
            {
                "code": "left_bias",
                "reason": f"Chose the response shown on the left in {_pct(stats['left_rate'])} "
                f"of {stats['left_n']} A/B choices (binomial test against 50%: "
                f"{_p(stats['left_p'])}).",
            }
        )
    if stats["longer_p"] is not None and stats["longer_p"] < bands["longer_p_max"]:
        flags.append(
            {
                "code": "length_bias",
                "reason": f"Chose the longer response in {_pct(stats['longer_rate'])} of "
                f"{stats['longer_n']} A/B choices against {_pct(stats['longer_pool_rate'])} "
                f"for the other labelers ({_p(stats['longer_p'])}).",
            }
        )
    if stats["gold_n"] >= least and stats["gold_accuracy"] < bands["gold_accuracy_min"]:
        flags.append(
            {
                "code": "gold",
                "reason": f"Gold accuracy {_pct(stats['gold_accuracy'])} on {stats['gold_n']} "
                f"gold pairs (band: at least {_pct(bands['gold_accuracy_min'])}).",
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
                f"{_pct(stats['agreement_with_majority'])} of {stats['agreement_n']} pairs "
                f"(band: at least {_pct(bands['agreement_min'])}).",
            }
        )
    if stats["repeat_n"] >= least and stats["self_consistency"] < bands["self_consistency_min"]:
        flags.append(
            {
                "code": "inconsistent",
                "reason": f"Gave the same answer to {_pct(stats['self_consistency'])} of "
                f"{stats['repeat_n']} pairs shown again with the sides swapped (band: at least "
                f"{_pct(bands['self_consistency_min'])}).",
            }
        )
    return flags
