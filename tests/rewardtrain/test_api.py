"""The training-run API (rewardtrain/api.py) through APIClient, then the rows: "Retrain now",
a project's runs, one run's progress, cancel.

Also in tests/rewardtrain/test_tasks.py, beside the queue they need: create, join and cancel
in one flow (test_api_creates_then_joins_then_cancels), the 400 for settings that cannot train
here, the 503 with Redis stopped, and the 403 for non-staff on the project's runs."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import redis
from django.utils import timezone
from rest_framework.test import APIClient

from rewardtrain.models import ModelVersion, TrainingRun
from tests.factories import ProjectFactory
from tests.rewardtrain.queue_helpers import broker  # noqa: F401 - a fixture


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def run_at(project, *, minutes_ago: int, **fields) -> TrainingRun:
    """A run row created `minutes_ago` minutes ago (list order is by creation time)."""
    run = TrainingRun.objects.create(project=project, **fields)
    TrainingRun.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return run


@pytest.mark.django_db(transaction=True)
def test_retrain_now_queues_a_run_requested_by_the_staff_member(project, staff, broker):  # noqa: F811
    answer = api(staff).post(f"/api/projects/{project.slug}/training-runs/")

    assert answer.status_code == 201, answer.content
    body = answer.json()
    run = TrainingRun.objects.get()
    assert (run.project, run.status, run.trigger, run.requested_by) == (
        project,
        "queued",
        "admin",
        staff,
    )
    assert (body["id"], body["project"], body["joined"]) == (run.pk, project.slug, False)
    assert body["url"] == f"/api/training-runs/{run.pk}/"
    assert body["cancel_url"] == f"/api/training-runs/{run.pk}/cancel/"
    # One message on the training queue, naming this run.
    message = json.loads(redis.Redis.from_url(broker).lpop("training"))
    assert message["headers"]["task"] == "rewardtrain.train_run"
    assert message["headers"]["argsrepr"] == f"[{run.pk}]"


@pytest.mark.django_db
def test_the_list_is_the_projects_runs_newest_first(project, staff):
    old = run_at(project, minutes_ago=30, status="failed")
    new = run_at(project, minutes_ago=5, status="succeeded")
    middle = run_at(project, minutes_ago=10, status="cancelled")
    run_at(ProjectFactory(), minutes_ago=1, status="failed")

    listed = api(staff).get(f"/api/projects/{project.slug}/training-runs/").json()

    assert [r["id"] for r in listed] == [new.pk, middle.pk, old.pk]
    assert [r["status_label"] for r in listed] == ["Succeeded", "Cancelled", "Failed"]


@pytest.mark.django_db
def test_the_detail_is_the_runs_progress_as_stored(project, staff, tmp_path):
    running = TrainingRun.objects.create(
        project=project,
        status="running",
        progress={"step": 5, "total": 20, "loss": 0.5, "pairs_per_second": 12.5, "epoch": 1},
        loss_history=[{"step": 1, "loss": 0.7}, {"step": 5, "loss": 0.5}],
        device="cpu",
    )
    client = api(staff)

    body = client.get(f"/api/training-runs/{running.pk}/").json()

    assert (body["status"], body["active"], body["done"]) == ("running", True, False)
    assert (body["step"], body["total"], body["fraction"], body["epoch"]) == (5, 20, 0.25, 1)
    assert (body["loss"], body["pairs_per_second"]) == (0.5, 12.5)
    assert body["loss_curve"] == [[1, 0.7], [5, 0.5]]
    assert (body["device"], body["model_version"]) == ("cpu", None)

    TrainingRun.objects.filter(pk=running.pk).update(status="succeeded")
    ModelVersion.objects.create(
        project=project,
        run=running,
        version=1,
        path=str(tmp_path),
        backbone="tiny",
        is_active=True,
        promotion={"promoted": True, "reason": "the first version"},
    )
    body = client.get(f"/api/training-runs/{running.pk}/").json()
    assert (body["fraction"], body["done"]) == (1.0, True)
    assert body["model_version"] == {
        "version": 1,
        "is_active": True,
        "promoted": True,
        "reason": "the first version",
    }
    assert client.get(f"/api/training-runs/{running.pk + 1}/").status_code == 404


@pytest.mark.django_db
def test_cancel_ends_a_queued_run_and_asks_a_running_one_to_stop(project, staff):
    queued = TrainingRun.objects.create(project=project, status="queued")
    running = TrainingRun.objects.create(project=ProjectFactory(), status="running")
    client = api(staff)

    answer = client.post(f"/api/training-runs/{queued.pk}/cancel/")
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["done"]) == ("cancelled", True)
    queued.refresh_from_db()
    assert (queued.status, queued.cancel_requested) == ("cancelled", True)
    assert queued.finished_at is not None

    answer = client.post(f"/api/training-runs/{running.pk}/cancel/")
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["cancel_requested"]) == ("running", True)
    running.refresh_from_db()
    assert (running.status, running.cancel_requested, running.finished_at) == (
        "running",
        True,
        None,
    )


@pytest.mark.django_db
def test_cancelling_a_run_that_ended_is_a_409_and_changes_nothing(project, staff):
    ended = TrainingRun.objects.create(project=project, status="succeeded")

    answer = api(staff).post(f"/api/training-runs/{ended.pk}/cancel/")

    assert answer.status_code == 409
    assert answer.json() == {
        "detail": f"Run {ended.pk} has already ended (succeeded).",
        "status": "succeeded",
    }
    ended.refresh_from_db()
    assert (ended.status, ended.cancel_requested) == ("succeeded", False)


@pytest.mark.django_db
def test_a_labeler_can_neither_read_nor_cancel_a_run(project, labeler):
    queued = TrainingRun.objects.create(project=project, status="queued")
    client = api(labeler)

    assert client.get(f"/api/training-runs/{queued.pk}/").status_code == 403
    assert client.post(f"/api/training-runs/{queued.pk}/cancel/").status_code == 403
    queued.refresh_from_db()
    assert (queued.status, queued.cancel_requested) == ("queued", False)
