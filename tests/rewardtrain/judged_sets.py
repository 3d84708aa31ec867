"""Projects with rankings and ratings that a tiny backbone can learn from, stored through the
labeling services (lease, then submit): a response's quality is how many times it says "good"
(3, 2, 1 or 0 times), words of tests/rewardtrain/tiny.py's vocabulary."""

from __future__ import annotations

import random
from typing import Any

from annotate.hashing import user_message
from annotate.models import Project, TaskKind
from annotate.services.rankings import project_task_set, response_set_submit, response_sets_create
from annotate.services.set_leasing import response_set_lease_next
from tests.factories import PromptFactory, ResponseFactory

# Two aspects: HelpSteer2's helpfulness (its default weight) and one with its own weight.
ASPECTS = [
    {"name": "helpfulness", "description": "Meets the request.", "min": 0, "max": 4},
    {"name": "clarity", "description": "Easy to read.", "min": 1, "max": 5, "weight": 0.3},
]


def response_text(quality: int, k: int, i: int) -> str:
    """A response of `quality` (0 to 3): that many "good", the rest "bad"."""
    words = ["good"] * quality + ["bad"] * (3 - quality)
    return f"{' '.join(words)} w{(k + 11 * i) % 60}"


def quality_of(text: str) -> int:
    return text.split().count("good")


def add_prompts(project: Project, count: int, start: int = 0) -> None:
    """`count` prompts of four responses (qualities 3, 2, 1, 0), and their sets."""
    for k in range(start, start + count):
        prompt = PromptFactory(
            project=project, messages=user_message(f"w{k % 60} w{(7 * k) % 60} number {k}")
        )
        for i, quality in enumerate((3, 2, 1, 0)):
            ResponseFactory(prompt=prompt, text=response_text(quality, k, i))
    response_sets_create(project=project)


def judge_all(project: Project, labeler, *, rank: bool, rate: bool, seed: int = 0) -> int:
    """Every set the labeler is served, judged by the planted quality: ranked best first
    (the two middle ones tied on every fifth set) and rated helpfulness = quality and
    clarity = quality + 1 (+1 more from a lenient labeler, `seed` odd). Returns how many."""
    rng = random.Random(seed)
    judged = 0
    while lease := response_set_lease_next(project=project, labeler=labeler, rng=rng):
        by_quality = sorted(lease.responses, key=lambda r: -quality_of(r.text))
        ids = [r.id for r in by_quality]
        kwargs: dict[str, Any] = {}
        if rank:
            tie = lease.set_id % 5 == 0
            kwargs["ranking"] = [ids[0], [ids[1], ids[2]], ids[3]] if tie else ids
        if rate:
            bonus = seed % 2
            kwargs["ratings"] = [
                rating
                for r in by_quality
                for rating in (
                    {"response_id": r.id, "aspect": "helpfulness", "value": quality_of(r.text)},
                    {
                        "response_id": r.id,
                        "aspect": "clarity",
                        "value": min(quality_of(r.text) + 1 + bonus, 5),
                    },
                )
            ]
        response_set_submit(labeler=labeler, set_id=lease.set_id, **kwargs)
        judged += 1
    return judged


def set_task(project: Project, task_kind: str, aspects: list[dict] | None = None) -> Project:
    return project_task_set(
        project=project, task_kind=task_kind, ranking_size=4, aspects=aspects or ASPECTS
    )


RANKING = TaskKind.RANKING
RATING = TaskKind.RATING
