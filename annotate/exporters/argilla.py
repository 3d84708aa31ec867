"""`argilla`: one Argilla (1.x FeedbackRecord) record per set: `fields` {prompt, response-1,
...}, and per rater a response answering the RankingQuestion `ranking` with `[{rank, value}]`
(tied responses share a rank). A ranking marked all bad is a discarded response."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import prompt_text
from .sets import SetBundle

QUESTION = "ranking"


def records(bundle: SetBundle) -> Iterator[dict[str, Any]]:
    name = {r: f"response-{n}" for n, r in enumerate(bundle.response_ids, 1)}
    answers = []
    for judgment in bundle.judgments:
        if judgment.groups is None:
            continue
        value = [
            {"rank": rank, "value": name[r]}
            for rank, group in enumerate(judgment.groups, 1)
            for r in group
        ]
        answers.append(
            {
                "user_id": judgment.rater,
                "status": "discarded" if judgment.all_bad else "submitted",
                "values": {QUESTION: {"value": value}} if value else {},
            }
        )
    yield {
        "fields": {"prompt": prompt_text(bundle.prompt)}
        | {name[r]: bundle.text(r) for r in bundle.response_ids},
        "responses": answers,
        "metadata": {"set_id": bundle.set_id, "split": bundle.split},
        "external_id": f"set-{bundle.set_id}",
    }
