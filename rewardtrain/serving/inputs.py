"""Request bodies of the reward server, checked: every problem is an InputError that names
the field (`items[3].prompt[1].content`), answered as a 400."""

from __future__ import annotations

import json
from typing import Any

from annotate import json_limits

# Deeper than any valid body (`items[i].prompt[j].content` is 4 levels below the top).
MAX_DEPTH = 16


class InputError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise InputError("body", f"nested deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError("body", f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError("body", f"must be a JSON object, got {_kind(data)}")
    for key, value in data.items():
        try:
            json_limits.check_depth(value, MAX_DEPTH - 1)  # the top object is one level
        except json_limits.TooDeep:
            raise InputError(key, f"nested deeper than {MAX_DEPTH} levels") from None
    return data


def reward_items(data: dict[str, Any], *, max_items: int) -> tuple[list[Any], list[str]]:
    """(prompts, responses) of a `/v1/rewards` body `{"items": [{"prompt", "response"}]}`;
    a prompt is a string or a list of {role, content} messages."""
    items = _list(data, "items", max_items)
    prompts, responses = [], []
    for i, item in enumerate(items):
        where = f"items[{i}]"
        if not isinstance(item, dict):
            raise InputError(
                where, f"must be an object with prompt and response, got {_kind(item)}"
            )
        for key in ("prompt", "response"):
            if key not in item:
                raise InputError(f"{where}.{key}", "required")
        prompts.append(_prompt(item["prompt"], f"{where}.prompt"))
        responses.append(_string(item["response"], f"{where}.response"))
    return prompts, responses


def wants_aspects(data: dict[str, Any]) -> bool:
    """The body's optional `"aspects": true`: answer each item's aspects beside its reward."""
    value = data.get("aspects", False)
    if not isinstance(value, bool):
        raise InputError("aspects", f"must be true or false, got {_kind(value)}")
    return value


def openrlhf_items(data: dict[str, Any], *, max_items: int) -> tuple[list[Any], list[str]]:
    """(prompts, responses) of OpenRLHF's `{"query": [str], "prompts"?: [str], "labels"?}`.

    A query that starts with its (non-empty) prompt is that prompt and the rest as the
    response, formatted as in training; any other query is scored as given (prompt None).
    Labels are accepted and not used: a reward model reads no reference answer.
    """
    queries = [_string(q, f"query[{i}]") for i, q in enumerate(_list(data, "query", max_items))]
    given = data.get("prompts")
    if given is None:
        return [None] * len(queries), queries
    if not isinstance(given, list):
        raise InputError("prompts", f"must be a list of strings, got {_kind(given)}")
    if len(given) != len(queries):
        raise InputError("prompts", f"{len(given)} prompts for {len(queries)} queries")
    prompts: list[Any] = []
    responses = []
    for i, (prompt, query) in enumerate(zip(given, queries, strict=True)):
        prompt = _string(prompt, f"prompts[{i}]")
        if prompt and query.startswith(prompt):
            prompts.append(prompt)
            responses.append(query[len(prompt) :])
        else:
            prompts.append(None)
            responses.append(query)
    return prompts, responses


def _list(data: dict[str, Any], key: str, max_items: int) -> list[Any]:
    if key not in data:
        raise InputError(key, "required")
    value = data[key]
    if not isinstance(value, list):
        raise InputError(key, f"must be a list, got {_kind(value)}")
    if len(value) > max_items:
        raise InputError(key, f"{len(value)} items, at most {max_items} per request")
    return value


def _prompt(value: Any, where: str) -> Any:
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        raise InputError(where, "must be a string or a non-empty list of {role, content} messages")
    for j, message in enumerate(value):
        if not isinstance(message, dict):
            raise InputError(
                f"{where}[{j}]", f"must be a {{role, content}} object, got {_kind(message)}"
            )
        for key in ("role", "content"):
            if key not in message:
                raise InputError(f"{where}[{j}].{key}", "required")
            _string(message[key], f"{where}[{j}].{key}")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InputError(where, f"must be a string, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
