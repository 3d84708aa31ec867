"""Reads of the reward model's records: active runs and versions, the resolved training config,
and the project's training rows (pairs, rankings, ratings) split for training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from annotate.models import Project, Rating
from annotate.selectors.dataset import DatasetFilter, DatasetStats, preference_rows
from annotate.splits import SPLITS, snapshot
from rewardtrain.core.config import TrainConfig
from rewardtrain.models import ModelVersion, TrainingRun
from rewardtrain.selectors.set_rows import SetStats, aspect_specs, ranking_rows, rating_rows


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
    project. A project with ratings trains an aspect head on its aspects (set_rows.aspect_specs)
    unless the settings name their own. Raises rewardtrain.core.config.ConfigError on unknown
    keys or bad values, and for a rated aspect without a weight.
    """
    values: dict[str, Any] = {**(project.training_config or {}), **(overrides or {})}
    # The project's active-learning setting, unless the training settings name their own.
    values.setdefault("ensemble_size", project.ensemble_size)
    if not values.get("aspects") and Rating.objects.filter(project=project).exists():
        values["aspects"] = aspect_specs(project=project)
    if not values.get("backbone"):
        values["backbone"] = project.reward_backbone or settings.REWARD_BACKBONE
    if settings.TRAINING_DEVICE:
        values["device"] = settings.TRAINING_DEVICE
    return TrainConfig.from_dict(values)


@dataclass
class TrainingData:
    """The project's training rows by split, with the dataset's counts: `splits` holds the
    pairs (preference rows), `rankings` and `ratings` the rows of set_rows.py.

    `train` and `validation` are every kind together, what the trainer takes; `test` is the
    held-out pairs alone (what pair metrics and snapshots read), `test_rankings` and
    `test_ratings` the held-out rankings and ratings."""

    splits: dict[str, list[dict[str, Any]]]
    stats: DatasetStats = field(default_factory=DatasetStats)
    rankings: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: _empty())
    ratings: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: _empty())
    set_stats: SetStats = field(default_factory=SetStats)

    def rows(self, split: str) -> list[dict[str, Any]]:
        return self.splits[split] + self.rankings[split] + self.ratings[split]

    @property
    def train(self) -> list[dict[str, Any]]:
        return self.rows("train")

    @property
    def validation(self) -> list[dict[str, Any]]:
        return self.rows("validation")

    @property
    def test(self) -> list[dict[str, Any]]:
        return self.splits["test"]

    @property
    def test_rankings(self) -> list[dict[str, Any]]:
        return self.rankings["test"]

    @property
    def test_ratings(self) -> list[dict[str, Any]]:
        return self.ratings["test"]

    @property
    def has_sets(self) -> bool:
        """Whether any ranking or rating row, or a left-out one, came from the project."""
        counts = self.set_stats
        return bool(counts.rankings or counts.all_bad or counts.ratings or counts.ratings_left_out)

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        """Counts per split, content hash, ties, the pairs left out as both bad, and the
        aggregation that made the labels (of the pairs); with rankings or ratings, their
        counts under "sets"."""
        rows = [row for split in SPLITS for row in self.splits[split]]
        if self.has_sets:
            extra = {"sets": self.set_stats.as_dict(), **extra}
        return snapshot(
            rows,
            both_bad=self.stats.both_bad,
            comparisons=self.stats.comparisons,
            aggregation=self.stats.aggregation,
            **extra,
        )


def _empty() -> dict[str, list[dict[str, Any]]]:
    return {s: [] for s in SPLITS}


def training_data(*, project: Project, flt: DatasetFilter | None = None) -> TrainingData:
    """All training rows of a project, split by prompt: pairs under the shared dataset rule
    (`flt` filters them), rankings and ratings as set_rows.py reads them."""
    stats = DatasetStats()
    splits: dict[str, list[dict[str, Any]]] = _empty()
    for row in preference_rows(project, flt or DatasetFilter(), stats):
        splits[row["split"]].append(row)
    set_stats = SetStats()
    rankings, ratings = _empty(), _empty()
    for row in ranking_rows(project=project, stats=set_stats):
        rankings[row["split"]].append(row)
    for row in rating_rows(project=project, stats=set_stats):
        ratings[row["split"]].append(row)
    return TrainingData(splits, stats, rankings, ratings, set_stats)
