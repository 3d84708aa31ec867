"""JSON read from outside (API bodies, import lines, CSV cells, reward-server requests) with
a bound on nesting.

Python's decoder recurses once per level: a line of 5,000 `[` raised RecursionError, which
no caller expected (a 500, or an import that stopped). No real row nests more than a few
levels, so anything deeper than MAX_DEPTH is refused with a message that says so.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class TooDeep(ValueError):
    def __init__(self, max_depth: int = MAX_DEPTH) -> None:
        super().__init__(f"JSON nested deeper than {max_depth} levels")


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """`value` unchanged, or TooDeep when containers nest more than `max_depth` levels (the
    value itself is level 1); walked without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise TooDeep(max_depth)
        stack.extend((child, depth + 1) for child in children)
    return value


def loads(text: str | bytes) -> Any:
    """json.loads, raising TooDeep (a ValueError) for nesting past MAX_DEPTH."""
    try:
        return check_depth(json.loads(text))
    except RecursionError:
        raise TooDeep from None
