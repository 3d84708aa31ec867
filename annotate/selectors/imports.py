"""Reads for the import page: a project's latest imports."""

from __future__ import annotations

from django.db.models import QuerySet

from annotate.models import ImportBatch, Project


def import_batches_recent(*, project: Project, limit: int = 20) -> QuerySet[ImportBatch]:
    return (
        ImportBatch.objects.filter(project=project)
        .select_related("created_by")
        .order_by("-created_at", "-id")[:limit]
    )
