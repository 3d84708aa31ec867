"""Judging through the real queue: the API answers 202 with the job's URL, a Celery worker
process consuming only the `generation` queue (the test Redis, the test database) has a real
`transformers serve` judge every pair in both orders, and the job's URL shows it done;
cancelled while it runs, it stops, and resumed, it reads only what is unread."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from annotate.models import Comparison, JudgeVerdict, JudgingJob
from tests.factories import make_pair
from tests.rewardtrain.queue_helpers import WORKER_ARGS, Worker, broker, wait_for  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

GENERATION_WORKER = ("worker", "-Q", "generation", *WORKER_ARGS[3:])


@pytest.fixture
def generation_worker(broker, settings, tmp_path):  # noqa: F811
    worker = Worker(
        broker_url=broker,
        models_dir=Path(settings.MODELS_DIR),
        log=tmp_path / "worker.log",
        args=GENERATION_WORKER,
    )
    yield worker
    worker.stop()


def _ended(job_id: int) -> JudgingJob | None:
    return JudgingJob.objects.exclude(status__in=["queued", "running"]).filter(pk=job_id).first()


def _api(staff) -> APIClient:
    api = APIClient()
    api.force_authenticate(staff)
    return api


def test_a_job_asked_through_the_api_is_run_by_a_worker_on_the_generation_queue(
    project, staff, judge_server, generation_worker
):
    api = _api(staff)
    added = api.post(
        f"/api/projects/{project.slug}/judges/",
        {"name": "tiny", "base_url": judge_server.base_url, "model": judge_server.model,
         "rubric": "{prompt} / {response_2} / {response_1}", "max_tokens": 6},
        format="json",
    )  # fmt: skip
    assert added.status_code == 201, added.content
    for i in range(3):
        make_pair(project, f"w{i}", a=f"w{i + 3} bad", b=f"w{i + 6} good")
    asked = api.post(
        f"/api/projects/{project.slug}/judging/jobs/", {"judge": "tiny"}, format="json"
    )
    assert asked.status_code == 202, asked.content
    wait_for(lambda: _ended(asked.json()["id"]), what="the job", worker=generation_worker)
    shown = api.get(asked["Location"]).json()
    assert shown["status"] == "succeeded", shown["error"]
    assert (shown["done"], shown["total"], shown["progress"]) == (3, 3, 1.0)
    assert (shown["comparisons_created"], shown["unparsable"]) == (3, 0)
    orders = Counter(JudgeVerdict.objects.values_list("order", flat=True))
    assert orders == {"ab": 3, "ba": 3}
    assert set(Comparison.objects.values_list("source", "choice", "p_chosen")) == {
        ("ai_judge", "b", 1.0)
    }


def test_a_running_job_cancelled_through_the_api_stops_and_resumes(
    project, staff, judge_server, generation_worker
):
    api = _api(staff)
    api.post(
        f"/api/projects/{project.slug}/judges/",
        {"name": "slow", "base_url": judge_server.base_url, "model": judge_server.model,
         "rubric": "{prompt} {response_1} {response_2} w1", "max_tokens": 48, "concurrency": 1},
        format="json",
    )  # fmt: skip
    for i in range(25):
        make_pair(project, f"w{i}", a=f"w{i + 1}", b=f"w{i + 2}")
    base = f"/api/projects/{project.slug}/judging/jobs/"
    job_id = api.post(base, {"judge": "slow"}, format="json").json()["id"]
    wait_for(
        lambda: JudgingJob.objects.filter(pk=job_id, done__gte=1).exists(),
        what="the first pairs",
        worker=generation_worker,
    )
    cancelled = api.post(f"{base}{job_id}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"]
    job = wait_for(lambda: _ended(job_id), what="the cancel", worker=generation_worker)
    assert job.status == "cancelled" and job.done < job.total

    resumed = api.post(f"{base}{job_id}/resume/")
    assert resumed.status_code == 202, resumed.content
    job = wait_for(lambda: _ended(job_id), what="the resumed job", worker=generation_worker)
    assert job.status == "succeeded", job.error
    keys = Counter(JudgeVerdict.objects.values_list("pair_id", "order"))
    assert len(keys) == 50 and set(keys.values()) == {1}
    assert Comparison.objects.count() == job.comparisons_created == 25
