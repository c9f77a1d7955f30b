"""Calibration of rank uncertainty (brainrank/leaderboard/uncertainty.py) over many Monte
Carlo draws: the pairwise test's false-positive rate on two models equal by construction is
nominal, and rank intervals cover the true ranks. Slow (``make test-slow``); the fast
versions are in test_uncertainty.py.

Measured (this file, seeds as written; printed with ``-s``): 4000 draws per design, 300
bootstrap draws each: 5.00% [4.35, 5.72] false positives over neuroids, 4.85% [4.20, 5.56]
over 6 subjects (Clopper-Pearson 95% intervals); rank intervals cover the true ranks in
99.0-100% of 1000 draws, 1.3 ranks wide on average. docs/uncertainty.md has the designs.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from _uncertainty_data import neuroid_cells
from test_uncertainty import equal_over_neuroids, equal_over_subjects, false_positive_rate

from brainrank.leaderboard.uncertainty import bootstrap, rank_intervals

N_DRAWS = 4000


@pytest.mark.slow
@pytest.mark.parametrize("make", [equal_over_neuroids, equal_over_subjects])
def test_false_positive_rate_is_nominal(make):
    rate = false_positive_rate(make, n_draws=N_DRAWS, n_boot=300, seed=10_000)
    interval = scipy.stats.binomtest(round(rate * N_DRAWS), N_DRAWS).proportion_ci()
    print(f"{make.__name__}: {rate:.4f} [{interval.low:.4f}, {interval.high:.4f}] "
          f"over {N_DRAWS} draws")  # fmt: skip
    assert 0.03 <= rate <= 0.07
    assert interval.low <= 0.05 + 0.01 and interval.high >= 0.05 - 0.01  # within 1 point


def rank_coverage(n_draws: int, n_boot: int, seed: int = 0) -> tuple[dict[str, float], float]:
    """Per model, how often its 95% rank interval covers its true rank (models' population
    levels apart by about one standard error of their differences), and the mean width."""
    levels = {"a": 0.30, "b": 0.31, "c": 0.32, "d": 0.34, "e": 0.40}
    true = {m: i + 1 for i, m in enumerate(sorted(levels, key=lambda m: -levels[m]))}
    covered = dict.fromkeys(levels, 0)
    widths = []
    for i in range(n_draws):
        cells, arrays = neuroid_cells(levels, regions=("V1", "V2"), n_neuroids=60, seed=seed + i)
        table = rank_intervals(bootstrap(cells, arrays, n_boot=n_boot, seed=seed + i))
        for row in table.itertuples():
            covered[row.model] += row.rank_low <= true[row.model] <= row.rank_high
            widths.append(row.rank_high - row.rank_low)
    return {m: c / n_draws for m, c in covered.items()}, float(np.mean(widths))


@pytest.mark.slow
def test_rank_intervals_cover_the_true_ranks():
    coverage, width = rank_coverage(1000, 300, seed=20_000)
    print(f"coverage {coverage}, mean width {width:.2f} ranks")
    assert min(coverage.values()) >= 0.93
    assert width < 2.0  # informative: not every rank from 1 to 5
