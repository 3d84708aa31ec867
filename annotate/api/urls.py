"""API routes of the labeling app."""

from django.urls import path

from annotate.api import exports, imports, labeling, quality, tokens

urlpatterns: list = [
    path("token/", tokens.TokenObtainApi.as_view(), name="api-token"),
    path("projects/", labeling.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<slug:slug>/next/", labeling.PairNextApi.as_view(), name="api-pair-next"),
    path("pairs/<int:pair_id>/skip/", labeling.PairSkipApi.as_view(), name="api-pair-skip"),
    path("comparisons/", labeling.ComparisonApi.as_view(), name="api-comparisons"),
    path(
        "projects/<slug:slug>/imports/",
        imports.ImportCreateApi.as_view(),
        name="api-imports",
    ),
    path(
        "projects/<slug:slug>/export/",
        exports.DatasetExportApi.as_view(),
        name="api-dataset-export",
    ),
    path(
        "projects/<slug:slug>/export/jobs/<int:job_id>/",
        exports.ExportJobApi.as_view(),
        name="api-export-job",
    ),
    path(
        "projects/<slug:slug>/export/jobs/<int:job_id>/download/",
        exports.ExportJobDownloadApi.as_view(),
        name="api-export-job-download",
    ),
    path(
        "projects/<slug:slug>/quality/",
        quality.ProjectQualityApi.as_view(),
        name="api-project-quality",
    ),
]
