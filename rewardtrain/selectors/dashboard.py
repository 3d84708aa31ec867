"""Reads for the staff training page and its JSON: a run's progress, the version table, and
the accuracy and log-loss of every evaluation in order."""

from __future__ import annotations

import math
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse

from annotate.models import Project
from rewardtrain.core.jsonsafe import finite_number
from rewardtrain.models import Evaluation, ModelVersion, TrainingRun

# The loss curve sent to the page every second is thinned to about this many points.
CURVE_POINTS = 300
TERMINAL = (
    TrainingRun.Status.SUCCEEDED,
    TrainingRun.Status.FAILED,
    TrainingRun.Status.CANCELLED,
)


def run_get_for_staff(*, run_id: int) -> TrainingRun:
    return get_object_or_404(TrainingRun.objects.select_related("project"), pk=run_id)


def runs_recent(*, project: Project, limit: int = 20) -> QuerySet[TrainingRun]:
    return project.training_runs.select_related("model_version").order_by("-created_at")[:limit]


def run_current(*, project: Project) -> TrainingRun | None:
    """The run the page follows: the latest (an active run is always the latest)."""
    return project.training_runs.order_by("-created_at").first()


def headline(metrics: dict[str, Any]) -> dict[str, float | None]:
    """Accuracy (ties as half) and log-loss of a metrics dict, None where absent."""
    return {
        "accuracy": finite_number(metrics.get("accuracy")),
        "log_loss": finite_number(metrics.get("log_loss")),
    }


def _curve(history: list[dict[str, Any]]) -> list[list[float]]:
    """[[step, loss], ...] thinned to about CURVE_POINTS, the last point always kept."""
    points = [
        [h["step"], h["loss"]]
        for h in history
        if isinstance(h, dict) and finite_number(h.get("loss")) is not None
    ]
    stride = max(1, math.ceil(len(points) / CURVE_POINTS))
    thinned = points[::stride]
    if points and thinned[-1] is not points[-1]:
        thinned.append(points[-1])
    return thinned


def run_scale_text(*, run: TrainingRun) -> str:
    """How the run trains, in one line: ranks, LoRA or full, parameters, tokens/s, and on
    CUDA MFU and peak memory per device. Empty until the run has started."""
    if run.world_size is None:
        return ""
    parts = [f"{run.world_size} rank{'s' if run.world_size != 1 else ''}"]
    parts.append(f"LoRA r={run.lora_r}" if run.lora_r else "full fine-tuning")
    if run.total_params:
        share = (run.trainable_params or 0) / run.total_params
        parts.append(
            f"{run.trainable_params:,} of {run.total_params:,} parameters trained ({share:.1%})"
        )
    if run.tokens_per_s is not None:
        parts.append(f"{run.tokens_per_s:,.0f} tokens/s")
    if run.mfu is not None:
        parts.append(f"MFU {run.mfu:.1%}")
    if run.peak_memory_gb:
        parts.append("peak " + " / ".join(f"{gb:.1f}" for gb in run.peak_memory_gb) + " GB")
    return " · ".join(parts)


