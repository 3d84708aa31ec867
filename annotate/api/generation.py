"""Generation API (staff): ask a project's generators for responses as a job (202 and the job's
URL), follow its progress, cancel it, resume it. The same services as
`manage.py generate_responses` and the generators page."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api.fields import BoundedIntegerField
from annotate.models import GenerationJob
from annotate.selectors.generation import generation_job_get
from annotate.selectors.projects import project_get_for_staff
from annotate.services.generation import (
    MAX_SAMPLES,
    generation_job_cancel,
    generation_job_create,
    generation_job_resume,
    prompts_from_values,
)


class GenerationJobOutputSerializer(serializers.Serializer):
    """Where a generation job stands."""

    id = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    status = serializers.ChoiceField(GenerationJob.Status.choices)
    generators = serializers.SerializerMethodField()
    samples = serializers.IntegerField()
    done = serializers.IntegerField(help_text="Samples in, of `total`.")
    total = serializers.IntegerField()
    progress = serializers.SerializerMethodField(help_text="0 to 1.")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="Failed requests (retried, or the job's end).")
    pairs_created = serializers.IntegerField()
    cancel_requested = serializers.BooleanField()
    error = serializers.CharField(help_text="Why the job failed: the endpoint's own error.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_url(self, job: GenerationJob) -> str:
        path = reverse("api-generation-job", kwargs={"slug": job.project.slug, "job_id": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_generators(self, job: GenerationJob) -> list[str]:
        return list(job.generators.order_by("name").values_list("name", flat=True))

    def get_progress(self, job: GenerationJob) -> float:
        return round(job.done / job.total, 4) if job.total else 0.0


def _job_answer(request: Request, job: GenerationJob, status: int = 200) -> Response:
    data = GenerationJobOutputSerializer(job, context={"request": request}).data
    headers = {"Location": data["url"]} if status == 202 else None
    return Response(data, status=status, headers=headers)


class GenerationJobInputSerializer(serializers.Serializer):
    """What a generation job asks for."""

    generators = serializers.ListField(
        child=serializers.CharField(min_length=1, max_length=100), min_length=1, max_length=50
    )
    samples = BoundedIntegerField(min_value=1, max_value=MAX_SAMPLES, default=1)
    prompts = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        max_length=100_000,
        help_text="Each text or [{role, content}, ...]; or set from_project.",
    )
    from_project = serializers.BooleanField(default=False)


class GenerationJobCreateApi(APIView):
    """POST /api/projects/<slug>/generation/jobs/ (staff)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Generate responses from a project's generators (staff)",
        description="Queues a job on the `generation` queue; 202 with the job (its URL also "
        "in Location) to poll. Each (prompt, generator, sample index) already generated is "
        "not asked again.",
        request=GenerationJobInputSerializer,
        responses={
            202: GenerationJobOutputSerializer,
            400: OpenApiResponse(description="Unknown generators, bad prompts, bad samples."),
            503: OpenApiResponse(description="The task queue (Redis) cannot be reached."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        data = GenerationJobInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        prompts = values.get("prompts")
        job = generation_job_create(
            project=project,
            generators=values["generators"],
            samples=values["samples"],
            prompts=None if prompts is None else prompts_from_values(prompts),
            from_project=values["from_project"],
            user=request.user,
        )
        return _job_answer(request, job, status=202)


class GenerationJobApi(APIView):
    """GET /api/projects/<slug>/generation/jobs/<id>/ (staff): status and progress."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="A generation job's status and progress (staff)",
        responses={200: GenerationJobOutputSerializer, 403: None, 404: None},
    )
    def get(self, request: Request, slug: str, job_id: int) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        return _job_answer(request, generation_job_get(project=project, job_id=job_id))


class GenerationJobCancelApi(APIView):
    """POST /api/projects/<slug>/generation/jobs/<id>/cancel/ (staff)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Cancel a generation job (staff); what is in stays",
        request=None,
        responses={200: GenerationJobOutputSerializer, 409: OpenApiResponse(description="Ended.")},
    )
    def post(self, request: Request, slug: str, job_id: int) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        job = generation_job_cancel(job=generation_job_get(project=project, job_id=job_id))
        return _job_answer(request, job)


class GenerationJobResumeApi(APIView):
    """POST /api/projects/<slug>/generation/jobs/<id>/resume/ (staff)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Resume a cancelled or failed generation job (staff): only what is missing",
        request=None,
        responses={
            202: GenerationJobOutputSerializer,
            409: OpenApiResponse(description="Not cancelled or failed."),
        },
    )
    def post(self, request: Request, slug: str, job_id: int) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        job = generation_job_resume(job=generation_job_get(project=project, job_id=job_id))
        return _job_answer(request, job, status=202)
