"""The AI judges' verdict kept on each Pair (Pair.judges_choice, Pair.judges_min_p): what
judge-first's rule reads (annotate.selectors.judge_first), recounted here alone, from the
pair's comparisons, wherever what it summarizes changes: a judge's comparison stored, edited or
deleted, a judge's membership excluded, included or deleted.

Concurrent writers must not leave a verdict that misses another's change. A writer of judges'
comparisons holds its pairs' row locks (judge_comparison_make, pairs_verdict_recounted); the
recount then waits for any membership change in flight (FOR SHARE), and a membership change
locks the pairs it will recount before it changes the memberships
(memberships_verdict_recounted): the locks are always taken pairs first, then memberships.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet

from annotate.models import Comparison, Membership, Pair

# Pair ids bound per statement when a list is given: under SQLite's oldest limit on variables.
CHUNK = 900


def judges_verdict_refresh(*, pair_ids: Iterable[int] | QuerySet) -> int:
    """Recount the judges' verdict of these Pairs from their comparisons: one UPDATE ... FROM
    (the aggregate of their counted judges' comparisons) per statement, on SQLite and
    PostgreSQL alike. `pair_ids`: ids, or a one-column QuerySet of them (then the statement
    reads it itself). Returns how many Pairs' verdicts changed.

    Counted, as judge-first counts them: source ai_judge, not a repeat, by an account whose
    membership of the pair's project staff did not exclude. The choice is the one they all
    made ("" with none, "split" when they differ); the smallest P(its choice) reads a missing
    one as 0."""
    if isinstance(pair_ids, QuerySet):
        sql, params = pair_ids.query.sql_with_params()
        return _recount(sql, list(params))
    ids = sorted(set(pair_ids))
    changed = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        changed += _recount(", ".join(["%s"] * len(chunk)), chunk)
    return changed


def judged_pair_ids(*, project_ids: Iterable[int], user_ids: Iterable[int]) -> QuerySet:
    """The pairs of these projects that these accounts judged as AI judges (a one-column
    QuerySet of ids): those whose verdict a change to their memberships can move."""
    return Comparison.objects.filter(
        source=Comparison.Source.AI_JUDGE,
        labeler_id__in=list(user_ids),
        project_id__in=list(project_ids),
    ).values("pair_id")


@contextmanager
def pairs_verdict_recounted(*, pair_ids: Iterable[int]) -> Iterator[None]:
    """Around a change to these pairs' judges' comparisons (an edit or deletion by staff):
    their row locks first, their verdicts recounted after, in one transaction."""
    ids = sorted(set(pair_ids))
    with transaction.atomic():
        _lock_pairs(ids)
        yield
        judges_verdict_refresh(pair_ids=ids)


@contextmanager
def memberships_verdict_recounted(
    *, project_ids: Iterable[int], user_ids: Iterable[int]
) -> Iterator[None]:
    """Around a change to these accounts' memberships of these projects (excluded, included,
    deleted): the row locks of the pairs they judged as AI judges first, then the change, then
    those pairs' verdicts recounted, in one transaction. A person's membership locks nothing:
    they have no judges' comparisons."""
    judged = judged_pair_ids(project_ids=project_ids, user_ids=user_ids)
    with transaction.atomic():
        ids = sorted(set(judged.values_list("pair_id", flat=True)))
        _lock_pairs(ids)
        yield
        # Read again: a judge's comparison committed meanwhile (its writer waited on the
        # membership this transaction changed, or this one on its lock) counts too.
        judges_verdict_refresh(pair_ids=judged)


def _lock_pairs(ids: list[int]) -> None:
    """Row locks on these pairs, in id order (so two lockers never wait on each other)."""
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        list(
            Pair.objects.select_for_update(of=("self",))
            .filter(pk__in=chunk)
            .order_by("pk")
            .values_list("pk", flat=True)
        )


def _recount(ids_sql: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Wait for a change in flight to the memberships this recount reads (SQLite runs
            # one writer at a time).
            cursor.execute(_lock_memberships_sql(ids_sql), params)
        cursor.execute(_recount_sql(ids_sql), params)
        return cursor.rowcount


def _names() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "pairs": quote(Pair._meta.db_table),
        "comparisons": quote(Comparison._meta.db_table),
        "memberships": quote(Membership._meta.db_table),
    }


def _lock_memberships_sql(ids_sql: str) -> str:
    t = _names()
    return f"""SELECT m.id FROM {t["memberships"]} m
               WHERE EXISTS (SELECT 1 FROM {t["comparisons"]} j
                             WHERE j.pair_id IN ({ids_sql}) AND j.source = 'ai_judge'
                               AND j.labeler_id = m.user_id AND j.project_id = m.project_id)
               ORDER BY m.id FOR SHARE OF m"""


def _recount_sql(ids_sql: str) -> str:
    """The verdict of each listed Pair (a Pair without counted comparisons gives one group of
    its own, from the LEFT JOIN: "" and NULL), written only where it changed."""
    t = _names()
    return f"""
        UPDATE {t["pairs"]} AS t
        SET judges_choice = v.choice, judges_min_p = v.min_p
        FROM (SELECT p.id AS pair_id,
                     CASE WHEN COUNT(j.id) = 0 THEN ''
                          WHEN MIN(j.choice) = MAX(j.choice) THEN MIN(j.choice)
                          ELSE 'split' END AS choice,
                     CASE WHEN COUNT(j.id) = 0 THEN NULL
                          ELSE MIN(COALESCE(j.p_chosen, 0)) END AS min_p
              FROM {t["pairs"]} p
              LEFT JOIN {t["comparisons"]} j
                ON j.pair_id = p.id AND j.source = 'ai_judge' AND NOT j.is_repeat
               AND NOT EXISTS (SELECT 1 FROM {t["memberships"]} m
                               WHERE m.project_id = p.project_id AND m.user_id = j.labeler_id
                                 AND m.excluded)
              WHERE p.id IN ({ids_sql})
              GROUP BY p.id) v
        WHERE t.id = v.pair_id
          AND (t.judges_choice <> v.choice OR (t.judges_min_p IS NULL) <> (v.min_p IS NULL)
               OR t.judges_min_p <> v.min_p)"""
