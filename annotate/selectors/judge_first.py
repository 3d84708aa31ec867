"""Judge-first labeling (Project.judge_first): which open Pairs the AI judges settled, so that
people are not served them. One rule in SQL, for the lease's candidate read
(annotate.services._queue_sql) and the quality page's queue figures (annotate.selectors.quality).

A Pair is settled when it has AI judges' comparisons (of judges staff did not exclude) and
all of them choose the same response (A or B), each with P(its choice) of at least 0.5 + the
project's margin, and the active reward model (Pair.model_p_a), when it has a view, does not
lean to the other response. A Pair no judge has read yet is not settled: people are never
kept waiting on the judges. Settled Pairs stay open: they come back to people the moment a
judge or the model turns, or the option is turned off.

The judges' side of the rule is kept on the Pair (Pair.judges_choice, Pair.judges_min_p, by
annotate.services.judges_verdict), so the rule reads one row: a lease that walks past
thousands of settled Pairs pays for none of their comparisons.
"""

from __future__ import annotations

from annotate.models import Project


def judge_sure(project: Project) -> float | None:
    """Under judge-first, the P(its choice) from which a judge is sure (0.5 + the margin);
    None when the project serves people every open Pair."""
    return 0.5 + project.judge_first_margin if project.judge_first else None


def settled_sql(quote_name, pair: str = "p") -> str:
    """The Pair aliased `pair` is settled by its judges: a test of its own row, never NULL.
    Its one parameter is judge_sure's threshold. `quote_name` is the connection's
    (ops.quote_name).

    It reads the judges' verdict kept on the Pair (judges_choice, judges_min_p: recounted
    by annotate.services.judges_verdict whenever a judge's comparison or membership changes),
    so a lease walking the queue tests each Pair it passes in the row it already holds. The
    reward model's view (model_p_a, rewritten at every promotion) is read as it stands."""
    columns = ("judges_choice", "judges_min_p", "model_p_a")
    choice, min_p, model = (f"{pair}.{quote_name(c)}" for c in columns)
    return f"""({choice} IN ('a', 'b') AND COALESCE({min_p}, 0) >= %s
            AND ({model} IS NULL OR {model} = 0.5
                 OR ({choice} = 'a' AND {model} > 0.5)
                 OR ({choice} = 'b' AND {model} < 0.5)))"""
