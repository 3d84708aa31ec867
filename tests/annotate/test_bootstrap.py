"""The one bootstrap routine: resamples through counts, and percentile intervals."""

import numpy as np
import pytest

from annotate.bootstrap import percentile_interval, resample_weights


def test_each_resample_draws_every_occurrence_again_in_blocks():
    counts = np.array([3, 1, 6])
    blocks = list(resample_weights(counts, 450, seed=1, block=200))
    assert [len(b) for b in blocks] == [200, 200, 50]
    rows = np.concatenate(blocks)
    assert (rows.sum(axis=1) == 10).all() and (rows >= 0).all()
    # Over many resamples each item is drawn in proportion to its count.
    assert rows.mean(axis=0) == pytest.approx([3, 1, 6], abs=0.3)
    again = np.concatenate(list(resample_weights(counts, 450, seed=1, block=200)))
    assert (again == rows).all()
    assert list(resample_weights(counts, 0, seed=1)) == []


def test_the_interval_of_a_mean_matches_its_standard_error():
    rng = np.random.default_rng(0)
    sample = rng.normal(10.0, 2.0, size=400)
    means = np.concatenate(
        [w @ sample / len(sample) for w in resample_weights(np.ones(400), 2000, seed=3)]
    )
    low, high = percentile_interval(means)
    half = 1.96 * 2.0 / np.sqrt(400)  # about 0.196
    assert low == pytest.approx(sample.mean() - half, abs=0.03)
    assert high == pytest.approx(sample.mean() + half, abs=0.03)


def test_undefined_resamples_are_left_out_and_a_column_without_any_is_nan():
    values = np.array([[1.0, np.nan], [np.inf, np.nan], [3.0, np.nan]])
    low, high = percentile_interval(values, confidence=0.5)
    assert (low[0], high[0]) == (1.5, 2.5)
    assert np.isnan(low[1]) and np.isnan(high[1])
