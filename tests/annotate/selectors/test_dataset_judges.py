"""AI judges in the training data: their comparisons are votes under the project's aggregation
when its judges enter training; a judge whose answers are noise is found out by the
reliability models (reliability near chance) and barely moves the training targets, where
majority vote takes it at its word."""

from __future__ import annotations

import numpy as np
import pytest

from annotate.models import Comparison, Project
from annotate.selectors.dataset import (
    DatasetFilter,
    DatasetStats,
    dataset_posteriors,
    preference_rows,
)
from annotate.services.review import membership_exclude
from tests.annotate.selectors.test_aggregation import (
    aggregate,
    p_a_by_pair,
    planted,  # noqa: F401 - fixture
    right,
)
from tests.factories import JudgeFactory

pytestmark = pytest.mark.django_db
MODELS = ("dawid_skene", "glad", "mace")


def noise_judge(project, pairs, seed: int = 5):
    """A judge that reads every pair and answers at random, sure of itself or not."""
    judge = JudgeFactory(project=project, name="noise")
    rng = np.random.default_rng(seed)
    Comparison.objects.bulk_create(
        Comparison(
            pair=pair,
            project=project,
            labeler=judge.user,
            source=Comparison.Source.AI_JUDGE,
            choice="a" if rng.random() < 0.5 else "b",
            p_chosen=float(rng.uniform(0.5, 1.0)),
        )
        for pair in pairs
    )
    return judge


def targets(project) -> dict[str, dict[int, float]]:
    """P(A better) of every pair under each aggregation."""
    out = {}
    for method in ("majority", *MODELS):
        aggregate(project, method)
        out[method] = p_a_by_pair(project)
    return out


def moved(before: dict[int, float], after: dict[int, float]) -> float:
    return float(np.mean([abs(after[k] - before[k]) for k in before]))


def test_a_noise_judge_is_found_out_and_barely_moves_the_targets(project, planted):  # noqa: F811
    crowd, users, pairs = planted
    before = targets(project)
    judge = noise_judge(project, pairs)
    after = targets(project)
    honest = [u.id for u, kind in zip(users, crowd.kinds, strict=True) if kind == "honest"]
    for method in MODELS:
        aggregate(project, method)
        fit = dataset_posteriors(project)
        reliability = fit.reliability[judge.user_id]
        if method == "mace":
            # MACE's reliability is the probability of knowing the answer: none here.
            assert reliability < 0.25, method
        else:
            # The probability of a right vote: a coin's.
            assert abs(reliability - 0.5) < 0.1, method
        assert np.mean([fit.reliability[u] for u in honest]) > reliability + 0.1, method
        # Planted (seed 5): the models move P(A) by 0.02-0.07 on average and their labels'
        # accuracy by at most a point; majority moves P(A) by 0.12 and loses a point.
        assert moved(before[method], after[method]) < 0.08, method
        assert moved(before[method], after[method]) < moved(before["majority"], after["majority"])
        accuracy = right(before[method], pairs, crowd)
        assert right(after[method], pairs, crowd) >= accuracy - 0.02, method
    # Under majority the judge is one vote among three or four: it moves the labels.
    assert moved(before["majority"], after["majority"]) > 0.1
    assert right(after["majority"], pairs, crowd) < right(before["majority"], pairs, crowd)


def test_judges_leave_training_when_the_project_says_so_or_staff_exclude_them(project, planted):  # noqa: F811
    _crowd, _users, pairs = planted
    before = targets(project)
    judge = noise_judge(project, pairs)
    Project.objects.filter(pk=project.pk).update(judges_in_training=False)
    project.refresh_from_db()
    assert targets(project) == before
    Project.objects.filter(pk=project.pk).update(judges_in_training=True)
    project.refresh_from_db()
    membership_exclude(project=project, user=judge.user)
    assert targets(project) == before


def test_the_dataset_counts_the_judges_votes(project, planted):  # noqa: F811
    crowd, _users, pairs = planted
    noise_judge(project, pairs)
    stats = DatasetStats()
    rows = list(preference_rows(project, DatasetFilter(), stats))
    assert stats.ai_judge_comparisons == len(pairs)
    assert stats.comparisons == len(crowd.pair) + len(pairs)
    assert all(row["ai_judge_n"] == 1 and row["n"] == 4 for row in rows)
    humans_only = DatasetStats()
    list(preference_rows(project, DatasetFilter(include_ai_judge=False), humans_only))
    assert humans_only.ai_judge_comparisons == 0
    assert humans_only.comparisons == len(crowd.pair)
