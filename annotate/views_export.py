"""The staff export page: a form whose download is the export API. Model versions are
downloaded from the project's training page (rewardtrain)."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotate.exporters import FORMAT_NAMES, SHAPES, pairs_from
from annotate.models import Project, TaskKind
from annotate.selectors.exports import export_jobs_recent
from annotate.selectors.pairs import pair_counts
from annotate.selectors.projects import project_get_for_staff
from annotate.selectors.rankings import project_aspects, project_has_sets
from annotate.services.exports import SOURCES
from annotate.services.exports_sets import SET_FORMATS
from annotate.splits import SPLITS


@login_required
def project_export(request: HttpRequest, slug: str) -> HttpResponse:
    """The form; a project that ranks or rates (or holds imported sets) is also offered its
    rankings and ratings, in their four shapes or as TRL pairs expanded from them."""
    project = project_get_for_staff(user=request.user, slug=slug)
    has_sets = project_has_sets(project=project)
    return render(
        request,
        "annotate/export.html",
        {
            "project": project,
            "format_groups": _format_groups(project, has_sets),
            "pairs_from": pairs_from.CHOICES if has_sets else (),
            "aspects": project_aspects(project) if has_sets else [],
            "shapes": SHAPES,
            "sources": SOURCES,
            "splits": SPLITS,
            "counts": pair_counts(project=project),
            "jobs": export_jobs_recent(project=project),
            "sync_max": settings.EXPORT_SYNC_MAX_COMPARISONS,
            "retention_hours": settings.EXPORT_RETENTION_HOURS,
        },
    )


def _format_groups(project: Project, has_sets: bool) -> list[tuple[str, tuple[str, ...]]]:
    """(label, format names) of the format menu: the rankings and ratings first (the default)
    where the task ranks or rates, after the pairs where only imported sets are held."""
    pairs = ("Pairs", FORMAT_NAMES)
    if not has_sets:
        return [pairs]
    sets = ("Rankings and ratings", tuple(SET_FORMATS))
    return [pairs, sets] if project.task_kind == TaskKind.PAIRWISE else [sets, pairs]
