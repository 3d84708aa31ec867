"""A project's comparisons aggregated in the database for its quality figures: GROUP BY
queries over pairs and labelers whose answers have one row per pair, per labeler or per
pattern, never one per comparison (a million comparisons are 100,000 pair rows here).

Who counts follows annotate.selectors.quality: a judgment is a person's comparison (neither a
staff adjudication nor an AI judge's); a counted vote is a first judgment (not a swapped
repeat) of a labeler who is not excluded, or an anonymous import. AI judges' comparisons are
measured apart, against those votes (judge_counts).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.db import connection

from annotate.models import Comparison, Judge, JudgeVerdict, Pair, Response
from annotate.quality.judges import JudgeCounts
from annotate.quality.labelers import BREAK, LabelerCounts
from annotate.selectors.judge_first import settled_sql

C, P, R = Comparison._meta.db_table, Pair._meta.db_table, Response._meta.db_table
J, V = Judge._meta.db_table, JudgeVerdict._meta.db_table
# Canonical choices in sorted order: the columns of the nominal counts.
CHOICES = ("a", "b", "both_bad", "tie")
SIGNED = (
    "CASE WHEN c.choice = 'a' THEN COALESCE(c.strength, 1) "
    "WHEN c.choice = 'b' THEN -COALESCE(c.strength, 1) WHEN c.choice = 'tie' THEN 0 END"
)
LEFT = connection.ops.quote_name("left")
ORDER = connection.ops.quote_name("order")
# People's judgments: staff rulings settle pairs and AI judges are measured apart, so neither
# enters the agreement, the labelers' figures or the leaderboard.
PEOPLE = "c.source NOT IN ('adjudication', 'ai_judge')"


def _rows(sql: str, params: Iterable) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def _judgments(excluded: Iterable[int] = (), *, counted: bool = False) -> tuple[str, list]:
    """WHERE clause (alias c, first parameter the project id) of a project's judgments, or of
    its counted votes."""
    where = f"c.project_id = %s AND {PEOPLE}"
    params: list = []
    excluded = sorted(excluded)
    if counted:
        where += " AND NOT c.is_repeat"
        if excluded:
            marks = ", ".join(["%s"] * len(excluded))
            where += f" AND (c.labeler_id IS NULL OR c.labeler_id NOT IN ({marks}))"
            params = excluded
    return where, params


@dataclass
class PairVotes:
    """The counted votes of each pair with any, pairs in the order of their first counted
    vote (the comparison ids' order)."""

    pair_ids: np.ndarray
    choices: np.ndarray  # pairs x CHOICES: votes of each choice
    first_of: np.ndarray  # pairs x CHOICES: the first vote's id of each choice (-1: none)
    signed_values: tuple[int, ...]  # sorted
    signed: np.ndarray  # pairs x signed_values: A/B/tie votes on the signed strength scale
    model_p_a: np.ndarray  # NaN where the pair has no model view
    settled: np.ndarray  # marked ambiguous or adjudicated: not for review


def pair_votes(project_id: int, excluded: Iterable[int]) -> PairVotes:
    where, params = _judgments(excluded, counted=True)
    values = sorted(
        v
        for (v,) in _rows(
            f"SELECT DISTINCT {SIGNED} FROM {C} c WHERE {where} AND c.choice <> 'both_bad'",
            [project_id, *params],
        )
    )
    columns = [
        *(f"SUM(CASE WHEN c.choice = '{k}' THEN 1 ELSE 0 END)" for k in CHOICES),
        *(f"COALESCE(MIN(CASE WHEN c.choice = '{k}' THEN c.id END), -1)" for k in CHOICES),
        *(f"SUM(CASE WHEN {SIGNED} = {int(v)} THEN 1 ELSE 0 END)" for v in values),
    ]
    rows = _rows(
        f"SELECT c.pair_id, MIN(c.id), MAX(p.model_p_a), MAX(CASE WHEN p.ambiguous THEN 1 "
        f"ELSE 0 END), {', '.join(columns)} FROM {C} c JOIN {P} p ON p.id = c.pair_id "
        f"WHERE {where} GROUP BY c.pair_id",
        [project_id, *params],
    )
    table = np.array(
        [tuple(np.nan if x is None else x for x in row) for row in rows], dtype=float
    ).reshape(len(rows), 4 + 2 * len(CHOICES) + len(values))
    table = table[np.argsort(table[:, 1], kind="stable")]
    adjudicated = {
        pair_id
        for (pair_id,) in _rows(
            f"SELECT DISTINCT c.pair_id FROM {C} c WHERE c.project_id = %s "
            "AND c.source = 'adjudication'",
            [project_id],
        )
    }
    pair_ids = table[:, 0].astype(np.int64)
    k = len(CHOICES)
    return PairVotes(
        pair_ids=pair_ids,
        choices=table[:, 4 : 4 + k].astype(np.int64),
        first_of=table[:, 4 + k : 4 + 2 * k].astype(np.int64),
        signed_values=tuple(int(v) for v in values),
        signed=table[:, 4 + 2 * k :].astype(np.int64),
        model_p_a=table[:, 2],
        settled=(table[:, 3] > 0) | np.isin(pair_ids, list(adjudicated)),
    )


def battle_counts(project_id: int, excluded: Iterable[int]) -> list[tuple[str, str, str, int, int]]:
    """(model of response_a, of response_b, choice, counted votes, first occurrence key) per
    group: the key orders groups as the votes first show them (pairs by their first counted
    vote, then votes by id)."""
    where, params = _judgments(excluded, counted=True)
    return _rows(
        f"WITH v AS (SELECT c.id, c.pair_id, c.choice FROM {C} c WHERE {where}), "
        "f AS (SELECT pair_id, MIN(id) AS first_id FROM v GROUP BY pair_id) "
        "SELECT ra.model_name, rb.model_name, v.choice, COUNT(*), "
        "MIN(f.first_id * 4294967296 + v.id) "
        f"FROM v JOIN f ON f.pair_id = v.pair_id JOIN {P} p ON p.id = v.pair_id "
        f"JOIN {R} ra ON ra.id = p.response_a_id JOIN {R} rb ON rb.id = p.response_b_id "
        "GROUP BY ra.model_name, rb.model_name, v.choice",
        [project_id, *params],
    )


def _majority_without(counts: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Per row of choice counts, the index of the strictly most voted choice once one vote for
    `own` (an index, or -1 for none) is left out; -1 when the top is shared or empty."""
    counts = counts.copy()
    rows = np.flatnonzero(own >= 0)
    counts[rows, own[rows]] -= 1
    top = counts.max(1)
    shared = (counts == top[:, None]).sum(1) > 1
    return np.where((top > 0) & ~shared, counts.argmax(1), -1)


def labeler_counts(project_id: int, excluded: Iterable[int]) -> dict[int, LabelerCounts]:
    """Each labeler's LabelerCounts (see annotate.quality.labelers.labeler_counts, whose
    definitions these queries follow)."""
    excluded = set(excluded)
    judged, _ = _judgments()
    out: dict[int, LabelerCounts] = {}
    for labeler, first, repeats, left_n, left_k in _rows(
        "SELECT c.labeler_id, SUM(CASE WHEN c.is_repeat THEN 0 ELSE 1 END), "
        "SUM(CASE WHEN c.is_repeat THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN c.choice IN ('a', 'b') AND c.{LEFT} IN ('a', 'b') THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN c.choice IN ('a', 'b') AND c.choice = c.{LEFT} THEN 1 ELSE 0 END) "
        f"FROM {C} c WHERE {judged} AND c.labeler_id IS NOT NULL GROUP BY c.labeler_id",
        [project_id],
    ):
        out[labeler] = LabelerCounts(
            comparisons=int(first), repeats=int(repeats), left_n=int(left_n), left_k=int(left_k)
        )
    _facts(project_id, out)
    _agreement(project_id, excluded, out)
    _consistency(project_id, out)
    _median_seconds(project_id, out)
    _active_seconds(project_id, out)
    return out


# Each pair's gold answer, model view and longer response ("a", "b", NULL when equal), as the
# CTE `longer` (first parameter the project id); the four sums over its join `f` below count
# gold judgments, right ones, A/B choices on pairs of unequal lengths and those of the longer.
LONGER = (
    "WITH longer AS (SELECT p.id, p.gold, p.model_p_a, CASE "
    "WHEN LENGTH(ra.text) > LENGTH(rb.text) THEN 'a' "
    "WHEN LENGTH(rb.text) > LENGTH(ra.text) THEN 'b' END AS longer "
    f"FROM {P} p JOIN {R} ra ON ra.id = p.response_a_id "
    f"JOIN {R} rb ON rb.id = p.response_b_id WHERE p.project_id = %s)"
)
AB = "c.choice IN ('a', 'b')"
GOLD_AND_LONGER = (
    "SUM(CASE WHEN f.gold <> '' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN f.gold <> '' AND c.choice = f.gold THEN 1 ELSE 0 END), "
    f"SUM(CASE WHEN {AB} AND f.longer IS NOT NULL THEN 1 ELSE 0 END), "
    f"SUM(CASE WHEN {AB} AND c.choice = f.longer THEN 1 ELSE 0 END)"
)


def _facts(project_id: int, out: dict[int, LabelerCounts]) -> None:
    """Gold accuracy, longer-response choices and agreement with the model, per labeler."""
    judged, _ = _judgments()
    for labeler, *values in _rows(
        f"{LONGER} SELECT c.labeler_id, "
        f"{GOLD_AND_LONGER}, "
        f"SUM(CASE WHEN {AB} AND f.model_p_a IS NOT NULL AND f.model_p_a <> 0.5 "
        "THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN (c.choice = 'a' AND f.model_p_a > 0.5) "
        "OR (c.choice = 'b' AND f.model_p_a < 0.5) THEN 1 ELSE 0 END) "
        f"FROM {C} c JOIN longer f ON f.id = c.pair_id "
        f"WHERE {judged} AND NOT c.is_repeat AND c.labeler_id IS NOT NULL "
        "GROUP BY c.labeler_id",
        [project_id, project_id],
    ):
        c = out[labeler]
        c.gold_n, c.gold_right, c.longer_n, c.longer_k, c.model_n, c.model_agree = map(int, values)


def _votes_per_pair(excluded: Iterable[int]) -> tuple[str, str, list]:
    """`WITH v AS (...)`: each pair's counted votes per choice (columns n0.., in CHOICES'
    order; its first parameter the project id), the columns as `v.n0, ...`, and the
    parameters after the project id."""
    counted, params = _judgments(excluded, counted=True)
    sums = ", ".join(
        f"SUM(CASE WHEN c.choice = '{k}' THEN 1 ELSE 0 END) AS n{i}" for i, k in enumerate(CHOICES)
    )
    names = ", ".join(f"v.n{i}" for i in range(len(CHOICES)))
    cte = f"WITH v AS (SELECT c.pair_id, {sums} FROM {C} c WHERE {counted} GROUP BY c.pair_id)"
    return cte, names, params


def _agreement(project_id: int, excluded: set[int], out: dict[int, LabelerCounts]) -> None:
    """Agreement with the others' majority: each first judgment grouped with its pair's
    counted votes (one row per labeler, choice and pattern of votes)."""
    votes, names, params = _votes_per_pair(excluded)
    judged, _ = _judgments()
    rows = _rows(
        f"{votes} SELECT c.labeler_id, c.choice, {names}, COUNT(*) FROM {C} c "
        f"LEFT JOIN v ON v.pair_id = c.pair_id WHERE {judged} AND NOT c.is_repeat "
        f"AND c.labeler_id IS NOT NULL GROUP BY c.labeler_id, c.choice, {names}",
        [project_id, *params, project_id],
    )
    if not rows:
        return
    k = len(CHOICES)
    labelers = np.array([row[0] for row in rows])
    choice = np.array([CHOICES.index(row[1]) for row in rows])
    votes = np.array([[n or 0 for n in row[2 : 2 + k]] for row in rows], dtype=np.int64)
    n = np.array([row[-1] for row in rows], dtype=np.int64)
    counted_own = ~np.isin(labelers, list(excluded))
    majority = _majority_without(votes, np.where(counted_own, choice, -1))
    decided = majority >= 0
    for labeler in np.unique(labelers):
        mine = labelers == labeler
        c = out[int(labeler)]
        c.agree_n = int(n[mine & decided].sum())
        c.agree = int(n[mine & decided & (majority == choice)].sum())


def _consistency(project_id: int, out: dict[int, LabelerCounts]) -> None:
    """Swapped repeats against the labeler's first judgment of the same pair."""
    for labeler, repeat_n, consistent in _rows(
        "SELECT r.labeler_id, COUNT(*), SUM(CASE WHEN r.choice = o.choice THEN 1 ELSE 0 END) "
        f"FROM {C} r JOIN {C} o ON o.pair_id = r.pair_id AND o.labeler_id = r.labeler_id "
        "AND NOT o.is_repeat AND o.source NOT IN ('adjudication', 'ai_judge') "
        "WHERE r.project_id = %s AND r.is_repeat AND r.source NOT IN ('adjudication', 'ai_judge') "
        "GROUP BY r.labeler_id",
        [project_id],
    ):
        out[labeler].repeat_n, out[labeler].consistent = int(repeat_n), int(consistent)


