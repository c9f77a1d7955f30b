"""The mouse paper's analyses (brainrank/leaderboard/analyses/mouse.py, Conwell et al. 2021)
on score tables whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from _analysis_frames import REGIONS, frame_from

from brainrank.core.errors import InputError
from brainrank.leaderboard import analyses


def test_overall_ranking_means_metrics_then_regions_with_bootstrap_ci():
    rng = np.random.default_rng(0)
    values = {}
    for model, level in [("m/a", 0.5), ("m/b", 0.3), ("m/c", 0.4)]:
        values[(model, "srp-ridge")] = list(level + 0.05 * rng.standard_normal(6))
        values[(model, "rsa")] = list(level - 0.1 + 0.05 * rng.standard_normal(6))
    table = analyses.overall_ranking(frame_from(values), n_boot=500)
    assert list(table["model"]) == ["m/a", "m/c", "m/b"]
    row = table.iloc[0]
    expected = (np.array(values[("m/a", "srp-ridge")]) + np.array(values[("m/a", "rsa")])) / 2
    assert row["score"] == pytest.approx(expected.mean())
    assert row["ci_low"] < row["score"] < row["ci_high"] and row["n_regions"] == 6
    assert row["srp-ridge"] == pytest.approx(np.mean(values[("m/a", "srp-ridge")]))


def test_trained_vs_random_equals_a_paired_t_test():
    values = {}
    trained = [0.5, 0.45, 0.6, 0.3]
    random = [0.3, 0.35, 0.2, 0.32]
    for i, (t, r) in enumerate(zip(trained, random, strict=True)):
        values[(f"torchvision/net{i}", "srp-ridge")] = [t] * 6
        values[(f"torchvision/net{i}:random", "srp-ridge")] = [r] * 6
    values[("timm/vit.augreg_in21k", "srp-ridge")] = [0.4] * 6  # a tagged timm name pairs with
    values[("timm/vit:random", "srp-ridge")] = [0.1] * 6  # its untagged random variant
    values[("baseline/pixels", "srp-ridge")] = [0.1] * 6  # no pair
    result = analyses.trained_vs_random(frame_from(values))
    assert len(result.pairs) == 5
    ref = scipy.stats.ttest_rel(result.pairs["trained"], result.pairs["random"])
    assert result.t == pytest.approx(ref.statistic) and result.p_value == pytest.approx(ref.pvalue)
    d = result.pairs["difference"]
    assert result.cohens_d == pytest.approx(d.mean() / d.std(ddof=1))
    assert result.hedges_g == pytest.approx(result.cohens_d * (1 - 3 / (4 * 4 - 1)))
    assert result.n == 5 and result.reason is None
    assert result.random_matches_or_beats == ["torchvision/net3"]
    # two pairs: no p-value or effect size, a reason instead
    few = {k: v for k, v in values.items() if "net0" in k[0] or "net1" in k[0]}
    small = analyses.trained_vs_random(frame_from(few))
    assert len(small.pairs) == 2 and "only 2" in small.reason
    assert np.isnan(small.p_value) and np.isnan(small.cohens_d) and np.isnan(small.t)
    with pytest.raises(InputError, match="at least 2 architectures"):
        analyses.trained_vs_random(frame_from({("a/x", "rsa"): [0.1] * 6}), metric="rsa")


def test_metric_agreement_over_models_and_layers():
    values = {}
    for i in range(8):
        values[(f"m/{i}", "srp-ridge")] = [0.1 * i] * 6
        values[(f"m/{i}", "rsa")] = [0.02 * i**2] * 6  # monotonic in i
    table = analyses.metric_agreement(frame_from(values), n_boot=200).set_index("comparison")
    assert table.loc["models", "rho"] == pytest.approx(1.0)
    assert table.loc["layers (pooled)", "n"] == 8


def test_metric_agreement_is_the_mouse_papers_mean_over_model_and_area():
    """Conwell et al. 2021: the layer-wise Spearman rho between the two metrics per
    (model, area), averaged over the combinations."""
    rng = np.random.default_rng(4)
    rows, expected = [], []
    for m in range(4):
        model = f"m/{m}" if m < 3 else "m/3:random"
        for region in REGIONS[:3]:
            a = rng.standard_normal(6)
            b = a + rng.standard_normal(6) * (0.5 + m)
            expected.append((model, scipy.stats.spearmanr(a, b).statistic))
            for layer in range(6):
                for metric, value in (("srp-ridge", a[layer]), ("rsa", b[layer])):
                    rows.append({"model": model, "dataset": "allen", "metric": metric,
                                 "subject": "s1", "region": region, "layer": f"l{layer}",
                                 "selection": "layer", "score": value, "family": "convnet",
                                 "trained": ":random" not in model})  # fmt: skip
    table = analyses.metric_agreement(pd.DataFrame(rows), n_boot=300).set_index("comparison")
    row = table.loc["layers (model x area)"]
    assert row["rho"] == pytest.approx(np.mean([r for _, r in expected]))
    assert row["n"] == 12 and row["ci_low"] <= row["rho"] <= row["ci_high"]
    trained = table.loc["layers (model x area), trained models"]
    assert trained["rho"] == pytest.approx(np.mean([r for m, r in expected if "random" not in m]))
    assert trained["n"] == 9
