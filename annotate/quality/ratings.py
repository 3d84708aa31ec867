"""Quality figures of ratings (each response rated on the project's aspects, integer scales):
per aspect, Krippendorff's alpha (interval and ordinal) and quadratic-weighted Cohen's kappa;
per labeler, their offset (lenient above the others, harsh below) and spread. Plain numpy.

An item is one response of one set on one aspect: each labeler rates it once (first
judgments only), so its ratings are the unit of agreement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from annotate.quality.agreement import Ratings, bootstrap_intervals, krippendorff_alpha

ALPHA_LEVELS = ("interval", "ordinal")
# An offset this unlikely under "no offset" (t-test) names the labeler lenient or harsh.
OFFSET_P_MAX = 0.01


@dataclass(frozen=True)
class LabelerRating:
    """One labeler's value for one response (of one set) on one aspect."""

    set_id: int
    response_id: int
    aspect: str
    labeler: int
    value: int


def quadratic_kappa(x: Sequence[int], y: Sequence[int], low: int, high: int) -> float | None:
    """Cohen's kappa with quadratic weights of two labelers' values on the same items, over
    the scale low..high: 1 - sum(w O) / sum(w E), w_ij = (i - j)^2 / (k - 1)^2, O the
    observed and E the chance (product of margins) table. None when chance disagreement is
    zero (both gave one value throughout) or with no items."""
    k = high - low + 1
    if not len(x) or k < 2:
        return None
    observed = np.zeros((k, k))
    np.add.at(observed, (np.asarray(x) - low, np.asarray(y) - low), 1.0)
    n = observed.sum()
    expected = np.outer(observed.sum(1), observed.sum(0)) / n
    i = np.arange(k)
    weights = (i[:, None] - i[None, :]) ** 2 / (k - 1) ** 2
    chance = float((weights * expected).sum())
    if chance <= 0:
        return None
    return 1.0 - float((weights * observed).sum()) / chance


