"""Rankings and ratings through training runs: rows read from the database, split by prompt as
pairs are, trained end to end on a tiny offline backbone, and evaluated on the held-out split
(run on SQLite and on PostgreSQL)."""

import json
from pathlib import Path

import pytest

from annotate.models import Ranking
from annotate.services.rankings import (
    DEFAULT_ASPECT_WEIGHTS,
    JudgmentInvalid,
    aspects_validate,
    response_set_submit,
)
from annotate.services.review import membership_exclude
from annotate.services.set_leasing import response_set_lease_next
from rewardtrain.core.aspects import HELPSTEER2_ASPECTS
from rewardtrain.core.config import ConfigError
from rewardtrain.core.rankings import ranking_pair_rows
from rewardtrain.core.scoring import RewardScorer
from rewardtrain.models import ModelVersion, TrainingRun
from rewardtrain.selectors.runs import training_data
from rewardtrain.services import run_create, run_execute, version_evaluate
from tests.factories import MembershipFactory, UserFactory
from tests.rewardtrain.judged import add_judged_pairs, use_tiny_backbone
from tests.rewardtrain.judged_sets import (
    RANKING,
    RATING,
    add_prompts,
    judge_all,
    quality_of,
    set_task,
)

pytestmark = pytest.mark.django_db

Status = TrainingRun.Status
COMMAND = TrainingRun.Trigger.COMMAND


def member(project, name):
    user = UserFactory(username=name)
    MembershipFactory(project=project, user=user)
    return user


def train(project):
    run, created = run_create(project=project, trigger=COMMAND)
    assert created
    return run_execute(run_id=run.pk)


def prompt_keys(rows):
    return {row["prompt_key"] for row in rows}


@pytest.fixture
def ranked(project, labeler, backbone):
    """40 prompts of 4 responses ranked by alice (some with a tie), one set marked all bad by
    bob, the rest ranked by carl, who is then excluded; a swapped repeat of alice's; and 24
    judged pairs on prompts of their own."""
    use_tiny_backbone(project, backbone)
    set_task(project, RANKING)
    project.redundancy = 2
    project.save(update_fields=["redundancy"])
    add_prompts(project, 40)
    assert judge_all(project, labeler, rank=True, rate=False) == 40
    bob, carl = member(project, "bob"), member(project, "carl")
    lease = response_set_lease_next(project=project, labeler=bob)
    response_set_submit(labeler=bob, set_id=lease.set_id, all_bad=True)
    assert judge_all(project, carl, rank=True, rate=False, seed=2) == 39
    membership_exclude(project=project, user=carl, reason="test")
    first = Ranking.objects.filter(labeler=labeler).first()
    Ranking.objects.create(
        response_set=first.response_set,
        project=project,
        labeler=labeler,
        groups=first.groups[::-1],
        is_repeat=True,
    )
    add_judged_pairs(project, labeler, 24, start=100)
    return project


def test_rankings_train_end_to_end_and_the_test_rankings_stay_held_out(ranked):
    data = training_data(project=ranked)
    # alice's 40 rankings only: not bob's all-bad one (counted), nor carl's, nor the repeat.
    assert data.set_stats.rankings == 40 and data.set_stats.all_bad == 1
    assert sum(len(rows) for rows in data.rankings.values()) == 40
    assert all(
        row["ranking"][0][0].startswith("good good good")
        for s in data.rankings.values()
        for row in s
    )
    held_out = data.test_rankings
    assert held_out and data.rankings["validation"]
    trained_on = data.train + data.validation
    # Whole prompts go to one split: no held-out prompt's ranking or pair is trained on.
    assert prompt_keys(held_out).isdisjoint(prompt_keys(trained_on))
    assert prompt_keys(data.test).isdisjoint(prompt_keys(trained_on))
    assert not any(row in trained_on for row in held_out)

    run = train(ranked)

    assert run.status == Status.SUCCEEDED, run.error
    sets = run.snapshot["sets"]
    assert (sets["rankings"], sets["all_bad"]) == (40, 1)
    assert sets["counts"]["test"]["rankings"] == len(held_out)
    assert run.config["aspects"] == []  # no ratings: one output, the reward
    version = ModelVersion.objects.get(project=ranked)
    metrics = version.metrics
    implied = [p for row in held_out for p in ranking_pair_rows(row, "soft")]
    decided = [p for p in implied if not p["tie"]]
    assert metrics["test_counts"] == {
        "pairs": len(data.test),
        "rankings": len(held_out),
        "ranking_pairs": len(implied),
        "rated_responses": 0,
    }
    # The combined figures (what promotion compares) cover pairs and implied pairs alike.
    assert metrics["n"] == len(data.test) + len(implied)
    assert metrics["by_kind"]["rankings"]["n_decided"] == len(decided)
    assert metrics["by_kind"]["pairs"]["n"] == len(data.test) > 0
    assert 0.0 <= metrics["by_kind"]["rankings"]["accuracy"] <= 1.0
    assert version.evaluations.get().snapshot["rankings"] == len(held_out)

    # Re-evaluation on the current split reads the rankings too.
    evaluation = version_evaluate(version=version)
    assert evaluation.metrics["test_counts"]["rankings"] == len(held_out)
    assert evaluation.metrics["by_kind"]["rankings"]["accuracy"] == pytest.approx(
        metrics["by_kind"]["rankings"]["accuracy"]
    )


