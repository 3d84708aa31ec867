"""The steps that the staff pages of a project's model endpoints share (the generators page,
views_generation.py; the judges page, views_judges.py): adding an endpoint from the page's form,
and cancelling or resuming one of its jobs. Each page passes its own form, service and render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from annotate.errors import ApplicationError
from annotate.models import Project
from annotate.services.jobs import Job

# A page's render: (request, project, *, status=200, **context) -> the page.
Page = Callable[..., HttpResponse]


class EndpointForm(forms.ModelForm):
    """A generator's or a judge's settings, as the page's form; each kind's Meta names them."""

    def validate_unique(self) -> None:
        """The service says when the name is taken (in the same words as the CLI)."""


def endpoint_add(
    request: HttpRequest,
    project: Project,
    *,
    form: EndpointForm,
    add: Callable[..., Any],
    page: Page,
    back_to: str,
) -> HttpResponse:
    """The endpoint the form describes, made by `add(project=, name=, **settings)`, then back to
    the page; a bad form or a refusal shows the page, 400, saying why."""
    if not form.is_valid():
        return page(request, project, form=form, status=400)
    values = {k: v for k, v in form.cleaned_data.items() if k != "name"}
    try:
        add(project=project, name=form.cleaned_data["name"], **values)
    except ApplicationError as exc:
        return page(request, project, form=form, problem=str(exc), status=400)
    return redirect(back_to, slug=project.slug)


def job_action(
    request: HttpRequest,
    project: Project,
    *,
    job: Job,
    action: str,
    cancel: Callable[..., Job],
    resume: Callable[..., Job],
    page: Page,
    back_to: str,
) -> HttpResponse:
    """`action` ("cancel" or "resume", else 404) done to the job, then back to the page; a
    refusal (an ended job cancelled, a running one resumed) shows the page with its status."""
    if action not in ("cancel", "resume"):
        raise Http404("No such action.")
    try:
        (cancel if action == "cancel" else resume)(job=job)
    except ApplicationError as exc:
        return page(request, project, job_problem=str(exc), status=exc.status)
    return redirect(back_to, slug=project.slug)
