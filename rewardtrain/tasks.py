"""Celery tasks of the reward model: shims that take ids and call one function in triggers.py.

`acks_late` everywhere: a message is acknowledged after its task ends, so a worker lost mid-task
leaves it to be redelivered; every task is safe to run twice (a finished run is left alone).
"""

from celery import shared_task
from django.conf import settings

from rewardtrain.services import downloads, mark_stale_runs_failed, triggers


@shared_task(
    name="rewardtrain.train_run",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # Under the broker's visibility timeout, so Redis never redelivers a run still training;
    # the soft limit ends the run as failed with a message, the hard one frees the worker.
    soft_time_limit=settings.TRAINING_MAX_SECONDS,
    time_limit=settings.TRAINING_MAX_SECONDS + 300,
)
def train_run(run_id: int) -> str:
    return triggers.train_run_execute(run_id=run_id).status


@shared_task(name="rewardtrain.retrain_due", acks_late=True, ignore_result=True)
def retrain_due() -> list[int]:
    return [run.pk for run in triggers.retrain_due()]


@shared_task(name="rewardtrain.evaluate_active", acks_late=True, ignore_result=True)
def evaluate_active(project_id: int) -> int | None:
    evaluation = triggers.active_version_evaluate(project_id=project_id)
    return evaluation.pk if evaluation else None


@shared_task(name="rewardtrain.evaluate_active_all", acks_late=True, ignore_result=True)
def evaluate_active_all() -> int:
    return triggers.evaluate_active_all()


@shared_task(name="rewardtrain.rescore_pairs", acks_late=True, ignore_result=True)
def rescore_pairs(project_id: int, unscored_only: bool = False) -> int:
    return triggers.project_rescore(project_id=project_id, unscored_only=unscored_only)


@shared_task(name="rewardtrain.fail_stale_runs", acks_late=True, ignore_result=True)
def fail_stale_runs() -> int:
    return mark_stale_runs_failed(timeout_seconds=settings.RUN_HEARTBEAT_TIMEOUT_SECONDS)


@shared_task(
    name=downloads.MODEL_ZIP_TASK,
    acks_late=True,
    ignore_result=True,
    soft_time_limit=downloads.BUILD_MAX_SECONDS,
    time_limit=downloads.BUILD_MAX_SECONDS + 60,
)
def model_zip_build(model_version_id: int) -> str:
    return downloads.model_zip_build(model_version_id=model_version_id).status
