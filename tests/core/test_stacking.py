"""Simplex-constrained stacking weights against scipy.optimize."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from brainrank.core.errors import InputError
from brainrank.core.stacking import project_simplex, stack_weights


def slsqp(P_v: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    L = P_v.shape[0]

    def f(w):
        return ((y - P_v.T @ w) ** 2).sum()

    res = minimize(f, np.full(L, 1 / L), method="SLSQP", bounds=[(0, 1)] * L,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                   options={"ftol": 1e-14, "maxiter": 2000})  # fmt: skip
    return res.x, res.fun


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("L", [2, 5, 12])
def test_weights_match_scipy_on_random_instances(seed, L):
    rng = np.random.default_rng(seed)
    n, v = 60, 120
    Y = rng.standard_normal((n, v))
    P = np.stack(
        [
            Y * rng.uniform(0, 1) + rng.standard_normal((n, v)) * rng.uniform(0.3, 2)
            for _ in range(L)
        ]
    )
    result = stack_weights(P, Y)
    assert result.weights.shape == (v, L)
    np.testing.assert_allclose(result.weights.sum(1), 1.0, atol=1e-12)
    assert (result.weights >= 0).all()
    for j in range(0, v, 7):
        _, best = slsqp(P[:, :, j], Y[:, j])
        ours = ((Y[:, j] - P[:, :, j].T @ result.weights[j]) ** 2).sum()
        assert ours <= best * (1 + 1e-9)


def test_identical_feature_spaces_split_the_weight_and_a_true_space_wins():
    rng = np.random.default_rng(3)
    n, v = 100, 50
    Y = rng.standard_normal((n, v))
    good = Y + 0.3 * rng.standard_normal((n, v))
    bad = rng.standard_normal((n, v))
    result = stack_weights(np.stack([good, bad]), Y)
    assert (result.weights[:, 0] > 0.85).all()
    same = stack_weights(np.stack([good, good]), Y)
    np.testing.assert_allclose(same.weights, 0.5, atol=1e-6)


def test_simplex_projection():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((100, 6)) * 3
    p = project_simplex(x)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-12)
    assert (p >= 0).all()
    inside = np.array([[0.2, 0.3, 0.5]])
    np.testing.assert_allclose(project_simplex(inside), inside)


def test_bad_input():
    with pytest.raises(InputError, match="expected"):
        stack_weights(np.zeros((2, 10, 3)), np.zeros((10, 4)))
