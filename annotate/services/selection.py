"""Active learning's selection rules: which queue a lease reads (the model's most uncertain
Pairs first, or the random share), and which extra pairings of a Prompt with many candidate
Responses are worth creating once a reward model can rank them."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Protocol

from django.db.models import Count

from annotate.models import Pair, Project, Prompt, Response, Selection
from annotate.services.catalog import pair_get_or_create

# Both orders read one partial index of open Pairs (Pair.Meta.indexes): `pair_queue` by
# priority, which rescoring sets to the active model's uncertainty, and `pair_queue_random`
# by a fixed uniform draw, so that the first eligible Pair is a uniform sample.
PRIORITY_ORDER = ("-priority", "id")
# No tie-break by id: two equal float draws almost never happen, and without it PostgreSQL
# walks the index itself instead of an incremental sort above it.
RANDOM_ORDER = ("random_key",)

# From 6 candidates on, the importer pairs a ring instead of every pairing (its cap is 10
# pairs, annotate/importers/candidates.py): that ring covers each Response, and the model's
# ranking adds the pairings worth a label.
MANY_CANDIDATES = 6
# Responses scored per scorer call while ranking candidates.
RANK_CHUNK = 512


class Scorer(Protocol):
    def score(self, prompts: list[Any], responses: list[str]) -> list[float]: ...


def queue_order(*, project: Project, rng: random.Random | None = None) -> tuple[str, ...]:
    """The order one lease reads the queue in: by uncertainty, at random, or (mixed) at random
    with probability `project.random_share`, one draw per lease, so the labeled data stays
    representative of the whole pool."""
    if project.selection == Selection.RANDOM:
        return RANDOM_ORDER
    if project.selection == Selection.UNCERTAINTY:
        return PRIORITY_ORDER
    draw = (rng or random).random()
    return RANDOM_ORDER if draw < project.random_share else PRIORITY_ORDER


def reward_neighbours(rewards: Mapping[int, float]) -> list[tuple[int, int]]:
    """Pairs (smaller id, larger id) of Responses next to each other in reward order: the
    pairings the model is least sure of, and a chain through every Response."""
    ranked = sorted(rewards, key=lambda response_id: (rewards[response_id], response_id))
    return [(min(a, b), max(a, b)) for a, b in zip(ranked, ranked[1:], strict=False)]


def _many_candidate_prompts(project: Project) -> list[Prompt]:
    return list(
        Prompt.objects.filter(project=project)
        .annotate(n=Count("responses"))
        .filter(n__gte=MANY_CANDIDATES)
        .only("id", "messages")
        .order_by("id")
    )


def _rank_responses(
    prompts: list[Prompt], scorer: Scorer
) -> dict[int, tuple[Prompt, dict[int, float]]]:
    by_prompt = {p.pk: p for p in prompts}
    responses = list(
        Response.objects.filter(prompt_id__in=by_prompt).only("id", "prompt_id", "text")
    )
    rewards: dict[int, tuple[Prompt, dict[int, float]]] = {p.pk: (p, {}) for p in prompts}
    for start in range(0, len(responses), RANK_CHUNK):
        chunk = responses[start : start + RANK_CHUNK]
        values = scorer.score(
            [by_prompt[r.prompt_id].messages for r in chunk], [r.text for r in chunk]
        )
        for response, value in zip(chunk, values, strict=True):
            rewards[response.prompt_id][1][response.pk] = value
    return rewards


def pairs_add_by_reward(*, project: Project, scorer: Scorer) -> int:
    """For each Prompt with MANY_CANDIDATES or more Responses, create the missing Pairs of
    Responses adjacent in the model's reward order; returns how many were created.

    Every pairing of n candidates is n(n-1)/2 labels; the neighbours are n-1 of them, the
    closest calls, and together they still rank every Response. Rescoring then gives each new
    Pair its priority like any other open Pair.
    """
    created = 0
    prompts = _many_candidate_prompts(project)
    for start in range(0, len(prompts), RANK_CHUNK // MANY_CANDIDATES):
        ranked = _rank_responses(prompts[start : start + RANK_CHUNK // MANY_CANDIDATES], scorer)
        for prompt, rewards in ranked.values():
            wanted = reward_neighbours(rewards)
            existing = set(
                Pair.objects.filter(prompt=prompt).values_list("response_a_id", "response_b_id")
            )
            missing = [ids for ids in wanted if ids not in existing]
            if not missing:
                continue
            responses = Response.objects.in_bulk([i for ids in missing for i in ids])
            for a, b in missing:
                _, was_created, _ = pair_get_or_create(
                    project=project,
                    prompt=prompt,
                    first=responses[a],
                    second=responses[b],
                    added_by_model=True,
                )
                created += was_created
    return created
