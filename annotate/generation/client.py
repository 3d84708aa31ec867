"""A client for OpenAI-compatible chat completion endpoints (vLLM, TGI, Ollama,
`transformers serve`, OpenAI itself): one `POST {base_url}/chat/completions`, with a timeout,
retries on 429, 5xx and lost connections (exponential backoff with full jitter), and errors that
name the endpoint's generator and carry the endpoint's own error text.

Plain httpx (installed as `httpx2`), not the `openai` package: the request is one JSON POST,
and the retry policy (which statuses, how long, stopping at once when a job is cancelled) has to
be ours anyway; the `openai` client adds its own retry loop, pydantic models and a release cadence
that breaks call sites, and servers that are only "mostly" compatible (a missing `usage`, extra
fields) trip its validation. No Django here: a worker thread calls it with a plain dataclass.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx

# Statuses worth another try: rate limited, or the server's own trouble (a restart, overload).
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# A missing or wrong key (vLLM's --api-key, OpenAI, a gateway in front of TGI).
AUTH_STATUSES = frozenset({401, 403})
# An error text is cut here in messages: some servers answer an HTML page.
ERROR_TEXT_MAX = 500


class EndpointError(Exception):
    """A request the endpoint did not answer with a usable reply. The message names the
    endpoint (`kind` says what it is: a generator, a judge) and says why; `retryable` is
    whether another try could succeed."""

    def __init__(
        self, generator: str, reason: str, *, retryable: bool = False, kind: str = "generator"
    ) -> None:
        super().__init__(generator, reason)
        self.generator = generator  # the endpoint's name
        self.reason = reason
        self.retryable = retryable
        self.kind = kind

    def __str__(self) -> str:
        return f"{self.kind} {self.generator!r}: {self.reason}"


class EmptyReply(EndpointError):
    """An answer whose reply is empty: an error for a generator; a judge reads it as a reply
    without a verdict (annotate/judging)."""


class Cancelled(Exception):
    """The caller's stop event was set while this request waited to retry."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask. `api_key_env` names an environment variable (never the key)."""

    name: str  # the generator's (or judge's) name, for error messages
    base_url: str
    model: str
    api_key_env: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    system_prompt: str = ""
    kind: str = "generator"  # what `name` names in error messages
    # Ask for the top N alternatives of each reply token (`logprobs`, `top_logprobs`): a
    # judge's verdict probabilities. Servers that ignore them (`transformers serve`) answer
    # without.
    top_logprobs: int | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Defaults: about 30 s of retries in all (0.5, 1, 2, 4, 8, 8, 8 s ceilings, each drawn
    uniformly below its ceiling), enough for a server restart or a burst of 429s."""

    timeout_s: float = 120.0  # per request: reading a long answer from a busy server
    max_retries: int = 7
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter (AWS's "exponential backoff and jitter"): many clients retrying at
        once spread out instead of hitting the server together again."""
        return rng.uniform(0, min(self.backoff_max_s, self.backoff_s * 2**attempt))


@dataclass
class Completion:
    text: str
    model: str  # as the endpoint names it in its answer
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float  # of the successful attempt
    attempts: int = 1
    finish_reason: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)
    # choices[0].logprobs.content as the endpoint gave it (OpenAI's shape: a list of
    # {token, logprob, top_logprobs: [{token, logprob}]}), when asked for and given.
    logprobs: list[dict[str, Any]] | None = None


def request_body(endpoint: Endpoint, messages: list[dict[str, Any]], *, seed: int | None) -> dict:
    """The chat completion request: the system prompt first (when the messages have none),
    and only the sampling settings that are set (servers differ in what they accept)."""
    if endpoint.system_prompt and not (messages and messages[0].get("role") == "system"):
        messages = [{"role": "system", "content": endpoint.system_prompt}, *messages]
    body: dict[str, Any] = {"model": endpoint.model, "messages": messages, "stream": False}
    body.update(sampling_settings(endpoint, seed=seed))
    if endpoint.top_logprobs:
        body.update(logprobs=True, top_logprobs=endpoint.top_logprobs)
    return body


