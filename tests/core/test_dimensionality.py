"""Effective dimensionality (brainrank/core/dimensionality.py): the participation ratio of the
covariance eigenvalues, against numpy on known spectra."""

from __future__ import annotations

import numpy as np
import pytest

from brainrank.core.dimensionality import (
    covariance_spectrum,
    effective_dimensionality,
    effective_dimensionality_from_gram,
    participation_ratio,
)
from brainrank.core.errors import InputError
from brainrank.core.projection import SparseRandomProjection


def features_with_spectrum(variances: np.ndarray, n: int, p: int, seed: int = 0) -> np.ndarray:
    """n x p features whose population covariance has eigenvalues ``variances`` (then 0) in
    a random orthonormal basis."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((p, variances.size)))
    latent = rng.standard_normal((n, variances.size)) * np.sqrt(variances)
    return latent @ basis.T + 5.0  # an offset the centring must remove


def test_participation_ratio_of_known_spectra():
    assert participation_ratio([3.0, 0, 0]) == pytest.approx(1.0)
    assert participation_ratio(np.full(7, 2.5)) == pytest.approx(7.0)
    # written out: (1 + 2 + 3)^2 / (1 + 4 + 9)
    assert participation_ratio([1.0, 2.0, 3.0]) == pytest.approx(36 / 14)
    assert participation_ratio([1.0, 2.0, -1e-12]) == pytest.approx(9 / 5)  # rounding residue
    assert np.isnan(participation_ratio([0.0, 0.0]))
    with pytest.raises(InputError, match="finite"):
        participation_ratio([1.0, np.nan])


def test_effective_dimensionality_equals_numpy_on_features():
    variances = 1.0 / np.arange(1, 21) ** 1.2  # a power-law spectrum of 20 directions
    x = features_with_spectrum(variances, n=60, p=300)
    expected = participation_ratio(np.linalg.eigvalsh(np.cov(x.T)))  # p x p, the definition
    assert effective_dimensionality(x) == pytest.approx(expected, rel=1e-9)
    assert effective_dimensionality_from_gram(x @ x.T) == pytest.approx(expected, rel=1e-9)
    spectrum = covariance_spectrum(x @ x.T)
    reference = np.sort(np.clip(np.linalg.eigvalsh(np.cov(x.T)), 0, None))[::-1][:60]
    np.testing.assert_allclose(spectrum, reference, atol=1e-9 * reference[0])
    assert np.all(np.diff(spectrum) <= 1e-12)  # largest first
    # the scale of the features does not matter; the number of equal directions does
    assert effective_dimensionality(7.0 * x) == pytest.approx(expected, rel=1e-9)
    flat = features_with_spectrum(np.ones(5), n=800, p=50, seed=1)
    assert effective_dimensionality(flat) == pytest.approx(5.0, rel=0.03)


def test_constant_features_have_no_dimensionality():
    assert np.isnan(effective_dimensionality(np.ones((5, 3))))
    with pytest.raises(InputError, match="n_stimuli"):
        effective_dimensionality(np.ones(5))


def test_a_sparse_random_projection_would_bias_it_low():
    """Why the spectrum comes from the exact Gram matrix (see the metric's docstring): after
    a very sparse projection of wide, weakly correlated features the ratio is too low."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((100, 20000)) * rng.gamma(0.3, size=20000)  # uneven feature scales
    exact = effective_dimensionality(x)
    projected = x @ SparseRandomProjection(x.shape[1], 500, seed=0).dense()
    assert effective_dimensionality(projected) < 0.9 * exact
