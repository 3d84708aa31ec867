"""Dataset exports too large for one web request: queued as an ExportJob, built by a worker
(task annotate.export_job_run) into a zip under MEDIA_ROOT/exports/<job id>/, downloaded when
the job has succeeded, deleted EXPORT_RETENTION_HOURS after it ended.

Small exports still stream from the request that asks for them; the line between the two is
EXPORT_SYNC_MAX_COMPARISONS comparisons counted under the export's options (for rankings and
ratings: their Ranking and Rating rows).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotate.models import ExportJob, Project
from annotate.queue import QueueUnavailable, task_publish
from annotate.selectors.dataset import comparisons_for_dataset
from annotate.services.exports import (
    DatasetExport,
    ExportError,
    dataset_export,
    export_for,
    export_options,
)
from annotate.services.exports_sets import SetExport

logger = logging.getLogger(__name__)

EXPORT_JOB_TASK = "annotate.export_job_run"
EXPORTS_DIR = "exports"  # under MEDIA_ROOT
# Progress is written to the job's row at most this often (a write per chunk would be many).
PROGRESS_EVERY_S = 1.0
# The task's time limit; a job still queued or running this long after it was asked for lost
# its worker (or its message) and is marked failed by the cleanup.
JOB_MAX_SECONDS = 4 * 3600
ACTIVE = (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING)


def export_is_large(export: DatasetExport | SetExport) -> bool:
    """Whether the export counts more than EXPORT_SYNC_MAX_COMPARISONS comparisons (or
    Ranking and Rating rows): a count that stops one past the threshold, so that it costs
    the same in a project of any size."""
    limit = settings.EXPORT_SYNC_MAX_COMPARISONS
    if isinstance(export, SetExport):
        return export.judgment_rows(at_most=limit + 1) > limit
    counted = comparisons_for_dataset(export.project, export.filter).order_by()[: limit + 1]
    return counted.count() > limit


def dataset_export_request(
    *, project: Project, user: Any, values: dict[str, Any]
) -> ExportJob | tuple[str, Iterator[bytes]]:
    """A staff request for an export with `values` (text options, as in a query string).
    Small: (file name, zip bytes) to stream now. Large: a queued ExportJob. Options are
    checked first (ExportError), the queue last (QueueUnavailable, the job then failed)."""
    export = export_for(project=project, options=export_options(**values))
    if not export_is_large(export):
        return export.zip_name, export.zip_chunks()
    return export_job_create(project=project, user=user, values=values, file_name=export.zip_name)


def export_job_create(
    *, project: Project, user: Any, values: dict[str, Any], file_name: str
) -> ExportJob:
    """Record the job, then publish its message once the row is committed (a worker must find
    it). When the queue cannot be reached the job is marked failed, saying so."""
    job = ExportJob.objects.create(
        project=project,
        created_by=user if getattr(user, "pk", None) else None,
        options=values,
        file_name=file_name,
    )
    transaction.on_commit(lambda: export_job_enqueue(job_id=job.pk))
    return job


def export_job_enqueue(*, job_id: int) -> None:
    try:
        task_publish(name=EXPORT_JOB_TASK, args=[job_id])
    except QueueUnavailable as exc:
        ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED).update(
            status=ExportJob.Status.FAILED, error=str(exc), finished_at=timezone.now()
        )
        raise


def job_folder(job: ExportJob) -> Path:
    return Path(settings.MEDIA_ROOT) / EXPORTS_DIR / str(job.pk)


def export_job_execute(*, job_id: int) -> ExportJob:
    """Build the job's zip (the worker's side). The zip is written under a temporary name and
    renamed when whole, and only then is the job marked succeeded with its file: a failed job
    holds its reason in `error` and no file. Safe to run twice: a finished job is left as it
    is; one found running (its worker lost, the message redelivered) starts over."""
    job = ExportJob.objects.select_related("project").get(pk=job_id)
    if job.status not in ACTIVE:
        return job
    folder = job_folder(job)
    shutil.rmtree(folder, ignore_errors=True)  # what an earlier, lost attempt left
    job.status, job.started_at, job.rows_done = ExportJob.Status.RUNNING, timezone.now(), 0
    job.save(update_fields=["status", "started_at", "rows_done"])
    try:
        options = export_options(**job.options)
        export = export_for(project=job.project, options=options)
        job.rows_total = _rows_expected(export)
        job.save(update_fields=["rows_total"])
        out = folder / job.file_name
        manifest = dataset_export(
            project=job.project, options=options, out=out, on_progress=_progress_writer(job)
        )
    except Exception as exc:
        shutil.rmtree(folder, ignore_errors=True)
        job.status, job.finished_at = ExportJob.Status.FAILED, timezone.now()
        job.error = _reason(exc)
        job.save(update_fields=["status", "finished_at", "error"])
        if not isinstance(exc, ExportError | SoftTimeLimitExceeded):
            logger.exception("Export job %s failed", job.pk)
        return job
    job.status, job.finished_at = ExportJob.Status.SUCCEEDED, timezone.now()
    job.file = out.relative_to(settings.MEDIA_ROOT).as_posix()
    job.file_bytes = out.stat().st_size
    job.rows_done = job.rows_total = manifest["counts"]["rows"]  # exact, now that it is known
    job.save(
        update_fields=["status", "finished_at", "file", "file_bytes", "rows_done", "rows_total"]
    )
    return job


def _reason(exc: Exception) -> str:
    if isinstance(exc, ExportError):
        return str(exc)
    if isinstance(exc, SoftTimeLimitExceeded):
        return f"The export took longer than {JOB_MAX_SECONDS // 3600} hours and was stopped."
    return f"{type(exc).__name__}: {exc}"


def _rows_expected(export: DatasetExport | SetExport) -> int:
    """About how many rows the export will write, for its progress: the comparisons that count
    (raw rows), or the pairs they judge (preference rows; fewer where filters drop some), or
    the judged sets (rankings and ratings)."""
    if isinstance(export, SetExport):
        return export.sets_judged()
    counted = comparisons_for_dataset(export.project, export.filter).order_by()
    if export.format.rows == "comparison":
        return counted.count()
    return counted.values("pair_id").distinct().count()


def _progress_writer(job: ExportJob):
    last = time.monotonic()

    def on_progress(rows: int) -> None:
        nonlocal last
        job.rows_done = rows
        if time.monotonic() - last >= PROGRESS_EVERY_S:
            last = time.monotonic()
            ExportJob.objects.filter(pk=job.pk).update(rows_done=rows)

    return on_progress


def export_job_file(job: ExportJob) -> Path | None:
    """The finished zip of a succeeded job, or None (not done, failed, or cleaned up)."""
    if job.status != ExportJob.Status.SUCCEEDED or not job.file:
        return None
    path = Path(settings.MEDIA_ROOT) / job.file
    return path if path.is_file() else None


def export_jobs_clean(*, now: datetime | None = None) -> int:
    """Hourly (beat): delete jobs that ended more than EXPORT_RETENTION_HOURS ago, with their
    files, and folders under MEDIA_ROOT/exports that no job owns; mark failed the jobs still
    queued or running past JOB_MAX_SECONDS. Returns how many jobs were deleted."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=JOB_MAX_SECONDS + 600)
    ExportJob.objects.filter(status__in=ACTIVE, created_at__lt=stale).update(
        status=ExportJob.Status.FAILED,
        finished_at=now,
        error=f"No worker finished the export within {JOB_MAX_SECONDS // 3600} hours "
        "(its worker was lost, or no worker takes the default queue).",
    )
    expired = ExportJob.objects.filter(
        finished_at__lt=now - timedelta(hours=settings.EXPORT_RETENTION_HOURS)
    ).exclude(status__in=ACTIVE)
    deleted = 0
    for job in expired:
        shutil.rmtree(job_folder(job), ignore_errors=True)
        job.delete()
        deleted += 1
    root = Path(settings.MEDIA_ROOT) / EXPORTS_DIR
    if root.is_dir():
        owned = {str(pk) for pk in ExportJob.objects.values_list("pk", flat=True)}
        # Only old ones: a job created after `owned` was read may be writing its folder now.
        before = (now - timedelta(hours=1)).timestamp()
        for folder in root.iterdir():
            # Job folders are named by id; others (models/, rewardtrain's zips) are not ours.
            if not folder.name.isdigit():
                continue
            if folder.name not in owned and folder.stat().st_mtime < before:
                shutil.rmtree(folder, ignore_errors=True)
    return deleted
