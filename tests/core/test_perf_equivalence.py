"""The speed-ups of issue 12 compute the same numbers as the straightforward versions.

Each test keeps the plain computation the optimised code replaced, written out here, and
compares: the single-threaded ``eigh`` of the ridge factorisation, the reuse of repeated
splits in ``split_half_reliability`` and the matrix-vector EM of ``mean_sqrt_reliability``.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from brainrank.core import ridge, stats


def _plain_split_half(trials: np.ndarray, n_splits: int, seed: int, correct: bool) -> np.ndarray:
    """One Pearson r per drawn split, repeated splits recomputed every time."""
    t = np.asarray(trials, dtype=np.float64)
    reps = t.shape[0]
    rng = np.random.default_rng(seed)
    total = np.zeros(t.shape[2])
    for _ in range(n_splits):
        order = rng.permutation(reps)
        a = t[order[: reps // 2]].mean(axis=0)
        b = t[order[reps // 2 :]].mean(axis=0)
        ac, bc = a - a.mean(axis=0), b - b.mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            total += (ac * bc).sum(0) / np.sqrt((ac * ac).sum(0) * (bc * bc).sum(0))
    r = total / n_splits
    return 2 * r / (1 + r) if correct else r


def _plain_mean_sqrt(trials: np.ndarray, grid_size: int, n_iterations: int) -> float:
    """The EM with the full (neuroids x grid) posterior normalised row by row."""
    t = np.asarray(trials, dtype=np.float64)
    reps, n, _ = t.shape
    means = t.mean(axis=0)
    between = reps * means.var(axis=0, ddof=1)
    within = ((t - means) ** 2).sum(axis=(0, 1)) / (n * (reps - 1))
    keep = within > 0
    F = between[keep] / within[keep]
    rho = np.linspace(0.0, 0.999, grid_size)
    scale = 1.0 - rho
    log_like = scipy.stats.f.logpdf(F[:, None] * scale, n - 1, n * (reps - 1)) + np.log(scale)
    like = np.exp(log_like - log_like.max(axis=1, keepdims=True))
    weights = np.full(grid_size, 1.0 / grid_size)
    for _ in range(n_iterations):
        posterior = like * weights
        for i in range(posterior.shape[0]):
            posterior[i] /= posterior[i].sum()
        weights = posterior.mean(axis=0)
    return float(np.dot(weights, np.sqrt(rho))) * keep.sum() / keep.size


def _trials(reps: int, n: int = 40, v: int = 30, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, v)) * np.linspace(0.0, 1.5, v)
    return signal[None] + rng.standard_normal((reps, n, v))


@pytest.mark.parametrize("reps", [2, 3, 4])
def test_split_half_reuse_is_bit_identical_up_to_four_repetitions(reps: int):
    t = _trials(reps)
    for correct in (True, False):
        ours = stats.split_half_reliability(t, n_splits=10, seed=3, correct=correct)
        np.testing.assert_array_equal(ours, _plain_split_half(t, 10, 3, correct))


@pytest.mark.parametrize("reps", [5, 6, 8])
def test_split_half_reuse_matches_the_plain_computation(reps: int):
    t = _trials(reps, seed=reps)
    ours = stats.split_half_reliability(t, n_splits=25, seed=1)
    np.testing.assert_allclose(ours, _plain_split_half(t, 25, 1, True), rtol=0, atol=1e-12)


def test_split_half_reuse_keeps_a_constant_neuroid_undefined():
    t = _trials(3)
    t[:, :, 0] = 1.0
    ours = stats.split_half_reliability(t, n_splits=10, seed=0)
    assert np.isnan(ours[0]) and np.isfinite(ours[1:]).all()
    np.testing.assert_array_equal(ours[1:], _plain_split_half(t, 10, 0, True)[1:])


@pytest.mark.parametrize("reps, seed", [(2, 0), (3, 1), (5, 2)])
def test_mean_sqrt_reliability_em_matches_the_plain_loop(reps: int, seed: int):
    t = _trials(reps, n=30, v=120, seed=seed)
    t[:, :, 5] = 2.0  # a constant neuroid, left out of the EM
    ours = stats.mean_sqrt_reliability(t, grid_size=50, n_iterations=200)
    plain = _plain_mean_sqrt(t, grid_size=50, n_iterations=200)
    assert ours == pytest.approx(plain, rel=0, abs=1e-12)


def test_gram_eigh_matches_numpy_eigh():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 700))
    dec = ridge.Decomposition.of(X, fit_intercept=True)
    assert dec.method == "gram"
    Xc = X - X.mean(axis=0)
    d, q = np.linalg.eigh(Xc @ Xc.T)
    np.clip(d, 0.0, None, out=d)
    np.testing.assert_allclose(dec.eigenvalues, d, rtol=0, atol=1e-12 * d.max())
    # eigenvectors are defined up to sign (and rotation within the 1-D null space of the
    # centred Gram): compare the projections onto the eigenvectors of the positive ones
    top = d > 1e-8 * d.max()
    np.testing.assert_allclose(np.abs(np.sum(dec.basis * q, axis=0))[top], 1.0, atol=1e-12)


def test_one_thread_eigh_equals_numpy_eigh():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((200, 500))
    gram = A @ A.T
    d, q = ridge._eigh_one_thread(gram)
    d0, q0 = np.linalg.eigh(gram)
    np.testing.assert_allclose(d, d0, rtol=0, atol=1e-12 * d0.max())
    np.testing.assert_allclose(np.abs(np.sum(q * q0, axis=0)), 1.0, atol=1e-12)
    np.testing.assert_allclose((q * d) @ q.T, gram, rtol=0, atol=1e-9 * d0.max())
