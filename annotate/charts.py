"""The app's charts, server-side SVG: the quality dashboard's bars, rates and intervals, and the
training page's accuracy and log-loss over evaluations and its live run's loss curve. They
render offline with no script.

Every piece of text that goes into a chart (labels, model names, titles) is escaped here, one
way (html.escape); the result is marked as markup through `__html__`, which Django templates
honour.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

WIDTH = 640
ROW = 22  # height of one horizontal bar row
LABEL = 150  # width of the label column of horizontal charts
COLOR = "#2f6fed"
MUTED = "#667085"
BAD = "#c4320a"


class Svg(str):
    """An SVG document built from escaped text: safe to insert into a page as markup."""

    def __html__(self) -> str:
        return str(self)


def _text(
    x: float, y: float, text: str, *, anchor: str = "start", size: int = 12, fill=MUTED
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}">{escape(str(text))}</text>'
    )


def _svg(
    width: float,
    height: float,
    title: str,
    body: list[str],
    css_class: str = "",
    *,
    element_id: str = "",
) -> Svg:
    klass = f' class="{escape(css_class)}"' if css_class else ""
    ident = f' id="{escape(element_id)}"' if element_id else ""
    return Svg(
        f'<svg xmlns="http://www.w3.org/2000/svg"{ident}{klass} role="img" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str) -> Svg:
    """Vertical bars over time (throughput); labels are thinned to stay readable."""
    height, top, bottom, left = 180, 20, 30, 40
    inner_w, inner_h = WIDTH - left - 10, height - top - bottom
    peak = max(values, default=0) or 1
    body = [_text(left, 14, title, size=13, fill="#1d2330")]
    body.append(_text(left - 4, top + 4, f"{peak:g}", anchor="end"))
    body.append(_text(left - 4, top + inner_h, "0", anchor="end"))
    body.append(
        f'<line x1="{left}" y1="{top + inner_h}" x2="{left + inner_w}" '
        f'y2="{top + inner_h}" stroke="{MUTED}"/>'
    )
    n = max(len(values), 1)
    step = inner_w / n
    every = max(1, n // 8)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = inner_h * value / peak
        x = left + i * step
        body.append(
            f'<rect x="{x + 1:.1f}" y="{top + inner_h - h:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="{COLOR}"><title>{escape(str(label))}: {value:g}</title></rect>'
        )
        if i % every == 0:
            body.append(_text(x + step / 2, height - 10, label, anchor="middle", size=10))
    return _svg(WIDTH, height, title, body)


def rate_chart(
    rows: Sequence[tuple[str, float | None, bool]],
    *,
    title: str,
    reference: float | None = None,
    reference_label: str = "",
) -> Svg:
    """Horizontal bars of rates in [0, 1], one per (label, rate, flagged) row, with an optional
    reference line (50% for the left rate, the pool's rate for the longer rate)."""
    top = 28
    height = top + ROW * max(len(rows), 1) + 24
    inner = WIDTH - LABEL - 60
    body = [_text(0, 14, title, size=13, fill="#1d2330")]
    for i, (label, rate, flagged) in enumerate(rows):
        y = top + i * ROW
        body.append(_text(LABEL - 6, y + 14, label, anchor="end"))
        if rate is None:
            body.append(_text(LABEL + 4, y + 14, "no data"))
            continue
        body.append(
            f'<rect x="{LABEL}" y="{y + 3}" width="{inner * rate:.1f}" height="{ROW - 6}" '
            f'fill="{BAD if flagged else COLOR}"/>'
        )
        body.append(_text(LABEL + inner * rate + 4, y + 14, f"{rate * 100:.0f}%"))
    axis_y = top + ROW * max(len(rows), 1)
    for tick in (0, 0.5, 1):
        body.append(_text(LABEL + inner * tick, axis_y + 14, f"{tick * 100:.0f}%", anchor="middle"))
    if reference is not None:
        x = LABEL + inner * reference
        body.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="{MUTED}" '
            f'stroke-dasharray="4 3"/>'
        )
        body.append(_text(x + 4, top - 6, reference_label or f"{reference * 100:.0f}%"))
    return _svg(WIDTH, height, title, body)


