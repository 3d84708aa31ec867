"""Staff pages of the reward model."""

from django.urls import path

from rewardtrain import views, views_export

urlpatterns = [
    path("projects/<slug:slug>/training/", views.training_page, name="training-page"),
    path(
        "projects/<slug:slug>/training/loss-chart/",
        views.training_loss_chart,
        name="training-loss-chart",
    ),
    path(
        "projects/<slug:slug>/training/retrain/",
        views.training_retrain,
        name="training-retrain",
    ),
    path(
        "projects/<slug:slug>/training/versions/<id32:version>/activate/",
        views.version_activate_view,
        name="training-version-activate",
    ),
    path(
        "projects/<slug:slug>/models/<id32:version>/download/",
        views_export.model_version_download,
        name="model-version-download",
    ),
    path(
        "projects/<slug:slug>/models/<id32:version>/download/status/",
        views_export.model_version_download_status,
        name="model-version-download-status",
    ),
]
