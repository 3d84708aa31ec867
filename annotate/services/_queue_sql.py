"""The statements of the labeling hot path, in plain SQL: find the next Pair for a labeler,
read a labeler's state on a locked Pair, and write the counters a judgment moves. Private to
annotate/services/labeling.py, the only module that imports it (a test holds that).

Every lease and every submission runs these. Built through the ORM, composing each
statement cost several times the CPU that the database spent running it, and a labeling
server is bound by exactly that CPU (bench/labeling_load.py). Written once here, the text is
also identical from call to call, so PostgreSQL prepares it and plans it once per connection
(config/settings.py). The rules these statements serve live in labeling.py; this module only
reads and writes rows, and runs unchanged on PostgreSQL and SQLite.

What it returns is whole: instances made by Model.from_db from the columns read, every
other column deferred (it loads from the database on first access, as after .only()), never
an instance whose unread fields hold their defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

from annotate.models import (
    Comparison,
    Lease,
    Membership,
    Pair,
    Project,
    Prompt,
    Response,
)


def _db() -> BaseDatabaseWrapper:
    """This thread's database connection, looked up once by a function that uses it several
    times (each use of django.db.connection repeats the thread-local lookup)."""
    return connections[DEFAULT_DB_ALIAS]


@cache
def _t(model) -> str:
    return _db().ops.quote_name(model._meta.db_table)


def _now(value: datetime) -> Any:
    """A datetime as this database compares it (SQLite stores text)."""
    return _db().ops.adapt_datetimefield_value(value)


def _row_lock(alias: str) -> str:
    # SQLite has no row locks: its writers are serialized by the IMMEDIATE transactions the
    # settings ask for, so the same read-then-write is safe there without them.
    if connection.vendor == "postgresql":
        return f" FOR UPDATE OF {alias}"
    return ""


@cache
def _candidate_sql(vendor: str, random_order: bool) -> str:
    order = "p.random_key" if random_order else "p.priority DESC, p.id"
    skip = " FOR UPDATE OF p SKIP LOCKED" if vendor == "postgresql" else ""
    # Open Pairs of the project in queue order (the walk of the `pair_queue` or
    # `pair_queue_random` partial index), minus those the labeler judged or was served, minus
    # those whose human Comparisons plus live leases already reach the redundancy.
    # The labeler's comparison and lease are probed per Pair walked, through the pair's index.
    # Left to itself PostgreSQL turns the NOT EXISTS into an anti-join that reads all of the
    # labeler's comparisons on every lease, and picks it whenever its statistics are older
    # than the labeler's history (a lease cost 1.5 ms at 1,500 comparisons); OFFSET 0 keeps
    # each a per-row probe. SQLite always probes per row.
    fence = " OFFSET 0" if vendor == "postgresql" else ""
    return f"""
        SELECT p.id, p.human_count FROM {_t(Pair)} p
        WHERE p.project_id = %s AND p.is_open AND p.gold = ''
          AND NOT EXISTS (SELECT 1 FROM {_t(Comparison)} c
                          WHERE c.pair_id = p.id AND c.labeler_id = %s AND NOT c.is_repeat{fence})
          AND NOT EXISTS (SELECT 1 FROM {_t(Lease)} s
                          WHERE s.pair_id = p.id AND s.labeler_id = %s{fence})
          AND p.human_count + COALESCE((SELECT COUNT(*) FROM {_t(Lease)} h
                                        WHERE h.pair_id = p.id AND h.expires_at > %s), 0) < %s
        ORDER BY {order} LIMIT 1{skip}"""


def _candidate_params(
    project_id: int, labeler_id: int, redundancy: int, now: datetime
) -> list[Any]:
    return [project_id, labeler_id, labeler_id, _now(now), redundancy]


def candidate_sql(*, random_order: bool) -> str:
    """The candidate statement as the database at hand runs it (tests read its plan)."""
    return _candidate_sql(connection.vendor, random_order)


def candidate_next(
    *, project_id: int, labeler_id: int, redundancy: int, now: datetime, random_order: bool
) -> tuple[int, int] | None:
    """(pair id, human count) of the first Pair in queue order this labeler may be served,
    row-locked; SKIP LOCKED passes over Pairs a concurrent labeler is leasing right now."""
    with connection.cursor() as cursor:
        cursor.execute(
            candidate_sql(random_order=random_order),
            _candidate_params(project_id, labeler_id, redundancy, now),
        )
        return cursor.fetchone()


def candidate_plan(
    *,
    project_id: int,
    labeler_id: int,
    redundancy: int,
    now: datetime,
    random_order: bool,
    analyze: bool = False,
) -> str:
    """The database's plan for the candidate read (a test and the load benchmark show it)."""
    if connection.vendor == "postgresql":
        explain = "EXPLAIN (ANALYZE) " if analyze else "EXPLAIN "
    else:
        explain = "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(
            explain + candidate_sql(random_order=random_order),
            _candidate_params(project_id, labeler_id, redundancy, now),
        )
        return "\n".join(" ".join(str(column) for column in row) for row in cursor.fetchall())


