"""Starting training runs (on request, and when the beat finds a project due) and handing them
to the task queue; what the Celery tasks in tasks.py call.

The database is the record: a run exists before its message is published, and a run whose
message could not be published is marked failed instead of being left queued.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotate.models import Comparison, Project
from annotate.queue import QueueUnavailable, task_publish
from rewardtrain.core.config import ConfigError
from rewardtrain.models import Evaluation, ModelVersion, TrainingRun
from rewardtrain.services import (
    rescore_pairs,
    run_create,
    run_execute,
    version_activate,
    version_evaluate,
)
from rewardtrain.services.rounds import round_scores_update

logger = logging.getLogger(__name__)

TRAIN_RUN_TASK = "rewardtrain.train_run"
RESCORE_PAIRS_TASK = "rewardtrain.rescore_pairs"
EVALUATE_ACTIVE_TASK = "rewardtrain.evaluate_active"


def run_enqueue(*, run_id: int) -> None:
    """Hand a queued run to the training queue; when the queue is down, fail the run (so that
    it does not hold the project's one active slot forever) and raise QueueUnavailable."""
    try:
        task_id = task_publish(name=TRAIN_RUN_TASK, args=[run_id])
    except QueueUnavailable as exc:
        TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
            status=TrainingRun.Status.FAILED, error=str(exc), finished_at=timezone.now()
        )
        logger.warning("Training run %s not queued: %s", run_id, exc)
        raise
    TrainingRun.objects.filter(pk=run_id).update(celery_task_id=task_id)


def training_request(*, project: Project, trigger: str, user=None) -> tuple[TrainingRun, bool]:
    """Queue a training run for a project, or join the one already queued or running.

    Returns (run, created). The message is published after the run's row commits (a worker
    must find it); outside a transaction that is at once, so QueueUnavailable reaches the
    caller, and the run is then already marked failed.
    """
    run, created = run_create(project=project, trigger=trigger, requested_by=user)
    if created:
        transaction.on_commit(lambda: run_enqueue(run_id=run.id))
    return run, created


@dataclass(frozen=True)
class DueProject:
    project: Project
    trigger: str


def retrain_due_projects(*, now: datetime) -> list[DueProject]:
    """Projects with auto-retraining on that should train now, and why.

    Due on the threshold when at least `retrain_min_new_comparisons` comparisons arrived since
    the last successful run, else on the schedule when `retrain_interval_minutes` passed since
    the last run that started and at least one comparison is new (the same data would give the
    same model). A project whose run on this same data failed or was cancelled waits for new
    data instead of failing every few minutes; a run that only failed to reach the queue
    does not count, so the beat picks up again once Redis is back.
    """
    due = []
    for project in Project.objects.filter(auto_retrain=True).order_by("pk"):
        runs = project.training_runs.all()
        if runs.filter(status__in=TrainingRun.ACTIVE_STATUSES).exists():
            continue
        last_ok = runs.filter(status=TrainingRun.Status.SUCCEEDED).order_by("-created_at").first()
        new = project.comparison_count - (last_ok.comparison_count_at_start if last_ok else 0)
        if new <= 0:
            continue
        gave_up = runs.filter(
            Q(status=TrainingRun.Status.CANCELLED)
            | Q(status=TrainingRun.Status.FAILED, started_at__isnull=False),
            comparison_count_at_start__gte=project.comparison_count,
        ).exists()
        if gave_up:
            continue
        if new >= project.retrain_min_new_comparisons:
            due.append(DueProject(project, TrainingRun.Trigger.THRESHOLD))
            continue
        if project.retrain_interval_minutes:
            last_started = runs.filter(started_at__isnull=False).order_by("-started_at").first()
            interval = timedelta(minutes=project.retrain_interval_minutes)
            if last_started is None or last_started.started_at <= now - interval:
                due.append(DueProject(project, TrainingRun.Trigger.SCHEDULE))
    return due