def interval_chart(
    rows: Sequence[tuple[str, float, float | None, float | None]], *, title: str
) -> Svg:
    """A point with its interval per (label, value, low, high) row: the leaderboard's ratings."""
    top = 28
    height = top + ROW * max(len(rows), 1) + 24
    inner = WIDTH - LABEL - 60
    points = [v for _, value, low, high in rows for v in (value, low, high) if v is not None]
    lo, hi = (min(points), max(points)) if points else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.05
    lo, hi = lo - pad, hi + pad

    def x(v: float) -> float:
        return LABEL + inner * (v - lo) / (hi - lo)

    body = [_text(0, 14, title, size=13, fill="#1d2330")]
    for i, (label, value, low, high) in enumerate(rows):
        y = top + i * ROW + ROW / 2
        body.append(_text(LABEL - 6, y + 4, label, anchor="end"))
        if low is not None and high is not None:
            body.append(
                f'<line x1="{x(low):.1f}" y1="{y:.1f}" x2="{x(high):.1f}" y2="{y:.1f}" '
                f'stroke="{MUTED}" stroke-width="2"/>'
            )
        body.append(f'<circle cx="{x(value):.1f}" cy="{y:.1f}" r="4" fill="{COLOR}"/>')
        body.append(_text(WIDTH - 4, y + 4, f"{value:.0f}", anchor="end"))
    axis_y = top + ROW * max(len(rows), 1)
    for v in (lo + pad, (lo + hi) / 2, hi - pad):
        body.append(_text(x(v), axis_y + 14, f"{v:.0f}", anchor="middle"))
    return _svg(WIDTH, height, title, body)


# The training page's chart: accuracy on the left axis (0 to 1), log-loss on the right.
METRICS_HEIGHT = 240
METRICS_LEFT, METRICS_RIGHT, METRICS_TOP, METRICS_BOTTOM = 48, 56, 16, 44
ACCURACY_COLOR, LOSS_COLOR = "#2563eb", "#d97706"
METRICS_SERIES = (("accuracy", ACCURACY_COLOR, "accuracy"), ("log_loss", LOSS_COLOR, "log-loss"))


def metrics_chart(points: Sequence[Mapping[str, Any]]) -> Svg:
    """Accuracy (left axis, 0 to 1) and log-loss (right axis, 0 to its maximum) of each
    evaluation in time order, from points {label, kind, kind_label, accuracy, log_loss};
    filled markers at training, hollow ones at re-evaluation. Empty without points."""
    if not points:
        return Svg("")
    n = len(points)
    span_x = WIDTH - METRICS_LEFT - METRICS_RIGHT
    span_y = METRICS_HEIGHT - METRICS_TOP - METRICS_BOTTOM
    losses = [p["log_loss"] for p in points if p["log_loss"] is not None]
    tops = {"accuracy": 1.0, "log_loss": max(losses or [1.0]) * 1.1}

    def x(i: int) -> float:
        return METRICS_LEFT + (span_x / 2 if n == 1 else span_x * i / (n - 1))

    def y(value: float, top: float) -> float:
        return METRICS_TOP + span_y * (1 - value / top) if top else METRICS_HEIGHT - METRICS_BOTTOM

    body = _metrics_grid(y, tops["log_loss"]) + _metrics_labels(points, x)
    for key, color, name in METRICS_SERIES:
        coords = [
            (x(i), y(p[key], tops[key]), p) for i, p in enumerate(points) if p[key] is not None
        ]
        body += _metrics_series(coords, key, color, name)
    legend_y = METRICS_HEIGHT - 6
    body.append(_text(METRICS_LEFT, legend_y, "● accuracy", size=11, fill=ACCURACY_COLOR))
    body.append(_text(METRICS_LEFT + 90, legend_y, "● log-loss", size=11, fill=LOSS_COLOR))
    body.append(
        _text(METRICS_LEFT + 180, legend_y, "filled: at training · hollow: re-evaluation", size=11)
    )
    return _svg(
        WIDTH, METRICS_HEIGHT, "Accuracy and log-loss of each evaluation", body, "metrics-chart"
    )


