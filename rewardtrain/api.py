"""Training runs over HTTP, for staff: start (or join) a run, list a project's runs, follow
one run's progress, cancel it."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.selectors.projects import project_get_for_staff
from rewardtrain import dashboard
from rewardtrain.models import TrainingRun
from rewardtrain.services import run_cancel
from rewardtrain.triggers import QueueUnavailable, training_request


class TrainingRunListCreateApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, slug: str) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        runs = dashboard.runs_recent(project=project)
        return Response([dashboard.run_progress(run=run) for run in runs])

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, slug: str) -> Response:
        """201 with a new run, 200 with the run already queued or running (joined), 503 when
        the task queue cannot be reached (the run is then recorded as failed)."""
        project = project_get_for_staff(user=request.user, slug=slug)
        try:
            run, created = training_request(
                project=project, trigger=TrainingRun.Trigger.ADMIN, user=request.user
            )
        except QueueUnavailable as exc:
            return Response(
                {"detail": f"Training was not started: {exc}"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
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

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, run_id: int) -> Response:
        run = dashboard.run_get_for_staff(run_id=run_id)
        return Response(dashboard.run_progress(run=run))


class TrainingRunCancelApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
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
