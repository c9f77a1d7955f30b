"""The embedded simulated dataset: deterministic, documented, and its ground truth is
recovered by the whole pipeline (the default suite, both metrics). Every assertion checks
first that its subject exists (a loop over no rows must not pass)."""

from __future__ import annotations

import numpy as np
import pytest

import brainrank
from brainrank.core.registry import Registry
from brainrank.core.responses import average_repetitions
from brainrank.grid import run_grid
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
    per_subject = 2 * (simulated.N_NEUROIDS + simulated.N_NOISE) + simulated.N_NULL
    assert per_subject == 168
    n_neuroids = len(simulated.SUBJECTS) * per_subject
    assert len(dataset.stimuli) == n_stim == 200
    assert responses.shape == (n_stim * simulated.N_REPETITIONS, n_neuroids)
    assert set(responses["region"].values) == {"early", "late", "null"}
    assert dataset.metadata.regions == ("early", "late", "null")
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
    signal = responses["signal"].values.astype(bool)
    assert signal.sum() == len(simulated.SUBJECTS) * 2 * simulated.N_NEUROIDS
    # the pure-noise neuroids: reliability 0, and split halves agree (SE of r over 200
    # stimuli ~ 0.07; mean over 144 neuroids: SE ~ 0.006, 4 SE = 0.024)
    assert (true[~signal] == 0).all() and (true[signal] >= simulated.RELIABILITY_RANGE[0]).all()
    assert abs(r[~signal].mean()) < 4 * 0.071 / np.sqrt((~signal).sum())
    truth = dataset.ground_truth
    assert truth["generators"]["late"] == {
        "model": "torchvision/alexnet:random",
        "layer": "features.11",
    }
    assert truth["true_reliability"][str(responses["neuroid_id"].values[0])] == pytest.approx(
        true[0]
    )


def test_noise_neuroids_and_the_null_region(dataset):
    responses = dataset.responses()
    truth = dataset.ground_truth
    assert truth["null_regions"] == ["null"] and "null" not in truth["generators"]
    region = responses["region"].values.astype(str)
    signal = responses["signal"].values.astype(bool)
    for subject in simulated.SUBJECTS:
        mine = responses["subject"].values.astype(str) == subject
        assert (mine & (region == "null")).sum() == simulated.N_NULL
        assert not signal[mine & (region == "null")].any()
        for driven in simulated.GENERATORS:
            assert (mine & (region == driven) & signal).sum() == simulated.N_NEUROIDS
            assert (mine & (region == driven) & ~signal).sum() == simulated.N_NOISE
    noise_ids = set(responses["neuroid_id"].values[~signal].astype(str))
    assert noise_ids == set(truth["noise_neuroids"]) and len(noise_ids) == 2 * (12 * 2 + 48)
    # repeated trials with a neuroid-specific scale and no stimulus-driven part
    sd = responses.values[:, ~signal].std(0)
    assert sd.min() > 0.4 and sd.max() < 2.2 and np.ptp(sd) > 0.5


def test_generating_activations_equal_the_registered_models():
    """The simulation computes its generators with its own code (no registry, no other
    plugin); on a subset of the stimuli they equal the registered models' activations."""
    from brainrank.core.extraction import layer_activations

    _, images, _ = simulated.stimuli()
    subset = [images[i] for i in (0, 1, 80, 150, 199)]
    for region, generator in simulated.GENERATORS.items():
        layer = generator["layer"]
        mine = layer_activations(simulated.generator_model(region), subset, [layer])[layer]
        theirs = layer_activations(brainrank.load_model(generator["model"]), subset, [layer])
        assert mine.shape == theirs[layer].shape and mine.std() > 0
        np.testing.assert_allclose(mine, theirs[layer], rtol=1e-6, atol=1e-7)


def test_the_simulation_imports_no_other_plugin_and_no_registry():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(simulated))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    assert imported, "no imports found: the check would not test anything"
    bad = {name for name in imported if name.startswith("brainrank.plugins.models")
           or name.split(".")[:2] == ["brainrank", "load_model"]
           or "registry" in name or name == "brainrank"}  # fmt: skip
    assert not bad, bad


