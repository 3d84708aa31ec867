"""Ranking and rating API: lease the next ResponseSet, skip it, store a labeler's ranking and/or
ratings of it. Each view parses, calls one service, answers; a service's refusal
(annotate.services.rankings' errors) answers through annotate.api.errors."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api.fields import BoundedIntegerField, IdField
from annotate.api.parsers import BoundedJSONParser
from annotate.integers import ID_MAX, INT16_MAX
from annotate.models import TaskKind
from annotate.selectors.labeling import project_get_for_labeler
from annotate.selectors.rankings import project_aspects, response_set_get_for_labeler
from annotate.services.rankings import (
    StoredSetJudgment,
    response_set_submit,
)
from annotate.services.set_leasing import (
    LeasedSet,
    response_set_lease_next,
    response_set_skip,
)

ErrorSerializer = inline_serializer("SetError", {"detail": serializers.CharField()})
ConflictSerializer = inline_serializer(
    "SetConflict",
    {
        "detail": serializers.CharField(),
        "code": serializers.CharField(help_text='"set_exists", "set_full" or "wrong_task_kind".'),
        "set_id": serializers.IntegerField(required=False),
    },
)
_DATETIME = serializers.DateTimeField()


class AspectSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    min = serializers.IntegerField()
    max = serializers.IntegerField()


class SetResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField(help_text="As written; the page shows it as plain text.")


class SetMessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()


class LeasedSetSerializer(serializers.Serializer):
    set_id = serializers.IntegerField()
    project = serializers.CharField(help_text="The project's slug.")
    task_kind = serializers.ChoiceField(choices=TaskKind.choices)
    ask_ranking = serializers.BooleanField()
    ask_ratings = serializers.BooleanField()
    prompt = serializers.CharField(help_text="The last user turn.")
    messages = SetMessageSerializer(many=True)
    responses = SetResponseSerializer(
        many=True, help_text="In the order shown to this labeler (drawn per labeler)."
    )
    aspects = AspectSerializer(many=True, help_text="What each response is rated on.")
    lease_expires_at = serializers.DateTimeField()


def leased_set_payload(lease: LeasedSet) -> dict[str, Any]:
    """A leased set as its labeler sees it (the shape LeasedSetSerializer documents)."""
    project = lease.project
    return {
        "set_id": lease.set_id,
        "project": project.slug,
        "task_kind": project.task_kind,
        "ask_ranking": project.task_kind in (TaskKind.RANKING, TaskKind.RANKING_RATING),
        "ask_ratings": project.task_kind in (TaskKind.RATING, TaskKind.RANKING_RATING),
        "prompt": lease.prompt_text,
        "messages": [
            {"role": str(m.get("role", "")), "content": str(m.get("content", ""))}
            for m in lease.messages
        ],
        "responses": [{"id": r.id, "text": r.text} for r in lease.responses],
        "aspects": [a.as_dict() for a in project_aspects(project)],
        "lease_expires_at": _DATETIME.to_representation(lease.expires_at),
    }


def stored_payload(stored: StoredSetJudgment) -> dict[str, Any]:
    return {
        "set_id": stored.set_id,
        "project": stored.project_slug,
        "ranking_id": stored.ranking_id,
        "ranking": stored.groups,
        "all_bad": stored.all_bad,
        "ratings": stored.ratings,
        "shown": stored.shown,
        "time_spent_ms": stored.time_spent_ms,
        "created_at": _DATETIME.to_representation(stored.created_at),
    }


_ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": ID_MAX}


@extend_schema_field(
    {
        "oneOf": [
            _ID_SCHEMA,
            {"type": "array", "items": _ID_SCHEMA, "minItems": 1, "maxItems": 9},
        ],
        "description": "A response id, or a list of tied response ids.",
    }
)
class RankingItemField(serializers.Field):
    """One place of a ranking: a response id, or a non-empty list of tied ids (each an id's
    whole number; whether they are the set's is the service's check)."""

    default_error_messages = {
        "invalid": "Each place is a response id or a non-empty list of tied response ids."
    }

    def to_internal_value(self, data: Any) -> int | list[int]:
        def is_id(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= ID_MAX

        if is_id(data):
            return data
        if isinstance(data, list) and 0 < len(data) <= 9 and all(is_id(i) for i in data):
            return list(data)
        self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_serializer(component_name="SetRatingInput")
class RatingInputSerializer(serializers.Serializer):
    response_id = IdField()
    aspect = serializers.CharField(min_length=1, max_length=100)
    # Bounded by its column; the aspect's own scale is the service's check.
    value = BoundedIntegerField(min_value=-INT16_MAX - 1, max_value=INT16_MAX)


class SetNextApi(APIView):
    @extend_schema(
        request=None,
        responses={
            200: LeasedSetSerializer,
            204: OpenApiResponse(description="Nothing is left for this labeler."),
            403: OpenApiResponse(
                ErrorSerializer, description="Staff excluded the caller from the project."
            ),
            404: ErrorSerializer,
            409: OpenApiResponse(
                ConflictSerializer,
                description='The project labels pairs (code "wrong_task_kind"): no sets.',
            ),
        },
        summary="Lease the next set of responses to rank or rate",
        description="Asking again while holding an unexpired lease returns the same set, in "
        "the same order.",
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_get_for_labeler(labeler=request.user, slug=slug)
        lease = response_set_lease_next(project=project, labeler=request.user)
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(leased_set_payload(lease))


class SetSkipApi(APIView):
    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="Skipped."), 404: ErrorSerializer},
        summary="Skip a leased set (it goes to other labelers)",
    )
    def post(self, request: Request, set_id: int) -> Response:
        response_set = response_set_get_for_labeler(labeler=request.user, set_id=set_id)
        response_set_skip(response_set=response_set, labeler=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SetJudgmentApi(APIView):
    parser_classes = [BoundedJSONParser]

    @extend_schema_serializer(component_name="SetJudgmentInput")
    class InputSerializer(serializers.Serializer):
        set_id = IdField()
        ranking = serializers.ListField(
            child=RankingItemField(),
            required=False,
            allow_null=True,
            default=None,
            max_length=9,
            help_text="Response ids, best first; a list of ids in place of one id is a tie: "
            "[12, [14, 13], 15]. Where the project ranks.",
        )
        all_bad = serializers.BooleanField(
            required=False, default=False, help_text="Every response is bad (rankings)."
        )
        ratings = serializers.ListField(
            child=RatingInputSerializer(),
            required=False,
            allow_null=True,
            default=None,
            max_length=9 * 50,
            help_text="Where the project rates: every response on every aspect.",
        )
        time_spent_ms = BoundedIntegerField(
            required=False, allow_null=True, default=None, min_value=0, max_value=86_400_000
        )

    @extend_schema_serializer(component_name="SetJudgment")
    class OutputSerializer(serializers.Serializer):
        set_id = serializers.IntegerField()
        project = serializers.CharField(help_text="The project's slug.")
        ranking_id = serializers.IntegerField(allow_null=True)
        ranking = serializers.ListField(
            child=serializers.ListField(child=serializers.IntegerField()),
            help_text="Groups of tied response ids, best first.",
        )
        all_bad = serializers.BooleanField()
        ratings = serializers.ListField(child=serializers.DictField())
        shown = serializers.ListField(
            child=serializers.IntegerField(), help_text="The order the responses were shown in."
        )
        time_spent_ms = serializers.IntegerField(allow_null=True)
        created_at = serializers.DateTimeField()

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Invalid input, or a judgment the set or the project does not "
                "allow, named: a ranking that omits or repeats a response or names one not in "
                "the set, a rating outside its aspect's scale or of an aspect the project does "
                "not have, a ranking where the project only rates. Nothing is stored.",
            ),
            404: OpenApiResponse(ErrorSerializer, description="No such set leased to you."),
            409: ConflictSerializer,
        },
        summary="Store a ranking and/or ratings of a leased set",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer().run_validation(request.data)
        if data["ratings"] is not None:
            data["ratings"] = [dict(rating) for rating in data["ratings"]]
        stored = response_set_submit(labeler=request.user, **data)
        return Response(stored_payload(stored), status=status.HTTP_201_CREATED)
