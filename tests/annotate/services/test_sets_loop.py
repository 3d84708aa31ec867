"""Set judgments reach the rest of the loop: each labeler's ranking of a set, and each imported
rater's judgment of one, counts in project.comparison_count, which auto-retraining, the quality
recompute rule and a run's comparison_count_at_start read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.utils import timezone

from annotate.hashing import user_message
from annotate.models import Project, QualityResult, TaskKind
from annotate.services.imports import import_file
from annotate.services.quality import READY, STALE, quality_compute, quality_inputs, quality_status
from annotate.services.rankings import (
    JudgmentInvalid,
    project_task_set,
    response_set_submit,
    response_sets_create,
)
from annotate.services.set_leasing import response_set_lease_next
from rewardtrain.models import TrainingRun
from rewardtrain.services.runs import run_create
from rewardtrain.services.triggers import retrain_due_projects
from tests.factories import MembershipFactory, PromptFactory, ResponseFactory, UserFactory

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parents[1] / "importers" / "data"
UF_ASPECTS = [
    {"name": n, "description": "", "min": 1, "max": 5}
    for n in ("instruction_following", "honesty", "truthfulness", "helpfulness")
]


@pytest.fixture
def ranking(project):
    """The demo project ranking K = 3 responses, retraining after 2 new judgments (threshold
    only), with four sets of three responses; alice (the fixture's labeler) is on it."""
    Project.objects.filter(pk=project.pk).update(
        task_kind=TaskKind.RANKING,
        ranking_size=3,
        redundancy=2,
        auto_retrain=True,
        retrain_min_new_comparisons=2,
        retrain_interval_minutes=None,
    )
    project.refresh_from_db()
    for i in range(4):
        prompt = PromptFactory(project=project, messages=user_message(f"Question {i}?"))
        for j in range(3):
            ResponseFactory(prompt=prompt, text=f"Answer {i}.{j}")
    assert response_sets_create(project=project) == 4
    return project


def member(project: Project, username: str):
    user = UserFactory(username=username)
    MembershipFactory(project=project, user=user)
    return user


def rank_next(project: Project, labeler) -> int:
    """Lease the labeler's next set and rank it as shown, through the real services; the set."""
    lease = response_set_lease_next(project=project, labeler=labeler)
    assert lease is not None
    response_set_submit(
        labeler=labeler, set_id=lease.set_id, ranking=[r.id for r in lease.responses]
    )
    return lease.set_id


def count(project: Project) -> int:
    return Project.objects.values_list("comparison_count", flat=True).get(pk=project.pk)


def due() -> list[tuple[str, str]]:
    return [(d.project.slug, d.trigger) for d in retrain_due_projects(now=timezone.now())]


def test_two_set_judgments_make_a_ranking_project_due_for_retraining(ranking, labeler):
    bob = member(ranking, "bob")
    assert due() == []
    rank_next(ranking, labeler)
    assert count(ranking) == 1 and due() == []  # 1 new: under the threshold of 2

    # A refused judgment stores nothing and counts nothing.
    lease = response_set_lease_next(project=ranking, labeler=bob)
    with pytest.raises(JudgmentInvalid, match="omits"):
        response_set_submit(labeler=bob, set_id=lease.set_id, ranking=[lease.responses[0].id])
    assert count(ranking) == 1
    response_set_submit(labeler=bob, set_id=lease.set_id, ranking=[r.id for r in lease.responses])
    assert count(ranking) == 2
    assert due() == [("demo", TrainingRun.Trigger.THRESHOLD)]

    # The run started now records the judgments it saw; the next one is due two later.
    run, created = run_create(project=ranking, trigger=TrainingRun.Trigger.THRESHOLD)
    assert created and run.comparison_count_at_start == 2
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.SUCCEEDED, started_at=timezone.now()
    )
    rank_next(ranking, labeler)
    assert due() == []
    rank_next(ranking, bob)
    assert count(ranking) == 4 and due() == [("demo", TrainingRun.Trigger.THRESHOLD)]