def test_ridge_recovers_each_regions_generating_model_and_layer(leaderboard, dataset):
    best = leaderboard[(leaderboard["selection"] == "max") & (leaderboard["metric"] == "srp-ridge")]
    assert set(dataset.ground_truth["generators"]) == {"early", "late"}
    for region, generator in dataset.ground_truth["generators"].items():
        for subject in simulated.SUBJECTS:
            rows = best[(best["region"] == region) & (best["subject"] == subject)]
            assert len(rows) == len(DEFAULT_MODELS), rows
            top = rows.sort_values("score", ascending=False).iloc[0]
            assert (top["model"], top["layer"]) == (generator["model"], generator["layer"]), rows
            # and within the generating model, the generating layer beats every other layer
            layers = leaderboard[(leaderboard["selection"] == "layer") & (leaderboard["metric"] == "srp-ridge")
                                 & (leaderboard["model"] == generator["model"])
                                 & (leaderboard["region"] == region) & (leaderboard["subject"] == subject)]  # fmt: skip
            assert len(layers) >= 2  # gabor: energy, pool; alexnet: 18 layers
            assert layers.sort_values("score").iloc[-1]["layer"] == generator["layer"]


def test_rsa_ranks_each_regions_generating_model_first(leaderboard, dataset):
    best = leaderboard[(leaderboard["selection"] == "max") & (leaderboard["metric"] == "rsa")]
    for region, generator in dataset.ground_truth["generators"].items():
        for subject in simulated.SUBJECTS:
            rows = best[(best["region"] == region) & (best["subject"] == subject)]
            assert len(rows) == len(DEFAULT_MODELS), rows
            assert rows.sort_values("score", ascending=False).iloc[0]["model"] == generator["model"]


def test_every_model_scored_on_every_layer(leaderboard):
    per_layer = leaderboard[leaderboard["selection"] == "layer"]
    assert set(per_layer["model"]) == set(DEFAULT_MODELS)
    assert set(per_layer["region"]) == {"early", "late", "null"}
    layers = per_layer.groupby("model")["layer"].nunique()
    assert layers["baseline/pixels"] == 1 and layers["baseline/gabor"] == 2
    assert layers["torchvision/alexnet:random"] > 15 and layers["timm/resnet18:random"] > 40
    depth = per_layer.groupby("model")["relative_depth"].agg(["min", "max"])
    assert (depth.loc[depth.index != "baseline/pixels", "min"] == 0).all()
    assert (depth.loc[depth.index != "baseline/pixels", "max"] == 1).all()


def test_estimated_ceilings_match_the_simulated_reliability(dataset):
    """Per (subject, region), the reliability behind the encoding ceiling recovers the true
    one on the signal neuroids (mean sqrt within 0.03); the RSA ceilings are proper
    fractions where there is signal."""
    from brainrank.core.responses import neuroid_groups

    responses = dataset.responses()
    true = responses["true_reliability"].values
    signal = responses["signal"].values.astype(bool)
    estimated = np.sqrt(np.clip(dataset.neuroid_reliability(), 0.0, None))
    encoding = dataset.ceiling("encoding")
    groups = neuroid_groups(responses)
    assert {key for key, _ in groups} == {(s, r) for s in simulated.SUBJECTS
                                          for r in ("early", "late", "null")}  # fmt: skip
    for key, index in groups:
        assert np.isfinite(encoding[key]), key
        chosen = index[signal[index]]
        if key[1] == "null":
            assert chosen.size == 0
            continue
        assert chosen.size == simulated.N_NEUROIDS
        assert estimated[chosen].mean() == pytest.approx(np.sqrt(true[chosen]).mean(), abs=0.03)
    rsa = dataset.ceiling("rsa")
    assert set(rsa) == set(encoding)
    assert all(0 < v < 1 for key, v in rsa.items() if key[1] != "null")