def test_the_training_page_shows_the_figures_by_kind(client, staff, ranked):
    assert train(ranked).status == Status.SUCCEEDED
    client.force_login(staff)
    page = client.get(f"/projects/{ranked.slug}/training/").content.decode()
    by_kind = ModelVersion.objects.get().metrics["by_kind"]
    assert f"rankings: {by_kind['rankings']['accuracy']:.3f} of " in page
    assert f"pairs: {by_kind['pairs']['accuracy']:.3f} of " in page


@pytest.fixture
def rated(project, labeler, backbone):
    """30 prompts of 4 responses, each rated by alice and by bob (bob a point more lenient on
    clarity), on helpfulness (HelpSteer2's default weight) and clarity (weight 0.3)."""
    use_tiny_backbone(project, backbone, epochs=2)
    set_task(project, RATING)
    project.redundancy = 2
    project.save(update_fields=["redundancy"])
    add_prompts(project, 30)
    assert judge_all(project, labeler, rank=False, rate=True) == 30
    assert judge_all(project, member(project, "bob"), rank=False, rate=True, seed=1) == 30
    return project


def test_ratings_are_averaged_per_response(rated):
    data = training_data(project=rated)
    rows = [row for split in data.ratings.values() for row in split]
    assert len(rows) == 120 and data.set_stats.ratings == 2 * 120 * 2
    for row in rows:
        q = quality_of(row["response"])
        assert row["ratings"] == {"helpfulness": q, "clarity": q + 1.5}
        assert row["n"] == 2
    assert data.test_ratings and prompt_keys(data.test_ratings).isdisjoint(
        prompt_keys(data.train + data.validation)
    )


def test_ratings_train_the_aspect_head_and_evaluate_per_aspect(rated):
    run, _ = run_create(project=rated, trigger=COMMAND)
    # The project's aspects with weights: helpfulness HelpSteer2's default, clarity its own.
    assert run.config["aspects"] == [
        {
            "name": "helpfulness",
            "min": 0,
            "max": 4,
            "weight": 0.65,
            "description": "Meets the request.",
        },
        {"name": "clarity", "min": 1, "max": 5, "weight": 0.3, "description": "Easy to read."},
    ]
    run = run_execute(run_id=run.pk)
    assert run.status == Status.SUCCEEDED, run.error
    version = ModelVersion.objects.get(project=rated)
    saved = json.loads((Path(version.path) / "prefloop.json").read_text())
    assert [(a["name"], a["weight"]) for a in saved["aspects"]] == [
        ("helpfulness", 0.65),
        ("clarity", 0.3),
    ]
    data = training_data(project=rated)
    figures = version.metrics["aspects"]
    assert set(figures) == {"helpfulness", "clarity"}
    for name in figures:
        assert figures[name]["count"] == len(data.test_ratings)
        assert figures[name]["rmse"] is not None and figures[name]["rmse"] >= 0
    assert version.metrics["test_counts"]["rated_responses"] == len(data.test_ratings)
    assert version.promotion["reason"] == "no active model yet"

    scorer = RewardScorer.load(version.path, device="cpu")
    (scored,) = scorer.score_aspects([[{"role": "user", "content": "w1"}]], ["good good good w3"])
    assert set(scored["aspects"]) == {"helpfulness", "clarity"}
    # The reward is the weighted sum of the aspects, each normalised to 0..1 by its scale.
    helpful, clear = scored["aspects"]["helpfulness"], scored["aspects"]["clarity"]
    assert scored["reward"] == pytest.approx(0.65 * helpful / 4 + 0.3 * (clear - 1) / 4)

    # A second run has no pairs to compare accuracy on: promotion compares aspect RMSE.
    second = train(rated)
    assert second.status == Status.SUCCEEDED, second.error
    newer = ModelVersion.objects.get(project=rated, version=2)
    assert "aspect RMSE" in newer.promotion["reason"]
    assert newer.metrics["baseline_aspects"].keys() == figures.keys()


def test_a_rated_aspect_without_a_weight_stops_the_run_before_it_exists(project, labeler, backbone):
    use_tiny_backbone(project, backbone)
    honesty = [{"name": "honesty", "description": "", "min": 1, "max": 5}]
    set_task(project, RATING, aspects=honesty)
    add_prompts(project, 1)
    lease = response_set_lease_next(project=project, labeler=labeler)
    ratings = [{"response_id": r.id, "aspect": "honesty", "value": 3} for r in lease.responses]
    response_set_submit(labeler=labeler, set_id=lease.set_id, ratings=ratings)
    with pytest.raises(ConfigError, match="aspect 'honesty' of project demo has no weight"):
        run_create(project=project, trigger=COMMAND)
    assert not TrainingRun.objects.exists()


def test_aspect_weights_are_checked_where_aspects_are_set():
    assert DEFAULT_ASPECT_WEIGHTS == {a["name"]: a["weight"] for a in HELPSTEER2_ASPECTS}
    plain = [{"name": "honesty", "min": 1, "max": 5}]
    # Kept when given; required (for names without a default) where a person edits them.
    assert aspects_validate(plain) == [{"name": "honesty", "description": "", "min": 1, "max": 5}]
    with pytest.raises(JudgmentInvalid, match="'honesty' needs a weight"):
        aspects_validate(plain, require_weights=True)
    weighted = [{**plain[0], "weight": -0.5}, {"name": "helpfulness", "min": 0, "max": 4}]
    assert [a.get("weight") for a in aspects_validate(weighted, require_weights=True)] == [
        -0.5,
        None,
    ]
    for bad in ("0.5", True, float("nan"), 1e6):
        with pytest.raises(JudgmentInvalid, match="weight must be a number"):
            aspects_validate([{**plain[0], "weight": bad}])
