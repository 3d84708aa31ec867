"""The quality figures' background computation for real: a staff member's first look at the
API queues it on Redis, a real Celery worker process computes and stores the figures, and the
API then answers them."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotate.models import QualityResult
from tests.annotate.services.test_quality import split_pairs
from tests.rewardtrain.queue_helpers import broker, start_worker, wait_for  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_first_look_queues_the_computation_and_a_worker_stores_it(
    project,
    staff,
    start_worker,  # noqa: F811
):
    pairs, _bob, _carol = split_pairs(project, n=3)
    client = APIClient()
    client.force_authenticate(staff)
    url = f"/api/projects/{project.slug}/quality/"
    assert client.get(url).json()["status"] == "computing"

    worker = start_worker()
    wait_for(
        lambda: QualityResult.objects.filter(project=project, computed_at__isnull=False).first(),
        what="the figures to be stored",
        worker=worker,
    )
    body = client.get(url).json()
    assert body["status"] == "ready"
    assert body["agreement"]["pairs"] == 3
    assert {item["pair_id"] for item in body["review_queue"]["items"]} == {p.pk for p in pairs}
