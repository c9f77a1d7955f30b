"""The mouse paper's analyses added for issue 23 (brainrank/leaderboard/analyses/mouse.py):
scores against model properties, dataset-option sweeps (reliability threshold, cre line),
transformers against the other architectures and trained against random per architecture,
each against scipy.stats on tables whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from _analysis_frames import REGIONS, frame_from

from brainrank.core.errors import InputError
from brainrank.leaderboard import analyses


def zoo(n: int = 12, seed: int = 0):
    """n models whose srp-ridge scores rise with their depth and fall with their size."""
    rng = np.random.default_rng(seed)
    values, models = {}, []
    for i in range(n):
        model = f"m/{i}"
        n_params, top1 = 1e6 * (n - i) ** 2, 60 + rng.uniform(0, 25)
        level = 0.2 + 0.02 * i + 0.01 * rng.standard_normal()
        values[(model, "srp-ridge")] = list(level + 0.01 * rng.standard_normal(6))
        models.append({"model": model, "n_params": n_params, "imagenet_top1": top1})
    frame = frame_from(values, depth=0.5)
    layers = []  # model i has 3 + i layers
    for i in range(n):
        for k in range(3 + i):
            layers.append({"model": f"m/{i}", "dataset": "allen", "metric": "srp-ridge",
                           "subject": "s1", "region": "VISp", "layer": f"l{k}",
                           "selection": "layer", "score": 0.1, "relative_depth": k / (2 + i),
                           "family": "convnet", "trained": True})  # fmt: skip
    return pd.concat([frame, pd.DataFrame(layers)], ignore_index=True), pd.DataFrame(models)


def test_score_vs_properties_is_scipys_spearman_with_a_bootstrap_ci():
    frame, models = zoo()
    per_model = (
        frame[frame["selection"] == "max"].groupby(["model", "region"])["score"].mean()
        .groupby("model").mean()
    )  # fmt: skip
    for name, values in [
        ("n_params", models.set_index("model")["n_params"]),
        ("imagenet_top1", models.set_index("model")["imagenet_top1"]),
        ("n_layers", pd.Series({f"m/{i}": 3.0 + i for i in range(12)})),
    ]:
        result = analyses.score_vs_property(frame, name, models=models, n_boot=300)
        reference = scipy.stats.spearmanr(per_model[values.index], values)
        assert result.rho == pytest.approx(reference.statistic), name
        assert result.p_value == pytest.approx(reference.pvalue), name
        assert result.ci_low <= result.rho <= result.ci_high and result.n == 12
    depth = analyses.score_vs_property(frame, "n_layers", models=models)
    assert depth.rho > 0.9
    size = analyses.score_vs_property(frame, "n_params", models=models)
    assert size.rho < -0.9
    table = analyses.property_correlations(frame, models=models, metrics=["srp-ridge", "rsa"],
                                           n_boot=200)  # fmt: skip
    assert len(table) == 8
    assert table[table["metric"] == "rsa"]["note"].str.contains("no 'max' scores").all()


def test_a_missing_property_says_where_it_comes_from_and_few_models_give_no_ci():
    frame, models = zoo(n=4)
    with pytest.raises(InputError, match="models table"):
        analyses.score_vs_property(frame, "imagenet_top1")
    few = analyses.score_vs_property(frame, "n_params", models=models)
    assert few.n == 4 and np.isnan(few.ci_low) and np.isnan(few.p_value)
    assert "only 4 models" in few.reason and np.isfinite(few.rho)
    with pytest.raises(InputError, match="unknown model property"):
        analyses.score_vs_property(frame, "flops", models=models)


def sweep_frame(option: str, values: list, n_models: int = 6, seed: int = 1):
    """The same models on datasets built with each option value (separate entries)."""
    rng = np.random.default_rng(seed)
    parts, truth = [], {}
    for value in values:
        dataset = f"allen/natural-scenes({option}={value})"
        scores = {}
        for i in range(n_models):
            for metric in ("srp-ridge", "rsa"):
                level = 0.3 + 0.1 * (float(value) if not isinstance(value, str) else len(value))
                scores[(f"m/{i}", metric)] = list(level + 0.01 * i + 0.01 * rng.standard_normal(6))
        frame = frame_from(scores).assign(dataset=dataset)
        parts.append(frame)
        truth[value] = frame
    return pd.concat(parts, ignore_index=True), truth


def test_the_reliability_sweep_reads_datasets_built_with_each_threshold():
    frame, truth = sweep_frame("reliability_threshold", [0.5, 0.8, 0.7])
    sweeps = analyses.reliability_sweep(frame, n_boot=300)
    assert set(sweeps) == {"srp-ridge", "rsa"}
    srp = sweeps["srp-ridge"]
    assert list(srp.scores.columns) == [0.5, 0.7, 0.8]  # numeric order
    for value, part in truth.items():
        expected = part[(part["metric"] == "srp-ridge") & (part["selection"] == "max")]
        expected = expected.groupby(["model", "region"])["score"].mean().groupby("model").mean()
        np.testing.assert_allclose(srp.scores[value].loc[expected.index], expected)
        row = srp.summary.set_index("reliability_threshold").loc[value]
        low, high = scipy.stats.bootstrap(
            (expected.to_numpy(),), np.mean, n_resamples=2000, method="percentile", random_state=0
        ).confidence_interval
        assert row["mean"] == pytest.approx(expected.mean())
        assert row["ci_low"] == pytest.approx(low, abs=0.004)
        assert row["ci_high"] == pytest.approx(high, abs=0.004)
    explicit = analyses.option_sweep(
        frame, "reliability_threshold",
        {0.5: "allen/natural-scenes(reliability_threshold=0.5)"}, metric="rsa",
    )  # fmt: skip
    assert list(explicit.scores.columns) == [0.5]
    with pytest.raises(InputError, match="--dataset-option"):
        analyses.reliability_sweep(frame.assign(dataset="allen/natural-scenes"))


def test_the_cre_line_breakdown_orders_lines_by_their_mean():
    frame, _ = sweep_frame("cre_lines", ["Cux2", "Rorb", "Emx1xx"], n_models=5)
    breakdown = analyses.cre_line_breakdown(frame, n_boot=200)
    assert list(breakdown.summary["cre_lines"]) == ["Emx1xx", "Rorb", "Cux2"]
    assert list(breakdown.scores.columns) == ["Emx1xx", "Rorb", "Cux2"]
    assert breakdown.summary["n_models"].tolist() == [5, 5, 5]
    assert np.isfinite(breakdown.summary["ci_low"]).all()


def families_frame(n_transformers: int = 6, n_convnets: int = 14, seed: int = 2):
    rng = np.random.default_rng(seed)
    values, families = {}, {}
    for i in range(n_transformers):
        values[(f"timm/vit{i}", "srp-ridge")] = list(0.35 + 0.05 * rng.standard_normal(6))
        families[f"timm/vit{i}"] = "transformer"
    for i in range(n_convnets):
        values[(f"timm/conv{i}", "srp-ridge")] = list(0.30 + 0.02 * rng.standard_normal(6))
        families[f"timm/conv{i}"] = "convnet"
    values[("timm/conv0:random", "srp-ridge")] = [0.1] * 6  # random: left out
    return frame_from(values, families=families), values


def test_transformers_against_the_rest_is_welchs_t_test_with_hedges_g():
    frame, values = families_frame()
    result = analyses.family_contrast(frame, "transformer")
    a = [np.mean(v) for (m, _), v in values.items() if "vit" in m]
    b = [np.mean(v) for (m, _), v in values.items() if "conv" in m and ":random" not in m]
    welch = scipy.stats.ttest_ind(a, b, equal_var=False)
    assert result.test == "welch" and (result.n_family, result.n_other) == (6, 14)
    assert result.t == pytest.approx(welch.statistic) and result.p_value == pytest.approx(
        welch.pvalue
    )
    assert result.df == pytest.approx(welch.df)
    pooled = np.sqrt((5 * np.var(a, ddof=1) + 13 * np.var(b, ddof=1)) / 18)
    g = (np.mean(a) - np.mean(b)) / pooled * (1 - 3 / (4 * 18 - 1))
    assert result.hedges_g == pytest.approx(g)
    student = analyses.family_contrast(frame, "transformer", equal_var=True)
    reference = scipy.stats.ttest_ind(a, b)
    assert student.test == "student" and student.p_value == pytest.approx(reference.pvalue)
    few = analyses.family_contrast(families_frame(n_transformers=3)[0], "transformer")
    assert np.isnan(few.p_value) and "fewer than 5" in few.reason


def test_trained_against_random_per_architecture_with_bonferroni():
    rng = np.random.default_rng(3)
    values, families = {}, {}
    gaps = {"timm/vit": 0.2, "timm/mixer": 0.15, "timm/vgg": 0.0}
    for arch, gap in gaps.items():
        for suffix, shift in (("", gap), (":random", 0.0)):
            values[(arch + suffix, "srp-ridge")] = list(0.2 + shift + 0.01 * rng.random(6))
            families[arch + suffix] = "transformer" if "vit" in arch else "convnet"
    frame = frame_from(values, families=families)
    neuroids = []
    for arch, gap in gaps.items():
        for region in REGIONS:
            base = rng.normal(0.2, 0.1, 20)
            for suffix, shift in (("", gap), (":random", 0.0)):
                for i, v in enumerate(base + shift + rng.normal(0, 0.05, 20)):
                    neuroids.append({"model": arch + suffix, "dataset": "allen",
                                     "metric": "srp-ridge", "subject": "s1", "region": region,
                                     "selection": "max", "neuroid_id": f"n{i}", "value": v})  # fmt: skip
    per_neuroid = pd.DataFrame(neuroids)
    table = analyses.trained_vs_random_by_architecture(frame, per_neuroid).set_index("architecture")
    assert set(table.index) == set(gaps) and (table["unit"] == "neuroids").all()
    for arch in gaps:
        part = per_neuroid[per_neuroid["model"].str.startswith(arch)]
        pivot = part.pivot_table(index=["region", "neuroid_id"], columns="model", values="value")
        reference = scipy.stats.ttest_rel(pivot[arch], pivot[arch + ":random"])
        assert table.loc[arch, "n"] == 120
        assert table.loc[arch, "t"] == pytest.approx(reference.statistic)
        assert table.loc[arch, "p_bonferroni"] == pytest.approx(min(1.0, 3 * reference.pvalue))
    assert table.loc["timm/vit", "significant"] and not table.loc["timm/vgg", "significant"]
    cells = analyses.trained_vs_random_by_architecture(frame, families=["transformer"])
    assert list(cells["architecture"]) == ["timm/vit"] and cells.loc[0, "unit"] == "cells"
    assert cells.loc[0, "n"] == 12  # 6 regions x 2 subjects
    with pytest.raises(InputError, match="trained and ':random'"):
        analyses.trained_vs_random_by_architecture(frame, families=["mlp-mixer"])


def test_option_values_are_read_from_the_variant_names():
    frame = pd.DataFrame({"dataset": [
        "allen/natural-scenes", "allen/natural-scenes(reliability_threshold=0.5)",
        "allen/natural-scenes(cre_lines=[\"Cux2-CreERT2\"],reliability_threshold=0.7)",
        "allen/natural-scenes(cre_lines=[\"Rorb\",\"Scnn1a\"])", "other/data(x=1)",
    ]})  # fmt: skip
    assert analyses.option_datasets(frame, "reliability_threshold") == {
        0.5: "allen/natural-scenes(reliability_threshold=0.5)",
        0.7: 'allen/natural-scenes(cre_lines=["Cux2-CreERT2"],reliability_threshold=0.7)',
    }
    with_default = analyses.option_datasets(frame, "reliability_threshold", default=0.8)
    assert with_default[0.8] == "allen/natural-scenes"  # the default names the base dataset
    assert set(analyses.option_datasets(frame, "cre_lines")) == {"Cux2-CreERT2", "Rorb,Scnn1a"}
    assert analyses.option_datasets(frame, "missing") == {}
