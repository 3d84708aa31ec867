"""Celery tasks of the labeling app: shims that take ids and call one service function.
They run on the default queue, with `acks_late`: a worker lost mid-task leaves the message to
be redelivered (computing a project's quality figures twice stores the same figures twice)."""

from celery import shared_task

from annotate.services import export_jobs, generation, generation_run, judges, judging_run, quality


@shared_task(
    name=export_jobs.EXPORT_JOB_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # The soft limit ends the job as failed with a message; the hard one frees the worker.
    soft_time_limit=export_jobs.JOB_MAX_SECONDS,
    time_limit=export_jobs.JOB_MAX_SECONDS + 60,
)
def export_job_run(job_id: int) -> str:
    return export_jobs.export_job_execute(job_id=job_id).status


@shared_task(name="annotate.export_jobs_clean", acks_late=True, ignore_result=True)
def export_jobs_clean() -> int:
    return export_jobs.export_jobs_clean()


@shared_task(
    name=quality.QUALITY_COMPUTE_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=1800,
    time_limit=1900,
)
def quality_compute(project_id: int) -> float | None:
    result = quality.quality_compute(project_id=project_id)
    return result.seconds if result else None


@shared_task(name="annotate.quality_due", acks_late=True, ignore_result=True)
def quality_due() -> int:
    return quality.quality_due()


@shared_task(
    name=generation.GENERATION_JOB_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=generation.JOB_MAX_SECONDS,
    time_limit=generation.JOB_MAX_SECONDS + 60,
)
def generation_job_run(job_id: int) -> str:
    """On the `generation` queue (config/settings.py CELERY_TASK_ROUTES): a job waits on
    endpoints, never on this worker's CPU. Redelivered, it carries on where it stopped."""
    return generation_run.generation_job_execute(job_id=job_id).status


@shared_task(
    name=judges.JUDGING_JOB_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=judges.JUDGING_JOB_MAX_SECONDS,
    time_limit=judges.JUDGING_JOB_MAX_SECONDS + 60,
)
def judging_job_run(job_id: int) -> str:
    """On the `generation` queue, beside generation jobs: it waits on a judge's endpoint.
    Redelivered, it carries on where it stopped (a reading stored is never asked again)."""
    return judging_run.judging_job_execute(job_id=job_id).status
