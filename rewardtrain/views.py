"""Staff pages of the reward model: the training page of a project (runs, live progress,
versions, metrics), the live run's loss chart it refreshes, and its two form actions, retrain
and activate (rollback)."""

from django.contrib import messages
from django.contrib.auth.decorators import user_passes_test
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotate.charts import loss_chart, metrics_chart, rounds_chart
from annotate.integers import ID_MAX, bounded_int
from annotate.selectors.pairs import pair_counts, pairs_queue_head
from annotate.selectors.projects import project_get_for_staff
from rewardtrain.core.config import ConfigError
from rewardtrain.models import ModelVersion, TrainingRun
from rewardtrain.selectors import dashboard
from rewardtrain.selectors.rounds import round_rows
from rewardtrain.services.triggers import QueueUnavailable, training_request, version_rollback

staff_required = user_passes_test(lambda u: u.is_active and u.is_staff)


@staff_required
def training_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_staff(user=request.user, slug=slug)
    run = dashboard.run_current(project=project)
    progress = dashboard.run_progress(run=run) if run else None
    rounds = round_rows(project=project)
    context = {
        "project": project,
        "run": progress,
        "loss_chart": loss_chart(progress["loss_curve"] if progress else []),
        "runs": dashboard.runs_recent(project=project),
        "versions": dashboard.version_rows(project=project),
        "chart": metrics_chart(dashboard.metric_points(project=project)),
        "counts": pair_counts(project=project),
        "queue_head": pairs_queue_head(project=project),
        "rounds": rounds,
        "rounds_chart": rounds_chart(rounds),
    }
    return render(request, "rewardtrain/training.html", context)


@staff_required
def training_loss_chart(request: HttpRequest, slug: str) -> HttpResponse:
    """The loss chart of the project's run `?run=<id>`, the fragment the training page's script
    swaps in while the run trains (annotate.charts draws every chart of the app)."""
    project = project_get_for_staff(user=request.user, slug=slug)
    try:
        run_id = bounded_int(request.GET.get("run"), name="run", min_value=1, max_value=ID_MAX)
    except ValueError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    run = get_object_or_404(
        TrainingRun.objects.select_related("project"), project=project, pk=run_id
    )
    curve = dashboard.run_progress(run=run)["loss_curve"]
    return HttpResponse(loss_chart(curve), content_type="image/svg+xml")


@staff_required
@require_POST
def training_retrain(request: HttpRequest, slug: str) -> HttpResponse:
    """The "Retrain now" form without script; the page's script posts to the API instead."""
    project = project_get_for_staff(user=request.user, slug=slug)
    try:
        run, created = training_request(
            project=project, trigger=TrainingRun.Trigger.ADMIN, user=request.user
        )
    except (ConfigError, QueueUnavailable) as exc:
        messages.error(request, f"Training was not started: {exc}")
    else:
        messages.success(request, dashboard.request_message(run=run, created=created))
    return redirect("training-page", slug=slug)


@staff_required
@require_POST
def version_activate_view(request: HttpRequest, slug: str, version: int) -> HttpResponse:
    project = project_get_for_staff(user=request.user, slug=slug)
    model_version = get_object_or_404(ModelVersion, project=project, version=version)
    try:
        version_rollback(version=model_version)
    except ValueError as exc:
        messages.error(request, f"Version {version} was not activated: {exc}")
    else:
        messages.success(request, f"Version {version} is now the active model.")
    return redirect("training-page", slug=slug)
