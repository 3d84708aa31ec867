"""A project's rankings and ratings as training rows (rewardtrain/core/rankings.py's shapes),
split by prompt as pairs are, and the project's aspects as the trainer's TrainConfig.aspects.

What counts, as for pairs (annotate/selectors/dataset.py): people's first judgments and
imported ones, gold checks included; never swapped repeats, nor the judgments of labelers
staff excluded.
- A ranking is one row per labeler, `{"prompt", "ranking": [[best, ...], ...]}` (tie groups of
  response texts): InstructGPT trains each labeler's ranking as one batch element. A ranking
  marked all bad is left out and counted, as a pair whose votes say both bad is: the labeler
  said no response is acceptable, and an order among unacceptable responses is not what the
  reward should learn.
- Ratings are averaged per response over its raters, aspect by aspect, into one row
  `{"prompt", "response", "ratings": {aspect: mean}}`: the squared error's minimiser is the
  mean anyway, a response rated by three people is then forwarded once per epoch rather than
  three times, and held-out RMSE is measured against the raters' consensus rather than one
  rater's noise. A rating on an aspect the project no longer has, or off its current scale,
  is left out and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from annotate.models import Project, Prompt
from annotate.selectors.rankings import (
    StoredRanking,
    StoredRating,
    rankings_of_project,
    ratings_of_project,
)
from annotate.splits import SPLITS, split_of
from rewardtrain.core.aspects import HELPSTEER2_ASPECTS
from rewardtrain.core.config import ConfigError

DEFAULT_WEIGHTS = {a["name"]: a["weight"] for a in HELPSTEER2_ASPECTS}


@dataclass
class SetStats:
    """Counts of what the rankings and ratings gave, and what was left out."""

    rankings: int = 0
    all_bad: int = 0
    rated_responses: int = 0
    ratings: int = 0
    ratings_left_out: int = 0
    by_split: dict[str, dict[str, int]] = field(
        default_factory=lambda: {s: {"rankings": 0, "ratings": 0} for s in SPLITS}
    )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rankings": self.rankings,
            "all_bad": self.all_bad,
            "rated_responses": self.rated_responses,
            "ratings": self.ratings,
            "ratings_left_out": self.ratings_left_out,
            "counts": {s: dict(v) for s, v in self.by_split.items()},
        }


def _counted(judgment: StoredRanking | StoredRating) -> bool:
    return not judgment.is_repeat and not judgment.excluded


def _prompt_keys(prompt_ids: Iterable[int]) -> dict[int, str]:
    ids = set(prompt_ids)
    return dict(Prompt.objects.filter(pk__in=ids).values_list("pk", "content_hash"))


def ranking_rows(*, project: Project, stats: SetStats) -> list[dict[str, Any]]:
    """One row per counted ranking (see the module docstring), oldest first, each with its
    split ("split") and prompt key ("prompt_key", what evaluation's bootstrap resamples by)."""
    kept = [r for r in rankings_of_project(project=project) if _counted(r)]
    keys = _prompt_keys(r.prompt_id for r in kept)
    rows = []
    for ranking in kept:
        if ranking.all_bad:
            stats.all_bad += 1
            continue
        split = split_of(keys[ranking.prompt_id])
        rows.append(
            {
                "prompt": ranking.messages,
                "prompt_key": keys[ranking.prompt_id],
                "prompt_id": ranking.prompt_id,
                "ranking": ranking.ordered_texts,
                "ranking_id": ranking.id,
                "set_id": ranking.set_id,
                "source": ranking.source,
                "split": split,
            }
        )
        stats.rankings += 1
        stats.by_split[split]["rankings"] += 1
    return rows


def rating_rows(*, project: Project, stats: SetStats) -> list[dict[str, Any]]:
    """One row per rated response, its counted ratings averaged per aspect (see the module
    docstring), in response-id order."""
    scales = {str(a["name"]): (a["min"], a["max"]) for a in project.aspects or []}
    by_response: dict[int, dict[str, Any]] = {}
    for rating in ratings_of_project(project=project):
        if not _counted(rating):
            continue
        scale = scales.get(rating.aspect)
        if scale is None or not scale[0] <= rating.value <= scale[1]:
            stats.ratings_left_out += 1
            continue
        entry = by_response.setdefault(
            rating.response_id,
            {"rating": rating, "values": {}, "raters": set()},
        )
        entry["values"].setdefault(rating.aspect, []).append(rating.value)
        entry["raters"].add(rating.labeler_id or f"import:{rating.id}")
        stats.ratings += 1
    keys = _prompt_keys(e["rating"].prompt_id for e in by_response.values())
    rows = []
    for response_id in sorted(by_response):
        entry = by_response[response_id]
        first: StoredRating = entry["rating"]
        split = split_of(keys[first.prompt_id])
        rows.append(
            {
                "prompt": first.messages,
                "prompt_key": keys[first.prompt_id],
                "prompt_id": first.prompt_id,
                "response": first.response_text,
                "response_id": response_id,
                "ratings": {
                    aspect: sum(values) / len(values) for aspect, values in entry["values"].items()
                },
                "n": max(len(v) for v in entry["values"].values()),
                "split": split,
            }
        )
        stats.rated_responses += 1
        stats.by_split[split]["ratings"] += 1
    return rows


def aspect_specs(*, project: Project) -> list[dict[str, Any]]:
    """The project's aspects as TrainConfig.aspects: name, scale, description and weight (the
    project's, else HelpSteer2's published default for that name). ConfigError names an
    aspect without either."""
    specs = []
    for aspect in project.aspects or []:
        name = str(aspect["name"])
        weight = aspect.get("weight", DEFAULT_WEIGHTS.get(name))
        if weight is None:
            raise ConfigError(
                f"aspect {name!r} of project {project.slug} has no weight: the reward model's "
                "score is the weighted sum of the aspects, and only HelpSteer2's names "
                f"({', '.join(DEFAULT_WEIGHTS)}) have default weights; give it a weight in the "
                "project's aspects"
            )
        specs.append(
            {
                "name": name,
                "min": aspect["min"],
                "max": aspect["max"],
                "weight": weight,
                "description": str(aspect.get("description", "")),
            }
        )
    return specs
