"""Neural Taskonomy's analyses (brainrank/leaderboard/analyses/taskonomy.py): planted task
clusters recovered, and significance read from stored values only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainrank.core.errors import InputError
from brainrank.leaderboard import analyses


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
