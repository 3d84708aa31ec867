"""The staff generators page: add, edit and test ("Send a test prompt") a project's model
endpoints, start a generation job, and follow, cancel or resume the recent ones. The same
services as the commands and the API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotate.errors import ApplicationError
from annotate.generation.client import EndpointError
from annotate.models import Generator, Project
from annotate.selectors.generation import (
    generation_job_get,
    generation_jobs_recent,
    generator_get,
    generators_of,
)
from annotate.selectors.projects import project_get_for_staff
from annotate.services.generation import (
    MAX_SAMPLES,
    generation_job_cancel,
    generation_job_create,
    generation_job_resume,
    generator_create,
    generator_test,
    generator_update,
    prompts_read,
)
from annotate.views_endpoints import EndpointForm, endpoint_add, job_action

PAGE = "annotate/generators.html"
PAGE_URL = "project-generators"  # where each change made on the page goes back to


class GeneratorForm(EndpointForm):
    class Meta:
        model = Generator
        fields = [
            *("name", "base_url", "model", "api_key_env", "temperature", "top_p"),
            *("max_tokens", "seed", "system_prompt", "concurrency"),
        ]
        widgets = {"system_prompt": forms.Textarea(attrs={"rows": 2})}


class JobForm(forms.Form):
    generators = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    samples = forms.IntegerField(min_value=1, max_value=MAX_SAMPLES, initial=1)
    prompts = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='JSON Lines: {"prompt": "..."} or {"prompt": [{"role", "content"}, ...]}.',
    )
    from_project = forms.BooleanField(required=False, label="Every prompt of the project")

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = generators_of(project=project).values_list("name", flat=True)
        self.fields["generators"].choices = [(n, n) for n in names]


def _page(request, project, *, status=200, **context) -> HttpResponse:
    context.setdefault("form", GeneratorForm())
    context.setdefault("job_form", JobForm(project=project))
    context.update(
        project=project,
        generators=generators_of(project=project),
        jobs=generation_jobs_recent(project=project),
    )
    return render(request, PAGE, context, status=status)


@login_required
def generators(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_staff(user=request.user, slug=slug)
    if request.method != "POST":
        return _page(request, project)
    form = GeneratorForm(request.POST)
    return endpoint_add(
        request, project, form=form, add=generator_create, page=_page, back_to=PAGE_URL
    )


@login_required
def generator_edit(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    project = project_get_for_staff(user=request.user, slug=slug)
    generator = generator_get(project=project, name=name)
    context: dict[str, Any] = {"project": project, "generator": generator}
    form = GeneratorForm(request.POST or None, instance=generator)
    if request.method == "POST" and "test" in request.POST:
        form = GeneratorForm(instance=generator)
        try:
            context["reply"] = generator_test(generator=generator, text=request.POST["test"])
        except EndpointError as exc:
            context["problem"] = str(exc)
    elif request.method == "POST" and form.is_valid():
        try:
            generator_update(generator=generator, **form.cleaned_data)
            return redirect(PAGE_URL, slug=project.slug)
        except ApplicationError as exc:
            context["problem"] = str(exc)
    context["form"] = form
    status = 400 if request.method == "POST" and (context.get("problem") or form.errors) else 200
    return render(request, "annotate/generator_edit.html", context, status=status)


@login_required
@require_POST
def generation_start(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_staff(user=request.user, slug=slug)
    job_form = JobForm(request.POST, project=project)
    if not job_form.is_valid():
        return _page(request, project, job_form=job_form, status=400)
    data = job_form.cleaned_data
    try:
        generation_job_create(
            project=project,
            generators=data["generators"],
            samples=data["samples"],
            prompts=None if data["from_project"] else prompts_read(data["prompts"].splitlines()),
            from_project=data["from_project"],
            user=request.user,
        )
    except ApplicationError as exc:
        return _page(request, project, job_form=job_form, job_problem=str(exc), status=400)
    return redirect(PAGE_URL, slug=project.slug)


@login_required
@require_POST
def generation_job_action(
    request: HttpRequest, slug: str, job_id: int, action: str
) -> HttpResponse:
    project = project_get_for_staff(user=request.user, slug=slug)
    job = generation_job_get(project=project, job_id=job_id)
    return job_action(
        request,
        project,
        job=job,
        action=action,
        cancel=generation_job_cancel,
        resume=generation_job_resume,
        page=_page,
        back_to=PAGE_URL,
    )
