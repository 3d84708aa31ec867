"""Labeler-reliability aggregation: each pair's posterior P(A better) and each labeler's
reliability, fitted jointly from every decided vote (A or B) of a project.

Four methods, the project's `aggregation` setting:
- majority: the vote share of A among the pair's A/B votes (the rule before these models);
  reliability is the share of a labeler's votes that the others' majority shares.
- dawid_skene: Dawid & Skene (1979) with one accuracy per labeler, fitted by EM: crowd-kit's
  OneCoinDawidSkene step for step on arrays (the tests hold it to crowd-kit's posteriors;
  crowd-kit's pandas version took 84 s for a million votes on the shared 2-core machine);
  reliability is that accuracy, the probability of a right vote. Which
  response is "A" is arbitrary (the smaller id) and the sides are shuffled, so a labeler's
  confusion over A/B is symmetric: the full 2x2 matrix only adds a class prior and a bias
  to fit, and on a 150-pair planted crowd its prior drifted to 0.66 and it lost 9 points
  of label accuracy where the one-coin model lost 3.
- mace: Hovy et al. (2013), each labeler knows the answer with probability theta and
  otherwise follows a label habit of their own: crowd-kit's MACE (variational Bayes) step
  for step on arrays (the tests hold it to crowd-kit's posteriors and competences);
  crowd-kit's pandas version took 87 s and 411 MB for a million votes. One restart of 20
  iterations: crowd-kit's restarts all start from the same seeded draw, so they add
  nothing, and on 100,000 planted votes 20 iterations were within 0.0003 of 50's
  accuracy; reliability is theta, MACE's competence.
- glad: Whitehill et al. (2009), P(right) = sigmoid(alpha_labeler * exp(beta_pair)): ability
  and pair difficulty. crowd-kit's objective, priors (alpha, beta ~ N(1, 1)) and start
  (alpha = beta = 1, uniform class prior), fitted here on arrays: crowd-kit's pandas version
  needs about 2 minutes per 100,000 votes (hours for a million). The M-step takes Newton
  steps on each parameter's own coordinate instead of conjugate gradients over all at once;
  the tests hold the result to crowd-kit's. Reliability: sigmoid(alpha), P(right) on a pair
  of unit difficulty (exp(beta) = 1); averaged over the labeler's own pairs it would mostly
  measure how easy their pairs were.

Votes arrive as integer arrays (pair index, worker index, says_a), so a million votes cost
about 20 bytes each here.
Ties and both-bad votes are not in the fit (see annotate.selectors.dataset for how they
enter a pair's label).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

MAJORITY = "majority"
DAWID_SKENE = "dawid_skene"
GLAD = "glad"
MACE = "mace"
AGGREGATIONS = (MAJORITY, DAWID_SKENE, GLAD, MACE)
MODEL_NAMES = {
    MAJORITY: "majority vote",
    DAWID_SKENE: "one-coin Dawid-Skene",
    GLAD: "GLAD",
    MACE: "MACE",
}

# EM stops when the objective per vote improves by less than this (crowd-kit's default tol).
TOLERANCE = 1e-5
# crowd-kit's floor for probabilities.
EPS = 1e-10
MAX_ITERATIONS = 100
GLAD_NEWTON_STEPS = 3
MACE_ITERATIONS = 20
# crowd-kit MACE's defaults: the start's spread and the variational priors.
MACE_DEFAULT_NOISE = 0.5
MACE_ALPHA = 0.5
MACE_BETA = 0.5
MACE_HABIT_PRIOR = 10.0


class AggregationError(ValueError):
    """An unknown aggregation name or votes that do not line up."""


@dataclass
class Fit:
    """Posterior P(A better) per pair index, reliability per worker index (NaN where the
    model says nothing, e.g. a worker with no A/B vote), and the fit's time."""

    method: str
    p_a: np.ndarray
    reliability: np.ndarray
    seconds: float
    # The model's own parameters where they are worth keeping (GLAD: alpha, beta).
    params: dict[str, np.ndarray] = field(default_factory=dict)


