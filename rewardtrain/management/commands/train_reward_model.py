"""`manage.py train_reward_model --project SLUG`: one training run, now, in this process."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotate.management.progress import ProgressBar
from annotate.models import Project
from rewardtrain.core.config import ConfigError
from rewardtrain.models import TrainingRun
from rewardtrain.services import run_create, run_execute


class TrainingProgress:
    """A run's steps, loss and speed on the command's progress bar."""

    def __init__(self, stream: Any) -> None:
        self.bar = ProgressBar(stream)
        self.total = 0

    def update(self, p: Any) -> None:
        if p.total != self.total:  # a refit's steps lengthen the run once early stopping chose
            self.total = p.total
            self.bar.restart()
        text = (
            f"step {p.step}/{p.total} epoch {p.epoch:.2f} loss {p.loss:.4f} "
            f"{p.pairs_per_second:.1f} pairs/s"
        )
        if p.val_loss is not None:
            text += f" val_loss {p.val_loss:.4f}"
        self.bar.show(p.step / p.total if p.total else 1.0, text)

    def close(self) -> None:
        self.bar.close()


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def run_summary(run: TrainingRun) -> str:
    """What a person wants to know after a run: data, speed, the version, its figures."""
    snap = run.snapshot or {}
    counts = snap.get("counts", {})
    version = run.model_version
    metrics = version.metrics
    training = metrics.get("training", {})
    interval = (metrics.get("ci") or {}).get("accuracy") or [None, None]
    promotion = version.promotion
    lines = [
        f"Run {run.pk} succeeded on {run.device} in {_fmt(training.get('train_seconds'), 1)} s "
        f"({training.get('steps')} steps, {_fmt(run.pairs_per_second, 1)} pairs/s).",
        _refit_line(training),
        _scale_line(run),
        f"Data: {counts.get('train', 0)} train, {counts.get('validation', 0)} validation, "
        f"{counts.get('test', 0)} test pairs; {snap.get('ties', 0)} ties, "
        f"{snap.get('both_bad', 0)} both-bad pairs left out, {snap.get('truncated', 0)} "
        f"truncated; snapshot {str(snap.get('content_hash', ''))[:12]}.",
        f"Model version {version.version}: {version.path}",
        f"Test accuracy {_fmt(metrics.get('accuracy'))} (95% CI {_fmt(interval[0])}-"
        f"{_fmt(interval[1])}), log-loss {_fmt(metrics.get('log_loss'))} "
        f"on {metrics.get('n', counts.get('test', 0))} pairs.",
        f"Promotion: {promotion.get('reason', '')}",
    ]
    return "\n".join(lines)


def _refit_line(training: dict) -> str:
    """How the model's length of training was chosen, and whether it was refit."""
    chosen = f"Early stopping chose step {training.get('selected_step')} on validation"
    if not training.get("refit_steps"):
        return f"{chosen}; the model is that step's (no refit)."
    return (
        f"{chosen}; the model is the refit on train + validation ({training['refit_steps']} steps)."
    )


def _scale_line(run: TrainingRun) -> str:
    how = f"LoRA r={run.lora_r}" if run.lora_r else "full fine-tuning"
    line = (
        f"{run.world_size or 1} rank(s), {how}: {run.trainable_params or 0:,} of "
        f"{run.total_params or 0:,} parameters trained, {_fmt(run.tokens_per_s, 0)} tokens/s"
    )
    if run.mfu is not None:
        line += f", MFU {run.mfu:.1%}"
    if run.peak_memory_gb:
        line += f", peak memory {', '.join(f'{gb:.1f}' for gb in run.peak_memory_gb)} GB"
    return line + "."


class Command(BaseCommand):
    help = "Train a project's reward model now, with a progress bar, and report the result."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--backbone", help="Local folder or hub id (default: the project's).")
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--batch-size", type=int, dest="batch_size")
        parser.add_argument("--max-length", type=int, dest="max_length")
        parser.add_argument(
            "--lora-r",
            type=int,
            dest="lora_r",
            help="LoRA rank through peft (0 = full fine-tuning).",
        )
        parser.add_argument(
            "--nproc",
            type=int,
            help="Ranks on this machine, launched with torchrun (default: one per visible GPU).",
        )
        parser.add_argument(
            "--gradient-checkpointing",
            action=argparse.BooleanOptionalAction,
            dest="gradient_checkpointing",
            help="Recompute activations in backward (default: on over ~300M parameters on CUDA).",
        )
        parser.add_argument(
            "--warm-start",
            action=argparse.BooleanOptionalAction,
            dest="warm_start",
            help="Start from the active model when its backbone matches (default: on); "
            "--no-warm-start trains from the backbone.",
        )

    def handle(self, *args, **options):
        try:
            project = Project.objects.get(slug=options["project"])
        except Project.DoesNotExist:
            raise CommandError(f"no project with slug {options['project']!r}") from None
        overrides = {
            key: options[key]
            for key in (
                "backbone",
                "epochs",
                "batch_size",
                "max_length",
                "lora_r",
                "nproc",
                "gradient_checkpointing",
                "warm_start",
            )
            if options[key] is not None
        }
        try:
            run, created = run_create(
                project=project, trigger=TrainingRun.Trigger.COMMAND, config_overrides=overrides
            )
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc
        if not created:
            raise CommandError(
                f"run {run.pk} of {project.slug} is already {run.status}: wait for it or cancel it"
            )
        bar = TrainingProgress(self.stderr)
        run = run_execute(run_id=run.pk, on_progress=bar.update)
        bar.close()
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"run {run.pk} {run.status}: {run.error}")
        self.stdout.write(run_summary(run))