def sampling_settings(endpoint: Endpoint, *, seed: int | None) -> dict[str, Any]:
    settings = {
        "temperature": endpoint.temperature,
        "top_p": endpoint.top_p,
        "max_tokens": endpoint.max_tokens,
        "seed": seed,
    }
    return {key: value for key, value in settings.items() if value is not None}


def headers(endpoint: Endpoint) -> dict[str, str]:
    """The bearer key read from the environment now (rotating a key needs no restart of the
    app, only of the process that holds the variable). A named variable that is unset is an
    error: sending no key would only earn a 401 that hides the cause."""
    if not endpoint.api_key_env:
        return {}
    key = os.environ.get(endpoint.api_key_env)
    if not key:
        raise EndpointError(
            endpoint.name, f"the environment variable {endpoint.api_key_env} (its API key) is unset"
        )
    return {"Authorization": f"Bearer {key}"}


def chat_complete(
    endpoint: Endpoint,
    messages: list[dict[str, Any]],
    *,
    seed: int | None = None,
    client: httpx.Client | None = None,
    policy: RetryPolicy = RetryPolicy(),
    stop: threading.Event | None = None,
    rng: random.Random | None = None,
) -> Completion:
    """One reply to `messages`, retried as the policy says. Raises EndpointError (the last
    error when retries ran out) or Cancelled (`stop` set while waiting to retry)."""
    rng = rng or random.Random()
    own = client is None
    client = client or httpx.Client()
    body = request_body(endpoint, messages, seed=seed)

    def once() -> Completion:
        try:
            return _attempt(endpoint, body, client, policy)
        except EndpointError as exc:
            exc.kind = endpoint.kind
            raise

    try:
        completion = _retried(once, lambda exc: exc.retryable, policy=policy, rng=rng, stop=stop)
        completion.sampling = sampling_settings(endpoint, seed=seed)
        return completion
    finally:
        if own:
            client.close()


def _retried(
    once: Callable[[], Completion],
    retryable: Callable[[EndpointError], bool],
    *,
    policy: RetryPolicy,
    rng: random.Random,
    stop: threading.Event | None,
) -> Completion:
    """`once()` until it answers, waiting the policy's backoff after each retryable failure (a
    set `stop` cancels the wait); the last failure is raised. One loop for both calls."""
    for attempt in range(policy.max_retries + 1):
        try:
            completion = once()
        except EndpointError as exc:
            if not retryable(exc) or attempt == policy.max_retries:
                raise
            if stop is not None and stop.wait(policy.delay(attempt, rng)):
                raise Cancelled() from exc
            if stop is None:
                time.sleep(policy.delay(attempt, rng))
            continue
        completion.attempts = attempt + 1
        return completion
    raise AssertionError("unreachable")


def _attempt(
    endpoint: Endpoint, body: dict, client: httpx.Client, policy: RetryPolicy
) -> Completion:
    url = endpoint.base_url.rstrip("/") + "/chat/completions"
    started = time.perf_counter()
    try:
        answer = client.post(url, json=body, headers=headers(endpoint), timeout=policy.timeout_s)
    except httpx.TimeoutException as exc:
        raise EndpointError(
            endpoint.name, f"no answer from {url} within {policy.timeout_s:g} s", retryable=True
        ) from exc
    except httpx.TransportError as exc:
        raise EndpointError(
            endpoint.name, f"could not reach {url}: {exc or type(exc).__name__}", retryable=True
        ) from exc
    latency_ms = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise _status_error(endpoint, url, answer)
    return _parse(endpoint, answer, latency_ms)


