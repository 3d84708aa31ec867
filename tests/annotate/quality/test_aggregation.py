"""Labeler-reliability aggregation (annotate/quality/aggregation.py) on planted crowds: the
careless labelers get low reliability and the posteriors are closer to the truth than the
majority vote."""

import warnings

import numpy as np
import pandas as pd
import pytest

from annotate.quality.aggregation import (
    AGGREGATIONS,
    AggregationError,
    fit_votes,
)
from tests.annotate.quality.planted import planted_crowd

MODELS = ("dawid_skene", "glad", "mace")


@pytest.fixture(scope="module")
def crowd():
    return planted_crowd(seed=0)


@pytest.fixture(scope="module")
def fits(crowd):
    """Each method fitted once to the module's crowd."""
    return {m: fit(m, crowd) for m in AGGREGATIONS}


def fit(method, crowd):
    return fit_votes(method, crowd.pair, crowd.worker, crowd.says_a)


def log_loss(p_a, truth):
    p = np.clip(np.where(truth, p_a, 1 - p_a), 1e-6, 1)
    return float(-np.log(p).mean())


@pytest.mark.parametrize("method", MODELS)
def test_careless_labelers_get_low_reliability(method, crowd, fits):
    result = fits[method]
    careless = result.reliability[crowd.careless]
    honest = result.reliability[~crowd.careless]
    # Every careless labeler below every honest one.
    assert careless.max() < honest.min(), (careless, honest)
    if method != "mace":  # MACE's reliability is a competence, not an accuracy
        assert careless.max() < 0.65
        assert np.corrcoef(honest, crowd.accuracy[~crowd.careless])[0, 1] > 0.5


@pytest.mark.parametrize("method", MODELS)
def test_posteriors_are_closer_to_the_truth_than_the_majority(method, crowd, fits):
    majority, result = fits["majority"], fits[method]
    right = ((result.p_a > 0.5) == crowd.truth).mean()
    majority_right = ((majority.p_a > 0.5) == crowd.truth).mean()
    assert right >= majority_right + 0.02, (right, majority_right)
    assert log_loss(result.p_a, crowd.truth) < log_loss(majority.p_a, crowd.truth)


def test_majority_is_the_vote_share_and_the_others_agreement():
    # Pair 0: A, A, B; pair 1: B alone.
    result = fit_votes("majority", [0, 0, 0, 1], [0, 1, 2, 0], [True, True, False, False])
    assert result.p_a.tolist() == pytest.approx([2 / 3, 0.0])
    # Worker 0 and 1 each agree with the other's... one A and one B: a tie is no majority;
    # worker 2 (B) disagrees with the others' A, A.
    assert np.isnan(result.reliability[0]) and np.isnan(result.reliability[1])
    assert result.reliability[2] == 0.0


def test_dawid_skene_is_crowd_kits_one_coin_model(crowd, fits):
    from crowdkit.aggregation import OneCoinDawidSkene

    data = pd.DataFrame(
        {"task": crowd.pair, "worker": crowd.worker, "label": crowd.says_a.astype(int)}
    )
    reference = OneCoinDawidSkene(n_iter=100, tol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p_a = reference.fit_predict_proba(data)[1].sort_index().to_numpy()
    assert fits["dawid_skene"].p_a == pytest.approx(p_a, abs=1e-9)
    skills = reference.skills_.sort_index().to_numpy()
    assert fits["dawid_skene"].reliability == pytest.approx(skills, abs=1e-9)


def test_mace_is_crowd_kits_mace():
    """MACE on arrays is crowd-kit's MACE step for step from the same start. crowd-kit
    draws its start per worker in order of first appearance and sorts its habit counts by
    worker and label value, so the votes go in sorted by worker, a B vote first."""
    from crowdkit.aggregation import MACE as CrowdKitMACE

    from annotate.quality.aggregation import MACE_ITERATIONS

    crowd = planted_crowd(seed=2)
    order = np.lexsort((crowd.says_a, crowd.worker))
    pair, worker, says_a = crowd.pair[order], crowd.worker[order], crowd.says_a[order]
    data = pd.DataFrame({"task": pair, "worker": worker, "label": says_a.astype(int)})
    reference = CrowdKitMACE(n_restarts=1, n_iter=MACE_ITERATIONS, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p_a = reference.fit_predict_proba(data)[1].sort_index().to_numpy()
    ours = fit_votes("mace", pair, worker, says_a)
    assert len(p_a) == len(ours.p_a)
    assert ours.p_a == pytest.approx(p_a, abs=1e-9)
    assert ours.reliability == pytest.approx(reference.spamming_[:, 1], abs=1e-9)
    # Not the trivial fit: the planted careless labelers are found.
    assert ours.reliability[crowd.careless].max() < ours.reliability[~crowd.careless].min()


def glad_log_posterior(crowd, alpha, beta):
    """GLAD's objective: log P(votes | alpha, beta) with a uniform class prior, plus the
    N(1, 1) priors on alpha and beta."""
    x = alpha[crowd.worker] * np.exp(beta[crowd.pair])
    n = len(beta)
    right, wrong = -np.logaddexp(0, -x), -np.logaddexp(0, x)
    if_a = np.bincount(crowd.pair, np.where(crowd.says_a, right, wrong), minlength=n)
    if_b = np.bincount(crowd.pair, np.where(crowd.says_a, wrong, right), minlength=n)
    prior = -0.5 * (((alpha - 1) ** 2).sum() + ((beta - 1) ** 2).sum())
    return (np.logaddexp(if_a, if_b) + np.log(0.5)).sum() + prior


def test_glad_matches_crowd_kit():
    """GLAD here is crowd-kit's model fitted on arrays: the same label on nearly every pair,
    and at least as good a fit of the same objective (crowd-kit stops once its objective
    dips, here after two iterations)."""
    from crowdkit.aggregation import GLAD

    crowd = planted_crowd(seed=1, n_pairs=150)
    data = pd.DataFrame(
        {"task": crowd.pair, "worker": crowd.worker, "label": crowd.says_a.astype(int)}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = GLAD().fit(data)
    reference_p_a = reference.probas_[1].sort_index().to_numpy()
    ours = fit("glad", crowd)
    assert ((ours.p_a > 0.5) == (reference_p_a > 0.5)).mean() >= 0.9
    theirs = glad_log_posterior(
        crowd, reference.alphas_.sort_index().to_numpy(), reference.betas_.sort_index().to_numpy()
    )
    assert glad_log_posterior(crowd, ours.params["alpha"], ours.params["beta"]) > theirs


@pytest.mark.parametrize("method", AGGREGATIONS)
def test_edge_cases(method):
    empty = fit_votes(method, [], [], [], n_pairs=2, n_workers=1)
    assert empty.p_a.tolist() == [0.5, 0.5]
    # Every vote for A: every posterior leans to A.
    unanimous = fit_votes(method, [0, 0, 1], [0, 1, 0], [True, True, True])
    assert (unanimous.p_a > 0.5).all()
    # Every vote for B.
    against = fit_votes(method, [0, 0, 1], [0, 1, 0], [False, False, False])
    assert (against.p_a < 0.5).all()


def test_unknown_method_and_ragged_votes_are_refused():
    with pytest.raises(AggregationError, match="aggregation must be one of"):
        fit_votes("median", [0], [0], [True])
    with pytest.raises(AggregationError, match="differ in length"):
        fit_votes("majority", [0, 1], [0], [True])
