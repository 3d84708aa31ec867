"""Agreement measures against hand-worked examples and against the `krippendorff` package."""

import numpy as np
import pytest

from annotate.quality.agreement import (
    agreement_report,
    bootstrap_interval,
    fleiss_kappa,
    krippendorff_alpha,
    pair_agreement,
    percent_agreement,
    signed_strength,
)

# Three pairs: two labelers agree on one, split 2-1 on another, and disagree on the third.
CHOICES = [["a", "a", "b"], ["a", "a"], ["b", "tie"]]


def test_percent_agreement_by_hand():
    # Per pair, the share of ordered pairs of judgments that agree:
    #   [a, a, b]: a-a agree in 2*1 = 2 of 3*2 = 6 ordered pairs -> 1/3
    #   [a, a]:    2 of 2                                         -> 1
    #   [b, tie]:  0 of 2                                         -> 0
    # Mean over pairs: (1/3 + 1 + 0) / 3 = 4/9.
    assert percent_agreement(CHOICES) == pytest.approx(4 / 9)
    assert pair_agreement(["a", "a", "b"]) == pytest.approx(1 / 3)
    assert pair_agreement(["a"]) is None


def test_krippendorff_nominal_by_hand():
    # Coincidences o_ck = sum over pairs of n_c * n_k / (m - 1) (n_c (n_c - 1) on the diagonal):
    #   [a, a, b] (m = 3): o_aa += 2*1/2 = 1, o_ab += 2*1/2 = 1, o_ba += 1
    #   [a, a]    (m = 2): o_aa += 2
    #   [b, tie]  (m = 2): o_b,tie += 1, o_tie,b += 1
    # Margins: n_a = 3 + 1 = 4, n_b = 1 + 1 = 2, n_tie = 1; n = 7.
    # Observed disagreement (off-diagonal coincidences): 1 + 1 + 1 + 1 = 4.
    # Expected: sum over c != k of n_c n_k = 7^2 - (16 + 4 + 1) = 28.
    # alpha = 1 - (n - 1) * 4 / 28 = 1 - 24/28 = 1/7.
    assert krippendorff_alpha(CHOICES, "nominal") == pytest.approx(1 / 7)


SIGNED = [[1, 1, -1], [2, 2], [-1, 0]]


def test_krippendorff_interval_by_hand():
    # Coincidences: [1, 1, -1]: o_11 += 1, o_1,-1 += 1, o_-1,1 += 1; [2, 2]: o_22 += 2;
    # [-1, 0]: o_-1,0 += 1, o_0,-1 += 1. Margins n_-1 = 2, n_0 = 1, n_1 = 2, n_2 = 2; n = 7.
    # Observed sum o * (c - k)^2: 2 * 4 (for 1 vs -1) + 2 * 1 (for -1 vs 0) = 10.
    # Expected sum n_c n_k (c - k)^2 over unordered pairs of values:
    #   (-1,0) 2*1*1 = 2, (-1,1) 2*2*4 = 16, (-1,2) 2*2*9 = 36, (0,1) 1*2*1 = 2,
    #   (0,2) 1*2*4 = 8, (1,2) 2*2*1 = 4: 68, so 136 over ordered pairs.
    # alpha = 1 - 6 * 10 / 136 = 76/136.
    assert krippendorff_alpha(SIGNED, "interval") == pytest.approx(76 / 136)


def test_krippendorff_ordinal_by_hand():
    # Ordinal distance d(c, k) = (n_c + ... + n_k - (n_c + n_k) / 2)^2 with the margins above:
    #   d(-1,0) = (3 - 1.5)^2 = 2.25    d(-1,1) = (5 - 2)^2 = 9    d(-1,2) = (7 - 2)^2 = 25
    #   d(0,1)  = (3 - 1.5)^2 = 2.25    d(0,2) = (5 - 1.5)^2 = 12.25    d(1,2) = (4 - 2)^2 = 4
    # Observed: 2 * 9 + 2 * 2.25 = 22.5.
    # Expected (unordered): 2*1*2.25 + 4*9 + 4*25 + 2*2.25 + 2*12.25 + 4*4 = 185.5; ordered 371.
    # alpha = 1 - 6 * 22.5 / 371 = 236/371.
    assert krippendorff_alpha(SIGNED, "ordinal") == pytest.approx(236 / 371)


def test_krippendorff_undefined_when_every_judgment_is_the_same():
    assert krippendorff_alpha([["a", "a"], ["a", "a", "a"]]) is None
    assert krippendorff_alpha([["a"], ["b"]]) is None  # nothing pairable
    with pytest.raises(ValueError):
        krippendorff_alpha(CHOICES, "ratio")


