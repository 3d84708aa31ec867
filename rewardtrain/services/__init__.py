"""Writes of the reward model's records: runs (queue, execute, cancel), model versions
(activate, evaluate) and the pairs scored by the active model."""

from rewardtrain.services.pairs import PairsFileError, rescore_pairs, score_pairs_file
from rewardtrain.services.runs import (
    RunError,
    mark_stale_runs_failed,
    run_cancel,
    run_create,
    run_execute,
)
from rewardtrain.services.versions import (
    active_scorer,
    scorer_for,
    version_activate,
    version_evaluate,
)

__all__ = [
    "PairsFileError",
    "RunError",
    "active_scorer",
    "mark_stale_runs_failed",
    "rescore_pairs",
    "run_cancel",
    "run_create",
    "run_execute",
    "score_pairs_file",
    "scorer_for",
    "version_activate",
    "version_evaluate",
]