def _median_seconds(project_id: int, out: dict[int, LabelerCounts]) -> None:
    """The median of each labeler's times on the page: the one or two middle values, found
    by a window over each labeler's sorted times (portable: no percentile aggregate)."""
    judged, _ = _judgments()
    middles: dict[int, list[float]] = {}
    for labeler, ms in _rows(
        "SELECT labeler_id, ms FROM (SELECT c.labeler_id, c.time_spent_ms AS ms, "
        "ROW_NUMBER() OVER (PARTITION BY c.labeler_id ORDER BY c.time_spent_ms) AS k, "
        "COUNT(*) OVER (PARTITION BY c.labeler_id) AS n "
        f"FROM {C} c WHERE {judged} AND c.labeler_id IS NOT NULL "
        "AND c.time_spent_ms IS NOT NULL) t WHERE k IN ((n + 1) / 2, (n + 2) / 2) ORDER BY k",
        [project_id],
    ):
        middles.setdefault(labeler, []).append(ms / 1000)
    for labeler, values in middles.items():
        # As statistics.median: the mean of the two middle values of an even count.
        out[labeler].median_seconds = values[0] if len(values) == 1 else (values[0] + values[1]) / 2


def _epoch_us(column: str) -> str:
    """Microseconds since the epoch of a datetime column, exactly, on either database."""
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"
    # SQLite stores "YYYY-MM-DD HH:MM:SS[.ffffff]". Its date functions keep milliseconds and
    # round, so ".9996" would read as the next second: whole seconds go in, the digits after.
    return (
        f"(CAST(strftime('%%s', substr({column}, 1, 19)) AS INTEGER) * 1000000 "
        f"+ CAST(COALESCE(NULLIF(substr({column}, 21, 6), ''), '0') AS INTEGER))"
    )


