"""Statistics against scipy and against known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from brainrank.core import stats
from brainrank.core.errors import InputError


def test_fdr_equals_scipy():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=200), rng.uniform(0, 0.001, size=20)])
    adjusted, reject = stats.fdr_bh(p, alpha=0.05)
    np.testing.assert_allclose(adjusted, scipy.stats.false_discovery_control(p), rtol=1e-12)
    assert reject.sum() == (scipy.stats.false_discovery_control(p) <= 0.05).sum()
    grid = p[:100].reshape(10, 10)
    np.testing.assert_allclose(
        stats.fdr_bh(grid)[0].ravel(), scipy.stats.false_discovery_control(p[:100])
    )
    with pytest.raises(InputError):
        stats.fdr_bh([0.1, 1.2])


def test_paired_ttest_and_kruskal_equal_scipy():
    rng = np.random.default_rng(1)
    a = rng.normal(0.3, 0.1, 40)
    b = a - rng.normal(0.05, 0.08, 40)
    ours = stats.paired_ttest(a, b)
    ref = scipy.stats.ttest_rel(a, b)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    groups = [rng.normal(m, 1, size) for m, size in [(0, 12), (0.5, 20), (1.0, 9)]]
    groups[1][:4] = np.round(groups[1][:4])  # some ties
    groups[2][:3] = groups[1][:3]
    ours = stats.kruskal_wallis(groups)
    ref = scipy.stats.kruskal(*groups)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-10)


def test_effect_sizes():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([0.5, 1.0, 2.5, 3.0])
    d = a - b
    assert stats.cohens_d_paired(a, b) == pytest.approx(d.mean() / d.std(ddof=1))
    pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert stats.cohens_d(a, b) == pytest.approx((a.mean() - b.mean()) / pooled)


def test_spearman_brown_and_split_half_reliability_recover_a_known_reliability():
    rng = np.random.default_rng(2)
    n_rep, n_stim, n_vox = 4, 3000, 30
    signal = rng.standard_normal((n_stim, n_vox))
    true = np.linspace(0.2, 0.9, n_vox)  # reliability of the 4-repetition mean
    noise_sd = np.sqrt(n_rep * (1 / true - 1))
    trials = signal[None] + rng.standard_normal((n_rep, n_stim, n_vox)) * noise_sd
    estimated = stats.split_half_reliability(trials, n_splits=20, seed=0)
    assert np.abs(estimated - true).max() < 0.08  # SE of one voxel is about 0.025 here
    assert np.corrcoef(estimated, true)[0, 1] > 0.97
    again = stats.split_half_reliability(trials, n_splits=20, seed=0)
    np.testing.assert_array_equal(estimated, again)
    assert stats.spearman_brown(0.5) == pytest.approx(2 / 3)
    assert stats.spearman_brown(0.5, 3) == pytest.approx(0.75)


def test_trials_array_requires_equal_repetitions():
    from brainrank.core.types import make_responses

    r = make_responses(np.arange(10.0).reshape(5, 2), stimulus_id=["a", "b", "a", "b", "a"],
                       neuroid_id=["x", "y"], subject="s", region="r")  # fmt: skip
    with pytest.raises(InputError, match="fewer repetitions"):
        stats.trials_array(r)
    r = make_responses(np.arange(8.0).reshape(4, 2), stimulus_id=["a", "b", "a", "b"],
                       neuroid_id=["x", "y"], subject="s", region="r")  # fmt: skip
    trials, ids = stats.trials_array(r)
    assert ids == ["a", "b"] and trials.shape == (2, 2, 2)
    np.testing.assert_array_equal(trials[1, 0], [4.0, 5.0])


def test_ncsnr_ceiling():
    assert stats.ncsnr_noise_ceiling(1.0, 3) == pytest.approx(0.75)


def test_bootstrap_ci_covers_and_is_seeded():
    rng = np.random.default_rng(3)
    x = rng.normal(1.0, 1.0, size=(200, 3))
    low, high = stats.bootstrap_ci(x, n_boot=2000, seed=1)
    assert low.shape == (3,) and np.all(low < x.mean(0)) and np.all(high > x.mean(0))
    se = x.std(0, ddof=1) / np.sqrt(200)
    np.testing.assert_allclose(high - low, 2 * 1.96 * se, rtol=0.15)
    again = stats.bootstrap_ci(x, n_boot=2000, seed=1)
    np.testing.assert_array_equal(low, again[0])


def test_permutation_test_is_calibrated_and_finds_signal():
    rng = np.random.default_rng(4)
    n, v = 60, 400
    y = rng.standard_normal((n, v))
    pred = rng.standard_normal((n, v))
    pred[:, :40] += 1.5 * y[:, :40]
    r, p = stats.permutation_test(pred, y, n_permutations=500, seed=0, max_elements=n * v * 7)
    np.testing.assert_allclose(r, stats.pearson_columns(pred, y), atol=1e-12)
    assert (p[:40] < 0.01).all()
    null = p[40:]
    assert 0.03 < (null < 0.05).mean() < 0.08  # calibrated under the null
    # independent of the batching
    _, p2 = stats.permutation_test(pred, y, n_permutations=500, seed=0, max_elements=n * v)
    np.testing.assert_array_equal(p, p2)
    # a t-distribution based p-value agrees for large effects
    _, p_two = stats.permutation_test(pred, y, n_permutations=500, seed=0, alternative="two-sided")
    assert (p_two[:40] < 0.01).all()


def test_spearman_rank_agreement():
    rng = np.random.default_rng(5)
    a = rng.standard_normal(30)
    b = a + 0.5 * rng.standard_normal(30)
    rho, low, high = stats.spearman_rank_agreement(a, b, n_boot=500)
    assert rho == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-12)
    assert low < rho < high
