"""Training runs: queue at most one per project, execute it (data, train, save, evaluate,
promote), cancel it, and fail the runs whose worker died."""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotate.errors import ApplicationError
from annotate.models import Project
from rewardtrain.core.config import TrainConfig, check_nproc
from rewardtrain.core.jsonsafe import json_safe
from rewardtrain.models import Evaluation, ModelVersion, TrainingRun
from rewardtrain.selectors import runs as selectors
from rewardtrain.selectors.set_rows import aspect_specs
from rewardtrain.services.versions import (
    activate_in_transaction,
    held_out_any,
    held_out_score,
    held_out_snapshot,
    scorer_for,
)

logger = logging.getLogger(__name__)

Status = TrainingRun.Status

# Progress is written to the database at most this often (plus the last step): a fast loop
# must not turn into a stream of UPDATEs.
PROGRESS_WRITE_SECONDS = 1.0
# The loss history kept on the run is thinned beyond this many points (every other one goes,
# validation points stay), so a long run's record stays small.
HISTORY_POINTS = 1000
ERROR_CHARS = 4000


class RunError(ApplicationError):
    """A run that cannot proceed, with a message meant for the person who asked for it."""

    # In a request, only run_create's: runs on the project kept starting and ending under it.
    status = HTTPStatus.CONFLICT
    code = "run_conflict"


def run_create(
    *,
    project: Project,
    trigger: str,
    requested_by: AbstractBaseUser | None = None,
    config_overrides: dict[str, Any] | None = None,
) -> tuple[TrainingRun, bool]:
    """Queue a run, or return the project's queued or running one (created=False).

    The resolved config is stored on the run, so a queued run shows what it will train with.
    Raises rewardtrain.core.config.ConfigError for unknown or bad settings, and for more ranks than
    this machine's visible GPUs (ranks_check). Enqueueing the task is the caller's job, after
    commit.
    """
    cfg = selectors.training_config_for(project=project, overrides=config_overrides)
    ranks_check(cfg=cfg, visible_gpus=_visible_gpus(cfg))
    config = cfg.to_dict()
    # Two attempts: the active run that blocked the first may finish before it is read back.
    for _ in range(2):
        comparisons = Project.objects.values_list("comparison_count", flat=True).get(pk=project.pk)
        try:
            with transaction.atomic():
                run = TrainingRun.objects.create(
                    project=project,
                    trigger=trigger,
                    requested_by=requested_by,
                    config=config,
                    comparison_count_at_start=comparisons,
                )
            return run, True
        except IntegrityError:
            existing = selectors.run_active(project=project)
            if existing is not None:
                return existing, False
    raise RunError(f"could not queue a run for {project.slug}: runs keep starting and ending")


def ranks_check(*, cfg: TrainConfig, visible_gpus: int) -> None:
    """ConfigError before any run exists when the run's ranks (its nproc, else TRAINING_NPROC)
    cannot train on this machine's `visible_gpus` (config.check_nproc). With no GPU visible
    here only a device naming one GPU is judged: a web server without GPUs cannot count a
    training worker's, whose own check (launch.resolve_nproc) then fails the run."""
    nproc = cfg.nproc or settings.TRAINING_NPROC
    if visible_gpus or ":" in cfg.device:
        check_nproc(nproc, cfg.device, visible_gpus)


def _visible_gpus(cfg: TrainConfig) -> int:
    """GPUs this process sees; 0 without asking torch when the count cannot matter."""
    nproc = cfg.nproc or settings.TRAINING_NPROC
    if nproc <= 1 or cfg.device == "cpu":
        return 0
    import torch

    return torch.cuda.device_count()


