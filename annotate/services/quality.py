"""Stored quality figures: computed in the background (a Celery task on the default queue),
read by the API and the pages, recomputed when enough new comparisons arrived.

The staleness rule (`quality_status`): a project's figures are "stale" once
QUALITY_RECOMPUTE_EVERY comparisons arrived since they were computed, or when what they were
computed from changed (the aggregation, the flag bands, the excluded labelers, whether AI
judges enter training, judge-first and its margin); "computing" while a project has none yet;
else "ready". The beat checks every QUALITY_CHECK_SECONDS with the project's comparison
counter, as the retrain check does: the labeling submit path does no work for it.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from annotate.models import Comparison, Membership, Project, QualityResult, ReviewItem
from annotate.queue import QueueUnavailable, task_publish
from annotate.selectors.judge_first import judge_sure
from annotate.selectors.quality import quality_figures

logger = logging.getLogger(__name__)

QUALITY_COMPUTE_TASK = "annotate.quality_compute"
# A queued computation that has not finished after this long is taken as lost (a worker that
# died, a message dropped) and may be queued again.
REQUEST_EXPIRES = timedelta(minutes=15)
READY, STALE, COMPUTING = "ready", "stale", "computing"


def quality_inputs(project: Project) -> dict[str, Any]:
    """What the figures depend on besides the comparisons: changing any makes them stale."""
    excluded = Membership.objects.filter(project=project, excluded=True).values_list(
        "user_id", flat=True
    )
    return {
        "aggregation": project.aggregation,
        "bands": project.quality_bands or {},
        "excluded": sorted(excluded),
        # Judges in training change the crowd model's fit behind every reliability;
        # judge-first, the queue the progress counts.
        "judges_in_training": project.judges_in_training,
        "judge_first": judge_sure(project),
    }


def quality_status(
    *, result: QualityResult | None, project: Project, inputs: dict[str, Any], every: int
) -> str:
    """The staleness rule: computing (no figures yet), stale or ready."""
    if result is None or result.computed_at is None:
        return COMPUTING
    if project.comparison_count - result.comparison_count >= every or result.inputs != inputs:
        return STALE
    return READY


def quality_request(*, project: Project, now: datetime | None = None) -> bool:
    """Queue a computation of the project's figures unless one is queued already; True when
    this call queued it. QueueUnavailable when Redis is down (nothing is marked queued)."""
    now = now or timezone.now()
    result, _ = QualityResult.objects.get_or_create(project=project)
    # One UPDATE claims the request: of two requests at once, one queues.
    claimed = (
        QualityResult.objects.filter(pk=result.pk)
        .filter(
            Q(requested_at__isnull=True)
            | Q(computed_at__isnull=False, requested_at__lte=F("computed_at"))
            | Q(requested_at__lt=now - REQUEST_EXPIRES)
        )
        .update(requested_at=now)
    )
    if not claimed:
        return False
    try:
        task_publish(name=QUALITY_COMPUTE_TASK, args=[project.pk])
    except QueueUnavailable:
        QualityResult.objects.filter(pk=result.pk, requested_at=now).update(requested_at=None)
        raise
    return True


def quality_get(*, project: Project, figures: bool = True) -> dict[str, Any]:
    """The stored figures (without them, with `figures` false: a page that only says how old
    they are) with `status`, `computed_at` and `age_seconds`; a computation is queued when
    there are none yet or they are stale. `queue_error` says why none could be."""
    stored = QualityResult.objects.filter(project=project)
    if not figures:
        stored = stored.defer("figures")
    result = stored.first()
    inputs = quality_inputs(project)
    status = quality_status(
        result=result, project=project, inputs=inputs, every=settings.QUALITY_RECOMPUTE_EVERY
    )
    queue_error = None
    if status != READY:
        try:
            quality_request(project=project)
        except QueueUnavailable as exc:
            queue_error = str(exc)
        result = stored.get()
    now = timezone.now()
    return {
        **(result.figures or {} if figures else {}),
        "project": {"slug": project.slug, "name": project.name},
        "status": status,
        "computed_at": result.computed_at.isoformat() if result.computed_at else None,
        "age_seconds": round((now - result.computed_at).total_seconds())
        if result.computed_at
        else None,
        "computation_seconds": round(result.seconds, 2) if result.seconds is not None else None,
        "comparisons_since": project.comparison_count - result.comparison_count
        if result.computed_at
        else None,
        "recompute_queued_at": result.requested_at.isoformat()
        if result.requested_at
        and (not result.computed_at or result.requested_at > result.computed_at)
        else None,
        "queue_error": queue_error,
        "error": result.error or None,
    }


def quality_compute(*, project_id: int) -> QualityResult | None:
    """Compute a project's figures and review queue and store them (the task's body; safe to
    run twice). None when the project is gone."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return None
    # Read before computing: comparisons that arrive meanwhile count as new.
    count, inputs, now = project.comparison_count, quality_inputs(project), timezone.now()
    started = time.perf_counter()
    figures, review = quality_figures(project=project, now=now)
    seconds = time.perf_counter() - started
    with transaction.atomic():
        result, _ = QualityResult.objects.select_for_update().get_or_create(project=project)
        _review_store(project=project, review=review)
        result.figures = figures
        result.computed_at = now
        result.seconds = seconds
        result.comparison_count = count
        result.inputs = inputs
        result.error = ""
        result.save()
    logger.info("Quality of %s computed in %.1f s", project.slug, seconds)
    return result


def _review_store(*, project: Project, review: list[dict[str, Any]]) -> None:
    """Replace the project's review items; pairs that staff settled while the figures were
    computed (adjudicated, marked ambiguous) stay out."""
    settled = set(
        Comparison.objects.filter(
            project=project, source=Comparison.Source.ADJUDICATION
        ).values_list("pair_id", flat=True)
    )
    settled |= set(project.pairs.filter(ambiguous=True).values_list("id", flat=True))
    ReviewItem.objects.filter(project=project).delete()
    ReviewItem.objects.bulk_create(
        (
            ReviewItem(
                project=project,
                pair_id=item["pair_id"],
                rank=rank,
                reasons=item["reasons"],
                counts=item["counts"],
                majority=item["majority"] or "",
                agreement=item["agreement"],
                posterior_p_a=item["posterior_p_a"],
                model_p_a=item["model_p_a"],
            )
            for rank, item in enumerate(review)
            if item["pair_id"] not in settled
        ),
        batch_size=2000,
    )


def quality_due() -> int:
    """Queue a computation for every project whose stored figures are stale (beat); how many.
    Projects nobody looked at yet have no figures and get none until someone does."""
    every = settings.QUALITY_RECOMPUTE_EVERY
    queued = 0
    for result in QualityResult.objects.filter(computed_at__isnull=False).select_related("project"):
        project = result.project
        status = quality_status(
            result=result, project=project, inputs=quality_inputs(project), every=every
        )
        if status != STALE:
            continue
        try:
            queued += quality_request(project=project)
        except QueueUnavailable as exc:
            logger.warning("Quality of %s not queued: %s", project.slug, exc)
            break
    return queued