def _active_seconds(project_id: int, out: dict[int, LabelerCounts]) -> None:
    """Labeling time (annotate.quality.labelers.active_seconds): the gaps between a labeler's
    consecutive judgments, or a judgment's own time on the page after a break."""
    judged, _ = _judgments()
    at = _epoch_us("c.created_at")
    limit = int(BREAK.total_seconds() * 1_000_000)
    for labeler, micros in _rows(
        "SELECT labeler_id, SUM(CASE WHEN gap IS NOT NULL AND gap <= %s THEN gap "
        "ELSE COALESCE(ms, 0) * 1000 END) FROM (SELECT c.labeler_id, c.time_spent_ms AS ms, "
        f"{at} - LAG({at}) OVER (PARTITION BY c.labeler_id ORDER BY c.created_at, c.id) AS gap "
        f"FROM {C} c WHERE {judged} AND c.labeler_id IS NOT NULL) t GROUP BY labeler_id",
        [limit, project_id],
    ):
        out[labeler].active_seconds = int(micros) / 1_000_000


# An AI judge's comparisons (alias c, first parameter the project id).
JUDGED_BY_AI = (
    "c.project_id = %s AND c.source = 'ai_judge' AND NOT c.is_repeat AND c.labeler_id IS NOT NULL"
)