def run_cancel(*, run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next step."""
    now = timezone.now()
    TrainingRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED, cancel_requested=True, finished_at=now
    )
    TrainingRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(cancel_requested=True)
    run.refresh_from_db()
    return run


def mark_stale_runs_failed(
    *, now: datetime | None = None, timeout_seconds: int | None = None
) -> int:
    """Fail the running runs whose worker stopped beating; returns how many."""
    now = now or timezone.now()
    if timeout_seconds is None:
        timeout_seconds = settings.RUN_HEARTBEAT_TIMEOUT_SECONDS
    cutoff = now - timedelta(seconds=timeout_seconds)
    stale = TrainingRun.objects.filter(status=Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    return stale.update(
        status=Status.FAILED,
        finished_at=now,
        error=f"Worker lost: no heartbeat for more than {timeout_seconds} s.",
    )


class _Reporter:
    """The training loop's callbacks, throttled: progress and heartbeat go to the run at most
    once per PROGRESS_WRITE_SECONDS (and at the last step); cancellation is read as often."""

    def __init__(self, run_id: int, on_progress: Callable[[Any], None] | None) -> None:
        self.run_id = run_id
        self.on_progress = on_progress
        self.history: list[dict[str, Any]] = []
        self.stride = 1
        self.last_progress: dict[str, Any] = {}
        self.pairs_per_second: float | None = None
        self._last_write = -math.inf
        self._last_check = -math.inf
        self._cancel = False

    def on_step(self, p: Any) -> None:
        point = {"step": p.step, "epoch": p.epoch, "loss": p.loss}
        if p.val_loss is not None:
            point.update(val_loss=p.val_loss, val_accuracy=p.val_accuracy)
        if p.step % self.stride == 0 or "val_loss" in point or p.step >= p.total:
            self.history.append(point)
        if len(self.history) > HISTORY_POINTS:
            self.stride *= 2
            self.history = [
                h for h in self.history if h["step"] % self.stride == 0 or "val_loss" in h
            ]
        self.last_progress = {
            "step": p.step,
            "total": p.total,
            "epoch": p.epoch,
            "loss": p.loss,
            "pairs_per_second": p.pairs_per_second,
        }
        self.pairs_per_second = p.pairs_per_second
        if self.on_progress is not None:
            self.on_progress(p)
        now = time.monotonic()
        if p.step < p.total and now - self._last_write < PROGRESS_WRITE_SECONDS:
            return
        self._last_write = now
        TrainingRun.objects.filter(pk=self.run_id, status=Status.RUNNING).update(
            progress=json_safe(self.last_progress),
            loss_history=json_safe(self.history),
            pairs_per_second=json_safe(p.pairs_per_second),
            heartbeat_at=timezone.now(),
        )

    def should_stop(self) -> bool:
        now = time.monotonic()
        if now - self._last_check >= PROGRESS_WRITE_SECONDS:
            self._last_check = now
            self._cancel = TrainingRun.objects.filter(
                pk=self.run_id, cancel_requested=True
            ).exists()
        return self._cancel


class _HeartbeatThread(threading.Thread):
    """Beats for the run every `interval` seconds while it executes, also through the phases
    without steps (loading rows, validating, saving, evaluating): the stale-run check then
    fails only runs whose process is gone."""

    def __init__(self, run_id: int, interval: float) -> None:
        super().__init__(name=f"training-run-{run_id}-heartbeat", daemon=True)
        self.run_id = run_id
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                try:
                    _heartbeat(self.run_id)
                except Exception:  # a missed beat is retried at the next interval
                    logger.warning("heartbeat of run %s failed", self.run_id, exc_info=True)
        finally:
            # This thread's own database connection.
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


def _heartbeat(run_id: int, **fields: Any) -> None:
    TrainingRun.objects.filter(pk=run_id, status=Status.RUNNING).update(
        heartbeat_at=timezone.now(), **fields
    )


def _finish(run_id: int, status: str, error: str = "", **fields: Any) -> bool:
    """Close a running run; False when it was no longer running (e.g. marked lost)."""
    return bool(
        TrainingRun.objects.filter(pk=run_id, status=Status.RUNNING).update(
            status=status, error=error[:ERROR_CHARS], finished_at=timezone.now(), **fields
        )
    )


def _resolved_device(cfg_device: str) -> str:
    """This worker's TRAINING_DEVICE first (the machine that trains decides, not the one that
    queued the run), then the run's config, then cuda when present, else cpu."""
    from rewardtrain.core.device import resolve_device

    return resolve_device(settings.TRAINING_DEVICE or cfg_device)


