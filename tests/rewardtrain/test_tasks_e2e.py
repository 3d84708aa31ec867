"""The queue for real: a Celery worker process, the test Redis and the test database. An admin
presses retrain through the API, the worker trains a tiny model, promotes it and rescores the
open pairs; then a worker killed mid-run leaves a failed run and the active model serving."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotate.models import Choice, Pair, Project
from annotate.services.labeling import comparison_create
from rewardtrain import tasks
from rewardtrain.models import Evaluation, ModelVersion, TrainingRun
from rewardtrain.selectors.dashboard import TERMINAL
from tests.rewardtrain.queue_helpers import (  # noqa: F401 - fixtures
    TINY_TRAINING,
    broker,
    seed_labeled_project,
    start_worker,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SPLITS = {"train": 24, "validation": 4, "test": 4}


def finished(run_id: int) -> TrainingRun | None:
    return TrainingRun.objects.filter(pk=run_id, status__in=TERMINAL).first()


def test_retrain_through_the_api_trains_promotes_rescores_and_survives_a_killed_worker(
    project,
    labeler,
    staff,
    tmp_path,
    settings,
    start_worker,  # noqa: F811
):
    open_pairs = seed_labeled_project(project, labeler, tmp_path / "tiny-bert", per_split=SPLITS)
    api = APIClient()
    api.force_authenticate(staff)
    url = f"/api/projects/{project.slug}/training-runs/"

    # Pressed twice before any worker runs: one run, the second request joins it.
    first = api.post(url)
    assert first.status_code == 201, first.content
    run_id = first.json()["id"]
    again = api.post(url)
    assert (again.status_code, again.json()["id"], again.json()["joined"]) == (200, run_id, True)

    worker = start_worker()
    run = wait_for(lambda: finished(run_id), what="the first run to end", worker=worker)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    version = ModelVersion.objects.get(run=run)
    assert version.is_active and version.promotion["promoted"] is True
    assert Evaluation.objects.filter(model_version=version, kind="training").count() == 1

    # The promotion queued a rescoring of the open pairs (a second task, same worker).
    open_ids = [p.pk for p in open_pairs]
    wait_for(
        lambda: not Pair.objects.filter(pk__in=open_ids, model_p_a__isnull=True).exists(),
        what="the open pairs to be scored",
        worker=worker,
    )
    for pair in Pair.objects.filter(pk__in=open_ids):
        assert 0 < pair.model_p_a < 1 and pair.model_uncertainty is not None

    # The hourly re-evaluation: nothing new since training, nothing stored; after a new
    # comparison, a periodic evaluation of the active version on the current test split.
    assert tasks.evaluate_active(project.pk) is None
    comparison_create(pair=open_pairs[0], labeler=labeler, choice=Choice.A)
    evaluation = Evaluation.objects.get(pk=tasks.evaluate_active(project.pk))
    assert (evaluation.kind, evaluation.model_version) == ("periodic", version)
    assert 0 <= evaluation.metrics["accuracy"] <= 1

    progress = api.get(f"/api/training-runs/{run_id}/").json()
    assert (progress["status"], progress["fraction"], progress["done"]) == ("succeeded", 1.0, True)
    assert progress["step"] == progress["total"] > 0
    assert progress["loss_curve"] and progress["pairs_per_second"] > 0
    assert progress["model_version"] == {
        "version": 1,
        "is_active": True,
        "promoted": True,
        "reason": version.promotion["reason"],
    }
    page = Client()
    page.force_login(staff)
    html = page.get(f"/projects/{project.slug}/training/").content.decode()
    assert f'data-run="{run_id}"' in html
    assert 'data-status="succeeded">Succeeded' in html
    assert '<tr data-version="1" class="active">' in html
    assert 'class="metrics-chart"' in html
    assert html.count('data-series="accuracy"') == 2  # at training, and the re-evaluation

    # A run long enough to be killed in the middle of training.
    Project.objects.filter(pk=project.pk).update(
        training_config={**TINY_TRAINING, "epochs": 1000, "early_stopping_patience": 1000}
    )
    doomed_id = api.post(url).json()["id"]
    wait_for(
        lambda: TrainingRun.objects.filter(pk=doomed_id, progress__step__gte=1).exists(),
        what="the second run to report a step",
        worker=worker,
    )
    worker.kill()
    assert TrainingRun.objects.get(pk=doomed_id).status == TrainingRun.Status.RUNNING

    # The beat's check: with no worker beating, the run is failed; v1 keeps serving.
    settings.RUN_HEARTBEAT_TIMEOUT_SECONDS = 0
    assert tasks.fail_stale_runs() == 1
    doomed = TrainingRun.objects.get(pk=doomed_id)
    assert doomed.status == TrainingRun.Status.FAILED
    assert "no heartbeat" in doomed.error
    assert list(ModelVersion.objects.values_list("version", "is_active")) == [(1, True)]

    # The next trigger works: the project's one active slot is free again.
    third = api.post(url)
    assert third.status_code == 201
    assert TrainingRun.objects.get(pk=third.json()["id"]).status == TrainingRun.Status.QUEUED
