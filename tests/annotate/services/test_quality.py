"""Stored quality figures: the staleness rule, queueing a computation once, the beat's check,
the recompute button, and the review queue read from its stored items."""

from __future__ import annotations

import pytest
import redis
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.models import Comparison, Project, QualityResult, ReviewItem
from annotate.selectors.quality import review_page
from annotate.services.quality import (
    COMPUTING,
    READY,
    STALE,
    quality_compute,
    quality_due,
    quality_get,
    quality_inputs,
    quality_request,
    quality_status,
)
from annotate.services.review import membership_exclude, pair_adjudicate
from config.celery import app
from scripts.local_redis import start_local_redis
from tests.factories import MembershipFactory, UserFactory, make_pair
from tests.rewardtrain.queue_helpers import broker  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def queued(redis_url: str) -> list[bytes]:
    """The task messages waiting on the default queue."""
    return redis.Redis.from_url(redis_url).lrange("default", 0, -1)


def split_pairs(project, n: int = 2):
    """n pairs, each split 1-1 between two labelers: each goes to the review queue."""
    bob, carol = UserFactory(username="bob"), UserFactory(username="carol")
    for user in (bob, carol):
        MembershipFactory(project=project, user=user)
    pairs = [make_pair(project) for _ in range(n)]
    for pair in pairs:
        Comparison.objects.create(pair=pair, project=project, labeler=bob, choice="a")
        Comparison.objects.create(pair=pair, project=project, labeler=carol, choice="b")
    Project.objects.filter(pk=project.pk).update(comparison_count=2 * n)
    project.refresh_from_db()
    return pairs, bob, carol


def test_staleness_rule(project):
    inputs = quality_inputs(project)
    assert quality_status(result=None, project=project, inputs=inputs, every=10) == COMPUTING
    result = QualityResult(project=project, figures=None)
    assert quality_status(result=result, project=project, inputs=inputs, every=10) == COMPUTING

    result = QualityResult(
        project=project,
        figures={},
        computed_at=timezone.now(),
        comparison_count=100,
        inputs=inputs,
    )
    project.comparison_count = 109
    assert quality_status(result=result, project=project, inputs=inputs, every=10) == READY
    project.comparison_count = 110
    assert quality_status(result=result, project=project, inputs=inputs, every=10) == STALE

    # What the figures were computed from changed: stale whatever the count.
    project.comparison_count = 100
    project.aggregation = "dawid_skene"
    assert quality_status(
        result=result, project=project, inputs=quality_inputs(project), every=10
    ) == (STALE)


def test_excluding_a_labeler_makes_the_figures_stale(project):
    _pairs, bob, _carol = split_pairs(project)
    quality_compute(project_id=project.pk)
    result = QualityResult.objects.get(project=project)
    every = 1000
    assert quality_status(
        result=result, project=project, inputs=quality_inputs(project), every=every
    ) == (READY)
    membership_exclude(project=project, user=bob, reason="spam")
    assert quality_status(
        result=result, project=project, inputs=quality_inputs(project), every=every
    ) == (STALE)


def test_compute_stores_figures_and_the_review_queue(project):
    pairs, _bob, _carol = split_pairs(project, n=3)
    result = quality_compute(project_id=project.pk)
    assert result.computed_at is not None and result.comparison_count == 6
    assert result.figures["agreement"]["pairs"] == 3
    assert set(ReviewItem.objects.values_list("pair_id", flat=True)) == {p.pk for p in pairs}
    assert [i.rank for i in ReviewItem.objects.order_by("rank")] == [0, 1, 2]
    # Twice is the same as once (a redelivered task).
    quality_compute(project_id=project.pk)
    assert ReviewItem.objects.count() == 3 and QualityResult.objects.count() == 1
    assert quality_compute(project_id=10**9) is None


