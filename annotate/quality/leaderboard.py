"""Leaderboard of source models, arena style: Bradley-Terry ratings from the human comparisons,
bootstrap 95% intervals, and the win-rate matrix.

A battle is one comparison of two responses from different source models. Ties and both-bad
count as half a win for each side, as in Chatbot Arena's leaderboard.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from annotate.bootstrap import percentile_interval, resample_weights

# Elo-like display scale of Chatbot Arena: 400 points for a 10:1 odds ratio, centred on 1000.
SCALE, BASE, INIT = 400.0, 10.0, 1000.0
# A weak Gaussian prior on log-strengths (standard deviation 10) keeps ratings finite when a
# model won or lost every battle; with a few dozen battles or more it moves a rating by under
# 1 point.
L2 = 0.01
ITERATIONS = 50

Battle = tuple[str, str, str]  # (model of response_a, model of response_b, choice)


def _fit(n: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Maximum a posteriori log-strengths for a batch of B replicates by Newton's method.

    n[b, i, j]: battles between i and j; s[b, i, j]: i's score against j (wins + ties / 2).
    """
    b, k, _ = n.shape
    theta = np.zeros((b, k))
    eye = np.eye(k)
    for _ in range(ITERATIONS):
        p = 1.0 / (1.0 + np.exp(-(theta[:, :, None] - theta[:, None, :])))
        grad = (s - n * p).sum(2) - L2 * theta
        curvature = n * p * (1.0 - p)
        hessian = curvature - eye * (curvature.sum(2)[:, :, None] + L2)
        step = np.linalg.solve(hessian, grad[:, :, None])[:, :, 0]
        theta -= step
        if np.abs(step).max() < 1e-9:
            break
    return theta


def _to_rating(theta: np.ndarray) -> np.ndarray:
    centred = theta - theta.mean(axis=-1, keepdims=True)
    return INIT + SCALE / math.log(BASE) * centred


def leaderboard(battles: Iterable[Battle], *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Ratings with 95% intervals, ranked, plus win rates and battle counts between models.

    Battles with a missing model name or the same model on both sides are left out.
    """
    types: Counter[tuple[str, str, float]] = Counter()
    for model_a, model_b, choice in battles:
        key = battle_type(model_a, model_b, choice)
        if key is not None:
            types[key] += 1
    return leaderboard_of_types(types, n_boot=n_boot, seed=seed)


def battle_type(model_a: str, model_b: str, choice: str) -> tuple[str, str, float] | None:
    """(first model, second model in name order, the first's score), or None when the battle
    does not count (a model unnamed, or the same on both sides)."""
    if not model_a or not model_b or model_a == model_b:
        return None
    score = {"a": 1.0, "b": 0.0}.get(choice, 0.5)
    if model_b < model_a:
        return model_b, model_a, 1.0 - score
    return model_a, model_b, score


def leaderboard_of_types(
    types: Mapping[tuple[str, str, float], int], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """leaderboard's answer from battle counts by type (see battle_type), in the order the
    types first occurred (the bootstrap resamples them in that order)."""
    models = sorted({m for a, b, _ in types for m in (a, b)})
    if len(models) < 2:
        return {"models": [], "names": models, "win_rate": [], "battle_counts": [], "battles": 0}
    index = {m: i for i, m in enumerate(models)}
    keys = list(types)
    counts = np.array([types[key] for key in keys], dtype=float)
    rows = np.array([index[a] for a, _, _ in keys])
    cols = np.array([index[b] for _, b, _ in keys])
    scores = np.array([score for _, _, score in keys])

    def matrices(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reps = len(weights)
        n = np.zeros((reps, len(models), len(models)))
        s = np.zeros_like(n)
        np.add.at(n, (slice(None), rows, cols), weights)
        np.add.at(s, (slice(None), rows, cols), weights * scores)
        np.add.at(s, (slice(None), cols, rows), weights * (1.0 - scores))
        return n + n.transpose(0, 2, 1), s

    n, s = matrices(counts[None, :])
    rating = _to_rating(_fit(n, s))[0]
    total = int(counts.sum())
    low = high = np.full(len(models), np.nan)
    if n_boot > 0:
        boot = [_to_rating(_fit(*matrices(w))) for w in resample_weights(counts, n_boot, seed=seed)]
        low, high = percentile_interval(np.concatenate(boot))

    battles_of = n[0].sum(1)
    order = sorted(range(len(models)), key=lambda i: -rating[i])
    ranked = [
        {
            "rank": position + 1,
            "model": models[i],
            "rating": round(float(rating[i]), 1),
            "ci_low": None if np.isnan(low[i]) else round(float(low[i]), 1),
            "ci_high": None if np.isnan(high[i]) else round(float(high[i]), 1),
            "battles": int(battles_of[i]),
        }
        for position, i in enumerate(order)
    ]
    names = [models[i] for i in order]
    win = [
        [round(float(s[0, i, j] / n[0, i, j]), 4) if n[0, i, j] else None for j in order]
        for i in order
    ]
    count_matrix = [[int(n[0, i, j]) for j in order] for i in order]
    return {
        "models": ranked,
        "names": names,
        "win_rate": win,
        "battle_counts": count_matrix,
        "battles": total,
    }
