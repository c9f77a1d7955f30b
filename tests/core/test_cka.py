"""Linear CKA against the HSIC definitions written out plainly, its calibration on
independent representations (the sampling error the docstrings state) and its ceiling."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from brainrank.core.cka import cka, cka_ceiling, gram, hsic, linear_cka
from brainrank.core.errors import InputError


def u_statistic_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al. (2012), eq. 4: the U-statistic over distinct index 4-tuples of
    h(i,j,q,r) = (1/24) sum over the 24 orderings (t,u,v,w) of
    k_tu l_tu + k_tu l_vw - 2 k_tu l_tv. O(n^4): small n only."""
    n = K.shape[0]
    total = 0.0
    count = 0
    for tup in itertools.permutations(range(n), 4):
        h = 0.0
        for t, u, v, w in itertools.permutations(tup):
            h += K[t, u] * L[t, u] + K[t, u] * L[v, w] - 2 * K[t, u] * L[t, v]
        total += h / 24
        count += 1
    return total / count


def centred_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """The biased estimator with explicit centring matrices: tr(K H L H) / (n - 1)^2."""
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(K @ H @ L @ H)) / (n - 1) ** 2


def test_debiased_hsic_is_the_u_statistic():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 3))
    Y = X[:, :2] + 0.5 * rng.standard_normal((7, 2))
    K, L = X @ X.T, Y @ Y.T  # uncentred kernels: the estimator does not need centring
    assert hsic(K, L) == pytest.approx(u_statistic_hsic(K, L), abs=1e-12)
    assert hsic(gram(X), gram(Y)) == pytest.approx(u_statistic_hsic(K, L), abs=1e-12)


def test_biased_hsic_and_cka_with_explicit_centring():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 12)) + 3.0
    Y = X[:, :5] @ rng.standard_normal((5, 4)) + rng.standard_normal((30, 4))
    K, L = X @ X.T, Y @ Y.T
    assert hsic(K, L, "biased") == pytest.approx(centred_hsic(K, L), rel=1e-12)
    expected = centred_hsic(K, L) / math.sqrt(centred_hsic(K, K) * centred_hsic(L, L))
    assert linear_cka(X, Y, "biased") == pytest.approx(expected, rel=1e-12)
    # Kornblith et al.'s feature-space form: ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    feature_form = np.linalg.norm(Yc.T @ Xc) ** 2 / (
        np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc)
    )
    assert linear_cka(X, Y, "biased") == pytest.approx(feature_form, rel=1e-12)


def test_cka_invariances():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 10))
    Y = X @ rng.standard_normal((10, 6)) + rng.standard_normal((40, 6))
    rotation = np.linalg.qr(rng.standard_normal((10, 10)))[0]
    for estimator in ("debiased", "biased"):
        base = linear_cka(X, Y, estimator)
        assert linear_cka(3.0 * X @ rotation + 7.0, Y, estimator) == pytest.approx(base, abs=1e-12)
        assert linear_cka(X, X, estimator) == pytest.approx(1.0, abs=1e-12)


def participation_ratio(G: np.ndarray) -> float:
    """(sum of eigenvalues)^2 / sum of squared eigenvalues of a centred Gram matrix."""
    return float(np.trace(G) ** 2 / (G * G).sum())


@pytest.mark.parametrize("spectrum", ["white", "power-law"])
def test_null_distribution_is_what_the_docstring_states(spectrum):
    """Independent features and responses (n = 100, 120 draws): debiased CKA has mean 0 and
    standard deviation sqrt(2) / (n - 1) (0.0143) within 25% (3.9 standard errors of an sd
    estimated from 120 draws); biased CKA has mean sqrt(d_X d_Y) / (n - 1) (participation
    ratios) within 3%, at least 4 standard deviations from 0 (0.45 for white features, 0.08
    for a 1/rank spectrum)."""
    rng = np.random.default_rng(3)
    n, draws = 100, 120
    scale = np.ones(300) if spectrum == "white" else np.arange(1, 301) ** -1.0
    debiased, biased, predicted = [], [], []
    for _ in range(draws):
        X = rng.standard_normal((n, 300)) * scale
        Y = rng.standard_normal((n, 36))
        K, L = gram(X), gram(Y)
        debiased.append(cka(K, L))
        biased.append(cka(K, L, "biased"))
        predicted.append(math.sqrt(participation_ratio(K) * participation_ratio(L)) / (n - 1))
    sd = math.sqrt(2) / (n - 1)
    assert abs(np.mean(debiased)) < 4 * sd / math.sqrt(draws)
    assert 0.75 * sd < np.std(debiased) < 1.25 * sd
    assert np.mean(biased) == pytest.approx(np.mean(predicted), rel=0.03)
    assert np.mean(biased) > 4 * sd


def test_ceiling_is_reached_by_the_noise_free_signal():
    """A model whose features are the responses' noise-free signal scores the ceiling on
    average (25 draws, 2 noise levels; within 0.015), and the ceiling falls with noise."""
    rng = np.random.default_rng(4)
    n, v, reps = 100, 40, 4
    signal = rng.standard_normal((n, 5)) @ rng.standard_normal((5, v))
    stimulus = np.tile(np.arange(n).astype(str), reps)
    repetition = np.repeat(np.arange(reps), n)
    ceilings = []
    for noise in (2.0, 5.0):
        model, ceiling = [], []
        for _ in range(25):
            trials = signal[None] + noise * rng.standard_normal((reps, n, v))
            model.append(linear_cka(signal, trials.mean(0)))
            ceiling.append(cka_ceiling(trials.reshape(-1, v), stimulus, repetition))
        assert np.mean(ceiling) == pytest.approx(np.mean(model), abs=0.015)
        ceilings.append(np.mean(ceiling))
    assert ceilings[0] > ceilings[1] + 0.05
    # pure noise: the square root of a sampling fluctuation around 0 (about 0.2 here; the
    # same limit as the encoding ceiling's near reliability 0, see docs/validation.md)
    pure_noise = rng.standard_normal((reps * n, v))
    assert cka_ceiling(pure_noise, stimulus, repetition) < 0.3


def test_bad_input():
    with pytest.raises(InputError, match="estimator"):
        linear_cka(np.zeros((5, 2)), np.zeros((5, 2)), "unbiased")
    with pytest.raises(InputError, match="at least 4"):
        hsic(np.eye(3), np.eye(3))
    assert np.isnan(linear_cka(np.ones((10, 3)), np.random.default_rng(0).random((10, 2))))
