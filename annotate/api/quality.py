"""Quality API: every quality figure of a project as JSON, for staff."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.selectors.projects import project_get_for_staff
from annotate.selectors.quality import review_items
from annotate.services.quality import quality_get


class ProjectQualityApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Quality figures of a project (staff)",
        description=(
            "Progress, queue depth and ETA, throughput, agreement (percent, Krippendorff's "
            "alpha nominal / interval / ordinal, Fleiss' kappa) with bootstrap 95% intervals, "
            "per-labeler statistics with flags, the source-model leaderboard, the review queue; "
            "under `judges`, each AI judge measured against the people (agreement with their "
            "majority with a bootstrap interval, gold accuracy, the consistency of its two "
            "readings and its shown-first rate, its longer-response rate beside the people's, "
            "its reliability under the project's aggregation) and the people's pooled figures. "
            "Judges stay out of the people's figures. "
            "Under `rankings` (null without any): Krippendorff's alpha over the pairs the "
            "rankings imply, Kendall's W per set, the top slot's position bias, each labeler's "
            "tau-b with the others' Plackett-Luce consensus; under `ratings` (null without "
            "any): per aspect alpha (interval, ordinal) and quadratic-weighted kappa, per "
            "labeler offset (lenient or harsh) and spread. "
            "The figures are computed in the background and stored: `status` is `ready`, "
            "`stale` (enough new comparisons or changed settings since `computed_at`: a "
            "recomputation is queued, the stored figures are given meanwhile) or `computing` "
            "(none yet: only `status` and the project are given until they are)."
        ),
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT), 403: None, 404: None},
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_get_for_staff(user=request.user, slug=slug)
        figures = quality_get(project=project)
        if figures["computed_at"] is not None:
            # Read now from the stored queue: a pair settled since leaves it at once.
            figures["review_queue"] = review_items(project=project)
        return Response(figures)