@dataclass(frozen=True)
class LeaseStart:
    """What a lease request reads first: whether staff excluded the labeler from the project
    (and why), and the labeler's current lease there."""

    excluded: bool
    excluded_reason: str
    current_id: int | None


def lease_start(*, project_id: int, labeler_id: int, now: datetime) -> LeaseStart:
    """The labeler's membership exclusion, and their newest unexpired Lease in the project
    that still stands (on an open Pair, or a gold or repeat lease: those stand outside the
    open queue), in one read. A labeler with no membership row is not excluded.

    One statement instead of an ORM query for the exclusion and this one for the lease: that
    query took a tenth of the app's CPU per comparison (bench/labeling_load.py)."""
    with _db().cursor() as cursor:
        cursor.execute(
            _lease_start_sql(), [labeler_id, _now(now), project_id, project_id, labeler_id]
        )
        excluded, reason, current_id = cursor.fetchone()
    return LeaseStart(excluded=bool(excluded), excluded_reason=reason or "", current_id=current_id)


@cache
def _lease_start_sql() -> str:
    return f"""SELECT m.excluded, m.excluded_reason,
                 (SELECT l.id FROM {_t(Lease)} l JOIN {_t(Pair)} p ON p.id = l.pair_id
                  WHERE l.labeler_id = %s AND l.expires_at > %s AND p.project_id = %s
                    AND (p.is_open OR l.is_repeat OR p.gold <> '')
                  ORDER BY l.created_at DESC LIMIT 1)
               FROM (SELECT 1 AS one) AS here
               LEFT JOIN {_t(Membership)} m ON m.project_id = %s AND m.user_id = %s"""


def commit_without_flush() -> None:
    """Let the current transaction commit without waiting for its WAL to reach the disk
    (PostgreSQL; SQLite has no such setting). It lasts until that transaction ends.

    For lease transactions and the project counter only: a lease is soft state, the next
    judgment's commit flushes it anyway, and one lost in a crash only frees its Pair early;
    a counter lost in a crash only lags. Judgments keep waiting for theirs. Under a slow
    disk the wait was a sixth of the server's time."""
    db = _db()
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def lease_insert_if_free(
    *,
    pair_id: int,
    human_count: int,
    redundancy: int,
    labeler_id: int,
    left: str,
    expires_at: datetime,
    now: datetime,
) -> Lease | None:
    """Lease the row-locked candidate unless its human Comparisons plus live Leases already
    reach the redundancy (None then); the Lease comes with its Pair's content attached.

    The candidate read's snapshot can predate a lease that a concurrent labeler committed
    just before releasing this row; this statement starts after the lock was taken, so its
    count sees every lease on the Pair. On PostgreSQL the content is read by the same
    statement.
    """
    db = _db()
    now_value = _now(now)
    params = [
        pair_id,
        labeler_id,
        left,
        False,
        _now(expires_at),
        now_value,
        human_count,
        pair_id,
        now_value,
        redundancy,
    ]
    with_content = db.vendor == "postgresql"
    if with_content:
        params.append(pair_id)
    with db.cursor() as cursor:
        cursor.execute(_lease_insert_sql(db.vendor), params)
        row = cursor.fetchone()
    if row is None:
        return None
    lease_id = row[0]
    pair = _pair_from_content(row[1:]) if with_content else pair_with_content(pair_id)
    lease = _whole(
        Lease,
        id=lease_id,
        pair_id=pair_id,
        labeler_id=labeler_id,
        left=left,
        is_repeat=False,
        expires_at=expires_at,
        created_at=now,
    )
    lease.pair = pair
    return lease


@cache
def _lease_insert_sql(vendor: str) -> str:
    insert = f"""INSERT INTO {_t(Lease)} (pair_id, labeler_id, "left", is_repeat, expires_at,
                                          created_at)
                 SELECT %s, %s, %s, %s, %s, %s
                 WHERE %s + (SELECT COUNT(*) FROM {_t(Lease)} h
                             WHERE h.pair_id = %s AND h.expires_at > %s) < %s
                 RETURNING id"""
    if vendor != "postgresql":
        return insert
    # The lease's id and its Pair's content, read by the statement that inserts it.
    content = _content_sql(columns_before="leased.id, ", tables_before="leased, ")
    return f"WITH leased AS ({insert}) {content}"


