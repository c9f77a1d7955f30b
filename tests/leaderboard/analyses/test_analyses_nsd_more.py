"""The NSD paper's analyses added for issue 23 (brainrank/leaderboard/analyses/nsd.py): the
generalisation summary, paired-difference bootstrap CIs, effective dimensionality against
scores, and the human reference points (subject-to-subject and multi-subject), each against
an independent computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from _analysis_frames import REGIONS, frame_from

from brainrank.core.dataset import Dataset
from brainrank.core.errors import InputError
from brainrank.core.registry import get_registry
from brainrank.core.responses import make_responses
from brainrank.core.specs import DatasetMetadata
from brainrank.core.stimuli import StimulusSet
from brainrank.leaderboard import analyses


def test_generalisation_summary_is_the_mean_decrease_with_a_bootstrap_ci():
    rng = np.random.default_rng(0)
    rows = []
    for m in range(4):
        for subject in ("subj01", "subj02"):
            for region in ("V1", "V4", "FFA"):
                selected = 0.4 + 0.05 * rng.standard_normal()
                rows.append({"model": f"m/{m}", "dataset": f"nsd/generalisation:{subject}",
                             "subject": subject, "region": region, "layer": "l1",
                             "selected": selected,
                             "generalised": selected - 0.01 + 0.01 * rng.standard_normal(),
                             "best_possible": selected})  # fmt: skip
    table = pd.DataFrame(rows)
    overall, by_cell = analyses.generalisation_summary(table, n_boot=2000)
    decrease = table["selected"] - table["generalised"]
    assert overall["mean_decrease"] == pytest.approx(decrease.mean()) and overall["n"] == 24
    reference = scipy.stats.bootstrap(
        (decrease.to_numpy(),), np.mean, n_resamples=4000, method="percentile", random_state=0
    ).confidence_interval
    assert overall["ci_low"] == pytest.approx(reference.low, abs=0.0015)
    assert overall["ci_high"] == pytest.approx(reference.high, abs=0.0015)
    assert len(by_cell) == 6 and (by_cell["n_models"] == 4).all()
    cell = by_cell[(by_cell["subject"] == "subj01") & (by_cell["region"] == "V1")].iloc[0]
    part = table[(table["subject"] == "subj01") & (table["region"] == "V1")]
    assert cell["decrease"] == pytest.approx((part["selected"] - part["generalised"]).mean())


def test_paired_difference_of_two_metrics_over_models_and_regions():
    rng = np.random.default_rng(1)
    values = {}
    for i in range(5):
        base = 0.2 + 0.05 * rng.standard_normal(6)
        values[(f"m/{i}", "rsa")] = list(base)
        values[(f"m/{i}", "versa")] = list(base + 0.16 + 0.01 * rng.standard_normal(6))
    frame = frame_from(values)
    result = analyses.paired_difference(frame, "versa", "rsa", n_boot=2000)
    d = np.array([np.subtract(values[(f"m/{i}", "versa")], values[(f"m/{i}", "rsa")])
                  for i in range(5)]).ravel()  # fmt: skip
    assert result.n == 30 and result.mean == pytest.approx(d.mean())
    reference = scipy.stats.bootstrap((d,), np.mean, n_resamples=4000, method="percentile",
                                      random_state=0).confidence_interval  # fmt: skip
    assert result.ci_low == pytest.approx(reference.low, abs=0.001)
    assert result.ci_high == pytest.approx(reference.high, abs=0.001)
    assert len(result.by_region) == 6
    assert result.by_region.set_index("region").loc["VISp", "n"] == 5


def test_paired_difference_of_models_pairs_them_by_position():
    values = {}
    for arch, gain in (("resnet50", 0.05), ("vit", 0.03)):
        values[(f"ssl/{arch}", "srp-ridge")] = [0.3 + gain] * 6
        values[(f"sup/{arch}", "srp-ridge")] = [0.3] * 6
    frame = frame_from(values)
    result = analyses.paired_difference(
        frame, ["ssl/resnet50", "ssl/vit"], ["sup/resnet50", "sup/vit"], by="model", n_boot=200
    )
    assert result.n == 12 and result.mean == pytest.approx(0.04)
    assert set(result.units["pair"]) == {"ssl/resnet50 - sup/resnet50", "ssl/vit - sup/vit"}
    with pytest.raises(InputError, match="pair them one to one"):
        analyses.paired_difference(frame, ["ssl/vit"], ["sup/vit", "sup/resnet50"], by="model")
    few = analyses.paired_difference(frame, "ssl/vit", "sup/vit", by="model")
    assert few.n == 6 and np.isfinite(few.ci_low)
    two = frame[frame["region"].isin(REGIONS[:2])]
    small = analyses.paired_difference(two, "ssl/vit", "sup/vit", by="model")
    assert np.isnan(small.ci_low) and "only 2" in small.reason


def dimensionality_frame(n_models: int = 6, n_layers: int = 5, seed: int = 2):
    """Per layer, an effective dimensionality and a score that rises with it."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(n_models):
        for k in range(n_layers):
            ed = 5 + 10 * k + m + rng.uniform(0, 3)
            common = {"model": f"m/{m}", "dataset": "nsd", "layer": f"l{k}", "layer_index": k,
                      "relative_depth": k / (n_layers - 1), "selection": "layer",
                      "family": "convnet", "trained": True}  # fmt: skip
            rows.append({**common, "metric": "effective-dimensionality", "subject": "all",
                         "region": "features", "score": ed})  # fmt: skip
            for region in ("V1", "V4"):
                rows.append({**common, "metric": "srp-ridge", "subject": "s1", "region": region,
                             "score": 0.01 * ed + 0.02 * rng.standard_normal()})  # fmt: skip
    return pd.DataFrame(rows)


