"""Template filters of the quality pages: rates as percentages, p-values, intervals."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def pct(value: Any, digits: int = 0) -> str:
    """0.1234 -> "12%"; an undefined rate shows as an en dash."""
    if value is None or value == "":
        return "–"
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def pvalue(value: Any) -> str:
    if value is None:
        return "–"
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


@register.filter
def num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{float(value):.{int(digits)}f}"


@register.filter
def interval(value: Any, digits: int = 3) -> str:
    """[low, high] -> "[0.512, 0.634]"; none -> an en dash."""
    if not value:
        return "–"
    low, high = value
    return f"[{low:.{int(digits)}f}, {high:.{int(digits)}f}]"


@register.filter
def age(seconds: Any) -> str:
    """How old, in words: 42 -> "42 s", 200 -> "3 min", 7300 -> "2.0 h", 200000 -> "2.3 days"."""
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