def _release_memory() -> None:
    """Give a failed or finished run's memory back: a worker lives on to train the next run."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _error_text(exc: BaseException, device: str) -> str:
    from rewardtrain.core.launch import LaunchError
    from rewardtrain.core.model import BackboneError
    from rewardtrain.core.training import NotEnoughData

    if isinstance(exc, NotEnoughData):
        return f"Not enough data: {exc}"
    if isinstance(exc, RunError | BackboneError | LaunchError):
        text = str(exc)
        return text[:1].upper() + text[1:]
    message = str(exc)
    if "out of memory" in message.lower() or type(exc).__name__ == "OutOfMemoryError":
        return (
            f"Out of memory on {device}: lower batch_size or max_length in the project's "
            f"training settings. ({message.splitlines()[0] if message else type(exc).__name__})"
        )
    return f"{type(exc).__name__}: {message}"


def _next_version(project: Project, project_dir: Path) -> int:
    """One more than any version in the database or on disk: a folder left by a crash between
    the rename and the commit is never overwritten."""
    numbers = list(ModelVersion.objects.filter(project=project).values_list("version", flat=True))
    if project_dir.is_dir():
        numbers += [int(p.name) for p in project_dir.iterdir() if p.name.isdigit()]
    return max(numbers, default=0) + 1


def run_execute(*, run_id: int, on_progress: Callable[[Any], None] | None = None) -> TrainingRun:
    """Train, save, evaluate and maybe promote one queued run. Safe to call twice.

    The run is claimed with an UPDATE ... WHERE status='queued': a run that is finished, or
    already claimed by another worker, is returned untouched. Any failure leaves the run
    failed with a readable error and the active ModelVersion as it was; a cancel request
    stops training at the next step and leaves the run cancelled.
    """
    from rewardtrain.core.training import TrainingCancelled

    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, heartbeat_at=now
    )
    run = TrainingRun.objects.select_related("project").get(pk=run_id)
    if not claimed:
        return run
    reporter = _Reporter(run_id, on_progress)
    device = run.config.get("device", "")
    beat = _HeartbeatThread(run_id, interval=max(settings.RUN_HEARTBEAT_TIMEOUT_SECONDS / 4, 1))
    beat.start()
    try:
        device = _resolved_device(device)
        run.config = {**run.config, "device": device}
        _heartbeat(run_id, device=device, config=run.config)
        _train_and_record(run, reporter, device)
    except TrainingCancelled:
        _finish(
            run_id,
            Status.CANCELLED,
            error=f"Cancelled on request at step {reporter.last_progress.get('step', 0)}.",
            progress=json_safe(reporter.last_progress),
            loss_history=json_safe(reporter.history),
        )
    except Exception as exc:  # every failure must end as a failed run
        logger.exception("training run %s failed", run_id)
        _finish(
            run_id,
            Status.FAILED,
            error=_error_text(exc, device),
            progress=json_safe(reporter.last_progress),
            loss_history=json_safe(reporter.history),
        )
    finally:
        beat.stop()
        _release_memory()
    run.refresh_from_db()
    return run


# What a run records about how it trained (the rest of the figures go into its version).
RUN_FIGURES = (
    "world_size",
    "lora_r",
    "trainable_params",
    "total_params",
    "tokens_per_s",
    "mfu",
    "peak_memory_gb",
)


def _train_and_record(run: TrainingRun, reporter: _Reporter, device: str) -> None:
    """Rows, ranks, training into a hidden folder, evaluation, then the version committed;
    a failure at any point leaves no model folder behind."""
    from rewardtrain.core.model import default_backbone

    data, snap = _rows_for(run)
    cfg = _config_for_rows(run, data)
    backbone = cfg.backbone or default_backbone()
    active = selectors.version_active(project=run.project)
    warm = (
        active
        if cfg.warm_start and active and active.backbone == backbone and Path(active.path).is_dir()
        else None
    )
    nproc, rendezvous = _ranks_for(cfg, device)
    _heartbeat(run.pk, world_size=nproc * rendezvous.nnodes, lora_r=cfg.lora_r or None)

    project_dir = Path(settings.MODELS_DIR) / run.project.slug
    project_dir.mkdir(parents=True, exist_ok=True)
    # Written under a hidden name and renamed once complete: a failed run leaves no half folder.
    staging = project_dir / f".run-{run.pk}-{uuid.uuid4().hex[:8]}"
    final: Path | None = None
    try:
        training = _train_into(staging, run, cfg, data, snap, warm, reporter, nproc, rendezvous)
        _ensemble_members_train(data, cfg, staging, warm, reporter, nproc, rendezvous)
        evaluated = _evaluate_staged(staging, run, data, active, device, training, cfg)
        final = _version_commit(run, staging, backbone, evaluated, training, reporter)
    except BaseException:
        if final is not None and final.exists() and not _version_saved(run.pk):
            shutil.rmtree(final, ignore_errors=True)
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _rows_for(run: TrainingRun) -> tuple[Any, dict[str, Any]]:
    """The project's rows (pairs, rankings, ratings) by split and their snapshot (recorded on
    the run at once)."""
    data = selectors.training_data(project=run.project)
    snap = data.snapshot()
    _heartbeat(run.pk, snapshot=json_safe(snap))
    if not held_out_any(data):
        counts = ", ".join(f"{n} {split}" for split, n in snap["counts"].items())
        if not data.has_sets:
            raise RunError(
                f"Not enough data: no pairs in the test split ({counts}); a tenth of the "
                "prompts go to test, so collect comparisons on more prompts."
            )
        sets = ", ".join(
            f"{sum(n.values())} {split}" for split, n in snap["sets"]["counts"].items()
        )
        raise RunError(
            f"Not enough data: no pairs, rankings or ratings in the test split (pairs: {counts}; "
            f"rankings and rated responses: {sets}); a tenth of the prompts go to test, so "
            "collect judgments on more prompts."
        )
    return data, snap


def _config_for_rows(run: TrainingRun, data: Any) -> TrainConfig:
    """The run's config; with rating rows and no aspects in it (the ratings came after the run
    was queued), the project's aspects, recorded on the run."""
    cfg = TrainConfig.from_dict(run.config)
    if cfg.aspects or not any(data.ratings.values()):
        return cfg
    run.config = {**run.config, "aspects": aspect_specs(project=run.project)}
    _heartbeat(run.pk, config=run.config)
    return TrainConfig.from_dict(run.config)