def _metrics_grid(y: Callable[[float, float], float], loss_top: float) -> list[str]:
    """Five horizontal rules, each labelled with its accuracy (left) and log-loss (right)."""
    body = []
    for f in (0, 0.25, 0.5, 0.75, 1):
        at = y(f, 1)
        body.append(
            f'<line x1="{METRICS_LEFT}" x2="{WIDTH - METRICS_RIGHT}" y1="{at:.1f}" '
            f'y2="{at:.1f}" stroke="#e5e7eb"/>'
        )
        body.append(
            _text(METRICS_LEFT - 6, at + 4, f"{f:.2f}", anchor="end", size=11, fill=ACCURACY_COLOR)
        )
        body.append(
            _text(
                WIDTH - METRICS_RIGHT + 6, at + 4, f"{f * loss_top:.2f}", size=11, fill=LOSS_COLOR
            )
        )
    return body


def _metrics_labels(points: Sequence[Mapping[str, Any]], x: Callable[[int], float]) -> list[str]:
    """Version labels under the points: every one when few, else about ten and the last."""
    n = len(points)
    every = max(1, round(n / 10))
    at_y = METRICS_HEIGHT - METRICS_BOTTOM + 16
    return [
        _text(x(i), at_y, p["label"], anchor="middle", size=11, fill="#1d2330")
        for i, p in enumerate(points)
        if i % every == 0 or i == n - 1
    ]


def _metrics_series(
    coords: Sequence[tuple[float, float, Mapping[str, Any]]], key: str, color: str, name: str
) -> list[str]:
    """One series' line and its markers, filled at training and hollow at re-evaluation."""
    line = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy, _ in coords)
    body = [f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{line}"/>']
    for cx, cy, p in coords:
        fill = color if p["kind"] == "training" else "white"
        tip = f"{p['label']} {str(p['kind_label']).lower()}: {name} {p[key]:.3f}"
        body.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" stroke="{color}" fill="{fill}" '
            f'data-series="{key}"><title>{escape(tip)}</title></circle>'
        )
    return body


# A run's loss by step, on the training page while it trains. Drawn here rather than in the
# page's script so that every chart of the app has one engine, one escaping and one set of
# tests; the page's script swaps in a fresh copy of this fragment as the run moves.
LOSS_HEIGHT = 160
LOSS_LEFT, LOSS_RIGHT, LOSS_TOP, LOSS_BOTTOM = 48, 8, 8, 20
AXIS = "#d0d5dd"


def loss_chart(curve: Sequence[Sequence[float]]) -> Svg:
    """The loss curve of a run from its [[step, loss], ...] points, the loss axis from
    min(0, lowest) to the highest; the chart's frame alone, with no point yet."""
    body: list[str] = []
    if curve:
        steps, losses = [p[0] for p in curve], [p[1] for p in curve]
        x0, x1, y0, y1 = min(steps), max(steps), min(0, *losses), max(losses)
        span_x = WIDTH - LOSS_LEFT - LOSS_RIGHT
        span_y = LOSS_HEIGHT - LOSS_TOP - LOSS_BOTTOM

        def x(step: float) -> float:
            return LOSS_LEFT + (0.5 if x1 == x0 else (step - x0) / (x1 - x0)) * span_x

        def y(loss: float) -> float:
            return LOSS_TOP + (0.5 if y1 == y0 else 1 - (loss - y0) / (y1 - y0)) * span_y

        bottom = LOSS_HEIGHT - LOSS_BOTTOM
        body = [
            f'<line x1="{LOSS_LEFT}" x2="{WIDTH - LOSS_RIGHT}" y1="{bottom}" y2="{bottom}" '
            f'stroke="{AXIS}"/>',
            f'<line x1="{LOSS_LEFT}" x2="{LOSS_LEFT}" y1="{LOSS_TOP}" y2="{bottom}" '
            f'stroke="{AXIS}"/>',
            _text(LOSS_LEFT - 4, LOSS_TOP + 8, f"{y1:.3f}", anchor="end", size=10),
            _text(LOSS_LEFT - 4, bottom, f"{y0:.3f}", anchor="end", size=10),
            _text(WIDTH - LOSS_RIGHT, LOSS_HEIGHT - 4, f"step {x1}", anchor="end", size=10),
            f'<polyline fill="none" stroke="{COLOR}" stroke-width="1.5" points="'
            + " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in curve)
            + '"/>',
        ]
    return _svg(WIDTH, LOSS_HEIGHT, "Training loss by step", body, element_id="loss-curve")


