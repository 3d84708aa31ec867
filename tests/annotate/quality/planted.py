"""A planted crowd: honest labelers with known accuracy and careless ones (always the left
response, coin flips, always the longer response), each pair judged by three of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CARELESS = ("always_left", "coin_flip", "always_longer")


@dataclass
class Crowd:
    truth: np.ndarray  # per pair: True when A is better
    pair: np.ndarray  # per vote
    worker: np.ndarray
    left: np.ndarray  # per vote: True when A was shown on the left
    says_a: np.ndarray
    kinds: list[str]  # per worker: "honest" or one of CARELESS
    accuracy: np.ndarray  # per worker: honest ones' planted accuracy, else NaN

    @property
    def careless(self) -> np.ndarray:
        return np.array([k != "honest" for k in self.kinds])


def planted_crowd(
    seed: int = 0, n_pairs: int = 600, honest: int = 12, per_kind: int = 2, redundancy: int = 3
) -> Crowd:
    rng = np.random.default_rng(seed)
    kinds = ["honest"] * honest + [k for k in CARELESS for _ in range(per_kind)]
    accuracy = np.array([rng.uniform(0.75, 0.9) if k == "honest" else np.nan for k in kinds])
    truth = rng.random(n_pairs) < 0.5
    # Which response is longer has nothing to do with which is better here.
    a_longer = rng.random(n_pairs) < 0.5
    pairs, workers = [], []
    for i in range(n_pairs):
        for w in rng.choice(len(kinds), redundancy, replace=False):
            pairs.append(i)
            workers.append(w)
    pair, worker = np.array(pairs), np.array(workers)
    left = rng.random(len(pair)) < 0.5
    says_a = np.empty(len(pair), dtype=bool)
    for v, (i, w) in enumerate(zip(pair, worker, strict=True)):
        kind = kinds[w]
        if kind == "honest":
            right = rng.random() < accuracy[w]
            says_a[v] = truth[i] if right else not truth[i]
        elif kind == "always_left":
            says_a[v] = left[v]
        elif kind == "coin_flip":
            says_a[v] = rng.random() < 0.5
        else:
            says_a[v] = a_longer[i]
    return Crowd(truth, pair, worker, left, says_a, kinds, accuracy)
