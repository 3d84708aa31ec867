"""Judges API (staff): list and add a project's AI judges; ask one to judge pairs as a job (202
and the job's URL), follow its progress, cancel it, resume it. The same services as
`manage.py add_judge`, `manage.py judge_pairs` and the judges page."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api.fields import BoundedIntegerField
from annotate.api.jobs import JobApi, JobCancelApi, JobOutputSerializer, JobResumeApi, JobStatusApi
from annotate.integers import INT16_MAX, INT32_MAX
from annotate.models import Judge, JudgingJob
from annotate.selectors.judges import judges_of, judging_job_get
from annotate.selectors.projects import project_get_for_staff
from annotate.services.judges import (
    judge_add,
    judging_job_cancel,
    judging_job_create,
    judging_job_resume,
)


class JudgeOutputSerializer(serializers.Serializer):
    """A judge: its endpoint, sampling settings, rubric and labeler account."""

    name = serializers.CharField()
    model = serializers.CharField()
    base_url = serializers.CharField()
    api_key_env = serializers.CharField(help_text="The variable that holds the key (never it).")
    temperature = serializers.FloatField(allow_null=True)
    top_p = serializers.FloatField(allow_null=True)
    max_tokens = serializers.IntegerField(allow_null=True)
    seed = serializers.IntegerField(allow_null=True)
    concurrency = serializers.IntegerField()
    rubric = serializers.CharField(help_text="Blank: built from the project's instructions.")
    username = serializers.CharField(source="user.username", help_text="Its labeler account.")
    user_id = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class JudgeInputSerializer(serializers.Serializer):
    """A judge to add."""

    name = serializers.SlugField(max_length=100)
    base_url = serializers.CharField(max_length=500, help_text="Up to /v1.")
    model = serializers.CharField(max_length=200)
    api_key_env = serializers.CharField(max_length=100, allow_blank=True, default="")
    rubric = serializers.CharField(
        allow_blank=True,
        default="",
        trim_whitespace=False,
        max_length=100_000,
        help_text="With {prompt}, {response_1} and {response_2}; blank: the default.",
    )
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    max_tokens = BoundedIntegerField(
        required=False, allow_null=True, min_value=1, max_value=INT32_MAX
    )
    seed = BoundedIntegerField(required=False, allow_null=True)
    concurrency = BoundedIntegerField(min_value=1, max_value=INT16_MAX, default=4)


class JudgeListApi(APIView):
    """GET and POST /api/projects/<slug>/judges/ (staff)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="A project's AI judges (staff)",
        responses={200: JudgeOutputSerializer(many=True)},
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        return Response(JudgeOutputSerializer(judges_of(project=project), many=True).data)

    @extend_schema(
        summary="Add an AI judge to a project (staff)",
        description="The judge gets its own labeler account (a member that cannot sign in), "
        "listed as an AI judge wherever labelers are.",
        request=JudgeInputSerializer,
        responses={
            201: JudgeOutputSerializer,
            400: OpenApiResponse(
                description="A name taken, a bad URL, a rubric without its placeholders."
            ),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        data = JudgeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        judge: Judge = judge_add(project=project, name=values.pop("name"), **values)
        return Response(JudgeOutputSerializer(judge).data, status=201)


class JudgingJobOutputSerializer(JobOutputSerializer):
    """Where a judging job stands."""

    url_name = "api-judging-job"

    id = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    status = serializers.ChoiceField(JudgingJob.Status.choices)
    judge = serializers.CharField(source="judge.name")
    limit = serializers.IntegerField(allow_null=True)
    open_only = serializers.BooleanField()
    done = serializers.IntegerField(help_text="Pairs read in both orders, of `total`.")
    total = serializers.IntegerField()
    progress = serializers.SerializerMethodField(help_text="0 to 1.")
    comparisons_created = serializers.IntegerField()
    unparsable = serializers.IntegerField(
        help_text="Readings without a verdict after the reminder (no comparison from them)."
    )
    errors = serializers.IntegerField(help_text="Failed requests (retried, or the job's end).")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cancel_requested = serializers.BooleanField()
    error = serializers.CharField(help_text="Why the job failed: the endpoint's own error.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class JudgingJobInputSerializer(serializers.Serializer):
    """What a judging job asks for."""

    judge = serializers.CharField(min_length=1, max_length=100)
    limit = BoundedIntegerField(
        required=False, allow_null=True, min_value=1, max_value=INT32_MAX, help_text="At most."
    )
    open_only = serializers.BooleanField(default=False, help_text="Only pairs open to people.")


class JudgingJobCreateApi(JobApi):
    """POST /api/projects/<slug>/judging/jobs/ (staff)."""

    output = JudgingJobOutputSerializer

    @extend_schema(
        summary="Have an AI judge read a project's pairs (staff)",
        description="Queues a job on the `generation` queue; 202 with the job (its URL also in "
        "Location) to poll. Each pair is read in both orders; a reading already stored is not "
        "asked again, and pairs the judge has judged are skipped.",
        request=JudgingJobInputSerializer,
        responses={
            202: JudgingJobOutputSerializer,
            400: OpenApiResponse(description="An unknown judge, a bad limit."),
            503: OpenApiResponse(description="The task queue (Redis) cannot be reached."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        data = JudgingJobInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = judging_job_create(project=project, user=request.user, **data.validated_data)
        return self.answer(request, job, status=202)


@extend_schema_view(
    get=extend_schema(
        summary="A judging job's status and progress (staff)",
        responses={200: JudgingJobOutputSerializer, 403: None, 404: None},
    )
)
class JudgingJobApi(JobStatusApi):
    """GET /api/projects/<slug>/judging/jobs/<id>/ (staff): status and progress."""

    output = JudgingJobOutputSerializer
    job_get = staticmethod(judging_job_get)


@extend_schema_view(
    post=extend_schema(
        summary="Cancel a judging job (staff); what is read stays",
        request=None,
        responses={200: JudgingJobOutputSerializer, 409: OpenApiResponse(description="Ended.")},
    )
)
class JudgingJobCancelApi(JobCancelApi):
    """POST /api/projects/<slug>/judging/jobs/<id>/cancel/ (staff)."""

    output = JudgingJobOutputSerializer
    job_get = staticmethod(judging_job_get)
    job_cancel = staticmethod(judging_job_cancel)


@extend_schema_view(
    post=extend_schema(
        summary="Resume a cancelled or failed judging job (staff): only what is unread",
        request=None,
        responses={
            202: JudgingJobOutputSerializer,
            409: OpenApiResponse(description="Not cancelled or failed."),
        },
    )
)
class JudgingJobResumeApi(JobResumeApi):
    """POST /api/projects/<slug>/judging/jobs/<id>/resume/ (staff)."""

    output = JudgingJobOutputSerializer
    job_get = staticmethod(judging_job_get)
    job_resume = staticmethod(judging_job_resume)
