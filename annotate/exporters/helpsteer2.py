"""`helpsteer2`: one row per rated response and rater, `{prompt, response, <aspect>: value}`
(HelpSteer2's columns when the project's aspects are its five). A set's rows come one after
another, which is how the import makes them one set again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import prompt_text
from .sets import SetBundle


def records(bundle: SetBundle) -> Iterator[dict[str, Any]]:
    prompt = prompt_text(bundle.prompt)
    for judgment in bundle.judgments:
        for response_id in bundle.response_ids:
            rated = {a: v for (r, a), v in judgment.ratings.items() if r == response_id}
            if rated:
                # Only text columns beside the ratings: the import reads every whole-number
                # column as an aspect.
                yield {
                    "prompt": prompt,
                    "response": bundle.text(response_id),
                    **rated,
                    "annotator": judgment.rater,
                    "split": bundle.split,
                }
