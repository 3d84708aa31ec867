"""The database connection as the labeling hot path expects it, on either database."""

import pytest
from django.db import connection

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
