"""The staff judges page: add a project's AI judges, have one judge pairs ("Judge pairs"), and
follow, cancel or resume the recent judging jobs. The same services as the commands and the
API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotate.errors import ApplicationError
from annotate.models import Judge, Project
from annotate.selectors.judges import judges_of, judging_job_get, judging_jobs_recent
from annotate.selectors.projects import project_get_for_staff
from annotate.services.judges import (
    judge_add,
    judging_job_cancel,
    judging_job_create,
    judging_job_resume,
    project_default_rubric,
)
from annotate.views_endpoints import EndpointForm, endpoint_add, job_action

PAGE = "annotate/judges.html"
PAGE_URL = "project-judges"  # where each change made on the page goes back to


class JudgeForm(EndpointForm):
    class Meta:
        model = Judge
        fields = [
            *("name", "base_url", "model", "api_key_env", "temperature", "top_p"),
            *("max_tokens", "seed", "concurrency", "rubric"),
        ]
        widgets = {"rubric": forms.Textarea(attrs={"rows": 6})}


class JudgingForm(forms.Form):
    judge = forms.CharField(max_length=100, widget=forms.HiddenInput)
    limit = forms.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, help_text="Blank: every pair."
    )
    open_only = forms.BooleanField(required=False, label="Only pairs open to people")


def _page(request: HttpRequest, project: Project, *, status: int = 200, **context: Any):
    context.setdefault("form", JudgeForm())
    context.update(
        project=project,
        judges=judges_of(project=project),
        jobs=judging_jobs_recent(project=project),
        default_rubric=project_default_rubric(project),
    )
    return render(request, PAGE, context, status=status)


@login_required
def judges(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_staff(user=request.user, slug=slug)
    if request.method != "POST":
        return _page(request, project)
    form = JudgeForm(request.POST)
    return endpoint_add(request, project, form=form, add=judge_add, page=_page, back_to=PAGE_URL)


@login_required
@require_POST
def judging_start(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_staff(user=request.user, slug=slug)
    form = JudgingForm(request.POST)
    if not form.is_valid():
        problem = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        return _page(request, project, job_problem=problem, status=400)
    data = form.cleaned_data
    try:
        judging_job_create(
            project=project,
            judge=data["judge"],
            limit=data["limit"],
            open_only=data["open_only"],
            user=request.user,
        )
    except ApplicationError as exc:
        return _page(request, project, job_problem=str(exc), status=exc.status)
    return redirect(PAGE_URL, slug=project.slug)


@login_required
@require_POST
def judging_job_action(request: HttpRequest, slug: str, job_id: int, action: str) -> HttpResponse:
    project = project_get_for_staff(user=request.user, slug=slug)
    job = judging_job_get(project=project, job_id=job_id)
    return job_action(
        request,
        project,
        job=job,
        action=action,
        cancel=judging_job_cancel,
        resume=judging_job_resume,
        page=_page,
        back_to=PAGE_URL,
    )