@pytest.mark.xfail(
    strict=True,
    reason="known limit (issue 10): the mean sqrt(reliability) of a group cannot be estimated "
    "without bias where true reliabilities are near 0 (a few hundredths look like 0); the "
    "F-distribution estimator (stats.mean_sqrt_reliability) cut the bias of a 48 + 12-noise "
    "group from +0.026 to +0.018 (+0.009..+0.025 per seed of 20 draws) and of an all-noise group "
    "from +0.14 to +0.05; on this one draw it is off by +0.008/+0.007 (early), "
    "+0.049/+0.004 (late), +0.022/+0.022 (null). Remove this marker when it holds.",
)
def test_encoding_ceiling_is_unbiased_where_some_neuroids_are_pure_noise(dataset):
    from brainrank.core.responses import neuroid_groups

    responses = dataset.responses()
    true = responses["true_reliability"].values
    encoding = dataset.ceiling("encoding")
    groups = neuroid_groups(responses)
    assert len(groups) == 6
    for key, index in groups:
        assert encoding[key] == pytest.approx(np.sqrt(true[index]).mean(), abs=0.03), key


def test_scores_carry_ceilings_and_per_neuroid_values(dataset, cache, leaderboard):
    from brainrank.core.features import score_features

    features = brainrank.core.features.compute_features(
        brainrank.load_model("baseline/gabor"), dataset.stimuli,
        brainrank.FeatureRequest(frozenset({4541}), rdm=True),
        brainrank.core.extraction.ExtractionConfig(),
        cache,
    )  # fmt: skip
    rows = score_features(brainrank.load_metric("srp-ridge"), features, dataset)
    best = [r for r in rows if r.selection == "max" and r.region == "early"]
    assert len(best) == len(simulated.SUBJECTS)
    assert all(r.ceiling and 0.5 < r.normalized < 1.0 for r in best)
    size = simulated.N_NEUROIDS + simulated.N_NOISE
    assert all(len(r.per_neuroid) == len(r.neuroid_ids) == size for r in best)
    assert all(r.value == pytest.approx(np.nanmean(r.per_neuroid), abs=1e-6) for r in best)


def test_stacking_gives_the_weight_to_the_generating_layer(dataset, cache, leaderboard):
    """Stack four feature spaces from three models; each region puts most of its weight on
    the layer that generated it."""
    from brainrank.core.extraction import ExtractionConfig
    from brainrank.core.features import compute_features
    from brainrank.core.scores import FeatureSet

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
    stacked = [r for r in rows if r.selection == "stacked" and r.region in generators]
    assert {(r.subject, r.region) for r in stacked} == {
        (s, region) for s in simulated.SUBJECTS for region in generators
    }
    for row in stacked:
        weights = row.extra["weights"]
        assert row.extra["top_layer"] == generators[row.region], weights
        assert weights[generators[row.region]] > 0.6, weights


def test_a_damaged_cache_entry_is_moved_aside_and_generated_again(monkeypatch, caplog):
    """Issue 20: a truncated `simulated-*.npz` made every later run on `simulated` fail with
    "BadZipFile" naming no file. Now it is moved aside (named in a warning) and rebuilt."""
    from brainrank.plugin import cache_dir

    calls = []
    trials = np.arange(12.0).reshape(4, 3)
    monkeypatch.setattr(simulated, "_shipped", lambda: None)  # generated, not shipped
    monkeypatch.setattr(simulated, "_compute_signals", lambda: calls.append(1))
    monkeypatch.setattr(simulated, "_simulate", lambda _: (trials, np.ones(3)))
    folder = cache_dir() / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    compute = simulated._simulation.__wrapped__  # past the in-process memo
    first, _ = compute()  # writes the entry
    [entry] = folder.glob("simulated-*.npz")
    assert calls == [1] and np.array_equal(first, trials)
    assert np.array_equal(compute()[0], trials) and calls == [1]  # read back, not rebuilt
    for damage in (entry.read_bytes()[:100], b"not a zip at all"):
        entry.write_bytes(damage)
        with caplog.at_level("WARNING", logger="brainrank.datasets"):
            again, _ = compute()
        assert np.array_equal(again, trials)
        assert str(entry) in caplog.text and "cannot be read" in caplog.text
        assert (folder / f"{entry.name}.damaged").exists()
        caplog.clear()
    assert len(calls) == 3
    with np.load(entry) as stored:  # the rebuilt entry is whole
        assert np.array_equal(stored["trials"], trials)


