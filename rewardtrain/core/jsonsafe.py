"""Values made fit for a JSON column: the one place that decides what a run, an evaluation
or the training page stores and sends (PostgreSQL's jsonb refuses NaN and infinities)."""

from __future__ import annotations

import math
from typing import Any


def json_safe(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays become Python ones, NaN and infinities
    become None, paths and other objects their text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def finite_number(value: Any) -> float | None:
    """A number read back for display, as a float; None for NaN, infinities, booleans,
    text and anything else."""
    value = json_safe(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
