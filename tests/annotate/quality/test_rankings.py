"""Ranking quality measures on hand-made cases with known answers: implied-pair alpha and
Kendall's W (worked by hand, and against scipy), tau-b against the others' consensus, the top
slot's bias, and the Plackett-Luce consensus (against a direct maximisation of its posterior,
and recovering a planted order from noisy rankings)."""

from itertools import combinations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import kendalltau, spearmanr

from annotate.quality.agreement import krippendorff_alpha
from annotate.quality.plackett_luce import PRIOR, Problem, order_of, plackett_luce
from annotate.quality.rankings import (
    LabelerRanking,
    consensus,
    implied_outcomes,
    kendalls_w,
    midranks,
    pair_agreement,
    rankings_report,
    reliability_weights,
    tau_b,
)

TRUE = [11, 12, 13, 14]  # best first


def ranking(set_id, labeler, order, shown=()):
    groups = [g if isinstance(g, list) else [g] for g in order]
    return LabelerRanking.of(set_id, labeler, groups, shown)


def by_set(rankings):
    out = {}
    for r in rankings:
        out.setdefault(r.set_id, []).append(r)
    return out


def test_midranks_and_implied_pairs_of_a_ranking_with_a_tie():
    groups = [[12], [11, 14], [13]]
    assert midranks(groups) == {12: 1.0, 11: 2.5, 14: 2.5, 13: 4.0}
    assert implied_outcomes(groups) == {
        (11, 12): "b",
        (11, 13): "a",
        (11, 14): "tie",
        (12, 13): "a",
        (12, 14): "a",
        (13, 14): "b",
    }


ORDERS = [TRUE, [13, 11, 14, 12], [14, 13, 12, 11]]  # one order per set


def test_perfect_agreement_gives_alpha_1_w_1_and_tau_1():
    rankings = [ranking(s, u, ORDERS[s], shown=TRUE) for s in range(3) for u in range(3)]
    report = rankings_report(rankings, n_boot=50)
    assert report["agreement"]["alpha"] == 1.0
    assert report["agreement"]["pairs"] == 3 * 6
    assert report["concordance"]["mean"] == 1.0 and report["concordance"]["sets"] == 3
    assert [row["tau_b"] for row in report["labelers"].values()] == [1.0, 1.0, 1.0]
    assert {s["set_id"]: s["consensus"] for s in report["lowest_sets"]} == {
        s: [[i] for i in ORDERS[s]] for s in range(3)
    }


def test_alpha_is_undefined_when_every_implied_outcome_is_the_same():
    # Every labeler ranks every set by ascending id: one value throughout, no variation for
    # agreement to explain (Krippendorff's alpha is 0/0); W is still 1.
    report = rankings_report([ranking(s, u, TRUE) for s in range(2) for u in range(2)])
    assert report["agreement"]["alpha"] is None and report["concordance"]["mean"] == 1.0


def test_implied_pair_alpha_by_hand():
    # Two labelers, one set of three: a > b > c and a > c > b. Implied pairs:
    #   (a, b): a, a    (a, c): a, a    (b, c): "a" (b above c), "b" (c above b)
    # Coincidences: o_aa = 2 + 2 = 4, o_ab = o_ba = 1; n_a = 5, n_b = 1, n = 6.
    # alpha = 1 - (n - 1) * 2 / (n^2 - n_a^2 - n_b^2) = 1 - 5 * 2 / (36 - 25 - 1) = 0.
    sets = by_set([ranking(1, 1, [1, 2, 3]), ranking(1, 2, [1, 3, 2])])
    assert pair_agreement(sets, n_boot=0)["alpha"] == pytest.approx(0.0)


def test_implied_pair_alpha_is_krippendorffs_over_the_pairs_and_its_interval_brackets_it():
    rng = np.random.default_rng(3)
    rankings = []
    for s in range(40):
        for u in range(int(rng.integers(2, 5))):
            order = list(rng.permutation(TRUE)) if rng.random() < 0.5 else list(TRUE)
            # An occasional tie of the two middle responses.
            groups = [[order[0]], order[1:3], [order[3]]] if rng.random() < 0.2 else order
            rankings.append(ranking(s, u, groups))
    sets = by_set(rankings)
    units = []
    for rs in sets.values():
        outcomes = [implied_outcomes(r.groups) for r in rs]
        units += [[o[pair] for o in outcomes] for pair in combinations(TRUE, 2)]
    figures = pair_agreement(sets, n_boot=300)
    assert figures["alpha"] == pytest.approx(krippendorff_alpha(units, "nominal"), abs=1e-4)
    low, high = figures["alpha_ci"]
    assert low < figures["alpha"] < high
    assert figures == pair_agreement(sets, n_boot=300)  # a fixed seed


