"""Held-out metrics of a reward model over the whole set (never a mean of batch means).

With delta = r_chosen - r_rejected and p = sigma(delta), the probability that chosen wins:
- decided pairs (not ties) give accuracy (strict delta > 0; and with delta == 0 scored 0.5),
  log-loss -log p, Brier (1 - p)^2, ECE over folded confidence max(p, 1 - p) in 10 bins;
- tie pairs have no winner: they are reported on their own (mean |delta|, the soft-target
  loss that training used) and in the soft-label error |p - vote share|;
- bootstrap intervals resample prompts (row["prompt_key"], else the prompt text), since
  pairs of one prompt are not independent;
- lengths are in characters of the response text.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import expit

from rewardtrain.core.jsonsafe import json_safe

N_BINS = 10


def spearman(a: Any, b: Any) -> float | None:
    """Spearman's rho with average ranks for ties (scipy's); None when undefined: fewer than
    two values, or one side constant (where scipy would warn and answer NaN)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(stats.spearmanr(a, b).statistic)


def _group_key(row: dict[str, Any]) -> str:
    if row.get("prompt_key"):
        return str(row["prompt_key"])
    prompt = row.get("prompt")
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def _per_pair(delta: np.ndarray) -> dict[str, np.ndarray]:
    """Per decided pair: the values whose means are the core metrics."""
    p = expit(delta)
    return {
        "accuracy": (delta > 0).astype(float),
        "accuracy_ties_half": np.where(delta > 0, 1.0, np.where(delta == 0, 0.5, 0.0)),
        "log_loss": np.logaddexp(0.0, -delta),
        "brier": (1.0 - p) ** 2,
    }


def reliability(delta: np.ndarray) -> tuple[float | None, list[dict[str, Any]]]:
    """ECE and its table: folded confidence max(p, 1-p) in 10 equal bins over [0.5, 1]."""
    if len(delta) == 0:
        return None, []
    p = expit(delta)
    confidence = np.maximum(p, 1 - p)
    # A prediction is right when its favourite is the chosen one; delta == 0 is a coin flip.
    correct = np.where(delta > 0, 1.0, np.where(delta == 0, 0.5, 0.0))
    bins = np.minimum(((confidence - 0.5) / (0.5 / N_BINS)).astype(int), N_BINS - 1)
    table, ece = [], 0.0
    for b in range(N_BINS):
        inside = bins == b
        count = int(inside.sum())
        conf = float(confidence[inside].mean()) if count else None
        acc = float(correct[inside].mean()) if count else None
        if count:
            ece += count / len(delta) * abs(acc - conf)
        table.append(
            {
                "low": 0.5 + b * 0.05,
                "high": 0.5 + (b + 1) * 0.05,
                "count": count,
                "confidence": conf,
                "accuracy": acc,
            }
        )
    return float(ece), table


def _core(delta: np.ndarray) -> dict[str, Any]:
    if len(delta) == 0:
        return {
            "accuracy": None,
            "accuracy_ties_half": None,
            "log_loss": None,
            "brier": None,
            "ece": None,
            "mean_margin": None,
        }
    values = {k: float(v.mean()) for k, v in _per_pair(delta).items()}
    values["ece"] = reliability(delta)[0]
    values["mean_margin"] = float(delta.mean())
    return values


def _bootstrap(
    groups: np.ndarray,
    per_pair: dict[str, np.ndarray],
    n_bootstrap: int,
    seed: int,
) -> dict[str, list[float | None]]:
    """95% percentile intervals of means, resampling whole groups (prompts) with scipy's
    bootstrap; every metric is drawn from the same resamples (one seed)."""
    if n_bootstrap <= 0 or len(groups) == 0:
        return {}
    _, inverse = np.unique(groups, return_inverse=True)
    n_groups = int(inverse.max()) + 1
    counts = np.bincount(inverse, minlength=n_groups).astype(float)
    out: dict[str, list[float | None]] = {}
    for k, v in per_pair.items():
        sums = np.bincount(inverse, weights=v, minlength=n_groups)
        if n_groups < 2:
            # One prompt: every resample is that prompt (scipy wants two observations).
            value = float(sums.sum() / counts.sum())
            out[k] = [value, value]
            continue

        def mean_of_drawn(drawn: np.ndarray, axis: int = -1, sums: np.ndarray = sums) -> Any:
            drawn = drawn.astype(int)
            return sums[drawn].sum(axis=axis) / counts[drawn].sum(axis=axis)

        result = stats.bootstrap(
            (np.arange(n_groups),),
            mean_of_drawn,
            n_resamples=n_bootstrap,
            method="percentile",
            vectorized=True,
            batch=200,  # resamples per block: bounds the memory over many prompts
            rng=np.random.default_rng(seed),
        )
        interval = result.confidence_interval
        out[k] = [float(interval.low), float(interval.high)]
    return out


