"""Agreement between labelers over pairs: percent agreement, Krippendorff's alpha (nominal,
interval, ordinal), Fleiss' kappa, and bootstrap 95% intervals that resample pairs.

A unit is one pair; its values are the judgments it received (choices, or signed strengths),
given as lists (`Ratings.of`) or as a matrix of counts per pair read from the database
(`Ratings.of_counts`). Every measure and its bootstrap see only the distinct patterns of
counts, so their cost does not grow with the number of pairs.
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
# Bootstrap resamples are drawn in blocks of at most this many cells (resamples x patterns):
# 2**21 floats, 16 MiB, however many distinct patterns the pairs have.
CELLS = 2**21
# Patterns per step when summing coincidence matrices: bounds the patterns x K x K array.
PATTERN_CHUNK = 4096


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

    @classmethod
    def of_counts(cls, values: Sequence[Hashable], counts: np.ndarray) -> Ratings:
        """The Ratings of units given as rows of judgment counts (column j counts `values[j]`,
        values sorted): the same as `of` on the lists those rows count, patterns in the order
        in which the units first show them."""
        if not len(values):  # no judgment at all (a project only AI judges have read yet)
            return cls(values=(), counts=np.zeros((0, 0)), weights=np.zeros(0))
        counts = np.asarray(counts, dtype=np.int64).reshape(-1, len(values))
        pairable = counts[counts.sum(1) >= 2]
        present = pairable.sum(0) > 0
        pairable = pairable[:, present]
        kept = tuple(v for v, keep in zip(values, present, strict=True) if keep)
        if not len(pairable):
            return cls(values=(), counts=np.zeros((0, 0)), weights=np.zeros(0))
        patterns, first, weights = np.unique(
            pairable, axis=0, return_index=True, return_counts=True
        )
        order = np.argsort(first, kind="stable")
        return cls(
            values=kept,
            counts=patterns[order].astype(float),
            weights=weights[order].astype(float),
        )

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


def _coincidences(r: Ratings, w: np.ndarray) -> np.ndarray:
    """B x K x K coincidence matrices: each pattern's n_c n_k / (m - 1) over its c != k pairs
    of judgments, weighted by the resample; summed over chunks of patterns."""
    c = r.counts
    k = c.shape[1]
    eye = np.eye(k)
    o = np.zeros((len(w), k * k))
    for start in range(0, len(c), PATTERN_CHUNK):
        part = c[start : start + PATTERN_CHUNK]
        per_unit = part[:, :, None] * part[:, None, :] - part[:, :, None] * eye[None]
        per_unit /= (part.sum(1) - 1)[:, None, None]
        o += w[:, start : start + PATTERN_CHUNK] @ per_unit.reshape(len(part), k * k)
    return o.reshape(len(w), k, k)


def _alpha(r: Ratings, w: np.ndarray, level: str, o: np.ndarray | None = None) -> np.ndarray:
    if not r.units:
        return np.full(len(w), np.nan)
    o = _coincidences(r, w) if o is None else o
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


def _evaluate(r: Ratings, w: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Several measures on the same weights; the alpha levels share one coincidence sum."""
    o = _coincidences(r, w) if r.units and any(n.startswith("alpha_") for n in names) else None
    return {
        name: _alpha(r, w, name.removeprefix("alpha_"), o)
        if name.startswith("alpha_")
        else MEASURES[name](r, w)
        for name in names
    }


def bootstrap_intervals(
    r: Ratings,
    names: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, tuple[float, float] | None]:
    """Percentile intervals of several measures over the same bootstrap resamples of the
    pairs (each measure's interval is the one `bootstrap_interval` gives it alone), drawn in
    blocks of at most CELLS weights."""
    if r.units < 2 or n_boot < 1 or not names:
        return dict.fromkeys(names)
    block = max(1, CELLS // max(len(r.weights), 1))
    values: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for weights in resample_weights(r.weights, n_boot, seed=seed, block=block):
        for name, v in _evaluate(r, weights, names).items():
            values[name].append(v)
    out: dict[str, tuple[float, float] | None] = {}
    for name in names:
        low, high = percentile_interval(np.concatenate(values[name]), confidence=confidence)
        out[name] = None if np.isnan(low) else (float(low), float(high))
    return out


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
    return bootstrap_intervals(r, [name], n_boot=n_boot, seed=seed, confidence=confidence)[name]


def signed_strength(choice: str, strength: int | None) -> int | None:
    """A judgment on the signed scale: +s for "a", -s for "b", 0 for a tie; both-bad is off
    the scale. Without a strength the scale is -1 / 0 / +1."""
    s = strength or 1
    return {"a": s, "b": -s, "tie": 0}.get(choice)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _with_intervals(
    r: Ratings, names: Sequence[str], n_boot: int, seed: int
) -> dict[str, tuple[Any, Any]]:
    """(value, [low, high] or None) of each measure, rounded; one bootstrap for them all."""
    observed = _evaluate(r, r.weights[None, :], names)
    values = {name: _value(observed[name][0]) for name in names}
    defined = [name for name in names if values[name] is not None]
    cis = bootstrap_intervals(r, defined, n_boot=n_boot, seed=seed)
    out = {}
    for name in names:
        ci = cis.get(name)
        out[name] = _round(values[name]), [_round(ci[0]), _round(ci[1])] if ci else None
    return out


def agreement_report(
    choices: Units, signed: Units, *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """All agreement figures of a project with bootstrap intervals.

    `choices` holds each pair's choices (a / b / tie / both_bad, canonical by response);
    `signed` the same judgments on the signed strength scale (see signed_strength).
    """
    nominal = Ratings.of(choices)
    sizes = Counter(len(u) for u in choices if len(u) >= 2)
    raters = max(sizes, key=lambda k: (sizes[k], k)) if sizes else None
    same_size = Ratings.of([u for u in choices if len(u) == raters]) if raters else nominal
    return agreement_from_ratings(
        nominal, Ratings.of(signed), same_size, raters, n_boot=n_boot, seed=seed
    )


def agreement_from_ratings(
    nominal: Ratings,
    scale: Ratings,
    same_size: Ratings,
    raters: int | None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """agreement_report's figures from Ratings: `nominal` over the choices, `scale` over the
    signed strengths, `same_size` over the pairs with `raters` judgments (the most common
    number of two or more, the larger on a tie; None when no pair has two).

    Fleiss' kappa needs one number of judgments per pair: it is computed over the pairs that
    have the most common number (usually the project's redundancy) and says how many those are.
    """
    report: dict[str, Any] = {
        "pairs": nominal.units,
        "judgments": int((nominal.counts.sum(1) * nominal.weights).sum()),
    }
    figures = _with_intervals(nominal, ["percent", "alpha_nominal"], n_boot, seed)
    report["percent"], report["percent_ci"] = figures["percent"]
    report["krippendorff_alpha"], report["krippendorff_alpha_ci"] = figures["alpha_nominal"]
    figures = _with_intervals(scale, ["alpha_interval", "alpha_ordinal"], n_boot, seed)
    for key, name in (
        ("krippendorff_alpha_interval", "alpha_interval"),
        ("krippendorff_alpha_ordinal", "alpha_ordinal"),
    ):
        report[key], report[f"{key}_ci"] = figures[name]
    same_size = same_size if raters else nominal
    report["fleiss_kappa"], report["fleiss_kappa_ci"] = _with_intervals(
        same_size, ["fleiss"], n_boot, seed
    )["fleiss"]
    report["fleiss_kappa_pairs"] = same_size.units if raters else 0
    report["fleiss_kappa_raters"] = raters
    return report
