"""Export API: a staff download of a project's dataset as a zip (data, manifest, dataset card),
streamed as it is written."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.views import APIView

from annotate.api.schema import BLANK_QUERY_IS_ABSENT
from annotate.exporters import FORMAT_NAMES, SHAPES
from annotate.selectors.projects import project_get_for_staff
from annotate.services.exports import (
    SOURCES,
    ExportError,
    dataset_export_stream,
    export_options,
)
from annotate.splits import SPLITS


class ExportQueryNegotiation(DefaultContentNegotiation):
    """`?format=` names the export format here, not DRF's renderer: ignore it when choosing
    how to render errors."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class DatasetExportApi(APIView):
    """GET /api/projects/<slug>/export/?format=trl&drop_ties=true&... (staff only)."""

    permission_classes = [IsAdminUser]
    content_negotiation_class = ExportQueryNegotiation

    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(FORMAT_NAMES, default="trl")
        shape = serializers.ChoiceField(SHAPES, default="trl")
        drop_ties = serializers.BooleanField(default=False)
        min_agreement = serializers.FloatField(
            required=False, allow_null=True, min_value=0, max_value=1, default=None
        )
        source = serializers.ChoiceField(SOURCES, default="all")
        since = serializers.CharField(required=False, allow_blank=True)
        until = serializers.CharField(required=False, allow_blank=True)
        labelers = serializers.CharField(required=False, allow_blank=True)
        split = serializers.ChoiceField(SPLITS, required=False, allow_blank=True)
        include_excluded = serializers.BooleanField(default=False)
        real_usernames = serializers.BooleanField(default=False)

    @extend_schema(
        summary="Download a project's dataset as a zip (staff)",
        description="The data file, manifest.json and a dataset card, streamed.",
        parameters=[InputSerializer],
        # The export page's form sends its empty fields: an empty value is the default.
        extensions={BLANK_QUERY_IS_ABSENT: True},
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY),
            400: OpenApiResponse(
                inline_serializer("ExportRefused", {"detail": serializers.CharField()}),
                description="Invalid options, or ones this project's data refuses: a date "
                "that is not one, an empty date range, a format that cannot write the shape, "
                "labelers who are not on the project.",
            ),
        },
    )
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        project = project_get_for_staff(user=request.user, slug=slug)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        try:
            name, chunks = dataset_export_stream(
                project=project, options=export_options(**params.validated_data)
            )
        except ExportError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        response = StreamingHttpResponse(chunks, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
