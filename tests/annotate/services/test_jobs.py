"""The lifecycle generation and judging jobs share (annotate/services/jobs.py), on its one path
no other test takes: with the task queue down, a job asked for or resumed through the API is
answered 503 and marked failed at once, saying why, instead of waiting queued forever."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotate.models import GenerationJob, JudgingJob
from annotate.services.generation import generator_create
from annotate.services.judges import judge_add
from config.celery import app
from scripts.local_redis import start_local_redis
from tests.factories import make_pair

ENDPOINT = {"base_url": "http://127.0.0.1:9/v1", "model": "m"}


@pytest.fixture
def queue_down(tmp_path, monkeypatch):
    """The broker URL of a Redis that was started and stopped: nothing answers there."""
    own = start_local_redis(workdir=tmp_path / "redis")
    monkeypatch.setattr(app.conf, "broker_url", own.url)
    own.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("kind", "model", "asked"),
    [
        ("generation", GenerationJob, {"generators": ["g"], "prompts": ["Say hi."]}),
        ("judging", JudgingJob, {"judge": "j"}),
    ],
)
def test_with_the_queue_down_a_job_asked_or_resumed_fails_at_once_saying_so(
    project, staff, queue_down, kind, model, asked
):
    generator_create(project=project, name="g", **ENDPOINT)
    judge_add(project=project, name="j", **ENDPOINT)
    make_pair(project)
    client = APIClient()
    client.force_authenticate(staff)
    jobs = f"/api/projects/{project.slug}/{kind}/jobs/"

    answer = client.post(jobs, asked, format="json")

    assert answer.status_code == 503, answer.content
    assert "could not reach the task queue" in answer.json()["detail"]
    job = model.objects.get()
    assert job.status == model.Status.FAILED and job.finished_at is not None
    assert job.error == answer.json()["detail"]

    resumed = client.post(f"{jobs}{job.pk}/resume/")

    assert resumed.status_code == 503, resumed.content
    job.refresh_from_db()
    assert job.status == model.Status.FAILED and job.finished_at is not None
    assert job.error == resumed.json()["detail"] and not job.cancel_requested
