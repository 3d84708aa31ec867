"""Model versions: activation (promotion and rollback), re-evaluation on the current test
split, and a per-process cache of loaded scorers."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from django.db import transaction

from annotate.models import Project
from annotate.splits import snapshot
from rewardtrain.core.jsonsafe import json_safe
from rewardtrain.models import Evaluation, ModelVersion
from rewardtrain.selectors import runs as selectors

# Rows scored per call while evaluating: between calls the run's heartbeat is written, so a
# long evaluation is not taken for a dead worker.
SCORE_CHUNK = 512
# Loaded scorers kept per process: the active model and the one it is compared with.
SCORER_CACHE_SIZE = 2

_scorers: OrderedDict[tuple[str, str], Any] = OrderedDict()
_scorers_lock = threading.Lock()


def scorer_for(*, version: ModelVersion, device: str = "") -> Any:
    """The version's RewardScorer, loaded once per process (per path and device)."""
    from rewardtrain.core.scoring import RewardScorer

    key = (version.path, device)
    with _scorers_lock:
        if key in _scorers:
            _scorers.move_to_end(key)
            return _scorers[key]
        scorer = RewardScorer.load(version.path, device=device)
        _scorers[key] = scorer
        while len(_scorers) > SCORER_CACHE_SIZE:
            _scorers.popitem(last=False)
        return scorer


def active_scorer(*, project: Project, device: str = "") -> Any | None:
    """The active version's scorer, or None when the project has no active model."""
    version = selectors.version_active(project=project)
    return scorer_for(version=version, device=device) if version else None


def activate_in_transaction(version: ModelVersion) -> None:
    """Deactivate the project's active version and activate this one; call inside
    transaction.atomic. The project row is locked so that two activations queue up."""
    Project.objects.select_for_update().filter(pk=version.project_id).first()
    ModelVersion.objects.filter(project_id=version.project_id, is_active=True).exclude(
        pk=version.pk
    ).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.is_active = True


@transaction.atomic
def version_activate(*, version: ModelVersion) -> ModelVersion:
    """Make this version the project's active model (a rollback when it is an older one)."""
    if not Path(version.path).is_dir():
        raise ValueError(f"version {version.version}'s folder is missing: {version.path}")
    activate_in_transaction(version)
    return version


def _score(scorer: Any, rows: Sequence[dict[str, Any]], heartbeat: Callable[[], None] | None):
    chosen: list[float] = []
    rejected: list[float] = []
    for start in range(0, len(rows), SCORE_CHUNK):
        c, r = scorer.score_pairs(rows[start : start + SCORE_CHUNK])
        chosen += [float(x) for x in c]
        rejected += [float(x) for x in r]
        if heartbeat is not None:
            heartbeat()
    return chosen, rejected


