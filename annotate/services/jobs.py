"""The lifecycle that generation jobs and judging jobs share: the task published once the job is
committed, cancelling, resuming. What a job does is its kind's own (generation_run.py,
judging_run.py); the rules of its status are here, once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from annotate.errors import ApplicationError
from annotate.models import GenerationJob, JudgingJob
from annotate.queue import QueueUnavailable, task_publish

Job = GenerationJob | JudgingJob
Status = GenerationJob.Status  # JudgingJob.Status is this same class
ENDED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
RESUMABLE = (Status.CANCELLED, Status.FAILED)


def job_publish_on_commit(*, job: Job, task: str) -> None:
    """Publish the job's task once the transaction that made or resumed the job commits."""
    transaction.on_commit(lambda: job_publish(job_model=type(job), job_id=job.pk, task=task))


def job_publish(*, job_model: type[Job], job_id: int, task: str) -> None:
    """Publish the job's task; with the queue down the job is marked failed, saying so."""
    try:
        task_publish(name=task, args=[job_id])
    except QueueUnavailable as exc:
        job_model.objects.filter(pk=job_id, status=Status.QUEUED).update(
            status=Status.FAILED, error=str(exc), finished_at=timezone.now()
        )
        raise


def job_cancel(*, job: Job, conflict: type[ApplicationError]) -> Job:
    """Ask the job to stop: a queued one is cancelled now; a running one stops within a second
    or so, keeping what is in (requests in flight finish and are kept). An ended job raises the
    kind's `conflict`."""
    if job.status in ENDED:
        raise conflict(f"the job has already {job.status}")
    job.cancel_requested = True
    job.save(update_fields=["cancel_requested"])
    type(job).objects.filter(pk=job.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def job_resume(*, job: Job, task: str, conflict: type[ApplicationError], enqueue: bool) -> Job:
    """Queue a cancelled or failed job again (its run skips what is already in); any other
    raises the kind's `conflict`. With `enqueue`, its task is published on commit."""
    if job.status not in RESUMABLE:
        raise conflict(f"only a cancelled or failed job resumes; this one is {job.status}")
    job.status, job.cancel_requested, job.error, job.finished_at = "queued", False, "", None
    job.save(update_fields=["status", "cancel_requested", "error", "finished_at"])
    if enqueue:
        job_publish_on_commit(job=job, task=task)
    return job


class RunState(Protocol):
    """What a kind's run keeps between ticks, as far as the shared lifecycle reads it."""

    stop: threading.Event
    failure: str
    left: dict[int, int]  # item (a prompt, a pair) -> its pieces still to come


@dataclass(frozen=True)
class JobSteps:
    """A kind's own steps, which `job_execute` runs in the shared order."""

    plan: Callable[[Any], tuple[RunState, list]]  # job -> (state, work still missing)
    run: Callable[[Any, list, Any], None]  # (state, work, on_progress)
    progress: Callable[[Any, Any], None]  # (state, on_progress)
    finish: Callable[..., Any]  # (job, status, error, state or None) -> job


def job_execute(*, job: Job, steps: JobSteps, on_progress: Callable | None = None) -> Job:
    """Run the job to its end (the worker's side, or the command's). Safe to call twice: an
    ended job is left as it is; a running one found again (its worker lost) carries on, since
    what is stored is never asked for again."""
    if job.status in ENDED:
        return job
    if job.cancel_requested:
        return steps.finish(job, Status.CANCELLED, "", None)
    job.status, job.started_at, job.error = Status.RUNNING, timezone.now(), ""
    job.save(update_fields=["status", "started_at", "error"])
    state, work = steps.plan(job)
    steps.progress(state, on_progress)
    try:
        steps.run(state, work, on_progress)
    except (KeyboardInterrupt, SoftTimeLimitExceeded) as exc:
        state.stop.set()
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else "ran past its time limit"
        steps.finish(job, Status.FAILED, f"the job {reason}", state)
        raise
    if state.failure:
        return steps.finish(job, Status.FAILED, state.failure, state)
    if job_cancel_asked(job) and sum(state.left.values()):
        return steps.finish(job, Status.CANCELLED, "", state)
    return steps.finish(job, Status.SUCCEEDED, "", state)


def job_cancel_asked(job: Job) -> bool:
    """Whether staff asked the job to stop (read from the database: another process asks)."""
    return type(job).objects.filter(pk=job.pk, cancel_requested=True).exists()
