"""Generation through the real queue: the API answers 202 with the job's URL, a Celery worker
process consuming the `generation` queue (the test Redis, the test database) asks a real
`transformers serve` for every sample, and the job's page shows it done; cancelled while it
runs, it stops, and resumed, it asks only for what is missing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from annotate.models import GeneratedSample, GenerationJob, Pair
from annotate.services.generation import generator_create
from tests.rewardtrain.queue_helpers import WORKER_ARGS, Worker, broker, wait_for  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Only the generation queue: the job must be routed there (a worker on default would not
# see it, and this one sees nothing else).
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


def _ended(job_id: int) -> GenerationJob | None:
    return GenerationJob.objects.exclude(status__in=["queued", "running"]).filter(pk=job_id).first()


def test_a_job_asked_through_the_api_is_run_by_a_worker_on_the_generation_queue(
    project, staff, chat_server, generation_worker
):
    generator_create(
        project=project,
        name="tiny",
        base_url=chat_server.base_url,
        model=chat_server.model,
        temperature=1.0,
        max_tokens=8,
        seed=3,
        concurrency=4,
    )
    api = APIClient()
    api.force_authenticate(staff)
    prompts = ["w1 w2 good", [{"role": "user", "content": "w3 w4"}], "w5 bad"]
    asked = api.post(
        f"/api/projects/{project.slug}/generation/jobs/",
        {"generators": ["tiny"], "samples": 3, "prompts": prompts},
        format="json",
    )
    assert asked.status_code == 202, asked.content
    assert asked["Location"] == asked.json()["url"]
    job = wait_for(lambda: _ended(asked.json()["id"]), what="the job", worker=generation_worker)
    shown = api.get(asked["Location"]).json()
    assert shown["status"] == "succeeded", shown["error"]
    assert (shown["done"], shown["total"], shown["progress"]) == (9, 9, 1.0)
    assert shown["completion_tokens"] == 9 * 8
    keys = Counter(GeneratedSample.objects.values_list("prompt_id", "generator_id", "index"))
    assert len(keys) == 9 and set(keys.values()) == {1}
    assert shown["pairs_created"] == Pair.objects.count() == job.pairs_created > 0


def test_a_running_job_cancelled_through_the_api_stops_and_resumes(
    project, staff, chat_server, generation_worker
):
    generator_create(
        project=project,
        name="slow",
        base_url=chat_server.base_url,
        model=chat_server.model,
        max_tokens=24,
        seed=1,
        concurrency=1,
    )
    api = APIClient()
    api.force_authenticate(staff)
    base = f"/api/projects/{project.slug}/generation/jobs/"
    # Enough prompts that the job cannot finish between the poll that sees two samples and the
    # cancel: on a fast CPU, 40 finished first.
    prompts = [f"w{i} w{i + 2}" for i in range(200)]
    asked = api.post(base, {"generators": ["slow"], "prompts": prompts}, format="json")
    job_id = asked.json()["id"]
    wait_for(
        lambda: GenerationJob.objects.filter(pk=job_id, done__gte=2).exists(),
        what="the first samples",
        worker=generation_worker,
    )
    cancelled = api.post(f"{base}{job_id}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"]
    job = wait_for(lambda: _ended(job_id), what="the cancel", worker=generation_worker)
    assert job.status == "cancelled" and job.done < job.total
    assert api.post(f"{base}{job_id}/cancel/").status_code == 409

    resumed = api.post(f"{base}{job_id}/resume/")
    assert resumed.status_code == 202, resumed.content
    job = wait_for(lambda: _ended(job_id), what="the resumed job", worker=generation_worker)
    assert job.status == "succeeded", job.error
    assert GeneratedSample.objects.count() == job.total == 200
    assert job.completion_tokens == 200 * 24  # nothing asked twice
