"""`ultrafeedback`: one row per set and rater, `{instruction, models, completions: [{model,
response, annotations: {aspect: {Rating, Rationale}}, fine-grained_score, overall_score}]}`.

A rater's ratings are the annotations (Rating as text, as UltraFeedback writes it; no
rationale), fine-grained_score their mean; a ranking is written as overall_score, the number
of groups ranked below plus one (so equal scores are a tie, as the import reads them back).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import prompt_text
from .sets import SetBundle


def records(bundle: SetBundle) -> Iterator[dict[str, Any]]:
    for judgment in bundle.judgments:
        score: dict[int, int] = {}
        for n, group in enumerate(judgment.groups or []):
            for response_id in group:
                score[response_id] = len(judgment.groups) - n
        completions = []
        for response_id in bundle.response_ids:
            rated = {a: v for (r, a), v in judgment.ratings.items() if r == response_id}
            completion: dict[str, Any] = {
                "model": bundle.model(response_id),
                "response": bundle.text(response_id),
                "annotations": {a: {"Rating": str(v), "Rationale": ""} for a, v in rated.items()},
            }
            if rated:
                completion["fine-grained_score"] = round(sum(rated.values()) / len(rated), 6)
            if response_id in score:
                completion["overall_score"] = float(score[response_id])
            completions.append(completion)
        yield {
            "source": "prefloop",
            "instruction": prompt_text(bundle.prompt),
            "models": [c["model"] for c in completions],
            "completions": completions,
            "annotator": judgment.rater,
            "set_id": bundle.set_id,
            "split": bundle.split,
        }
