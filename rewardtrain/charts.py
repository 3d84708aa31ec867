"""Server-rendered SVG of accuracy and log-loss across versions and evaluations: no script and
no chart library, so the page works offline and the figures are in the HTML itself."""

from __future__ import annotations

from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 56, 16, 44
ACCURACY_COLOR, LOSS_COLOR = "#2563eb", "#d97706"


def _x(i: int, n: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span / 2 if n == 1 else span * i / (n - 1))


def _y(value: float, top: float) -> float:
    """0 at the bottom axis, `top` at the top."""
    span = HEIGHT - TOP - BOTTOM
    return TOP + span * (1 - value / top) if top else HEIGHT - BOTTOM


def _f(value: float, digits: int = 1) -> str:
    """A number for SVG markup (format_html escapes its arguments, so they arrive as text)."""
    return f"{value:.{digits}f}"


def _series(points: list[dict[str, Any]], key: str, top: float, color: str, name: str):
    """The polyline and one marker per point (hollow for re-evaluations), with a tooltip."""
    n = len(points)
    coords = [(_x(i, n), _y(p[key], top), p) for i, p in enumerate(points) if p[key] is not None]
    line = format_html(
        '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>',
        color,
        " ".join(f"{_f(x)},{_f(y)}" for x, y, _ in coords),
    )
    markers = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="4" stroke="{}" fill="{}" data-series="{}">'
        "<title>{} {}: {} {}</title></circle>",
        (
            (
                _f(x),
                _f(y),
                color,
                "white" if p["kind"] != "training" else color,
                key,
                p["label"],
                p["kind_label"].lower(),
                name,
                _f(p[key], 3),
            )
            for x, y, p in coords
        ),
    )
    return line + markers


def metrics_chart_svg(points: list[dict[str, Any]]) -> SafeString:
    """Accuracy (left axis, 0 to 1) and log-loss (right axis, 0 to its maximum) of each
    evaluation in time order; filled markers at training, hollow ones at re-evaluation."""
    if not points:
        return mark_safe("")
    loss_top = max([p["log_loss"] for p in points if p["log_loss"] is not None] or [1.0]) * 1.1
    n = len(points)
    grid = format_html_join(
        "",
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#e5e7eb"/>'
        '<text x="{}" y="{}" text-anchor="end" fill="{}">{}</text>'
        '<text x="{}" y="{}" fill="{}">{}</text>',
        (
            (
                LEFT,
                WIDTH - RIGHT,
                _f(_y(f, 1)),
                _f(_y(f, 1)),
                LEFT - 6,
                _f(_y(f, 1) + 4),
                ACCURACY_COLOR,
                _f(f, 2),
                WIDTH - RIGHT + 6,
                _f(_y(f, 1) + 4),
                LOSS_COLOR,
                _f(f * loss_top, 2),
            )
            for f in (0, 0.25, 0.5, 0.75, 1)
        ),
    )
    # Label every point when few, else about ten of them.
    every = max(1, round(n / 10))
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (_f(_x(i, n)), HEIGHT - BOTTOM + 16, p["label"])
            for i, p in enumerate(points)
            if i % every == 0 or i == n - 1
        ),
    )
    legend = format_html(
        '<text x="{}" y="{}" fill="{}">● accuracy</text>'
        '<text x="{}" y="{}" fill="{}">● log-loss</text>'
        '<text x="{}" y="{}" fill="#6b7280">filled: at training · hollow: re-evaluation</text>',
        LEFT,
        HEIGHT - 6,
        ACCURACY_COLOR,
        LEFT + 90,
        HEIGHT - 6,
        LOSS_COLOR,
        LEFT + 180,
        HEIGHT - 6,
    )
    body = (
        grid
        + labels
        + _series(points, "accuracy", 1, ACCURACY_COLOR, "accuracy")
        + _series(points, "log_loss", loss_top, LOSS_COLOR, "log-loss")
        + legend
    )
    return format_html(
        '<svg class="metrics-chart" viewBox="0 0 {} {}" role="img" font-size="11" '
        'aria-label="Accuracy and log-loss of each evaluation">{}</svg>',
        WIDTH,
        HEIGHT,
        body,
    )