def judge_counts(
    project_id: int, excluded: Iterable[int], judges: dict[int, int]
) -> dict[int, JudgeCounts]:
    """Each judge's JudgeCounts (annotate.quality.judges), keyed by its labeler account's id;
    `judges` maps the project's judge ids to those accounts. The people's majority is of
    their counted votes (excluded labelers left out)."""
    out = {user_id: JudgeCounts() for user_id in judges.values()}
    if not out:
        return out
    for labeler, n, *values in _rows(
        f"{LONGER} SELECT c.labeler_id, COUNT(*), {GOLD_AND_LONGER} "
        f"FROM {C} c JOIN longer f ON f.id = c.pair_id WHERE {JUDGED_BY_AI} "
        "GROUP BY c.labeler_id",
        [project_id, project_id],
    ):
        if labeler in out:
            c = out[labeler]
            c.comparisons = int(n)
            c.gold_n, c.gold_right, c.longer_n, c.longer_k = map(int, values)
    _judge_agreement(project_id, excluded, out)
    _judge_readings(project_id, judges, out)
    return out


def _judge_agreement(project_id: int, excluded: Iterable[int], out: dict[int, JudgeCounts]) -> None:
    """Agreement with the people's strict majority on the pairs both judged: each judge
    comparison grouped with its pair's counted votes (one row per judge, choice and pattern)."""
    votes, names, params = _votes_per_pair(excluded)
    rows = _rows(
        f"{votes} SELECT c.labeler_id, c.choice, {names}, COUNT(*) FROM {C} c "
        f"JOIN v ON v.pair_id = c.pair_id WHERE {JUDGED_BY_AI} "
        f"GROUP BY c.labeler_id, c.choice, {names}",
        [project_id, *params, project_id],
    )
    rows = [row for row in rows if row[0] in out]
    if not rows:
        return
    k = len(CHOICES)
    labelers = np.array([row[0] for row in rows])
    choice = np.array([CHOICES.index(row[1]) for row in rows])
    votes = np.array([row[2 : 2 + k] for row in rows], dtype=np.int64)
    n = np.array([row[-1] for row in rows], dtype=np.int64)
    majority = _majority_without(votes, np.full(len(rows), -1))
    decided = majority >= 0
    for labeler in np.unique(labelers):
        mine = labelers == labeler
        c = out[int(labeler)]
        c.agree_n = int(n[mine & decided].sum())
        c.agree = int(n[mine & decided & (majority == choice)].sum())


