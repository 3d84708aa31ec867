"""Running a judging job: every pair of the job is read by its judge in both orders (A/B, then
B/A, where the judge's "1" is the pair's B), up to the judge's concurrency at once (across
every job asking it: annotate/services/endpoint_slots.py). Each
reading is stored as it arrives (a JudgeVerdict: the verdict in the pair's terms, P(A) from
logprobs when the endpoint gave them, the rationale, the raw reply); once a pair has both, they
make one Comparison by the judge's account (annotate/judging/verdict.py: readings_combine), in
the same transaction as the counters it moves.

A (judge, pair, order) already read is never asked again and a pair the judge has a comparison
for is skipped, so a cancelled or failed job resumes where it stopped. Threads only wait on
HTTP; this thread alone touches the database. An endpoint that fails outright fails the job
with its own error text, naming the judge.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import httpx2 as httpx
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotate.generation.client import Cancelled, EndpointError
from annotate.judging.reading import Reading, pair_read
from annotate.judging.rubric import prompt_text
from annotate.judging.verdict import readings_combine
from annotate.models import (
    Comparison,
    Judge,
    JudgeVerdict,
    JudgingJob,
    Lease,
    Pair,
    Project,
)
from annotate.services.endpoint_slots import endpoint_slot
from annotate.services.generation import retry_policy
from annotate.services.jobs import JobSteps, job_cancel_asked, job_execute
from annotate.services.judges import (
    judge_endpoint,
    judge_rubric,
    pairs_to_judge,
    project_verdicts,
)
from annotate.services.judges_verdict import judges_verdict_refresh

logger = logging.getLogger(__name__)

# Progress and the cancel flag are read and written at most this often.
TICK_S = 0.5
# Readings submitted ahead of those in flight, per unit of concurrency: enough to keep the
# endpoint busy, few enough that a cancel leaves little queued and a large job holds few texts.
WINDOW_PER_SLOT = 2
ORDERS = (JudgeVerdict.Order.AB, JudgeVerdict.Order.BA)
Progress = Callable[[JudgingJob], None]


@dataclass(frozen=True)
class Work:
    pair_id: int
    order: str


@dataclass(frozen=True)
class PairText:
    """What a judge may see of a pair: the prompt and the two responses, nothing else."""

    prompt: str
    a: str
    b: str


# One reading of a pair, as run on the pool's threads.
Ask = Callable[[Work, PairText], Reading]


@dataclass
class _State:
    """What the loop keeps between ticks."""

    job: JudgingJob
    judge: Judge
    left: dict[int, int]  # pair id -> orders still to read
    texts: dict[int, PairText] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    failure: str = ""


def judging_job_execute(*, job_id: int, on_progress: Progress | None = None) -> JudgingJob:
    """Run the job to its end (services/jobs.py's lifecycle, with this kind's steps)."""
    job = JudgingJob.objects.select_related("project", "judge__user", "judge__project").get(
        pk=job_id
    )
    return job_execute(job=job, steps=STEPS, on_progress=on_progress)


def _plan(job: JudgingJob) -> tuple[_State, list[Work]]:
    """The job's pairs: those it has read before (a resumed job keeps its own) and, up to its
    limit, the next the judge has not read, in serving order. Readings missing, pair by pair
    (so pairs complete, and get their comparison, early); pairs already read in both orders
    without a comparison (a worker lost between the two writes) get it now."""
    judge = job.judge
    mine = list(
        JudgeVerdict.objects.filter(job=job)
        .order_by("pair_id")
        .values_list("pair_id", flat=True)
        .distinct()
    )
    fresh = pairs_to_judge(judge=judge, open_only=job.open_only).exclude(pk__in=mine)
    if job.limit is not None:
        fresh = fresh[: max(job.limit - len(mine), 0)]
    pair_ids = [*mine, *fresh.values_list("pk", flat=True)]
    read = set(
        JudgeVerdict.objects.filter(judge=judge, pair_id__in=pair_ids).values_list(
            "pair_id", "order"
        )
    )
    work = [Work(p, o) for p in pair_ids for o in ORDERS if (p, o) not in read]
    left = dict.fromkeys(pair_ids, 0)
    for item in work:
        left[item.pair_id] += 1
    job.total = len(pair_ids)
    job.done = sum(1 for n in left.values() if not n)
    for pair_id, n in left.items():
        if not n and judge_comparison_make(judge=judge, pair_id=pair_id) is not None:
            job.comparisons_created += 1
    return _State(job=job, judge=judge, left=left), work


def _run(state: _State, work: list[Work], on_progress: Progress | None) -> None:
    """Keep up to a window of readings submitted to the judge's pool, store them as they
    come, check the cancel flag and write progress each tick."""
    judge = state.judge
    slots = judge.concurrency
    pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix=f"judge-{judge.name}")
    client = httpx.Client(
        limits=httpx.Limits(max_connections=slots, max_keepalive_connections=slots)
    )
    ask = _asker(state, client)
    try:
        _drive(state, work, on_progress, pool=pool, ask=ask)
    finally:
        state.stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        client.close()


def _asker(state: _State, client: httpx.Client) -> Ask:
    """One reading of a pair in the item's order; what it needs of the judge and project is
    read here, once, since the pool's threads must not touch the database."""
    judge, project = state.judge, state.job.project
    endpoint, rubric = judge_endpoint(judge), judge_rubric(judge)
    allowed, policy = project_verdicts(project), retry_policy()

    def ask(item: Work, text: PairText) -> Reading:
        first, second = (text.a, text.b) if item.order == "ab" else (text.b, text.a)
        # One slot of the judge's endpoint, shared with every other job asking it, for the
        # reading's requests (the reminder's too: one at a time).
        with endpoint_slot(judge, timeout_s=policy.timeout_s, stop=state.stop):
            return pair_read(
                endpoint,
                rubric=rubric,
                allowed=allowed,
                prompt=text.prompt,
                first=first,
                second=second,
                order=item.order,
                client=client,
                policy=policy,
                stop=state.stop,
            )

    return ask