def fit_votes(
    method: str,
    pair_index: np.ndarray,
    worker_index: np.ndarray,
    says_a: np.ndarray,
    *,
    n_pairs: int | None = None,
    n_workers: int | None = None,
) -> Fit:
    """Fit one aggregation to A/B votes given as parallel arrays: pair index (0..n_pairs-1),
    worker index (0..n_workers-1) and whether the vote is for A. Pairs without a vote get
    p_a = 0.5."""
    if method not in AGGREGATIONS:
        raise AggregationError(f"aggregation must be one of {AGGREGATIONS}, not {method!r}")
    pair_index = np.asarray(pair_index, dtype=np.int64)
    worker_index = np.asarray(worker_index, dtype=np.int64)
    says_a = np.asarray(says_a, dtype=bool)
    if not len(pair_index) == len(worker_index) == len(says_a):
        raise AggregationError("pair, worker and vote arrays differ in length")
    n_pairs = int(pair_index.max()) + 1 if n_pairs is None and len(pair_index) else n_pairs or 0
    n_workers = (
        int(worker_index.max()) + 1 if n_workers is None and len(worker_index) else n_workers or 0
    )
    started = time.perf_counter()
    params: dict[str, np.ndarray] = {}
    if not len(pair_index):
        p_a, reliability = np.full(n_pairs, 0.5), np.full(n_workers, np.nan)
    elif method == MAJORITY:
        p_a, reliability = _majority(pair_index, worker_index, says_a, n_pairs, n_workers)
    elif method == GLAD:
        p_a, reliability, params = _glad(pair_index, worker_index, says_a, n_pairs, n_workers)
    elif method == DAWID_SKENE:
        p_a, reliability = _one_coin(pair_index, worker_index, says_a, n_pairs, n_workers)
    else:
        p_a, reliability = _mace(pair_index, worker_index, says_a, n_pairs, n_workers)
    return Fit(method, p_a, reliability, time.perf_counter() - started, params)


def _majority(pairs, workers, says_a, n_pairs, n_workers):
    votes = np.bincount(pairs, minlength=n_pairs).astype(float)
    a_votes = np.bincount(pairs, weights=says_a, minlength=n_pairs)
    p_a = np.divide(a_votes, votes, out=np.full(n_pairs, 0.5), where=votes > 0)
    # The others' majority on each vote's pair: the labeler's own vote left out.
    others = votes[pairs] - 1
    others_a = a_votes[pairs] - says_a
    decided = (others > 0) & (2 * others_a != others)
    agrees = decided & ((2 * others_a > others) == says_a)
    n = np.bincount(workers[decided], minlength=n_workers).astype(float)
    k = np.bincount(workers[agrees], minlength=n_workers)
    reliability = np.divide(k, n, out=np.full(n_workers, np.nan), where=n > 0)
    return p_a, reliability


