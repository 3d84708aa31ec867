"""Generation API (staff): ask a project's generators for responses as a job (202 and the job's
URL), follow its progress, cancel it, resume it. The same services as
`manage.py generate_responses` and the generators page."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.api.fields import BoundedIntegerField
from annotate.api.jobs import JobApi, JobCancelApi, JobOutputSerializer, JobResumeApi, JobStatusApi
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


class GenerationJobOutputSerializer(JobOutputSerializer):
    """Where a generation job stands."""

    url_name = "api-generation-job"

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

    def get_generators(self, job: GenerationJob) -> list[str]:
        return list(job.generators.order_by("name").values_list("name", flat=True))


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


class GenerationJobCreateApi(JobApi):
    """POST /api/projects/<slug>/generation/jobs/ (staff)."""

    output = GenerationJobOutputSerializer

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
        return self.answer(request, job, status=202)


@extend_schema_view(
    get=extend_schema(
        summary="A generation job's status and progress (staff)",
        responses={200: GenerationJobOutputSerializer, 403: None, 404: None},
    )
)
class GenerationJobApi(JobStatusApi):
    """GET /api/projects/<slug>/generation/jobs/<id>/ (staff): status and progress."""

    output = GenerationJobOutputSerializer
    job_get = staticmethod(generation_job_get)


@extend_schema_view(
    post=extend_schema(
        summary="Cancel a generation job (staff); what is in stays",
        request=None,
        responses={200: GenerationJobOutputSerializer, 409: OpenApiResponse(description="Ended.")},
    )
)
class GenerationJobCancelApi(JobCancelApi):
    """POST /api/projects/<slug>/generation/jobs/<id>/cancel/ (staff)."""

    output = GenerationJobOutputSerializer
    job_get = staticmethod(generation_job_get)
    job_cancel = staticmethod(generation_job_cancel)


@extend_schema_view(
    post=extend_schema(
        summary="Resume a cancelled or failed generation job (staff): only what is missing",
        request=None,
        responses={
            202: GenerationJobOutputSerializer,
            409: OpenApiResponse(description="Not cancelled or failed."),
        },
    )
)
class GenerationJobResumeApi(JobResumeApi):
    """POST /api/projects/<slug>/generation/jobs/<id>/resume/ (staff)."""

    output = GenerationJobOutputSerializer
    job_get = staticmethod(generation_job_get)
    job_resume = staticmethod(generation_job_resume)
