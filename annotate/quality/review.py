"""The review rule: which pairs staff should look at, and why.

A pair is listed when its labelers split (no outcome holds more than a set share of the votes)
or when the active reward model confidently contradicts the human majority. Under a
labeler-reliability aggregation (annotate.quality.aggregation) the pair's posterior takes the
votes' place for its A/B votes: "split" means the posterior favours neither response by more
than a set probability, and the human side the model contradicts is the posterior's.
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
    posterior_p_a: float | None = None,
    posterior_max: float = 0.75,
) -> list[str]:
    """Why a pair belongs in the review queue (empty: it does not).

    split: two or more votes and the most voted outcome holds at most `split_max_agreement`
    of them (the default 0.5 lists 1-1, 2-2 and 1-1-1, not 2-1).
    model_disagrees: the human majority is A (or B) and the model gives the other response
    a probability of at least `model_p_min`.
    With `posterior_p_a` (the aggregation's P(A better), given for pairs with A/B votes under
    a reliability model): split when two or more votes leave max(P, 1 - P) at most
    `posterior_max`, and the human side is the response the posterior favours.
    """
    reasons = []
    n = sum(counts.values())
    if posterior_p_a is None:
        split = n >= 2 and max(counts.values()) / n <= split_max_agreement
        top = majority(counts)
    else:
        split = n >= 2 and max(posterior_p_a, 1.0 - posterior_p_a) <= posterior_max
        top = "a" if posterior_p_a > 0.5 else "b" if posterior_p_a < 0.5 else None
    if split:
        reasons.append(SPLIT)
    if model_p_a is not None and (
        (top == "a" and 1.0 - model_p_a >= model_p_min) or (top == "b" and model_p_a >= model_p_min)
    ):
        reasons.append(MODEL)
    return reasons


def review_queue(
    pairs: Iterable[tuple],
    *,
    split_max_agreement: float = 0.5,
    model_p_min: float = 0.9,
    posterior_max: float = 0.75,
) -> list[dict[str, Any]]:
    """The listed pairs from (pair id, vote counts, model P(A)[, aggregation posterior P(A)
    or None]), most urgent first: confident model contradictions by the model's confidence, then
    splits by their agreement (the posterior's confidence where there is one)."""
    items = []
    for pair_id, counts, model_p_a, *posterior in pairs:
        posterior_p_a = posterior[0] if posterior else None
        reasons = review_reasons(
            counts,
            model_p_a,
            split_max_agreement=split_max_agreement,
            model_p_min=model_p_min,
            posterior_p_a=posterior_p_a,
            posterior_max=posterior_max,
        )
        if not reasons:
            continue
        n = sum(counts.values())
        agreement = max(counts.values()) / n if n else None
        if posterior_p_a is not None:
            agreement = max(posterior_p_a, 1.0 - posterior_p_a)
        items.append(
            {
                "pair_id": pair_id,
                "reasons": reasons,
                "counts": dict(counts),
                "majority": majority(counts),
                "agreement": agreement,
                "posterior_p_a": posterior_p_a,
                "model_p_a": model_p_a,
            }
        )

    def urgency(item: dict[str, Any]) -> tuple:
        p = item["model_p_a"]
        confidence = max(p, 1.0 - p) if MODEL in item["reasons"] else 0.0
        return (-confidence, item["agreement"] or 0.0, item["pair_id"])

    return sorted(items, key=urgency)