def run_progress(*, run: TrainingRun) -> dict[str, Any]:
    """Everything the page shows of a run, as JSON; `fraction` is 1.0 once it succeeded."""
    progress = run.progress or {}
    step, total = progress.get("step") or 0, progress.get("total") or 0
    fraction = min(1.0, step / total) if total else 0.0
    if run.status == TrainingRun.Status.SUCCEEDED:
        fraction = 1.0
    try:
        version = run.model_version  # read once per run; runs_recent selects it along
    except ModelVersion.DoesNotExist:
        version = None
    return {
        "id": run.pk,
        "project": run.project.slug,
        "status": run.status,
        "status_label": run.get_status_display(),
        "trigger": run.trigger,
        "trigger_label": run.get_trigger_display(),
        "active": run.status in TrainingRun.ACTIVE_STATUSES,
        "done": run.status in TERMINAL,
        "step": step,
        "total": total,
        "fraction": fraction,
        "epoch": progress.get("epoch"),
        "loss": finite_number(progress.get("loss")),
        "pairs_per_second": finite_number(progress.get("pairs_per_second") or run.pairs_per_second),
        "loss_curve": _curve(run.loss_history or []),
        "device": run.device,
        "scale": run_scale_text(run=run),
        "world_size": run.world_size,
        "lora_r": run.lora_r,
        "trainable_params": run.trainable_params,
        "total_params": run.total_params,
        "tokens_per_s": finite_number(run.tokens_per_s),
        "mfu": finite_number(run.mfu),
        "peak_memory_gb": run.peak_memory_gb,
        "error": run.error,
        "cancel_requested": run.cancel_requested,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "model_version": (
            {
                "version": version.version,
                "is_active": version.is_active,
                "promoted": bool(version.promotion.get("promoted")),
                "reason": version.promotion.get("reason", ""),
            }
            if version
            else None
        ),
        "url": reverse("api-training-run-detail", args=[run.pk]),
        "cancel_url": reverse("api-training-run-cancel", args=[run.pk]),
    }


def request_message(*, run: TrainingRun, created: bool) -> str:
    """What the person who pressed "Retrain now" is told."""
    if created:
        return f"Training run {run.pk} queued."
    return (
        f"Run {run.pk} is already {run.get_status_display().lower()} for this project: "
        "your request joined it instead of starting another."
    )


def version_rows(*, project: Project) -> list[dict[str, Any]]:
    """The version table: newest first, headline metrics at training and at the latest
    re-evaluation, and whether it is active."""
    rows = []
    versions = project.model_versions.select_related("run").prefetch_related("evaluations")
    for version in versions:
        evaluations = sorted(version.evaluations.all(), key=lambda e: e.created_at)
        latest = evaluations[-1] if evaluations else None
        rows.append(
            {
                "version": version,
                "trained": headline(version.metrics),
                "test_pairs": version.metrics.get("n"),
                "by_kind": _by_kind(version.metrics),
                "aspects": _aspect_rows(version.metrics),
                "latest": headline(latest.metrics) if latest else None,
                "latest_at": latest.created_at if latest else None,
                "reevaluated": bool(latest and latest.kind != Evaluation.Kind.TRAINING),
                "reason": version.promotion.get("reason", ""),
            }
        )
    return rows


def _by_kind(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Accuracy on the held-out pairs and on the held-out rankings' implied pairs, when the
    test split held rankings (services.versions.held_out_score)."""
    by_kind = metrics.get("by_kind") or {}
    return [
        {"kind": kind, "accuracy": finite_number(f.get("accuracy")), "n": f.get("n_decided")}
        for kind, f in by_kind.items()
        if isinstance(f, dict) and f.get("n")
    ]


def _aspect_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Per rated aspect: RMSE on its scale and Spearman's rho on the held-out ratings."""
    aspects = metrics.get("aspects") or {}
    return [
        {
            "name": name,
            "rmse": finite_number(f.get("rmse")),
            "spearman": finite_number(f.get("spearman")),
            "count": f.get("count"),
        }
        for name, f in aspects.items()
        if isinstance(f, dict)
    ]


def metric_points(*, project: Project) -> list[dict[str, Any]]:
    """Accuracy and log-loss of every evaluation of the project, oldest first."""
    evaluations = (
        Evaluation.objects.filter(model_version__project=project)
        .select_related("model_version")
        .order_by("created_at", "pk")
    )
    points = []
    for evaluation in evaluations:
        figures = headline(evaluation.metrics)
        points.append(
            {
                "label": f"v{evaluation.model_version.version}",
                "kind": evaluation.kind,
                "kind_label": evaluation.get_kind_display(),
                "created_at": evaluation.created_at,
                **figures,
            }
        )
    return points
