"""Per-aspect ratings for a multi-objective reward head (SteerLM's regression reward model).

The model has one output per aspect, trained by mean-squared error on the normalised rating
(value - min) / (max - min), aspects a response was not rated on masked out. Its scalar reward
is sum(weight * output) over the aspects, on those normalised outputs, so aspects on different
scales weigh as their weights say. The aspects and weights are saved with the model
(prefloop.json "aspects"), and scoring returns the scalar and, when asked, each aspect back on
its own scale.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# HelpSteer2's five aspects on its 0-4 scale, with the weights NVIDIA publishes for using its
# HelpSteer2-trained Llama3-70B-SteerLM-RM as one scalar reward (its model card: 0.65, 0.8,
# 0.45, 0.55, -0.4; Nemotron-4-340B-Reward's card gives 0.3, 0.74, 0.46, 0.47, -0.33). Both
# published sets weigh correctness most, then helpfulness, and verbosity negatively.
HELPSTEER2_ASPECTS: list[dict[str, Any]] = [
    {
        "name": "helpfulness",
        "min": 0,
        "max": 4,
        "weight": 0.65,
        "description": "Overall helpfulness of the response to the prompt.",
    },
    {
        "name": "correctness",
        "min": 0,
        "max": 4,
        "weight": 0.8,
        "description": "Inclusion of all pertinent facts without errors.",
    },
    {
        "name": "coherence",
        "min": 0,
        "max": 4,
        "weight": 0.45,
        "description": "Consistency and clarity of expression.",
    },
    {
        "name": "complexity",
        "min": 0,
        "max": 4,
        "weight": 0.55,
        "description": "Intellectual depth required to write the response.",
    },
    {
        "name": "verbosity",
        "min": 0,
        "max": 4,
        "weight": -0.4,
        "description": "Amount of detail relative to what the prompt asks for.",
    },
]


class RatingError(ValueError):
    """A rating on an aspect the model does not have, or outside the aspect's scale."""


@dataclass(frozen=True)
class Aspect:
    name: str
    min: float
    max: float
    weight: float
    description: str = ""

    def normalise(self, value: float) -> float:
        return (value - self.min) / (self.max - self.min)

    def on_scale(self, normalised: float) -> float:
        return self.min + normalised * (self.max - self.min)


def parse_aspects(specs: list[dict[str, Any]]) -> list[Aspect]:
    """Aspects from their dicts ({"name", "min", "max", "weight", "description"?}), or
    ValueError naming the problem: names unique and non-empty, min < max, numbers finite."""
    aspects, seen = [], set()
    for spec in specs:
        if not isinstance(spec, dict) or not spec.get("name"):
            raise ValueError(f"an aspect is a dict with a name, min, max and weight: {spec!r}")
        unknown = sorted(set(spec) - {"name", "min", "max", "weight", "description"})
        if unknown:
            raise ValueError(f"aspect {spec['name']!r}: unknown key(s) {', '.join(unknown)}")
        try:
            low, high, weight = (float(spec[k]) for k in ("min", "max", "weight"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"aspect {spec['name']!r} needs numbers min, max and weight") from exc
        if not all(math.isfinite(v) for v in (low, high, weight)) or low >= high:
            raise ValueError(f"aspect {spec['name']!r}: min must be below max, all finite")
        if spec["name"] in seen:
            raise ValueError(f"aspect {spec['name']!r} is named twice")
        seen.add(spec["name"])
        aspects.append(
            Aspect(str(spec["name"]), low, high, weight, str(spec.get("description", "")))
        )
    return aspects


def aspect_dicts(aspects: list[Aspect]) -> list[dict[str, Any]]:
    return [asdict(a) for a in aspects]


def rating_targets(ratings: dict[str, Any], aspects: list[Aspect]) -> list[float]:
    """The normalised targets of one response's ratings in the aspects' order, NaN where it
    was not rated; RatingError for an unknown aspect or a value outside its scale."""
    if not aspects:
        raise RatingError("rating rows need the model's aspects (TrainConfig.aspects)")
    by_name = {a.name: a for a in aspects}
    unknown = sorted(set(ratings) - set(by_name))
    if unknown:
        raise RatingError(f"no aspect named {unknown[0]!r} (aspects: {', '.join(by_name)})")
    out = []
    for aspect in aspects:
        value = ratings.get(aspect.name)
        if value is None:
            out.append(math.nan)
            continue
        value = float(value)
        if not aspect.min <= value <= aspect.max:
            raise RatingError(
                f"{aspect.name} rating {value:g} is outside its scale "
                f"{aspect.min:g}..{aspect.max:g}"
            )
        out.append(aspect.normalise(value))
    if all(math.isnan(v) for v in out):
        raise RatingError("a rating row rates no aspect")
    return out


def scalar_reward(outputs: list[float], aspects: list[Aspect]) -> float:
    """The scalar reward of one response from its normalised aspect outputs."""
    return float(sum(a.weight * v for a, v in zip(aspects, outputs, strict=True)))


def evaluate_ratings(
    rows: list[dict[str, Any]], outputs: list[list[float]], aspects: list[Aspect]
) -> dict[str, Any]:
    """Per aspect, over the responses rated on it: RMSE on the aspect's own scale and
    Spearman's rho between prediction and rating. `outputs` are the model's normalised
    outputs for each row's response."""
    from rewardtrain.core.evaluation import spearman

    if len(rows) != len(outputs):
        raise ValueError("rows and outputs differ in length")
    out: dict[str, Any] = {}
    for k, aspect in enumerate(aspects):
        rated = [
            (float(row["ratings"][aspect.name]), aspect.on_scale(o[k]))
            for row, o in zip(rows, outputs, strict=True)
            if row["ratings"].get(aspect.name) is not None
        ]
        truth = np.array([t for t, _ in rated], dtype=float)
        predicted = np.array([p for _, p in rated], dtype=float)
        out[aspect.name] = {
            "count": len(rated),
            "rmse": float(np.sqrt(((truth - predicted) ** 2).mean())) if rated else None,
            "spearman": spearman(predicted, truth),
        }
    return out
