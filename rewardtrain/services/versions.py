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


def version_evaluate(
    *, version: ModelVersion, kind: str = Evaluation.Kind.PERIODIC, device: str = ""
) -> Evaluation:
    """Score a version on the project's CURRENT test split and store the figures."""
    data = selectors.training_data(project=version.project)
    if not data.test:
        raise ValueError(f"{version.project.slug} has no pairs in its test split yet")
    metrics = evaluation_rows_score(data.test, scorer_for(version=version, device=device))
    return Evaluation.objects.create(
        model_version=version,
        kind=kind,
        snapshot=json_safe({**snapshot(data.test), "both_bad": data.stats.both_bad}),
        metrics=json_safe(metrics),
    )
