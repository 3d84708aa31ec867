"""Reads for the chat page's links: which projects can chat (pairwise ones with a generator;
a project that ranks or rates refuses the chat, annotate/services/chat.py's chat_refusal)."""

from __future__ import annotations

from collections.abc import Iterable

from annotate.models import Generator, TaskKind


def projects_with_generators(*, project_ids: Iterable[int]) -> set[int]:
    return set(
        Generator.objects.filter(
            project_id__in=list(project_ids), project__task_kind=TaskKind.PAIRWISE
        ).values_list("project_id", flat=True)
    )