def retrain_due(*, now: datetime | None = None) -> list[TrainingRun]:
    """Queue a run for every project that is due (beat, every RETRAIN_CHECK_SECONDS); returns
    the runs it created. A project that already has a run joins it and adds nothing."""
    created_runs = []
    for item in retrain_due_projects(now=now or timezone.now()):
        try:
            run, created = training_request(project=item.project, trigger=item.trigger)
        except (ConfigError, QueueUnavailable) as exc:
            logger.warning("Retraining of %s not queued: %s", item.project.slug, exc)
            continue
        if created:
            created_runs.append(run)
    return created_runs


def train_run_execute(*, run_id: int) -> TrainingRun:
    """Execute a run (a run already finished is left alone) and, when it promoted a new
    version, queue the rescoring of the project's open pairs with it."""
    run = run_execute(run_id=run_id)
    promoted = ModelVersion.objects.filter(run=run, is_active=True).exists()
    if run.status == TrainingRun.Status.SUCCEEDED and promoted:
        try:
            task_publish(name=RESCORE_PAIRS_TASK, args=[run.project_id])
        except QueueUnavailable as exc:
            # The new model serves already; the pair scores catch up after the next promotion.
            logger.warning("Rescoring after run %s not queued: %s", run.pk, exc)
    return run


def project_rescore(*, project_id: int, unscored_only: bool = False) -> int:
    """Score the open pairs of a project with its active model (only those never scored, with
    `unscored_only`), and the rounds it has not scored yet (the training page's mean reward
    per round); how many pairs were scored."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return 0
    scored = rescore_pairs(project=project, unscored_only=unscored_only)
    round_scores_update(project=project)
    return scored


def new_pairs_score(*, project: Project) -> bool:
    """After an import: queue the scoring of the project's unscored open pairs, so that active
    learning ranks them before the next promotion. Nothing to do without an active model;
    with the queue down, the pairs wait (unscored pairs have priority 0) for the next
    promotion's rescoring, and the import stands. True when a task was queued."""
    if not ModelVersion.objects.filter(project=project, is_active=True).exists():
        return False
    try:
        task_publish(name=RESCORE_PAIRS_TASK, args=[project.pk, True])
    except QueueUnavailable as exc:
        logger.warning("Scoring of new pairs of %s not queued: %s", project.slug, exc)
        return False
    return True


def on_pairs_imported(sender: type, *, project: Project, **kwargs: Any) -> None:
    """Receiver of annotate's pairs_imported (connected in rewardtrain/apps.py)."""
    new_pairs_score(project=project)


def version_rollback(*, version: ModelVersion) -> bool:
    """Make an older (or newer) version the active model, then queue the rescoring of the open
    pairs with it, as after a promotion. The activation stands even with the queue down; the
    pairs keep the previous model's view until the next rescore. True when a task was queued."""
    version_activate(version=version)
    try:
        task_publish(name=RESCORE_PAIRS_TASK, args=[version.project_id, False])
    except QueueUnavailable as exc:
        logger.warning("Rescoring after activating %s not queued: %s", version, exc)
        return False
    return True


def active_version_evaluate(*, project_id: int) -> Evaluation | None:
    """Re-evaluate a project's active model on the current test split (it grows as labelers
    work), stored as a periodic evaluation. None when there is no active model, or when no
    comparison arrived since its latest evaluation (the same figures again would only crowd
    the chart)."""
    version = ModelVersion.objects.filter(project_id=project_id, is_active=True).first()
    if version is None:
        return None
    latest = version.evaluations.order_by("-created_at").first()
    news = Comparison.objects.filter(project_id=project_id)
    if latest and not news.filter(created_at__gt=latest.created_at).exists():
        return None
    return version_evaluate(version=version, kind=Evaluation.Kind.PERIODIC)


def evaluate_active_all() -> int:
    """Queue a re-evaluation for every project with an active model (beat); how many."""
    project_ids = list(
        ModelVersion.objects.filter(is_active=True).values_list("project_id", flat=True)
    )
    for project_id in project_ids:
        task_publish(name=EVALUATE_ACTIVE_TASK, args=[project_id])
    return len(project_ids)
