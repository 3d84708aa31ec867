"""Where a project's pairs came from and why the closed ones are closed: the breakdown the
staff pages print beside their pair counts, so that a count that moved says why."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import BooleanField, Count, ExpressionWrapper, F, Q

from annotate.models import Comparison, Pair, Project


@dataclass(frozen=True)
class PairCounts:
    total: int
    # Created by the reward model's neighbour pairing (after a promotion); the rest came in
    # by import (or were made by hand in the admin).
    added_by_model: int
    # Served to labelers: fewer than `redundancy` judgments and not closed by staff.
    open: int
    # Closed because they hold all the judgments they need.
    full: int
    # Closed by staff on the review page: resolved (adjudicated) or marked ambiguous.
    resolved: int
    ambiguous: int
    # Closed on arrival: imported with their judgment (training data, never served).
    imported_judged: int

    @property
    def imported(self) -> int:
        return self.total - self.added_by_model

    @property
    def closed(self) -> int:
        return self.total - self.open

    @property
    def closed_reasons(self) -> list[str]:
        """Why the closed pairs are closed, e.g. ["240 with all their judgments", ...]."""
        reasons = [
            (self.full, "with all their judgments"),
            (self.imported_judged, "imported with a judgment"),
            (self.resolved, "resolved in review"),
            (self.ambiguous, "marked ambiguous"),
        ]
        return [f"{n} {why}" for n, why in reasons if n]


def pair_counts(*, project: Project) -> PairCounts:
    """One aggregate over the project's pairs (staff pages only, never the labeling path)."""
    # The project's few adjudicated pairs, read once through their partial index (a probe per
    # pair, three times over, took 1 s at 100,000 pairs).
    adjudicated = Comparison.objects.filter(
        project=project, source=Comparison.Source.ADJUDICATION
    ).values("pair_id")
    pairs = Pair.objects.filter(project=project).annotate(
        adjudicated=ExpressionWrapper(Q(pk__in=adjudicated), output_field=BooleanField())
    )
    by_staff = Q(adjudicated=True) | Q(ambiguous=True)
    full = Q(is_open=False, human_count__gte=F("project__redundancy")) & ~by_staff
    figures = pairs.aggregate(
        total=Count("pk"),
        added_by_model=Count("pk", filter=Q(added_by_model=True)),
        open=Count("pk", filter=Q(is_open=True)),
        full=Count("pk", filter=full),
        resolved=Count("pk", filter=Q(adjudicated=True)),
        ambiguous=Count("pk", filter=Q(ambiguous=True, adjudicated=False)),
    )
    closed = figures["total"] - figures["open"]
    imported_judged = closed - figures["full"] - figures["resolved"] - figures["ambiguous"]
    return PairCounts(**figures, imported_judged=max(imported_judged, 0))


def pairs_queue_head(*, project: Project, limit: int = 5) -> list[Pair]:
    """The open pairs the queue serves first under uncertainty selection: highest priority
    (after a promotion, the active model's uncertainty), then oldest; the `pair_queue` index
    order that leasing walks."""
    return list(
        Pair.objects.filter(project=project, is_open=True, human_count__lt=project.redundancy)
        .select_related("prompt", "response_a", "response_b")
        .order_by("-priority", "id")[:limit]
    )