def _drive(
    state: _State,
    work: list[Work],
    on_progress: Progress | None,
    *,
    pool: ThreadPoolExecutor,
    ask: Ask,
) -> None:
    """The loop: store what finished, tick, then top the window up (or, once stopping,
    drop what has not started)."""
    pending: dict[Future, Work] = {}
    queue: Iterator[Work] = iter(work)
    window = state.judge.concurrency * WINDOW_PER_SLOT
    _fill(state, pending, queue, window=window, pool=pool, ask=ask)
    next_tick = time.monotonic() + TICK_S
    while pending:
        done, _ = wait(pending, timeout=TICK_S, return_when=FIRST_COMPLETED)
        for future in done:
            _take(state, pending.pop(future), future)
        next_tick = _tick(state, on_progress, next_tick)
        if state.stop.is_set():
            _drop_queued(pending)
        else:
            _fill(state, pending, queue, window=window, pool=pool, ask=ask)
    _progress(state, on_progress)


def _fill(
    state: _State,
    pending: dict[Future, Work],
    queue: Iterator[Work],
    *,
    window: int,
    pool: ThreadPoolExecutor,
    ask: Ask,
) -> None:
    """Submit the next readings until the window is full, the work runs out or a stop."""
    while len(pending) < window and not state.stop.is_set():
        item = next(queue, None)
        if item is None:
            return
        text = _text(state, item.pair_id)
        if text is None:  # deleted since the job was planned: nothing left to read
            state.left[item.pair_id] = 0
            continue
        pending[pool.submit(ask, item, text)] = item


def _tick(state: _State, on_progress: Progress | None, next_tick: float) -> float:
    """Progress and the cancel flag, at most once per TICK_S (each costs a database write or
    read); returns when the next tick is due."""
    if time.monotonic() < next_tick:
        return next_tick
    next_tick = time.monotonic() + TICK_S
    _progress(state, on_progress)
    if job_cancel_asked(state.job):
        state.stop.set()
    return next_tick


def _drop_queued(pending: dict[Future, Work]) -> None:
    """No new reading starts; those in flight finish (and are kept)."""
    for future in list(pending):
        if future.cancel():
            del pending[future]


def _text(state: _State, pair_id: int) -> PairText | None:
    """The pair's texts, read once for its two readings; None when it no longer exists."""
    if pair_id not in state.texts:
        pair = (
            Pair.objects.select_related("prompt", "response_a", "response_b")
            .filter(pk=pair_id)
            .first()
        )
        if pair is None:
            return None
        state.texts[pair_id] = PairText(
            prompt=prompt_text(pair.prompt.messages),
            a=pair.response_a.text,
            b=pair.response_b.text,
        )
    return state.texts[pair_id]