def evaluation_rows_score(
    rows: Sequence[dict[str, Any]],
    scorer: Any,
    baseline_scorer: Any | None = None,
    *,
    heartbeat: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Metrics of a scorer on rows; with a baseline scorer, the baseline is scored on the same
    rows too (its figures under "baseline", the flip rate between the two beside)."""
    from rewardtrain.core.evaluation import evaluate

    chosen, rejected = _score(scorer, rows, heartbeat)
    baseline = _score(baseline_scorer, rows, heartbeat) if baseline_scorer is not None else None
    return evaluate(list(rows), chosen, rejected, baseline=baseline)


# The figures kept per kind of held-out row (pairs, rankings' implied pairs) beside the
# combined ones.
KIND_FIGURES = ("n", "n_decided", "accuracy", "log_loss", "brier")


def held_out_score(
    data: Any,
    scorer: Any,
    baseline_scorer: Any | None = None,
    *,
    tie_loss: str = "soft",
    heartbeat: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Metrics of a scorer on a TrainingData's test split, every kind of row.

    The scalar reward's pairwise figures (evaluation_rows_score's, what promotion compares)
    are over the held-out pairs and the pairs implied by the held-out rankings together
    (ties as `tie_loss` makes them, as training did); with rankings, "by_kind" gives pairs'
    and rankings' own. Held-out ratings give "aspects": per aspect RMSE and Spearman's rho
    (aspects.evaluate_ratings), when the model has an aspect head; "test_counts" says how
    many rows of each kind were held out."""
    from rewardtrain.core.evaluation import evaluate
    from rewardtrain.core.rankings import ranking_pair_rows

    implied = [pair for row in data.test_rankings for pair in ranking_pair_rows(row, tie_loss)]
    pairs = list(data.test)
    rows = pairs + implied
    chosen, rejected = _score(scorer, rows, heartbeat)
    baseline = _score(baseline_scorer, rows, heartbeat) if baseline_scorer is not None else None
    metrics = evaluate(rows, chosen, rejected, baseline=baseline)
    if implied:
        n = len(pairs)
        metrics["by_kind"] = {
            kind: _kind_figures(evaluate(part, c, r, n_bootstrap=0))
            for kind, part, c, r in (
                ("pairs", pairs, chosen[:n], rejected[:n]),
                ("rankings", implied, chosen[n:], rejected[n:]),
            )
        }
    if data.test_ratings and getattr(scorer, "aspects", None):
        metrics["aspects"] = ratings_score(data.test_ratings, scorer, heartbeat=heartbeat)
        if getattr(baseline_scorer, "aspects", None):
            metrics["baseline_aspects"] = ratings_score(
                data.test_ratings, baseline_scorer, heartbeat=heartbeat
            )
    metrics["test_counts"] = {
        "pairs": len(pairs),
        "rankings": len(data.test_rankings),
        "ranking_pairs": len(implied),
        "rated_responses": len(data.test_ratings),
    }
    return json_safe(metrics)


def _kind_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    return {key: metrics.get(key) for key in KIND_FIGURES}


def ratings_score(
    rows: Sequence[dict[str, Any]], scorer: Any, *, heartbeat: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Per aspect of the scorer's head, over the rating rows rated on it: RMSE on the aspect's
    scale and Spearman's rho (rewardtrain.core.aspects.evaluate_ratings)."""
    from rewardtrain.core.aspects import evaluate_ratings

    outputs: list[list[float]] = []
    for start in range(0, len(rows), SCORE_CHUNK):
        chunk = rows[start : start + SCORE_CHUNK]
        scored = scorer.score_aspects([r["prompt"] for r in chunk], [r["response"] for r in chunk])
        outputs += [[a.normalise(s["aspects"][a.name]) for a in scorer.aspects] for s in scored]
        if heartbeat is not None:
            heartbeat()
    return evaluate_ratings(list(rows), outputs, scorer.aspects)


def held_out_snapshot(data: Any) -> dict[str, Any]:
    """The snapshot of a TrainingData's test split: its pairs' (annotate.splits.snapshot), the
    pairs left out as both bad, and the held-out rankings and ratings when there are any."""
    snap = {**snapshot(data.test), "both_bad": data.stats.both_bad}
    if data.has_sets:
        snap["rankings"] = len(data.test_rankings)
        snap["rated_responses"] = len(data.test_ratings)
    return json_safe(snap)


def held_out_any(data: Any) -> bool:
    return bool(data.test or data.test_rankings or data.test_ratings)


def version_evaluate(
    *, version: ModelVersion, kind: str = Evaluation.Kind.PERIODIC, device: str = ""
) -> Evaluation:
    """Score a version on the project's CURRENT test split (pairs, rankings, ratings) and
    store the figures."""
    data = selectors.training_data(project=version.project)
    if not held_out_any(data):
        raise ValueError(f"{version.project.slug} has no pairs in its test split yet")
    tie_loss = (version.run.config.get("tie_loss") if version.run else None) or "soft"
    metrics = held_out_score(data, scorer_for(version=version, device=device), tie_loss=tie_loss)
    return Evaluation.objects.create(
        model_version=version, kind=kind, snapshot=held_out_snapshot(data), metrics=metrics
    )