def _agreement_bucket(row: dict[str, Any]) -> str:
    n, agreement = row.get("n"), row.get("agreement")
    if n is None or agreement is None:
        return "unknown"
    if n == 1:
        return "single"
    if agreement >= 1:
        return "unanimous"
    if agreement > 0.5:
        return "majority"
    return "split"


def _pairwise_agreement(votes: dict[str, int]) -> float | None:
    """Share of labeler pairs that gave the same answer."""
    n = sum(votes.values())
    if n < 2:
        return None
    return sum(c * (c - 1) for c in votes.values()) / (n * (n - 1))


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _strata(rows: list[dict[str, Any]], delta: np.ndarray, key_of) -> dict[str, dict[str, Any]]:
    """Accuracy within buckets of decided rows, beside the labelers' own agreement."""
    buckets: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        buckets.setdefault(key_of(row), []).append(i)
    out = {}
    for key in sorted(buckets):
        idx = buckets[key]
        d = delta[idx]
        shares = [float(rows[i].get("p_chosen") or 1.0) for i in idx]
        pairwise = [_pairwise_agreement(rows[i]["votes"]) for i in idx if rows[i].get("votes")]
        pairwise = [p for p in pairwise if p is not None]
        out[key] = {
            "count": len(idx),
            "accuracy": float((d > 0).mean()),
            "log_loss": float(np.logaddexp(0.0, -d).mean()),
            # How often a single labeler sided with the majority: the ceiling to compare with.
            "labeler_agreement": _mean(shares),
            "labeler_pairwise_agreement": _mean(pairwise),
        }
    return out


def _strength_key(row: dict[str, Any]) -> str:
    s = row.get("strength")
    return "none" if s is None else str(int(math.floor(float(s) + 0.5)))


def _length_bias(
    rows: list[dict[str, Any]], r_c: np.ndarray, r_r: np.ndarray, decided: np.ndarray
) -> dict[str, Any]:
    len_c = np.array([len(r["chosen"]) for r in rows], dtype=float)
    len_r = np.array([len(r["rejected"]) for r in rows], dtype=float)
    delta = r_c - r_r
    unequal = decided & (len_c != len_r)
    chosen_longer = unequal & (len_c > len_r)
    chosen_shorter = unequal & (len_c < len_r)
    longer_reward = np.where(len_c > len_r, r_c, r_r)
    shorter_reward = np.where(len_c > len_r, r_r, r_c)

    def acc(mask: np.ndarray) -> float | None:
        return float((delta[mask] > 0).mean()) if mask.any() else None

    return {
        "spearman_reward_length": spearman(
            np.concatenate([r_c, r_r]), np.concatenate([len_c, len_r])
        ),
        "spearman_margin_length_difference": spearman(delta[decided], (len_c - len_r)[decided]),
        "accuracy_chosen_longer": acc(chosen_longer),
        "count_chosen_longer": int(chosen_longer.sum()),
        "accuracy_chosen_shorter": acc(chosen_shorter),
        "count_chosen_shorter": int(chosen_shorter.sum()),
        "count_equal_length": int((decided & (len_c == len_r)).sum()),
        "model_prefers_longer_rate": (
            float((longer_reward[unequal] > shorter_reward[unequal]).mean())
            if unequal.any()
            else None
        ),
        "labelers_prefer_longer_rate": float(chosen_longer[unequal].mean())
        if unequal.any()
        else None,
    }