def test_kendalls_w_by_hand_with_and_without_ties():
    # Three labelers, four responses A B C D: ranks (1 2 3 4), (1 3 2 4), (2 1 3 4).
    # Rank sums 4, 6, 8, 12 (mean 7.5): S = 12.25 + 2.25 + 0.25 + 20.25 = 35.
    # W = 12 S / (m^2 (n^3 - n)) = 420 / (9 * 60) = 7/9.
    assert kendalls_w([[[1], [2], [3], [4]], [[1], [3], [2], [4]], [[2], [1], [3], [4]]]) == (
        pytest.approx(7 / 9)
    )
    # Two labelers, three responses: (1 2 3) and (1.5 1.5 3), a tie of two.
    # Rank sums 2.5, 3.5, 6 (mean 4): S = 6.5. T = 2^3 - 2 = 6.
    # W = 12 * 6.5 / (4 * 24 - 2 * 6) = 78 / 84 = 13/14.
    assert kendalls_w([[[1], [2], [3]], [[1, 2], [3]]]) == pytest.approx(13 / 14)
    assert kendalls_w([[[1], [2], [3]]]) is None
    assert kendalls_w([[[1, 2, 3]], [[1, 2, 3]]]) is None  # nothing ranked


def test_kendalls_w_matches_the_mean_spearman_identity():
    # Without ties, mean pairwise Spearman rho = (m W - 1) / (m - 1).
    rng = np.random.default_rng(0)
    for _ in range(20):
        m, n = int(rng.integers(2, 7)), int(rng.integers(3, 10))
        orders = [list(rng.permutation(n)) for _ in range(m)]
        w = kendalls_w([[[i] for i in order] for order in orders])
        ranks = [np.argsort(order) for order in orders]
        rho = np.mean([spearmanr(a, b).statistic for a, b in combinations(ranks, 2)])
        assert (m * w - 1) / (m - 1) == pytest.approx(rho)


def test_tau_b_matches_scipy_with_ties():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, size=(200, 7)).astype(float)
    y = rng.integers(0, 4, size=(200, 7)).astype(float)
    ours = tau_b(x, y)
    for row in range(200):
        expected = kendalltau(x[row], y[row]).statistic
        if np.isnan(expected):
            assert np.isnan(ours[row])
        else:
            assert ours[row] == pytest.approx(expected)


def test_a_labeler_who_reverses_every_ranking_gets_tau_minus_1():
    rankings = [ranking(s, u, ORDERS[s % 3]) for s in range(4) for u in (1, 2, 3, 4)]
    rankings += [ranking(s, 9, ORDERS[s % 3][::-1]) for s in range(4)]
    rows = rankings_report(rankings, n_boot=0)["labelers"]
    assert rows[9]["tau_b"] == -1.0 and rows[9]["tau_n"] == 4
    # The others, each against three agreeing labelers and the reverser: the consensus holds.
    # (Against two and the reverser it need not: Plackett-Luce reads a ranking top-down, and
    # the reverser's last place costs the best response more than their first place gains
    # the worst.)
    assert [rows[u]["tau_b"] for u in (1, 2, 3, 4)] == [1.0, 1.0, 1.0, 1.0]


def test_reliability_weights_silence_the_reverser_and_majority_has_none():
    rankings = [ranking(s, u, TRUE) for s in range(6) for u in (1, 2, 3)]
    rankings += [ranking(s, 9, TRUE[::-1]) for s in range(6)]
    sets = by_set(rankings)
    reliability, weights = reliability_weights(sets, "dawid_skene")
    assert reliability[9] < 0.5 < min(reliability[u] for u in (1, 2, 3))
    assert weights[9] == 0.0
    assert np.mean(list(weights.values())) == pytest.approx(1.0)
    assert reliability_weights(sets, "majority") == ({}, {})
    report = rankings_report(rankings, method="glad", n_boot=0)
    assert report["consensus"]["weighted_by"] == "GLAD"
    assert report["labelers"][9]["weight"] == 0.0


def test_weights_decide_between_two_camps():
    # Two labelers say A > B, one says B > A; weight the one three times as much as each of
    # the other two and the consensus follows them.
    sets = by_set([ranking(1, 1, [1, 2]), ranking(1, 2, [1, 2]), ranking(1, 3, [2, 1])])
    assert consensus(sets) == {1: [[1], [2]]}
    assert consensus(sets, {1: 1.0, 2: 1.0, 3: 3.0}) == {1: [[2], [1]]}