@dataclass(frozen=True)
class _Columns:
    """Some columns of one model's table, as a statement reads them (in the model's field
    order) and as the ORM converts them."""

    model: type[Model]
    sql: str
    attnames: tuple[str, ...]
    converters: tuple[tuple[Any, tuple[Callable, ...]], ...]

    def instance(self, values: Sequence[Any]) -> Model:
        """The instance these values were read for; the columns not read are deferred."""
        db = _db()
        converted = list(values)
        for i, (expression, steps) in enumerate(self.converters):
            for convert in steps:
                converted[i] = convert(converted[i], expression, db)
        return self.model.from_db(db.alias, self.attnames, converted)


@cache
def _columns(model: type[Model], alias: str, vendor: str, *read: str) -> _Columns:
    """`read` (attnames; none: every column) of `model`, under the table alias `alias`; the
    primary key is always read."""
    fields = [
        f for f in model._meta.concrete_fields if not read or f.primary_key or f.attname in read
    ]
    unknown = set(read) - {f.attname for f in fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no columns {sorted(unknown)}")
    db = _db()
    sql = ", ".join(f"{alias}.{db.ops.quote_name(f.column)}" for f in fields)
    # What the ORM's compiler applies to each value: the backend's conversions (SQLite's
    # booleans and aware datetimes) and the field's own (JSON).
    converters = tuple(
        (
            f.cached_col,
            tuple(db.ops.get_db_converters(f.cached_col))
            + tuple(f.cached_col.get_db_converters(db)),
        )
        for f in fields
    )
    return _Columns(model, sql, tuple(f.attname for f in fields), converters)


def _whole(model: type[Model], **values: Any) -> Model:
    """An instance of a row just written, every column known, as if read from the database
    (a missing column is a KeyError, never a default)."""
    attnames = [f.attname for f in model._meta.concrete_fields]
    return model.from_db(_db().alias, attnames, [values[a] for a in attnames])


# What the hot path reads of a Pair and of the content shown with it.
_PAIR_READ = (
    "project_id",
    "prompt_id",
    "response_a_id",
    "response_b_id",
    "gold",
    "is_open",
    "human_count",
)
_PROMPT_READ = ("project_id", "messages")
# What a submission reads of its Project: the label scale it is checked against, the
# redundancy, and the slug it answers with. The rest (the instructions, the training and
# quality settings) stays deferred: all 26 columns, four of them JSON, made the read a third
# slower.
_PROJECT_READ = (
    "slug",
    "redundancy",
    "allow_tie",
    "allow_both_bad",
    "ask_strength",
    "strength_labels",
    "reason_tags",
)
_RESPONSE_READ = ("prompt_id", "text")


def _content_columns() -> tuple[_Columns, _Columns, _Columns, _Columns]:
    vendor = _db().vendor
    return (
        _columns(Pair, "p", vendor, *_PAIR_READ),
        _columns(Prompt, "q", vendor, *_PROMPT_READ),
        _columns(Response, "a", vendor, *_RESPONSE_READ),
        _columns(Response, "b", vendor, *_RESPONSE_READ),
    )


def _content_sql(columns_before: str = "", tables_before: str = "") -> str:
    selected = ", ".join(columns.sql for columns in _content_columns())
    return f"""SELECT {columns_before}{selected}
               FROM {tables_before}{_t(Pair)} p
               JOIN {_t(Prompt)} q ON q.id = p.prompt_id
               JOIN {_t(Response)} a ON a.id = p.response_a_id
               JOIN {_t(Response)} b ON b.id = p.response_b_id
               WHERE p.id = %s"""


def _split(row: Sequence[Any], *parts: _Columns) -> list[Model]:
    """One instance per part, each from its own slice of the row."""
    found, start = [], 0
    for columns in parts:
        end = start + len(columns.attnames)
        found.append(columns.instance(row[start:end]))
        start = end
    return found


def _pair_from_content(row: Sequence[Any]) -> Pair:
    pair, prompt, a, b = _split(row, *_content_columns())
    pair.prompt, pair.response_a, pair.response_b = prompt, a, b
    return pair


def pair_with_content(pair_id: int) -> Pair:
    """A Pair with its Prompt and both Responses attached, in one read."""
    with _db().cursor() as cursor:
        cursor.execute(_content_sql(), [pair_id])
        return _pair_from_content(cursor.fetchone())


def pair_lock(*, pair_id: int, member_id: int | None) -> Pair | None:
    """The Pair with its Project attached, the Pair row-locked; with `member_id`, only if it
    is on one of that user's projects. None when there is no such Pair."""
    db = _db()
    pair_columns = _columns(Pair, "p", db.vendor, *_PAIR_READ)
    project_columns = _columns(Project, "pr", db.vendor, *_PROJECT_READ)
    member = ""
    params: list[Any] = [pair_id]
    if member_id is not None:
        member = f""" AND EXISTS (SELECT 1 FROM {_t(Membership)} m
                                  WHERE m.project_id = p.project_id AND m.user_id = %s)"""
        params.append(member_id)
    with db.cursor() as cursor:
        cursor.execute(
            f"""SELECT {pair_columns.sql}, {project_columns.sql}
                FROM {_t(Pair)} p JOIN {_t(Project)} pr ON pr.id = p.project_id
                WHERE p.id = %s{member}{_row_lock("p")}""",
            params,
        )
        row = cursor.fetchone()
    if row is None:
        return None
    pair, project = _split(row, pair_columns, project_columns)
    pair.project = project
    return pair


def labeler_state(*, pair_id: int, labeler_id: int, now: datetime) -> dict[str, Any]:
    """What a submission needs to know about this labeler and this Pair, in one read: their
    existing Comparison (not a repeat), their Lease (left side, live or not, repeat or not),
    and how many live Leases others hold on it."""
    now_value = _now(now)
    with _db().cursor() as cursor:
        cursor.execute(
            f"""SELECT
                  (SELECT c.id FROM {_t(Comparison)} c WHERE c.pair_id = %s
                     AND c.labeler_id = %s AND NOT c.is_repeat),
                  l."left",
                  CASE WHEN l.expires_at > %s THEN 1 ELSE 0 END,
                  l.is_repeat,
                  (SELECT COUNT(*) FROM {_t(Lease)} o WHERE o.pair_id = %s
                     AND o.expires_at > %s AND o.labeler_id <> %s)
                FROM (SELECT 1 AS one) AS here
                LEFT JOIN {_t(Lease)} l ON l.pair_id = %s AND l.labeler_id = %s""",
            [pair_id, labeler_id, now_value, pair_id, now_value, labeler_id, pair_id, labeler_id],
        )
        existing, left, live, repeat, others_live = cursor.fetchone()
    return {
        "existing": existing,
        "lease_left": left,
        "lease_live": bool(live) and left is not None,
        "lease_repeat": bool(repeat),
        "others_live": others_live,
    }


def judgment_write(
    *, comparison: Comparison, pair_counts: tuple[int, bool] | None, had_lease: bool
) -> Comparison:
    """Store a new Comparison and move what it moves, all or nothing: the Pair's
    (human_count, is_open) when it counts toward the redundancy and the labeler's Lease gone.

    On PostgreSQL that is one statement (the writes ride along as WITH clauses); SQLite runs
    them one by one.
    """
    writes: list[tuple[str, str, list[Any]]] = []
    if pair_counts is not None:
        writes.append(
            (
                "pair_counted",
                f"UPDATE {_t(Pair)} SET human_count = %s, is_open = %s WHERE id = %s",
                [*pair_counts, comparison.pair_id],
            )
        )
    if had_lease:
        writes.append(
            (
                "lease_done",
                f"DELETE FROM {_t(Lease)} WHERE pair_id = %s AND labeler_id = %s",
                [comparison.pair_id, comparison.labeler_id],
            )
        )
    if connection.vendor == "postgresql":
        return row_insert(comparison, along=writes)
    row_insert(comparison)
    with connection.cursor() as cursor:
        for _, sql, params in writes:
            cursor.execute(sql, params)
    return comparison


@cache
def _insert_sql(model: type[Model], vendor: str) -> tuple[str, tuple[Field, ...]]:
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    values = ", ".join(["%s"] * len(fields))
    pk = connection.ops.quote_name(model._meta.pk.column)
    return f"INSERT INTO {_t(model)} ({columns}) VALUES ({values}) RETURNING {pk}", fields


def row_insert(instance: Model, along: Sequence[tuple[str, str, list[Any]]] = ()) -> Model:
    """INSERT one new model instance, with each field's own defaults and conversions
    (auto_now_add, JSON, datetimes) but without composing the statement each time. Sends no
    signals (this project connects none to the models written here).

    `along`: (name, statement, params) writes that run in the same statement as WITH clauses
    (PostgreSQL only)."""
    db = _db()
    sql, fields = _insert_sql(type(instance), db.vendor)
    params = [value for _, _, values in along for value in values]
    params += [f.get_db_prep_save(f.pre_save(instance, True), db) for f in fields]
    if along:
        sql = "WITH " + ", ".join(f"{name} AS ({write})" for name, write, _ in along) + " " + sql
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = db.alias
    return instance
