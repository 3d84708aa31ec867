"""The staff export page: a form whose download is the export API. Model versions are
downloaded from the project's training page (rewardtrain)."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotate.exporters import FORMAT_NAMES, SHAPES
from annotate.selectors.exports import export_jobs_recent
from annotate.selectors.pairs import pair_counts
from annotate.selectors.projects import project_get_for_staff
from annotate.services.exports import SOURCES
from annotate.splits import SPLITS


@login_required
def project_export(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_staff(user=request.user, slug=slug)
    return render(
        request,
        "annotate/export.html",
        {
            "project": project,
            "formats": FORMAT_NAMES,
            "shapes": SHAPES,
            "sources": SOURCES,
            "splits": SPLITS,
            "counts": pair_counts(project=project),
            "jobs": export_jobs_recent(project=project),
            "sync_max": settings.EXPORT_SYNC_MAX_COMPARISONS,
            "retention_hours": settings.EXPORT_RETENTION_HOURS,
        },
    )