def test_layer_dimensionality_against_scores_with_a_cluster_bootstrap():
    frame = dimensionality_frame()
    dims = analyses.layer_dimensionality(frame)
    assert len(dims) == 30 and list(dims.columns[:3]) == ["model", "dataset", "layer"]
    result = analyses.dimensionality_vs_score(frame, n_boot=300)
    score = frame[frame["metric"] == "srp-ridge"].groupby(["model", "layer"])["score"].mean()
    joined = dims.set_index(["model", "layer"]).join(score)
    reference = scipy.stats.spearmanr(joined["effective_dimensionality"], joined["score"])
    assert result["rho"] == pytest.approx(reference.statistic) and result["n_layers"] == 30
    assert result["ci_low"] <= result["rho"] <= result["ci_high"] and result["rho"] > 0.5
    per_model = result["per_model"]
    one = joined.loc["m/0"]
    assert per_model.set_index("model").loc["m/0", "rho"] == pytest.approx(
        scipy.stats.spearmanr(one["effective_dimensionality"], one["score"]).statistic
    )
    with pytest.raises(InputError, match="effective-dimensionality"):
        analyses.dimensionality_vs_score(frame[frame["metric"] == "srp-ridge"])
    few = analyses.dimensionality_vs_score(dimensionality_frame(n_models=3))
    assert np.isnan(few["ci_low"]) and "only 3 models" in few["reason"]


def subjects_dataset(n_stimuli: int = 40, n_voxels: int = 25, seed: int = 3) -> Dataset:
    """Three subjects who see the same stimuli: a shared signal plus each one's noise."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(n_stimuli)]
    latent = rng.standard_normal((n_stimuli, 6))
    blocks, subjects, neuroids = [], [], []
    for subject, noise in (("a", 0.5), ("b", 1.0), ("c", 1.5)):
        weights = rng.standard_normal((6, n_voxels))
        blocks.append(latent @ weights + noise * rng.standard_normal((n_stimuli, n_voxels)))
        subjects += [subject] * n_voxels
        neuroids += [f"{subject}{v}" for v in range(n_voxels)]
    responses = make_responses(np.hstack(blocks), stimulus_id=ids, neuroid_id=neuroids,
                               subject=np.array(subjects), region="V1")  # fmt: skip
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    stimuli = StimulusSet("subjects", ids, lambda _: image)
    return Dataset("test/subjects", stimuli, DatasetMetadata("human", "test"), responses)


def upper(x: np.ndarray) -> np.ndarray:
    matrix = 1 - np.corrcoef(x)
    return matrix[np.triu_indices(len(matrix), 1)]


def test_references_score_other_subjects_with_the_models_metric():
    dataset = subjects_dataset()
    rsa = get_registry().get("metric", "rsa").load()
    table = analyses.subject_references(dataset, rsa, selection="layer")
    values = np.asarray(dataset.responses().values)
    block = {s: values[:, i * 25 : (i + 1) * 25] for i, s in enumerate("abc")}
    single = table[table["kind"] == "subject"].set_index(["target", "source"])["value"]
    assert len(single) == 6
    for target in "abc":
        for source in set("abc") - {target}:
            reference = np.corrcoef(upper(block[target]), upper(block[source]))[0, 1]
            assert single.loc[(target, source)] == pytest.approx(reference, abs=1e-9)
    multi = table[table["kind"] == "multisubject"].set_index("target")
    both = np.hstack([block["b"], block["c"]])
    assert multi.loc["a", "source"] == "b+c" and multi.loc["a", "n_sources"] == 2
    assert multi.loc["a", "value"] == pytest.approx(
        np.corrcoef(upper(block["a"]), upper(both))[0, 1]
    )
    versa = get_registry().get("metric", "versa").load(alphas=[1.0, 100.0])
    weighted = analyses.subject_references(dataset, versa)
    assert set(weighted["selection"]) == {"heldout"} and len(weighted) == 9
    means = weighted.groupby("kind")["value"].mean()
    assert means["multisubject"] > means["subject"] > 0.2  # more brains, a better reference
    with pytest.raises(InputError, match="unknown reference kinds"):
        analyses.subject_references(dataset, rsa, kinds=("pairs",))