def _judge_readings(project_id: int, judges: dict[int, int], out: dict[int, JudgeCounts]) -> None:
    """From the judges' readings (JudgeVerdict, one per pair and order): A/B readings, those
    of the response shown first (A in order ab, B in ba), unparsable ones, and the pairs whose
    two parsed readings give the same choice."""
    for judge_id, readings, first, unparsable in _rows(
        "SELECT v.judge_id, SUM(CASE WHEN v.choice IN ('a', 'b') THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN (v.{ORDER} = 'ab' AND v.choice = 'a') "
        f"OR (v.{ORDER} = 'ba' AND v.choice = 'b') THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN v.choice = '' THEN 1 ELSE 0 END) "
        f"FROM {V} v JOIN {J} j ON j.id = v.judge_id WHERE j.project_id = %s "
        "GROUP BY v.judge_id",
        [project_id],
    ):
        if judge_id in judges:
            c = out[judges[judge_id]]
            c.readings, c.first_k, c.unparsable = int(readings), int(first), int(unparsable)
    for judge_id, both, same in _rows(
        "SELECT x.judge_id, COUNT(*), SUM(CASE WHEN x.choice = y.choice THEN 1 ELSE 0 END) "
        f"FROM {V} x JOIN {V} y ON y.judge_id = x.judge_id AND y.pair_id = x.pair_id "
        f"AND y.{ORDER} = 'ba' JOIN {J} j ON j.id = x.judge_id "
        f"WHERE j.project_id = %s AND x.{ORDER} = 'ab' AND x.choice <> '' AND y.choice <> '' "
        "GROUP BY x.judge_id",
        [project_id],
    ):
        if judge_id in judges:
            c = out[judges[judge_id]]
            c.both_orders, c.orders_agree = int(both), int(same)


