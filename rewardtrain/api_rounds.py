"""Rounds API (staff): the rounds of a project's policy loop (one generation job each) with
their figures, and one round's labeled pairs as a dataset. A round starts as a generation job
(POST /api/projects/<slug>/generation/jobs/); rewardtrain.client wraps the three calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api.exports import ExportQueryNegotiation
from annotate.errors import ApplicationError
from annotate.models import GenerationJob, Project
from annotate.selectors.projects import project_get_for_staff
from rewardtrain.selectors.rounds import (
    ROUND_FORMATS,
    round_figures,
    round_records,
    round_rows,
)
from rewardtrain.selectors.runs import version_active


class RoundSerializer(serializers.Serializer):
    """One round: a generation job of the policy, its labeling, and the active reward model's
    view of it."""

    id = serializers.IntegerField(help_text="The generation job's id.")
    status = serializers.ChoiceField(GenerationJob.Status.choices)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    policy = serializers.ListField(child=serializers.CharField(), help_text="Model names.")
    samples = serializers.IntegerField()
    pairs = serializers.IntegerField(help_text="Pairs made from the round's samples.")
    labeled = serializers.IntegerField(help_text="Of those, pairs with a labeler's judgment.")
    mean_reward = serializers.FloatField(
        allow_null=True, help_text="The active reward model's mean reward of the samples."
    )
    agreement = serializers.FloatField(
        allow_null=True, help_text="Share of labeled pairs where labelers and the model agree."
    )
    agreement_pairs = serializers.IntegerField()


def _job(project: Project, job_id: int) -> GenerationJob:
    job = GenerationJob.objects.filter(project=project, pk=job_id).first()
    if job is None:
        raise Http404("No such round in this project.")
    return job


class RoundListApi(APIView):
    """GET /api/projects/<slug>/rounds/ (staff)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="A project's rounds, oldest first (staff)", responses=RoundSerializer(many=True)
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        return Response(RoundSerializer(round_rows(project=project), many=True).data)


class RoundDetailApi(APIView):
    """GET /api/projects/<slug>/rounds/<id>/ (staff)."""

    permission_classes = [IsAdminUser]

    @extend_schema(summary="One round's figures (staff)", responses=RoundSerializer)
    def get(self, request: Request, slug: str, job_id: int) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        job = _job(project, job_id)
        version = version_active(project=project)
        figures = round_figures(job=job, version_id=version.pk if version else None)
        return Response(RoundSerializer(figures).data)


class RoundFormatError(ApplicationError):
    status = HTTPStatus.BAD_REQUEST
    code = "bad_format"


class RoundExportApi(APIView):
    """GET /api/projects/<slug>/rounds/<id>/export/?format=trl (staff): JSON Lines."""

    permission_classes = [IsAdminUser]
    content_negotiation_class = ExportQueryNegotiation  # ?format= is the dataset's format

    @extend_schema(
        summary="One round's labeled pairs as a dataset (staff)",
        description="The project's dataset rows (its aggregation and splits) for the pairs this "
        "round made, as JSON Lines.",
        parameters=[OpenApiParameter("format", str, enum=list(ROUND_FORMATS), default="trl")],
        responses={200: OpenApiResponse(description="JSON Lines."), 400: OpenApiResponse()},
    )
    def get(self, request: Request, slug: str, job_id: int) -> StreamingHttpResponse:
        project = project_get_for_staff(user=request.user, slug=slug)
        job = _job(project, job_id)
        name = request.query_params.get("format", "trl")
        if name not in ROUND_FORMATS:
            raise RoundFormatError(
                f"format must be one of {', '.join(ROUND_FORMATS)}, not {name[:40]!r}."
            )

        def lines() -> Iterator[bytes]:
            for record in round_records(job=job, format_name=name):
                yield (json.dumps(record, ensure_ascii=False) + "\n").encode()

        answer = StreamingHttpResponse(lines(), content_type="application/jsonl")
        answer["Content-Disposition"] = (
            f'attachment; filename="{project.slug}-round-{job.pk}-{name}.jsonl"'
        )
        return answer
