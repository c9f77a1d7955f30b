"""Very sparse random projection: definition, determinism, chunking, JL property."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from sklearn.random_projection import johnson_lindenstrauss_min_dim

from brainrank.core.errors import InputError
from brainrank.core.projection import BLOCK_ROWS, SparseRandomProjection, jl_dimension


@pytest.mark.parametrize("n", [10, 92, 200, 1000, 5000])
@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_jl_dimension_follows_sklearn(n, eps):
    assert jl_dimension(n, eps) == johnson_lindenstrauss_min_dim(n, eps=eps)
    assert jl_dimension(1000) == 5920


def test_entries_follow_li_hastie_church():
    p, k = 3 * BLOCK_ROWS + 17, 400
    R = SparseRandomProjection(p, k, seed=5).dense()
    assert R.shape == (p, k)
    density = 1 / np.sqrt(p)
    nonzero = R[R != 0]
    np.testing.assert_allclose(np.abs(nonzero), 1 / np.sqrt(k * density), rtol=1e-6)
    observed = nonzero.size / R.size
    sd = np.sqrt(density * (1 - density) / R.size)
    assert abs(observed - density) < 5 * sd
    assert abs((nonzero > 0).mean() - 0.5) < 0.02
    # E[||x R||^2] = ||x||^2: each column of R^T has expected squared norm 1
    assert np.mean((R**2).sum(axis=1)) == pytest.approx(1.0, rel=0.02)


def test_same_seed_same_projection_whatever_the_chunking():
    rng = np.random.default_rng(0)
    p, k = 2 * BLOCK_ROWS + 1000, 300
    X = rng.standard_normal((25, p)).astype(np.float32)
    proj = SparseRandomProjection(p, k, seed=11)
    whole = proj.transform(X)
    np.testing.assert_allclose(whole, X @ proj.dense(), rtol=1e-4, atol=1e-4)
    for cuts in ([5, 4096, 4097, 7000], [BLOCK_ROWS], list(range(0, p, 999))[1:]):
        edges = [0, *cuts, p]
        chunks = [X[:, a:b] for a, b in itertools.pairwise(edges)]
        np.testing.assert_allclose(proj.transform_chunks(chunks), whole, rtol=1e-5, atol=1e-5)
    # chunks added out of order give the same sum
    acc = proj.accumulator(25)
    acc.add(X[:, 5000:], 5000)
    acc.add(X[:, :5000], 0)
    np.testing.assert_allclose(acc.result(), whole, rtol=1e-5, atol=1e-5)
    # streamed by batches of samples and chunks of features
    acc = proj.accumulator(25)
    for rows in (slice(0, 10), slice(10, 25)):
        for a, b in itertools.pairwise([0, 3000, p]):
            acc.add(X[rows, a:b], a, rows=rows)
    np.testing.assert_allclose(acc.result(), whole, rtol=1e-5, atol=1e-5)
    # a freshly built projection with the same seed is the same matrix
    again = SparseRandomProjection(p, k, seed=11)
    assert (again.rows(100, 9000) != proj.rows(100, 9000)).nnz == 0
    other = SparseRandomProjection(p, k, seed=12)
    assert (other.rows(0, 1000) != proj.rows(0, 1000)).nnz > 0


@pytest.mark.parametrize("density", [None, 1.0])  # geometric gaps / every cell non-zero
def test_projections_of_one_seed_are_nested(density):
    """The first k' components of the k-component matrix are the k'-component matrix
    (same cells, same signs; value 1/sqrt(k' s)), so one product serves every size."""
    p, k = 2 * BLOCK_ROWS + 333, 450
    big = SparseRandomProjection(p, k, seed=7, density=density)
    R = big.dense()
    rng = np.random.default_rng(3)
    X = rng.standard_normal((9, p)).astype(np.float32)
    acc = big.accumulator(9)
    acc.add(X, 0)
    for small in (1, 37, 200, 449):
        R_small = SparseRandomProjection(p, small, seed=7, density=density).dense()
        assert np.array_equal(R_small != 0, R[:, :small] != 0)
        assert np.array_equal(np.sign(R_small), np.sign(R[:, :small]))
        np.testing.assert_allclose(R[:, :small] * np.sqrt(k / small), R_small, rtol=1e-6)
        np.testing.assert_allclose(acc.result(small), X @ R_small, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(acc.result(k), acc.result(), rtol=0, atol=0)
    with pytest.raises(InputError, match="n_components"):
        acc.result(k + 1)


def test_pairwise_distances_preserved_within_the_jl_bound():
    rng = np.random.default_rng(1)
    n, p, eps = 40, 20_000, 0.3
    X = rng.standard_normal((n, p)).astype(np.float32) + rng.standard_normal((n, 1)).astype(
        np.float32
    )
    k = jl_dimension(n, eps)
    Y = SparseRandomProjection(p, k, seed=2).transform(X)
    ratio = pdist(Y.astype(np.float64)) ** 2 / pdist(X.astype(np.float64)) ** 2
    assert ratio.min() > 1 - eps and ratio.max() < 1 + eps


def test_bad_arguments():
    with pytest.raises(InputError):
        SparseRandomProjection(0, 10)
    with pytest.raises(InputError):
        SparseRandomProjection(10, 10, density=1.5)
    proj = SparseRandomProjection(100, 10)
    with pytest.raises(InputError, match="expected"):
        proj.transform(np.ones((3, 99), np.float32))
    with pytest.raises(InputError, match="exceed"):
        proj.accumulator(3).add(np.ones((3, 10), np.float32), 95)
    with pytest.raises(InputError):
        jl_dimension(10, eps=1.5)