def _status_error(endpoint: Endpoint, url: str, answer: httpx.Response) -> EndpointError:
    """A non-200 answer: the endpoint's own text, retryable for RETRY_STATUSES. A refused key
    (401, 403) says which variable holds it, or how to give one, and is never retried: the
    same key would be refused again."""
    status = answer.status_code
    text = _key_masked(endpoint, _error_text(answer))
    if status not in AUTH_STATUSES:
        return EndpointError(
            endpoint.name, f"{url} answered {status}: {text}", retryable=status in RETRY_STATUSES
        )
    why = f"{status}: {text}"
    if endpoint.api_key_env:
        return EndpointError(
            endpoint.name,
            f"{url} refused the API key in {endpoint.api_key_env} ({why})",
            kind=endpoint.kind,
        )
    return EndpointError(
        endpoint.name,
        f"{url} asks for an API key ({why}) and this {endpoint.kind} names none: put the key "
        "in an environment variable of the web and worker processes and give its name with "
        f"--api-key-env VAR (manage.py add_{endpoint.kind}) or the {endpoint.kind}'s "
        '"Api key env" field on its page',
        kind=endpoint.kind,
    )


def _key_masked(endpoint: Endpoint, text: str) -> str:
    """The endpoint's text with the key it was sent masked: some gateways echo a refused key
    whole, and this text goes to job pages, logs and API bodies."""
    key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
    return text.replace(key, "[the key]") if key else text


def _error_text(answer: httpx.Response) -> str:
    """The endpoint's own message: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or
    the body as text."""
    try:
        data = answer.json()
    except ValueError:
        return answer.text[:ERROR_TEXT_MAX].strip() or answer.reason_phrase
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:ERROR_TEXT_MAX]
        for key in ("error", "detail", "message"):
            if data.get(key):
                value = data[key]
                return (value if isinstance(value, str) else json.dumps(value))[:ERROR_TEXT_MAX]
    return json.dumps(data)[:ERROR_TEXT_MAX]


def _parse(endpoint: Endpoint, answer: httpx.Response, latency_ms: float) -> Completion:
    """The reply's text and token counts; a malformed answer or an empty reply is an error
    (not retried: the same request would get the same answer)."""
    try:
        data = answer.json()
        choice = data["choices"][0]
        text = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise EndpointError(
            endpoint.name,
            f"a malformed answer (no choices[0].message.content): {answer.text[:ERROR_TEXT_MAX]}",
        ) from exc
    if not isinstance(text, str) or not text.strip():
        raise EmptyReply(endpoint.name, "an empty reply")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    logprobs = choice.get("logprobs")
    tokens = logprobs.get("content") if isinstance(logprobs, dict) else None
    return Completion(
        text=text,
        model=str(data.get("model") or endpoint.model),
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        latency_ms=latency_ms,
        finish_reason=str(choice.get("finish_reason") or ""),
        logprobs=tokens if isinstance(tokens, list) else None,
    )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def chat_stream(
    endpoint: Endpoint,
    messages: list[dict[str, Any]],
    *,
    on_text: Callable[[str], None],
    seed: int | None = None,
    client: httpx.Client | None = None,
    policy: RetryPolicy = RetryPolicy(),
    stop: threading.Event | None = None,
    rng: random.Random | None = None,
) -> Completion:
    """One reply to `messages`, streamed (`stream: true`, answered as Server-Sent Events):
    `on_text` gets each piece of the reply as it arrives, and the whole reply comes back as a
    Completion, with token counts when the endpoint sends a usage chunk (asked for with
    `stream_options.include_usage`; vLLM, TGI, `transformers serve` and OpenAI send one).

    Retried as the policy says only until the first piece of text: after that another try
    would repeat what the caller has already shown. `policy.timeout_s` bounds the whole reply,
    not each read: a server that trickles tokens past it is an error. `stop` set ends the
    reading between two pieces (Cancelled), which closes the connection, and a server that
    notices (vLLM, `transformers serve`) stops generating."""
    rng = rng or random.Random()
    own = client is None
    client = client or httpx.Client()
    body = request_body(endpoint, messages, seed=seed)
    body.update(stream=True, stream_options={"include_usage": True})
    readings: list[_Stream] = []

    def once() -> Completion:
        readings.append(_Stream(endpoint=endpoint, on_text=on_text, policy=policy, stop=stop))
        return readings[-1].run(body, client)

    def retryable(exc: EndpointError) -> bool:
        # Once text has reached the caller, a retry would show it twice.
        return exc.retryable and not readings[-1].pieces

    try:
        completion = _retried(once, retryable, policy=policy, rng=rng, stop=stop)
        completion.sampling = sampling_settings(endpoint, seed=seed)
        return completion
    finally:
        if own:
            client.close()


