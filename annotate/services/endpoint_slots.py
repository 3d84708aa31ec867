"""One concurrency limit per model endpoint, shared by every process that asks it: generation
jobs on any worker, judges and the chat page's replies each take one of the endpoint's
`concurrency` slots in Redis (settings.REDIS_URL) for a request, and give it back after.

A slot is a lease in a sorted set (token -> expiry, by Redis's own clock), renewed while held,
so a process killed mid-request frees its slot when the lease runs out. Waiters queue in
arrival order: a job that gives a slot back and asks again at once goes behind the chat page's
reply that was already waiting, instead of taking the slot back before that poll comes round.
When Redis is out of reach each process keeps the limit for itself (a warning says so, once).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus

import redis
from django.conf import settings
from kombu.utils.url import maybe_sanitize_url
from redis.backoff import NoBackoff
from redis.retry import Retry

from annotate.generation.client import Cancelled, EndpointError
from annotate.models import Generator, Judge

logger = logging.getLogger(__name__)

# A slot held by a process that died is free again after this long; a live holder renews its
# lease a third of a lease apart, so a request may take as long as it takes.
LEASE_S = 30.0
# A waiter's place in the queue lapses after this long without a poll (its process died).
WAITER_LEASE_S = 10.0
# Polls for a slot start this far apart and double up to the ceiling: a freed slot waits at
# most the ceiling for the waiter it belongs to, and a hundred waiters cost Redis nothing.
POLL_FIRST_S, POLL_MAX_S = 0.005, 0.05
# After Redis failed, each process keeps the limit for itself this long before it tries Redis
# again: a down Redis costs one connect timeout per period, not one per request.
REDIS_RETRY_S = 30.0
REDIS_ERRORS = (redis.exceptions.RedisError, OSError)

# Prune lapsed holders and waiters, then take a slot when one is free and no earlier waiter is
# owed it; else join (or stay in) the queue. Times are Redis's, one clock for every machine.
# KEYS: held (token -> lease end, ms), queue (token -> arrival, us), alive (token -> waiter
# lease end, ms). ARGV: token, limit, lease ms, waiter lease ms.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, token in ipairs(lapsed) do
  redis.call('ZREM', KEYS[2], token)
  redis.call('ZREM', KEYS[3], token)
end
local free = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[1])
local place = redis.call('ZRANK', KEYS[2], ARGV[1]) or redis.call('ZCARD', KEYS[2])
local keep = tonumber(ARGV[3]) + tonumber(ARGV[4])
if place < free then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], keep)
  return 1
end
redis.call('ZADD', KEYS[2], 'NX', t[1] .. string.sub('000000' .. t[2], -6), ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('PEXPIRE', KEYS[3], keep)
return 0
"""
# A held slot's lease, moved on; 0 when the slot is no longer held (given back, or lapsed and
# taken by another).
RENEW = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]))
return 1
"""


class SlotsBusy(EndpointError):
    """Every slot of the endpoint stayed taken for as long as a request may wait."""

    # As the endpoint's own 503 would be answered: try again later.
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "endpoint_busy"


@dataclass(frozen=True)
class Slots:
    """An endpoint's slots: its Redis key and what error messages call it."""

    key: str
    kind: str  # "generator" or "judge"
    name: str
    limit: int


def endpoint_slots(endpoint: Generator | Judge) -> Slots:
    """Keyed by the database too: two deployments (or two test sessions) sharing one Redis
    have their own generator 1 each."""
    kind = endpoint._meta.model_name
    database = settings.DATABASES["default"]["NAME"]
    return Slots(
        key=f"prefloop:slots:{database}:{kind}:{endpoint.pk}",
        kind=kind,
        name=endpoint.name,
        limit=endpoint.concurrency,
    )


