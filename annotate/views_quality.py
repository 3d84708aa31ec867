"""Staff pages of quality control: the dashboard, the review queue, and their two forms
(exclude or include a labeler; resolve a pair or mark it ambiguous)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotate.charts import Svg, bar_chart, interval_chart, rate_chart
from annotate.integers import INT16_MAX, bounded_int
from annotate.models import Choice
from annotate.queue import QueueUnavailable
from annotate.selectors.pairs import pair_counts
from annotate.selectors.projects import project_get_for_staff
from annotate.selectors.quality import labeler_detail, pair_get_for_staff, review_page
from annotate.services.quality import quality_get, quality_request
from annotate.services.review import (
    membership_exclude,
    membership_include,
    pair_adjudicate,
    pair_mark_ambiguous,
)

# Review items shown with their texts on the dashboard (the review page shows more).
DASHBOARD_REVIEW_ITEMS = 5
REVIEW_PAGE_ITEMS = 20


def _charts(q: dict[str, Any]) -> dict[str, Svg]:
    """The dashboard's charts from its figures."""
    series = q["throughput"]["series"]
    fmt = "%m-%d %Hh" if q["throughput"]["bucket"] == "hour" else "%m-%d"
    labels = [datetime.fromisoformat(point["start"]).strftime(fmt) for point in series]
    labelers = q["labelers"]
    flagged = {
        code: {row["username"] for row in labelers if any(f["code"] == code for f in row["flags"])}
        for code in ("left_bias", "length_bias")
    }
    pool = [r["longer_pool_rate"] for r in labelers if r["longer_pool_rate"] is not None]
    board = q["leaderboard"]["models"]
    return {
        "throughput": bar_chart(
            labels,
            [point["count"] for point in series],
            title=f"Labels per {q['throughput']['bucket']}",
        ),
        "left": rate_chart(
            [
                (r["username"], r["left_rate"], r["username"] in flagged["left_bias"])
                for r in labelers
            ],
            title="Share choosing the response shown on the left",
            reference=0.5,
        ),
        "longer": rate_chart(
            [
                (r["username"], r["longer_rate"], r["username"] in flagged["length_bias"])
                for r in labelers
            ],
            title="Share choosing the longer response",
            reference=sorted(pool)[len(pool) // 2] if pool else None,
            reference_label="labelers' median" if pool else "",
        ),
        "leaderboard": interval_chart(
            [(m["model"], m["rating"], m["ci_low"], m["ci_high"]) for m in board],
            title="Bradley–Terry rating with 95% interval",
        ),
    }


@login_required
def quality_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    """The stored figures, how old they are, and the most urgent review items (read now)."""
    project = project_get_for_staff(user=request.user, slug=slug)
    q = quality_get(project=project)
    review = review_page(project=project, limit=DASHBOARD_REVIEW_ITEMS)
    q["review_queue"] = {"size": review["size"]}
    q["review_details"] = review["items"]
    return render(
        request,
        "annotate/quality.html",
        {
            "project": project,
            "q": q,
            "charts": _charts(q) if q.get("labelers") is not None else {},
            "counts": pair_counts(project=project),
        },
    )


@login_required
@require_POST
def quality_recompute(request: HttpRequest, slug: str) -> HttpResponse:
    """The dashboard's recompute button: queue a computation of the figures now."""
    project = project_get_for_staff(user=request.user, slug=slug)
    try:
        if quality_request(project=project):
            messages.success(request, "The figures are being recomputed: reload in a moment.")
        else:
            messages.info(request, "A recomputation is already queued.")
    except QueueUnavailable as exc:
        messages.error(request, f"Not recomputed: {exc}")
    return redirect("project-quality", slug=project.slug)


@login_required
@require_http_methods(["GET", "POST"])
def labeler_membership(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    """A labeler's page (GET): their figures, flags and latest judgments. POST excludes
    (action=exclude, with a reason) or includes (action=include) them."""
    project = project_get_for_staff(user=request.user, slug=slug)
    user = get_object_or_404(get_user_model(), pk=user_id)
    if request.method == "GET":
        rows = quality_get(project=project).get("labelers") or []
        detail = labeler_detail(project=project, user=user, rows=rows)
        if detail is None:
            raise Http404(
                f"{user.username} has no judgments on this project as of its quality figures."
            )
        context = {"project": project, "labeler": user, **detail}
        return render(request, "annotate/labeler.html", context)
    if request.POST.get("action") == "include":
        membership_include(project=project, user=user)
        messages.success(request, f"{user.username} counts again in training and export.")
    else:
        membership_exclude(project=project, user=user, reason=request.POST.get("reason", ""))
        messages.success(
            request,
            f"{user.username} is excluded: their comparisons stay stored but leave "
            "training and export.",
        )
    return redirect("project-quality", slug=project.slug)


@login_required
def review(request: HttpRequest, slug: str) -> HttpResponse:
    project = project_get_for_staff(user=request.user, slug=slug)
    state = quality_get(project=project, figures=False)
    queue = review_page(project=project, limit=REVIEW_PAGE_ITEMS)
    return render(
        request,
        "annotate/review.html",
        {
            "project": project,
            "state": state,
            "queue": queue,
            "choices": [c for c in Choice],
            "strengths": list(enumerate(project.strength_scale, start=1)),
        },
    )


@login_required
@require_POST
def review_resolve(request: HttpRequest, slug: str, pair_id: int) -> HttpResponse:
    """Resolve a pair (action=resolve with a choice and optional strength) or mark it
    ambiguous (action=ambiguous)."""
    project = project_get_for_staff(user=request.user, slug=slug)
    pair = pair_get_for_staff(user=request.user, project=project, pair_id=pair_id)
    try:
        if request.POST.get("action") == "ambiguous":
            pair_mark_ambiguous(pair=pair, staff=request.user)
            messages.success(request, f"Pair {pair.pk} is marked ambiguous: left out of training.")
        else:
            given = request.POST.get("strength")
            strength = (
                bounded_int(given, name="Strength", min_value=1, max_value=INT16_MAX)
                if given
                else None
            )
            pair_adjudicate(
                pair=pair,
                staff=request.user,
                choice=request.POST.get("choice", ""),
                strength=strength,
            )
            messages.success(request, f"Pair {pair.pk} is resolved: your judgment is its label.")
    except ValueError as error:
        messages.error(request, str(error))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("project-review", slug=project.slug)
