"""One concurrency limit per model endpoint, across threads and processes
(annotate/services/endpoint_slots.py), on a real Redis: never more than the limit at once and
the limit reached; a slot of a process killed mid-request free again after its lease; a slot
given back goes to the first waiter; a wait past its time names the endpoint; without Redis,
each process keeps the limit; two generation jobs in two processes against one real
`transformers serve` send it no more than the generator's limit between them."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pytest

from annotate.generation.client import Cancelled
from annotate.models import GeneratedSample, GenerationJob
from annotate.services.endpoint_slots import SlotsBusy, endpoint_slot
from annotate.services.generation import generation_job_create, generator_create
from scripts.local_redis import free_port
from tests.annotate.services.slot_driver import (
    SLOTS_LOGGER,
    SlotEvents,
    events_read,
    most_at_once,
)
from tests.factories import GeneratorFactory, JudgeFactory
from tests.rewardtrain.queue_helpers import database_url, wait_for

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[3]
THREADS, ROUNDS = 12, 5


@pytest.fixture
def shared_redis(settings, redis_url):
    """The slots live in the tests' own Redis database."""
    settings.REDIS_URL = redis_url
    return redis_url


def _crowd(endpoint) -> tuple[int, int, list[str]]:
    """THREADS threads take a slot ROUNDS times each, counting under a lock how many are
    inside at once. Holders stay inside until the count reaches the limit (an event, with a
    deadline), so the limit is reached whenever the slots allow it; after that they pass
    through, many asking at once. Returns the most inside at once, the entries and errors."""
    lock, full = threading.Lock(), threading.Event()
    start = threading.Barrier(THREADS)
    count = {"inside": 0, "peak": 0, "entered": 0}
    errors: list[str] = []

    def run() -> None:
        try:
            start.wait()
            for _ in range(ROUNDS):
                with endpoint_slot(endpoint, timeout_s=60):
                    with lock:
                        count["inside"] += 1
                        count["entered"] += 1
                        count["peak"] = max(count["peak"], count["inside"])
                        if count["inside"] == endpoint.concurrency:
                            full.set()
                    full.wait(timeout=30)
                    with lock:
                        count["inside"] -= 1
        except Exception as exc:  # noqa: BLE001 - reported by the test's thread
            errors.append(repr(exc))

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count["peak"], count["entered"], errors


def test_never_more_than_the_limit_at_once_and_the_limit_is_reached(shared_redis, project):
    generator = GeneratorFactory(project=project, concurrency=4)
    peak, entered, errors = _crowd(generator)
    assert errors == []
    assert entered == THREADS * ROUNDS
    assert peak == 4


