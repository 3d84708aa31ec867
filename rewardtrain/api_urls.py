"""API routes of the reward model (mounted under /api/ by config/urls.py)."""

from django.urls import path

from rewardtrain import api, api_rounds

urlpatterns = [
    path(
        "projects/<slug:slug>/training-runs/",
        api.TrainingRunListCreateApi.as_view(),
        name="api-training-runs",
    ),
    path(
        "training-runs/<id:run_id>/",
        api.TrainingRunDetailApi.as_view(),
        name="api-training-run-detail",
    ),
    path(
        "training-runs/<id:run_id>/cancel/",
        api.TrainingRunCancelApi.as_view(),
        name="api-training-run-cancel",
    ),
    path("projects/<slug:slug>/rounds/", api_rounds.RoundListApi.as_view(), name="api-rounds"),
    path(
        "projects/<slug:slug>/rounds/<id:job_id>/",
        api_rounds.RoundDetailApi.as_view(),
        name="api-round",
    ),
    path(
        "projects/<slug:slug>/rounds/<id:job_id>/export/",
        api_rounds.RoundExportApi.as_view(),
        name="api-round-export",
    ),
]
