"""Rating quality measures on cases with known answers: Krippendorff's alpha on the worked
example of Krippendorff (2011), quadratic-weighted kappa on a textbook table and against
scikit-learn, perfect agreement, and lenient, harsh and middle-of-the-scale labelers."""

import numpy as np
import pytest

from annotate.quality.agreement import krippendorff_alpha
from annotate.quality.ratings import (
    LabelerRating,
    aspect_agreement,
    pairwise_kappa,
    quadratic_kappa,
    ratings_report,
)

SCALES = {"helpfulness": (0, 4), "verbosity": (0, 4)}


def test_krippendorff_2011_worked_example():
    # "Computing Krippendorff's Alpha-Reliability" (2011), section C: four observers, twelve
    # units, values 1-5 with gaps. Published: nominal 0.743, interval 0.849, ordinal 0.815.
    n = None
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    ]
    units = [[row[u] for row in data if row[u] is not None] for u in range(12)]
    assert round(krippendorff_alpha(units, "nominal"), 3) == 0.743
    assert round(krippendorff_alpha(units, "interval"), 3) == 0.849
    assert round(krippendorff_alpha(units, "ordinal"), 3) == 0.815
    # The same items as ratings of one aspect (units of one value are left out).
    items = {u: {k: row[u] for k, row in enumerate(data) if row[u] is not None} for u in range(12)}
    figures = aspect_agreement(items, 1, 5, n_boot=200)
    assert figures["alpha_interval"] == pytest.approx(0.8491, abs=1e-4)
    assert figures["alpha_ordinal"] == pytest.approx(0.8154, abs=1e-4)
    assert figures["items"] == 11 and figures["ratings"] == 3 + 4 * 8 + 3 + 2 + 1
    low, high = figures["alpha_interval_ci"]
    assert low < 0.8491 < high


def test_quadratic_kappa_on_a_textbook_table():
    # Two readers, 50 items, yes/no (the usual worked example of Cohen's kappa): 20 both yes,
    # 5 yes/no, 10 no/yes, 15 both no. p_o = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5,
    # kappa = 0.4; on a two-point scale the quadratic weights are the plain ones.
    x = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    y = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert quadratic_kappa(x, y, 0, 1) == pytest.approx(0.4)
    # Three points, by hand: pairs (0,0) (1,1) (2,2) (0,1) (2,0). Weights (i-j)^2/4.
    # Observed weighted disagreement: 1/4 + 4/4 = 1.25. Margins: x = (2, 1, 2), y = (2, 2, 1)
    # over 5; chance: sum of x_i y_j / 5 * w_ij =
    #   (2*2*1 + 2*1*4 + 1*2*1 + 1*1*1 + 2*2*4 + 2*2*1) / 5 / 4 = 35/20 = 1.75.
    # kappa = 1 - 1.25 / 1.75 = 2/7.
    assert quadratic_kappa([0, 1, 2, 0, 2], [0, 1, 2, 1, 0], 0, 2) == pytest.approx(2 / 7)
    assert quadratic_kappa([2, 2, 2], [2, 2, 2], 0, 4) is None  # no chance disagreement


def test_quadratic_kappa_matches_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    for _ in range(30):
        x = rng.integers(0, 5, size=40)
        y = np.clip(x + rng.integers(-2, 3, size=40), 0, 4)
        expected = metrics.cohen_kappa_score(x, y, weights="quadratic", labels=range(5))
        assert quadratic_kappa(x, y, 0, 4) == pytest.approx(expected)


def _rate(values, labelers=("ann", "ben", "cat"), aspect="helpfulness", set_id=1):
    """values[response][labeler index]: one rating each."""
    ids = {name: k + 1 for k, name in enumerate(labelers)}
    return [
        LabelerRating(set_id, response, aspect, ids[name], v)
        for response, row in values.items()
        for name, v in zip(labelers, row, strict=True)
    ]


def test_perfect_agreement_gives_alpha_1_and_kappa_1():
    ratings = _rate({101: (0, 0, 0), 102: (2, 2, 2), 103: (4, 4, 4), 104: (3, 3, 3)})
    (row,) = ratings_report(ratings, SCALES, n_boot=50)["aspects"]
    assert row["alpha_interval"] == 1.0 and row["alpha_ordinal"] == 1.0
    assert row["kappa_quadratic"] == 1.0 and row["kappa_pairs"] == 3
    assert row["mean"] == 2.25 and row["items"] == 4


def test_a_lenient_labeler_gets_a_positive_offset_and_a_harsh_one_a_negative_one():
    # ann and ben agree; cat rates one point above them, dan one below (on 12 responses).
    rng = np.random.default_rng(2)
    base = rng.integers(1, 4, size=12)
    values = {200 + i: (b, b, b + 1, b - 1) for i, b in enumerate(base)}
    labelers = ("ann", "ben", "cat", "dan")
    report = ratings_report(_rate(values, labelers), SCALES, n_boot=0)
    rows = report["labelers"]
    ann, ben, cat, dan = (rows[k] for k in (1, 2, 3, 4))
    # cat against the others' mean (b + b + b - 1) / 3 = b - 1/3: +4/3 points, 1/3 of the scale.
    assert cat["by_aspect"]["helpfulness"]["offset"] == pytest.approx(4 / 3, abs=1e-4)
    assert cat["offset"] == pytest.approx(1 / 3, abs=1e-4)
    assert cat["leaning"] == "lenient" and cat["offset_p"] == 0.0
    assert dan["offset"] == pytest.approx(-1 / 3, abs=1e-4) and dan["leaning"] == "harsh"
    # ann against (b + b + 1 + b - 1) / 3 = b: no offset at all.
    assert ann["offset"] == 0.0 and ann["leaning"] is None and ann["offset_p"] == 1.0
    assert ann["compared"] == ben["compared"] == 12 and ann["ratings"] == 12


def test_a_labeler_who_keeps_to_the_middle_has_the_smaller_spread():
    values = {300 + i: (v, v, 2) for i, v in enumerate([0, 4, 1, 3, 0, 4, 2, 1])}
    rows = ratings_report(_rate(values), SCALES, n_boot=0)["labelers"]
    cat = rows[3]
    assert cat["spread"] == 0.0 and cat["others_spread"] > 0.3
    assert rows[1]["spread"] == pytest.approx(np.std([0, 4, 1, 3, 0, 4, 2, 1]) / 4, abs=1e-4)


def test_pairwise_kappa_needs_two_shared_items_and_weights_by_them():
    items = {
        1: {1: 0, 2: 0},
        2: {1: 4, 2: 4},
        3: {1: 2, 2: 3},
        4: {1: 1, 3: 3},  # labelers 1 and 3 share one item: left out
    }
    kappa, pairs = pairwise_kappa(items, 0, 4)
    assert pairs == 1
    assert kappa == pytest.approx(quadratic_kappa([0, 4, 2], [0, 4, 3], 0, 4))


def test_aspects_in_the_projects_order_and_an_unknown_aspect_on_its_own_range():
    ratings = _rate({1: (1, 2, 1), 2: (3, 3, 2)}, aspect="verbosity")
    ratings += _rate({1: (4, 4, 3), 2: (0, 1, 0)}, aspect="helpfulness")
    ratings += _rate({1: (7, 7, 7), 2: (9, 8, 9)}, aspect="retired")
    report = ratings_report(ratings, SCALES, n_boot=0)
    assert [(a["name"], a["min"], a["max"]) for a in report["aspects"]] == [
        ("helpfulness", 0, 4),
        ("verbosity", 0, 4),
        ("retired", 7, 9),
    ]
    assert report["ratings"] == 18
