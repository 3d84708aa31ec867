"""Get-or-create of the catalog: Project, Prompt, Response and Pair, one at a time.

Identities are content hashes, so creating what exists returns the stored row. Pair creation
keeps Project.pair_count right. Bulk imports use the same identities in annotate/importers/.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F

from annotate.hashing import content_hash
from annotate.models import Pair, Project, Prompt, Response


def prompt_hash(messages: list[dict[str, Any]]) -> str:
    return content_hash(messages)


def response_hash(text: str) -> str:
    return content_hash(text)


def project_get_or_create(*, slug: str, name: str = "") -> tuple[Project, bool]:
    """The project with this slug, created (named `name`, else the slug) when missing."""
    return Project.objects.get_or_create(slug=slug, defaults={"name": name or slug})


def prompt_get_or_create(
    *,
    project: Project,
    messages: list[dict[str, Any]],
    external_id: str = "",
    metadata: dict[str, Any] | None = None,
) -> tuple[Prompt, bool]:
    """The project's prompt with these messages; external id and metadata are set on creation
    only, so a later import never rewrites what an earlier one stored."""
    return Prompt.objects.get_or_create(
        project=project,
        content_hash=prompt_hash(messages),
        defaults={
            "messages": messages,
            "external_id": external_id[:200],
            "metadata": metadata or {},
        },
    )


def response_get_or_create(
    *,
    prompt: Prompt,
    text: str,
    model_name: str = "",
    metadata: dict[str, Any] | None = None,
) -> tuple[Response, bool]:
    """The prompt's response with this text (two models giving the same text share one)."""
    return Response.objects.get_or_create(
        prompt=prompt,
        content_hash=response_hash(text),
        defaults={"text": text, "model_name": model_name[:200], "metadata": metadata or {}},
    )


@transaction.atomic
def pair_get_or_create(
    *,
    project: Project,
    prompt: Prompt,
    first: Response,
    second: Response,
    is_open: bool = True,
    priority: float = 0.0,
    added_by_model: bool = False,
) -> tuple[Pair, bool, bool]:
    """The pair of two responses, in either order.

    Returns (pair, created, swapped): `swapped` is True when `first` became response_b,
    because response_a is always the response with the smaller id. A caller holding a judgment
    about `first` maps it with `swapped` ("first better" is "b" when swapped).
    """
    if first.pk == second.pk:
        raise ValueError("A pair needs two different responses.")
    if first.prompt_id != prompt.pk or second.prompt_id != prompt.pk:
        raise ValueError("Both responses must answer the pair's prompt.")
    swapped = first.pk > second.pk
    low, high = (second, first) if swapped else (first, second)
    pair, created = Pair.objects.get_or_create(
        prompt=prompt,
        response_a=low,
        response_b=high,
        defaults={
            "project": project,
            "is_open": is_open,
            "priority": priority,
            "added_by_model": added_by_model,
        },
    )
    if created:
        Project.objects.filter(pk=project.pk).update(pair_count=F("pair_count") + 1)
    return pair, created, swapped
