"""The API edge that generation jobs and judging jobs share (staff): a job's answer (202 with its
URL also in Location once queued), its URL and progress fields, and the views that read, cancel
and resume one. Each kind's module (api/generation.py, api/judges.py) names its serializer, its
services and its schema."""

from __future__ import annotations

from collections.abc import Callable

from django.urls import reverse
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.selectors.projects import project_get_for_staff
from annotate.services.jobs import Job


class JobOutputSerializer(serializers.Serializer):
    """The methods of the `url` and `progress` fields a kind's output declares (each kind lists
    its own fields, in its own order); `url_name` names the job's URL."""

    url_name: str

    def get_url(self, job: Job) -> str:
        path = reverse(self.url_name, kwargs={"slug": job.project.slug, "job_id": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_progress(self, job: Job) -> float:
        return round(job.done / job.total, 4) if job.total else 0.0


class JobApi(APIView):
    """A job of a project, fetched by the kind's `job_get` (404 when not the project's) and
    answered with its `output` serializer. The methods carry no docstring: the schema's
    description of each view is its own class's docstring."""

    permission_classes = [IsAdminUser]
    output: type[JobOutputSerializer]
    job_get: Callable[..., Job]

    def answer(self, request: Request, job: Job, status: int = 200) -> Response:
        data = self.output(job, context={"request": request}).data
        headers = {"Location": data["url"]} if status == 202 else None
        return Response(data, status=status, headers=headers)

    def job(self, request: Request, slug: str, job_id: int) -> Job:
        project = project_get_for_staff(user=request.user, slug=slug)
        return self.job_get(project=project, job_id=job_id)


class JobStatusApi(JobApi):
    def get(self, request: Request, slug: str, job_id: int) -> Response:
        return self.answer(request, self.job(request, slug, job_id))


class JobCancelApi(JobApi):
    job_cancel: Callable[..., Job]

    def post(self, request: Request, slug: str, job_id: int) -> Response:
        return self.answer(request, self.job_cancel(job=self.job(request, slug, job_id)))


class JobResumeApi(JobApi):
    job_resume: Callable[..., Job]

    def post(self, request: Request, slug: str, job_id: int) -> Response:
        job = self.job_resume(job=self.job(request, slug, job_id))
        return self.answer(request, job, status=202)
