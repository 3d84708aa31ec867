"""Agreement between labelers over pairs: percent agreement, Krippendorff's alpha (nominal,
interval, ordinal), Fleiss' kappa, and bootstrap 95% intervals that resample pairs.

A unit is one pair; its values are the judgments it received (choices, or signed strengths).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from annotate.bootstrap import percentile_interval, resample_weights

Units = Sequence[Sequence[Hashable]]
LEVELS = ("nominal", "interval", "ordinal")


@dataclass(frozen=True)
class Ratings:
    """Pairable units (two or more judgments) reduced to their distinct patterns of counts.

    Every measure here depends only on how many units share each pattern, so resampling units
    for a bootstrap is a multinomial draw over the patterns: cheap for any number of pairs.
    """

    values: tuple  # the K distinct values, sorted
    counts: np.ndarray  # P x K: judgments of each value in a unit of pattern p
    weights: np.ndarray  # P: how many units have pattern p

    @classmethod
    def of(cls, units: Units) -> Ratings:
        # A unit with a single judgment has nobody to agree with: every measure ignores it.
        pairable = [list(u) for u in units if len(u) >= 2]
        values = tuple(sorted({v for u in pairable for v in u}))
        index = {v: i for i, v in enumerate(values)}
        patterns: Counter[tuple[int, ...]] = Counter()
        for unit in pairable:
            row = [0] * len(values)
            for v in unit:
                row[index[v]] += 1
            patterns[tuple(row)] += 1
        keys = list(patterns)
        counts = np.array(keys, dtype=float).reshape(len(keys), len(values))
        weights = np.array([patterns[k] for k in keys], dtype=float)
        return cls(values=values, counts=counts, weights=weights)

    @property
    def units(self) -> int:
        return int(self.weights.sum())


# Each measure takes the ratings and a B x P matrix of unit weights (one row per bootstrap
# replicate; the observed data is the single row `weights`) and returns B values, NaN where
# the measure is undefined.
Measure = Callable[[Ratings, np.ndarray], np.ndarray]


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.shape(num), np.nan)
    ok = den != 0
    np.divide(num, den, out=out, where=ok)
    return out


def _percent(r: Ratings, w: np.ndarray) -> np.ndarray:
    if not r.units:
        return np.full(len(w), np.nan)
    m = r.counts.sum(1)
    # The share of ordered pairs of judgments in a unit that agree.
    per_unit = (r.counts * (r.counts - 1)).sum(1) / (m * (m - 1))
    return _safe_div(w @ per_unit, w.sum(1))


def _delta(r: Ratings, n_c: np.ndarray, level: str) -> np.ndarray:
    """Squared distance between values c and k: K x K, or B x K x K for ordinal."""
    k = len(r.values)
    if level == "nominal":
        return 1.0 - np.eye(k)
    if level == "interval":
        v = np.asarray(r.values, dtype=float)
        return (v[:, None] - v[None, :]) ** 2
    if level == "ordinal":
        # Krippendorff's ordinal distance: the number of values between c and k (inclusive,
        # halving the two ends), taken from the margins of this replicate.
        idx = np.arange(k)
        lo, hi = np.minimum.outer(idx, idx), np.maximum.outer(idx, idx)
        cum = np.cumsum(n_c, axis=1)
        between = cum[:, hi] - cum[:, lo] + n_c[:, lo]
        return (between - (n_c[:, :, None] + n_c[:, None, :]) / 2) ** 2
    raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")


def _alpha(r: Ratings, w: np.ndarray, level: str) -> np.ndarray:
    if not r.units:
        return np.full(len(w), np.nan)
    c = r.counts
    m = c.sum(1)
    # Coincidences contributed by one unit of each pattern: n_c n_k / (m - 1), c != k pairs.
    per_unit = c[:, :, None] * c[:, None, :] - np.einsum("pc,ck->pck", c, np.eye(c.shape[1]))
    per_unit /= (m - 1)[:, None, None]
    o = np.einsum("bp,pck->bck", w, per_unit)
    n_c = o.sum(2)
    n = n_c.sum(1)
    delta = _delta(r, n_c, level)
    delta = np.broadcast_to(delta, o.shape)
    observed = (o * delta).sum((1, 2))
    expected = np.einsum("bc,bck,bk->b", n_c, delta, n_c)
    # alpha = 1 - D_o / D_e with D_o = sum(o * d) / n and D_e = sum(n_c n_k d) / (n (n - 1)).
    return 1.0 - _safe_div((n - 1) * observed, expected)


def _fleiss(r: Ratings, w: np.ndarray) -> np.ndarray:
    m = r.counts.sum(1)
    if not r.units or len(set(m.tolist())) != 1:
        return np.full(len(w), np.nan)
    raters = m[0]
    n_units = w.sum(1)
    p_unit = ((r.counts**2).sum(1) - raters) / (raters * (raters - 1))
    p_bar = (w @ p_unit) / n_units
    p_j = (w @ r.counts) / (n_units * raters)[:, None]
    p_e = (p_j**2).sum(1)
    return _safe_div(p_bar - p_e, 1.0 - p_e)


MEASURES: dict[str, Measure] = {
    "percent": _percent,
    "alpha_nominal": partial(_alpha, level="nominal"),
    "alpha_interval": partial(_alpha, level="interval"),
    "alpha_ordinal": partial(_alpha, level="ordinal"),
    "fleiss": _fleiss,
}


def _value(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def measure(units: Units, name: str) -> float | None:
    """One measure (a key of MEASURES) on the observed units; None where it is undefined."""
    r = Ratings.of(units)
    return _value(MEASURES[name](r, r.weights[None, :])[0])


def percent_agreement(units: Units) -> float | None:
    """Mean over pairs of the share of agreeing pairs of judgments (Fleiss' P-bar)."""
    return measure(units, "percent")


def krippendorff_alpha(units: Units, level: str = "nominal") -> float | None:
    """Krippendorff's alpha at a level of measurement; None when all values are the same."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")
    return measure(units, f"alpha_{level}")


def fleiss_kappa(units: Units) -> float | None:
    """Fleiss' kappa; None unless every pairable unit has the same number of judgments."""
    return measure(units, "fleiss")


def pair_agreement(values: Sequence[Hashable]) -> float | None:
    """One pair's share of agreeing pairs of judgments; None with fewer than two."""
    n = len(values)
    if n < 2:
        return None
    return sum(c * (c - 1) for c in Counter(values).values()) / (n * (n - 1))


def bootstrap_interval(
    units: Units | Ratings,
    name: str,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile interval of a measure over bootstrap resamples of the pairs."""
    r = units if isinstance(units, Ratings) else Ratings.of(units)
    if r.units < 2 or n_boot < 1:
        return None
    draws = resample_weights(r.weights, n_boot, seed=seed)
    values = np.concatenate([MEASURES[name](r, weights) for weights in draws])
    low, high = percentile_interval(values, confidence=confidence)
    if np.isnan(low):
        return None
    return float(low), float(high)


def signed_strength(choice: str, strength: int | None) -> int | None:
    """A judgment on the signed scale: +s for "a", -s for "b", 0 for a tie; both-bad is off
    the scale. Without a strength the scale is -1 / 0 / +1."""
    s = strength or 1
    return {"a": s, "b": -s, "tie": 0}.get(choice)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _with_interval(r: Ratings, name: str, n_boot: int, seed: int) -> tuple[Any, Any]:
    value = _value(MEASURES[name](r, r.weights[None, :])[0])
    ci = bootstrap_interval(r, name, n_boot=n_boot, seed=seed) if value is not None else None
    return _round(value), [_round(ci[0]), _round(ci[1])] if ci else None


def agreement_report(
    choices: Units, signed: Units, *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """All agreement figures of a project with bootstrap intervals.

    `choices` holds each pair's choices (a / b / tie / both_bad, canonical by response);
    `signed` the same judgments on the signed strength scale (see signed_strength).
    Fleiss' kappa needs one number of judgments per pair: it is computed over the pairs that
    have the most common number (usually the project's redundancy) and says how many those are.
    """
    nominal = Ratings.of(choices)
    scale = Ratings.of(signed)
    report: dict[str, Any] = {
        "pairs": nominal.units,
        "judgments": int((nominal.counts.sum(1) * nominal.weights).sum()),
    }
    report["percent"], report["percent_ci"] = _with_interval(nominal, "percent", n_boot, seed)
    for key, r, name in (
        ("krippendorff_alpha", nominal, "alpha_nominal"),
        ("krippendorff_alpha_interval", scale, "alpha_interval"),
        ("krippendorff_alpha_ordinal", scale, "alpha_ordinal"),
    ):
        report[key], report[f"{key}_ci"] = _with_interval(r, name, n_boot, seed)

    sizes = Counter(len(u) for u in choices if len(u) >= 2)
    raters = max(sizes, key=lambda k: (sizes[k], k)) if sizes else None
    same_size = Ratings.of([u for u in choices if len(u) == raters]) if raters else nominal
    report["fleiss_kappa"], report["fleiss_kappa_ci"] = _with_interval(
        same_size, "fleiss", n_boot, seed
    )
    report["fleiss_kappa_pairs"] = same_size.units if raters else 0
    report["fleiss_kappa_raters"] = raters
    return report
