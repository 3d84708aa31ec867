"""The statements of the labeling hot path, in plain SQL: find the next Pair for a labeler,
read a labeler's state on a locked Pair, and write the rows a judgment moves. Private to
annotate/services/labeling.py, the only app module that imports it.

Every lease and every submission runs these. Built through the ORM, composing each
statement cost several times the CPU that the database spent running it, and a labeling
server is bound by exactly that CPU (bench/labeling_load.py). Written once here, the text is
also identical from call to call, so PostgreSQL prepares it and plans it once per connection
(config/settings.py). The rules these statements serve live in labeling.py; this module only
reads and writes rows, and runs unchanged on PostgreSQL and SQLite.

What it returns is plain data built from the row: ids, counts and small frozen dataclasses
holding the values the ORM would give (parsed JSON, booleans), never model instances.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from annotate.models import (
    DEFAULT_STRENGTH_LABELS,
    Comparison,
    Lease,
    Membership,
    Pair,
    Project,
    Prompt,
    Response,
)
from annotate.selectors.judge_first import settled_sql


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


@cache
def _candidate_sql(vendor: str, random_order: bool, judge_first: bool) -> str:
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
    # Judge-first: minus the Pairs the AI judges settled (annotate.selectors.judge_first).
    settled = f"\n          AND NOT {settled_sql(_db().ops.quote_name)}" if judge_first else ""
    return f"""
        SELECT p.id, p.human_count FROM {_t(Pair)} p
        WHERE p.project_id = %s AND p.is_open AND p.gold = ''
          AND NOT EXISTS (SELECT 1 FROM {_t(Comparison)} c
                          WHERE c.pair_id = p.id AND c.labeler_id = %s AND NOT c.is_repeat{fence})
          AND NOT EXISTS (SELECT 1 FROM {_t(Lease)} s
                          WHERE s.pair_id = p.id AND s.labeler_id = %s{fence})
          AND p.human_count + COALESCE((SELECT COUNT(*) FROM {_t(Lease)} h
                                        WHERE h.pair_id = p.id AND h.expires_at > %s), 0) < %s{settled}
        ORDER BY {order} LIMIT 1{skip}"""


def _candidate_params(
    project_id: int, labeler_id: int, redundancy: int, now: datetime, judge_sure: float | None
) -> list[Any]:
    params = [project_id, labeler_id, labeler_id, _now(now), redundancy]
    return params if judge_sure is None else [*params, judge_sure]


def candidate_sql(*, random_order: bool, judge_first: bool = False) -> str:
    """The candidate statement as the database at hand runs it (tests read its plan)."""
    return _candidate_sql(connection.vendor, random_order, judge_first)


def candidate_next(
    *,
    project_id: int,
    labeler_id: int,
    redundancy: int,
    now: datetime,
    random_order: bool,
    judge_sure: float | None = None,
) -> tuple[int, int] | None:
    """(pair id, human count) of the first Pair in queue order this labeler may be served,
    row-locked; SKIP LOCKED passes over Pairs a concurrent labeler is leasing right now.
    With `judge_sure` (judge-first), minus the Pairs the AI judges settled with at least that
    P(their choice)."""
    with connection.cursor() as cursor:
        cursor.execute(
            candidate_sql(random_order=random_order, judge_first=judge_sure is not None),
            _candidate_params(project_id, labeler_id, redundancy, now, judge_sure),
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
    judge_sure: float | None = None,
) -> str:
    """The database's plan for the candidate read (a test and the load benchmark show it)."""
    if connection.vendor == "postgresql":
        explain = "EXPLAIN (ANALYZE) " if analyze else "EXPLAIN "
    else:
        explain = "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(
            explain + candidate_sql(random_order=random_order, judge_first=judge_sure is not None),
            _candidate_params(project_id, labeler_id, redundancy, now, judge_sure),
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


@dataclass(frozen=True)
class ShownResponse:
    """One Response of a Pair as a labeler is shown it."""

    id: int
    text: str


@dataclass(frozen=True)
class PairContent:
    """What a labeler is shown of a Pair: its prompt's conversation and both responses."""

    pair_id: int
    messages: list[dict[str, Any]]
    response_a: ShownResponse
    response_b: ShownResponse