@contextmanager
def endpoint_slot(
    endpoint: Generator | Judge,
    *,
    timeout_s: float,
    stop: threading.Event | None = None,
    lease_s: float = LEASE_S,
) -> Iterator[None]:
    """One of the endpoint's `concurrency` slots, held for the body (one request, a stream or
    its retries included) and given back on the way out, error or not. Waits at most
    `timeout_s` (then SlotsBusy, naming the endpoint); a set `stop` ends the wait (Cancelled).
    Logged at debug level as each slot is taken and given back."""
    slots = endpoint_slots(endpoint)
    give_back = _take(slots, timeout_s=timeout_s, stop=stop, lease_s=lease_s)
    logger.debug("slot taken: %s", slots.key, extra={"slot": slots.key, "slot_event": "taken"})
    try:
        yield
    finally:
        logger.debug(
            "slot given back: %s", slots.key, extra={"slot": slots.key, "slot_event": "given"}
        )
        give_back()


def _take(
    slots: Slots, *, timeout_s: float, stop: threading.Event | None, lease_s: float
) -> Callable[[], None]:
    """A slot, in Redis when it answers, else from this process's own; returns how to give
    it back."""
    deadline = time.monotonic() + timeout_s
    url = settings.REDIS_URL
    client = _store.client(url)
    if client is not None:
        lease = _Lease(url=url, client=client, slots=slots, token=uuid.uuid4().hex, lease_s=lease_s)
        try:
            _wait(lease.try_take, slots, timeout_s=timeout_s, deadline=deadline, stop=stop)
        except REDIS_ERRORS as exc:
            _store.failed(url, exc)
            lease.leave()
        except BaseException:
            lease.leave()  # no longer waiting: the place in the queue goes to the next
            raise
        else:
            _keeper.hold(lease)
            return lease.give_back
    semaphore = _local.semaphore(slots)
    _wait(
        lambda: semaphore.acquire(blocking=False),
        slots,
        timeout_s=timeout_s,
        deadline=deadline,
        stop=stop,
    )
    return semaphore.release


def _wait(
    try_take: Callable[[], bool],
    slots: Slots,
    *,
    timeout_s: float,
    deadline: float,
    stop: threading.Event | None,
) -> None:
    """`try_take()` until it succeeds, with a jittered backoff up to POLL_MAX_S between
    tries; SlotsBusy at the deadline, Cancelled as soon as `stop` is set."""
    delay, rng, logged = POLL_FIRST_S, random.Random(), False
    while True:
        if stop is not None and stop.is_set():
            raise Cancelled()
        if try_take():
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise _busy(slots, timeout_s)
        if not logged:
            logged = True
            logger.debug(
                "waiting for a slot: %s", slots.key, extra={"slot": slots.key, "slot_event": "wait"}
            )
        pause = min(left, rng.uniform(delay / 2, delay))
        if stop is not None:
            stop.wait(pause)
        else:
            time.sleep(pause)
        delay = min(delay * 2, POLL_MAX_S)


def _busy(slots: Slots, timeout_s: float) -> SlotsBusy:
    which = (
        "its one concurrent slot"
        if slots.limit == 1
        else f"all {slots.limit} of its concurrent slots"
    )
    return SlotsBusy(slots.name, f"{which} stayed busy for {timeout_s:g} s", kind=slots.kind)


