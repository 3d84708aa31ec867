"""What the queue tests share: a real Celery worker process on the test database and the test
Redis, a project with enough labeled data to train a tiny model, and waiting on the database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection

from annotate.hashing import content_hash, user_message
from annotate.models import Choice, Pair, Project
from annotate.services.labeling import comparison_create
from annotate.splits import split_of
from config.celery import app
from tests.factories import PromptFactory, ResponseFactory
from tests.rewardtrain.tiny import make_bert

BASE_DIR = Path(__file__).resolve().parents[2]
# Small and quick: the point of these tests is the queue, not the model.
TINY_TRAINING = {"epochs": 2, "batch_size": 8, "max_length": 32, "device": "cpu"}


def database_url() -> str:
    """A URL for the database this test runs on (the test database, file-based on SQLite)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def broker(redis_url):
    """The Celery app of this process publishes to the test Redis, emptied first (a message
    left by an earlier test must not reach this test's worker)."""
    redis.Redis.from_url(redis_url).flushdb()
    previous = app.conf.broker_url
    app.conf.broker_url = redis_url
    yield redis_url
    app.conf.broker_url = previous


WORKER_ARGS = (
    *("worker", "-Q", "default,training", "--pool", "solo", "--loglevel", "INFO"),
    *("--without-gossip", "--without-mingle", "--without-heartbeat"),
)


class Worker:
    """A `celery worker` process consuming both queues, like `make run` starts (or, with
    other `args`, another celery process such as beat). `base_env` replaces os.environ, e.g.
    with the production environment."""

    def __init__(
        self,
        *,
        broker_url: str,
        models_dir: Path,
        log: Path,
        args: tuple[str, ...] = WORKER_ARGS,
        base_env: dict[str, str] | None = None,
    ) -> None:
        self.log = log
        env = {
            **(os.environ if base_env is None else base_env),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker_url,
            "REDIS_URL": broker_url,
            "MODELS_DIR": str(models_dir),
            "TRAINING_DEVICE": "cpu",
            "PYTHONPATH": str(BASE_DIR),
        }
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "celery", "-A", "config", *args),
                    *(("-n", f"test-{uuid.uuid4().hex[:8]}@%h") if args[0] == "worker" else ()),
                ],
                cwd=BASE_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement, as when a machine dies."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


@pytest.fixture
def start_worker(broker, settings, tmp_path):
    """Start worker processes on the test database; all are stopped at the end of the test."""
    workers: list[Worker] = []

    def start() -> Worker:
        log = tmp_path / f"worker-{len(workers)}.log"
        worker = Worker(broker_url=broker, models_dir=Path(settings.MODELS_DIR), log=log)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(
    check: Callable[[], Any], *, what: str, timeout: float = 120, worker: Worker | None = None
) -> Any:
    """Poll the database until check() returns something truthy; fail after `timeout` s with
    the worker's log. A deadline on a real outcome, not a sleep that hopes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if worker is not None and worker.process.poll() is not None:
            pytest.fail(f"the worker exited while waiting for {what}:\n{worker.output()}")
        time.sleep(0.2)
    log = worker.output() if worker else ""
    pytest.fail(f"timed out after {timeout} s waiting for {what}\n{log}")


def seed_labeled_project(
    project: Project, labeler, backbone_dir: Path, *, per_split: dict[str, int], open_pairs: int = 3
) -> list[Pair]:
    """Pairs of "<words> good" against "<words> bad", each judged by the labeler (the good
    one wins), with prompts picked so that every split gets the given number; plus some
    open pairs with no judgment yet. A tiny BERT from a local config is the backbone."""
    make_bert(backbone_dir)
    project.reward_backbone = str(backbone_dir)
    project.training_config = dict(TINY_TRAINING)
    project.save(update_fields=["reward_backbone", "training_config"])
    wanted = dict(per_split)
    i = 0
    while any(wanted.values()):
        i += 1
        messages = user_message(f"w{i % 60} w{(i * 7) % 60} w{i // 60}")
        split = split_of(content_hash(messages))
        if not wanted.get(split):
            continue
        wanted[split] -= 1
        pair = _pair(project, messages, i)
        good_is_a = "good" in pair.response_a.text
        comparison_create(pair=pair, labeler=labeler, choice=Choice.A if good_is_a else Choice.B)
    # Four words: never one of the three-word prompts above.
    return [_pair(project, user_message(f"w{n} w{n} w{n} w{n}"), n) for n in range(open_pairs)]


def _pair(project: Project, messages: list[dict[str, str]], i: int) -> Pair:
    prompt = PromptFactory(project=project, messages=messages)
    # Which response gets the smaller id (response_a) alternates, so "a" is not always right.
    texts = [f"w{i % 60} good", f"w{(i + 3) % 60} bad"][:: 1 if i % 2 else -1]
    first, second = (ResponseFactory(prompt=prompt, text=t) for t in texts)
    pair = Pair.objects.create(project=project, prompt=prompt, response_a=first, response_b=second)
    Project.objects.filter(pk=project.pk).update(pair_count=project.pairs.count())
    return pair
