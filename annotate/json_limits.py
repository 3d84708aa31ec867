"""JSON read from outside (API bodies, import lines, CSV cells) with a bound on nesting.

Python's decoder recurses once per level: a line of 5,000 `[` raised RecursionError, which
no caller expected (a 500, or an import that stopped). No real row nests more than a few
levels, so anything deeper than MAX_DEPTH is refused with a message that says so.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class TooDeep(ValueError):
    def __init__(self) -> None:
        super().__init__(f"JSON nested deeper than {MAX_DEPTH} levels")


def check_depth(value: Any) -> Any:
    """`value` unchanged, or TooDeep; walked without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise TooDeep
        stack.extend((child, depth + 1) for child in children)
    return value


def loads(text: str | bytes) -> Any:
    """json.loads, raising TooDeep (a ValueError) for nesting past MAX_DEPTH."""
    try:
        return check_depth(json.loads(text))
    except RecursionError:
        raise TooDeep from None
