"""Training runs over HTTP, for staff: start (or join) a run, list a project's runs, follow
one run's progress, cancel it."""

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.selectors.projects import project_get_for_staff
from rewardtrain.models import TrainingRun
from rewardtrain.selectors import dashboard
from rewardtrain.services import run_cancel
from rewardtrain.services.triggers import training_request


# The documented shape of dashboard.run_progress, which builds it.
@extend_schema_serializer(component_name="TrainingRun")
class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.CharField(help_text="The project's slug.")
    status = serializers.ChoiceField(choices=TrainingRun.Status.choices)
    status_label = serializers.CharField()
    trigger = serializers.ChoiceField(choices=TrainingRun.Trigger.choices)
    trigger_label = serializers.CharField()
    active = serializers.BooleanField(help_text="Queued or running.")
    done = serializers.BooleanField(help_text="Ended: succeeded, failed or cancelled.")
    step = serializers.IntegerField()
    total = serializers.IntegerField()
    fraction = serializers.FloatField(help_text="0 to 1; 1 once it succeeded.")
    epoch = serializers.IntegerField(allow_null=True)
    loss = serializers.FloatField(allow_null=True)
    pairs_per_second = serializers.FloatField(allow_null=True)
    loss_curve = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        help_text="[[step, loss], ...], thinned.",
    )
    device = serializers.CharField()
    error = serializers.CharField()
    cancel_requested = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    model_version = inline_serializer(
        "TrainingRunVersion",
        {
            "version": serializers.IntegerField(),
            "is_active": serializers.BooleanField(),
            "promoted": serializers.BooleanField(),
            "reason": serializers.CharField(),
        },
        allow_null=True,
        help_text="The version it produced, once it succeeded.",
    )
    url = serializers.CharField()
    cancel_url = serializers.CharField()


@extend_schema_serializer(component_name="TrainingRequest")
class RequestedRunSerializer(RunSerializer):
    joined = serializers.BooleanField(help_text="A run was already queued or running.")
    message = serializers.CharField()


ErrorSerializer = inline_serializer("TrainingError", {"detail": serializers.CharField()})


class TrainingRunListCreateApi(APIView):
    permission_classes = [IsAdminUser]
    # Opens the `detail` of a refusal raised here (annotate.api.errors): the retrain page
    # and the admin action say the same.
    refusal_prefix = "Training was not started: "

    @extend_schema(
        responses=RunSerializer(many=True), summary="A project's recent training runs (staff)"
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        runs = dashboard.runs_recent(project=project)
        return Response([dashboard.run_progress(run=run) for run in runs])

    @extend_schema(
        request=None,
        responses={
            201: OpenApiResponse(RequestedRunSerializer, description="A new run, queued."),
            200: OpenApiResponse(
                RequestedRunSerializer, description="Joined the run already queued or running."
            ),
            400: OpenApiResponse(
                ErrorSerializer,
                description="The project's training settings cannot train here (no run is "
                "created), e.g. more ranks (nproc) than the visible GPUs.",
            ),
            503: OpenApiResponse(
                ErrorSerializer,
                description="The task queue cannot be reached (the run is recorded as failed).",
            ),
        },
        summary="Retrain now (staff)",
    )
    def post(self, request: Request, slug: str) -> Response:
        """201 with a new run, 200 with the run already queued or running (joined), 400 when
        the training settings cannot train here (no run created), 503 when the task queue
        cannot be reached (the run is then recorded as failed)."""
        project = project_get_for_staff(user=request.user, slug=slug)
        # ConfigError (400) and QueueUnavailable (503) answer through annotate.api.errors.
        run, created = training_request(
            project=project, trigger=TrainingRun.Trigger.ADMIN, user=request.user
        )
        run.refresh_from_db()
        body = {
            **dashboard.run_progress(run=run),
            "joined": not created,
            "message": dashboard.request_message(run=run, created=created),
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TrainingRunDetailApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(responses=RunSerializer, summary="One training run's progress (staff)")
    def get(self, request: Request, run_id: int) -> Response:
        run = dashboard.run_get_for_staff(run_id=run_id)
        return Response(dashboard.run_progress(run=run))


class TrainingRunCancelApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(
                RunSerializer, description="Cancelled, or stopping at its next step."
            ),
            409: OpenApiResponse(
                inline_serializer(
                    "TrainingRunEnded",
                    {
                        "detail": serializers.CharField(),
                        "status": serializers.ChoiceField(choices=TrainingRun.Status.choices),
                    },
                ),
                description="The run had already ended.",
            ),
        },
        summary="Cancel a training run (staff)",
    )
    def post(self, request: Request, run_id: int) -> Response:
        """200 with the run (cancelled, or stopping at its next step); 409 when it had ended."""
        run = dashboard.run_get_for_staff(run_id=run_id)
        if not run.is_active:
            return Response(
                {"detail": f"Run {run.pk} has already ended ({run.status}).", "status": run.status},
                status=status.HTTP_409_CONFLICT,
            )
        run = run_cancel(run=run)
        return Response(dashboard.run_progress(run=run))
