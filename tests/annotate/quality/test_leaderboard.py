"""The source-model leaderboard and the review rule, on hand-worked examples."""

import math
import random

import pytest

from annotate.quality.leaderboard import leaderboard
from annotate.quality.review import MODEL, SPLIT, majority, review_queue, review_reasons


def test_bradley_terry_two_models_by_hand():
    # x beat y 3 times in 4: the maximum-likelihood odds are 3:1, so on Arena's scale the
    # gap is 400 * log10(3) = 190.8 points (the weak prior takes off about 1 point here).
    board = leaderboard([("x", "y", "a")] * 3 + [("x", "y", "b")], n_boot=200)
    ratings = {m["model"]: m["rating"] for m in board["models"]}
    assert ratings["x"] - ratings["y"] == pytest.approx(400 * math.log10(3), abs=2)
    assert (ratings["x"] + ratings["y"]) / 2 == pytest.approx(1000, abs=0.1)
    assert board["names"] == ["x", "y"]
    assert board["win_rate"] == [[None, 0.75], [0.25, None]]
    assert board["battle_counts"] == [[0, 4], [4, 0]]
    assert [m["rank"] for m in board["models"]] == [1, 2]


def test_ties_and_both_bad_count_half_and_the_side_of_the_response_matters():
    # y is response_a in two battles: "b" there is a win for x.
    battles = [("x", "y", "a"), ("y", "x", "b"), ("x", "y", "tie"), ("y", "x", "both_bad")]
    battles += [("x", "y", "b"), ("y", "x", "a"), ("y", "x", "a")]
    # x: 2 wins + 2 halves = 3 of 7; y: 3 wins + 2 halves = 4 of 7.
    board = leaderboard(battles, n_boot=0)
    assert board["names"] == ["y", "x"]  # ranked
    assert board["win_rate"][0][1] == pytest.approx(4 / 7, abs=1e-4)  # y against x
    assert board["win_rate"][1][0] == pytest.approx(3 / 7, abs=1e-4)
    assert board["models"][0]["ci_low"] is None  # no bootstrap asked


def test_unnamed_and_same_model_battles_are_left_out():
    board = leaderboard([("x", "x", "a"), ("", "y", "a"), ("x", "y", "a"), ("y", "x", "b")])
    assert board["battles"] == 2
    assert leaderboard([("x", "x", "a")])["models"] == []


def test_ratings_recover_the_true_order_with_intervals():
    rng = random.Random(0)
    strength = {"small": 0.0, "medium": 0.7, "large": 1.4}
    battles = []
    for _ in range(3000):
        a, b = rng.sample(sorted(strength), 2)
        p_a = 1 / (1 + math.exp(strength[b] - strength[a]))
        battles.append((a, b, "a" if rng.random() < p_a else "b"))
    board = leaderboard(battles, n_boot=300, seed=1)
    assert [m["model"] for m in board["models"]] == ["large", "medium", "small"]
    for m in board["models"]:
        assert m["ci_low"] < m["rating"] < m["ci_high"]
    by = {m["model"]: m["rating"] for m in board["models"]}
    # 0.7 natural-log units = 0.7 * 400 / ln(10) = 121.6 points between neighbours.
    assert by["large"] - by["medium"] == pytest.approx(121.6, abs=25)
    # A model that won every battle still gets a finite rating.
    assert math.isfinite(leaderboard([("x", "y", "a")] * 5, n_boot=50)["models"][0]["ci_high"])


def test_review_reasons():
    assert majority({"a": 2, "b": 1}) == "a"
    assert majority({"a": 1, "b": 1}) is None
    assert review_reasons({"a": 1, "b": 1}, None) == [SPLIT]
    assert review_reasons({"a": 1, "b": 1, "tie": 1}, None) == [SPLIT]
    assert review_reasons({"a": 2, "b": 1}, None) == []
    assert review_reasons({"a": 2, "b": 1}, None, split_max_agreement=0.7) == [SPLIT]
    # Majority a, the model gives b 0.95 >= 0.9.
    assert review_reasons({"a": 2, "b": 1}, 0.05) == [MODEL]
    # The bound is inclusive, and only the other side counts.
    assert review_reasons({"b": 3}, 0.9) == [MODEL]
    assert review_reasons({"b": 3}, 0.89) == []
    assert review_reasons({"a": 3}, 0.99) == []
    # A tie majority has no other side; a single vote is its own majority.
    assert review_reasons({"tie": 2, "a": 1}, 0.99) == []
    assert review_reasons({"a": 1}, 0.02) == [MODEL]
    assert review_reasons({"a": 1, "b": 1}, 0.97) == [SPLIT]


def test_review_queue_lists_the_most_urgent_first():
    queue = review_queue(
        [
            (1, {"a": 2, "b": 1}, 0.5),  # not listed
            (2, {"a": 1, "b": 1}, None),  # split, agreement 0.5
            (3, {"a": 1, "b": 1, "tie": 1}, None),  # split, agreement 1/3
            (4, {"b": 2}, 0.92),  # model, confidence 0.92
            (5, {"a": 1}, 0.01),  # model, confidence 0.99
        ]
    )
    assert [item["pair_id"] for item in queue] == [5, 4, 3, 2]
    assert queue[0]["reasons"] == [MODEL] and queue[0]["majority"] == "a"
    assert queue[2]["agreement"] == pytest.approx(1 / 3)
