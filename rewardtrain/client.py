"""A client of the reward server (`manage.py serve_rewards`) for TRL's GRPOTrainer:

    from rewardtrain.client import reward_function
    trainer = GRPOTrainer(model=..., reward_funcs=[reward_function("http://rm:8100", token)], ...)

Standard library only, so that an RL box needs nothing of prefloop's stack but this file.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

# Items per request: the server's default --max-items.
MAX_ITEMS = 1024


class RewardServerError(RuntimeError):
    """The server answered with an error (its message included) or could not be reached."""


def reward_function(
    url: str, token: str | None = None, *, timeout: float = 180.0
) -> Callable[..., list[float]]:
    """A reward function with GRPOTrainer's signature, `f(prompts, completions, **kwargs)`.

    `url` is the server's base URL (or its /v1/rewards endpoint); `token` an API token of a
    user who may score. Prompts are strings or lists of {role, content} messages; completions
    strings or message lists (conversational data): the last message is the response, and any
    earlier ones in the completion (e.g. tool turns) are added to the prompt's conversation.
    Returns one reward per completion, computed exactly as training and `score_pairs` do.
    """
    endpoint = url.rstrip("/")
    if not endpoint.endswith("/v1/rewards"):
        endpoint += "/v1/rewards"
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"

    def prefloop_reward(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
        items = [_item(p, c) for p, c in zip(prompts, completions, strict=True)]
        rewards: list[float] = []
        for start in range(0, len(items), MAX_ITEMS):
            rewards += _post(endpoint, headers, items[start : start + MAX_ITEMS], timeout)
        return rewards

    return prefloop_reward


def _text(content: Any) -> str:
    # Multimodal messages carry a list of parts; the reward model reads their text.
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": _text(m.get("content", ""))} for m in messages]


def _item(prompt: Any, completion: Any) -> dict[str, Any]:
    if isinstance(completion, str):
        return {
            "prompt": prompt if isinstance(prompt, str) else _messages(prompt),
            "response": completion,
        }
    turns = _messages(completion)
    history = (
        [{"role": "user", "content": prompt}] if isinstance(prompt, str) else _messages(prompt)
    )
    return {"prompt": history + turns[:-1], "response": turns[-1]["content"] if turns else ""}


def _post(endpoint: str, headers: dict[str, str], items: list[dict], timeout: float) -> list[float]:
    body = json.dumps({"items": items}).encode()
    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            data = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", "")
        except ValueError:
            message = exc.reason
        raise RewardServerError(f"{endpoint} answered {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RewardServerError(f"cannot reach the reward server at {endpoint}: {exc}") from exc
    rewards = data.get("rewards")
    if not isinstance(rewards, list) or len(rewards) != len(items):
        raise RewardServerError(f"{endpoint} answered without {len(items)} rewards: {data}")
    return [float("nan") if r is None else float(r) for r in rewards]
