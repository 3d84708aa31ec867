"""How unsure the reward model is about a pair: the entropy of sigma(delta) for one model, the
spread of delta across an ensemble's members. Plain functions, read by active learning."""

from __future__ import annotations

import math
from collections.abc import Sequence


def sigmoid(x: float) -> float:
    # Not scipy.special.expit (which evaluation.py uses on arrays): this scalar one runs in the
    # web process (services.pairs), where importing scipy.special alone takes about a second.
    # Split by sign so that exp never overflows.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def binary_entropy(p: float) -> float:
    """In bits: 1.0 at p = 0.5, 0.0 when the model is certain."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def delta_entropy(delta: float) -> float:
    """The binary entropy of sigma(delta), delta = r_a - r_b: largest for a pair the model
    cannot tell apart."""
    return binary_entropy(sigmoid(delta))


def ensemble_spread(deltas: Sequence[float]) -> float:
    """The standard deviation of delta across members (population form: K is all there is).

    Entropy alone cannot tell "the responses are equally good" from "the model does not know";
    members trained from different seeds disagree only on the second.
    """
    if not deltas:
        raise ValueError("an ensemble needs at least one member")
    mean = sum(deltas) / len(deltas)
    return math.sqrt(sum((d - mean) ** 2 for d in deltas) / len(deltas))


def pair_view(deltas: Sequence[float]) -> tuple[float, float]:
    """(P(A better), uncertainty) of a pair from each member's delta = r_a - r_b.

    One member: sigma(delta) and its entropy. Several: the members' mean probability, and the
    spread of their deltas.
    """
    if len(deltas) == 1:
        p = sigmoid(deltas[0])
        return p, binary_entropy(p)
    p = sum(sigmoid(d) for d in deltas) / len(deltas)
    return p, ensemble_spread(deltas)
