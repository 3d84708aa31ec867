"""Reads behind a dataset export: the comparisons of the raw shape, streamed with the texts
they judge; a project's export jobs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import TextField
from django.db.models.functions import Cast
from django.http import Http404

from annotate.models import ExportJob, Project
from annotate.selectors.dataset import DatasetFilter, comparisons_for_dataset

CHUNK = 2000

RAW_FIELDS = (
    "id",
    "pair_id",
    "pair__prompt__content_hash",
    "pair__response_a__text",
    "pair__response_b__text",
    "pair__response_a__model_name",
    "pair__response_b__model_name",
    "choice",
    "strength",
    "left",
    "labeler_id",
    "labeler__username",
    "source",
    "reasons",
    "comment",
    "time_spent_ms",
    "created_at",
    "is_gold_check",
    "import_file",
)


def comparison_rows(project: Project, flt: DatasetFilter) -> Iterator[dict[str, Any]]:
    """Each comparison that counts under the filter, with its pair's texts, in pair-id order.
    The prompt's messages come as JSON text (`prompt_json`): the export decodes them once per
    pair, where a JSON field would be decoded on every row.

    Streamed: PostgreSQL serves it from a server-side cursor, so memory does not grow with the
    number of comparisons.
    """
    prompt_json = Cast("pair__prompt__messages", TextField())
    rows = comparisons_for_dataset(project, flt).values(*RAW_FIELDS, prompt_json=prompt_json)
    return rows.iterator(chunk_size=CHUNK)


def export_job_get(*, project: Project, job_id: int) -> ExportJob:
    """One of the project's export jobs; 404 for another project's (or none). The caller has
    checked the user's right to the project (project_get_for_staff)."""
    job = ExportJob.objects.filter(project=project, pk=job_id).first()
    if job is None:
        raise Http404("No such export job in this project.")
    return job


def export_jobs_recent(*, project: Project, limit: int = 10) -> list[ExportJob]:
    """The project's latest export jobs, newest first."""
    return list(ExportJob.objects.filter(project=project).order_by("-created_at", "-pk")[:limit])
