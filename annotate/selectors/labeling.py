"""Labeling reads: a labeler's projects with their own progress, and the permission-checked
fetches of a Project or Pair for a labeler (404 when it is not theirs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404

from annotate.models import Comparison, Lease, Membership, Pair, Project


@dataclass(frozen=True)
class ProjectProgress:
    """A project as one labeler sees it: the project's counters plus their own count."""

    project: Project
    mine: int

    @property
    def wanted(self) -> int:
        """Human comparisons the project asks for in all."""
        return self.project.pair_count * self.project.redundancy


def projects_for_labeler(*, labeler: AbstractBaseUser) -> list[ProjectProgress]:
    """The labeler's projects, with their own comparison count in each.

    Two queries whatever the sizes: the projects (their totals are counters), and one
    aggregate over the labeler's own comparisons through the (labeler, project) index.
    """
    projects = list(Project.objects.filter(memberships__user=labeler).order_by("name"))
    counts = dict(
        Comparison.objects.filter(labeler=labeler, is_repeat=False)
        .values("project")
        .annotate(n=Count("pk"))
        .values_list("project", "n")
    )
    return [ProjectProgress(project=p, mine=counts.get(p.pk, 0)) for p in projects]


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
