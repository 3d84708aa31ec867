"""Ranking and rating figures through the front door: labelers lease and submit through the
services, the background computation stores the figures, and the quality API and page show
them (run on SQLite and on PostgreSQL). Repeats and excluded labelers are not counted."""

import random

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotate.hashing import user_message
from annotate.models import Ranking, TaskKind
from annotate.selectors.quality_rankings import ranking_consensus
from annotate.services.quality import quality_compute
from annotate.services.rankings import (
    project_task_set,
    response_set_submit,
    response_sets_create,
)
from annotate.services.review import membership_exclude
from annotate.services.set_leasing import response_set_lease_next
from tests.factories import MembershipFactory, PromptFactory, ResponseFactory, UserFactory

pytestmark = pytest.mark.django_db

ASPECTS = [
    {"name": "helpfulness", "description": "Meets the request.", "min": 0, "max": 4},
    {"name": "verbosity", "description": "Length.", "min": 0, "max": 4},
]
AGREEING = ("ann", "ben", "dan", "fay")


@pytest.fixture
def ranked(project):
    """Three sets of four responses, each a planted best-to-worst order. ann, ben, dan and fay
    rank by it; eve reverses it; rex ranks at random and is then excluded. Helpfulness: all give
    3, 2, 1, 0 down the planted order, eve one point more (lenient); verbosity is 2 from all."""
    project.redundancy = 6
    project.save()
    project_task_set(
        project=project, task_kind=TaskKind.RANKING_RATING, ranking_size=4, aspects=ASPECTS
    )
    for k in range(3):
        prompt = PromptFactory(project=project, messages=user_message(f"Question {k}?"))
        for i in range(4):
            ResponseFactory(prompt=prompt, text=f"Answer {i} to {k}")
    response_sets_create(project=project)
    users = {}
    for name in (*AGREEING, "eve", "rex"):
        users[name] = UserFactory(username=name)
        MembershipFactory(project=project, user=users[name])
    planted = {}
    rng = random.Random(4)
    for name, user in users.items():
        while lease := response_set_lease_next(project=project, labeler=user, rng=rng):
            ids = sorted(r.id for r in lease.responses)
            order = planted.setdefault(lease.set_id, rng.sample(ids, 4))
            if name == "eve":
                order = order[::-1]
            elif name == "rex":
                order = rng.sample(ids, 4)
            bonus = 1 if name == "eve" else 0
            ratings = [
                {"response_id": i, "aspect": "helpfulness", "value": 3 - place + bonus}
                for place, i in enumerate(planted[lease.set_id])
            ] + [{"response_id": i, "aspect": "verbosity", "value": 2} for i in ids]
            response_set_submit(labeler=user, set_id=lease.set_id, ranking=order, ratings=ratings)
    # A swapped repeat in the opposite order: it measures self-consistency, never agreement.
    first = Ranking.objects.filter(labeler=users["ann"]).first()
    Ranking.objects.create(
        response_set=first.response_set,
        project=project,
        labeler=users["ann"],
        groups=first.groups[::-1],
        is_repeat=True,
    )
    membership_exclude(project=project, user=users["rex"], reason="random")
    return {"users": users, "planted": planted}


def test_quality_api_gives_the_ranking_and_rating_figures(project, staff, ranked):
    quality_compute(project_id=project.pk)
    client = APIClient()
    client.force_login(staff)
    q = client.get(reverse("api-project-quality", args=[project.slug])).json()
    rankings = q["rankings"]
    assert rankings["rankings"] == 15 and rankings["sets"] == 3  # 5 counted labelers x 3
    rows = {row["username"]: row for row in rankings["labelers"]}
    assert set(rows) == {*AGREEING, "eve"}
    assert rows["eve"]["tau_b"] == -1.0 and rows["eve"]["tau_n"] == 3
    assert all(rows[name]["tau_b"] == 1.0 for name in AGREEING)
    # Kendall's W of four agreeing rankings and one reversed, of four responses: the rank
    # sums at places p = 1..4 are 4p + (5 - p) = 3p + 5: 8, 11, 14, 17 (mean 12.5), so
    # S = 2 * (4.5^2 + 1.5^2) = 45 and W = 12 * 45 / (5^2 * (4^3 - 4)) = 0.36.
    assert rankings["concordance"]["mean"] == pytest.approx(0.36)
    assert rankings["position"]["n"] == 15
    assert rankings["consensus"]["weighted_by"] is None  # the project aggregates by majority
    consensus = ranking_consensus(project=project, excluded=[ranked["users"]["rex"].pk])
    assert consensus == {s: [[i] for i in order] for s, order in ranked["planted"].items()}

    ratings = q["ratings"]
    assert ratings["ratings"] == 5 * 3 * 4 * 2
    aspects = {a["name"]: a for a in ratings["aspects"]}
    assert list(aspects) == ["helpfulness", "verbosity"]
    assert aspects["verbosity"]["alpha_interval"] is None  # one value throughout
    assert 0.5 < aspects["helpfulness"]["alpha_interval"] < 1.0
    rows = {row["username"]: row for row in ratings["labelers"]}
    # eve: one helpfulness point above the four others on each of her 12 responses, and level
    # on verbosity: +1 in 24 comparisons of a 4-point scale, +1/8 of the scale.
    assert rows["eve"]["leaning"] == "lenient"
    assert rows["eve"]["by_aspect"]["helpfulness"]["offset"] == 1.0
    assert rows["eve"]["offset"] == pytest.approx(0.125)
    # ann: against three at her value and eve a point above: -1/4 point on helpfulness.
    assert rows["ann"]["by_aspect"]["helpfulness"]["offset"] == -0.25
    assert "rex" not in rows


def test_quality_page_shows_the_sections_and_a_pairwise_project_has_none(
    client, project, staff, ranked
):
    quality_compute(project_id=project.pk)
    client.force_login(staff)
    page = client.get(reverse("project-quality", args=[project.slug])).content.decode()
    assert 'id="rankings"' in page and 'id="ratings"' in page
    assert "Kendall" in page and "lenient" in page and "eve" in page
    assert "ranking-labeler-" in page and "rating-labeler-" in page

    project_task_set(project=project, task_kind=TaskKind.PAIRWISE)
    Ranking.objects.all().delete()
    project.ratings.all().delete()
    quality_compute(project_id=project.pk)
    page = client.get(reverse("project-quality", args=[project.slug])).content.decode()
    assert 'id="rankings"' not in page and 'id="ratings"' not in page
    q = APIClient()
    q.force_login(staff)
    figures = q.get(reverse("api-project-quality", args=[project.slug])).json()
    assert figures["rankings"] is None and figures["ratings"] is None
