"""Reads for the chat page's links: which projects can chat (those with a generator)."""

from __future__ import annotations

from collections.abc import Iterable

from annotate.models import Generator


def projects_with_generators(*, project_ids: Iterable[int]) -> set[int]:
    return set(
        Generator.objects.filter(project_id__in=list(project_ids)).values_list(
            "project_id", flat=True
        )
    )
