"""Quality figures of rankings (K responses of one prompt put in order, ties as groups):
agreement over the pairs each ranking implies (Krippendorff's alpha, nominal), Kendall's W
per set, each labeler's Kendall tau-b with the others' consensus, the top slot's position
bias, and a Plackett-Luce consensus order per set. Plain numpy: rankings arrive as data.

A set is one ResponseSet: K responses of one prompt, ranked by several labelers. A prompt
usually has one set; a prompt with more than K responses has several, each measured alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import combinations
from typing import Any

import numpy as np

from annotate.bootstrap import percentile_interval, resample_weights
from annotate.quality.aggregation import MAJORITY, MODEL_NAMES, fit_votes
from annotate.quality.labelers import binomial_p_value
from annotate.quality.plackett_luce import Problem, order_of, plackett_luce

# The pair outcomes a ranking implies, for responses a < b (by id): a above b, b above a, tied.
OUTCOMES = ("a", "b", "tie")
# Sets with the lowest Kendall's W listed in the figures (the ones to look at first).
LOWEST_SETS = 10


@dataclass(frozen=True)
class LabelerRanking:
    """One labeler's ranking of one set: `groups` of response ids, best first, each a tie;
    `shown` the order the page showed them (empty when unknown, e.g. imported)."""

    set_id: int
    labeler: int
    groups: tuple[tuple[int, ...], ...]
    shown: tuple[int, ...] = ()
    prompt_id: int | None = None

    @classmethod
    def of(
        cls,
        set_id: int,
        labeler: int,
        groups: Iterable[Iterable[int]],
        shown: Iterable[int] = (),
        prompt_id: int | None = None,
    ) -> LabelerRanking:
        return cls(
            set_id, labeler, tuple(tuple(g) for g in groups if len(g)), tuple(shown), prompt_id
        )

    @cached_property
    def items(self) -> tuple[int, ...]:
        return tuple(i for group in self.groups for i in group)


def midranks(groups: Sequence[Sequence[int]]) -> dict[int, float]:
    """Each response's rank (1 best), tied responses sharing the mean of their places."""
    ranks: dict[int, float] = {}
    start = 0
    for group in groups:
        rank = start + (len(group) + 1) / 2
        for i in group:
            ranks[i] = rank
        start += len(group)
    return ranks


def implied_outcomes(groups: Sequence[Sequence[int]]) -> dict[tuple[int, int], str]:
    """The pair outcomes a ranking implies: {(a, b) with a < b: "a" | "b" | "tie"}."""
    ranks = midranks(groups)
    out = {}
    for a, b in combinations(sorted(ranks), 2):
        out[(a, b)] = "tie" if ranks[a] == ranks[b] else ("a" if ranks[a] < ranks[b] else "b")
    return out


def _by_set(rankings: Iterable[LabelerRanking]) -> dict[int, list[LabelerRanking]]:
    """Rankings with an order (all-bad ones without an order say nothing here), by set."""
    sets: dict[int, list[LabelerRanking]] = defaultdict(list)
    for r in rankings:
        if len(r.items) >= 2:
            sets[r.set_id].append(r)
    return dict(sets)


# ---------------------------------------------------------------------------------------------
# Agreement over the implied pairs


def _set_coincidences(rankings: Sequence[LabelerRanking]) -> np.ndarray:
    """The set's coincidence matrix (OUTCOMES x OUTCOMES) over its implied pairs: each pair a
    unit whose values are the labelers' outcomes (Krippendorff's o_ck)."""
    o = np.zeros((3, 3))
    units: dict[tuple[int, int], list[int]] = defaultdict(list)
    for r in rankings:
        for pair, outcome in implied_outcomes(r.groups).items():
            units[pair].append(OUTCOMES.index(outcome))
    for values in units.values():
        m = len(values)
        if m < 2:
            continue
        counts = np.bincount(values, minlength=3).astype(float)
        o += (np.outer(counts, counts) - np.diag(counts)) / (m - 1)
    return o


def _nominal_alpha(o: np.ndarray) -> np.ndarray:
    """Nominal alpha of stacked coincidence matrices (... x 3 x 3); NaN where undefined."""
    n_c = o.sum(-1)
    n = n_c.sum(-1)
    disagree = n - np.trace(o, axis1=-2, axis2=-1)
    expected = n**2 - (n_c**2).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, 1.0 - (n - 1) * disagree / expected, np.nan)


