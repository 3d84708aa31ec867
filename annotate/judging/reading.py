"""One reading of a pair by a judge, in one order: ask, read the verdict, and when the reply has
none ask once more with a reminder of the format (the reply and the reminder appended to the
conversation). A reply still without a verdict is returned as unparsable; an endpoint that
fails outright raises the client's EndpointError, naming the judge."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import httpx2 as httpx

from annotate.generation.client import (
    Completion,
    EmptyReply,
    Endpoint,
    RetryPolicy,
    chat_complete,
)
from annotate.judging.rubric import judge_messages, reminder
from annotate.judging.verdict import (
    VerdictUnparsable,
    in_pair_terms,
    p_a_of,
    p_first,
    verdict_parse,
)

ASKS = 2  # the first request, then one with the reminder
DEFAULT_POLICY = RetryPolicy()


@dataclass
class Reading:
    """What one order's reading gave, in the pair's terms; `choice` is "" when unparsable."""

    order: str
    choice: str = ""
    p_a: float | None = None
    rationale: str = ""
    raw: str = ""  # the last reply, as given
    asks: int = 0  # replies asked for: 1, or 2 after a reminder
    parse_error: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float = 0.0
    retried_errors: int = 0  # failed HTTP attempts the client retried

    def take(self, completion: Completion) -> None:
        self.asks += 1
        self.raw = completion.text
        self.prompt_tokens = _add(self.prompt_tokens, completion.prompt_tokens)
        self.completion_tokens = _add(self.completion_tokens, completion.completion_tokens)
        self.latency_ms += completion.latency_ms
        self.retried_errors += completion.attempts - 1


def pair_read(
    endpoint: Endpoint,
    *,
    rubric: str,
    allowed: Sequence[str],
    prompt: str,
    first: str,
    second: str,
    order: str,
    client: httpx.Client | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    stop: threading.Event | None = None,
    rng: random.Random | None = None,
) -> Reading:
    """Read `first` as response 1 and `second` as response 2 (the pair's A and B in order
    "ab", B and A in "ba")."""
    messages = judge_messages(
        rubric=rubric, allowed=allowed, prompt=prompt, response_1=first, response_2=second
    )
    reading = Reading(order=order)
    for _ in range(ASKS):
        try:
            completion = chat_complete(
                endpoint, messages, seed=endpoint.seed, client=client, policy=policy, stop=stop,
                rng=rng,
            )  # fmt: skip
        except EmptyReply:
            completion = Completion(text="", model=endpoint.model, prompt_tokens=None,
                                    completion_tokens=None, latency_ms=0.0)  # fmt: skip
        reading.take(completion)
        try:
            verdict = verdict_parse(completion.text, allowed)
        except VerdictUnparsable as exc:
            reading.parse_error = str(exc)
            messages = [
                *messages,
                {"role": "assistant", "content": completion.text},
                {"role": "user", "content": reminder(allowed, str(exc))},
            ]
            continue
        reading.choice = in_pair_terms(verdict.shown, order)
        reading.rationale = verdict.rationale
        reading.p_a = p_a_of(p_first(completion.logprobs, verdict.shown), order)
        reading.parse_error = ""
        return reading
    return reading


def _add(total: int | None, more: int | None) -> int | None:
    return more if total is None else total + (more or 0)
