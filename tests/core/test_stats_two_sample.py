"""Two-sample t tests (brainrank.core.stats.two_sample_ttest) against scipy.stats.ttest_ind."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from brainrank.core import stats
from brainrank.core.errors import InputError


@pytest.mark.parametrize("equal_var", [False, True])
def test_two_sample_t_tests_equal_scipys(equal_var):
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.3, 0.1, 7), rng.normal(0.2, 0.3, 15)
    b[3] = np.nan  # left out
    result = stats.two_sample_ttest(a, b, equal_var=equal_var)
    reference = scipy.stats.ttest_ind(a, b[np.isfinite(b)], equal_var=equal_var)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.df == pytest.approx(reference.df)


def test_two_sample_t_test_edge_cases():
    assert stats.two_sample_ttest([1.0, 1.0], [0.0, 0.0]).p_value == 0.0
    assert np.isnan(stats.two_sample_ttest([1.0, 1.0], [1.0, 1.0]).p_value)
    with pytest.raises(InputError, match="at least 2"):
        stats.two_sample_ttest([1.0], [0.0, 1.0])