def pair_agreement(
    sets: Mapping[int, Sequence[LabelerRanking]], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Krippendorff's alpha (nominal: a above b, b above a, tie) over the pairs the rankings
    imply, each (set, a, b) a unit. The bootstrap resamples sets, not pairs: the pairs of one
    ranking stand or fall together."""
    per_set = np.array([_set_coincidences(rs) for rs in sets.values()]).reshape(-1, 3, 3)
    pairable = per_set.sum((1, 2)) > 0
    per_set = per_set[pairable]
    alpha = _nominal_alpha(per_set.sum(0)) if len(per_set) else np.nan
    ci = None
    if len(per_set) >= 2 and np.isfinite(alpha) and n_boot > 0:
        # Sets of one pattern of coincidences are drawn through their count (few patterns
        # however many sets: K and the number of labelers bound them).
        flat, counts = np.unique(per_set.reshape(len(per_set), 9), axis=0, return_counts=True)
        draws = [
            _nominal_alpha((w @ flat).reshape(-1, 3, 3))
            for w in resample_weights(counts, n_boot, seed=seed)
        ]
        low, high = percentile_interval(np.concatenate(draws))
        ci = None if np.isnan(low) else [_round(low), _round(high)]
    units = sum(
        sum(1 for n in _pair_counts(rs).values() if n >= 2)
        for rs, keep in zip(sets.values(), pairable, strict=True)
        if keep
    )
    return {
        "sets": int(pairable.sum()),
        "pairs": units,
        "alpha": _round(alpha),
        "alpha_ci": ci,
    }


def _pair_counts(rankings: Sequence[LabelerRanking]) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for r in rankings:
        for pair in implied_outcomes(r.groups):
            counts[pair] += 1
    return counts


# ---------------------------------------------------------------------------------------------
# Kendall's W


def kendalls_w(rankings: Sequence[Sequence[Sequence[int]]]) -> float | None:
    """Kendall's coefficient of concordance of m rankings (groups, ties allowed) of the same
    n responses, with the ties correction: W = 12 S / (m^2 (n^3 - n) - m sum T), S the sum of
    squared deviations of the rank sums from their mean, T = sum over tie groups of t^3 - t.
    None with fewer than two rankings, or when every ranking ties everything."""
    m = len(rankings)
    if m < 2:
        return None
    items = sorted(midranks(rankings[0]))
    n = len(items)
    ranks = np.array([[midranks(g)[i] for i in items] for g in rankings])
    sums = ranks.sum(0)
    s = float(((sums - sums.mean()) ** 2).sum())
    ties = sum(len(group) ** 3 - len(group) for g in rankings for group in g)
    denominator = m**2 * (n**3 - n) - m * ties
    return 12 * s / denominator if denominator > 0 else None


def concordance(
    sets: Mapping[int, Sequence[LabelerRanking]], *, n_boot: int = 1000, seed: int = 0
) -> tuple[dict[str, Any], dict[int, float]]:
    """Kendall's W of every set ranked by two or more labelers, their mean with a bootstrap
    interval over sets and their median; and W by set."""
    by_set = {}
    for set_id, rs in sets.items():
        w = kendalls_w([r.groups for r in rs])
        if w is not None:
            by_set[set_id] = w
    values = np.array(list(by_set.values()))
    ci = None
    if len(values) >= 2 and n_boot > 0:
        distinct, counts = np.unique(values, return_counts=True)
        draws = [(w @ distinct) / w.sum(1) for w in resample_weights(counts, n_boot, seed=seed)]
        low, high = percentile_interval(np.concatenate(draws))
        ci = [_round(low), _round(high)]
    return {
        "sets": len(values),
        "mean": _round(values.mean()) if len(values) else None,
        "mean_ci": ci,
        "median": _round(np.median(values)) if len(values) else None,
    }, by_set


# ---------------------------------------------------------------------------------------------
# The consensus (annotate.quality.plackett_luce)


def consensus(
    sets: Mapping[int, Sequence[LabelerRanking]], weights: Mapping[int, float] | None = None
) -> dict[int, list[list[int]]]:
    """Each set's Plackett-Luce consensus order across its labelers (groups, best first),
    each labeler's ranking weighted by `weights` (default 1)."""
    weights = weights or {}
    ids = list(sets)
    problems = [_problem(sets[s], weights) for s in ids]
    return {s: order_of(w) for s, w in zip(ids, plackett_luce(problems), strict=True)}


def _problem(rankings: Sequence[LabelerRanking], weights: Mapping[int, float]) -> Problem:
    items = tuple(sorted({i for r in rankings for i in r.items}))
    return Problem(items, tuple((r.groups, float(weights.get(r.labeler, 1.0))) for r in rankings))


# ---------------------------------------------------------------------------------------------
# Each labeler against the others' consensus


def tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between the rows of x and y (B x n scores, higher better), all rows at
    once: scipy.stats.kendalltau's statistic, one row at a time, costs ~100 us a call, and a
    project has a call per labeler and set. NaN where a row is all ties."""
    i, j = np.triu_indices(x.shape[1], 1)
    sx = np.sign(x[:, i] - x[:, j])
    sy = np.sign(y[:, i] - y[:, j])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sx * sy).sum(1) / np.sqrt((sx != 0).sum(1) * (sy != 0).sum(1))


def leave_one_out_tau(
    sets: Mapping[int, Sequence[LabelerRanking]], weights: Mapping[int, float] | None = None
) -> list[tuple[int, int, float]]:
    """(labeler, set, tau-b) of each ranking against the Plackett-Luce consensus of the
    set's other labelers: a labeler's own ranking never pulls the consensus toward them."""
    weights = weights or {}
    keys, problems = [], []
    for set_id, rs in sets.items():
        if len(rs) < 2:
            continue
        for k, r in enumerate(rs):
            keys.append((r, set_id))
            problems.append(_problem([o for o in rs[:k] + rs[k + 1 :]], weights))
    fitted = plackett_luce(problems)
    by_size: dict[int, list[int]] = defaultdict(list)
    for n, (r, _) in enumerate(keys):
        by_size[len(r.items)].append(n)
    out: list[tuple[int, int, float]] = []
    for indices in by_size.values():
        own, other = [], []
        for n in indices:
            r, _ = keys[n]
            items = sorted(r.items)
            ranks = midranks(r.groups)
            theirs = midranks(order_of(fitted[n]))
            own.append([-ranks[i] for i in items])
            other.append([-theirs[i] for i in items])
        taus = tau_b(np.array(own), np.array(other))
        out.extend(
            (keys[n][0].labeler, keys[n][1], float(t))
            for n, t in zip(indices, taus, strict=True)
            if np.isfinite(t)
        )
    return out


# ---------------------------------------------------------------------------------------------
# Position bias and reliability weights


def _position(rankings: Sequence[LabelerRanking]) -> dict[str, Any]:
    """How often the response shown in the top slot is in the first group, against the rate
    with no bias: the first group's share of the set (1/K without a tie there)."""
    hits, expected = [], []
    for r in rankings:
        if r.shown and len(r.items) >= 2:
            hits.append(r.shown[0] in r.groups[0])
            expected.append(len(r.groups[0]) / len(r.items))
    n = len(hits)
    if not n:
        return {"n": 0, "top_rate": None, "expected": None, "p": None}
    k = int(sum(hits))
    probs = np.array(expected)
    if np.allclose(probs, probs[0]):
        p_value = binomial_p_value(k, n, float(probs[0]))
    else:
        # Rates differ by ranking (ties in the first group, sets of several sizes): the
        # normal approximation of the sum of Bernoullis, two-sided.
        from scipy.stats import norm

        sd = float(np.sqrt((probs * (1 - probs)).sum()))
        p_value = float(2 * norm.sf(abs(k - probs.sum()) / sd)) if sd else 1.0
    return {
        "n": n,
        "top_rate": _round(k / n),
        "expected": _round(probs.mean()),
        "p": p_value,
    }


def reliability_weights(
    sets: Mapping[int, Sequence[LabelerRanking]], method: str
) -> tuple[dict[int, float], dict[int, float]]:
    """Each labeler's reliability under the pair model `method` (annotate.quality.aggregation)
    fitted to the A/B votes the rankings imply (ties left out, as for pairs), and the weight
    their rankings get in the consensus: the log-odds of that reliability (the weight the
    one-coin model gives a vote), floored at 0, scaled to average 1. The implied pairs of one
    ranking are not independent votes, so the reliabilities lean to the extremes; only their
    order among labelers and the weights' ratios enter the consensus. Under majority: no
    weights (one ranking, one voice)."""
    if method == MAJORITY:
        return {}, {}
    units: dict[tuple[int, int, int], int] = {}
    labelers: dict[int, int] = {}
    pair_index, worker_index, says_a = [], [], []
    for set_id, rs in sets.items():
        for r in rs:
            for (a, b), outcome in implied_outcomes(r.groups).items():
                if outcome == "tie":
                    continue
                pair_index.append(units.setdefault((set_id, a, b), len(units)))
                worker_index.append(labelers.setdefault(r.labeler, len(labelers)))
                says_a.append(outcome == "a")
    if not pair_index:
        return {}, {}
    fit = fit_votes(
        method,
        np.array(pair_index),
        np.array(worker_index),
        np.array(says_a),
        n_pairs=len(units),
        n_workers=len(labelers),
    )
    reliability = {
        labeler: float(fit.reliability[k])
        for labeler, k in labelers.items()
        if np.isfinite(fit.reliability[k])
    }
    clipped = {u: min(max(r, 1e-6), 1 - 1e-6) for u, r in reliability.items()}
    raw = {u: max(float(np.log(r / (1 - r))), 0.0) for u, r in clipped.items()}
    mean = float(np.mean(list(raw.values()))) if raw else 0.0
    if mean <= 0:
        return reliability, {}
    return reliability, {u: w / mean for u, w in raw.items()}


# ---------------------------------------------------------------------------------------------
# The report


def _round(x: Any) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def rankings_report(
    rankings: Iterable[LabelerRanking],
    *,
    method: str = MAJORITY,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every ranking figure of a project from its counted rankings (first judgments of people
    not excluded): `agreement` over the implied pairs, `concordance` (Kendall's W), `position`
    (the top slot), `consensus` (how the Plackett-Luce orders were fitted), `lowest_sets`
    (the sets with the lowest W, with their consensus order) and `labelers` (by labeler id:
    rankings, tau-b with the others' consensus, top-slot rate, reliability and weight)."""
    rankings = list(rankings)
    sets = _by_set(rankings)
    reliability, weights = reliability_weights(sets, method)
    w_summary, w_by_set = concordance(sets, n_boot=n_boot, seed=seed)
    lowest_sets = _lowest_sets(rankings, sets, w_by_set, weights)
    taus = _taus_by_labeler(sets, weights)
    labelers = _labeler_rows(rankings, taus, reliability, weights)
    return {
        "rankings": len(rankings),
        "sets": len(sets),
        "agreement": pair_agreement(sets, n_boot=n_boot, seed=seed),
        "concordance": w_summary,
        "position": _position(rankings),
        "consensus": {
            "model": "Plackett-Luce (MM, Hunter 2004)",
            "ties": "Breslow: each tied response chosen from all not yet placed",
            "weighted_by": MODEL_NAMES[method] if weights else None,
        },
        "lowest_sets": lowest_sets,
        "labelers": labelers,
    }


def _lowest_sets(
    rankings: Sequence[LabelerRanking],
    sets: Mapping[int, Sequence[LabelerRanking]],
    w_by_set: Mapping[int, float],
    weights: Mapping[int, float],
) -> list[dict[str, Any]]:
    """The LOWEST_SETS sets the labelers agree on least, with their consensus order: the
    ones worth a reviewer's look. Ties in W break by set id, so the list is stable."""
    lowest = sorted(w_by_set, key=lambda s: (w_by_set[s], s))[:LOWEST_SETS]
    # Only these sets' consensus is shown, so only they are fitted.
    orders = consensus({s: sets[s] for s in lowest}, weights)
    prompt_of = {r.set_id: r.prompt_id for r in rankings}
    return [
        {
            "set_id": s,
            "prompt_id": prompt_of.get(s),
            "w": _round(w_by_set[s]),
            "labelers": len(sets[s]),
            "consensus": orders[s],
        }
        for s in lowest
    ]


def _taus_by_labeler(
    sets: Mapping[int, Sequence[LabelerRanking]], weights: Mapping[int, float]
) -> dict[int, list[float]]:
    taus: dict[int, list[float]] = defaultdict(list)
    for labeler, _set_id, t in leave_one_out_tau(sets, weights):
        taus[labeler].append(t)
    return taus


def _labeler_rows(
    rankings: Sequence[LabelerRanking],
    taus: Mapping[int, list[float]],
    reliability: Mapping[int, float],
    weights: Mapping[int, float],
) -> dict[int, dict[str, Any]]:
    """Each labeler's figures, by labeler id in ascending order."""
    mine: dict[int, list[LabelerRanking]] = defaultdict(list)
    for r in rankings:
        mine[r.labeler].append(r)
    labelers = {}
    for labeler, rs in sorted(mine.items()):
        position = _position(rs)
        t = taus.get(labeler, [])
        labelers[labeler] = {
            "rankings": len(rs),
            "all_bad": sum(1 for r in rs if not r.groups),
            "tau_b": _round(np.mean(t)) if t else None,
            "tau_n": len(t),
            "top_rate": position["top_rate"],
            "top_expected": position["expected"],
            "top_p": position["p"],
            "reliability": _round(reliability[labeler]) if labeler in reliability else None,
            "weight": _round(weights[labeler]) if labeler in weights else None,
        }
    return labelers
