"""API routes of the reward model (mounted under /api/ by config/urls.py)."""

from django.urls import path

from rewardtrain import api

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
]