def test_position_bias_of_the_top_slot():
    # K = 4 with no tie on top: 1/4 expected. "eager" tops whatever is shown first;
    # "fair" does so in 2 of 8 rankings, exactly the expected rate.
    rankings = []
    for s in range(8):
        shown = TRUE[s % 4 :] + TRUE[: s % 4]
        rankings.append(ranking(s, 1, shown, shown=shown))  # eager: the shown order
        rankings.append(ranking(s, 2, TRUE, shown=shown))  # fair: shown[0] first twice
    rows = rankings_report(rankings, n_boot=0)["labelers"]
    assert rows[1]["top_rate"] == 1.0 and rows[1]["top_expected"] == 0.25
    assert rows[1]["top_p"] == pytest.approx(0.25**8)  # binomial, two-sided: only 8 of 8
    assert rows[2]["top_rate"] == 0.25 and rows[2]["top_p"] == pytest.approx(1.0)
    # A tie on top widens the no-bias rate to the group's share of the set.
    tied = rankings_report([ranking(1, 1, [TRUE[:2], *TRUE[2:]], shown=TRUE)], n_boot=0)
    assert tied["position"]["expected"] == 0.5 and tied["position"]["top_rate"] == 1.0


def _log_posterior(theta, items, rankings):
    """The Plackett-Luce log-likelihood with Breslow ties plus the Gamma(1 + PRIOR, PRIOR)
    log-prior, written from the definitions (log-worths theta)."""
    w = dict(zip(items, np.exp(theta), strict=True))
    total = float(np.sum(PRIOR * theta - PRIOR * np.exp(theta)))
    for groups, weight in rankings:
        remaining = [i for g in groups for i in g]
        for group in groups:
            if len(remaining) > 1:
                at_risk = sum(w[i] for i in remaining)
                total += weight * sum(np.log(w[i] / at_risk) for i in group)
            remaining = [i for i in remaining if i not in group]
    return total


def test_plackett_luce_is_the_posterior_mode():
    rankings = (
        (((1,), (2,), (3,), (4,)), 1.0),
        (((2,), (1,), (4,), (3,)), 1.0),
        (((1,), (2, 3), (4,)), 2.0),
        (((3,), (1,), (2,), (4,)), 0.5),
    )
    items = (1, 2, 3, 4)
    fitted = plackett_luce([Problem(items, rankings)])[0]
    best = minimize(
        lambda t: -_log_posterior(t, items, rankings), np.zeros(4), method="BFGS", tol=1e-12
    )
    assert [fitted[i] for i in items] == pytest.approx(np.exp(best.x).tolist(), rel=1e-5)


def test_plackett_luce_ties_symmetric_responses():
    rankings = [ranking(1, u, [[1], [2, 3], [4]]) for u in range(3)]
    assert consensus(by_set(rankings)) == {1: [[1], [2, 3], [4]]}
    assert order_of({5: 2.0, 6: 2.0 * (1 + 1e-9), 7: 1.0}) == [[6, 5], [7]]


def test_plackett_luce_recovers_a_planted_order_from_noisy_rankings():
    # Rankings drawn from Plackett-Luce itself (Gumbel noise on log-worths) of six responses
    # whose worths halve down the order: single rankings are often wrong, the consensus of
    # forty is not.
    rng = np.random.default_rng(11)
    items = [21, 22, 23, 24, 25, 26]
    log_worth = -np.log(2) * np.arange(6)
    rankings, wrong = [], 0
    for set_id in range(5):
        for u in range(40):
            order = [items[i] for i in np.argsort(-(log_worth + rng.gumbel(size=6)))]
            wrong += order != items
            rankings.append(ranking(set_id, u, order))
    assert wrong > 150  # most single rankings are not the planted order
    orders = consensus(by_set(rankings))
    assert orders == {s: [[i] for i in items] for s in range(5)}


def test_all_bad_rankings_without_an_order_are_counted_but_not_measured():
    order = ORDERS[1]
    rankings = [ranking(1, 1, order), ranking(1, 2, order), LabelerRanking.of(1, 3, [])]
    report = rankings_report(rankings, n_boot=0)
    assert report["rankings"] == 3 and report["sets"] == 1
    assert report["labelers"][3] == {
        "rankings": 1,
        "all_bad": 1,
        "tau_b": None,
        "tau_n": 0,
        "top_rate": None,
        "top_expected": None,
        "top_p": None,
        "reliability": None,
        "weight": None,
    }
    assert report["agreement"]["alpha"] == 1.0