def test_the_null_region_is_a_calibration_region_left_out_of_the_headline_by_its_ceiling(dataset):
    """Issue 20, decision 3: the `null` region (pure noise) stays in the leaderboard for the
    calibration tests, and the ceiling floor, not its name, keeps it out of the headline:
    its encoding ceiling's lower 95% bound is below the floor, the signal regions' are far
    above it."""
    from brainrank.core.scores import CEILING_FLOOR, ceiling_usable

    ceilings = dataset.ceiling_with_interval("encoding")
    assert {region for _, region in ceilings} == {"early", "late", "null"}
    for (subject, region), (value, low, high) in ceilings.items():
        assert low is not None and low <= value <= high, (subject, region)
        if region == "null":
            assert not ceiling_usable(value, low), (subject, value, low)
            assert high < 2 * CEILING_FLOOR  # no signal: a few hundredths of bias, at most
        else:
            assert low > 3 * CEILING_FLOOR, (subject, region, low)


def test_the_default_ranking_reflects_the_signal_regions_only(leaderboard):
    """Issue 20: a noise ceiling of 0.022 divided `null`'s scores into the headline, pulling
    alexnet:random's simulated/srp-ridge from 0.58 (early and late) to 0.104. The column is
    now the mean over the regions with signal of the normalised held-out rows."""
    from brainrank.leaderboard.ranking import rank_models

    [sim] = rank_models(leaderboard, ci=None)
    assert set(sim.cells["region"]) == {"early", "late"}
    column = sim.table.set_index("model")["simulated/srp-ridge"]
    rows = leaderboard[
        (leaderboard["model"] == "torchvision/alexnet:random")
        & (leaderboard["metric"] == "srp-ridge")
        & (leaderboard["selection"] == "heldout")
        & leaderboard["region"].isin(["early", "late"])
    ]
    assert len(rows) == 4 and rows["normalized"].notna().all()
    by_region = rows.groupby("region")["normalized"].mean()
    assert column["torchvision/alexnet:random"] == pytest.approx(by_region.mean())
    assert column["torchvision/alexnet:random"] > column["baseline/gabor"]
    assert any("region null" in n and "not above 0.1" in n for n in sim.notes)


def test_the_shipped_simulation_is_the_one_generated_here(monkeypatch, tmp_path):
    """The shipped file (loaded by a fresh home instead of generating) holds what this
    module generates now: a change of the generators or settings without writing the file
    again (``python -m brainrank.plugins.datasets.simulated``) fails here. Compared to
    float32 rounding, as another CPU's convolutions may round differently."""
    import json

    with np.load(simulated.SHIPPED) as stored:
        key, trials, reliability = str(stored["key"]), stored["trials"], stored["reliability"]
        versions = json.loads(str(stored["versions"]))
    if versions != simulated._generator_versions():
        pytest.skip(f"the shipped simulation was made with {versions}")
    # same versions: a changed setting must come with the file written again
    assert key == simulated._shipped_key(), "settings changed: run simulated.write_shipped()"
    generated, true_reliability = simulated._simulate(simulated._compute_signals())
    assert trials.dtype == generated.dtype and trials.shape == generated.shape
    np.testing.assert_allclose(trials, generated, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(reliability, true_reliability)

    # a fresh home takes it without generating anything, and caches it
    monkeypatch.setenv("BRAINRANK_HOME", str(tmp_path))
    monkeypatch.setattr(simulated, "_compute_signals", lambda: pytest.fail("generated"))
    loaded, _ = simulated._simulation.__wrapped__()
    assert np.array_equal(loaded, trials)
    assert list((tmp_path).rglob("simulated-*.npz"))


def test_a_shipped_simulation_of_other_settings_is_ignored(monkeypatch):
    assert simulated._shipped() is not None or pytest.skip("shipped for other versions")
    monkeypatch.setattr(simulated, "SEED", simulated.SEED + 1)
    assert simulated._shipped() is None
    monkeypatch.setattr(simulated, "SHIPPED", simulated.SHIPPED.with_name("absent.npz"))
    assert simulated._shipped() is None
