"""8 labelers at once, redundancy 2: every pair ends with at most 2 comparisons, no labeler is
on a pair twice, and every submission that was accepted is stored.

Threads share nothing but the database; each closes its connection when done.
"""

import threading

import pytest
from django.db import close_old_connections, connection
from django.db.models import Count

from annotate.models import Comparison, Pair, Project
from annotate.services.labeling import (
    ComparisonExists,
    PairFull,
    comparison_create,
    pair_lease_next,
)
from tests.factories import MembershipFactory, ProjectFactory, UserFactory, make_pair

LABELERS = 8
PAIRS = 12


def label_until_done(project_id: int, user_id: int, accepted: list, errors: list) -> None:
    try:
        project = Project.objects.get(pk=project_id)
        user = UserFactory._meta.model.objects.get(pk=user_id)
        while True:
            lease = pair_lease_next(project=project, labeler=user)
            if lease is None:
                return
            try:
                c = comparison_create(pair=lease.pair, labeler=user, choice="a")
                accepted.append((c.pk, c.pair_id, user_id))
            except (PairFull, ComparisonExists):
                # Refusals are allowed; losing an accepted one is not.
                continue
    except Exception as error:  # reported by the test thread
        errors.append(repr(error))
    finally:
        connection.close()


def run_labelers() -> None:
    project = ProjectFactory(slug="busy", redundancy=2)
    users = [UserFactory(username=f"worker{i}") for i in range(LABELERS)]
    for user in users:
        MembershipFactory(project=project, user=user)
    for _ in range(PAIRS):
        make_pair(project)

    accepted: list = []
    errors: list = []
    start = threading.Barrier(LABELERS)

    def worker(user_id: int) -> None:
        start.wait()
        label_until_done(project.pk, user_id, accepted, errors)

    threads = [threading.Thread(target=worker, args=(u.pk,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_old_connections()

    assert errors == []
    per_pair = dict(
        Comparison.objects.filter(project=project)
        .values("pair")
        .annotate(n=Count("pk"))
        .values_list("pair", "n")
    )
    assert max(per_pair.values()) <= 2
    # Every pair got its two judgments: none were lost to leases left behind.
    assert sorted(per_pair.values()) == [2] * PAIRS
    twice = Comparison.objects.values("pair", "labeler").annotate(n=Count("pk")).filter(n__gt=1)
    assert not twice.exists()
    stored = set(Comparison.objects.values_list("pk", "pair_id", "labeler_id"))
    assert set(accepted) == stored
    assert Pair.objects.filter(project=project, is_open=True).count() == 0
    project.refresh_from_db()
    assert project.comparison_count == len(stored) == 2 * PAIRS


@pytest.mark.django_db(transaction=True)
def test_eight_labelers_in_parallel_threads():
    """Runs on the configured database: CI runs the suite on SQLite and on PostgreSQL, so both
    the row-lock path (SKIP LOCKED) and SQLite's serialized writers are exercised."""
    run_labelers()