def judge_settled(project_id: int, redundancy: int, sure: float) -> tuple[int, int]:
    """Judge-first: the open pairs short of their redundancy that the AI judges settled
    (annotate.selectors.judge_first), and the human comparisons they hold."""
    settled = settled_sql(connection.ops.quote_name, "p")
    ((n, have),) = _rows(
        f"SELECT COUNT(*), COALESCE(SUM(p.human_count), 0) FROM {P} p WHERE p.project_id = %s "
        f"AND p.is_open AND p.human_count < %s AND {settled}",
        [project_id, redundancy, sure],
    )
    return int(n), int(have)


def majority_reliability(
    project_id: int, *, judges: bool = False
) -> tuple[dict[int, float], int, float]:
    """Under majority: each labeler's share of A/B votes that the others' majority on the
    pair shares (annotate.quality.aggregation's majority fit, over the counted votes of every
    labeler, excluded ones too, and of the AI judges with `judges`: each is one vote), the
    number of A/B votes, and the seconds it took."""
    started = time.perf_counter()
    sources = "'human', 'import', 'ai_judge'" if judges else "'human', 'import'"
    votes = (
        f"SELECT c.pair_id, c.labeler_id, CASE WHEN c.choice = 'a' THEN 1 ELSE 0 END AS says_a "
        f"FROM {C} c JOIN {P} p ON p.id = c.pair_id WHERE c.project_id = %s "
        f"AND NOT c.is_repeat AND NOT p.ambiguous AND c.source IN ({sources}) "
        "AND c.choice IN ('a', 'b')"
    )
    rows = _rows(
        f"WITH v AS ({votes}), n AS (SELECT pair_id, COUNT(*) AS n, SUM(says_a) AS a "
        "FROM v GROUP BY pair_id) "
        "SELECT v.labeler_id, v.says_a, n.n, n.a, COUNT(*) FROM v JOIN n ON n.pair_id = v.pair_id "
        "GROUP BY v.labeler_id, v.says_a, n.n, n.a",
        [project_id],
    )
    reliability: dict[int, float] = {}
    if rows:
        table = np.array(
            [(-1 if w is None else w, s, n, a, k) for w, s, n, a, k in rows], dtype=np.int64
        )
        worker, says_a, n, a, k = table.T
        others, others_a = n - 1, a - says_a
        decided = (others > 0) & (2 * others_a != others)
        agrees = decided & ((2 * others_a > others) == (says_a == 1))
        for w in np.unique(worker[worker > 0]):
            mine = worker == w
            total = k[mine & decided].sum()
            if total:
                reliability[int(w)] = float(k[mine & agrees].sum() / total)
        votes_n = int(k.sum())
    else:
        votes_n = 0
    return reliability, votes_n, time.perf_counter() - started
