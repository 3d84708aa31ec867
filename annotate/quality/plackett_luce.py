"""Plackett-Luce worths of ranked responses: the MAP fit by Hunter's (2004) MM algorithm of
many small problems (one per set, or per set less one labeler) at once, and the order the
worths give. Plain numpy; annotate.quality.rankings uses it for the consensus order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# Plackett-Luce worths get a Gamma(1 + PRIOR, PRIOR) prior (mode 1, the worths' scale): without
# one, the maximum-likelihood worth of a response that tops every ranking is infinite (Hunter
# 2004's condition fails whenever labelers agree). PRIOR = 1 is one pseudo-win and one unit of
# exposure per response, about one ranking's evidence: it pulls a set read by few labelers
# toward a tie, and MM converges in ~100 iterations (at 0.1: ~1000).
PRIOR = 1.0
# MM stops when no log-worth moves by more than this; the order, all the figures use, is
# settled long before.
PL_TOLERANCE = 1e-7
PL_MAX_ITERATIONS = 2000
# Worths closer than this (relative) are a tie in the consensus order.
TIE_RTOL = 1e-6
# Sets fitted per block: bounds the memory of the events x K arrays.
SET_BLOCK = 2000


@dataclass(frozen=True)
class Problem:
    """One Plackett-Luce fit: weighted rankings of `items` (one set's responses)."""

    items: tuple[int, ...]
    rankings: tuple[tuple[tuple[tuple[int, ...], ...], float], ...]  # (groups, weight)


def plackett_luce(problems: Sequence[Problem]) -> list[dict[int, float]]:
    """The MAP worths of each problem's items (a Gamma(1 + PRIOR, PRIOR) prior on each),
    by Hunter's (2004) MM algorithm, all problems at once.

    Ties follow Breslow's rule (as the Cox model's): each response of a tied group counts as
    chosen at that stage from everything not yet placed, the group included. A ranking's
    events count with its weight (a labeler's reliability weight, else 1)."""
    out: list[dict[int, float]] = []
    for start in range(0, len(problems), SET_BLOCK):
        out.extend(_pl_block(problems[start : start + SET_BLOCK]))
    return out


def _pl_block(problems: Sequence[Problem]) -> list[dict[int, float]]:
    width = max((len(p.items) for p in problems), default=0)
    present = np.zeros((len(problems), width), dtype=bool)
    event_problem, event_risk, event_chosen, event_weight = [], [], [], []
    for p_index, p in enumerate(problems):
        column = {item: k for k, item in enumerate(p.items)}
        present[p_index, : len(p.items)] = True
        for groups, weight in p.rankings:
            # Each column's group (-1: not in this ranking); the event of a response in group
            # g has at risk every response in group g or below.
            stage = np.full(width, -1)
            for g, group in enumerate(groups):
                stage[[column[i] for i in group]] = g
            # Choosing the last one left says nothing: a last group of one has no event.
            last = len(groups) - 1 if len(groups[-1]) == 1 else len(groups)
            chosen = np.flatnonzero((stage >= 0) & (stage < last))
            event_risk.append(stage[None, :] >= stage[chosen][:, None])
            event_chosen.append(chosen)
            event_problem.append(np.full(len(chosen), p_index))
            event_weight.append(np.full(len(chosen), weight))
    worths = present.astype(float)
    if event_problem:
        worths = _mm(
            worths,
            present,
            np.concatenate(event_problem),
            np.concatenate(event_risk),
            np.concatenate(event_chosen),
            np.concatenate(event_weight).astype(float),
        )
    return [
        {item: float(worths[p_index, k]) for k, item in enumerate(p.items)}
        for p_index, p in enumerate(problems)
    ]


def _mm(worths, present, problem, risk, chosen, weight):
    n_problems, width = worths.shape
    wins = np.bincount(problem * width + chosen, weights=weight, minlength=n_problems * width)
    wins = wins.reshape(n_problems, width)
    risk_f = risk.astype(float)
    for _ in range(PL_MAX_ITERATIONS):
        # Hunter's MM step with the prior's terms: w_i = (a - 1 + wins_i) / (b + sum over the
        # events with i at risk of weight / (sum of the risk set's worths)).
        at_risk = weight / (risk_f * worths[problem]).sum(1)
        denominator = np.stack(
            [np.bincount(problem, weights=risk_f[:, k] * at_risk, minlength=n_problems)
             for k in range(width)],
            axis=1,
        )  # fmt: skip
        new = np.where(present, (PRIOR + wins) / (PRIOR + denominator), 0.0)
        with np.errstate(divide="ignore"):
            moved = np.abs(np.log(new[present]) - np.log(worths[present])).max()
        worths = new
        if moved < PL_TOLERANCE:
            break
    return worths


def order_of(worths: Mapping[int, float]) -> list[list[int]]:
    """Responses best first by worth, equal worths (within TIE_RTOL) grouped as a tie."""
    groups: list[list[int]] = []
    last = None
    for item, w in sorted(worths.items(), key=lambda kv: (-kv[1], kv[0])):
        if last is not None and abs(w - last) <= TIE_RTOL * max(abs(last), 1e-300):
            groups[-1].append(item)
        else:
            groups.append([item])
            last = w
    return groups
