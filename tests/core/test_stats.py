"""Statistics against scipy and against known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
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
    from brainrank.core.responses import make_responses

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


def test_fdr_leaves_untested_nans_out_of_the_family():
    p = np.array([0.001, np.nan, 0.02, 0.04, np.nan, 0.5])
    adjusted, reject = stats.fdr_bh(p)
    finite = np.isfinite(p)
    np.testing.assert_allclose(adjusted[finite], scipy.stats.false_discovery_control(p[finite]))
    assert np.isnan(adjusted[~finite]).all() and not reject[~finite].any()


def holm_reference(p):
    """Holm (1979) step-down, written from the definition."""
    m = len(p)
    order = np.argsort(p)
    out = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def test_holm_equals_the_step_down_definition():
    rng = np.random.default_rng(5)
    p = np.concatenate([rng.uniform(size=30), rng.uniform(0, 0.002, size=5)])
    adjusted, reject = stats.holm(p, alpha=0.05)
    np.testing.assert_allclose(adjusted, holm_reference(p), rtol=1e-12)
    assert reject.sum() == (holm_reference(p) <= 0.05).sum()
    # the 5.17-billion-fit paper's two tests: p_Holm = 0.02 from two p-values near 0.01
    assert stats.holm([0.0063, 0.0050])[0] == pytest.approx([0.0100, 0.0100])
    assert (stats.holm(p)[0] >= stats.fdr_bh(p)[0] - 1e-12).all()  # FWER is stricter
    with pytest.raises(InputError):
        stats.holm([0.1, -0.1])


def test_hedges_g_is_cohens_d_with_the_small_sample_correction():
    rng = np.random.default_rng(6)
    a, b = rng.normal(0.5, 0.1, 12), rng.normal(0.4, 0.1, 9)
    d = stats.cohens_d(a, b)
    df = 12 + 9 - 2
    assert stats.hedges_g(a, b) == pytest.approx(d * (1 - 3 / (4 * df - 1)))
    # exact correction J = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2)) agrees to < 0.5%
    exact = scipy.special.gamma(df / 2) / (np.sqrt(df / 2) * scipy.special.gamma((df - 1) / 2))
    assert stats.hedges_g(a, b) == pytest.approx(d * exact, rel=5e-3)
    c = a[:9] + rng.normal(0.05, 0.05, 9)
    dz = stats.cohens_d_paired(c, a[:9])
    assert stats.hedges_g(c, a[:9], paired=True) == pytest.approx(dz * (1 - 3 / (4 * 8 - 1)))


def test_epsilon_squared_of_kruskal_wallis():
    rng = np.random.default_rng(7)
    groups = [rng.normal(m, 1, 8) for m in (0, 0.5, 1.5)]
    h = scipy.stats.kruskal(*groups).statistic
    n = 24
    assert stats.epsilon_squared(h, n) == pytest.approx(h / ((n**2 - 1) / (n + 1)))
    assert stats.epsilon_squared(h, n) == pytest.approx(h / (n - 1))


def test_too_few_units_gives_a_reason():
    assert stats.too_few(5) is None
    assert "only 2 pairs" in stats.too_few(2, "pairs")


def test_permutation_test_equals_scipy_and_is_nan_for_constant_columns():
    rng = np.random.default_rng(8)
    n = 12
    y = rng.standard_normal((n, 3))
    pred = y + rng.standard_normal((n, 3))
    pred[:, 2] = 1.0  # constant predictions: r undefined
    r, p = stats.permutation_test(pred, y, n_permutations=4000, seed=0)
    for j in range(2):
        ref = scipy.stats.permutation_test(
            (pred[:, j],),
            lambda x, j=j: np.corrcoef(x, y[:, j])[0, 1],
            permutation_type="pairings",
            n_resamples=4000,
            alternative="greater",
            random_state=1,
        )
        assert r[j] == pytest.approx(ref.statistic)
        assert p[j] == pytest.approx(ref.pvalue, abs=0.015)
    assert np.isnan(r[2]) and np.isnan(p[2])


def test_ceiling_intervals_bracket_the_estimate_and_clear_the_floor_only_with_signal():
    """Issue 20: the intervals the ranking's ceiling floor uses. A pure-noise group's lower
    bound is 0 (at or below the floor of 0.1); a group with signal has its estimate inside
    the interval and a lower bound well above the floor."""
    from brainrank.core.scores import CEILING_FLOOR

    rng = np.random.default_rng(11)
    signal = rng.normal(size=(1, 150, 60)) * 0.6
    noisy = signal + rng.normal(size=(4, 150, 60))
    noise = rng.normal(size=(4, 150, 60))
    for trials, has_signal in ((noisy, True), (noise, False)):
        for estimate, (low, high) in (
            (stats.mean_sqrt_reliability(trials), stats.mean_sqrt_reliability_interval(trials)),
            (stats.rdm_ceiling(trials), stats.rdm_ceiling_interval(trials, n_boot=20)),
        ):
            assert low <= estimate <= high + 1e-12
            if has_signal:
                assert low > 2 * CEILING_FLOOR
            else:
                assert low <= CEILING_FLOOR


def test_bootstrap_ci_within_strata_keeps_every_stratum_in_every_draw():
    """With strata, each stratum is resampled within itself, in sorted order, from one
    generator: written out here with numpy, the interval is the same."""
    rng = np.random.default_rng(5)
    values = rng.normal(size=9)
    strata = ["b", "a", "b", "a", "a", "c", "b", "b", "a"]  # stratum c: one unit
    low, high = stats.bootstrap_ci(values, np.mean, n_boot=400, seed=2, strata=strata)
    draws = np.random.default_rng(2)
    parts = []
    for label in ("a", "b", "c"):
        members = np.flatnonzero(np.array(strata) == label)
        parts.append(members[draws.integers(0, members.size, size=(400, members.size))])
    means = values[np.concatenate(parts, axis=1)].mean(axis=1)
    alpha = (1 - 0.95) / 2
    assert (low, high) == (np.quantile(means, alpha), np.quantile(means, 1 - alpha))
    # a stratum is never dropped: the huge value of stratum c is in every draw
    shifted = values.copy()
    shifted[5] += 1e6
    low_c, _ = stats.bootstrap_ci(shifted, np.mean, n_boot=400, seed=2, strata=strata)
    plain_low, _ = stats.bootstrap_ci(shifted, np.mean, n_boot=400, seed=2)
    assert low_c > 1e4 and plain_low < low_c


def test_every_confidence_interval_is_drawn_by_the_one_bootstrap(monkeypatch, tmp_path):
    """The rank agreement of two metrics (and so the analyses' metric agreement), the
    aggregations and the rankings (regions resampled within datasets) all call
    stats.bootstrap_ci."""
    import importlib

    import pandas as pd

    from brainrank.leaderboard.query import aggregate

    ranking = importlib.import_module("brainrank.leaderboard.ranking")

    calls = []
    real = stats.bootstrap_ci

    def spy(*args, **kwargs):
        calls.append(kwargs.get("strata") is not None)
        return real(*args, **kwargs)

    monkeypatch.setattr(stats, "bootstrap_ci", spy)
    rng = np.random.default_rng(0)
    assert stats.spearman_rank_agreement(rng.normal(size=8), rng.normal(size=8), n_boot=50)
    assert calls == [False]
    frame = pd.DataFrame(
        [
            {"model": m, "dataset": "d", "metric": "rsa", "metric_hash": "h", "config": "rsa",
             "subject": "s", "region": f"r{i}", "layer": "l", "selection": "max",
             "score": rng.normal(), "normalized": np.nan, "family": "convnet", "trained": True}
            for m in ("a/x", "b/y") for i in range(6)
        ]
    )  # fmt: skip
    aggregate(frame, over="region", n_boot=50)
    assert len(calls) == 3  # one per model
    ranked = ranking.rank_models(frame, n_boot=50)
    assert ranked and calls[3:] == [True, True]  # stratified by dataset, one per model


def test_pearson_p_greater_equals_scipy_pearsonr():
    rng = np.random.default_rng(7)
    for n in (4, 12, 300):
        x = rng.normal(size=(n, 50))
        y = 0.3 * x + rng.normal(size=(n, 50))
        test = scipy.stats.pearsonr(x, y, axis=0, alternative="greater")
        np.testing.assert_allclose(stats.pearson_p_greater(test.statistic, n), test.pvalue,
                                   rtol=1e-9, atol=1e-14)  # fmt: skip
    np.testing.assert_array_equal(stats.pearson_p_greater([1.0, -1.0, 0.0], 10), [0.0, 1.0, 0.5])
    assert np.isnan(stats.pearson_p_greater([np.nan], 10)).all()
    with pytest.raises(InputError, match="at least 3"):
        stats.pearson_p_greater([0.1], 2)
