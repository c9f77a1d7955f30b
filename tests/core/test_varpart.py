"""Variance partitioning (brainrank/core/varpart.py): the atoms against the published
two- and three-space formulas, the joint fits against scikit-learn, and calibration on
simulated data with a planted unique and shared component per space, and on pure noise.

Tolerances (stated, from the measured behaviour, never tuned to pass):

- planted components: 1000 stimuli (600 training, 400 test), 200 targets; each planted
  atom is recovered within **0.025** (the estimates are slightly low, by 0.005 to 0.02: a
  fitted model's held-out r^2 is below the population's by its estimation error);
- pure noise: under the null, sign(r) r^2 has mean 0 and sd sqrt(3) / (n_test - 1) per
  target (r ~ N(0, 1 / (n_test - 1))), so the mean over v targets has
  ``SE = sqrt(3) / ((n_test - 1) sqrt(v))``; an atom sums 2^(m-1) such terms with signs
  (they are positively correlated, so the sum's SE is at most 2^(m-1) SE); the tolerance
  is ``4 x 2^(m-1) x SE`` (0.0025 for two spaces, 0.0049 for three, at n_test = 400,
  v = 200).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from brainrank.core import varpart
from brainrank.core.errors import InputError
from brainrank.core.varpart import atoms, partition_variance, simplex_grid, subsets


def simulate(n, v, m, parts, noise, seed, d=6, nuisance=6):
    """Spaces and targets with planted atoms: ``parts[U]`` of every target's variance comes
    from a latent component of ``d`` dimensions that exactly the spaces in ``U`` contain
    (rotated among ``nuisance`` columns of noise of their own); the rest is noise."""
    rng = np.random.default_rng(seed)
    latent = {u: rng.standard_normal((n, d)) for u in parts}
    spaces = []
    for i in range(m):
        raw = np.hstack([latent[u] for u in parts if i in u] + [rng.standard_normal((n, nuisance))])
        rotation, _ = np.linalg.qr(rng.standard_normal((raw.shape[1], raw.shape[1])))
        spaces.append(raw @ rotation)
    Y = math.sqrt(noise) * rng.standard_normal((n, v))
    for u, amount in parts.items():
        w = rng.standard_normal((d, v))
        Y += math.sqrt(amount) * latent[u] @ (w / np.linalg.norm(w, axis=0))
    return spaces, Y


TWO = {(0,): 0.2, (1,): 0.1, (0, 1): 0.15}
THREE = {(0,): 0.12, (1,): 0.08, (2,): 0.05, (0, 1): 0.06, (0, 2): 0.05, (1, 2): 0.04,
         (0, 1, 2): 0.1}  # fmt: skip
N, V, N_TRAIN = 1000, 200, 600
RECOVERY = 0.025


def null_tolerance(m: int, n_test: int = N - N_TRAIN, v: int = V) -> float:
    return 4 * 2 ** (m - 1) * math.sqrt(3) / ((n_test - 1) * math.sqrt(v))


def recovery_errors(parts, m, seed) -> dict:
    spaces, Y = simulate(N, V, m, parts, 1 - sum(parts.values()), seed)
    result = partition_variance(spaces, Y, np.arange(N_TRAIN), np.arange(N_TRAIN, N))
    return {u: float(result.atoms[u].mean()) - parts.get(u, 0.0) for u in subsets(m)}


def null_means(m, seed) -> dict:
    spaces, Y = simulate(N, V, m, {u: 0.0 for u in subsets(m)}, 1.0, seed)
    result = partition_variance(spaces, Y, np.arange(N_TRAIN), np.arange(N_TRAIN, N))
    return {u: float(result.atoms[u].mean()) for u in subsets(m)}


def test_atoms_are_the_published_two_and_three_space_formulas():
    """Net2Brain's VPA (and the voxelwise-modelling tutorials) write the atoms out for two
    and three spaces; the Moebius inversion must give exactly those."""
    rng = np.random.default_rng(0)
    R = {u: rng.uniform(0, 0.5, 7) for u in subsets(2)}
    a = atoms(R, 2)
    y12 = R[(0,)] + R[(1,)] - R[(0, 1)]
    np.testing.assert_allclose(a[(0, 1)], y12, atol=1e-15)
    np.testing.assert_allclose(a[(0,)], R[(0,)] - y12, atol=1e-15)
    np.testing.assert_allclose(a[(1,)], R[(1,)] - y12, atol=1e-15)
    R = {u: rng.uniform(0, 0.5, 7) for u in subsets(3)}
    a = atoms(R, 3)
    R1, R2, R3 = R[(0,)], R[(1,)], R[(2,)]
    R12, R13, R23, R123 = R[(0, 1)], R[(0, 2)], R[(1, 2)], R[(0, 1, 2)]
    y123 = R1 + R2 + R3 - R12 - R13 - R23 + R123
    y12 = R1 + R2 - R12 - y123
    y13 = R1 + R3 - R13 - y123
    y23 = R2 + R3 - R23 - y123
    expected = {(0, 1, 2): y123, (0, 1): y12, (0, 2): y13, (1, 2): y23,
                (0,): R1 - y12 - y13 - y123, (1,): R2 - y12 - y23 - y123,
                (2,): R3 - y13 - y23 - y123}  # fmt: skip
    for u, value in expected.items():
        np.testing.assert_allclose(a[u], value, atol=1e-14, err_msg=str(u))
    total = sum(a.values())
    np.testing.assert_allclose(total, R123, atol=1e-14)  # the atoms fill the joint model
    with pytest.raises(InputError, match="missing"):
        atoms({(0,): R1}, 2)


def test_the_simplex_grid_has_its_corners_and_sums_to_one():
    for m in range(1, varpart.MAX_SPACES + 1):
        grid = simplex_grid(m)
        assert all(math.isclose(sum(w), 1.0) for w in grid)
        corners = {tuple(float(i == j) for j in range(m)) for i in range(m)}
        assert corners <= set(grid), m
    assert [len(simplex_grid(m)) for m in range(2, 7)] == [5, 15, 20, 15, 21]


def test_the_joint_fits_equal_scikit_learn_ridge_cv():
    """An independent computation of the same definition: scikit-learn's RidgeCV (exact LOO,
    an alpha per target) on each weighting of the z-scored spaces, the weighting with the
    lowest LOO error per target, its test predictions, numpy's correlation, and the
    two-space formulas."""
    from sklearn.linear_model import RidgeCV
    from sklearn.preprocessing import StandardScaler

    spaces, Y = simulate(90, 12, 2, TWO, 0.55, seed=3, d=2, nuisance=2)
    train, test = np.arange(60), np.arange(60, 90)
    alphas = [0.1, 1.0, 10.0, 100.0]
    ours = partition_variance(spaces, Y, train, test, alphas=alphas,
                              ridge_options={"dtype": "float64"})  # fmt: skip
    blocks = []
    for X in spaces:
        scaler = StandardScaler().fit(X[train])
        blocks.append(scaler.transform(X) / math.sqrt(X.shape[1]))
    explained = {}
    for subset in subsets(2):
        best = np.full(Y.shape[1], np.inf)
        predicted = np.zeros((test.size, Y.shape[1]))
        for weights in simplex_grid(len(subset)):
            parts = [blocks[i] * math.sqrt(w) for i, w in zip(subset, weights, strict=True) if w]
            X = np.hstack(parts)
            model = RidgeCV(alphas=alphas, alpha_per_target=True, store_cv_results=True)
            model.fit(X[train], Y[train])
            loo = model.cv_results_.mean(axis=0).min(axis=1)  # (targets,)
            better = loo < best
            best[better] = loo[better]
            predicted[:, better] = model.predict(X[test])[:, better]
        r = np.array([np.corrcoef(predicted[:, j], Y[test, j])[0, 1] for j in range(Y.shape[1])])
        explained[subset] = np.sign(r) * r**2
    np.testing.assert_allclose(ours.explained[(0, 1)], explained[(0, 1)], atol=1e-6)
    for u in subsets(2):
        np.testing.assert_allclose(ours.explained[u], explained[u], atol=1e-6, err_msg=str(u))
    y12 = explained[(0,)] + explained[(1,)] - explained[(0, 1)]
    np.testing.assert_allclose(ours.atoms[(0, 1)], y12, atol=1e-6)
    np.testing.assert_allclose(ours.atoms[(0,)], explained[(0, 1)] - explained[(1,)], atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_two_spaces_recover_their_planted_unique_and_shared_variance(seed):
    errors = recovery_errors(TWO, 2, seed)
    assert max(abs(e) for e in errors.values()) < RECOVERY, errors


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_three_spaces_recover_every_planted_atom(seed):
    errors = recovery_errors(THREE, 3, seed)
    assert max(abs(e) for e in errors.values()) < RECOVERY, errors


@pytest.mark.parametrize("m", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_pure_noise_partitions_into_zeros(m):
    means = null_means(m, seed=9)
    tolerance = null_tolerance(m)
    assert all(abs(v) < tolerance for v in means.values()), (means, tolerance)


def test_bad_input_is_refused():
    X = np.random.default_rng(0).standard_normal((20, 3))
    Y = np.random.default_rng(1).standard_normal((20, 2))
    train, test = np.arange(12), np.arange(12, 20)
    with pytest.raises(InputError, match="1 to 6"):
        partition_variance([X] * 7, Y, train, test)
    with pytest.raises(InputError, match="rows"):
        partition_variance([X[:10], X], Y, train, test)
    with pytest.raises(InputError, match="constant on the training stimuli"):
        partition_variance([np.ones((20, 3)), X], Y, train, test)


def test_subsets_are_every_non_empty_subset_once():
    for m in range(1, 5):
        found = subsets(m)
        assert len(found) == len(set(found)) == 2**m - 1
        assert set(found) == {
            c for k in range(1, m + 1) for c in itertools.combinations(range(m), k)
        }


def test_the_coefficient_of_determination_as_the_unit_fails_the_noise_check(monkeypatch):
    """Mutation: explained variance as the test R^2 (1 - SSE / SST) instead of sign(r) r^2.
    On pure noise a held-out R^2 is below 0 (the fit's variance, the training mean missing
    the test mean), so the partition's null is no longer 0 and the noise check fails."""

    def r_squared(predicted, measured, backend=None):
        measured = np.asarray(measured, dtype=np.float64)
        sse = ((measured - predicted) ** 2).sum(axis=0)
        return 1.0 - sse / ((measured - measured.mean(axis=0)) ** 2).sum(axis=0)

    monkeypatch.setattr(varpart, "signed_r2", r_squared)
    means = null_means(2, seed=9)
    assert any(abs(v) > null_tolerance(2) for v in means.values()), means
