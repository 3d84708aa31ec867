"""Reads of the reward model's records: active runs and versions, the resolved training config,
and the project's preference rows split for training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from annotate.models import Project
from annotate.selectors.dataset import DatasetFilter, DatasetStats, preference_rows
from annotate.splits import SPLITS, snapshot
from rewardtrain.core.config import TrainConfig
from rewardtrain.models import ModelVersion, TrainingRun


def run_active(*, project: Project) -> TrainingRun | None:
    """The project's queued or running run, if any (the database allows at most one)."""
    return TrainingRun.objects.filter(
        project=project, status__in=TrainingRun.ACTIVE_STATUSES
    ).first()


def version_active(*, project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, is_active=True).first()


def version_get(*, project: Project, version: int) -> ModelVersion:
    """One version by its number; raises ModelVersion.DoesNotExist."""
    return ModelVersion.objects.get(project=project, version=version)


def training_config_for(
    *, project: Project, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Defaults, then the project's stored overrides, then these overrides.

    The backbone falls back to REWARD_BACKBONE ("" = the shipped MiniLM). TRAINING_DEVICE,
    when set, wins over any stored device: it describes the machine that trains, not the
    project. Raises rewardtrain.core.config.ConfigError on unknown keys or bad values.
    """
    values: dict[str, Any] = {**(project.training_config or {}), **(overrides or {})}
    # The project's active-learning setting, unless the training settings name their own.
    values.setdefault("ensemble_size", project.ensemble_size)
    if not values.get("backbone"):
        values["backbone"] = project.reward_backbone or settings.REWARD_BACKBONE
    if settings.TRAINING_DEVICE:
        values["device"] = settings.TRAINING_DEVICE
    return TrainConfig.from_dict(values)


@dataclass
class TrainingData:
    """The project's preference rows by split, with the dataset's counts."""

    splits: dict[str, list[dict[str, Any]]]
    stats: DatasetStats = field(default_factory=DatasetStats)

    @property
    def train(self) -> list[dict[str, Any]]:
        return self.splits["train"]

    @property
    def validation(self) -> list[dict[str, Any]]:
        return self.splits["validation"]

    @property
    def test(self) -> list[dict[str, Any]]:
        return self.splits["test"]

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        """Counts per split, content hash, ties, the pairs left out as both bad, and the
        aggregation that made the labels."""
        rows = [row for split in SPLITS for row in self.splits[split]]
        return snapshot(
            rows,
            both_bad=self.stats.both_bad,
            comparisons=self.stats.comparisons,
            aggregation=self.stats.aggregation,
            **extra,
        )


def training_data(*, project: Project, flt: DatasetFilter | None = None) -> TrainingData:
    """All preference rows of a project under the shared dataset rule, split by prompt."""
    stats = DatasetStats()
    splits: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for row in preference_rows(project, flt or DatasetFilter(), stats):
        splits[row["split"]].append(row)
    return TrainingData(splits=splits, stats=stats)