def test_a_settled_pair_leaves_the_stored_queue_at_once(project, staff):
    pairs, _bob, _carol = split_pairs(project, n=3)
    quality_compute(project_id=project.pk)
    assert review_page(project=project)["size"] == 3
    pair_adjudicate(pair=pairs[0], staff=staff, choice="a")
    queue = review_page(project=project)
    assert queue["size"] == 2
    assert pairs[0].pk not in [item["pair_id"] for item in queue["items"]]
    # Nor does the next computation bring it back.
    quality_compute(project_id=project.pk)
    assert review_page(project=project)["size"] == 2


@pytest.mark.django_db(transaction=True)
def test_first_read_queues_one_computation(project, staff, broker):  # noqa: F811
    split_pairs(project)
    client = APIClient()
    client.force_authenticate(staff)
    url = f"/api/projects/{project.slug}/quality/"
    first = client.get(url).json()
    assert first["status"] == "computing" and first["computed_at"] is None
    assert first["recompute_queued_at"] and first["queue_error"] is None
    assert "agreement" not in first
    # Asked again meanwhile: still the one message.
    assert client.get(url).json()["status"] == "computing"
    assert len(queued(broker)) == 1

    # The worker's job, run here: then ready, with the figures.
    quality_compute(project_id=project.pk)
    ready = client.get(url).json()
    assert ready["status"] == "ready" and ready["agreement"]["pairs"] == 2
    assert ready["review_queue"]["size"] == 2 and ready["recompute_queued_at"] is None
    assert len(queued(broker)) == 1


@pytest.mark.django_db(transaction=True)
def test_the_beat_queues_stale_projects_only(project, broker, settings):  # noqa: F811
    settings.QUALITY_RECOMPUTE_EVERY = 3
    pairs, bob, _carol = split_pairs(project)
    other = Project.objects.create(name="Other", slug="other")
    quality_compute(project_id=project.pk)
    assert quality_due() == 0 and queued(broker) == []

    Comparison.objects.create(pair=make_pair(project), project=project, labeler=bob, choice="a")
    Project.objects.filter(pk=project.pk).update(comparison_count=6)
    assert quality_due() == 0  # 2 new: under 3
    Project.objects.filter(pk=project.pk).update(comparison_count=7)
    assert quality_due() == 1
    assert quality_due() == 0  # queued already
    assert len(queued(broker)) == 1
    # A project nobody looked at gets nothing from the beat.
    assert not QualityResult.objects.filter(project=other).exists()


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_page_says_why_and_nothing_stays_marked(
    project, staff, tmp_path, monkeypatch
):
    own = start_local_redis(workdir=tmp_path / "redis")
    monkeypatch.setattr(app.conf, "broker_url", own.url)
    own.stop()
    figures = quality_get(project=project)
    assert figures["status"] == "computing"
    assert "could not reach the task queue" in figures["queue_error"]
    assert QualityResult.objects.get(project=project).requested_at is None


@pytest.mark.django_db(transaction=True)
def test_recompute_button_is_staff_only_and_queues_once(
    client,
    project,
    staff,
    labeler,
    broker,  # noqa: F811
):
    split_pairs(project)
    quality_compute(project_id=project.pk)
    url = reverse("project-quality-recompute", args=[project.slug])
    client.force_login(labeler)
    assert client.post(url).status_code == 403
    client.force_login(staff)
    assert client.get(url).status_code == 405
    page = client.post(url, follow=True).content.decode()
    assert "being recomputed" in page
    page = client.post(url, follow=True).content.decode()
    assert "already queued" in page
    assert len(queued(broker)) == 1
    # The dashboard says how old the figures are and offers the button.
    assert "Figures computed" in page and "Recompute now" in page
    assert quality_request(project=project) is False


@pytest.mark.django_db(transaction=True)
def test_pages_before_the_first_computation_say_so(client, project, staff, broker):  # noqa: F811
    split_pairs(project)
    client.force_login(staff)
    dashboard = client.get(reverse("project-quality", args=[project.slug])).content.decode()
    assert "being computed in the background for the first time" in dashboard
    assert 'http-equiv="refresh"' in dashboard
    review = client.get(reverse("project-review", args=[project.slug])).content.decode()
    assert "being computed in the background for the first time" in review
    assert len(queued(broker)) == 1
