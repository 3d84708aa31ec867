"""Scoring across requests: what arrives together is encoded and scored in shared batches,
sorted by length and bounded by a token budget; each request gets its rewards back in its own
order, from one model version.

One thread owns the model. The event loop hands it jobs and awaits their futures, so parsing
and answering HTTP go on while a batch runs (torch releases the GIL inside its kernels).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rewardtrain.core.aspects import scalar_reward

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A scorer (rewardtrain.core.scoring.RewardScorer or alike) and the version number it serves."""

    scorer: Any
    version: int | None


@dataclass(frozen=True)
class Scored:
    rewards: list[float]
    version: int | None
    # Per item {aspect: prediction on its scale}, when asked for (None otherwise).
    aspects: list[dict[str, float]] | None = None


class NoModel(Exception):
    """Nothing to score with: the project has no active model."""


class NoAspects(Exception):
    """Aspects were asked of a model trained without an aspect head."""

    def __init__(self, version: int | None) -> None:
        super().__init__(
            f"model version {version} has no aspect head (it was trained without ratings): "
            "it gives the reward alone; leave aspects out or train on rated responses"
        )


class BadItem(ValueError):
    """An item the model's formatter refused (e.g. a chat template that rejects a role)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


@dataclass
class _Job:
    # A prompt of None means the response is a whole text, scored as given.
    prompts: list[Any]
    responses: list[str]
    finish: Callable[[Scored | BaseException], None]
    with_aspects: bool = False
    enqueued: float = field(default_factory=time.monotonic)
    rewards: list[float] = field(default_factory=list)
    aspects: list[dict[str, float]] = field(default_factory=list)
    ids: list[list[int]] = field(default_factory=list)
    remaining: int = 0
    finished: bool = False

    def fail(self, exc: BaseException) -> None:
        if not self.finished:
            self.finished = True
            self.finish(exc)


def plan_batches(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Indices grouped into batches, shortest first: each batch's padded size (rows x its
    longest row) stays within max_tokens, except a single row longer than the budget."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # Ascending order: the row being added is the batch's widest.
        if current and (len(current) + 1) * lengths[i] > max_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class Batcher:
    """Collects jobs for up to max_wait_s after the first one arrives (no wait when jobs were
    already queued behind a running batch), then scores all of them together."""

    def __init__(
        self,
        model: Callable[[], LoadedModel | None],
        *,
        max_batch_tokens: int,
        max_wait_s: float,
    ) -> None:
        self._model = model
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_s
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued_items = 0
        self._scored_items = 0
        self._thread = threading.Thread(target=self._run, name="reward-batcher", daemon=True)

    @property
    def queue_depth(self) -> int:
        """Items waiting for a batch."""
        return self._queued_items

    @property
    def items_scored(self) -> int:
        return self._scored_items

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=60)

    async def score(
        self, prompts: list[Any], responses: list[str], *, aspects: bool = False
    ) -> Scored:
        """Rewards of the items, in their order, and with `aspects` each item's aspects.
        Raises NoModel, NoAspects (a model without an aspect head) or BadItem."""
        if not responses:
            current = self._model()
            if current is None:
                raise NoModel
            if aspects and not _aspects_of(current.scorer):
                raise NoAspects(current.version)
            return Scored([], current.version, [] if aspects else None)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Scored] = loop.create_future()

        def finish(outcome: Scored | BaseException) -> None:
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the event loop has closed: nobody is waiting any more
                pass

        job = _Job(prompts, responses, finish, with_aspects=aspects, remaining=len(responses))
        job.rewards = [0.0] * len(responses)
        job.aspects = [{} for _ in responses] if aspects else []
        with self._lock:
            self._queued_items += len(responses)
        self._queue.put(job)
        return await future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            deadline = first.enqueued + self.max_wait_s
            stop = False
            while True:
                wait = deadline - time.monotonic()
                try:
                    job = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
            with self._lock:
                self._queued_items -= sum(len(j.responses) for j in jobs)
            try:
                self._score(jobs)
            except Exception as exc:  # a failed batch fails its requests, never the thread
                log.exception("scoring failed")
                for job in jobs:
                    job.fail(exc)
            if stop:
                return

    def _score(self, jobs: list[_Job]) -> None:
        # One model for the whole group: a swap between two groups never splits a request.
        current = self._model()
        if current is None:
            for job in jobs:
                job.fail(NoModel())
            return
        head = _aspects_of(current.scorer)
        for job in jobs:
            if job.with_aspects and not head:
                job.fail(NoAspects(current.version))
        jobs = [j for j in jobs if not j.finished and _encode_or_fail(current.scorer, j)]
        rows: list[list[int]] = []
        owners: list[tuple[_Job, int]] = []
        for job in jobs:
            rows += job.ids
            owners += [(job, i) for i in range(len(job.ids))]
        # The model's raw outputs only when a job asks for its aspects: a scorer needs no more
        # than score_ids otherwise.
        raw = any(job.with_aspects for job in jobs)
        for batch in plan_batches([len(r) for r in rows], self.max_batch_tokens):
            chunk = [rows[i] for i in batch]
            if raw:
                outputs = current.scorer.outputs_ids(chunk)
                values = [scalar_reward(o, head) for o in outputs]
            else:
                outputs, values = [], current.scorer.score_ids(chunk)
            for k, (i, value) in enumerate(zip(batch, values, strict=True)):
                job, index = owners[i]
                job.rewards[index] = value
                if job.with_aspects:
                    job.aspects[index] = {
                        a.name: a.on_scale(v) for a, v in zip(head, outputs[k], strict=True)
                    }
                job.remaining -= 1
                if job.remaining == 0 and not job.finished:
                    job.finished = True
                    answer = job.aspects if job.with_aspects else None
                    job.finish(Scored(job.rewards, current.version, answer))
            with self._lock:
                self._scored_items += len(batch)


def _aspects_of(scorer: Any) -> list[Any]:
    """The scorer's aspects (rewardtrain.core.aspects.Aspect), [] for a one-output model."""
    return list(getattr(scorer, "aspects", None) or [])


def _encode_or_fail(scorer: Any, job: _Job) -> bool:
    """Token ids of the job's items on job.ids; a job the formatter refuses fails alone."""
    pairs = [i for i, p in enumerate(job.prompts) if p is not None]
    texts = [i for i, p in enumerate(job.prompts) if p is None]
    ids: list[list[int]] = [[] for _ in job.responses]
    try:
        encoded = scorer.encode([job.prompts[i] for i in pairs], [job.responses[i] for i in pairs])
        for i, row in zip(pairs, encoded, strict=True):
            ids[i] = row
        for i, row in zip(
            texts, scorer.encode_texts([job.responses[i] for i in texts]), strict=True
        ):
            ids[i] = row
    except Exception as exc:
        job.fail(BadItem(_first_bad(scorer, job, pairs), f"cannot be formatted: {exc}"))
        return False
    job.ids = ids
    return True


def _first_bad(scorer: Any, job: _Job, pairs: list[int]) -> int:
    for i in pairs:
        try:
            scorer.encode([job.prompts[i]], [job.responses[i]])
        except Exception:
            return i
    return 0


def _settle(future: asyncio.Future, outcome: Scored | BaseException) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
