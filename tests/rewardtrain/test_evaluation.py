"""Held-out metrics against values worked out by hand (rewardtrain.core.evaluation)."""

import json

import pytest

from rewardtrain.core.evaluation import evaluate, promotion_decision, spearman


def _row(
    prompt, chosen, rejected, *, n=1, agreement=1.0, p=1.0, strength=None, tie=False, votes=None
):
    return {
        "prompt_key": prompt,
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "n": n,
        "agreement": agreement,
        "p_chosen": p,
        "strength": strength,
        "tie": tie,
        "votes": votes or {"a": n, "b": 0, "tie": 0, "both_bad": 0},
    }


# Deltas 2, -1, 0, 1 on decided pairs and 0.5 on a tie.
ROWS = [
    _row("A", "aaaa", "bb", n=3, strength=3, votes={"a": 3, "b": 0, "tie": 0, "both_bad": 0}),
    _row(
        "A",
        "a",
        "bbb",
        n=3,
        agreement=2 / 3,
        p=2 / 3,
        strength=1,
        votes={"a": 2, "b": 1, "tie": 0, "both_bad": 0},
    ),
    _row("B", "aa", "bb"),
    _row("B", "aaa", "b", strength=3),
    _row(
        "C",
        "aa",
        "b",
        n=2,
        agreement=0.5,
        p=0.5,
        tie=True,
        votes={"a": 1, "b": 1, "tie": 0, "both_bad": 0},
    ),
]
R_CHOSEN = [2.0, 0.0, 0.5, 1.0, 0.5]
R_REJECTED = [0.0, 1.0, 0.5, 0.0, 0.0]


@pytest.fixture(scope="module")
def metrics():
    return evaluate(
        ROWS, R_CHOSEN, R_REJECTED, baseline=([1, 1, 0, 0, 0], [0, 0, 1, 1, 0]), n_bootstrap=200
    )


def test_core_metrics_by_hand(metrics):
    assert (metrics["n"], metrics["n_decided"], metrics["n_ties"]) == (5, 4, 1)
    assert metrics["accuracy"] == 0.5  # 2 and 1 right, -1 wrong, 0 wrong when strict
    assert metrics["accuracy_ties_half"] == 0.625  # (1 + 0 + 0.5 + 1) / 4
    # mean of log(1+e^-2), log(1+e), log 2, log(1+e^-1)
    assert metrics["log_loss"] == pytest.approx(0.611650, abs=1e-6)
    # mean of (1-sigma(d))^2: 0.014209, 0.534447, 0.25, 0.072329
    assert metrics["brier"] == pytest.approx(0.217746, abs=1e-6)
    assert metrics["mean_margin"] == 0.5


def test_calibration_by_hand(metrics):
    # Folded confidences 0.8808 (right), 0.7311 (wrong), 0.5 (a coin flip), 0.7311 (right):
    # bin 7 |1 - 0.8808| * 1/4 + bin 4 |0.5 - 0.7311| * 2/4 + bin 0 |0.5 - 0.5| * 1/4.
    assert metrics["ece"] == pytest.approx(0.145330, abs=1e-6)
    table = {i: b for i, b in enumerate(metrics["reliability"]) if b["count"]}
    assert {i: (b["count"], b["accuracy"]) for i, b in table.items()} == {
        0: (1, 0.5),
        4: (2, 0.5),
        7: (1, 1.0),
    }
    assert table[4]["low"] == pytest.approx(0.7) and table[4]["high"] == pytest.approx(0.75)
    assert [b["count"] for b in metrics["reliability"]].count(0) == 7
    # |sigma(d) - vote share| over all five rows, the tie's share being 0.5.
    assert metrics["soft_label_mae"] == pytest.approx(0.281666, abs=1e-6)


def test_ties_reported_on_their_own(metrics):
    ties = metrics["ties"]
    assert ties["count"] == 1 and ties["mean_abs_margin"] == 0.5
    assert ties["mean_abs_margin_decided"] == 1.0
    # 0.5 log(1 + e^-0.5) + 0.5 log(1 + e^0.5)
    assert ties["soft_target_loss"] == pytest.approx(0.724077, abs=1e-6)


