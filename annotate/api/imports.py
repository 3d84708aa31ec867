"""Import API: staff upload a file of pairs or judgments into a project (the same service as
`manage.py import_pairs` and the upload page at /projects/<slug>/import/)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.selectors.projects import project_get_for_staff
from annotate.services.imports import import_upload
from annotate.uploads import CappedUploadHandler


class DiskMultiPartParser(MultiPartParser):
    """Multipart whose files always go to a temporary file on disk, never into memory (an
    import can be hundreds of megabytes), up to MAX_UPLOAD_BYTES."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        request.upload_handlers = [CappedUploadHandler(request)]
        return super().parse(stream, media_type, parser_context)


class LineError(serializers.Serializer):
    line = serializers.IntegerField()
    message = serializers.CharField()


def line_errors(errors: list[tuple[int, str]]) -> list[dict]:
    return [{"line": line, "message": message} for line, message in errors]


class ImportCreateApi(APIView):
    """POST /api/projects/<slug>/imports/ (staff only), multipart: `file`, `skip_invalid`."""

    permission_classes = [IsAdminUser]
    parser_classes = [DiskMultiPartParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()
        skip_invalid = serializers.BooleanField(default=False)

    class OutputSerializer(serializers.Serializer):
        batch_id = serializers.IntegerField()
        format = serializers.CharField()
        rows = serializers.IntegerField()
        pairs_created = serializers.IntegerField()
        comparisons_created = serializers.IntegerField()
        sets_created = serializers.IntegerField(
            help_text="ResponseSets made (a ranking or rating file's prompts with their responses)."
        )
        rankings_created = serializers.IntegerField()
        ratings_created = serializers.IntegerField()
        set_judgments_created = serializers.IntegerField(
            help_text="Raters' judgments of sets (a rater's ranking and/or ratings of one set)."
        )
        duplicates_skipped = serializers.IntegerField()
        errors = LineError(many=True, help_text="The first 1,000 bad lines.")
        error_count = serializers.IntegerField(help_text="How many lines were bad in all.")

    class RejectedSerializer(serializers.Serializer):
        detail = serializers.CharField()
        errors = LineError(
            many=True, required=False, help_text="The first 1,000 bad lines (a bad file)."
        )
        error_count = serializers.IntegerField(
            required=False, help_text="How many lines were bad in all (a bad file)."
        )

    @extend_schema(
        summary="Import a file of pairs or preference judgments",
        description=(
            "JSON Lines, CSV or a Label Studio JSON export; the format is detected from the "
            "rows (pair, candidates, TRL, HH-RLHF, OpenAI preference, Chatbot Arena CSV and "
            "battles, Label Studio). Importing the same file twice adds nothing. With bad "
            "lines nothing is imported and every bad line is listed, unless `skip_invalid`. "
            "Staff can also upload from the page /projects/<slug>/import/ or run "
            "`python manage.py import_pairs FILE --project SLUG`."
        ),
        request={"multipart/form-data": InputSerializer},
        responses={
            201: OutputSerializer,
            400: OpenApiResponse(
                RejectedSerializer,
                description="Nothing was imported: bad lines (listed), or a bad form (no "
                "file, a bad skip_invalid: named in `detail`, with DRF's field map).",
            ),
            403: OpenApiResponse(description="Not staff."),
            413: OpenApiResponse(
                inline_serializer("UploadTooLarge", {"detail": serializers.CharField()}),
                description="The upload is larger than MAX_UPLOAD_BYTES.",
            ),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        params = self.InputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        # ImportRejected answers 400 with its bad lines through annotate.api.errors.
        result = import_upload(
            project=project,
            upload=params.validated_data["file"],
            skip_invalid=params.validated_data["skip_invalid"],
            created_by=request.user,
        )
        data = {**result.__dict__, "errors": line_errors(result.errors)}
        return Response(self.OutputSerializer(data).data, status=status.HTTP_201_CREATED)