def _items(ratings: Iterable[LabelerRating]) -> dict[str, dict[tuple[int, int], dict[int, int]]]:
    """{aspect: {(set, response): {labeler: value}}}."""
    items: dict[str, dict[tuple[int, int], dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
    for r in ratings:
        items[r.aspect][(r.set_id, r.response_id)][r.labeler] = r.value
    return items


def pairwise_kappa(
    items: Mapping[Any, Mapping[int, int]], low: int, high: int
) -> tuple[float | None, int]:
    """Quadratic-weighted kappa of every pair of labelers who rated two or more items in
    common, and its mean over those pairs weighted by the items each pair shares (a pair that
    shares three items says less than one that shares three hundred); and the pairs' count."""
    shared: dict[tuple[int, int], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for by_labeler in items.values():
        for u, v in combinations(sorted(by_labeler), 2):
            xs, ys = shared[(u, v)]
            xs.append(by_labeler[u])
            ys.append(by_labeler[v])
    kappas, sizes = [], []
    for xs, ys in shared.values():
        if len(xs) < 2:
            continue
        kappa = quadratic_kappa(xs, ys, low, high)
        if kappa is not None:
            kappas.append(kappa)
            sizes.append(len(xs))
    if not kappas:
        return None, 0
    return float(np.average(kappas, weights=sizes)), len(kappas)


def _round(x: Any) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def aspect_agreement(
    items: Mapping[Any, Mapping[int, int]],
    low: int,
    high: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """One aspect's agreement: alpha (interval and ordinal) with bootstrap intervals that
    resample items, and the pairwise quadratic-weighted kappa."""
    units = [list(by_labeler.values()) for by_labeler in items.values()]
    pairable = [u for u in units if len(u) >= 2]
    out: dict[str, Any] = {
        "ratings": sum(len(u) for u in units),
        "items": len(pairable),
        "mean": _round(np.mean([v for u in units for v in u])) if units else None,
    }
    names = [f"alpha_{level}" for level in ALPHA_LEVELS]
    cis = bootstrap_intervals(Ratings.of(pairable), names, n_boot=n_boot, seed=seed)
    for level, name in zip(ALPHA_LEVELS, names, strict=True):
        value = krippendorff_alpha(pairable, level) if pairable else None
        ci = cis.get(name) if value is not None else None
        out[name] = _round(value)
        out[f"{name}_ci"] = [_round(ci[0]), _round(ci[1])] if ci else None
    out["kappa_quadratic"], out["kappa_pairs"] = pairwise_kappa(items, low, high)
    out["kappa_quadratic"] = _round(out["kappa_quadratic"])
    return out


def labeler_offsets(
    items: Mapping[str, Mapping[Any, Mapping[int, int]]],
    scales: Mapping[str, tuple[int, int]],
) -> dict[int, dict[str, Any]]:
    """Each labeler against the others on the items they share, by aspect and overall.

    Offset: the mean of (their value - the mean of the others' values on the item); above 0
    lenient, below harsh. Overall it is in shares of each aspect's scale (max - min), with a
    one-sample t-test of those deviations against 0 (`leaning` names it below OFFSET_P_MAX). Spread: the standard deviation of their
    values beside that of the others' values on the same items (smaller: they keep to the
    middle of the scale; larger: they use its ends)."""
    deviations: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    own: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    others: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for aspect, by_item in items.items():
        for by_labeler in by_item.values():
            if len(by_labeler) < 2:
                continue
            total, n = sum(by_labeler.values()), len(by_labeler)
            for labeler, value in by_labeler.items():
                deviations[labeler][aspect].append(value - (total - value) / (n - 1))
                own[labeler][aspect].append(value)
                others[labeler][aspect].extend(v for u, v in by_labeler.items() if u != labeler)
    out = {}
    for labeler, by_aspect in sorted(deviations.items()):
        shares, spread, others_spread = [], [], []
        rows = {}
        for aspect, devs in by_aspect.items():
            low, high = scales[aspect]
            width = max(high - low, 1)  # an unknown aspect's ratings may all be one value
            shares.extend(d / width for d in devs)
            mine, theirs = np.std(own[labeler][aspect]), np.std(others[labeler][aspect])
            spread.append(mine / width)
            others_spread.append(theirs / width)
            rows[aspect] = {
                "n": len(devs),
                "offset": _round(np.mean(devs)),
                "spread": _round(mine),
                "others_spread": _round(theirs),
            }
        offset, p = float(np.mean(shares)), _t_test(shares)
        leaning = None
        if p is not None and p < OFFSET_P_MAX and offset:
            leaning = "lenient" if offset > 0 else "harsh"
        out[labeler] = {
            "compared": len(shares),
            "offset": _round(offset),
            "offset_p": p,
            "leaning": leaning,
            "spread": _round(np.mean(spread)),
            "others_spread": _round(np.mean(others_spread)),
            "by_aspect": rows,
        }
    return out


def _t_test(values: Sequence[float]) -> float | None:
    if len(values) < 2:
        return None
    if np.allclose(values, values[0], rtol=1e-9, atol=1e-12):
        # Every deviation the same: none (p = 1) or a sure one (p = 0); the t statistic would
        # divide by a rounding error.
        return 1.0 if abs(values[0]) < 1e-12 else 0.0
    # Imported here: scipy.stats costs about a second, and this module loads with the URLs.
    from scipy.stats import ttest_1samp

    return float(ttest_1samp(values, 0.0).pvalue)


def ratings_report(
    ratings: Iterable[LabelerRating],
    scales: Mapping[str, tuple[int, int]],
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every rating figure of a project from its counted ratings (first judgments of people
    not excluded) and its aspects' scales {name: (min, max)}, in that order: `aspects` (one
    row each) and `labelers` (by labeler id). An aspect rated but no longer the project's is
    measured on the range its ratings span."""
    ratings = list(ratings)
    items = _items(ratings)
    scales = dict(scales)
    for aspect, by_item in items.items():
        if aspect not in scales:
            values = [v for by_labeler in by_item.values() for v in by_labeler.values()]
            scales[aspect] = (min(values), max(values))
    aspects = []
    for aspect, (low, high) in scales.items():
        if aspect not in items:
            continue
        row = aspect_agreement(items[aspect], low, high, n_boot=n_boot, seed=seed)
        aspects.append({"name": aspect, "min": low, "max": high, **row})
    counts: dict[int, int] = defaultdict(int)
    for r in ratings:
        counts[r.labeler] += 1
    offsets = labeler_offsets(items, scales)
    labelers = {
        labeler: {"ratings": n, **offsets.get(labeler, _no_offset())}
        for labeler, n in sorted(counts.items())
    }
    return {"ratings": len(ratings), "aspects": aspects, "labelers": labelers}


def _no_offset() -> dict[str, Any]:
    return {
        "compared": 0,
        "offset": None,
        "offset_p": None,
        "leaning": None,
        "spread": None,
        "others_spread": None,
        "by_aspect": {},
    }
