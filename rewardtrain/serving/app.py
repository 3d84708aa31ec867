"""The reward server's ASGI app: three routes, JSON in and out, every error a JSON answer.

    POST /v1/rewards  {"items": [{"prompt", "response"}]}  -> {"rewards", "model_version", "project"}
    POST /get_reward  OpenRLHF's {"query", "prompts"?, "labels"?} -> {"rewards", "scores"}
    GET  /health      -> model version, device, queue depth, items scored

Either POST may add `"aspects": true`: the answer then also holds "aspects", one
{aspect: prediction on its scale} per item, from a model trained with an aspect head (a 400
naming the problem from any other).

A plain ASGI callable rather than a web framework: three routes do not need one.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from rewardtrain.serving.auth import Denied
from rewardtrain.serving.batcher import BadItem, Batcher, LoadedModel, NoAspects, NoModel
from rewardtrain.serving.inputs import (
    InputError,
    openrlhf_items,
    parse_body,
    reward_items,
    wants_aspects,
)

log = logging.getLogger(__name__)

# Far above 1,024 items of a few thousand characters; a bigger body is refused unread.
MAX_BODY_BYTES = 64 * 1024 * 1024

Answer = tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]
ROUTES = {"/v1/rewards": "POST", "/get_reward": "POST", "/health": "GET"}


class RewardsApp:
    def __init__(
        self,
        *,
        batcher: Batcher,
        model: Callable[[], LoadedModel | None],
        project: str,
        device: str,
        auth: Callable[[str | None], Awaitable[Denied | None]] | None,
        max_items: int,
        model_error: Callable[[], str] = lambda: "",
    ) -> None:
        self.batcher = batcher
        self.model = model
        self.project = project
        self.device = device
        self.auth = auth
        self.max_items = max_items
        self.model_error = model_error

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        try:
            status, payload, headers = await self._answer(scope, receive)
        except Exception as exc:  # still a JSON answer, never an HTML error page
            log.exception("request failed")
            status, payload, headers = 503, {"error": f"scoring failed: {exc}"}, []
        body = json.dumps(payload, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: dict, receive: Callable) -> Answer:
        path, method = scope["path"], scope["method"]
        if path not in ROUTES:
            return _error(404, "path", f"no such endpoint {path}; see {', '.join(ROUTES)}")
        if method != ROUTES[path]:
            return (
                405,
                {"error": f"{path} takes {ROUTES[path]}", "field": "method"},
                [(b"allow", ROUTES[path].encode())],
            )
        if path == "/health":
            return 200, self.health(), []
        if self.auth is not None:
            denied = await self.auth(_header(scope, b"authorization"))
            if denied is not None:
                challenge = [(b"www-authenticate", b'Token realm="rewards"')]
                return denied.status, {"error": denied.message}, challenge
        body = await _read_body(scope, receive)
        if body is None:
            return _error(413, "body", f"larger than {MAX_BODY_BYTES} bytes")
        try:
            data = parse_body(body)
            if path == "/v1/rewards":
                prompts, responses = reward_items(data, max_items=self.max_items)
            else:
                prompts, responses = openrlhf_items(data, max_items=self.max_items)
            aspects = wants_aspects(data)
        except InputError as exc:
            return _error(400, exc.field, exc.message)
        if self.model() is None:
            return self._no_model()
        try:
            scored = await self.batcher.score(prompts, responses, aspects=aspects)
        except NoModel:
            return self._no_model()
        except NoAspects as exc:
            return _error(400, "aspects", str(exc))
        except BadItem as exc:
            field = f"items[{exc.index}].prompt" if path == "/v1/rewards" else f"query[{exc.index}]"
            return _error(400, field, str(exc))
        rewards = [r if math.isfinite(r) else None for r in scored.rewards]
        if path == "/v1/rewards":
            payload = {"rewards": rewards, "model_version": scored.version, "project": self.project}
        else:
            payload = {"rewards": rewards, "scores": rewards}
        if scored.aspects is not None:
            payload["aspects"] = [
                {name: v if math.isfinite(v) else None for name, v in item.items()}
                for item in scored.aspects
            ]
        return 200, payload, []

    def health(self) -> dict[str, Any]:
        current = self.model()
        return {
            "status": "ok" if current is not None else "no_model",
            "project": self.project,
            "model_version": current.version if current is not None else None,
            "device": self.device,
            "queue_depth": self.batcher.queue_depth,
            "items_scored": self.batcher.items_scored,
            "model_error": self.model_error(),
        }

    def _no_model(self) -> Answer:
        message = (
            f"project {self.project} has no active model: train one (train_reward_model) "
            "or activate a version"
        )
        return 503, {"error": message}, []


def _error(status: int, field: str, message: str) -> Answer:
    return status, {"error": f"{field}: {message}", "field": field}, []


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _read_body(scope: dict, receive: Callable) -> bytes | None:
    """The whole body, or None when it is over MAX_BODY_BYTES."""
    length = _header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
