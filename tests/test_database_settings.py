"""The database connection as the labeling hot path expects it, on either database."""

import pytest
from django.db import connection, transaction
from django.utils import timezone

from annotate.services import queue_sql
from annotate.services.labeling import comparison_submit, pair_lease_next
from tests.factories import make_pair

pytestmark = pytest.mark.django_db


def test_the_connection_is_set_up_for_short_concurrent_statements():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # No JIT compiling of a leasing query whose cost estimate runs high.
            cursor.execute("SHOW jit")
            assert cursor.fetchone()[0] == "off"
            # Statements are prepared once per connection, not planned on every request.
            assert connection.connection.prepare_threshold == 2
        else:
            # Readers go on while a writer commits; writers wait for the lock instead of failing.
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] >= 30_000


@pytest.mark.django_db(transaction=True)  # real commits: SET LOCAL ends with each transaction
def test_only_lease_transactions_skip_waiting_for_the_disk(project, labeler):
    pair = make_pair(project)

    def synchronous_commit() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    with transaction.atomic():
        assert (
            queue_sql.lease_current_id(
                project_id=project.pk, labeler_id=labeler.pk, now=timezone.now()
            )
            is None
        )
        if connection.vendor == "postgresql":
            assert synchronous_commit() == "off"
    lease = pair_lease_next(project=project, labeler=labeler)
    assert lease.pair.pk == pair.pk
    with transaction.atomic():
        # The setting ended with the lease's transaction: a judgment's commit waits.
        if connection.vendor == "postgresql":
            assert synchronous_commit() == "on"
        assert (
            queue_sql.lease_current_id(
                project_id=project.pk, labeler_id=labeler.pk, now=timezone.now()
            )
            == lease.pk
        )
    comparison_submit(labeler=labeler, pair_id=pair.pk, preferred="tie")
    if connection.vendor == "postgresql":
        assert synchronous_commit() == "on"