def _reward_stats(values: np.ndarray) -> dict[str, float | None]:
    if len(values) == 0:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def evaluate(
    rows: list[dict[str, Any]],
    r_chosen: list[float],
    r_rejected: list[float],
    *,
    baseline: tuple[list[float], list[float]] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """All held-out metrics for rewards of each row's chosen and rejected response.

    `baseline` is the active model's (r_chosen, r_rejected) on the same rows: both are then
    scored, with the flip rate between their decisions and the accuracy difference's interval.
    """
    if not (len(rows) == len(r_chosen) == len(r_rejected)):
        raise ValueError("rows and rewards differ in length")
    r_c = np.asarray(r_chosen, dtype=float)
    r_r = np.asarray(r_rejected, dtype=float)
    delta = r_c - r_r
    ties = np.array([bool(r.get("tie")) for r in rows], dtype=bool)
    decided = ~ties
    decided_rows = [r for r, t in zip(rows, ties, strict=True) if not t]
    d = delta[decided]
    groups = np.array([_group_key(r) for r in decided_rows], dtype=object).astype(str)

    per_pair = _per_pair(d)
    result: dict[str, Any] = {
        "n": len(rows),
        "n_decided": int(decided.sum()),
        "n_ties": int(ties.sum()),
    }
    result.update(_core(d))
    result["reliability"] = reliability(d)[1]
    result["soft_label_mae"] = _soft_label_mae(rows, delta)
    if baseline is not None:
        result.update(_against_baseline(rows, delta, decided, baseline, per_pair))
    result["ci"] = _bootstrap(groups, per_pair, n_bootstrap, seed)
    result["n_prompts"] = len(set(groups.tolist()))
    result["rewards"] = {"chosen": _reward_stats(r_c), "rejected": _reward_stats(r_r)}
    result["by_agreement"] = _strata(decided_rows, d, _agreement_bucket)
    result["by_strength"] = _strata(decided_rows, d, _strength_key)
    result["labelers"] = _labelers(rows)
    result["length"] = _length_bias(rows, r_c, r_r, decided)
    result["ties"] = _ties(delta[ties], d)
    return json_safe(result)


def _soft_label_mae(rows: list[dict[str, Any]], delta: np.ndarray) -> float | None:
    """Mean |sigma(delta) - the chosen response's vote share| (0.5 for a tie), over all rows."""
    if not rows:
        return None
    shares = [
        0.5 if r.get("tie") else float(r["p_chosen"] if r.get("p_chosen") is not None else 1.0)
        for r in rows
    ]
    return float(np.mean([abs(expit(delta[i]) - s) for i, s in enumerate(shares)]))


def _against_baseline(
    rows: list[dict[str, Any]],
    delta: np.ndarray,
    decided: np.ndarray,
    baseline: tuple[list[float], list[float]],
    per_pair: dict[str, np.ndarray],
) -> dict[str, Any]:
    """The active model's metrics on the same rows and the comparison; adds the per-pair
    differences to `per_pair` (their intervals come from the same bootstrap)."""
    b_c = np.asarray(baseline[0], dtype=float)
    b_r = np.asarray(baseline[1], dtype=float)
    if len(b_c) != len(rows) or len(b_r) != len(rows):
        raise ValueError("baseline rewards differ in length from rows")
    b_d = (b_c - b_r)[decided]
    per_pair["accuracy_diff"] = per_pair["accuracy"] - _per_pair(b_d)["accuracy"]
    per_pair["log_loss_diff"] = per_pair["log_loss"] - _per_pair(b_d)["log_loss"]
    core = _core(b_d)
    core["reliability"] = reliability(b_d)[1]
    return {
        "baseline": core,
        # The share of all rows (ties included) where the two models pick different winners.
        "flip_rate": float(((delta > 0) != ((b_c - b_r) > 0)).mean()) if len(rows) else None,
        "spearman_with_baseline": spearman(delta, b_c - b_r),
        "accuracy_diff": float(per_pair["accuracy_diff"].mean()) if decided.any() else None,
    }


def _labelers(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The labelers' own agreement on pairs with several votes: the ceiling to compare with."""
    several = [r for r in rows if (r.get("n") or 0) >= 2]
    pairwise = [_pairwise_agreement(r["votes"]) for r in several if r.get("votes")]
    return {
        "pairs_with_several_votes": len(several),
        "majority_agreement": _mean(
            [0.5 if r.get("tie") else float(r.get("p_chosen") or 1.0) for r in several]
        ),
        "pairwise_agreement": _mean([p for p in pairwise if p is not None]),
    }


def _ties(t: np.ndarray, d: np.ndarray) -> dict[str, Any]:
    """Tie pairs on their own (`t`, their deltas) beside the decided ones (`d`)."""
    return {
        "count": len(t),
        "mean_abs_margin": float(np.abs(t).mean()) if len(t) else None,
        "mean_abs_margin_decided": float(np.abs(d).mean()) if len(d) else None,
        "soft_target_loss": (
            float((0.5 * np.logaddexp(0.0, -t) + 0.5 * np.logaddexp(0.0, t)).mean())
            if len(t)
            else None
        ),
    }


def promotion_decision(
    new: dict[str, Any], active: dict[str, Any] | None, *, accuracy_tolerance: float = 0.01
) -> tuple[bool, str]:
    """Promote when there is no active model, or the new one's accuracy is within the
    tolerance of the active one's (or better) and its log-loss is lower, on the same rows."""
    if active is None:
        return True, "no active model yet"
    acc, old_acc = new.get("accuracy"), active.get("accuracy")
    loss, old_loss = new.get("log_loss"), active.get("log_loss")
    if None in (acc, old_acc, loss, old_loss):
        return False, "not promoted: metrics missing (empty test split?)"
    accuracy_ok = acc >= old_acc - accuracy_tolerance
    loss_ok = loss < old_loss
    summary = (
        f"accuracy {acc:.4f} vs active {old_acc:.4f} (tolerance {accuracy_tolerance:g}), "
        f"log-loss {loss:.4f} vs active {old_loss:.4f}"
    )
    if accuracy_ok and loss_ok:
        return True, f"promoted: {summary}"
    why = []
    if not accuracy_ok:
        why.append("accuracy below the active model's beyond the tolerance")
    if not loss_ok:
        why.append("log-loss not lower")
    return False, f"not promoted ({'; '.join(why)}): {summary}"
