"""Admin of the reward model: projects with a "Retrain now" action; training runs (cancel),
model versions (activate: rollback) and evaluations, otherwise read-only."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from rewardtrain.core.config import ConfigError
from rewardtrain.models import Evaluation, ModelVersion, ProjectTraining, TrainingRun
from rewardtrain.selectors.dashboard import request_message
from rewardtrain.services import run_cancel
from rewardtrain.services.triggers import QueueUnavailable, training_request, version_rollback


@admin.action(description="Retrain now")
def retrain_now(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for project in queryset:
        try:
            run, created = training_request(
                project=project, trigger=TrainingRun.Trigger.ADMIN, user=request.user
            )
        except (ConfigError, QueueUnavailable) as exc:
            modeladmin.message_user(
                request, f"{project}: training was not started: {exc}", messages.ERROR
            )
            continue
        modeladmin.message_user(
            request, f"{project}: {request_message(run=run, created=created)}", messages.SUCCESS
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ProjectTraining)
class ProjectTrainingAdmin(ReadOnlyAdmin):
    """Each project's training at a glance; the project itself is edited under Labeling."""

    list_display = ["name", "slug", "auto_retrain", "comparison_count", "training_page"]
    search_fields = ["name", "slug"]
    actions = [retrain_now]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Training page")
    def training_page(self, obj: ProjectTraining) -> str:
        return format_html('<a href="{}">Training</a>', reverse("training-page", args=[obj.slug]))


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ["pk", "project", "status", "trigger", "requested_by", "created_at", "error"]
    list_filter = ["status", "trigger", "project"]
    actions = ["cancel_runs"]

    @admin.action(description="Cancel (queued: at once; running: at the next step)")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[TrainingRun]) -> None:
        runs = [
            run_cancel(run=run) for run in queryset.filter(status__in=TrainingRun.ACTIVE_STATUSES)
        ]
        self.message_user(request, f"Cancel requested for {len(runs)} run(s).", messages.SUCCESS)


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["project", "version", "is_active", "backbone", "created_at"]
    list_filter = ["project", "is_active"]
    actions = ["activate_version"]

    @admin.action(description="Make active (roll back or forward to this version)")
    def activate_version(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return
        version = queryset.get()
        try:
            version_rollback(version=version)
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"{version} is now active.", messages.SUCCESS)


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnlyAdmin):
    list_display = ["model_version", "kind", "created_at"]
    list_filter = ["kind"]
