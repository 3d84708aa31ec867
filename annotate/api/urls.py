"""API routes of the labeling app."""

from django.urls import path

from annotate.api import (
    exports,
    generation,
    imports,
    judges,
    labeling,
    quality,
    rankings,
    tokens,
)

urlpatterns: list = [
    path("token/", tokens.TokenObtainApi.as_view(), name="api-token"),
    path("projects/", labeling.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<slug:slug>/next/", labeling.PairNextApi.as_view(), name="api-pair-next"),
    path("pairs/<id:pair_id>/skip/", labeling.PairSkipApi.as_view(), name="api-pair-skip"),
    path("comparisons/", labeling.ComparisonApi.as_view(), name="api-comparisons"),
    path("projects/<slug:slug>/sets/next/", rankings.SetNextApi.as_view(), name="api-set-next"),
    path("sets/<id:set_id>/skip/", rankings.SetSkipApi.as_view(), name="api-set-skip"),
    path("set-judgments/", rankings.SetJudgmentApi.as_view(), name="api-set-judgments"),
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
        "projects/<slug:slug>/export/jobs/<id:job_id>/",
        exports.ExportJobApi.as_view(),
        name="api-export-job",
    ),
    path(
        "projects/<slug:slug>/export/jobs/<id:job_id>/download/",
        exports.ExportJobDownloadApi.as_view(),
        name="api-export-job-download",
    ),
    path(
        "projects/<slug:slug>/generation/jobs/",
        generation.GenerationJobCreateApi.as_view(),
        name="api-generation-jobs",
    ),
    path(
        "projects/<slug:slug>/generation/jobs/<id:job_id>/",
        generation.GenerationJobApi.as_view(),
        name="api-generation-job",
    ),
    path(
        "projects/<slug:slug>/generation/jobs/<id:job_id>/cancel/",
        generation.GenerationJobCancelApi.as_view(),
        name="api-generation-job-cancel",
    ),
    path(
        "projects/<slug:slug>/generation/jobs/<id:job_id>/resume/",
        generation.GenerationJobResumeApi.as_view(),
        name="api-generation-job-resume",
    ),
    path("projects/<slug:slug>/judges/", judges.JudgeListApi.as_view(), name="api-judges"),
    path(
        "projects/<slug:slug>/judging/jobs/",
        judges.JudgingJobCreateApi.as_view(),
        name="api-judging-jobs",
    ),
    path(
        "projects/<slug:slug>/judging/jobs/<id:job_id>/",
        judges.JudgingJobApi.as_view(),
        name="api-judging-job",
    ),
    path(
        "projects/<slug:slug>/judging/jobs/<id:job_id>/cancel/",
        judges.JudgingJobCancelApi.as_view(),
        name="api-judging-job-cancel",
    ),
    path(
        "projects/<slug:slug>/judging/jobs/<id:job_id>/resume/",
        judges.JudgingJobResumeApi.as_view(),
        name="api-judging-job-resume",
    ),
    path(
        "projects/<slug:slug>/quality/",
        quality.ProjectQualityApi.as_view(),
        name="api-project-quality",
    ),
]
