"""An AI judge measured against the project's people: agreement with the human majority (with
a bootstrap interval), gold accuracy, consistency between its two readings of a pair (A/B and
B/A) and its lean toward the response shown first, and its share of "longer wins" beside the
humans' share; the flags raised when one falls outside the labelers' bands.

Plain functions over counts (annotate.selectors.quality_counts aggregates them in the
database); choices are canonical by response, as everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from annotate.bootstrap import percentile_interval, resample_weights
from annotate.quality.labelers import binomial_p_value, merge_bands, p_value_text, percent_text


@dataclass
class JudgeCounts:
    """What one judge's figures are made of."""

    comparisons: int = 0  # its comparisons (one per pair, both readings made into one)
    agree: int = 0  # comparisons matching the strict majority of the people's counted votes ...
    agree_n: int = 0  # ... of those on a pair where the people have one
    gold_right: int = 0
    gold_n: int = 0  # comparisons of gold pairs
    longer_k: int = 0  # A/B choices of the longer response ...
    longer_n: int = 0  # ... on pairs whose responses differ in length
    readings: int = 0  # readings (one per pair and order) that chose A or B ...
    first_k: int = 0  # ... choosing the response shown first
    unparsable: int = 0  # readings left without a choice after the reminder
    both_orders: int = 0  # pairs read in both orders, both readings parsed ...
    orders_agree: int = 0  # ... whose two readings give the same choice in the pair's terms


@dataclass(frozen=True)
class PeoplesRates:
    """The people's pooled figures (excluded labelers left out) that a judge's stand beside:
    agreement with the others' majority, gold accuracy, the left-side and longer-response
    shares of their A/B choices."""

    agree: int = 0
    agree_n: int = 0
    gold_right: int = 0
    gold_n: int = 0
    left_k: int = 0
    left_n: int = 0
    longer_k: int = 0
    longer_n: int = 0

    @classmethod
    def pooled(cls, counts: Iterable[Any]) -> PeoplesRates:
        """Summed over LabelerCounts (annotate.quality.labelers)."""
        counts = list(counts)
        return cls(**{f.name: sum(getattr(c, f.name) for c in counts) for f in fields(cls)})

    @property
    def longer_rate(self) -> float | None:
        return _rate(self.longer_k, self.longer_n)

    def as_dict(self) -> dict[str, Any]:
        return {
            "agreement_with_majority": _round(_rate(self.agree, self.agree_n)),
            "agreement_n": self.agree_n,
            "gold_accuracy": _round(_rate(self.gold_right, self.gold_n)),
            "gold_n": self.gold_n,
            "left_rate": _round(_rate(self.left_k, self.left_n)),
            "left_n": self.left_n,
            "longer_rate": _round(self.longer_rate),
            "longer_n": self.longer_n,
        }


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def rate_interval(k: int, n: int, *, n_boot: int = 1000, seed: int = 0) -> list[float] | None:
    """The percentile bootstrap 95% interval of the share k / n, resampling its n items (the
    pairs) as every agreement interval of the project does (annotate.bootstrap); None with
    fewer than two items."""
    if n < 2 or n_boot < 1:
        return None
    draws = [w[:, 0] / n for w in resample_weights(np.array([k, n - k]), n_boot, seed=seed)]
    low, high = percentile_interval(np.concatenate(draws))
    return [round(float(low), 4), round(float(high), 4)]


def judge_row(
    c: JudgeCounts,
    people: PeoplesRates,
    *,
    bands: Mapping[str, Any] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """One judge's figures and flags from its counts, beside the people's."""
    bands = merge_bands(bands)
    first_rate = _rate(c.first_k, c.readings)
    people_longer = people.longer_rate
    longer_p = (
        binomial_p_value(c.longer_k, c.longer_n, people_longer)
        if c.longer_n and people_longer is not None
        else None
    )
    row: dict[str, Any] = {
        "comparisons": c.comparisons,
        "agreement_with_humans": _round(_rate(c.agree, c.agree_n)),
        "agreement_with_humans_ci": rate_interval(c.agree, c.agree_n, n_boot=n_boot, seed=seed),
        "agreement_n": c.agree_n,
        "gold_accuracy": _round(_rate(c.gold_right, c.gold_n)),
        "gold_n": c.gold_n,
        "order_consistency": _round(_rate(c.orders_agree, c.both_orders)),
        "order_consistency_n": c.both_orders,
        "first_rate": _round(first_rate),
        # How far beyond an even split its readings lean to the response shown first.
        "position_bias": _round(None if first_rate is None else first_rate - 0.5),
        "readings": c.readings,
        "first_p": binomial_p_value(c.first_k, c.readings, 0.5) if c.readings else None,
        "unparsable": c.unparsable,
        "longer_rate": _round(_rate(c.longer_k, c.longer_n)),
        "longer_n": c.longer_n,
        "humans_longer_rate": _round(people_longer),
        "longer_p": longer_p,
    }
    row["flags"] = judge_flags(row, bands)
    return row


def judge_flags(row: Mapping[str, Any], bands: Mapping[str, float]) -> list[dict[str, str]]:
    """The labelers' bands (annotate.quality.labelers.DEFAULT_BANDS) applied to a judge's
    figures: [{"code", "reason"}], each reason in words."""
    flags = []
    least = bands["min_count"]
    if row["first_p"] is not None and row["first_p"] < bands["left_p_max"]:
        flags.append(
            {
                "code": "position_bias",
                "reason": f"Chose the response shown first in {percent_text(row['first_rate'])} of "
                f"{row['readings']} A/B readings (binomial test against 50%: "
                f"{p_value_text(row['first_p'])}); its comparisons average both orders.",
            }
        )
    if row["longer_p"] is not None and row["longer_p"] < bands["longer_p_max"]:
        flags.append(
            {
                "code": "length_bias",
                "reason": f"Chose the longer response in {percent_text(row['longer_rate'])} of "
                f"{row['longer_n']} A/B choices against {percent_text(row['humans_longer_rate'])} "
                f"for the people ({p_value_text(row['longer_p'])}).",
            }
        )
    if row["gold_n"] >= least and row["gold_accuracy"] < bands["gold_accuracy_min"]:
        flags.append(
            {
                "code": "gold",
                "reason": f"Gold accuracy {percent_text(row['gold_accuracy'])} on {row['gold_n']} gold "
                f"pairs (band: at least {percent_text(bands['gold_accuracy_min'])}).",
            }
        )
    if row["agreement_n"] >= least and row["agreement_with_humans"] < bands["agreement_min"]:
        flags.append(
            {
                "code": "low_agreement",
                "reason": f"Agrees with the people's majority on "
                f"{percent_text(row['agreement_with_humans'])} of {row['agreement_n']} pairs (band: at "
                f"least {percent_text(bands['agreement_min'])}).",
            }
        )
    if (
        row["order_consistency_n"] >= least
        and row["order_consistency"] < bands["self_consistency_min"]
    ):
        flags.append(
            {
                "code": "inconsistent",
                "reason": f"Gave the same answer in both orders on "
                f"{percent_text(row['order_consistency'])} of {row['order_consistency_n']} pairs (band: "
                f"at least {percent_text(bands['self_consistency_min'])}).",
            }
        )
    return flags
