"""Rankings and ratings as TRL preference pairs (`trl` and `trl-conversational` with
`pairs_from`), one row per pair:

- `all`: every pair a ranking implies (each response over every one ranked below it; tied
  responses make no pair), one row per ranking and pair;
- `best-vs-rest`: a ranking's best group over each response below it;
- `rating-margin`: per set, each response's score (its ratings' mean over the raters, on one
  aspect, or the mean over the project's aspects when none is named); a response over another
  when its score is higher by at least the minimum margin, `margin` being the difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import prompt_text
from .sets import SetBundle

CHOICES = ("all", "best-vs-rest", "rating-margin")


def ranked_pairs(groups: list[list[int]], how: str) -> Iterator[tuple[int, int]]:
    """(better, worse) response ids a ranking implies, by `how` (all or best-vs-rest)."""
    tops = groups[:1] if how == "best-vs-rest" else groups
    for n, group in enumerate(tops):
        for better in group:
            for below in groups[n + 1 :]:
                for worse in below:
                    yield better, worse


def scores(bundle: SetBundle, aspect: str | None) -> dict[int, float]:
    """Each rated response's score: the mean over raters of each aspect, then over aspects."""
    values: dict[int, dict[str, list[int]]] = {}
    for judgment in bundle.judgments:
        for (response_id, name), value in judgment.ratings.items():
            if aspect is None or name == aspect:
                values.setdefault(response_id, {}).setdefault(name, []).append(value)
    out = {}
    for response_id, by_aspect in values.items():
        means = [sum(v) / len(v) for v in by_aspect.values()]
        out[response_id] = sum(means) / len(means)
    return out


def _record(
    bundle: SetBundle, better: int, worse: int, conversational: bool, extra: dict[str, Any]
) -> dict[str, Any]:
    if conversational:
        core: dict[str, Any] = {
            "prompt": [
                {"role": m.get("role", "user"), "content": m.get("content", "")}
                for m in bundle.prompt
            ],
            "chosen": [{"role": "assistant", "content": bundle.text(better)}],
            "rejected": [{"role": "assistant", "content": bundle.text(worse)}],
        }
    else:
        core = {
            "prompt": prompt_text(bundle.prompt),
            "chosen": bundle.text(better),
            "rejected": bundle.text(worse),
        }
    return {**core, **extra, "set_id": bundle.set_id, "split": bundle.split}


def records(
    bundle: SetBundle,
    *,
    how: str,
    conversational: bool = False,
    min_margin: float = 1.0,
    aspect: str | None = None,
) -> Iterator[dict[str, Any]]:
    if how == "rating-margin":
        score = scores(bundle, aspect)
        rated = sorted(score, key=lambda i: (-score[i], i))
        for n, better in enumerate(rated):
            for worse in rated[n + 1 :]:
                margin = score[better] - score[worse]
                if margin >= min_margin:
                    extra = {
                        "margin": round(margin, 6),
                        "score_chosen": round(score[better], 6),
                        "score_rejected": round(score[worse], 6),
                    }
                    yield _record(bundle, better, worse, conversational, extra)
        return
    for judgment in bundle.judgments:
        if not judgment.groups:
            continue
        extra = {
            "ranking_id": judgment.ranking_id,
            "labeler": judgment.rater,
            "source": judgment.source,
        }
        for better, worse in ranked_pairs(judgment.groups, how):
            yield _record(bundle, better, worse, conversational, extra)
