"""Running a generation job: every (prompt, generator, sample index) not yet in
GeneratedSample is asked of its endpoint, up to each generator's concurrency at once (one limit
across every job, judge and chat reply: annotate/services/endpoint_slots.py); each reply
is stored as it arrives (a Response, with its generator, model, sampling settings, tokens and
latency), and a prompt's pairs are made, by the candidate rule of imports, in one transaction once
all its samples are in: labelers never see a prompt half-generated.

Threads only wait on HTTP; this thread alone touches the database. An endpoint that fails
outright (its retries spent, or an answer no retry mends) fails the job with the endpoint's own
error text; what came in before stays, and resuming the job asks only for the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotate.generation.client import Cancelled, Completion, EndpointError, chat_complete
from annotate.importers.candidates import pair_indices
from annotate.models import (
    GeneratedSample,
    GenerationJob,
    Generator,
    Project,
    Prompt,
    Response,
    TaskKind,
)
from annotate.services.catalog import pair_get_or_create, response_hash
from annotate.services.endpoint_slots import endpoint_slot
from annotate.services.generation import generator_endpoint, retry_policy
from annotate.services.jobs import JobSteps, job_cancel_asked, job_execute
from annotate.services.rankings import response_sets_create
from annotate.signals import pairs_imported

logger = logging.getLogger(__name__)

# Progress and the cancel flag are read and written at most this often.
TICK_S = 0.5
Progress = Callable[[GenerationJob], None]


@dataclass(frozen=True)
class Work:
    prompt_id: int
    generator_id: int
    index: int


@dataclass
class _State:
    """What the loop keeps between ticks."""

    job: GenerationJob
    generators: list[Generator]
    prompts: dict[int, list[dict[str, Any]]]
    left: dict[int, int]  # prompt id -> samples still to come
    stop: threading.Event = field(default_factory=threading.Event)
    failure: str = ""
    pairs_created: int = 0


def generation_job_execute(*, job_id: int, on_progress: Progress | None = None) -> GenerationJob:
    """Run the job to its end (services/jobs.py's lifecycle, with this kind's steps)."""
    job = GenerationJob.objects.select_related("project").get(pk=job_id)
    return job_execute(job=job, steps=STEPS, on_progress=on_progress)


def _plan(job: GenerationJob) -> tuple[_State, list[Work]]:
    """The samples still missing, prompt by prompt (so prompts complete, and get their pairs,
    early); prompts already complete get their pairs now (made again: a no-op when they exist)."""
    generators = list(job.generators.order_by("name"))
    prompts = dict(job.prompts.order_by("pk").values_list("pk", "messages"))
    have = set(
        GeneratedSample.objects.filter(
            prompt_id__in=prompts, generator__in=generators, index__lt=job.samples
        ).values_list("prompt_id", "generator_id", "index")
    )
    work = [
        Work(p, g.pk, i)
        for p in prompts
        for g in generators
        for i in range(job.samples)
        if (p, g.pk, i) not in have
    ]
    left = {p: 0 for p in prompts}
    for item in work:
        left[item.prompt_id] += 1
    state = _State(job=job, generators=generators, prompts=prompts, left=left)
    state.pairs_created = job.pairs_created  # a resumed job's count goes on
    job.total = len(prompts) * len(generators) * job.samples
    job.done = job.total - len(work)
    for prompt_id, samples in left.items():
        if not samples:
            state.pairs_created += prompt_pairs_make(job=job, prompt_id=prompt_id)
    return state, work


def _run(state: _State, work: list[Work], on_progress: Progress | None) -> None:
    """Submit every missing sample to its generator's pool, then store replies as they come,
    checking the cancel flag and writing progress each tick."""
    pools, clients = {}, {}
    for g in state.generators:
        pools[g.pk] = ThreadPoolExecutor(max_workers=g.concurrency, thread_name_prefix=g.name)
        limits = httpx.Limits(
            max_connections=g.concurrency, max_keepalive_connections=g.concurrency
        )
        clients[g.pk] = httpx.Client(limits=limits)
    endpoints = {g.pk: generator_endpoint(g) for g in state.generators}
    generators = {g.pk: g for g in state.generators}
    policy = retry_policy()

    def ask(item: Work) -> Completion:
        endpoint = endpoints[item.generator_id]
        seed = None if endpoint.seed is None else endpoint.seed + item.index
        messages = state.prompts[item.prompt_id]
        # The pool bounds this job's threads; the slot bounds the endpoint's requests across
        # every job, judge and chat reply at once.
        generator = generators[item.generator_id]
        with endpoint_slot(generator, timeout_s=policy.timeout_s, stop=state.stop):
            return chat_complete(
                endpoint,
                messages,
                seed=seed,
                client=clients[item.generator_id],
                policy=policy,
                stop=state.stop,
            )

    try:
        futures = {pools[w.generator_id].submit(ask, w): w for w in work}
        _collect(state, futures, on_progress)
    finally:
        state.stop.set()
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        for client in clients.values():
            client.close()


def _collect(state: _State, futures: dict[Future, Work], on_progress: Progress | None) -> None:
    pending = set(futures)
    next_tick = time.monotonic() + TICK_S
    while pending:
        done, pending = wait(pending, timeout=TICK_S, return_when=FIRST_COMPLETED)
        for future in done:
            _take(state, futures[future], future)
        if state.stop.is_set():
            _stop(state, pending)  # a failure: what has not started never will
        if time.monotonic() >= next_tick:
            next_tick = time.monotonic() + TICK_S
            _progress(state, on_progress)
            if job_cancel_asked(state.job):
                _stop(state, pending)
    _progress(state, on_progress)


def _stop(state: _State, pending: set[Future]) -> None:
    """No new request starts; those in flight finish (their replies are kept)."""
    state.stop.set()
    for future in pending:
        future.cancel()


def _take(state: _State, item: Work, future: Future) -> None:
    if future.cancelled():
        return
    try:
        completion = future.result()
    except Cancelled:
        return
    except EndpointError as exc:
        state.job.errors += 1 + _retries_of(exc)
        if not state.failure:
            state.failure = str(exc)
            state.stop.set()
        return
    state.job.errors += completion.attempts - 1
    sample_store(job=state.job, item=item, completion=completion)
    state.job.done += 1
    state.job.prompt_tokens += completion.prompt_tokens or 0
    state.job.completion_tokens += completion.completion_tokens or 0
    state.left[item.prompt_id] -= 1
    if not state.left[item.prompt_id]:
        state.pairs_created += prompt_pairs_make(job=state.job, prompt_id=item.prompt_id)


def _retries_of(exc: EndpointError) -> int:
    # A retryable error that ends the job was tried max_retries + 1 times.
    return retry_policy().max_retries if exc.retryable else 0


@transaction.atomic
def sample_store(*, job: GenerationJob, item: Work, completion: Completion) -> GeneratedSample:
    """The reply as the prompt's Response (shared with an equal text already there, which keeps
    its own provenance) and the sample that points at it. Stored twice (a redelivered task
    beside a live one), the sample is the one already there."""
    prompt = Prompt.objects.get(pk=item.prompt_id)
    response, _ = Response.objects.get_or_create(
        prompt=prompt,
        content_hash=response_hash(completion.text),
        defaults={
            "text": completion.text,
            "model_name": completion.model[:200],
            "generator_id": item.generator_id,
            "sampling": completion.sampling,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "latency_ms": round(completion.latency_ms, 3),
            "metadata": {"finish_reason": completion.finish_reason}
            if completion.finish_reason
            else {},
        },
    )
    try:
        with transaction.atomic():
            return GeneratedSample.objects.create(
                prompt=prompt,
                generator_id=item.generator_id,
                index=item.index,
                response=response,
                job=job,
            )
    except IntegrityError:
        return GeneratedSample.objects.get(
            prompt=prompt, generator_id=item.generator_id, index=item.index
        )


@transaction.atomic
def prompt_pairs_make(*, job: GenerationJob, prompt_id: int) -> int:
    """The prompt's pairs from its samples by the job's generators (in name order, then
    sample index), by the candidate rule imports use (annotate/importers/candidates.py): all
    pairings up to 5 distinct responses, else a ring and its neighbours. Returns how many are
    new."""
    responses = list(
        dict.fromkeys(
            GeneratedSample.objects.filter(
                prompt_id=prompt_id, generator__in=job.generators.all(), index__lt=job.samples
            )
            .order_by("generator__name", "index")
            .values_list("response_id", flat=True)
        )
    )
    if job.project.task_kind != TaskKind.PAIRWISE:
        # A project that ranks or rates serves sets of K of the prompt's responses.
        response_sets_create(project=job.project, prompt_ids=[prompt_id])
    if len(responses) < 2:
        return 0
    prompt = Prompt.objects.get(pk=prompt_id)
    by_id = Response.objects.in_bulk(responses)
    created = 0
    for i, j in pair_indices(len(responses)):
        _, new, _ = pair_get_or_create(
            project=job.project,
            prompt=prompt,
            first=by_id[responses[i]],
            second=by_id[responses[j]],
        )
        created += new
    return created


def _progress(state: _State, on_progress: Progress | None) -> None:
    job = state.job
    job.pairs_created = state.pairs_created
    job.save(
        update_fields=[
            "done",
            "total",
            "prompt_tokens",
            "completion_tokens",
            "errors",
            "pairs_created",
        ]
    )
    if on_progress is not None:
        on_progress(job)


def _finish(
    job: GenerationJob, status: str, error: str = "", state: _State | None = None
) -> GenerationJob:
    """The job's end. New pairs are announced as an import's are (with an active reward model,
    rewardtrain scores them, and the project's selection serves the most uncertain first)."""
    job.status, job.error, job.finished_at = status, error, timezone.now()
    if state is not None:
        job.pairs_created = state.pairs_created
    job.save(
        update_fields=[
            *("status", "error", "finished_at", "done", "total", "prompt_tokens"),
            *("completion_tokens", "errors", "pairs_created"),
        ]
    )
    if job.pairs_created:
        project = job.project
        transaction.on_commit(lambda: pairs_imported.send(sender=Project, project=project))
    return job


STEPS = JobSteps(plan=_plan, run=_run, progress=_progress, finish=_finish)
