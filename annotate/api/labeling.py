"""Labeling API: the caller's projects, lease the next Pair, skip it, store a Comparison,
list the caller's own Comparisons. Each view parses, calls one service or selector, answers;
a service's refusal (annotate.services.labeling's errors) answers through
annotate.api.errors."""

from __future__ import annotations

from functools import cache

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api.fields import BoundedIntegerField, IdField
from annotate.api.parsers import BoundedJSONParser
from annotate.api.serializers import (
    LeasedPairSerializer,
    ScaleSerializer,
    comparison_payload,
    leased_pair_payload,
)
from annotate.integers import ID_MAX, INT16_MAX, bounded_int
from annotate.models import Choice
from annotate.selectors.labeling import (
    comparisons_of_labeler,
    pair_get_for_labeler,
    project_get_for_labeler,
    project_scale,
    projects_for_labeler,
)
from annotate.services.labeling import comparison_submit, lease_skip, pair_lease_next

ErrorSerializer = inline_serializer("Error", {"detail": serializers.CharField()})
ConflictSerializer = inline_serializer(
    "Conflict",
    {
        "detail": serializers.CharField(),
        "code": serializers.CharField(help_text='"exists" or "pair_full".'),
        "id": serializers.IntegerField(required=False, help_text="The existing comparison."),
    },
)


class ProjectListApi(APIView):
    @extend_schema_serializer(component_name="LabelerProject")
    class OutputSerializer(serializers.Serializer):
        slug = serializers.CharField(source="project.slug")
        name = serializers.CharField(source="project.name")
        instructions = serializers.CharField(source="project.instructions")
        redundancy = serializers.IntegerField(source="project.redundancy")
        pair_count = serializers.IntegerField(source="project.pair_count")
        comparison_count = serializers.IntegerField(source="project.comparison_count")
        my_comparisons = serializers.IntegerField(source="mine")
        scale = serializers.SerializerMethodField()

        def get_scale(self, obj) -> ScaleSerializer:
            return project_scale(obj.project)

    @extend_schema(responses=OutputSerializer(many=True), summary="The caller's projects")
    def get(self, request: Request) -> Response:
        progress = projects_for_labeler(labeler=request.user)
        return Response(self.OutputSerializer(progress, many=True).data)


class PairNextApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: LeasedPairSerializer,
            204: OpenApiResponse(description="Nothing is left for this labeler."),
            403: OpenApiResponse(
                ErrorSerializer, description="Staff excluded the caller from the project."
            ),
            404: ErrorSerializer,
        },
        summary="Lease the next pair to judge",
        description="Asking again while holding an unexpired lease returns the same pair.",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_get_for_labeler(labeler=request.user, slug=slug)
        lease = pair_lease_next(project=project, labeler=request.user)
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(leased_pair_payload(lease))


class PairSkipApi(APIView):
    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="Skipped."), 404: ErrorSerializer},
        summary="Skip a leased pair (it goes to other labelers)",
    )
    def post(self, request: Request, pair_id: int) -> Response:
        pair = pair_get_for_labeler(labeler=request.user, pair_id=pair_id)
        lease_skip(pair=pair, labeler=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@cache
def _comparison_input() -> serializers.Serializer:
    """One ComparisonApi.InputSerializer for the process: its run_validation keeps no state
    on the instance, and a serializer per submission deep-copied its fields every time (the
    larger part of parsing one)."""
    return ComparisonApi.InputSerializer()


class ComparisonPagination(CursorPagination):
    ordering = "-id"
    page_size = 100

    def decode_cursor(self, request: Request) -> Cursor | None:
        # The cursor's position is a comparison id that goes into the query: one out of an
        # id's range (or not a number) is an invalid cursor, as a garbled cursor is.
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                bounded_int(cursor.position, name="position", min_value=1, max_value=ID_MAX)
            except ValueError:
                raise NotFound(self.invalid_cursor_message) from None
        return cursor


class ComparisonApi(APIView):
    # A judgment has nulls (strength, time_spent_ms) that a form cannot carry: JSON only.
    parser_classes = [BoundedJSONParser]

    @extend_schema_serializer(component_name="ComparisonInput")
    class InputSerializer(serializers.Serializer):
        pair_id = IdField()
        preferred = serializers.RegexField(
            r"^([0-9]+|tie|both_bad)$",
            help_text='A response id of the pair, "tie" or "both_bad".',
        )
        # Bounded by its column; the project's own scale is the service's check.
        strength = BoundedIntegerField(
            required=False,
            allow_null=True,
            default=None,
            min_value=1,
            max_value=INT16_MAX,
            help_text="1 (slightly better) up to the project's scale; only where it asks.",
        )
        reasons = serializers.ListField(
            child=serializers.CharField(max_length=100), required=False, default=list
        )
        comment = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=5000, trim_whitespace=True
        )
        time_spent_ms = BoundedIntegerField(
            required=False, allow_null=True, default=None, min_value=0, max_value=86_400_000
        )

    # The documented shape; annotate.api.serializers.comparison_payload builds it.
    @extend_schema_serializer(component_name="Comparison")
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        pair_id = serializers.IntegerField()
        project = serializers.CharField(help_text="The project's slug.")
        choice = serializers.ChoiceField(choices=Choice.choices)
        preferred = serializers.CharField(
            help_text='The chosen response\'s id, or "tie" or "both_bad".'
        )
        strength = serializers.IntegerField(allow_null=True)
        reasons = serializers.ListField(child=serializers.CharField())
        comment = serializers.CharField()
        left = serializers.CharField(help_text='"a" or "b": the response shown on the left.')
        time_spent_ms = serializers.IntegerField(allow_null=True)
        created_at = serializers.DateTimeField()

    @extend_schema_serializer(component_name="ComparisonFilter")
    class FilterSerializer(serializers.Serializer):
        project = serializers.SlugField(required=False, help_text="Only this project's.")

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Invalid input, or a judgment the pair or the project's label "
                "scale does not allow (another pair's response, a tie where ties are off, a "
                "strength missing or out of range, an unknown reason).",
            ),
            404: OpenApiResponse(ErrorSerializer, description="No such pair leased to you."),
            409: ConflictSerializer,
        },
        summary="Store a judgment of a leased pair",
    )
    def post(self, request: Request) -> Response:
        # Invalid input raises ValidationError: a 400 naming each bad field, as is_valid does.
        judgment = _comparison_input().run_validation(request.data)
        comparison = comparison_submit(labeler=request.user, **judgment)
        return Response(comparison_payload(comparison), status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={
            200: inline_serializer(
                "ComparisonPage",
                {
                    "next": serializers.URLField(
                        allow_null=True, help_text="The next page (older), or null."
                    ),
                    "previous": serializers.URLField(allow_null=True),
                    "results": OutputSerializer(many=True),
                },
            ),
            404: OpenApiResponse(
                ErrorSerializer, description="No such project of yours, or an invalid cursor."
            ),
        },
        summary="The caller's own comparisons, newest first, 100 a page",
        parameters=[
            FilterSerializer,
            OpenApiParameter("cursor", OpenApiTypes.STR, description="From `next` or `previous`."),
        ],
    )
    def get(self, request: Request) -> Response:
        # A plain dict: from a QueryDict DRF would take `?project=` as absent, not as blank.
        query = self.FilterSerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        slug = query.validated_data.get("project")
        project = project_get_for_labeler(labeler=request.user, slug=slug) if slug else None
        qs = comparisons_of_labeler(labeler=request.user, project=project).select_related("pair")
        paginator = ComparisonPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([comparison_payload(c) for c in page])
