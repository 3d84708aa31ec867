"""Reads of a project's generators and generation jobs, each 404 when not the project's."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from annotate.models import GenerationJob, Generator, Project


def generator_get(*, project: Project, name: str) -> Generator:
    generator = Generator.objects.filter(project=project, name=name).first()
    if generator is None:
        raise Http404("No such generator.")
    return generator


def generators_of(*, project: Project) -> QuerySet[Generator]:
    return Generator.objects.filter(project=project).order_by("name")


def generation_job_get(*, project: Project, job_id: int) -> GenerationJob:
    job = GenerationJob.objects.filter(project=project, pk=job_id).select_related("project").first()
    if job is None:
        raise Http404("No such generation job.")
    return job


def generation_jobs_recent(*, project: Project, limit: int = 20) -> QuerySet[GenerationJob]:
    return GenerationJob.objects.filter(project=project).order_by("-created_at")[:limit]
