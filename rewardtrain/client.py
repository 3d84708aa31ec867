"""A client of the reward server (`manage.py serve_rewards`) for TRL's GRPOTrainer:

    from rewardtrain.client import reward_function
    trainer = GRPOTrainer(model=..., reward_funcs=[reward_function("http://rm:8100", token)], ...)

and of the app's rounds, for the script that trains the policy between them:

    job = start_round(APP, token, "my-project", generators=["policy"], from_project=True)
    wait_for_labels(APP, token, "my-project", job["id"], labels=500)
    fetch_round_export(APP, token, "my-project", job["id"], "round.jsonl")

Standard library only, so that an RL box needs nothing of prefloop's stack but this file.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

# Items per request: the server's default --max-items.
MAX_ITEMS = 1024


class RewardServerError(RuntimeError):
    """The server answered with an error (its message included) or could not be reached."""


class RoundError(RuntimeError):
    """The app refused a round request (its message included), could not be reached, or the
    round did not get its labels in time."""


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


def _app_call(
    url: str, token: str | None, path: str, *, body: dict | None = None, timeout: float = 60.0
) -> urllib.request.Request:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    return urllib.request.Request(
        url.rstrip("/") + path, data=data, headers=headers, method="POST" if data else "GET"
    )


def _app_open(request: urllib.request.Request, timeout: float) -> Any:
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("detail", "")
        except ValueError:
            message = exc.reason
        raise RoundError(f"{request.full_url} answered {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RoundError(f"cannot reach {request.full_url}: {exc}") from exc


def _app_json(url: str, token: str | None, path: str, body: dict | None = None) -> Any:
    with _app_open(_app_call(url, token, path, body=body), timeout=60.0) as answer:
        return json.loads(answer.read())


def start_round(
    url: str,
    token: str | None,
    project: str,
    *,
    generators: list[str],
    prompts: list[Any] | None = None,
    from_project: bool = False,
    samples: int = 1,
) -> dict[str, Any]:
    """Start a round: a generation job from the project's `generators` (the policy's endpoints)
    on `prompts` (texts or message lists) or on the project's own prompts. Returns the job as
    the API answers it (its `id` is the round's)."""
    body: dict[str, Any] = {"generators": generators, "samples": samples}
    if prompts is not None:
        body["prompts"] = prompts
    body["from_project"] = from_project
    return _app_json(url, token, f"/api/projects/{project}/generation/jobs/", body)


def round_status(url: str, token: str | None, project: str, round_id: int) -> dict[str, Any]:
    """The round's figures: status, samples, pairs, labeled, mean_reward, agreement."""
    return _app_json(url, token, f"/api/projects/{project}/rounds/{round_id}/")


def wait_for_labels(
    url: str,
    token: str | None,
    project: str,
    round_id: int,
    *,
    labels: int,
    timeout: float = 7 * 24 * 3600.0,
    poll_seconds: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Wait until `labels` of the round's pairs have a labeler's judgment (or all of them,
    when the round made fewer), polling every `poll_seconds`; the round's figures then. A
    round whose generation failed, or a wait past `timeout`, raises RoundError."""
    deadline = clock() + timeout
    while True:
        figures = round_status(url, token, project, round_id)
        if figures["status"] == "failed":
            raise RoundError(f"round {round_id} failed: its generation job failed")
        finished = figures["status"] in ("succeeded", "cancelled")
        if finished and figures["labeled"] >= min(labels, figures["pairs"]):
            return figures
        if clock() >= deadline:
            raise RoundError(
                f"round {round_id}: {figures['labeled']} of {labels} labels after {timeout:.0f} s"
            )
        pause(poll_seconds)


def fetch_round_export(
    url: str, token: str | None, project: str, round_id: int, path: str, *, format: str = "trl"
) -> int:
    """Write the round's labeled pairs (the project's aggregation and splits) to `path` as
    JSON Lines of `format` (trl, trl-conversational, hh, openai); how many rows."""
    request = _app_call(
        url, token, f"/api/projects/{project}/rounds/{round_id}/export/?format={format}"
    )
    rows = 0
    with _app_open(request, timeout=300.0) as answer, open(path, "wb") as out:
        for line in answer:
            out.write(line)
            rows += 1
    return rows