# The content columns, in the order _content_from reads them.
_CONTENT_COLUMNS = "p.id, q.messages, a.id, a.text, b.id, b.text"


def _content_from(row: Sequence[Any]) -> PairContent:
    # JSON arrives as text on both databases (Django has psycopg hand jsonb over unparsed, as
    # SQLite does); json.loads is what JSONField.from_db_value applies.
    pair_id, messages, a_id, a_text, b_id, b_text = row
    return PairContent(
        pair_id=pair_id,
        messages=json.loads(messages),
        response_a=ShownResponse(a_id, a_text),
        response_b=ShownResponse(b_id, b_text),
    )


def lease_insert_if_free(
    *,
    pair_id: int,
    human_count: int,
    redundancy: int,
    labeler_id: int,
    left: str,
    expires_at: datetime,
    now: datetime,
) -> tuple[int, PairContent] | None:
    """Lease the row-locked candidate unless its human Comparisons plus live Leases already
    reach the redundancy (None then); (the new Lease's id, its Pair's content) otherwise.

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
    content = _content_from(row[1:]) if with_content else pair_content(pair_id)
    return row[0], content


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


def _content_sql(columns_before: str = "", tables_before: str = "") -> str:
    return f"""SELECT {columns_before}{_CONTENT_COLUMNS}
               FROM {tables_before}{_t(Pair)} p
               JOIN {_t(Prompt)} q ON q.id = p.prompt_id
               JOIN {_t(Response)} a ON a.id = p.response_a_id
               JOIN {_t(Response)} b ON b.id = p.response_b_id
               WHERE p.id = %s"""


def pair_content(pair_id: int) -> PairContent:
    """A Pair's prompt and both Responses, in one read."""
    with _db().cursor() as cursor:
        cursor.execute(_content_sql(), [pair_id])
        return _content_from(cursor.fetchone())


@dataclass(frozen=True)
class LockedPair:
    """A Pair as a submission checks it, with the label scale of its Project. Only the
    project's scale, redundancy and slug are read: all 26 columns, four of them JSON, made
    the read a third slower."""

    id: int
    project_id: int
    response_a_id: int
    response_b_id: int
    gold: str
    is_open: bool
    human_count: int
    project_slug: str
    redundancy: int
    allow_tie: bool
    allow_both_bad: bool
    ask_strength: bool
    strength_labels: list[str]
    reason_tags: list[str]

    @property
    def strength_scale(self) -> list[str]:
        """As Project.strength_scale."""
        return list(self.strength_labels) or list(DEFAULT_STRENGTH_LABELS)


@cache
def _pair_lock_sql(vendor: str, member: bool) -> str:
    member_sql = ""
    if member:
        member_sql = f""" AND EXISTS (SELECT 1 FROM {_t(Membership)} m
                                      WHERE m.project_id = p.project_id AND m.user_id = %s)"""
    # SQLite has no row locks: its writers are serialized by the IMMEDIATE transactions the
    # settings ask for, so the same read-then-write is safe there without them.
    lock = " FOR UPDATE OF p" if vendor == "postgresql" else ""
    return f"""SELECT p.id, p.project_id, p.response_a_id, p.response_b_id, p.gold, p.is_open,
                      p.human_count, pr.slug, pr.redundancy, pr.allow_tie, pr.allow_both_bad,
                      pr.ask_strength, pr.strength_labels, pr.reason_tags
               FROM {_t(Pair)} p JOIN {_t(Project)} pr ON pr.id = p.project_id
               WHERE p.id = %s{member_sql}{lock}"""


def pair_lock(*, pair_id: int, member_id: int | None) -> LockedPair | None:
    """The Pair with its Project's scale, the Pair row-locked; with `member_id`, only if it
    is on one of that user's projects. None when there is no such Pair."""
    db = _db()
    params: list[Any] = [pair_id] if member_id is None else [pair_id, member_id]
    with db.cursor() as cursor:
        cursor.execute(_pair_lock_sql(db.vendor, member_id is not None), params)
        row = cursor.fetchone()
    if row is None:
        return None
    (id_, project_id, a_id, b_id, gold, is_open, human_count) = row[:7]
    slug, redundancy, allow_tie, allow_both_bad, ask_strength, labels, tags = row[7:]
    # SQLite answers booleans as 0/1 and both databases JSON as text (see _content_from).
    return LockedPair(
        id=id_,
        project_id=project_id,
        response_a_id=a_id,
        response_b_id=b_id,
        gold=gold,
        is_open=bool(is_open),
        human_count=human_count,
        project_slug=slug,
        redundancy=redundancy,
        allow_tie=bool(allow_tie),
        allow_both_bad=bool(allow_both_bad),
        ask_strength=bool(ask_strength),
        strength_labels=json.loads(labels),
        reason_tags=json.loads(tags),
    )


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


