"""A project's A/B votes read into arrays and handed to its aggregation model: the posterior
P(A better) of each pair and the reliability of each labeler.

Who a vote belongs to: its labeler; an imported vote without one belongs to its import batch
(one pseudo-labeler per file), so a file of careless judgments is weighed like a careless
person. Adjudications are staff rulings, not votes: they settle their pair (see
annotate.selectors.dataset) and stay out of the fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from annotate.models import Choice, Comparison, Project
from annotate.quality.aggregation import MAJORITY, MODEL_NAMES, fit_votes

CHUNK = 20000


@dataclass
class PairPosteriors:
    """The fitted aggregation of one project (under one dataset filter)."""

    method: str
    pair_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    p_a: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # Labeler id -> reliability (imports' pseudo-labelers are left out).
    reliability: dict[int, float] = field(default_factory=dict)
    votes: int = 0
    seconds: float = 0.0

    @property
    def model_name(self) -> str:
        return MODEL_NAMES[self.method]

    def get(self, pair_id: int) -> float | None:
        """The posterior P(A better) of a pair, or None when no A/B vote of it was fitted."""
        i = int(np.searchsorted(self.pair_ids, pair_id))
        if i < len(self.pair_ids) and self.pair_ids[i] == pair_id:
            return float(self.p_a[i])
        return None


def _vote_arrays(qs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pair id, worker key, says A) of the A/B votes, read in chunks into arrays: a worker
    key is the labeler id, or minus (import batch id + 1) for an anonymous import."""
    rows = qs.filter(choice__in=[Choice.A, Choice.B]).exclude(source=Comparison.Source.ADJUDICATION)
    parts: list[np.ndarray] = []
    buffer: list[tuple[int, int, bool]] = []
    for pair_id, labeler_id, batch_id, choice in rows.values_list(
        "pair_id", "labeler_id", "import_batch_id", "choice"
    ).iterator(chunk_size=CHUNK):
        worker = labeler_id if labeler_id is not None else -((batch_id or 0) + 1)
        buffer.append((pair_id, worker, choice == Choice.A))
        if len(buffer) >= CHUNK:
            parts.append(np.array(buffer, dtype=np.int64))
            buffer = []
    if buffer:
        parts.append(np.array(buffer, dtype=np.int64))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty.astype(bool)
    votes = np.concatenate(parts)
    return votes[:, 0], votes[:, 1], votes[:, 2].astype(bool)


def posteriors_fit(*, project: Project, comparisons, method: str | None = None) -> PairPosteriors:
    """Fit the project's aggregation (or `method`) to the A/B votes among `comparisons` (a
    queryset of the project's counted comparisons)."""
    method = method or project.aggregation
    pair_keys, worker_keys, says_a = _vote_arrays(comparisons)
    pair_ids, pair_index = np.unique(pair_keys, return_inverse=True)
    workers, worker_index = np.unique(worker_keys, return_inverse=True)
    fit = fit_votes(
        method,
        pair_index,
        worker_index,
        says_a,
        n_pairs=len(pair_ids),
        n_workers=len(workers),
    )
    reliability = {int(w): float(r) for w, r in zip(workers, fit.reliability, strict=True) if w > 0}
    return PairPosteriors(
        method=method,
        pair_ids=pair_ids,
        p_a=fit.p_a,
        reliability={w: r for w, r in reliability.items() if not np.isnan(r)},
        votes=len(says_a),
        seconds=fit.seconds,
    )


def uses_model(project: Project) -> bool:
    return project.aggregation != MAJORITY
