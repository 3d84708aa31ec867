"""Judge-first labeling (Project.judge_first): which open Pairs the AI judges settled, so that
people are not served them. One rule in SQL, for the lease's candidate read
(annotate.services._queue_sql) and the quality page's queue figures (annotate.selectors.quality).

A Pair is settled when it has AI judges' comparisons (of judges staff did not exclude) and
all of them choose the same response (A or B), each with P(its choice) of at least 0.5 + the
project's margin, and the active reward model (Pair.model_p_a), when it has a view, does not
lean to the other response. A Pair no judge has read yet is not settled: people are never
kept waiting on the judges. Settled Pairs stay open: they come back to people the moment a
judge or the model turns, or the option is turned off.
"""

from __future__ import annotations

from annotate.models import Comparison, Membership, Project


def judge_sure(project: Project) -> float | None:
    """Under judge-first, the P(its choice) from which a judge is sure (0.5 + the margin);
    None when the project serves people every open Pair."""
    return 0.5 + project.judge_first_margin if project.judge_first else None


def settled_sql(quote_name, pair: str = "p") -> str:
    """`EXISTS (...)`: the Pair aliased `pair` is settled by its judges. Its one parameter is
    judge_sure's threshold. `quote_name` is the connection's (ops.quote_name).

    One probe per Pair through the comparisons' pair index; GROUP BY makes a Pair without
    judges' comparisons give no group, so nothing EXISTS."""
    comparisons = quote_name(Comparison._meta.db_table)
    memberships = quote_name(Membership._meta.db_table)
    return f"""EXISTS (SELECT 1 FROM {comparisons} j
                   WHERE j.pair_id = {pair}.id AND j.source = 'ai_judge' AND NOT j.is_repeat
                     AND NOT EXISTS (SELECT 1 FROM {memberships} m
                                     WHERE m.project_id = {pair}.project_id
                                       AND m.user_id = j.labeler_id AND m.excluded)
                   GROUP BY j.pair_id
                   HAVING MIN(j.choice) = MAX(j.choice) AND MIN(j.choice) IN ('a', 'b')
                      AND MIN(COALESCE(j.p_chosen, 0)) >= %s
                      AND ({pair}.model_p_a IS NULL OR {pair}.model_p_a = 0.5
                           OR (MIN(j.choice) = 'a' AND {pair}.model_p_a > 0.5)
                           OR (MIN(j.choice) = 'b' AND {pair}.model_p_a < 0.5)))"""