def _mace(pairs, workers, says_a, n_pairs, n_workers):
    """crowd-kit's MACE (variational Bayes, one restart) step for step on arrays: the same
    start (its random_state 0 draw; its restarts all redraw that same state, so one restart
    is all of them), the same E-step and the same digamma M-step with its priors (Beta(0.5,
    0.5) on knowing, Dirichlet(10, 10) on the habit). Label 0 is B, label 1 is A."""
    from scipy.special import digamma, expit

    label = says_a.astype(np.int64)
    # Column 0 spams, column 1 knows; habit[w, l] = P(label l | spamming).
    # scipy's uniform(1, 1 + noise).rvs(random_state=0), bit for bit, without importing
    # scipy.stats (2 s and 50 MB).
    start = 1 + (1 + MACE_DEFAULT_NOISE) * np.random.RandomState(0).random_sample((n_workers, 2))
    spamming = start / start.sum(axis=1, keepdims=True)
    habit = spamming.copy()  # crowd-kit draws both from the same seed: the same numbers
    knowing_prior = np.array([MACE_ALPHA, MACE_BETA])
    habit_prior = np.full(2, MACE_HABIT_PRIOR)
    cell = workers * 2 + label

    def e_step(spamming, habit):
        guess = spamming[workers, 0] * habit[workers, label]
        knows = spamming[workers, 1]
        # P(vote | gold = B) and P(vote | gold = A): a knowing labeler says the gold label.
        given_b = guess + knows * (label == 0)
        given_a = guess + knows * (label == 1)
        # The product over a pair's votes, in logs: a pair with hundreds of votes would
        # underflow crowd-kit's plain product; normalised, the two agree.
        log_odds = np.bincount(pairs, weights=np.log(given_a) - np.log(given_b), minlength=n_pairs)
        p_a = expit(log_odds)
        vote_p_a = p_a[pairs]
        p_vote_gold = np.where(label == 1, vote_p_a, 1.0 - vote_p_a)
        # E[spamming] per vote and E[knowing] per vote, summed per (worker, label) / worker.
        spam = guess * ((1.0 - vote_p_a) / given_b + vote_p_a / given_a)
        knew = p_vote_gold * knows / (guess + knows)
        habit_counts = np.bincount(cell, weights=spam, minlength=2 * n_workers).reshape(-1, 2)
        knowing_counts = np.stack(
            [habit_counts.sum(axis=1), np.bincount(workers, weights=knew, minlength=n_workers)],
            axis=1,
        )
        return p_a, habit_counts, knowing_counts

    def variational_normalize(counts, prior):
        norm = np.exp(digamma((counts + prior).sum(axis=1, keepdims=True)))
        return np.divide(
            np.exp(digamma(counts + prior)),
            norm,
            out=np.zeros_like(counts),
            where=~np.isclose(norm, 0.0),
        )

    p_a, habit_counts, knowing_counts = e_step(spamming, habit)
    for _ in range(MACE_ITERATIONS):
        spamming = variational_normalize(knowing_counts, knowing_prior)
        habit = variational_normalize(habit_counts, habit_prior)
        p_a, habit_counts, knowing_counts = e_step(spamming, habit)
    seen = np.bincount(pairs, minlength=n_pairs) > 0
    voted = np.bincount(workers, minlength=n_workers) > 0
    return np.where(seen, p_a, 0.5), np.where(voted, spamming[:, 1], np.nan)


def _one_coin(pairs, workers, says_a, n_pairs, n_workers):
    """crowd-kit's OneCoinDawidSkene step for step (start from the vote share, class priors
    re-estimated, skills clipped to [1e-10, 1 - 1e-10], stop when the evidence lower bound
    per vote rises by less than the tolerance), on arrays."""
    from scipy.special import expit

    votes = np.bincount(pairs, minlength=n_pairs).astype(float)
    p_a = np.bincount(pairs, weights=says_a, minlength=n_pairs) / np.maximum(votes, 1)
    n_w = np.maximum(np.bincount(workers, minlength=n_workers), 1)
    sign = np.where(says_a, 1.0, -1.0)
    seen = votes > 0

    def m_step(p_a):
        prior_a = p_a[seen].mean()
        right = np.where(says_a, p_a[pairs], 1.0 - p_a[pairs])
        skill = np.bincount(workers, weights=right, minlength=n_workers) / n_w
        return np.clip(prior_a, EPS, 1 - EPS), np.clip(skill, EPS, 1 - EPS)

    prior_a, skill = m_step(p_a)
    previous = -np.inf
    for _ in range(MAX_ITERATIONS):
        # A vote for A adds log(s / (1 - s)) to the log-odds of A, a vote for B subtracts it.
        log_odds = np.log(prior_a / (1 - prior_a)) + np.bincount(
            pairs, weights=sign * np.log(skill[workers] / (1 - skill[workers])), minlength=n_pairs
        )
        p_a = expit(log_odds)
        prior_a, skill = m_step(p_a)
        # The evidence lower bound as crowd-kit computes it (the prior counted per vote).
        q = np.where(says_a, p_a[pairs], 1.0 - p_a[pairs])
        log_right, log_wrong = np.log(skill[workers]), np.log(1 - skill[workers])
        joint = np.sum(
            q * log_right
            + (1 - q) * log_wrong
            + p_a[pairs] * np.log(prior_a)
            + (1 - p_a[pairs]) * np.log(1 - prior_a)
        )
        pa = np.clip(p_a[seen], EPS, 1)
        pb = np.clip(1 - p_a[seen], EPS, 1)
        entropy = -np.sum(pa * np.log(pa) + pb * np.log(pb))
        current = (joint + entropy) / len(pairs)
        if current - previous < TOLERANCE:
            break
        previous = current
    reliability = np.where(np.bincount(workers, minlength=n_workers) > 0, skill, np.nan)
    return np.where(seen, p_a, 0.5), reliability


