"""API routes of the labeling app."""

from django.urls import path

from annotate.api import labeling, quality

urlpatterns: list = [
    path("projects/", labeling.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<slug:slug>/next/", labeling.PairNextApi.as_view(), name="api-pair-next"),
    path("pairs/<int:pair_id>/skip/", labeling.PairSkipApi.as_view(), name="api-pair-skip"),
    path("comparisons/", labeling.ComparisonApi.as_view(), name="api-comparisons"),
    path(
        "projects/<slug:slug>/quality/",
        quality.ProjectQualityApi.as_view(),
        name="api-project-quality",
    ),
]
