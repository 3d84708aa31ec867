"""Labeling reads: a labeler's projects with their own progress, and the permission-checked
fetches of a Project or Pair for a labeler (404 when it is not theirs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404

from annotate.models import (
    Comparison,
    Lease,
    Membership,
    Pair,
    Project,
    Ranking,
    Rating,
    ResponseSet,
    TaskKind,
)


@dataclass(frozen=True)
class ProjectProgress:
    """A project as one labeler sees it: the project's counters plus their own count of
    judgments (of pairs, or of sets where the task ranks or rates)."""

    project: Project
    mine: int
    # What is judged: the project's Pairs, or its ResponseSets (then `units` counts them).
    unit: str = "pair"
    units: int | None = None

    @property
    def wanted(self) -> int:
        """Human judgments the project asks for in all."""
        units = self.project.pair_count if self.units is None else self.units
        return units * self.project.redundancy


def projects_for_labeler(*, labeler: AbstractBaseUser) -> list[ProjectProgress]:
    """The labeler's projects, with their own judgment count in each.

    Two queries for pairwise projects whatever the sizes (the projects, whose totals are
    counters, and one aggregate over the labeler's own comparisons through the (labeler,
    project) index); projects that rank or rate add two (their sets, the labeler's sets judged).
    """
    projects = list(Project.objects.filter(memberships__user=labeler).order_by("name"))
    counts = dict(
        Comparison.objects.filter(labeler=labeler, is_repeat=False)
        .values("project")
        .annotate(n=Count("pk"))
        .values_list("project", "n")
    )
    set_projects = [p.pk for p in projects if p.task_kind != TaskKind.PAIRWISE]
    sets, judged = _set_counts(labeler, set_projects) if set_projects else ({}, {})
    return [
        ProjectProgress(project=p, mine=counts.get(p.pk, 0))
        if p.task_kind == TaskKind.PAIRWISE
        else ProjectProgress(
            project=p, mine=judged.get(p.pk, 0), unit="set", units=sets.get(p.pk, 0)
        )
        for p in projects
    ]


def _set_counts(
    labeler: AbstractBaseUser, project_ids: list[int]
) -> tuple[dict[int, int], dict[int, int]]:
    """Per project: its ResponseSets, and those the labeler judged (a ranking, ratings, or
    both of one set count once; swapped repeats not)."""
    sets = dict(
        ResponseSet.objects.filter(project_id__in=project_ids)
        .values("project")
        .annotate(n=Count("pk"))
        .values_list("project", "n")
    )
    mine = {"labeler": labeler, "is_repeat": False, "project_id__in": project_ids}
    judged = (
        Ranking.objects.filter(**mine)
        .values_list("project_id", "response_set_id")
        .union(Rating.objects.filter(**mine).values_list("project_id", "response_set_id"))
    )
    counts: dict[int, int] = {}
    for project_id, _ in judged:
        counts[project_id] = counts.get(project_id, 0) + 1
    return sets, counts


def project_get_for_labeler(*, labeler: AbstractBaseUser, slug: str) -> Project:
    """The project with this slug if the labeler is on it; else 404 (its existence is not
    revealed to outsiders)."""
    # Read on every lease: written as SQL, it skips composing the join on each request.
    found = list(
        Project.objects.raw(
            f"""SELECT * FROM {Project._meta.db_table} t
                WHERE t.slug = %s AND EXISTS (SELECT 1 FROM {Membership._meta.db_table} m
                                              WHERE m.project_id = t.id AND m.user_id = %s)""",
            [slug, labeler.pk],
        )
    )
    if not found:
        raise Http404("No such project.")
    return found[0]


def pair_get_for_labeler(*, labeler: AbstractBaseUser, pair_id: int) -> Pair:
    """A Pair the labeler was served (leased) or has judged, on a project they are on; else 404.

    Labelers judge what they were served, never a Pair they picked by id.
    """
    leased = Lease.objects.filter(pair=OuterRef("pk"), labeler=labeler)
    judged = Comparison.objects.filter(pair=OuterRef("pk"), labeler=labeler)
    try:
        return (
            Pair.objects.select_related("project", "response_a", "response_b")
            .filter(pk=pair_id, project__memberships__user=labeler)
            .filter(Exists(leased) | Exists(judged))
            .get()
        )
    except Pair.DoesNotExist:
        raise Http404("No such pair.") from None


def comparisons_of_labeler(
    *, labeler: AbstractBaseUser, project: Project | None = None
) -> QuerySet[Comparison]:
    """The labeler's own comparisons, newest first (never anyone else's)."""
    qs = Comparison.objects.filter(labeler=labeler).select_related("project")
    if project is not None:
        qs = qs.filter(Q(project=project))
    return qs.order_by("-id")


def projects_for_staff() -> list[Project]:
    """Every project, for the staff links on the home page (counters only, no scans)."""
    return list(Project.objects.order_by("name"))


def project_scale(project: Project) -> dict[str, Any]:
    """The choices a labeler of this project is offered, as the page and the API show them."""
    return {
        "allow_tie": project.allow_tie,
        "allow_both_bad": project.allow_both_bad,
        "ask_strength": project.ask_strength,
        "strength_labels": project.strength_scale,
        "reason_tags": list(project.reason_tags),
    }