@dataclass
class _Lease:
    """One request's slot in Redis, from its place in the queue to its giving back."""

    url: str
    client: redis.Redis
    slots: Slots
    token: str
    lease_s: float

    def _keys(self) -> list[str]:
        return [f"{self.slots.key}:held", f"{self.slots.key}:queue", f"{self.slots.key}:alive"]

    def try_take(self) -> bool:
        args = [self.token, self.slots.limit, _ms(self.lease_s), _ms(WAITER_LEASE_S)]
        return bool(self.client.eval(TAKE, 3, *self._keys(), *args))

    def renew(self) -> bool:
        held = self._keys()[0]
        return bool(
            self.client.eval(RENEW, 1, held, self.token, _ms(self.lease_s), _ms(WAITER_LEASE_S))
        )

    def leave(self) -> None:
        """Out of the queue, when it can be said; a place not taken back lapses anyway."""
        try:
            self.client.zrem(self._keys()[1], self.token)
            self.client.zrem(self._keys()[2], self.token)
        except REDIS_ERRORS:
            pass

    def give_back(self) -> None:
        _keeper.drop(self)
        try:
            self.client.zrem(self._keys()[0], self.token)
        except REDIS_ERRORS as exc:
            _store.failed(self.url, exc)  # the lease runs out on its own


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class _Keeper:
    """Renews the leases this process holds, in one daemon thread, a third of the shortest
    lease apart: a live holder keeps its slot however long its request takes."""

    def __init__(self) -> None:
        self._held: dict[str, _Lease] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._due = math.inf  # the next renewal (monotonic time); none while nothing is held

    def hold(self, lease: _Lease) -> None:
        with self._wake:
            self._held[lease.token] = lease
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="endpoint-slots", daemon=True
                )
                self._thread.start()
            if time.monotonic() + lease.lease_s / 3 < self._due:
                self._wake.notify()  # the first lease, or a shorter one: renew sooner

    def drop(self, lease: _Lease) -> None:
        with self._wake:
            self._held.pop(lease.token, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                self._due = math.inf
                self._wake.wait_for(lambda: self._held)
                shortest = min(lease.lease_s for lease in self._held.values())
                self._due = time.monotonic() + shortest / 3
                self._wake.wait(shortest / 3)
                leases = list(self._held.values())
            for lease in leases:
                self._renew(lease)

    def _renew(self, lease: _Lease) -> None:
        try:
            renewed = lease.renew()
        except REDIS_ERRORS as exc:
            _store.failed(lease.url, exc)
            return
        with self._wake:
            lost = not renewed and lease.token in self._held
        if lost:
            # Only a process stalled for a whole lease gets here; the request goes on.
            logger.warning(
                "%s %r: a slot's lease ran out before it was renewed (the process stalled "
                "for over %g s); until its request ends the endpoint may get one more",
                *(lease.slots.kind, lease.slots.name, lease.lease_s),
            )


class _Store:
    """A client of the Redis at a URL (settings.REDIS_URL, read at each request: tests point
    it elsewhere), or None for REDIS_RETRY_S after it failed. A failure is a warning once per
    process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, redis.Redis] = {}
        self._down_until: dict[str, float] = {}
        self._warned: set[str] = set()

    def client(self, url: str) -> redis.Redis | None:
        if time.monotonic() < self._down_until.get(url, 0.0):
            return None
        with self._lock:
            if url not in self._clients:
                # As annotate/queue.py does: no retries, the broker's connection timeout.
                timeout = settings.CELERY_BROKER_CONNECTION_TIMEOUT
                self._clients[url] = redis.Redis.from_url(
                    url,
                    socket_connect_timeout=timeout,
                    socket_timeout=timeout,
                    retry=Retry(NoBackoff(), 0),
                )
            return self._clients[url]

    def failed(self, url: str, exc: BaseException) -> None:
        self._down_until[url] = time.monotonic() + REDIS_RETRY_S
        with self._lock:
            warned = url in self._warned
            self._warned.add(url)
        if not warned:
            logger.warning(
                "Redis at %s is out of reach (%s): each process now keeps each endpoint's "
                "concurrency limit for itself, so processes together may send an endpoint "
                "more; Redis is tried again every %g s",
                *(maybe_sanitize_url(url), exc, REDIS_RETRY_S),
            )


class _Local:
    """This process's own slots, per endpoint and limit (a changed limit starts afresh)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._semaphores: dict[tuple[str, int], threading.BoundedSemaphore] = {}

    def semaphore(self, slots: Slots) -> threading.BoundedSemaphore:
        with self._lock:
            key = (slots.key, slots.limit)
            if key not in self._semaphores:
                self._semaphores[key] = threading.BoundedSemaphore(slots.limit)
            return self._semaphores[key]


_store = _Store()
_keeper = _Keeper()
_local = _Local()
