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
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx

# Statuses worth another try: rate limited, or the server's own trouble (a restart, overload).
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
# An error text is cut here in messages: some servers answer an HTML page.
ERROR_TEXT_MAX = 500


class EndpointError(Exception):
    """A request the endpoint did not answer with a usable reply. The message names the
    generator and says why; `retryable` is whether another try could succeed."""

    def __init__(self, generator: str, reason: str, *, retryable: bool = False) -> None:
        super().__init__(f"generator {generator!r}: {reason}")
        self.generator = generator
        self.reason = reason
        self.retryable = retryable


class Cancelled(Exception):
    """The caller's stop event was set while this request waited to retry."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask. `api_key_env` names an environment variable (never the key)."""

    name: str  # the generator's name, for error messages
    base_url: str
    model: str
    api_key_env: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    system_prompt: str = ""


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


def request_body(endpoint: Endpoint, messages: list[dict[str, Any]], *, seed: int | None) -> dict:
    """The chat completion request: the system prompt first (when the messages have none),
    and only the sampling settings that are set (servers differ in what they accept)."""
    if endpoint.system_prompt and not (messages and messages[0].get("role") == "system"):
        messages = [{"role": "system", "content": endpoint.system_prompt}, *messages]
    body: dict[str, Any] = {"model": endpoint.model, "messages": messages, "stream": False}
    body.update(sampling_settings(endpoint, seed=seed))
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
    try:
        for attempt in range(policy.max_retries + 1):
            try:
                completion = _attempt(endpoint, body, client, policy)
            except EndpointError as exc:
                if not exc.retryable or attempt == policy.max_retries:
                    raise
                if stop is not None and stop.wait(policy.delay(attempt, rng)):
                    raise Cancelled() from exc
                if stop is None:
                    time.sleep(policy.delay(attempt, rng))
                continue
            completion.attempts = attempt + 1
            completion.sampling = sampling_settings(endpoint, seed=seed)
            return completion
        raise AssertionError("unreachable")
    finally:
        if own:
            client.close()


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
        raise EndpointError(
            endpoint.name,
            f"{url} answered {answer.status_code}: {_error_text(answer)}",
            retryable=answer.status_code in RETRY_STATUSES,
        )
    return _parse(endpoint, answer, latency_ms)


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
        raise EndpointError(endpoint.name, "an empty reply")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return Completion(
        text=text,
        model=str(data.get("model") or endpoint.model),
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        latency_ms=latency_ms,
        finish_reason=str(choice.get("finish_reason") or ""),
    )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None
