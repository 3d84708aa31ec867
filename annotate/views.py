"""Pages of the labeling app: the labeler's projects, the labeling page, the instructions."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotate.rendering import markdown_to_safe_html
from annotate.selectors.labeling import (
    project_get_for_labeler,
    project_scale,
    projects_for_labeler,
    projects_for_staff,
)
from annotate.services.labeling import labeler_exclusion


@login_required
def home(request: HttpRequest) -> HttpResponse:
    progress = projects_for_labeler(labeler=request.user)
    managed = projects_for_staff() if request.user.is_staff else []
    return render(request, "annotate/home.html", {"projects": progress, "managed": managed})


@login_required
def label(request: HttpRequest, slug: str) -> HttpResponse:
    """The page shell; label.js leases and submits through the JSON API."""
    project = project_get_for_labeler(labeler=request.user, slug=slug)
    return render(
        request,
        "annotate/label.html",
        {
            "project": project,
            "instructions_html": markdown_to_safe_html(project.instructions),
            "scale": project_scale(project),
            "excluded": labeler_exclusion(project=project, labeler=request.user),
        },
    )


@login_required
def instructions(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_labeler(labeler=request.user, slug=slug)
    return render(
        request,
        "annotate/instructions.html",
        {"project": project, "instructions_html": markdown_to_safe_html(project.instructions)},
    )
