"""Many-row inserts for imports (COPY on PostgreSQL, executemany on SQLite), without building
a model instance per row.

Every concrete field is written: the values given, else the field's default (a callable
default is called per row, `auto_now_add` gets one timestamp), so fields added to a model
later are filled as the ORM would fill them. Ids are not returned: callers read them back by
their natural keys.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, models
from django.utils import timezone


def insert_rows(model: type[models.Model], rows: list[dict[str, Any]]) -> None:
    """INSERT `rows` (dicts of field attnames to Python values) into `model`'s table."""
    if not rows:
        return
    now = timezone.now()
    given = rows[0].keys()
    columns: list[str] = []
    per_row: list[tuple[str, models.Field, bool]] = []  # (attname, field, needs db prep)
    constants: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or getattr(field, "generated", False):
            continue
        columns.append(field.column)
        # Plain text, numbers and ids go to the driver as they are; JSON and datetimes need
        # the backend's conversion.
        needs_prep = isinstance(field, models.JSONField | models.DateTimeField)
        if field.attname in given:
            per_row.append((field.attname, field, needs_prep))
        elif getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
            constants[field.column] = field.get_db_prep_save(now, connection)
        elif field.has_default() and callable(field.default):
            per_row.append((field.attname, field, needs_prep))
        else:
            constants[field.column] = field.get_db_prep_save(field.get_default(), connection)

    def values(row: dict[str, Any]) -> list[Any]:
        out = []
        per = iter(per_row)
        for column in columns:
            if column in constants:
                out.append(constants[column])
                continue
            attname, field, needs_prep = next(per)
            value = row[attname] if attname in row else field.get_default()
            out.append(field.get_db_prep_save(value, connection) if needs_prep else value)
        return out

    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY streams the rows in one command; INSERTs would cost a statement per row
            # (executemany) or a long client-side parse of one huge statement.
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(values(row))
            return
        # SQLite prepares the statement once and steps it per row.
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({marks})", [values(row) for row in rows]
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