def _glad(pairs, workers, says_a, n_pairs, n_workers):
    """GLAD's EM on arrays (binary labels, uniform class prior as in crowd-kit)."""
    from scipy.special import expit, log_expit

    alpha = np.ones(n_workers)
    beta = np.ones(n_pairs)
    sign = np.where(says_a, 1.0, -1.0)

    def e_step() -> tuple[np.ndarray, np.ndarray]:
        x = alpha[workers] * np.exp(beta[pairs])
        # Log-likelihood ratio of "A is right" over "B is right", summed per pair.
        # log sigmoid(x) - log sigmoid(-x) = x: a vote adds its weight x to its side.
        llr = np.bincount(pairs, weights=sign * x, minlength=n_pairs)
        p_a = expit(llr)
        # q: the posterior that each vote is right.
        q = np.where(says_a, p_a[pairs], 1.0 - p_a[pairs])
        return p_a, q

    def objective(q: np.ndarray) -> float:
        x = alpha[workers] * np.exp(beta[pairs])
        fit = np.sum(q * log_expit(x) + (1 - q) * log_expit(-x))
        prior = -0.5 * (np.sum((alpha - 1) ** 2) + np.sum((beta - 1) ** 2))
        return float(fit + prior) / len(pairs)

    # EM to convergence of the expected log-likelihood under the latest posteriors.
    # crowd-kit stops once its objective, read with the previous E-step's posteriors, dips
    # (after 2 iterations on the tests' crowds): a worse optimum of the same model, and on
    # 600 planted pairs 2 points further from the truth than running on.
    p_a, q = e_step()
    previous = -np.inf
    for _ in range(MAX_ITERATIONS):
        for _ in range(GLAD_NEWTON_STEPS):
            # Each alpha and each beta has its own coordinate: a Newton step on each,
            # beta first (alpha held), then alpha (beta held).
            e_beta = np.exp(beta[pairs])
            x = alpha[workers] * e_beta
            s = expit(x)
            residual = q - s
            grad = np.bincount(pairs, weights=residual * x, minlength=n_pairs) - (beta - 1)
            curvature = np.bincount(
                pairs, weights=s * (1 - s) * x * x - residual * x, minlength=n_pairs
            )
            beta = beta + grad / (np.maximum(curvature, 0.0) + 1.0)
            e_beta = np.exp(beta[pairs])
            x = alpha[workers] * e_beta
            s = expit(x)
            grad = np.bincount(workers, weights=(q - s) * e_beta, minlength=n_workers) - (alpha - 1)
            curvature = np.bincount(
                workers, weights=s * (1 - s) * e_beta * e_beta, minlength=n_workers
            )
            alpha = alpha + grad / (curvature + 1.0)
        p_a, q = e_step()
        current = objective(q)
        if current - previous < TOLERANCE:
            break
        previous = current
    seen = np.bincount(workers, minlength=n_workers) > 0
    reliability = np.where(seen, expit(alpha), np.nan)
    return p_a, reliability, {"alpha": alpha, "beta": beta}
