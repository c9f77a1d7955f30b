"""Rank uncertainty (brainrank/leaderboard/uncertainty.py): what is resampled per column, the
paired bootstrap against its analytic values, the tests against scipy's, rank intervals,
and the calibration of the pairwise test on data where two models are equal by
construction (the long Monte Carlo runs are in test_uncertainty_calibration.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from _uncertainty_data import neuroid_cells, subject_cells

from brainrank.core import stats
from brainrank.core.errors import InputError
from brainrank.leaderboard import uncertainty
from brainrank.leaderboard.uncertainty import (
    FIXED,
    NEUROIDS,
    SUBJECTS,
    bootstrap,
    pairwise_tests,
    rank_intervals,
    ranks,
    resampling_plan,
)


def test_the_plan_names_the_unit_of_each_column_and_why():
    neuro, arrays = neuroid_cells({"a": 0.3, "b": 0.2}, subjects=("s1", "s2"))
    many = subject_cells({"a": 0.3, "b": 0.2}, n_subjects=6, dataset="e")
    few = subject_cells({"a": 0.3, "b": 0.2}, n_subjects=4, dataset="f")
    plan = resampling_plan(pd.concat([neuro, many, few]), arrays).set_index("column")
    assert plan.loc["d/srp-ridge", "unit"] == NEUROIDS
    assert plan.loc["d/srp-ridge", "n_units"] == 60 and plan.loc["d/srp-ridge", "df"] == 59
    assert plan.loc["e/rsa", "unit"] == SUBJECTS and plan.loc["e/rsa", "df"] == 5
    assert plan.loc["e/rsa", "factor"] == pytest.approx(6 / 5)
    assert plan.loc["f/rsa", "unit"] == FIXED
    assert "4 subject(s) (fewer than 5)" in plan.loc["f/rsa", "reason"]
    partial = {k: v for i, (k, v) in enumerate(arrays.items()) if i}  # one cell lacks values
    assert resampling_plan(neuro, partial).loc[0, "unit"] == FIXED
    assert "missing for 1 of" in resampling_plan(neuro, partial).loc[0, "reason"]


def test_observed_values_are_the_rankings_and_the_draws_vary_as_the_mean_of_neuroids():
    cells, arrays = neuroid_cells({"a": 0.3, "b": 0.25, "c": 0.2}, regions=("V1",),
                                  n_neuroids=80)  # fmt: skip
    draws = bootstrap(cells, arrays, n_boot=4000, seed=1)
    assert draws.models == ["a", "b", "c"]
    np.testing.assert_allclose(draws.observed, cells.groupby("model")["value"].mean())
    matrix = np.stack([arrays[(m, "d", "srp-ridge", "V1", "s1")].values for m in "abc"])
    # the bootstrap covariance of the means over v resampled neuroids is cov / v (ddof 0)
    expected = np.cov(matrix, ddof=0) / matrix.shape[1]
    np.testing.assert_allclose(np.cov(draws.draws.T), expected, rtol=0.1)
    np.testing.assert_allclose(draws.draws.mean(axis=0), draws.observed, atol=0.003)


def test_the_normal_limit_draws_like_the_multinomial_counts(monkeypatch):
    cells, arrays = neuroid_cells({"a": 0.3, "b": 0.28}, regions=("V1",), n_neuroids=50)
    exact = bootstrap(cells, arrays, n_boot=4000, seed=2)
    monkeypatch.setattr(uncertainty, "EXACT_LIMIT", 0)
    normal = bootstrap(cells, arrays, n_boot=4000, seed=2)
    assert any("normal limit" in n for n in normal.notes)
    assert not any("normal limit" in n for n in exact.notes)
    for q in (0.025, 0.5, 0.975):
        np.testing.assert_allclose(np.quantile(normal.draws, q, axis=0),
                                   np.quantile(exact.draws, q, axis=0), atol=0.004)  # fmt: skip


def test_a_cell_keeps_its_ranked_value_and_scale():
    """A held-out or normalised cell value differs from its neuroids' mean: draws are the
    value plus the scaled deviation of the resampled mean."""
    cells, arrays = neuroid_cells({"a": 0.3, "b": 0.2}, regions=("V1",), n_neuroids=40)
    cells = cells.assign(value=cells["value"] * 2 + 0.1)  # e.g. divided by a ceiling of 0.5
    for key in arrays:
        arrays[key].scale = 2.0
    draws = bootstrap(cells, arrays, n_boot=2000, seed=0)
    np.testing.assert_allclose(np.median(draws.draws, axis=0), draws.observed, atol=0.01)
    raw = np.stack([arrays[(m, "d", "srp-ridge", "V1", "s1")].values for m in "ab"])
    np.testing.assert_allclose(draws.draws.std(axis=0), 2 * raw.std(axis=1) / np.sqrt(40),
                               rtol=0.1)  # fmt: skip


def test_with_subjects_as_units_the_test_is_the_paired_t_test_over_subjects():
    cells = subject_cells({"a": 0.3, "b": 0.25}, n_subjects=7, seed=3)
    draws = bootstrap(cells, n_boot=20000, seed=0)
    table = pairwise_tests(draws)
    per_subject = cells.pivot_table(index="subject", columns="model", values="value")
    reference = scipy.stats.ttest_rel(per_subject["a"], per_subject["b"])
    assert table.loc[0, "df"] == 6
    assert table.loc[0, "t"] == pytest.approx(reference.statistic, rel=0.03)
    assert table.loc[0, "p"] == pytest.approx(reference.pvalue, rel=0.1)
    assert table.loc[0, "difference"] == pytest.approx((per_subject["a"] - per_subject["b"]).mean())


def test_with_neuroids_as_units_the_test_is_the_paired_z_test_over_neuroids():
    cells, arrays = neuroid_cells({"a": 0.3, "b": 0.29}, regions=("V1",), n_neuroids=200, seed=4)
    draws = bootstrap(cells, arrays, n_boot=20000, seed=0)
    d = arrays[("a", "d", "srp-ridge", "V1", "s1")].values - arrays[
        ("b", "d", "srp-ridge", "V1", "s1")].values  # fmt: skip
    reference = scipy.stats.ttest_1samp(d, 0.0)
    row = pairwise_tests(draws).iloc[0]
    assert row["t"] == pytest.approx(reference.statistic, rel=0.03)
    assert row["p"] == pytest.approx(reference.pvalue, rel=0.1, abs=1e-4)


def test_the_pairwise_table_is_each_pairs_own_test():
    cells, arrays = neuroid_cells({"a": 0.33, "b": 0.3, "c": 0.31}, n_neuroids=(30, 90))
    more = subject_cells({"a": 0.3, "b": 0.25, "c": 0.3}, n_subjects=6, dataset="e")
    draws = bootstrap(pd.concat([cells, more]), arrays, n_boot=500, seed=0)
    table = pairwise_tests(draws)
    for row in table.itertuples():
        test = uncertainty._difference_test(draws, draws.models.index(row.a),
                                            draws.models.index(row.b))  # fmt: skip
        assert (row.difference, row.se, row.t, row.df, row.p) == pytest.approx(
            (test.difference, test.se, test.t, test.df, test.p), rel=1e-9)  # fmt: skip
    assert 5 < table["df"].min() < 90  # Welch-Satterthwaite between the two columns


def test_pairs_are_adjusted_together_holm_or_bh():
    cells, arrays = neuroid_cells({"a": 0.33, "b": 0.3, "c": 0.3, "d": 0.2}, n_neuroids=40)
    draws = bootstrap(cells, arrays, n_boot=1000, seed=0)
    holm = pairwise_tests(draws)
    assert len(holm) == 6 and set(holm["a"]) | set(holm["b"]) == set("abcd")
    np.testing.assert_allclose(holm["p_adjusted"], stats.holm(holm["p"].to_numpy())[0])
    bh = pairwise_tests(draws, correction="bh")
    np.testing.assert_allclose(bh["p_adjusted"], scipy.stats.false_discovery_control(bh["p"]))
    row = holm[(holm["a"] == "a") & (holm["b"] == "d")].iloc[0]
    assert row["verdict"] == "a > d" and row["p_adjusted"] < 1e-6
    assert "Holm" in holm.attrs["notes"][0]
    with pytest.raises(InputError, match="correction"):
        pairwise_tests(draws, correction="bonferroni")


def test_a_column_without_a_unit_is_held_fixed_and_not_tested():
    cells = subject_cells({"a": 0.3, "b": 0.2}, n_subjects=3)
    draws = bootstrap(cells, n_boot=200, seed=0)
    assert not draws.tested
    assert np.ptp(draws.draws, axis=0).max() == 0
    assert np.isnan(pairwise_tests(draws).loc[0, "p"])
    assert any("Held fixed" in n for n in draws.notes)


def test_ranks_and_rank_intervals():
    np.testing.assert_array_equal(ranks(np.array([0.1, 0.3, 0.3, np.nan])), [3, 1, 1, 4])
    apart, arrays = neuroid_cells({"a": 0.6, "b": 0.3, "c": 0.0}, n_neuroids=60)
    table = rank_intervals(bootstrap(apart, arrays, n_boot=500, seed=0))
    assert table["rank_low"].tolist() == [1, 2, 3] and table["rank_high"].tolist() == [1, 2, 3]
    close, arrays = neuroid_cells({"a": 0.302, "b": 0.3, "c": 0.0}, n_neuroids=60)
    table = rank_intervals(bootstrap(close, arrays, n_boot=500, seed=0)).set_index("model")
    assert table.loc["a", "rank_low"] == 1 and table.loc["a", "rank_high"] == 2
    assert table.loc["b", "rank_low"] == 1 and table.loc["b", "rank_high"] == 2
    assert table.loc["c", "rank_low"] == 3 == table.loc["c", "rank_high"]


def false_positive_rate(make, n_draws: int, n_boot: int, seed: int = 0) -> float:
    """The share of Monte Carlo draws in which two models equal by construction differ at
    p < .05 (``make(seed)`` -> (cells, arrays))."""
    hits = 0
    for i in range(n_draws):
        cells, arrays = make(seed + i)
        p = pairwise_tests(bootstrap(cells, arrays, n_boot=n_boot, seed=seed + i)).loc[0, "p"]
        hits += bool(p < 0.05)
    return hits / n_draws


def equal_over_neuroids(seed: int):
    return neuroid_cells({"a": 0.3, "b": 0.3}, regions=("V1", "V2"), n_neuroids=(30, 120),
                         seed=seed)  # fmt: skip


def equal_over_subjects(seed: int):
    return subject_cells({"a": 0.3, "b": 0.3}, n_subjects=6, seed=seed), None


@pytest.mark.parametrize("make", [equal_over_neuroids, equal_over_subjects])
def test_the_pairwise_test_is_calibrated_fast(make):
    """400 Monte Carlo draws (binomial 95% interval of a true 5% rate: 3.0-7.4%); the slow
    suite runs 4000."""
    rate = false_positive_rate(make, n_draws=400, n_boot=200)
    assert 0.03 <= rate <= 0.07, rate


def test_the_calibration_check_catches_a_normal_reference_over_few_subjects(monkeypatch):
    """Mutation: z instead of t with 5 degrees of freedom: about 10% false positives."""
    monkeypatch.setattr(uncertainty, "_p_value", lambda t, df: 2 * scipy.stats.norm.sf(abs(t)))
    assert false_positive_rate(equal_over_subjects, n_draws=400, n_boot=200) > 0.07


def test_the_calibration_check_catches_unpaired_draws(monkeypatch):
    """Mutation: each model resampled with its own draw: the neuroid effect both share no
    longer cancels, the test loses its size (almost no false positives, no power)."""
    real = uncertainty._resampled_means

    def unpaired(matrix, n_boot, rng):
        columns = [real(matrix[i : i + 1], n_boot, rng)[0] for i in range(matrix.shape[0])]
        return np.concatenate(columns, axis=1), True

    monkeypatch.setattr(uncertainty, "_resampled_means", unpaired)
    assert false_positive_rate(equal_over_neuroids, n_draws=400, n_boot=200) < 0.03


def test_rank_intervals_cover_the_true_ranks_fast():
    """100 Monte Carlo draws; the slow suite runs 1000."""
    from test_uncertainty_calibration import rank_coverage

    coverage, width = rank_coverage(100, 200)
    assert min(coverage.values()) >= 0.9 and width < 2.0