@dataclass
class _Stream:
    """One attempt at a streamed reply: what has arrived so far, and the reading of it."""

    endpoint: Endpoint
    on_text: Callable[[str], None]
    policy: RetryPolicy
    stop: threading.Event | None
    pieces: list[str] = field(default_factory=list)
    model: str = ""
    finish_reason: str = ""
    usage: dict[str, Any] = field(default_factory=dict)

    def run(self, body: dict, client: httpx.Client) -> Completion:
        url = self.endpoint.base_url.rstrip("/") + "/chat/completions"
        timeout = self.policy.timeout_s
        started = time.perf_counter()
        try:
            with client.stream(
                "POST", url, json=body, headers=headers(self.endpoint), timeout=timeout
            ) as answer:
                if answer.status_code != 200:
                    answer.read()
                    raise _status_error(self.endpoint, url, answer)
                if "text/event-stream" not in answer.headers.get("content-type", ""):
                    # A server that ignores `stream` answers the whole reply at once.
                    answer.read()
                    completion = _parse(
                        self.endpoint, answer, (time.perf_counter() - started) * 1000
                    )
                    self._take(completion.text)
                    return completion
                self._read(answer, url, deadline=time.monotonic() + timeout)
        except httpx.TimeoutException as exc:
            raise EndpointError(
                self.endpoint.name,
                f"no answer from {url} within {timeout:g} s",
                retryable=not self.pieces,
            ) from exc
        except httpx.TransportError as exc:
            why = str(exc) or type(exc).__name__
            reason = (
                f"the connection to {url} broke mid-reply: {why}"
                if self.pieces
                else f"could not reach {url}: {why}"
            )
            raise EndpointError(self.endpoint.name, reason, retryable=not self.pieces) from exc
        text = "".join(self.pieces)
        if not text.strip():
            raise EndpointError(self.endpoint.name, "an empty reply")
        return Completion(
            text=text,
            model=self.model or self.endpoint.model,
            prompt_tokens=_count(self.usage.get("prompt_tokens")),
            completion_tokens=_count(self.usage.get("completion_tokens")),
            latency_ms=(time.perf_counter() - started) * 1000,
            finish_reason=self.finish_reason,
        )

    def _read(self, answer: httpx.Response, url: str, *, deadline: float) -> None:
        """The events up to `data: [DONE]` or the end of the stream. An event's `data:` lines
        are joined (the SSE rule); comments (`:`) and other fields are skipped."""
        data: list[str] = []
        for line in answer.iter_lines():
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif not line and data:
                payload, data = "\n".join(data), []
                if payload.strip() == "[DONE]":
                    return
                self._event(payload, url)
            if self.stop is not None and self.stop.is_set():
                raise Cancelled()
            if time.monotonic() > deadline:
                raise EndpointError(
                    self.endpoint.name,
                    f"no complete reply from {url} within {self.policy.timeout_s:g} s",
                )
        if data and "\n".join(data).strip() != "[DONE]":
            self._event("\n".join(data), url)

    def _event(self, payload: str, url: str) -> None:
        try:
            chunk = json.loads(payload)
        except ValueError as exc:
            raise EndpointError(
                self.endpoint.name, f"a malformed event in the stream: {payload[:ERROR_TEXT_MAX]}"
            ) from exc
        if not isinstance(chunk, dict):
            raise EndpointError(
                self.endpoint.name, f"a malformed event in the stream: {payload[:ERROR_TEXT_MAX]}"
            )
        if chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else None
            raise EndpointError(
                self.endpoint.name,
                f"{url} stopped with an error: {str(message or error)[:ERROR_TEXT_MAX]}",
            )
        self.model = str(chunk.get("model") or self.model)
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                self._take(content)
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])

    def _take(self, text: str) -> None:
        self.pieces.append(text)
        self.on_text(text)
