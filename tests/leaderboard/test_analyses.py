"""The seed papers' analyses on score tables whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from brainrank.core.errors import InputError
from brainrank.leaderboard import analyses

REGIONS = ["VISp", "VISl", "VISal", "VISpm", "VISrl", "VISam"]


def frame_from(values: dict[tuple[str, str], list[float]], families=None, trained=None, depth=0.5):
    """values[(model, metric)] = one score per region (subjects: 2, identical)."""
    rows = []
    for (model, metric), per_region in values.items():
        for region, value in zip(REGIONS, per_region, strict=False):
            for subject in ("s1", "s2"):
                for selection in ("max", "layer"):
                    rows.append({
                        "model": model, "dataset": "allen", "metric": metric, "subject": subject,
                        "region": region, "layer": "l1", "selection": selection, "score": value,
                        "relative_depth": depth if np.isscalar(depth) else depth[model],
                        "family": (families or {}).get(model, "convnet"),
                        "trained": (trained or {}).get(model, ":random" not in model),
                    })  # fmt: skip
    return pd.DataFrame(rows)


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
    assert result.random_matches_or_beats == ["torchvision/net3"]
    with pytest.raises(InputError, match="at least 2 architectures"):
        analyses.trained_vs_random(frame_from({("a/x", "rsa"): [0.1] * 6}), metric="rsa")


def test_metric_agreement_over_models_and_layers():
    values = {}
    for i in range(8):
        values[(f"m/{i}", "srp-ridge")] = [0.1 * i] * 6
        values[(f"m/{i}", "rsa")] = [0.02 * i**2] * 6  # monotonic in i
    table = analyses.metric_agreement(frame_from(values), n_boot=200).set_index("comparison")
    assert table.loc["models", "rho"] == pytest.approx(1.0)
    assert table.loc["layers", "n"] == 8


def test_best_layer_depth_and_family_comparison():
    values, families, depth = {}, {}, {}
    rng = np.random.default_rng(1)
    for fam, level, d in [
        ("convnet", 0.5, 0.3),
        ("transformer", 0.3, 0.8),
        ("mlp-mixer", 0.35, 0.6),
    ]:
        for i in range(5):
            model = f"{fam}/{i}"
            values[(model, "srp-ridge")] = list(level + 0.02 * rng.standard_normal(6))
            families[model] = fam
            depth[model] = d
    frame = frame_from(values, families=families, depth=depth)
    depths = analyses.best_layer_depth(frame)
    conv = depths[(depths["family"] == "convnet") & (depths["region"] == "VISp")]
    assert conv["mean_depth"].iloc[0] == pytest.approx(0.3) and conv["n_models"].iloc[0] == 5
    result = analyses.family_comparison(frame)
    per_family = [np.array([np.mean(values[(f"{fam}/{i}", "srp-ridge")]) for i in range(5)])
                  for fam in ("convnet", "transformer", "mlp-mixer")]  # fmt: skip
    ref = scipy.stats.kruskal(*per_family)
    assert result.h == pytest.approx(ref.statistic) and result.p_value == pytest.approx(ref.pvalue)
    assert result.summary.set_index("family").loc["convnet", "n_models"] == 5


def test_taskonomy_pipeline_recovers_planted_task_clusters():
    rng = np.random.default_rng(2)
    n_vox = 400
    prototypes = {
        "2D": rng.standard_normal(n_vox),
        "3D": rng.standard_normal(n_vox),
        "semantic": rng.standard_normal(n_vox),
    }
    clusters = {f"{c.lower()}-{i}": c for c in prototypes for i in range(3)}
    maps = {
        task: np.abs(prototypes[c] + 0.3 * rng.standard_normal(n_vox))
        for task, c in clusters.items()
    }
    similarity = analyses.task_similarity(maps)
    assert similarity.shape == (9, 9) and np.allclose(np.diag(similarity), 1.0)
    for method in ("average", "ward"):
        tree = analyses.cluster_tasks(similarity, method)
        agreement = analyses.compare_with_clusters(tree, clusters)
        assert agreement["adjusted_rand"] == pytest.approx(1.0) and agreement["purity"] == 1.0
        assert sorted(tree.order) == sorted(maps)
    contrast = analyses.contrast_map(maps, ["3d-0", "3d-1"], ["2d-0", "2d-1"])
    assert contrast.shape == (n_vox,)
    # thresholding: a task significant nowhere is orthogonal to every other
    significant = {t: np.ones(n_vox, bool) for t in maps}
    significant["2d-0"] = np.zeros(n_vox, bool)
    masked = analyses.task_similarity(maps, significant)
    assert np.isnan(masked.loc["2d-0", "3d-0"]) or masked.loc["2d-0", "3d-0"] == 0


def test_voxel_significance_finds_predictive_voxels():
    rng = np.random.default_rng(3)
    n, v = 80, 200
    responses = rng.standard_normal((n, v))
    predictions = rng.standard_normal((n, v))
    predictions[:, :50] += responses[:, :50]
    result = analyses.voxel_significance(predictions, responses, n_permutations=300)
    assert result.significant[:50].all()
    assert result.significant[50:].mean() < 0.05
    assert np.all(result.p_fdr >= result.p)


def test_maps_from_per_neuroid_rows():
    rows = pd.DataFrame({"model": ["a", "a", "b", "b", "b"], "neuroid_id": ["x", "y", "x", "y", "z"],
                         "value": [0.1, 0.2, 0.3, 0.4, 0.5]})  # fmt: skip
    maps = analyses.maps_from_per_neuroid(rows)
    assert set(maps) == {"a", "b"} and maps["b"].tolist() == [0.3, 0.4]


def test_encoding_significance_on_a_real_layer(tiny_plugin_path):
    from brainrank.core.registry import get_registry

    get_registry([tiny_plugin_path])
    ids, result = analyses.encoding_significance(
        "tiny/net", "tiny/data", "pool", n_permutations=200
    )
    assert len(ids) == len(result.r) == 6
    assert result.significant.all()  # the tiny dataset is driven by this very layer


def test_generalisation_scores_the_layer_chosen_on_another_dataset():
    rows = []
    for dataset, scores in [("nsd/shared1000", {"l1": 0.2, "l2": 0.5, "l3": 0.4}),
                            ("nsd/generalisation:subj01", {"l1": 0.1, "l2": 0.3, "l3": 0.35})]:  # fmt: skip
        for layer, value in scores.items():
            rows.append({"model": "m/a", "dataset": dataset, "metric": "versa", "subject": "subj01",
                         "region": "V1", "layer": layer, "selection": "layer", "score": value})  # fmt: skip
    out = analyses.generalisation(pd.DataFrame(rows), "nsd/shared1000", "nsd/generalisation:*")
    [row] = out.to_dict(orient="records")
    assert row["layer"] == "l2" and row["selected"] == 0.5
    assert row["generalised"] == 0.3 and row["best_possible"] == 0.35