def _ranks_for(cfg: Any, device: str) -> tuple[int, Any]:
    """(ranks on this machine, rendezvous): the run's nproc, else TRAINING_NPROC, else one
    per visible GPU; the machines from TRAINING_NNODES and friends."""
    from rewardtrain.core.launch import LaunchError, Rendezvous, resolve_nproc

    rendezvous = Rendezvous(
        nnodes=settings.TRAINING_NNODES,
        node_rank=settings.TRAINING_NODE_RANK,
        master_addr=settings.TRAINING_MASTER_ADDR,
        master_port=settings.TRAINING_MASTER_PORT,
    )
    if rendezvous.node_rank != 0:
        raise LaunchError(
            f"this worker is node {rendezvous.node_rank} of {rendezvous.nnodes}: training runs "
            "start on node 0; the other machines join with `python -m rewardtrain.core.launch`"
        )
    return resolve_nproc(cfg.nproc or settings.TRAINING_NPROC, device), rendezvous


def _train_into(
    staging: Path, run, cfg, data, snap, warm, reporter: _Reporter, nproc: int, rendezvous
) -> dict[str, Any]:
    """Train (in this process or on torchrun's ranks) and write the model into `staging`;
    returns the training figures, also recorded on the run."""
    from rewardtrain.core.launch import train_and_save

    training = train_and_save(
        data.train,
        data.validation,
        cfg,
        staging,
        nproc=nproc,
        rendezvous=rendezvous,
        init_from=warm.path if warm else None,
        on_step=reporter.on_step,
        should_stop=reporter.should_stop,
        metrics={"warm_start_from": warm.version if warm else None},
        extra={"project": run.project.slug, "run": run.pk, "snapshot": json_safe(snap)},
    )
    snap["truncated"] = training["truncated"]
    _heartbeat(
        run.pk,
        snapshot=json_safe(snap),
        device=training["device"],
        **{key: json_safe(training.get(key)) for key in RUN_FIGURES},
    )
    return training


def _evaluate_staged(
    staging: Path, run, data, active: ModelVersion | None, device: str, training: dict, cfg
) -> dict[str, Any]:
    """The saved folder's metrics on the test split (services.versions.held_out_score), the
    promotion decision against the active model, and the test split's snapshot."""
    from rewardtrain.core.evaluation import promotion_decision
    from rewardtrain.core.scoring import RewardScorer

    # Scored from the saved folder: what gets evaluated is exactly what is served.
    scorer = RewardScorer.load(str(staging), device=device)
    baseline_scorer = None
    baseline_error = ""
    if active is not None:
        try:
            baseline_scorer = scorer_for(version=active, device=device)
        except Exception as exc:  # a lost active model must not block training
            baseline_error = f"active version {active.version} could not be loaded: {exc}"
    metrics = held_out_score(
        data, scorer, baseline_scorer, tie_loss=cfg.tie_loss, heartbeat=lambda: _heartbeat(run.pk)
    )
    active_metrics = metrics.get("baseline") if baseline_scorer is not None else None
    tolerance = settings.PROMOTION_ACCURACY_TOLERANCE
    if active_metrics is not None and not metrics.get("n") and metrics.get("aspects"):
        promoted, reason = _ratings_promotion(metrics, cfg)
    else:
        promoted, reason = promotion_decision(metrics, active_metrics, accuracy_tolerance=tolerance)
    if baseline_error:
        reason = f"{reason} ({baseline_error})"
    return {
        "metrics": json_safe({**metrics, "training": training}),
        "promotion": {
            "promoted": bool(promoted),
            "reason": reason,
            "compared_to": active.version if active else None,
            "tolerance": tolerance,
        },
        "test_snapshot": held_out_snapshot(data),
    }


