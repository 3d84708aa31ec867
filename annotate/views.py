"""Pages of the labeling app: the labeler's projects, the labeling page, the instructions."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotate.models import Project, TaskKind
from annotate.rendering import markdown_to_safe_html
from annotate.selectors.chat import projects_with_generators
from annotate.selectors.labeling import (
    project_get_for_labeler,
    project_scale,
    projects_for_labeler,
    projects_for_staff,
)
from annotate.selectors.rankings import project_aspects
from annotate.services.labeling import labeler_exclusion


@login_required
def home(request: HttpRequest) -> HttpResponse:
    progress = projects_for_labeler(labeler=request.user)
    managed = projects_for_staff() if request.user.is_staff else []
    chat_ids = projects_with_generators(project_ids=[p.project.pk for p in progress])
    return render(
        request,
        "annotate/home.html",
        {"projects": progress, "managed": managed, "chat_ids": chat_ids},
    )


@login_required
def label(request: HttpRequest, slug: str) -> HttpResponse:
    """The page shell; label.js leases and submits through the JSON API. A project that ranks
    or rates responses gets its own page at the same address (label_set.js)."""
    project = project_get_for_labeler(labeler=request.user, slug=slug)
    if project.task_kind != TaskKind.PAIRWISE:
        return _label_set(request, project)
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


def _label_set(request: HttpRequest, project: Project) -> HttpResponse:
    kind = project.task_kind
    task = {
        "kind": kind,
        "ask_ranking": kind in (TaskKind.RANKING, TaskKind.RANKING_RATING),
        "ask_ratings": kind in (TaskKind.RATING, TaskKind.RANKING_RATING),
        "ranking_size": project.ranking_size,
        "aspects": [a.as_dict() for a in project_aspects(project)],
    }
    return render(
        request,
        "annotate/label_set.html",
        {
            "project": project,
            "instructions_html": markdown_to_safe_html(project.instructions),
            "task": task,
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
