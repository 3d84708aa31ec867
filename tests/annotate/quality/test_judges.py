"""The plain measures of an AI judge (annotate.quality.judges): the bootstrap interval of its
agreement, its figures and flags from counts."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binomtest

from annotate.quality.judges import JudgeCounts, PeoplesRates, judge_row, rate_interval
from annotate.quality.labelers import LabelerCounts


def test_the_interval_of_a_share_is_the_bootstrap_of_its_items():
    # Many items: the percentile bootstrap of a share is the normal interval, to a point.
    k, n = 640, 800
    low, high = rate_interval(k, n, n_boot=4000, seed=1)
    half = 1.96 * math.sqrt(0.8 * 0.2 / n)
    assert low == pytest.approx(0.8 - half, abs=0.006)
    assert high == pytest.approx(0.8 + half, abs=0.006)
    # Seeded: the same figures again; fewer items, a wider interval; none from one item.
    assert rate_interval(k, n, n_boot=4000, seed=1) == [low, high]
    small = rate_interval(8, 10, n_boot=4000, seed=1)
    assert small[1] - small[0] > high - low
    assert rate_interval(1, 1) is None and rate_interval(0, 0) is None
    assert rate_interval(5, 5, n_boot=200) == [1.0, 1.0]


def test_peoples_rates_pool_their_counts():
    people = PeoplesRates.pooled(
        [
            LabelerCounts(agree=3, agree_n=4, longer_k=1, longer_n=2, left_k=2, left_n=4),
            LabelerCounts(agree=1, agree_n=4, longer_k=3, longer_n=6, gold_right=1, gold_n=2),
        ]
    )
    assert people.as_dict() == {
        "agreement_with_majority": 0.5,
        "agreement_n": 8,
        "gold_accuracy": 0.5,
        "gold_n": 2,
        "left_rate": 0.5,
        "left_n": 4,
        "longer_rate": 0.5,
        "longer_n": 8,
    }
    assert PeoplesRates().as_dict()["longer_rate"] is None


def test_a_judge_row_and_its_flags():
    people = PeoplesRates(longer_k=50, longer_n=100)
    wordy = JudgeCounts(
        comparisons=40,
        agree=10,
        agree_n=40,
        gold_right=2,
        gold_n=10,
        longer_k=36,
        longer_n=40,
        readings=80,
        first_k=40,
        both_orders=40,
        orders_agree=38,
    )
    row = judge_row(wordy, people, n_boot=100)
    assert row["agreement_with_humans"] == 0.25 and row["agreement_n"] == 40
    assert row["longer_rate"] == 0.9 and row["humans_longer_rate"] == 0.5
    assert row["longer_p"] == pytest.approx(binomtest(36, 40, 0.5).pvalue)
    assert row["first_rate"] == 0.5 and row["position_bias"] == 0.0
    assert row["order_consistency"] == 0.95
    assert [f["code"] for f in row["flags"]] == ["length_bias", "gold", "low_agreement"]
    assert "90% of 40 A/B choices against 50% for the people" in row["flags"][0]["reason"]
    # Nothing read, nothing measured, nothing flagged.
    empty = judge_row(JudgeCounts(), people)
    assert empty["agreement_with_humans"] is None and empty["agreement_with_humans_ci"] is None
    assert empty["first_p"] is None and empty["longer_p"] is None and empty["flags"] == []