def _ratings_promotion(metrics: dict[str, Any], cfg: TrainConfig) -> tuple[bool, str]:
    """Promotion where the test split holds ratings and no pairs or rankings (no pairwise
    accuracy to compare): promoted when the active model has no aspect head scored on those
    ratings, or when the new model's mean RMSE, each aspect's as a share of its scale, is
    not higher than the active one's."""
    widths = {a["name"]: float(a["max"]) - float(a["min"]) for a in cfg.aspects}

    def mean_rmse(figures: dict[str, Any] | None) -> float | None:
        shares = [
            f["rmse"] / widths[name]
            for name, f in (figures or {}).items()
            if name in widths and f.get("rmse") is not None
        ]
        return sum(shares) / len(shares) if shares else None

    new, old = mean_rmse(metrics.get("aspects")), mean_rmse(metrics.get("baseline_aspects"))
    if new is None:
        return False, "not promoted: no held-out rating scored"
    if old is None:
        return True, "promoted: the active model has no aspect head to compare on the ratings"
    summary = f"mean aspect RMSE {new:.4f} of the scale vs active {old:.4f}"
    if new <= old:
        return True, f"promoted: {summary}"
    return False, f"not promoted (aspect RMSE higher): {summary}"


def _version_commit(
    run, staging: Path, backbone: str, evaluated: dict, training: dict, reporter: _Reporter
) -> Path:
    """In one transaction: the run succeeded, the folder renamed to its version number, the
    ModelVersion and its Evaluation created, the version activated if promoted. Returns the
    version's folder."""
    project = run.project
    project_dir = staging.parent
    with transaction.atomic():
        finished = _finish(
            run.pk,
            Status.SUCCEEDED,
            progress=json_safe(reporter.last_progress),
            loss_history=json_safe(reporter.history),
            pairs_per_second=json_safe(training["pairs_per_second"]),
            device=training["device"],
        )
        if not finished:
            raise RunError("the run stopped being 'running' (marked lost?) before it ended")
        number = _next_version(project, project_dir)
        final = project_dir / str(number)
        staging.rename(final)
        version = ModelVersion.objects.create(
            project=project,
            run=run,
            version=number,
            path=str(final),
            backbone=backbone,
            metrics=evaluated["metrics"],
            promotion=evaluated["promotion"],
        )
        Evaluation.objects.create(
            model_version=version,
            kind=Evaluation.Kind.TRAINING,
            snapshot=evaluated["test_snapshot"],
            metrics=evaluated["metrics"],
        )
        if evaluated["promotion"]["promoted"]:
            activate_in_transaction(version)
    return final


def _ensemble_members_train(
    data: Any,
    cfg: Any,
    folder: Path,
    warm: ModelVersion | None,
    reporter: _Reporter,
    nproc: int,
    rendezvous: Any,
) -> None:
    """Members 1 .. K-1 of an ensemble (cfg.ensemble_size = K > 1): the same rows, seeds
    seed+1 .. seed+K-1, saved in <version>/members/<k>/ where rescoring reads their spread.
    The version's own model is member 0, the only one evaluated and served.

    A member warm-starts from the same member of the active version, never from another
    member: the members' differences are the measure."""
    from dataclasses import replace

    from rewardtrain.core.launch import train_and_save
    from rewardtrain.services.pairs import MEMBERS_DIR

    for k in range(1, cfg.ensemble_size):
        member_cfg = replace(cfg, seed=cfg.seed + k)
        previous = Path(warm.path) / MEMBERS_DIR / str(k) if warm else None
        train_and_save(
            data.train,
            data.validation,
            member_cfg,
            folder / MEMBERS_DIR / str(k),
            nproc=nproc,
            rendezvous=rendezvous,
            init_from=str(previous) if previous and previous.is_dir() else None,
            should_stop=reporter.should_stop,
            metrics={"member": k, "seed": member_cfg.seed},
        )
        _heartbeat(reporter.run_id)


def _version_saved(run_id: int) -> bool:
    return ModelVersion.objects.filter(run_id=run_id).exists()
