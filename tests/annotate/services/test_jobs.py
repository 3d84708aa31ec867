"""The lifecycle generation and judging jobs share (annotate/services/jobs.py): with the task
queue down, a job asked for or resumed through the API is answered 503 and marked failed at
once, saying why, instead of waiting queued forever; and `job_execute`'s order of a kind's steps
and its endings (the kinds' own runs are tested against a real server in test_generation.py and
test_judges.py)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from rest_framework.test import APIClient

from annotate.models import GenerationJob, JudgingJob
from annotate.services.generation import generator_create
from annotate.services.jobs import JobSteps, job_execute
from annotate.services.judges import judge_add
from config.celery import app
from scripts.local_redis import start_local_redis
from tests.factories import GenerationJobFactory, JudgingJobFactory, make_pair

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


class _Kind:
    """A kind's steps over a real job row: its run does what the test asks, and the steps
    record the order they were called in."""

    def __init__(self, job, *, run=None, failure: str = "", left: int = 0, cancel_midway=False):
        self.job, self.calls = job, []
        self.state = SimpleNamespace(stop=threading.Event(), failure=failure, left={1: left})
        self._run, self._cancel_midway = run, cancel_midway

    def steps(self) -> JobSteps:
        return JobSteps(plan=self.plan, run=self.run, progress=self.progress, finish=self.finish)

    def plan(self, job):
        self.calls.append(("plan", job.status))
        return self.state, ["work"]

    def run(self, state, work, on_progress):
        self.calls.append("run")
        if self._cancel_midway:  # staff press Cancel in another process
            type(self.job).objects.filter(pk=self.job.pk).update(cancel_requested=True)
        if self._run is not None:
            raise self._run()

    def progress(self, state, on_progress):
        self.calls.append("progress")

    def finish(self, job, status, error, state):
        self.calls.append(("finish", status, error, state is self.state))
        job.status, job.error = status, error
        job.save(update_fields=["status", "error"])
        return job


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("raised", "reason"),
    [
        (KeyboardInterrupt, "the job interrupted"),
        (SoftTimeLimitExceeded, "the job ran past its time limit"),
    ],
)
def test_an_interrupted_run_fails_the_job_saying_why_stops_its_requests_and_raises_on(
    raised, reason
):
    job = GenerationJobFactory()
    kind = _Kind(job, run=raised)

    with pytest.raises(raised):
        job_execute(job=job, steps=kind.steps())

    job.refresh_from_db()
    assert (job.status, job.error) == (GenerationJob.Status.FAILED, reason)
    assert kind.state.stop.is_set()  # requests in flight see it and stop
    assert kind.calls == [
        ("plan", "running"),
        "progress",
        "run",
        ("finish", "failed", reason, True),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "status", "error"),
    [
        ({}, "succeeded", ""),
        ({"failure": "generator 'g': boom"}, "failed", "generator 'g': boom"),
        ({"cancel_midway": True, "left": 3}, "cancelled", ""),
        # Cancel pressed after the last item came in: the job did all it was asked.
        ({"cancel_midway": True, "left": 0}, "succeeded", ""),
    ],
)
def test_a_run_ends_by_what_it_left(options, status, error):
    job = JudgingJobFactory()
    kind = _Kind(job, **options)

    ended = job_execute(job=job, steps=kind.steps())

    job.refresh_from_db()
    assert ended.pk == job.pk and (job.status, job.error) == (status, error)
    assert job.started_at is not None
    assert kind.calls[-1] == ("finish", status, error, True)


@pytest.mark.django_db
def test_an_ended_job_is_left_as_it_is_and_a_cancelled_one_never_plans():
    ended = GenerationJobFactory(status=GenerationJob.Status.SUCCEEDED)
    kind = _Kind(ended)
    assert job_execute(job=ended, steps=kind.steps()) is ended and kind.calls == []

    asked = GenerationJobFactory(cancel_requested=True)
    kind = _Kind(asked)
    job_execute(job=asked, steps=kind.steps())
    asked.refresh_from_db()
    assert asked.status == GenerationJob.Status.CANCELLED and asked.started_at is None
    assert kind.calls == [("finish", "cancelled", "", False)]