# The training page's rounds: how the policy improves in the reward model's eyes (mean reward,
# right axis) and how often labelers agree with that model (left axis, 0 to 1), round by round.
ROUNDS_HEIGHT = 220
REWARD_COLOR = "#059669"


def rounds_chart(rounds: Sequence[Mapping[str, Any]]) -> Svg:
    """Mean reward and agreement per round from {id, mean_reward, agreement} in round order;
    empty when no round has either figure."""
    if not any(r["mean_reward"] is not None or r["agreement"] is not None for r in rounds):
        return Svg("")
    n = len(rounds)
    span_x = WIDTH - METRICS_LEFT - METRICS_RIGHT
    span_y = ROUNDS_HEIGHT - METRICS_TOP - METRICS_BOTTOM
    low, high = _reward_axis([r["mean_reward"] for r in rounds if r["mean_reward"] is not None])

    def x(i: int) -> float:
        return METRICS_LEFT + (span_x / 2 if n == 1 else span_x * i / (n - 1))

    def y(share: float) -> float:
        return METRICS_TOP + span_y * (1 - share)

    body = _rounds_grid(y, low, high)
    body += [
        _text(x(i), ROUNDS_HEIGHT - METRICS_BOTTOM + 16, f"#{r['id']}", anchor="middle", size=11)
        for i, r in enumerate(rounds)
    ]
    body += _rounds_series(rounds, "agreement", ACCURACY_COLOR, x, y)
    body += _rounds_series(
        rounds, "mean_reward", REWARD_COLOR, x, lambda v: y((v - low) / (high - low))
    )
    legend_y = ROUNDS_HEIGHT - 6
    body.append(
        _text(METRICS_LEFT, legend_y, "● agreement with labelers", size=11, fill=ACCURACY_COLOR)
    )
    body.append(_text(METRICS_LEFT + 190, legend_y, "● mean reward", size=11, fill=REWARD_COLOR))
    return _svg(WIDTH, ROUNDS_HEIGHT, "Mean reward and agreement per round", body, "rounds-chart")


def _reward_axis(rewards: Sequence[float]) -> tuple[float, float]:
    """The right axis' range: the rewards' span, or one unit around a single value."""
    low, high = (min(rewards), max(rewards)) if rewards else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    return low, high


def _rounds_grid(y: Callable[[float], float], low: float, high: float) -> list[str]:
    """Three rules, each labelled with its agreement (left) and mean reward (right)."""
    body = []
    for f in (0, 0.5, 1):
        body.append(
            f'<line x1="{METRICS_LEFT}" x2="{WIDTH - METRICS_RIGHT}" y1="{y(f):.1f}" '
            f'y2="{y(f):.1f}" stroke="#e5e7eb"/>'
        )
        body.append(
            _text(
                METRICS_LEFT - 6, y(f) + 4, f"{f:.1f}", anchor="end", size=11, fill=ACCURACY_COLOR
            )
        )
        body.append(
            _text(
                WIDTH - METRICS_RIGHT + 6,
                y(f) + 4,
                f"{low + f * (high - low):.2f}",
                size=11,
                fill=REWARD_COLOR,
            )
        )
    return body


def _rounds_series(
    rounds: Sequence[Mapping[str, Any]],
    key: str,
    color: str,
    x: Callable[[int], float],
    to_y: Callable[[float], float],
) -> list[str]:
    """One figure's line across the rounds that have it, and a marker with a tooltip each."""
    coords = [(x(i), to_y(r[key]), r) for i, r in enumerate(rounds) if r[key] is not None]
    line = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy, _ in coords)
    body = [f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{line}"/>']
    for cx, cy, r in coords:
        tip = f"round {r['id']}: {key.replace('_', ' ')} {r[key]:.3f}"
        body.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{color}" data-series="{key}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    return body
