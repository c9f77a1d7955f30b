"""RDMs against scipy, comparisons against scipy and rsatoolbox, and the real 92-image
human and monkey IT RDMs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import scipy.stats
from scipy.spatial.distance import pdist, squareform

from brainrank.core.errors import InputError
from brainrank.core.rsa import GramAccumulator, compare, rdm, upper_triangle


def patterns(n=30, p=500, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)) + rng.standard_normal((n, 1)) + offset


@pytest.mark.parametrize("method", ["correlation", "cosine", "euclidean"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rdm_equals_scipy(method, dtype):
    X = patterns()
    expected = squareform(pdist(X, method))
    tol = 1e-12 if dtype == "float64" else (2e-5 if method == "euclidean" else 2e-6)
    got = rdm(X, method, dtype=dtype)
    scale = 1.0 if method != "euclidean" else expected.max()
    assert np.abs(got - expected).max() <= tol * scale
    assert np.all(np.diag(got) == 0)


def test_correlation_rdm_exact_with_large_offsets_and_in_chunks():
    X = patterns(offset=1000.0)
    expected = 1 - np.corrcoef(X)
    np.fill_diagonal(expected, 0)
    assert np.abs(rdm(X) - expected).max() < 1e-5
    acc = GramAccumulator(X.shape[0])
    for a, b in [(0, 7), (7, 300), (300, 500)]:
        acc.add(X[:, a:b])
    assert np.abs(acc.rdm() - expected).max() < 1e-5
    assert acc.n_features == 500


def test_rdm_stacks_and_bad_input():
    X = np.stack([patterns(seed=1), patterns(seed=2)])
    out = rdm(X)
    assert out.shape == (2, 30, 30)
    np.testing.assert_allclose(out[1], rdm(X[1]))
    bad = patterns()
    bad[2, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        rdm(bad)
    with pytest.raises(InputError, match="unknown RDM method"):
        rdm(patterns(), "manhattan")


def test_constant_pattern_gives_nan_row():
    X = patterns(n=6)
    X[2] = 1.0
    out = rdm(X)
    assert np.isnan(out[2]).all() and np.isnan(out[:, 2]).all()
    assert np.isfinite(np.delete(np.delete(out, 2, 0), 2, 1)).all()


def test_compare_equals_scipy_and_rsatoolbox():
    rsatoolbox = pytest.importorskip("rsatoolbox")
    a = rdm(patterns(seed=3))
    b = rdm(patterns(seed=3) + 2 * patterns(seed=4))
    iu = np.triu_indices(30, 1)
    assert compare(a, b) == pytest.approx(scipy.stats.pearsonr(a[iu], b[iu])[0], abs=1e-12)
    assert compare(a, b, "spearman") == pytest.approx(
        scipy.stats.spearmanr(a[iu], b[iu])[0], abs=1e-12
    )
    ra, rb = rsatoolbox.rdm.RDMs(a[None]), rsatoolbox.rdm.RDMs(b[None])
    for ours, theirs in [("pearson", "corr"), ("spearman", "spearman"), ("kendall_tau_a", "tau-a")]:
        expected = rsatoolbox.rdm.compare(ra, rb, theirs)[0, 0]
        assert compare(a, b, ours) == pytest.approx(expected, abs=1e-10)
    # ties (rounded dissimilarities) are where tau-a and tau-b differ
    ar, br = np.round(a, 1), np.round(b, 1)
    expected = rsatoolbox.rdm.compare(
        rsatoolbox.rdm.RDMs(ar[None]), rsatoolbox.rdm.RDMs(br[None]), "tau-a"
    )
    assert compare(ar, br, "kendall_tau_a") == pytest.approx(expected[0, 0], abs=1e-10)


def test_compare_stacks():
    stack_a = np.stack([rdm(patterns(seed=s)) for s in range(3)])
    stack_b = np.stack([rdm(patterns(seed=s + 10)) for s in range(2)])
    out = compare(stack_a, stack_b, "spearman")
    assert out.shape == (3, 2)
    assert out[2, 1] == pytest.approx(compare(stack_a[2], stack_b[1], "spearman"))
    assert upper_triangle(stack_a).shape == (3, 435)
    with pytest.raises(InputError, match="same stimuli"):
        compare(stack_a[0], rdm(patterns(n=10)))


def test_real_92_image_human_and_monkey_it(shared_dir):
    path = shared_dir / "data" / "kriegeskorte92" / "Kriegeskorte_Neuron2008_supplementalData.mat"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    rdms = {entry.name: np.asarray(entry.RDM, dtype=float) for entry in mat["RDMs_mIT_hIT_fig1"]}
    # stored as 4186-long upper triangles (MATLAB squareform order = numpy's triu order)
    monkey = next(v for k, v in rdms.items() if k.startswith("mIT"))
    human = next(v for k, v in rdms.items() if k.startswith("hIT"))
    assert monkey.shape == human.shape == (92 * 91 // 2,)
    assert compare(human, monkey) == pytest.approx(0.491, abs=5e-4)
    assert compare(human, monkey, "spearman") == pytest.approx(0.439, abs=5e-4)
    assert compare(human, monkey, "kendall_tau_a") == pytest.approx(0.304, abs=5e-4)
    rsatoolbox = pytest.importorskip("rsatoolbox")
    pair = rsatoolbox.rdm.RDMs(np.stack([squareform(human), squareform(monkey)]))
    for ours, theirs in [("pearson", "corr"), ("spearman", "spearman"), ("kendall_tau_a", "tau-a")]:
        expected = rsatoolbox.rdm.compare(pair[0], pair[1], theirs)[0, 0]
        assert compare(human, monkey, ours) == pytest.approx(expected, abs=1e-10)
