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
    assert result.epsilon_squared == pytest.approx(ref.statistic / (15 - 1))
    regions = result.regions.set_index("region")
    assert len(regions) == 6
    per_region = [
        scipy.stats.kruskal(*[[values[(f"{fam}/{i}", "srp-ridge")][k] for i in range(5)]
                              for fam in ("convnet", "transformer", "mlp-mixer")]).pvalue
        for k in range(6)
    ]  # fmt: skip
    expected = [min(1.0, p) for p in per_region]
    order = np.argsort(per_region)
    running = 0.0
    for rank, i in enumerate(order):  # Holm step-down
        running = max(running, min(1.0, (6 - rank) * per_region[i]))
        expected[i] = running
    np.testing.assert_allclose(regions.loc[REGIONS, "p_holm"], expected)
    # fewer than 5 models in a family: no p-value, a reason
    small = {k: v for k, v in values.items() if not k[0].endswith(("/3", "/4"))}
    few = analyses.family_comparison(frame_from(small, families=families, depth=depth))
    assert np.isnan(few.p_value) and "fewer than 5" in few.reason


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


def stored_rows(model, r, p_fdr, layer="l1", best=True):
    """per_neuroid()-like rows of a held-out encoding metric for one model."""
    rows = []
    ids = [f"v{i}" for i in range(len(r))]
    selections = [("layer", r), ("significance", p_fdr)] + ([("max", r)] if best else [])
    for selection, values in selections:
        for neuroid, value in zip(ids, values, strict=True):
            rows.append({"model": model, "dataset": "d", "metric": "encoding:taskonomy",
                         "metric_hash": "h", "subject": "s1", "region": "V1", "layer": layer,
                         "selection": selection, "neuroid_id": neuroid, "value": value})  # fmt: skip
    return pd.DataFrame(rows)


def test_voxel_significance_reads_stored_values_only():
    r = np.array([0.5, 0.4, 0.01, -0.1])
    p_fdr = np.array([0.001, 0.04, 0.6, np.nan])
    result = analyses.voxel_significance(stored_rows("t/a", r, p_fdr))
    np.testing.assert_allclose(result.r, r)
    assert result.significant.tolist() == [True, True, False, False]
    assert result.layers == {("s1", "V1"): "l1"}
    assert list(result.neuroid_ids) == ["s1/v0", "s1/v1", "s1/v2", "s1/v3"]
    with pytest.raises(InputError, match="no per-neuroid significance"):
        rows = stored_rows("t/a", r, p_fdr)
        analyses.voxel_significance(rows[rows["selection"] != "significance"])
    with pytest.raises(InputError, match="pass layer"):
        analyses.voxel_significance(stored_rows("t/a", r, p_fdr, best=False))


def test_task_maps_keep_only_fdr_significant_voxels():
    r = np.array([0.5, 0.3, 0.2, 0.1])  # all r > 0: the old threshold kept every voxel
    frames = [
        stored_rows("t/a", r, np.array([0.01, 0.01, 0.5, 0.5])),
        stored_rows("t/b", r, np.array([0.5, 0.5, 0.01, 0.01])),
    ]
    maps, significant = analyses.significant_maps(pd.concat(frames, ignore_index=True))
    assert significant["t/a"].tolist() == [True, True, False, False]
    similarity = analyses.task_similarity(maps, significant)
    assert similarity.loc["t/a", "t/b"] == pytest.approx(0.0)


def test_the_analyses_layer_builds_no_model():
    """Stored results only: the analyses module imports no plugin, settings or extraction."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(analyses))
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    forbidden = ("brainrank.plugins", "brainrank.settings", "brainrank.core.extraction",
                 "brainrank.core.runner", "brainrank.grid", "brainrank.core.cache")  # fmt: skip
    assert not [m for m in imported if m and m.startswith(forbidden)]
    assert "import brainrank\n" not in inspect.getsource(analyses)


def test_maps_from_per_neuroid_rows():
    rows = pd.DataFrame({"model": ["a", "a", "b", "b", "b"], "neuroid_id": ["x", "y", "x", "y", "z"],
                         "value": [0.1, 0.2, 0.3, 0.4, 0.5]})  # fmt: skip
    maps = analyses.maps_from_per_neuroid(rows)
    assert set(maps) == {"a", "b"} and maps["b"].tolist() == [0.3, 0.4]


def test_encoding_significance_reads_a_stored_taskonomy_run(tiny_plugin_path, tmp_path):
    import brainrank
    from brainrank.core.registry import get_registry
    from brainrank.plugins.metrics.taskonomy import TaskonomyEncoding

    get_registry([tiny_plugin_path])
    db = str(tmp_path / "lb.db")
    metric = TaskonomyEncoding(test_fraction=0.5, n_folds=3, n_permutations=200)
    brainrank.score("tiny/net", "tiny/data", metric, db=db)
    result = analyses.encoding_significance(db, "tiny/net", "tiny/data")
    assert len(result.r) == 6 and np.isfinite(result.r).all()
    # the tiny dataset is driven by its best layer: most voxels pass with 12 test stimuli
    assert result.significant.mean() >= 0.5 and (result.r[result.significant] > 0.5).all()
    with pytest.raises(InputError, match="run 'brainrank run"):
        analyses.encoding_significance(db, "tiny/net", "tiny/data", metric="srp-ridge")


def test_generalisation_scores_the_layer_chosen_on_the_training_stimuli():
    rows = []
    # per layer: the test score as the value, the training score in details["train"]
    for layer, (train, test) in {"l1": (0.2, 0.1), "l2": (0.5, 0.3), "l3": (0.4, 0.35)}.items():
        rows.append({"model": "m/a", "dataset": "nsd/generalisation:subj01",
                     "metric": "versa:generalisation", "subject": "subj01", "region": "V1",
                     "layer": layer, "selection": "layer", "score": test,
                     "details": {"train": train}})  # fmt: skip
    rows.append({**rows[0], "metric": "versa", "layer": "l9", "score": 0.9,
                 "details": {"train": 0.9}})  # another metric: ignored  # fmt: skip
    out = analyses.generalisation(pd.DataFrame(rows))
    [row] = out.to_dict(orient="records")
    assert row["layer"] == "l2" and row["selected"] == 0.5  # chosen on the training score
    assert row["generalised"] == 0.3 and row["best_possible"] == 0.35
    with pytest.raises(InputError, match="versa:generalisation"):
        analyses.generalisation(pd.DataFrame(rows), dataset="nsd/shared1000")