def test_a_swapped_repeat_is_not_counted(ranking, labeler):
    prompt_texts = [f"More {i}?" for i in range(4)]
    for text in prompt_texts:
        prompt = PromptFactory(project=ranking, messages=user_message(text))
        for j in range(3):
            ResponseFactory(prompt=prompt, text=f"{text} {j}")
    response_sets_create(project=ranking)
    for _ in range(6):
        rank_next(ranking, labeler)
    assert count(ranking) == 6
    Project.objects.filter(pk=ranking.pk).update(repeat_rate=1.0)
    ranking.refresh_from_db()
    repeat = response_set_lease_next(project=ranking, labeler=labeler)
    assert repeat.is_repeat
    response_set_submit(
        labeler=labeler, set_id=repeat.set_id, ranking=[r.id for r in repeat.responses]
    )
    assert count(ranking) == 6


def test_quality_goes_stale_after_enough_set_judgments(ranking, labeler, settings):
    every = settings.QUALITY_RECOMPUTE_EVERY = 2
    bob = member(ranking, "bob")
    rank_next(ranking, labeler)
    rank_next(ranking, bob)
    quality_compute(project_id=ranking.pk)
    result = QualityResult.objects.get(project=ranking)
    assert result.comparison_count == 2

    def status() -> str:
        ranking.refresh_from_db()
        return quality_status(
            result=result, project=ranking, inputs=quality_inputs(ranking), every=every
        )

    assert status() == READY
    rank_next(ranking, labeler)
    assert status() == READY  # 1 new
    rank_next(ranking, bob)
    assert status() == STALE  # 2 new


@pytest.mark.parametrize(
    ("name", "aspects", "judgments"),
    [
        # Two rows without ids, each one rater's ratings and score ranking of its completions
        # (their import keys are hashes: the rater is told at the import, not from the key).
        ("ultrafeedback_rows.jsonl", UF_ASPECTS, 2),
        # Four rows, each one rater's ratings of one response, merged into two sets.
        ("helpsteer2_rows.jsonl", None, 4),
        # Two annotators' rankings of the first record, one of the second (the other is a
        # draft), none of the third.
        ("argilla_rows.jsonl", None, 3),
        # One tree: each ranking event of a prompter's replies.
        ("oasst_trees.jsonl", None, "rankings"),
    ],
)
def test_an_import_counts_each_rater_judgment_of_a_set_once(project, name, aspects, judgments):
    if aspects:
        project_task_set(project=project, task_kind="ranking_rating", aspects=aspects)
    before = count(project)
    result = import_file(project=project, path=DATA / name)
    if judgments == "rankings":
        judgments = result.rankings_created
    assert judgments > 0 and result.set_judgments_created == judgments
    assert count(project) == before + judgments
    # A re-import stores nothing and counts nothing.
    again = import_file(project=project, path=DATA / name)
    assert again.set_judgments_created == 0 and count(project) == before + judgments


def test_a_rater_adding_to_a_set_counts_once(project, tmp_path):
    """An Argilla record imported again with a new annotator's answer: that one rater's
    ranking is new, the earlier annotator's is not counted twice."""
    record = {
        "fields": {"prompt": "Name a colour.", "response-1": "Red", "response-2": "Blue"},
        "external_id": "rec-9",
        "responses": [
            {
                "user_id": "u1",
                "status": "submitted",
                "values": {
                    "ranking": {
                        "value": [
                            {"rank": 1, "value": "response-1"},
                            {"rank": 2, "value": "response-2"},
                        ]
                    }
                },
            }
        ],
    }
    first = tmp_path / "first.jsonl"
    first.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert import_file(project=project, path=first).set_judgments_created == 1
    record["responses"].append({**record["responses"][0], "user_id": "u2"})
    second = tmp_path / "second.jsonl"
    second.write_text(json.dumps(record) + "\n", encoding="utf-8")
    result = import_file(project=project, path=second)
    assert (result.rankings_created, result.set_judgments_created) == (1, 1)
    assert count(project) == 2


def test_the_home_page_counts_a_ranking_projects_sets_and_the_labelers_judgments(
    ranking, labeler, client
):
    from annotate.selectors.labeling import projects_for_labeler

    member(ranking, "bob")
    rank_next(ranking, labeler)
    rank_next(ranking, labeler)
    (progress,) = projects_for_labeler(labeler=labeler)
    assert (progress.unit, progress.units, progress.mine, progress.wanted) == ("set", 4, 2, 8)
    client.force_login(labeler)
    row = client.get("/").content.decode()
    assert "4 sets to ranking, 2 judgments per set" in row
    assert "2 / 8" in row
