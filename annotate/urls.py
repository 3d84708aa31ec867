"""Pages of the labeling app."""

from django.urls import path

from . import (
    views,
    views_chat,
    views_export,
    views_generation,
    views_import,
    views_judges,
    views_quality,
)

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<slug:slug>/label/", views.label, name="label"),
    path("projects/<slug:slug>/instructions/", views.instructions, name="instructions"),
    path("projects/<slug:slug>/chat/", views_chat.chat, name="chat"),
    path("projects/<slug:slug>/chat/turn/", views_chat.chat_turn, name="chat-turn"),
    path("projects/<slug:slug>/chat/vote/", views_chat.chat_vote_view, name="chat-vote"),
    path("projects/<slug:slug>/import/", views_import.project_import, name="project-import"),
    path("projects/<slug:slug>/export/", views_export.project_export, name="project-export"),
    path("projects/<slug:slug>/quality/", views_quality.quality_dashboard, name="project-quality"),
    path(
        "projects/<slug:slug>/quality/recompute/",
        views_quality.quality_recompute,
        name="project-quality-recompute",
    ),
    path(
        "projects/<slug:slug>/quality/labelers/<id32:user_id>/",
        views_quality.labeler_membership,
        name="project-quality-labeler",
    ),
    path(
        "projects/<slug:slug>/generators/",
        views_generation.generators,
        name="project-generators",
    ),
    path(
        "projects/<slug:slug>/generators/jobs/",
        views_generation.generation_start,
        name="project-generation-start",
    ),
    path(
        "projects/<slug:slug>/generators/jobs/<id:job_id>/<str:action>/",
        views_generation.generation_job_action,
        name="project-generation-job",
    ),
    path(
        "projects/<slug:slug>/generators/<slug:name>/",
        views_generation.generator_edit,
        name="project-generator",
    ),
    path("projects/<slug:slug>/judges/", views_judges.judges, name="project-judges"),
    path(
        "projects/<slug:slug>/judges/jobs/",
        views_judges.judging_start,
        name="project-judging-start",
    ),
    path(
        "projects/<slug:slug>/judges/jobs/<id:job_id>/<str:action>/",
        views_judges.judging_job_action,
        name="project-judging-job",
    ),
    path("projects/<slug:slug>/review/", views_quality.review, name="project-review"),
    path(
        "projects/<slug:slug>/review/<id:pair_id>/",
        views_quality.review_resolve,
        name="project-review-resolve",
    ),
]
