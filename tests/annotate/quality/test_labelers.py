"""Per-labeler statistics by hand, the binomial test, bands, and simulated labelers with planted
behaviour flagged for the right reason."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from annotate.quality.labelers import (
    DEFAULT_BANDS,
    Judgment,
    PairFacts,
    active_seconds,
    binomial_p_value,
    labeler_stats,
    merge_bands,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_binomial_p_value_by_hand():
    # 9 of 10 at p = 0.5: P(X >= 9) = (10 + 1) / 1024; two-sided doubles it.
    assert binomial_p_value(9, 10) == pytest.approx(22 / 1024)
    # 3 of 5: every outcome is at most as likely as 3 (pmf 10/32), so p = 1.
    assert binomial_p_value(3, 5) == pytest.approx(1.0)
    # 3 of 3 at p = 0.1: pmf 0.729, 0.243, 0.027, 0.001; only 3 itself is as unlikely.
    assert binomial_p_value(3, 3, 0.1) == pytest.approx(0.001)
    assert binomial_p_value(0, 3, 0.1) == pytest.approx(1.0)
    assert binomial_p_value(0, 0) == 1.0


def test_active_time_counts_breaks_as_the_judgment_time_only():
    own = [
        Judgment(1, 1, "a", seconds=20, at=at(0)),
        Judgment(2, 1, "a", seconds=25, at=at(30)),
        Judgment(3, 1, "a", seconds=50, at=at(90)),
        Judgment(4, 1, "a", seconds=15, at=at(90 + 20 * 60)),
    ]
    # 20 s for the first judgment, then the gaps 30 s and 60 s, then a 20-minute break that
    # counts only the judgment's own 15 s: 125 s.
    assert active_seconds(own) == pytest.approx(125)


def hand_example():
    pairs = {
        1: PairFacts(longer="a", gold="a"),
        2: PairFacts(longer="b"),
        3: PairFacts(longer=None),
        4: PairFacts(longer="a", model_p_a=0.8),
    }
    j = [
        Judgment(1, 1, "a", "a", 10, at(0)),
        Judgment(1, 2, "a", "b", 2, at(0)),
        Judgment(1, 3, "b", "b", 6, at(0)),
        Judgment(2, 1, "b", "a", 20, at(30)),
        Judgment(2, 2, "b", "b", 2, at(30)),
        Judgment(2, 3, "b", "a", 6, at(30)),
        Judgment(3, 1, "tie", "a", 30, at(90)),
        Judgment(3, 2, "a", "a", 2, at(90)),
        Judgment(3, 3, "a", "b", 6, at(90)),
        Judgment(4, 1, "a", "b", 40, at(150)),
        Judgment(4, 2, "b", "a", 2, at(150)),
        Judgment(4, None, "a"),  # an anonymous imported vote: counts among the others
        # Swapped repeats by labeler 1: pair 1 answered differently, pair 2 the same.
        Judgment(1, 1, "b", "b", 8, at(200), is_repeat=True),
        Judgment(2, 1, "b", "b", 9, at(230), is_repeat=True),
    ]
    return j, pairs


def test_labeler_stats_by_hand():
    judgments, pairs = hand_example()
    stats = labeler_stats(judgments, pairs, bands={"min_count": 1})
    assert set(stats) == {1, 2, 3}
    one = stats[1]
    assert one["comparisons"] == 4 and one["repeats"] == 2
    # Majority of the others: pair 1 a/b (no majority), pair 2 b/b -> b (agrees), pair 3
    # a/a -> a (labeler 1 said tie), pair 4 b/a (no majority): 1 of 2.
    assert (one["agreement_with_majority"], one["agreement_n"]) == (0.5, 2)
    # Gold: pair 1 is gold a, labeler 1 said a.
    assert (one["gold_accuracy"], one["gold_n"]) == (1.0, 1)
    # Repeats: pair 1 a then b (inconsistent), pair 2 b then b: 1 of 2.
    assert (one["self_consistency"], one["repeat_n"]) == (0.5, 2)
    # Left side among A/B choices with a known side, repeats included: pair 1 a shown left
    # (left), pair 2 b with a left (right), pair 4 a with b left (right), repeat 1 b with b
    # left (left), repeat 2 b with b left (left): 3 of 5; every outcome of 5 is at most as
    # likely as 3, so p = 1.
    assert (one["left_rate"], one["left_n"]) == (0.6, 5)
    assert one["left_p"] == pytest.approx(1.0)
    # Longer: pairs 1 (a, longer a), 2 (b, longer b), 4 (a, longer a): 3 of 3. The others:
    # labeler 2 chose the longer on pairs 1 and 2, not 4 (2/3); labeler 3 on pair 2, not 1
    # (1/2). Their median is 7/12; P(3 of 3) = (7/12)^3 = 343/1728 and P(0 of 3) =
    # (5/12)^3 = 125/1728 are the outcomes no more likely: p = 468/1728.
    assert (one["longer_rate"], one["longer_n"]) == (1.0, 3)
    assert one["longer_pool_rate"] == pytest.approx(7 / 12)
    assert one["longer_p"] == pytest.approx(468 / 1728)
    # Model: pair 4 has P(A) = 0.8, labeler 1 said a.
    assert (one["model_agreement"], one["model_n"]) == (1.0, 1)
    # Median of 10, 20, 30, 40, 8, 9 seconds = (10 + 20) / 2.
    assert one["median_seconds"] == 15
    # Active time: 10 s, then gaps 30 + 60 + 60 + 50 + 30 = 240 s; 6 labels in 240 s = 90/h.
    assert one["active_hours"] == pytest.approx(240 / 3600, abs=1e-3)
    assert one["labels_per_hour"] == pytest.approx(90, abs=0.5)
    # Labeler 2 is fast (median 2 s) and agrees with the others' majority on 1 of 2 pairs
    # (pair 2 b/b -> b agrees; pair 4 a/a -> a, labeler 2 said b): flagged for both.
    assert [f["code"] for f in stats[2]["flags"]] == ["too_fast", "low_agreement"]
    assert "2.0 s" in stats[2]["flags"][0]["reason"]


def test_excluded_labelers_leave_the_majority_but_keep_their_statistics():
    judgments, pairs = hand_example()
    stats = labeler_stats(judgments, pairs, excluded={3}, bands={"min_count": 1})
    # Without labeler 3, pair 1's others for labeler 1 are [a] (agrees), pair 2's [b], pair
    # 3's [a] (labeler 1 said tie), pair 4's [b, a] (no majority): 2 of 3.
    assert stats[1]["agreement_with_majority"] == pytest.approx(2 / 3)
    assert stats[3]["comparisons"] == 3


def test_bands_merge_project_overrides():
    bands = merge_bands({"gold_accuracy_min": 0.9, "unknown": 1, "agreement_min": "high"})
    assert bands["gold_accuracy_min"] == 0.9
    assert bands["agreement_min"] == DEFAULT_BANDS["agreement_min"]
    assert "unknown" not in bands
    assert merge_bands(None) == DEFAULT_BANDS


def simulate(seed: int = 0, pairs_n: int = 120, gold_n: int = 30, repeats_n: int = 20):
    """Labelers with planted behaviour on pairs with a hidden truth.

    Beside the four planted labelers, three more follow the truth like "good": the majority of
    the others that agreement is measured against needs some honest labelers in it.
    """
    rng = random.Random(seed)
    truth, pairs = {}, {}
    for p in range(1, pairs_n + 1):
        truth[p] = rng.choice("ab")
        # Length independent of the truth: the length-biased labeler is not secretly right.
        pairs[p] = PairFacts(longer=rng.choice("ab"), gold=truth[p] if p <= gold_n else "")
    kinds = {"good": "truth", "lefty": "left", "coin": "random", "verbose": "longer"}
    kinds |= {f"crowd{i}": "truth" for i in range(3)}

    def pick(kind, p, left):
        other = "b" if truth[p] == "a" else "a"
        return {
            "truth": truth[p] if rng.random() > 0.1 else other,
            "left": left,
            "random": rng.choice("ab"),
            "longer": pairs[p].longer,
        }[kind]

    judgments = []
    for name, kind in kinds.items():
        t = T0
        shown = {}
        for p in pairs:
            left = rng.choice("ab")
            seconds = 1.5 if kind == "left" else rng.uniform(5, 30)
            t += timedelta(seconds=seconds + 2)
            shown[p] = left
            judgments.append((name, Judgment(p, None, pick(kind, p, left), left, seconds, t)))
        for p in rng.sample(sorted(pairs), repeats_n):
            left = "b" if shown[p] == "a" else "a"  # the sides swapped
            t += timedelta(seconds=12)
            judgments.append((name, Judgment(p, None, pick(kind, p, left), left, 10, t, True)))
    return kinds, truth, pairs, judgments


def test_simulated_labelers_are_flagged_for_the_right_reason():
    kinds, _truth, pairs, named = simulate()
    ids = {name: i for i, name in enumerate(kinds, start=1)}
    judgments = [
        Judgment(j.pair_id, ids[name], j.choice, j.left, j.seconds, j.at, j.is_repeat)
        for name, j in named
    ]
    stats = labeler_stats(judgments, pairs)
    codes = {name: {f["code"] for f in stats[ids[name]]["flags"]} for name in kinds}
    assert codes["good"] == set()
    assert "left_bias" in codes["lefty"]
    assert "inconsistent" in codes["lefty"]  # swapping the sides flips a left-clicker's answer
    assert "too_fast" in codes["lefty"]
    assert {"gold", "low_agreement"} <= codes["coin"]
    assert "left_bias" not in codes["coin"] and "length_bias" not in codes["coin"]
    assert "length_bias" in codes["verbose"] and "left_bias" not in codes["verbose"]
    assert stats[ids["verbose"]]["longer_rate"] == 1.0
    assert stats[ids["lefty"]]["left_rate"] == 1.0
    # Every flag says why, in words.
    assert "left" in next(
        f["reason"] for f in stats[ids["lefty"]]["flags"] if f["code"] == "left_bias"
    )


def test_bands_from_the_project_change_the_flags():
    kinds, _truth, pairs, named = simulate()
    ids = {name: i for i, name in enumerate(kinds, start=1)}
    judgments = [
        Judgment(j.pair_id, ids[name], j.choice, j.left, j.seconds, j.at, j.is_repeat)
        for name, j in named
    ]
    strict = labeler_stats(judgments, pairs, bands={"gold_accuracy_min": 1.01})
    assert "gold" in {f["code"] for f in strict[ids["good"]]["flags"]}
    lenient = labeler_stats(judgments, pairs, bands={"median_seconds_min": 1})
    assert "too_fast" not in {f["code"] for f in lenient[ids["lefty"]]["flags"]}