def _driver(*args: object, redis_url: str, **popen) -> subprocess.Popen:
    """tests/annotate/services/slot_driver.py in a process of its own, on this test's database
    (the slots' keys name it) and Redis."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "PYTHONPATH": str(BASE_DIR),
    }
    command = [sys.executable, "-m", "tests.annotate.services.slot_driver", *map(str, args)]
    return subprocess.Popen(command, cwd=BASE_DIR, env=env, text=True, **popen)


def test_a_slot_held_by_a_killed_process_is_free_again_after_its_lease(shared_redis, project):
    generator = GeneratorFactory(project=project, name="solo", concurrency=1)
    holder = _driver(
        *("hold", generator.pk, generator.name, 1, 2.0),
        redis_url=shared_redis,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        # Held past two of its 2 s leases (the holder renews it), the slot stays taken.
        with pytest.raises(SlotsBusy) as busy, endpoint_slot(generator, timeout_s=5):
            pass
        assert str(busy.value) == "generator 'solo': its one concurrent slot stayed busy for 5 s"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        holder.stdout.close()
    # Killed mid-request, the holder gave nothing back: its lease running out frees the slot
    # (the wait below is the slot's own, with its deadline).
    started = time.monotonic()
    with endpoint_slot(generator, timeout_s=30):
        waited = time.monotonic() - started
    assert waited < 30


def test_a_wait_past_its_time_names_the_endpoint(shared_redis, project):
    judge = JudgeFactory(project=project, name="strict", concurrency=2)
    with endpoint_slot(judge, timeout_s=1), endpoint_slot(judge, timeout_s=1):
        with pytest.raises(SlotsBusy) as busy, endpoint_slot(judge, timeout_s=0.2):
            pass
    assert str(busy.value) == "judge 'strict': all 2 of its concurrent slots stayed busy for 0.2 s"
    # Given back on the way out, error or not: both are free at once.
    with pytest.raises(RuntimeError), endpoint_slot(judge, timeout_s=0):
        raise RuntimeError("the endpoint broke mid-request")
    with endpoint_slot(judge, timeout_s=0), endpoint_slot(judge, timeout_s=0):
        pass


def _waiting(thread_name: str):
    return lambda events: any(
        e.kind == "wait" and e.where.endswith(f"/{thread_name}") for e in events
    )


def test_a_slot_given_back_goes_to_the_first_waiter(shared_redis, project):
    generator = GeneratorFactory(project=project, concurrency=1)
    took, may_go = threading.Event(), threading.Event()
    errors: list[str] = []

    def chat_reply() -> None:
        try:
            with endpoint_slot(generator, timeout_s=30):
                took.set()
                may_go.wait(timeout=30)
        except Exception as exc:  # noqa: BLE001 - reported by the test's thread
            errors.append(repr(exc))

    with SlotEvents() as events:
        with endpoint_slot(generator, timeout_s=1):
            waiter = threading.Thread(target=chat_reply, name="chat-reply")
            waiter.start()
            assert events.wait_until(_waiting("chat-reply"))
        try:
            # Given back and asked for again at once (a job's next request): the slot is the
            # waiter's, owed to it or already taken.
            with pytest.raises(SlotsBusy), endpoint_slot(generator, timeout_s=0):
                pass
        finally:
            may_go.set()
            waiter.join(timeout=30)
    assert took.is_set() and errors == []


def test_a_stopped_wait_ends_at_once_and_leaves_the_queue(shared_redis, project):
    generator = GeneratorFactory(project=project, concurrency=1)
    stop = threading.Event()
    outcome: list[str] = []

    def job_request() -> None:
        try:
            with endpoint_slot(generator, timeout_s=60, stop=stop):
                outcome.append("took")
        except Cancelled:
            outcome.append("cancelled")

    with SlotEvents() as events:
        with endpoint_slot(generator, timeout_s=1):
            waiter = threading.Thread(target=job_request, name="job-request")
            waiter.start()
            assert events.wait_until(_waiting("job-request"))
            stop.set()
            waiter.join(timeout=30)
    assert outcome == ["cancelled"]
    # Its place in the queue went with it: the slot is the next asker's at once.
    with endpoint_slot(generator, timeout_s=0):
        pass


def test_without_redis_each_process_keeps_the_limit_and_warns_once(settings, project, caplog):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    generator = GeneratorFactory(project=project, concurrency=3)
    with caplog.at_level(logging.WARNING, logger=SLOTS_LOGGER):
        peak, entered, errors = _crowd(generator)
    assert errors == []
    assert entered == THREADS * ROUNDS
    assert peak == 3
    warnings = [r.getMessage() for r in caplog.records if r.name == SLOTS_LOGGER]
    assert len(warnings) == 1
    assert settings.REDIS_URL in warnings[0] and "out of reach" in warnings[0]


def _waited(events: Path) -> bool:
    return any(e.kind == "wait" for e in events_read(events))


@pytest.mark.django_db(transaction=True)
def test_two_jobs_in_two_processes_send_one_endpoint_no_more_than_its_limit(
    project, chat_server, shared_redis, tmp_path
):
    generator = generator_create(
        project=project,
        name="small-box",
        base_url=chat_server.base_url,
        model=chat_server.model,
        temperature=1.0,
        max_tokens=8,
        seed=3,
        concurrency=2,
    )
    jobs = [
        generation_job_create(
            project=project,
            generators=["small-box"],
            samples=2,
            prompts=[[{"role": "user", "content": f"job {j} prompt {i}"}] for i in range(6)],
            enqueue=False,
        )
        for j in range(2)
    ]
    files = [tmp_path / f"job-{job.pk}.events" for job in jobs]
    runs: list[subprocess.Popen] = []
    try:
        # This test holds both slots until both jobs wait for one: the jobs then overlap
        # from their first request to the end of the first to finish, each free to send 2.
        with ExitStack() as held:
            for _ in range(2):
                held.enter_context(endpoint_slot(generator, timeout_s=5))
            for job, events in zip(jobs, files, strict=True):
                log = (tmp_path / f"job-{job.pk}.log").open("w")
                runs.append(_driver("job", job.pk, events, redis_url=shared_redis, stdout=log))
                log.close()
            for events, run in zip(files, runs, strict=True):
                wait_for(
                    lambda events=events, run=run: _waited(events) or run.poll() is not None,
                    what=f"{events.name} to wait for a slot",
                )
            assert all(_waited(events) for events in files), "a job did not wait for the slots"
        for run in runs:
            run.wait(timeout=300)
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
    outputs = [(tmp_path / f"job-{job.pk}.log").read_text() for job in jobs]
    assert [run.returncode for run in runs] == [0, 0], outputs

    every = [event for events in files for event in events_read(events)]
    assert most_at_once(every) == 2
    # Each request took its slot, both jobs' requests interleaved.
    taken = [[e for e in events_read(events) if e.kind == "taken"] for events in files]
    assert [len(t) for t in taken] == [12, 12]
    assert min(e.at for e in taken[1]) < max(e.at for e in taken[0])
    assert min(e.at for e in taken[0]) < max(e.at for e in taken[1])
    for job in jobs:
        job = GenerationJob.objects.get(pk=job.pk)
        assert (job.status, job.done, job.total) == ("succeeded", 12, 12), job.error
        samples = Counter(
            GeneratedSample.objects.filter(prompt__in=job.prompts.all()).values_list(
                "prompt_id", "generator_id", "index"
            )
        )
        assert len(samples) == 12 and set(samples.values()) == {1}
