"""The percentile bootstrap behind every interval the app reports: agreement measures, the
model leaderboard's ratings, and the reward model's evaluation metrics. Plain numpy (the reward
model's core, which never imports Django, uses it too).

Items are resampled through their counts: a resample is one multinomial draw of how many times
each distinct item (a rating pattern, a battle type, a prompt) is drawn when all of them are
drawn again with replacement, which costs the same for any number of repeated items.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np

# Resamples drawn per block: bounds the memory of a resample matrix over many items.
BLOCK = 200


def resample_weights(
    counts: np.ndarray, n_boot: int, *, seed: int, block: int = BLOCK
) -> Iterator[np.ndarray]:
    """Blocks of at most `block` rows, `n_boot` rows in all: row b holds how many times each
    item is drawn in resample b (items occurring `counts` times each)."""
    counts = np.asarray(counts, dtype=float)
    total = int(counts.sum())
    if n_boot < 1 or total < 1:
        return
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, block):
        yield rng.multinomial(total, counts / total, size=min(block, n_boot - start)).astype(float)


def percentile_interval(
    values: np.ndarray, *, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval of resampled values along their first axis (one interval per
    column of a 2-D array); resamples where a value is undefined (NaN, inf) are left out."""
    values = np.asarray(values, dtype=float)
    tail = (1 - confidence) / 2 * 100
    masked = np.where(np.isfinite(values), values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column with no defined value: NaN
        low, high = np.nanpercentile(masked, [tail, 100 - tail], axis=0)
    return low, high