def test_agreement_and_strength_strata(metrics):
    by = metrics["by_agreement"]
    assert set(by) == {"unanimous", "majority", "single"}
    assert (by["unanimous"]["count"], by["unanimous"]["accuracy"]) == (1, 1.0)
    assert (by["majority"]["count"], by["majority"]["accuracy"]) == (1, 0.0)
    assert (by["single"]["count"], by["single"]["accuracy"]) == (2, 0.5)
    assert by["majority"]["labeler_agreement"] == pytest.approx(2 / 3)
    # 2 of 3 votes agree: labeler pairs (a,a) = 1 of 3 pairs.
    assert by["majority"]["labeler_pairwise_agreement"] == pytest.approx(1 / 3)
    strength = metrics["by_strength"]
    assert {k: (v["count"], v["accuracy"]) for k, v in strength.items()} == {
        "1": (1, 0.0),
        "3": (2, 1.0),
        "none": (1, 0.0),
    }
    labelers = metrics["labelers"]
    assert labelers["pairs_with_several_votes"] == 3
    assert labelers["majority_agreement"] == pytest.approx((1 + 2 / 3 + 0.5) / 3)
    assert labelers["pairwise_agreement"] == pytest.approx((1 + 1 / 3 + 0) / 3)


def test_length_bias(metrics):
    length = metrics["length"]
    assert (length["count_chosen_longer"], length["accuracy_chosen_longer"]) == (2, 1.0)
    assert (length["count_chosen_shorter"], length["accuracy_chosen_shorter"]) == (1, 0.0)
    assert length["count_equal_length"] == 1
    # The model favours the longer response in all three unequal pairs; labelers in two.
    assert length["model_prefers_longer_rate"] == 1.0
    assert length["labelers_prefer_longer_rate"] == pytest.approx(2 / 3)


def test_against_the_baseline(metrics):
    # New decisions (delta > 0): T F F T T; baseline's: T T F F F.
    assert metrics["flip_rate"] == pytest.approx(3 / 5)
    assert metrics["baseline"]["accuracy"] == 0.5
    assert metrics["accuracy_diff"] == 0.0


def test_output_is_plain_json(metrics):
    json.dumps(metrics, allow_nan=False)
    empty = evaluate([], [], [])
    assert empty["accuracy"] is None and empty["n"] == 0
    json.dumps(empty, allow_nan=False)


def test_spearman_by_hand():
    assert spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)  # 1 - 6*2/(4*15)
    # Average ranks for ties: a ranks 1, 2.5, 2.5, 4 -> 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.948683, abs=1e-6)
    assert spearman([1, 1], [1, 2]) is None


def test_bootstrap_resamples_prompts_not_pairs():
    # Ten right pairs under one prompt, ten wrong under another.
    rows = [_row("X" if i < 10 else "Y", "a", "b") for i in range(20)]
    r_c = [1.0] * 10 + [0.0] * 10
    r_r = [0.0] * 10 + [1.0] * 10
    by_prompt = evaluate(rows, r_c, r_r, n_bootstrap=400)["ci"]["accuracy"]
    assert by_prompt == [0.0, 1.0]  # two prompts: 0, 0.5 or 1 in each resample
    rows = [dict(r, prompt_key=f"p{i}", prompt=f"p{i}") for i, r in enumerate(rows)]
    by_pair = evaluate(rows, r_c, r_r, n_bootstrap=400)["ci"]["accuracy"]
    assert 0.2 < by_pair[0] < 0.5 < by_pair[1] < 0.8
    # Without a prompt_key the prompt's text (or messages) is the group.
    rows = [
        dict(r, prompt_key=None, prompt=[{"role": "user", "content": "X" if i < 10 else "Y"}])
        for i, r in enumerate(rows)
    ]
    assert evaluate(rows, r_c, r_r, n_bootstrap=400)["n_prompts"] == 2


def test_promotion():
    assert promotion_decision({"accuracy": 0.6, "log_loss": 0.7}, None) == (
        True,
        "no active model yet",
    )
    ok, reason = promotion_decision(
        {"accuracy": 0.695, "log_loss": 0.60}, {"accuracy": 0.70, "log_loss": 0.62}
    )
    assert ok and reason.startswith("promoted")
    ok, reason = promotion_decision(
        {"accuracy": 0.68, "log_loss": 0.60}, {"accuracy": 0.70, "log_loss": 0.62}
    )
    assert not ok and "accuracy below" in reason
    ok, reason = promotion_decision(
        {"accuracy": 0.75, "log_loss": 0.63}, {"accuracy": 0.70, "log_loss": 0.62}
    )
    assert not ok and "log-loss not lower" in reason
    ok, reason = promotion_decision(
        {"accuracy": 0.68, "log_loss": 0.60},
        {"accuracy": 0.70, "log_loss": 0.62},
        accuracy_tolerance=0.03,
    )
    assert ok
    assert not promotion_decision(
        {"accuracy": None, "log_loss": None}, {"accuracy": 0.7, "log_loss": 0.6}
    )[0]
