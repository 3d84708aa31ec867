"""Export API: a staff download of a project's dataset as a zip (data, manifest, dataset card),
streamed as it is written when small; when large (EXPORT_SYNC_MAX_COMPARISONS), 202 and an
export job to follow, whose finished file is then downloaded."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api.schema import BLANK_QUERY_IS_ABSENT
from annotate.exporters import FORMAT_NAMES, SHAPES, pairs_from
from annotate.models import ExportJob
from annotate.selectors.exports import export_job_get
from annotate.selectors.projects import project_get_for_staff
from annotate.services.export_jobs import EXPORTS_DIR, dataset_export_request, export_job_file
from annotate.services.exports import SOURCES
from annotate.services.exports_sets import SET_FORMATS
from annotate.splits import SPLITS


class ExportQueryNegotiation(DefaultContentNegotiation):
    """`?format=` names the export format here, not DRF's renderer: ignore it when choosing
    how to render errors."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ExportJobOutputSerializer(serializers.Serializer):
    """An export job as the API shows it: where it stands and, once done, where to download."""

    id = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    status = serializers.ChoiceField(ExportJob.Status.choices)
    format = serializers.SerializerMethodField()
    file_name = serializers.CharField()
    rows_done = serializers.IntegerField()
    rows_total = serializers.IntegerField(help_text="About how many rows the file will hold.")
    progress = serializers.SerializerMethodField(help_text="0 to 1; 1 only when succeeded.")
    error = serializers.CharField(help_text="Why the job failed; empty otherwise.")
    file_bytes = serializers.IntegerField(allow_null=True)
    download_url = serializers.SerializerMethodField(help_text="Set once the file is ready.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.SerializerMethodField(help_text="When the file is deleted.")

    def _url(self, job: ExportJob, name: str) -> str:
        path = reverse(name, kwargs={"slug": job.project.slug, "job_id": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_url(self, job: ExportJob) -> str:
        return self._url(job, "api-export-job")

    def get_format(self, job: ExportJob) -> str:
        return job.options.get("format", "trl")

    def get_progress(self, job: ExportJob) -> float:
        if job.status == ExportJob.Status.SUCCEEDED:
            return 1.0
        if not job.rows_total:
            return 0.0
        return round(min(job.rows_done / job.rows_total, 0.99), 4)

    def get_download_url(self, job: ExportJob) -> str | None:
        if export_job_file(job) is None:
            return None
        return self._url(job, "api-export-job-download")

    def get_expires_at(self, job: ExportJob) -> str | None:
        if job.finished_at is None:
            return None
        return (job.finished_at + timedelta(hours=settings.EXPORT_RETENTION_HOURS)).isoformat()


class DatasetExportApi(APIView):
    """GET /api/projects/<slug>/export/?format=trl&drop_ties=true&... (staff only). The
    format names are manage.py export_dataset's: the pairs' and, for rankings and ratings,
    their four shapes or TRL pairs expanded from them (`pairs_from`)."""

    permission_classes = [IsAdminUser]
    content_negotiation_class = ExportQueryNegotiation

    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(FORMAT_NAMES + tuple(SET_FORMATS), default="trl")
        shape = serializers.ChoiceField(SHAPES, default="trl")
        drop_ties = serializers.BooleanField(default=False)
        min_agreement = serializers.FloatField(
            required=False, allow_null=True, min_value=0, max_value=1, default=None
        )
        source = serializers.ChoiceField(SOURCES, default="all")
        no_ai = serializers.BooleanField(default=False)
        since = serializers.CharField(required=False, allow_blank=True)
        until = serializers.CharField(required=False, allow_blank=True)
        labelers = serializers.CharField(required=False, allow_blank=True)
        split = serializers.ChoiceField(SPLITS, required=False, allow_blank=True)
        include_excluded = serializers.BooleanField(default=False)
        real_usernames = serializers.BooleanField(default=False)
        pairs_from = serializers.ChoiceField(
            pairs_from.CHOICES,
            required=False,
            allow_null=True,
            help_text="trl formats: TRL pairs from the rankings (all implied pairs, or "
            "best-vs-rest) or the ratings (rating-margin) instead of the project's pairs.",
        )
        min_margin = serializers.FloatField(
            required=False,
            allow_null=True,
            help_text="rating-margin: the least score difference, above 0 (default 1).",
        )
        aspect = serializers.CharField(
            required=False,
            allow_null=True,
            max_length=100,
            help_text="rating-margin: the aspect compared (default: the aspects' mean).",
        )

    @extend_schema(
        summary="Download a project's dataset as a zip (staff)",
        description="The data file, manifest.json and a dataset card, streamed. An export of "
        "more comparisons (rankings and ratings: more Ranking and Rating rows) than "
        "EXPORT_SYNC_MAX_COMPARISONS answers 202 instead: an export job (its URL also in "
        "Location) to poll until `download_url` is set. A project's rankings and ratings "
        "export in the formats ultrafeedback, helpsteer2, argilla and oasst, or as TRL pairs "
        "with `pairs_from`.",
        parameters=[InputSerializer],
        # The export page's form sends its empty fields: an empty value is the default.
        extensions={BLANK_QUERY_IS_ABSENT: True},
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY),
            202: OpenApiResponse(ExportJobOutputSerializer, description="Built in the background."),
            503: OpenApiResponse(description="The task queue (Redis) cannot be reached."),
            400: OpenApiResponse(
                inline_serializer("ExportRefused", {"detail": serializers.CharField()}),
                description="Invalid options, or ones this project's data refuses: a date "
                "that is not one, an empty date range, a format that cannot write the shape, "
                "labelers who are not on the project; for rankings and ratings, pairs_from "
                "with a format other than trl or trl-conversational, min_margin or aspect "
                "without pairs_from rating-margin, a min_margin not above 0, an aspect the "
                "project lacks, dropping ties or the agreement threshold, source ai_judge.",
            ),
        },
    )
    def get(self, request: Request, slug: str) -> StreamingHttpResponse | Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        # ExportError (400) and QueueUnavailable (503) answer through annotate.api.errors.
        answer = dataset_export_request(
            project=project, user=request.user, values=dict(params.validated_data)
        )
        if isinstance(answer, ExportJob):
            data = ExportJobOutputSerializer(answer, context={"request": request}).data
            return Response(data, status=202, headers={"Location": data["url"]})
        name, chunks = answer
        response = StreamingHttpResponse(chunks, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class ExportJobApi(APIView):
    """GET /api/projects/<slug>/export/jobs/<id>/ (staff): the job's status and progress."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="An export job's status, progress and download URL (staff)",
        responses={200: ExportJobOutputSerializer, 403: None, 404: None},
    )
    def get(self, request: Request, slug: str, job_id: int) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        job = export_job_get(project=project, job_id=job_id)
        return Response(ExportJobOutputSerializer(job, context={"request": request}).data)


class ExportJobDownloadApi(APIView):
    """GET /api/projects/<slug>/export/jobs/<id>/download/ (staff): the finished zip."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Download a finished export job's zip (staff)",
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY),
            409: OpenApiResponse(description="The job has not succeeded (yet)."),
            410: OpenApiResponse(description="The file was deleted after its retention time."),
        },
    )
    def get(self, request: Request, slug: str, job_id: int) -> HttpResponse | Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        job = export_job_get(project=project, job_id=job_id)
        if job.status != ExportJob.Status.SUCCEEDED:
            why = f": {job.error}" if job.error else ""
            return Response({"detail": f"The export job is {job.status}{why}"}, status=409)
        path = export_job_file(job)
        if path is None:
            return Response({"detail": "The export's file was deleted; ask again."}, status=410)
        return _file_response(path, job.file_name)


def _file_response(path: Path, name: str) -> HttpResponse:
    """The file as an attachment: sent by nginx when EXPORT_ACCEL_REDIRECT names its internal
    location (no web worker held for the transfer), else by this worker."""
    prefix = settings.EXPORT_ACCEL_REDIRECT
    if prefix:
        inside = path.relative_to(Path(settings.MEDIA_ROOT) / EXPORTS_DIR).as_posix()
        response = HttpResponse(content_type="application/zip")
        response["X-Accel-Redirect"] = f"{prefix.rstrip('/')}/{inside}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    return FileResponse(path.open("rb"), as_attachment=True, filename=name)
