"""The embedded simulated dataset: deterministic, documented, and its ground truth is
recovered by the whole pipeline (the default suite, both metrics)."""

from __future__ import annotations

import numpy as np
import pytest

import brainrank
from brainrank.core.registry import Registry
from brainrank.core.runner import run_grid
from brainrank.core.types import average_repetitions
from brainrank.leaderboard import open_store, scores
from brainrank.plugins.datasets import simulated
from brainrank.suite import DEFAULT_MODELS


@pytest.fixture(scope="module")
def dataset():
    return brainrank.get_registry().get("dataset", "simulated").load()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One feature cache for this module: every model is extracted once."""
    from brainrank.core.cache import FeatureCache

    return FeatureCache(tmp_path_factory.mktemp("sim-cache"))


@pytest.fixture(scope="module")
def leaderboard(tmp_path_factory, cache):
    """The default suite on `simulated`, scored once for this module."""
    store = open_store(str(tmp_path_factory.mktemp("sim") / "lb.db"))
    summary = run_grid(registry=Registry(), store=store, models=list(DEFAULT_MODELS),
                       datasets=["simulated"], metrics=["srp-ridge", "rsa"], cache=cache,
                       progress=False)  # fmt: skip
    assert not summary.failures, summary.failures
    return scores(store)


def test_dataset_shape_and_determinism(dataset):
    responses = dataset.responses()
    n_stim = sum(simulated.N_PER_KIND.values())
    n_neuroids = len(simulated.SUBJECTS) * len(simulated.GENERATORS) * simulated.N_NEUROIDS
    assert len(dataset.stimuli) == n_stim == 200
    assert responses.shape == (n_stim * simulated.N_REPETITIONS, n_neuroids)
    assert set(responses["region"].values) == {"early", "late"}
    again = simulated.build()
    np.testing.assert_array_equal(again.responses().values, responses.values)
    assert again.stimuli.content_hash() == dataset.stimuli.content_hash()
    assert "SIMULATED" in simulated.__doc__ and "simulated" in dataset.metadata.species


def test_true_reliability_matches_the_data(dataset):
    """The exposed reliability is what split halves of the repetitions estimate."""
    responses = dataset.responses()
    rep = responses["repetition"].values
    half_a = average_repetitions(responses[np.isin(rep, [0, 1])]).values
    half_b = average_repetitions(responses[np.isin(rep, [2, 3])]).values
    za = (half_a - half_a.mean(0)) / half_a.std(0)
    zb = (half_b - half_b.mean(0)) / half_b.std(0)
    r = (za * zb).mean(0)
    estimated = 2 * r / (1 + r)  # Spearman-Brown to the 4-repetition average
    true = responses["true_reliability"].values
    assert np.corrcoef(estimated, true)[0, 1] > 0.8
    assert abs(estimated.mean() - true.mean()) < 0.05
    truth = dataset.ground_truth
    assert truth["generators"]["late"] == {
        "model": "torchvision/alexnet:random",
        "layer": "features.11",
    }
    assert truth["true_reliability"][str(responses["neuroid_id"].values[0])] == pytest.approx(
        true[0]
    )


def test_ridge_recovers_each_regions_generating_model_and_layer(leaderboard, dataset):
    best = leaderboard[(leaderboard["selection"] == "max") & (leaderboard["metric"] == "srp-ridge")]
    for region, generator in dataset.ground_truth["generators"].items():
        for subject in simulated.SUBJECTS:
            rows = best[(best["region"] == region) & (best["subject"] == subject)]
            top = rows.sort_values("score", ascending=False).iloc[0]
            assert (top["model"], top["layer"]) == (generator["model"], generator["layer"]), rows
            # and within the generating model, the generating layer beats every other layer
            layers = leaderboard[(leaderboard["selection"] == "layer") & (leaderboard["metric"] == "srp-ridge")
                                 & (leaderboard["model"] == generator["model"])
                                 & (leaderboard["region"] == region) & (leaderboard["subject"] == subject)]  # fmt: skip
            assert layers.sort_values("score").iloc[-1]["layer"] == generator["layer"]


def test_rsa_ranks_each_regions_generating_model_first(leaderboard, dataset):
    best = leaderboard[(leaderboard["selection"] == "max") & (leaderboard["metric"] == "rsa")]
    for region, generator in dataset.ground_truth["generators"].items():
        for subject in simulated.SUBJECTS:
            rows = best[(best["region"] == region) & (best["subject"] == subject)]
            assert rows.sort_values("score", ascending=False).iloc[0]["model"] == generator["model"]


def test_every_model_scored_on_every_layer(leaderboard):
    per_layer = leaderboard[leaderboard["selection"] == "layer"]
    assert set(per_layer["model"]) == set(DEFAULT_MODELS)
    layers = per_layer.groupby("model")["layer"].nunique()
    assert layers["baseline/pixels"] == 1 and layers["baseline/gabor"] == 2
    assert layers["torchvision/alexnet:random"] > 15 and layers["timm/resnet18:random"] > 40
    depth = per_layer.groupby("model")["relative_depth"].agg(["min", "max"])
    assert (depth.loc[depth.index != "baseline/pixels", "min"] == 0).all()
    assert (depth.loc[depth.index != "baseline/pixels", "max"] == 1).all()


def test_estimated_ceilings_match_the_simulated_reliability(dataset):
    from brainrank.core.types import neuroid_groups

    responses = dataset.responses()
    true = responses["true_reliability"].values
    encoding = dataset.ceiling("encoding")
    for key, index in neuroid_groups(responses):
        assert encoding[key] == pytest.approx(np.sqrt(true[index]).mean(), abs=0.03)
    rsa = dataset.ceiling("rsa")
    assert set(rsa) == set(encoding) and all(0 < v < 1 for v in rsa.values())


def test_scores_carry_ceilings_and_per_neuroid_values(dataset, cache, leaderboard):
    from brainrank.core.runner import score_features

    features = brainrank.core.runner.compute_features(
        brainrank.load_model("baseline/gabor"), dataset.stimuli,
        brainrank.FeatureRequest(frozenset({4541}), rdm=True),
        brainrank.core.extraction.ExtractionConfig(),
        cache,
    )  # fmt: skip
    rows = score_features(brainrank.load_metric("srp-ridge"), features, dataset)
    best = [r for r in rows if r.selection == "max" and r.region == "early"]
    assert all(r.ceiling and 0.5 < r.normalized < 1.0 for r in best)
    assert all(len(r.per_neuroid) == len(r.neuroid_ids) == simulated.N_NEUROIDS for r in best)
    assert all(r.value == pytest.approx(np.nanmean(r.per_neuroid), abs=1e-6) for r in best)


def test_stacking_gives_the_weight_to_the_generating_layer(dataset, cache, leaderboard):
    """Stack four feature spaces from three models; each region puts most of its weight on
    the layer that generated it."""
    from brainrank.core.extraction import ExtractionConfig
    from brainrank.core.runner import compute_features
    from brainrank.core.types import FeatureSet

    metric = brainrank.load_metric("stacking")
    request = metric.feature_request(dataset)
    spaces = []
    for model_id, layers in [("baseline/gabor", ["pool"]), ("baseline/pixels", ["pixels"]),
                             ("torchvision/alexnet:random", ["features.4", "features.11"])]:  # fmt: skip
        features = compute_features(
            brainrank.load_model(model_id), dataset.stimuli, request, ExtractionConfig()
        )
        spaces += [features[name] for name in layers]
    combined = FeatureSet("stack-of-models", dataset.stimuli.stimulus_ids, spaces)
    rows = metric.score(combined, dataset)
    generators = {"early": "pool", "late": "features.11"}
    for row in (r for r in rows if r.selection == "stacked"):
        weights = row.extra["weights"]
        assert row.extra["top_layer"] == generators[row.region], weights
        assert weights[generators[row.region]] > 0.6, weights