@dataclass(frozen=True)
class NewComparison:
    """The columns of a Comparison a labeler makes, every one given (no model defaults are
    looked up): what comparison_insert writes."""

    pair_id: int
    project_id: int
    labeler_id: int
    choice: str
    strength: int | None
    reasons: list[str]
    comment: str
    left: str
    time_spent_ms: int | None
    is_repeat: bool
    is_gold_check: bool
    random_key: float
    created_at: datetime


# Written in this order; the columns a labeler's Comparison leaves at their defaults follow
# as constants (source 'human', no import batch, file, key or judge's probability). A test
# holds this list to the model's columns, so a column added later is added here too.
COMPARISON_COLUMNS = (
    "pair_id",
    "project_id",
    "labeler_id",
    "choice",
    "strength",
    "reasons",
    "comment",
    "left",
    "time_spent_ms",
    "is_repeat",
    "is_gold_check",
    "random_key",
    "created_at",
    "source",
    "import_batch_id",
    "import_file",
    "import_key",
    "p_chosen",
)


@cache
def _comparison_insert_sql() -> str:
    # Written out instead of Comparison.objects.create(): the ORM's INSERT cost more CPU
    # than the rest of a submission, and on PostgreSQL the judgment's other writes ride in
    # this same statement (judgment_write).
    columns = ", ".join(f'"{c}"' for c in COMPARISON_COLUMNS)
    values = ", ".join(["%s"] * 13) + ", 'human', NULL, '', '', NULL"
    return f"INSERT INTO {_t(Comparison)} ({columns}) VALUES ({values}) RETURNING id"


def _comparison_params(new: NewComparison) -> list[Any]:
    return [
        new.pair_id,
        new.project_id,
        new.labeler_id,
        new.choice,
        new.strength,
        # As JSONField stores it: JSON text (PostgreSQL casts the untyped parameter to jsonb).
        json.dumps(new.reasons),
        new.comment,
        new.left,
        new.time_spent_ms,
        new.is_repeat,
        new.is_gold_check,
        new.random_key,
        _now(new.created_at),
    ]


def comparison_insert(new: NewComparison) -> int:
    """INSERT one Comparison on its own; its id."""
    with _db().cursor() as cursor:
        cursor.execute(_comparison_insert_sql(), _comparison_params(new))
        return cursor.fetchone()[0]


def judgment_write(
    *, new: NewComparison, pair_counts: tuple[int, bool] | None, had_lease: bool
) -> int:
    """Store a new Comparison and move what it moves, all or nothing: the Pair's
    (human_count, is_open) when it counts toward the redundancy and the labeler's Lease gone.
    Returns the Comparison's id.

    On PostgreSQL that is one statement (the writes ride along as WITH clauses); SQLite runs
    them one by one.
    """
    writes: list[tuple[str, str, list[Any]]] = []
    if pair_counts is not None:
        writes.append(
            (
                "pair_counted",
                f"UPDATE {_t(Pair)} SET human_count = %s, is_open = %s WHERE id = %s",
                [*pair_counts, new.pair_id],
            )
        )
    if had_lease:
        writes.append(
            (
                "lease_done",
                f"DELETE FROM {_t(Lease)} WHERE pair_id = %s AND labeler_id = %s",
                [new.pair_id, new.labeler_id],
            )
        )
    db = _db()
    if db.vendor != "postgresql":
        comparison_id = comparison_insert(new)
        with db.cursor() as cursor:
            for _, sql, params in writes:
                cursor.execute(sql, params)
        return comparison_id
    along = ", ".join(f"{name} AS ({write})" for name, write, _ in writes)
    sql = f"WITH {along} {_comparison_insert_sql()}" if writes else _comparison_insert_sql()
    params = [value for _, _, values in writes for value in values] + _comparison_params(new)
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]
