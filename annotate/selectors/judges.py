"""Reads of a project's judges, judging jobs and verdicts, each 404 when not the project's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import QuerySet
from django.http import Http404

from annotate.models import Judge, JudgeVerdict, JudgingJob, Project


def judges_of(*, project: Project) -> QuerySet[Judge]:
    return Judge.objects.filter(project=project).select_related("user").order_by("name")


def judge_get(*, project: Project, name: str) -> Judge:
    judge = judges_of(project=project).filter(name=name).first()
    if judge is None:
        raise Http404("No such judge.")
    return judge


def judging_job_get(*, project: Project, job_id: int) -> JudgingJob:
    job = (
        JudgingJob.objects.filter(project=project, pk=job_id)
        .select_related("project", "judge")
        .first()
    )
    if job is None:
        raise Http404("No such judging job.")
    return job


def judging_jobs_recent(*, project: Project, limit: int = 20) -> QuerySet[JudgingJob]:
    return (
        JudgingJob.objects.filter(project=project)
        .select_related("judge")
        .order_by("-created_at", "-id")[:limit]
    )


def verdicts_by_pair(*, pair_ids: Iterable[int]) -> dict[int, list[JudgeVerdict]]:
    """Every judge's readings of these pairs, by pair: judge by name, A/B before B/A."""
    found: dict[int, list[JudgeVerdict]] = defaultdict(list)
    for verdict in (
        JudgeVerdict.objects.filter(pair_id__in=list(pair_ids))
        .select_related("judge")
        .order_by("pair_id", "judge__name", "order")
    ):
        found[verdict.pair_id].append(verdict)
    return dict(found)
