"""Triggers, tasks and the training-run API against a real Redis (no worker: what reaches
the queue is read from Redis itself), and the beat's rule for when a project is due."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import redis
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.models import Comparison, Project
from annotate.services.imports import import_file
from config.celery import app
from rewardtrain import tasks
from rewardtrain.models import ModelVersion, TrainingRun
from rewardtrain.services.triggers import retrain_due_projects, training_request
from scripts.local_redis import start_local_redis
from tests.factories import ProjectFactory, make_pair
from tests.rewardtrain.queue_helpers import broker  # noqa: F401 - a fixture

Status, Trigger = TrainingRun.Status, TrainingRun.Trigger


def queued_messages(url: str, queue: str) -> int:
    return redis.Redis.from_url(url).llen(queue)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def past_run(project: Project, *, status: str, count: int, minutes_ago: int = 0) -> TrainingRun:
    started = timezone.now() - timedelta(minutes=minutes_ago)
    return TrainingRun.objects.create(
        project=project,
        status=status,
        comparison_count_at_start=count,
        started_at=started,
        finished_at=started,
    )


def set_counts(project: Project, comparisons: int) -> None:
    Project.objects.filter(pk=project.pk).update(comparison_count=comparisons)


# --- When is a project due ---------------------------------------------------------------


@pytest.fixture
def auto_project(project):
    project.auto_retrain = True
    project.retrain_min_new_comparisons = 3
    project.save()
    return project


def due(now=None) -> list[tuple[str, str]]:
    return [(d.project.slug, d.trigger) for d in retrain_due_projects(now=now or timezone.now())]


def test_due_only_past_the_threshold_of_new_comparisons(auto_project):
    set_counts(auto_project, 2)
    assert due() == []
    set_counts(auto_project, 3)
    assert due() == [("demo", Trigger.THRESHOLD)]

    # Counted from the last successful run, not from the first comparison.
    past_run(auto_project, status=Status.SUCCEEDED, count=3)
    assert due() == []
    set_counts(auto_project, 5)
    assert due() == []
    set_counts(auto_project, 6)
    assert due() == [("demo", Trigger.THRESHOLD)]


def test_not_due_while_a_run_is_queued_or_when_auto_retrain_is_off(auto_project):
    set_counts(auto_project, 10)
    run = TrainingRun.objects.create(project=auto_project)
    assert due() == []
    TrainingRun.objects.filter(pk=run.pk).update(
        status=Status.SUCCEEDED, finished_at=timezone.now()
    )
    Project.objects.filter(pk=auto_project.pk).update(auto_retrain=False)
    assert due() == []


def test_due_on_schedule_with_new_data_once_the_interval_passed(auto_project):
    auto_project.retrain_min_new_comparisons = 100
    auto_project.retrain_interval_minutes = 60
    auto_project.save()
    past_run(auto_project, status=Status.SUCCEEDED, count=5, minutes_ago=30)
    set_counts(auto_project, 6)
    assert due() == []
    assert due(timezone.now() + timedelta(minutes=31)) == [("demo", Trigger.SCHEDULE)]
    # The same data would train the same model: no new comparison, no run.
    set_counts(auto_project, 5)
    assert due(timezone.now() + timedelta(minutes=31)) == []


def test_a_run_that_failed_on_the_same_data_waits_for_new_data(auto_project):
    set_counts(auto_project, 4)
    past_run(auto_project, status=Status.FAILED, count=4)
    assert due() == []
    set_counts(auto_project, 5)
    assert due() == [("demo", Trigger.THRESHOLD)]


def test_a_run_that_never_reached_the_queue_does_not_hold_the_beat_back(auto_project):
    set_counts(auto_project, 4)
    TrainingRun.objects.create(
        project=auto_project,
        status=Status.FAILED,
        comparison_count_at_start=4,
        error="could not reach the task queue (Redis at redis://x): refused",
    )
    assert due() == [("demo", Trigger.THRESHOLD)]


# --- Queueing for real ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_retrain_due_task_queues_one_run_on_the_training_queue(auto_project, broker):  # noqa: F811
    set_counts(auto_project, 3)
    run_ids = tasks.retrain_due()
    run = TrainingRun.objects.get()
    assert run_ids == [run.pk]
    assert (run.status, run.trigger, run.comparison_count_at_start) == (
        Status.QUEUED,
        Trigger.THRESHOLD,
        3,
    )
    assert run.celery_task_id
    assert queued_messages(broker, "training") == 1
    assert queued_messages(broker, "default") == 0
    # The next tick joins the queued run: nothing new.
    assert tasks.retrain_due() == []
    assert TrainingRun.objects.count() == 1
    assert queued_messages(broker, "training") == 1


@pytest.mark.django_db(transaction=True)
def test_two_triggers_at_once_make_one_run(project, staff, broker):  # noqa: F811
    set_counts(project, 10)
    barrier = threading.Barrier(2)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def trigger(kind: str) -> None:
        try:
            barrier.wait(timeout=10)
            run, created = training_request(project=project, trigger=kind, user=staff)
            results.append((run.pk, created))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=trigger, args=(kind,))
        for kind in (Trigger.ADMIN, Trigger.THRESHOLD)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(created for _, created in results) == [False, True]
    assert len({run_id for run_id, _ in results}) == 1
    assert TrainingRun.objects.count() == 1
    assert queued_messages(broker, "training") == 1


@pytest.mark.django_db(transaction=True)
def test_api_creates_then_joins_then_cancels(project, staff, broker):  # noqa: F811
    client = api(staff)
    first = client.post(f"/api/projects/{project.slug}/training-runs/")
    assert first.status_code == 201, first.content
    body = first.json()
    assert (body["status"], body["joined"], body["trigger"]) == ("queued", False, "admin")
    assert body["message"] == f"Training run {body['id']} queued."

    second = client.post(f"/api/projects/{project.slug}/training-runs/")
    assert second.status_code == 200
    assert second.json()["id"] == body["id"]
    assert second.json()["joined"] is True
    assert "joined it instead of starting another" in second.json()["message"]
    assert queued_messages(broker, "training") == 1

    listed = client.get(f"/api/projects/{project.slug}/training-runs/").json()
    assert [r["id"] for r in listed] == [body["id"]]
    detail = client.get(f"/api/training-runs/{body['id']}/").json()
    assert (detail["step"], detail["fraction"], detail["done"]) == (0, 0.0, False)

    cancelled = client.post(f"/api/training-runs/{body['id']}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert client.post(f"/api/training-runs/{body['id']}/cancel/").status_code == 409
    # The slot is free again: the next request makes a new run.
    assert client.post(f"/api/projects/{project.slug}/training-runs/").status_code == 201


@pytest.mark.django_db
def test_api_refuses_settings_that_cannot_train_here_with_a_400(project, staff, settings):
    settings.TRAINING_DEVICE = "cuda:0"
    project.training_config = {"nproc": 2}
    project.save()
    answer = api(staff).post(f"/api/projects/{project.slug}/training-runs/")
    assert answer.status_code == 400
    assert "names one GPU, so nproc=2 cannot train on it" in answer.json()["detail"]
    assert TrainingRun.objects.count() == 0


@pytest.mark.django_db
def test_training_api_is_for_staff_only(project, labeler):
    client = api(labeler)
    assert client.post(f"/api/projects/{project.slug}/training-runs/").status_code == 403
    assert client.get(f"/api/projects/{project.slug}/training-runs/").status_code == 403
    assert TrainingRun.objects.count() == 0
    assert APIClient().get("/api/training-runs/1/").status_code in (401, 403)


@pytest.mark.django_db(transaction=True)
def test_with_redis_stopped_labeling_works_and_retrain_fails_fast(
    project, labeler, staff, tmp_path, monkeypatch
):
    own = start_local_redis(workdir=tmp_path / "redis")
    monkeypatch.setattr(app.conf, "broker_url", own.url)
    own.stop()

    # Labeling never touches Redis: lease a pair and store a judgment through the API.
    make_pair(project)
    labeling = api(labeler)
    leased = labeling.get(f"/api/projects/{project.slug}/next/")
    assert leased.status_code == 200
    stored = labeling.post(
        "/api/comparisons/",
        {"pair_id": leased.json()["pair_id"], "preferred": leased.json()["responses"][0]["id"]},
        format="json",
    )
    assert stored.status_code == 201, stored.content
    assert Comparison.objects.count() == 1
    project.refresh_from_db()
    assert project.comparison_count == 1

    # "Retrain now" answers with the reason, and the run is not left queued.
    answer = api(staff).post(f"/api/projects/{project.slug}/training-runs/")
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert detail.startswith("Training was not started: could not reach the task queue")
    assert f"Redis at redis://127.0.0.1:{own.port}/0" in detail
    run = TrainingRun.objects.get()
    assert run.status == Status.FAILED
    assert "could not reach the task queue" in run.error

    # Redis is back: the beat's next check queues the run that is due.
    back = start_local_redis(port=own.port, workdir=tmp_path / "redis")
    try:
        Project.objects.filter(pk=project.pk).update(
            auto_retrain=True, retrain_min_new_comparisons=1
        )
        run_ids = tasks.retrain_due()
        assert len(run_ids) == 1
        assert TrainingRun.objects.get(pk=run_ids[0]).status == Status.QUEUED
        assert queued_messages(back.url, "training") == 1
    finally:
        back.stop()


@pytest.mark.django_db(transaction=True)
def test_evaluate_active_all_queues_one_task_per_project_with_an_active_model(
    project,
    broker,  # noqa: F811
):
    ModelVersion.objects.create(project=project, version=1, path="/nowhere", is_active=True)
    ModelVersion.objects.create(project=project, version=2, path="/nowhere", is_active=False)
    assert tasks.evaluate_active_all() == 1
    assert queued_messages(broker, "default") == 1
    # No active model: nothing to re-evaluate, nothing to rescore.
    other = ProjectFactory()
    assert tasks.evaluate_active(other.pk) is None
    assert tasks.rescore_pairs(other.pk) == 0


@pytest.mark.django_db(transaction=True)
def test_admin_action_retrain_now(project, staff, broker, client):  # noqa: F811
    client.force_login(staff)
    page = client.post(
        "/admin/rewardtrain/projecttraining/",
        {"action": "retrain_now", "_selected_action": [project.pk]},
        follow=True,
    )
    run = TrainingRun.objects.get()
    assert (run.trigger, run.requested_by, run.status) == (Trigger.ADMIN, staff, Status.QUEUED)
    assert f"Training run {run.pk} queued." in page.content.decode()
    assert queued_messages(broker, "training") == 1


@pytest.mark.django_db
def test_stale_task_fails_running_runs_without_a_heartbeat(project, settings):
    settings.RUN_HEARTBEAT_TIMEOUT_SECONDS = 60
    old = timezone.now() - timedelta(minutes=5)
    lost = TrainingRun.objects.create(
        project=project, status=Status.RUNNING, started_at=old, heartbeat_at=old
    )
    assert tasks.fail_stale_runs() == 1
    lost.refresh_from_db()
    assert lost.status == Status.FAILED
    assert "no heartbeat" in lost.error


@pytest.mark.django_db(transaction=True)
def test_an_import_of_new_pairs_queues_their_scoring_once_a_model_is_active(
    project,
    broker,  # noqa: F811
    tmp_path,
):
    """annotate announces the import (annotate.signals.pairs_imported); this app, listening,
    queues the scoring of the new pairs with the active model."""
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"prompt": "Q", "response_a": "a", "response_b": "b"}\n')
    import_file(project=project, path=path)
    assert queued_messages(broker, "default") == 0  # no active model: nothing to score with
    ModelVersion.objects.create(project=project, version=1, path="/nowhere", is_active=True)
    path.write_text('{"prompt": "Q2", "response_a": "a", "response_b": "b"}\n')
    import_file(project=project, path=path)
    assert queued_messages(broker, "default") == 1
    import_file(project=project, path=path)  # nothing new: nothing announced
    assert queued_messages(broker, "default") == 1