def test_fleiss_kappa_by_hand():
    units = [["a", "a", "a"], ["a", "a", "b"], ["b", "b", "tie"], ["a", "b", "tie"]]
    # P_i = (sum_j n_ij^2 - 3) / (3 * 2): 1, 2/6, 2/6, 0 -> P-bar = (5/3) / 4 = 5/12.
    # p_a = 6/12, p_b = 4/12, p_tie = 2/12 -> P_e = 1/4 + 1/9 + 1/36 = 14/36 = 7/18.
    # kappa = (5/12 - 7/18) / (1 - 7/18) = (1/36) / (11/18) = 1/22.
    assert fleiss_kappa(units) == pytest.approx(1 / 22)


def test_fleiss_kappa_needs_one_number_of_judgments_per_pair():
    assert fleiss_kappa([["a", "a"], ["a", "b", "b"]]) is None
    # Single judgments carry no agreement and are left out, as in Krippendorff's alpha.
    assert fleiss_kappa([["a", "b"], ["a", "a"], ["b"]]) == fleiss_kappa([["a", "b"], ["a", "a"]])


def _random_reliability(rng, raters, units, values, missing):
    data = rng.choice(values, size=(raters, units)).astype(float)
    # A shared tendency per unit so that alpha is not always near zero.
    lean = rng.choice(values, size=units)
    agree = rng.random((raters, units)) < 0.5
    data[agree] = np.broadcast_to(lean, (raters, units))[agree]
    data[rng.random((raters, units)) < missing] = np.nan
    return data


@pytest.mark.parametrize("level", ["nominal", "interval", "ordinal"])
def test_krippendorff_matches_reference_on_random_data(level):
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(7)
    for trial in range(25):
        values = np.arange(-4, 5) if trial % 2 else np.arange(4)
        data = _random_reliability(
            rng, raters=int(rng.integers(2, 7)), units=60, values=values, missing=0.35
        )
        units = [[float(v) for v in data[:, u] if not np.isnan(v)] for u in range(data.shape[1])]
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
        assert krippendorff_alpha(units, level) == pytest.approx(expected, abs=1e-9)


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(3)
    data = _random_reliability(rng, raters=3, units=300, values=np.arange(4), missing=0.0)
    units = [list(data[:, u]) for u in range(data.shape[1])]
    alpha = krippendorff_alpha(units)
    low, high = bootstrap_interval(units, "alpha_nominal", n_boot=500, seed=1)
    assert low < alpha < high
    assert high - low < 0.2
    assert bootstrap_interval(units, "alpha_nominal", n_boot=500, seed=1) == (low, high)
    # More pairs, narrower interval.
    small = bootstrap_interval(units[:50], "alpha_nominal", n_boot=500, seed=1)
    assert small[1] - small[0] > high - low
    assert bootstrap_interval([["a", "b"]], "percent") is None


def test_signed_strength_scale():
    assert signed_strength("a", 3) == 3
    assert signed_strength("b", 2) == -2
    assert signed_strength("b", None) == -1
    assert signed_strength("tie", None) == 0
    assert signed_strength("both_bad", 4) is None


def test_agreement_report_shape_and_fleiss_over_the_common_number_of_judgments():
    choices = [
        ["a", "a", "a"],
        ["a", "a", "b"],
        ["b", "b", "tie"],
        ["a", "b", "tie"],
        ["a", "b"],
        ["a"],
    ]
    signed = [[v for c in u if (v := signed_strength(c, None)) is not None] for u in choices]
    report = agreement_report(choices, signed, n_boot=200)
    assert report["pairs"] == 5  # the single judgment is not pairable
    assert report["judgments"] == 14
    assert report["percent"] == pytest.approx(round(percent_agreement(choices), 4))
    # Fleiss over the four pairs with three judgments each: the hand example above.
    assert report["fleiss_kappa"] == pytest.approx(round(1 / 22, 4))
    assert (report["fleiss_kappa_pairs"], report["fleiss_kappa_raters"]) == (4, 3)
    for key in ("percent", "krippendorff_alpha", "krippendorff_alpha_interval", "fleiss_kappa"):
        low, high = report[f"{key}_ci"]
        assert low <= high
    empty = agreement_report([], [])
    assert empty["krippendorff_alpha"] is None and empty["fleiss_kappa"] is None
    assert empty["percent_ci"] is None