def _take(state: _State, item: Work, future: Future) -> None:
    job = state.job
    try:
        reading = future.result()
    except Cancelled:
        return
    except EndpointError as exc:
        job.errors += 1 + (retry_policy().max_retries if exc.retryable else 0)
        if not state.failure:
            state.failure = str(exc)
            state.stop.set()
        return
    job.errors += reading.retried_errors
    job.prompt_tokens += reading.prompt_tokens or 0
    job.completion_tokens += reading.completion_tokens or 0
    if verdict_store(job=job, pair_id=item.pair_id, reading=reading) is None:
        return  # read meanwhile by another run of this job (a redelivered task)
    job.unparsable += not reading.choice
    state.left[item.pair_id] -= 1
    if not state.left[item.pair_id]:
        state.texts.pop(item.pair_id, None)
        job.done += 1
        if judge_comparison_make(judge=state.judge, pair_id=item.pair_id) is not None:
            job.comparisons_created += 1


def verdict_store(*, job: JudgingJob, pair_id: int, reading: Reading) -> JudgeVerdict | None:
    """The reading as a JudgeVerdict; None when this (judge, pair, order) is already stored."""
    try:
        with transaction.atomic():
            return JudgeVerdict.objects.create(
                judge_id=job.judge_id,
                pair_id=pair_id,
                job=job,
                order=reading.order,
                choice=reading.choice,
                p_a=reading.p_a,
                rationale=reading.rationale,
                raw=reading.raw,
                attempts=reading.asks,
                parse_error=reading.parse_error[:500],
                prompt_tokens=reading.prompt_tokens,
                completion_tokens=reading.completion_tokens,
                latency_ms=round(reading.latency_ms, 3),
            )
    except IntegrityError:
        return None


@transaction.atomic
def judge_comparison_make(*, judge: Judge, pair_id: int) -> Comparison | None:
    """The judge's one Comparison of the pair from its readings: the parsable ones combined
    (both, or the one left when the other stayed unparsable; none: no comparison), with
    `p_chosen` and both rationales. Like a person's, it is a gold check on a gold pair (and
    takes no slot there); elsewhere it takes one of the pair's `redundancy` slots only when the
    project says judges count toward it, and only a slot that people's live leases leave
    free. None when the judge already has one, or no reading is parsable."""
    pair = Pair.objects.select_for_update(of=("self",)).select_related("project").get(pk=pair_id)
    if Comparison.objects.filter(pair=pair, labeler=judge.user_id, is_repeat=False).exists():
        return None
    verdicts = list(JudgeVerdict.objects.filter(judge=judge, pair=pair).order_by("order"))
    judgment = readings_combine([(v.choice, v.p_a) for v in verdicts if v.choice])
    if judgment is None:
        return None
    project = pair.project
    if project.judges_count_toward_redundancy and not pair.gold and pair.is_open:
        held = (
            Lease.objects.filter(pair=pair, expires_at__gt=timezone.now())
            .exclude(labeler_id=judge.user_id)
            .count()
        )
        if pair.human_count + held < project.redundancy:
            pair.human_count += 1
            pair.is_open = pair.human_count < project.redundancy
            pair.save(update_fields=["human_count", "is_open"])
    comparison = Comparison.objects.create(
        pair=pair,
        project_id=pair.project_id,
        labeler_id=judge.user_id,
        source=Comparison.Source.AI_JUDGE,
        choice=judgment.choice,
        p_chosen=judgment.p_chosen,
        comment=_comment(verdicts),
        is_gold_check=bool(pair.gold),
    )
    judges_verdict_refresh(pair_ids=[pair.pk])  # judge-first reads it (the pair stays locked)
    Project.objects.filter(pk=pair.project_id).update(comparison_count=F("comparison_count") + 1)
    return comparison


def _comment(verdicts: list[JudgeVerdict]) -> str:
    """Both readings' rationales, each under the order it was read in (in B/A, the judge's
    "response 1" is the pair's B)."""
    parts = []
    for v in verdicts:
        label = "Read with A first" if v.order == "ab" else "Read with B first"
        outcome = v.choice or f"unparsable: {v.parse_error}"
        parts.append(f"{label} ({outcome})" + (f": {v.rationale}" if v.rationale else ""))
    return "\n\n".join(parts)


COUNTERS = (
    *("done", "total", "comparisons_created", "unparsable", "errors"),
    *("prompt_tokens", "completion_tokens"),
)


def _progress(state: _State, on_progress: Progress | None) -> None:
    state.job.save(update_fields=list(COUNTERS))
    if on_progress is not None:
        on_progress(state.job)


def _finish(
    job: JudgingJob, status: str, error: str = "", state: _State | None = None
) -> JudgingJob:
    job.status, job.error, job.finished_at = status, error, timezone.now()
    job.save(update_fields=["status", "error", "finished_at", *COUNTERS])
    return job


STEPS = JobSteps(plan=_plan, run=_run, progress=_progress, finish=_finish)
