"""The review rule: which pairs staff should look at, and why.

A pair is listed when its labelers split (no outcome holds more than a set share of the votes)
or when the active reward model confidently contradicts the human majority.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SPLIT = "split"
MODEL = "model_disagrees"


def majority(counts: Mapping[str, int]) -> str | None:
    """The outcome with strictly the most votes; None when there are none or the top is shared."""
    ranked = sorted(((v, k) for k, v in counts.items() if v > 0), reverse=True)
    if not ranked or (len(ranked) > 1 and ranked[0][0] == ranked[1][0]):
        return None
    return ranked[0][1]


def review_reasons(
    counts: Mapping[str, int],
    model_p_a: float | None,
    *,
    split_max_agreement: float = 0.5,
    model_p_min: float = 0.9,
) -> list[str]:
    """Why a pair belongs in the review queue (empty: it does not).

    split: two or more votes and the most voted outcome holds at most `split_max_agreement`
    of them (the default 0.5 lists 1-1, 2-2 and 1-1-1, not 2-1).
    model_disagrees: the human majority is A (or B) and the model gives the other response
    a probability of at least `model_p_min`.
    """
    reasons = []
    n = sum(counts.values())
    if n >= 2 and max(counts.values()) / n <= split_max_agreement:
        reasons.append(SPLIT)
    top = majority(counts)
    if model_p_a is not None and (
        (top == "a" and 1.0 - model_p_a >= model_p_min) or (top == "b" and model_p_a >= model_p_min)
    ):
        reasons.append(MODEL)
    return reasons


def review_queue(
    pairs: Iterable[tuple[int, Mapping[str, int], float | None]],
    *,
    split_max_agreement: float = 0.5,
    model_p_min: float = 0.9,
) -> list[dict[str, Any]]:
    """The listed pairs from (pair id, vote counts, model P(A)), most urgent first: confident
    model contradictions by the model's confidence, then splits by their agreement."""
    items = []
    for pair_id, counts, model_p_a in pairs:
        reasons = review_reasons(
            counts, model_p_a, split_max_agreement=split_max_agreement, model_p_min=model_p_min
        )
        if not reasons:
            continue
        n = sum(counts.values())
        items.append(
            {
                "pair_id": pair_id,
                "reasons": reasons,
                "counts": dict(counts),
                "majority": majority(counts),
                "agreement": max(counts.values()) / n if n else None,
                "model_p_a": model_p_a,
            }
        )

    def urgency(item: dict[str, Any]) -> tuple:
        p = item["model_p_a"]
        confidence = max(p, 1.0 - p) if MODEL in item["reasons"] else 0.0
        return (-confidence, item["agreement"] or 0.0, item["pair_id"])

    return sorted(items, key=urgency)
