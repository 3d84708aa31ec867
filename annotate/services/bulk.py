"""Many-row inserts for imports (COPY on PostgreSQL, executemany on SQLite) of the columns
the caller names, every value given by the caller; and the planner statistics a bulk load
needs. Used by annotate/services/imports.py alone (and the load benchmark's seed, for
`analyze`).

A hand-made replacement for Model.objects.bulk_create, kept for its measured speed:
importing 100,000 pairs (imports.import_file on PostgreSQL, 2026-12-06) took 29-36 s this
way (33-35 s for the earlier field-driven version beside it) and 60-70 s through bulk_create
(36 s for the earlier version in that sitting), which spent twice the CPU on preparing each
object and on building the arrays of its UNNEST insert. It knows nothing of the models'
fields: no defaults are looked up, each caller names every column it writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection, models


def rows_insert(
    model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """INSERT `rows` (values in the order of `columns`) into `model`'s table. JSON columns
    take JSON text; ids are not returned (callers read them back by their natural keys)."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY streams the rows in one command; INSERTs would cost a statement per row
            # (executemany) or a long client-side parse of one huge statement.
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        # SQLite prepares the statement once and steps it per row; it stores datetimes as
        # the text Django writes for them.
        adapt = connection.ops.adapt_datetimefield_value
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({marks})",
            [[adapt(v) if isinstance(v, datetime) else v for v in row] for row in rows],
        )


def analyze(models_: list[type[models.Model]]) -> None:
    """Refresh PostgreSQL's planner statistics for these tables. During a long bulk load in one
    transaction the planner still sizes the tables as they were before (empty, for a new
    project) and reads them whole instead of through their indexes; ANALYZE sees the
    transaction's own rows. SQLite needs nothing."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in models_:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
