"""The metrics on data where the answer is known, against independent pipelines, and on the
real 92-image RDMs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

import brainrank
from brainrank.core.dataset import Dataset
from brainrank.core.errors import NotApplicableError
from brainrank.core.extraction import ExtractionConfig
from brainrank.core.features import compute_features
from brainrank.core.projection import jl_dimension
from brainrank.core.responses import RDMSet, make_responses
from brainrank.core.rsa import compare, rdm
from brainrank.core.scores import FeatureSet, LayerFeatures
from brainrank.core.specs import DatasetMetadata
from brainrank.core.stimuli import StimulusSet


def image_stimuli(ids):
    images = {s: np.zeros((4, 4, 3), np.uint8) for s in ids}
    return StimulusSet("test", ids, images.__getitem__)


def responses_dataset(trials: np.ndarray, regions: list[str], identifier="test/data") -> Dataset:
    """``trials`` (repetitions, stimuli, neuroids) -> a Dataset."""
    reps, n, v = trials.shape
    ids = [f"s{i:03d}" for i in range(n)]
    responses = make_responses(
        trials.reshape(reps * n, v),
        stimulus_id=ids * reps,
        repetition=np.repeat(np.arange(reps), n),
        neuroid_id=[f"n{i}" for i in range(v)],
        subject="subj",
        region=regions,
    )
    return Dataset(
        identifier, image_stimuli(ids), DatasetMetadata("none", "synthetic"), responses=responses
    )


def feature_set(spaces: dict[str, np.ndarray], k: int) -> FeatureSet:
    ids = [f"s{i:03d}" for i in range(next(iter(spaces.values())).shape[0])]
    layers = [
        LayerFeatures(
            name,
            i,
            i / max(1, len(spaces) - 1),
            x.shape[1],
            (x.shape[1],),
            projections={k: x.astype(np.float32)},
            rdm=rdm(x, dtype="float64"),
        )
        for i, (name, x) in enumerate(spaces.items())
    ]
    return FeatureSet("test/model", tuple(ids), layers)


def test_versa_with_noiseless_predictions_equals_classical_rsa_of_the_true_responses():
    rng = np.random.default_rng(0)
    n, v = 120, 30
    true = rng.standard_normal((n, 5)) @ rng.standard_normal((5, v))  # low-rank true responses
    trials = true[None] + 0.8 * rng.standard_normal((2, n, v))
    dataset = responses_dataset(trials, ["r"] * v)
    k = jl_dimension(n)
    features = feature_set({"truth": true}, k)
    versa = brainrank.load_metric("versa", alphas=[1e-3]).score(features, dataset)
    classical = brainrank.load_metric("rsa").score(features, dataset)
    layer_versa = next(s for s in versa if s.selection == "layer")
    layer_rsa = next(s for s in classical if s.selection == "layer")
    assert layer_versa.value == pytest.approx(layer_rsa.value, abs=0.01)
    # with noise-only features the encoding step has nothing to re-weight
    noise = feature_set({"noise": rng.standard_normal((n, 40))}, k)
    noisy = next(
        s for s in brainrank.load_metric("versa").score(noise, dataset) if s.selection == "layer"
    )
    assert noisy.value < layer_versa.value - 0.3


def test_versa_generalisation_chooses_on_training_stimuli():
    rng = np.random.default_rng(1)
    n, v = 160, 20
    good = rng.standard_normal((n, 8))
    true = good @ rng.standard_normal((8, v))
    trials = true[None] + rng.standard_normal((2, n, v))
    dataset = responses_dataset(trials, ["r"] * v)
    metric = brainrank.load_metric("versa:generalisation")
    assert metric.identifier == "versa:generalisation"
    k = metric.feature_request(dataset).projection_dims
    features = feature_set({"bad": rng.standard_normal((n, 8)), "good": good}, next(iter(k)))
    rows = metric.score(features, dataset)
    [general] = [r for r in rows if r.selection == "generalisation"]
    assert general.layer == "good"
    assert general.extra["n_train"] == 80 and general.extra["n_test"] == 80
    good_row = next(r for r in rows if r.layer == "good" and r.selection == "layer")
    assert general.value == good_row.value > 0.5


def test_stacking_splits_identical_spaces_and_finds_the_true_one():
    rng = np.random.default_rng(2)
    n, v = 200, 25
    good = rng.standard_normal((n, 6))
    true = good @ rng.standard_normal((6, v))
    trials = true[None] + 0.5 * rng.standard_normal((2, n, v))
    dataset = responses_dataset(trials, ["a"] * 10 + ["b"] * 15)
    metric = brainrank.load_metric("stacking")
    k = next(iter(metric.feature_request(dataset).projection_dims))
    features = feature_set(
        {"copy1": good, "copy2": good.copy(), "noise": rng.standard_normal((n, 6))}, k
    )
    rows = metric.score(features, dataset)
    stacked = [r for r in rows if r.selection == "stacked"]
    assert {r.region for r in stacked} == {"a", "b"}
    for row in stacked:
        weights = row.extra["weights"]
        assert weights["copy1"] == pytest.approx(weights["copy2"], abs=0.05)
        assert weights["copy1"] + weights["copy2"] > 0.9
        single = max(r.value for r in rows if r.selection == "layer" and r.region == row.region)
        assert row.value >= single - 0.02  # stacking never does much worse than the best layer
        assert len(row.per_neuroid) == row.n_neuroids


def test_srp_ridge_agrees_with_an_independent_scikit_learn_pipeline():
    """SRP-ridge on baseline/pixels vs SparseRandomProjection + RidgeCV (LOO) + Pearson,
    built from scikit-learn alone, on the simulated data: within 0.02 per region."""
    from sklearn.linear_model import RidgeCV
    from sklearn.random_projection import SparseRandomProjection

    from brainrank.core.extraction import layer_activations
    from brainrank.core.responses import average_repetitions, neuroid_groups

    dataset = brainrank.load_dataset("simulated")
    model = brainrank.load_model("baseline/pixels")
    images = [dataset.stimuli.image(s) for s in dataset.stimuli.stimulus_ids]
    pixels = layer_activations(model, images, ["pixels"])["pixels"]
    averaged = average_repetitions(dataset.responses())
    order = dataset.stimuli.index([str(s) for s in averaged["stimulus_id"].values])
    X, Y = pixels[order], np.asarray(averaged.values, dtype=np.float64)
    alphas = np.logspace(1, 7, 7)
    k = jl_dimension(X.shape[0])
    projected = SparseRandomProjection(
        k, density=1 / np.sqrt(X.shape[1]), random_state=0
    ).fit_transform(X)
    sk = RidgeCV(
        alphas=alphas,
        alpha_per_target=True,
        store_cv_results=True,
        scoring="neg_mean_squared_error",
    )
    sk.fit(projected, Y)
    index = [list(alphas).index(a) for a in sk.alpha_]
    loo = np.stack([sk.cv_results_[:, j, index[j]] for j in range(Y.shape[1])], axis=1)
    r_sk = np.array([np.corrcoef(loo[:, j], Y[:, j])[0, 1] for j in range(Y.shape[1])])
    expected = {key: r_sk[idx].mean() for key, idx in neuroid_groups(averaged)}

    # the LOO mode on raw features (the default is now nested 4-fold CV on z-scored features;
    # tests/plugins/metrics/test_encoding_protocols.py checks that one against scikit-learn)
    metric = brainrank.load_metric(
        "srp-ridge", alphas=alphas.tolist(), alpha_scoring="mse", cv="loo", standardize="none"
    )
    request = metric.feature_request(dataset)
    features = compute_features(model, dataset.stimuli, request, ExtractionConfig())
    rows = [r for r in metric.score(features, dataset) if r.selection == "layer"]
    # one row per layer and (subject, region), every group present: an empty result fails
    assert len(rows) == len(features) * len(expected) > 0
    assert {(r.subject, r.region) for r in rows} == set(expected)
    for row in rows:
        assert row.value == pytest.approx(expected[(row.subject, row.region)], abs=0.02)


def test_heldout_rows_choose_on_one_half_and_score_on_the_other():
    rng = np.random.default_rng(3)
    n, v = 100, 12
    good = rng.standard_normal((n, 5))
    trials = (good @ rng.standard_normal((5, v)))[None] + rng.standard_normal((2, n, v))
    dataset = responses_dataset(trials, ["r"] * v)
    features = feature_set({"good": good, "noise": rng.standard_normal((n, 5))}, jl_dimension(n))
    for name in ("srp-ridge", "rsa", "versa"):
        rows = brainrank.load_metric(name).score(features, dataset)
        [heldout] = [r for r in rows if r.selection == "heldout"]
        assert heldout.layer == "good" and heldout.extra["layers"] == ["good", "good"]
        good = next(r for r in rows if r.selection == "layer" and r.layer == "good")
        # srp-ridge (k-fold) chooses on `halves` (within-half CV) and scores with the full
        # k-fold r of each half (extra["scored_halves"]); the others score with `halves`
        scored = good.extra.get("scored_halves", good.halves)
        assert heldout.value == pytest.approx(np.mean(scored), abs=1e-12)


def test_presets_are_their_own_metrics():
    mouse = brainrank.load_metric("srp-ridge:mouse")
    assert mouse.identifier == "srp-ridge:mouse"
    assert mouse.parameters["n_components"] == 4096 and mouse.parameters["alphas"] == [1.0]
    nsd = brainrank.load_metric("srp-ridge:nsd")
    assert nsd.parameters["alphas"] == [1e5] and nsd.config_hash != mouse.config_hash


def test_regression_metrics_refuse_rdm_only_datasets():
    ids = [f"s{i}" for i in range(5)]
    rdms = RDMSet(np.stack([rdm(np.random.default_rng(0).standard_normal((5, 3)))]), tuple(ids),
                  [{"subject": "s", "region": "IT"}])  # fmt: skip
    dataset = Dataset(
        "test/rdm-only", image_stimuli(ids), DatasetMetadata("x", "y", kind="rdms"), rdms=rdms
    )
    for name in ("srp-ridge", "versa", "stacking"):
        with pytest.raises(NotApplicableError, match="RDMs only"):
            brainrank.load_metric(name).check_applicable(dataset)
    brainrank.load_metric("rsa").check_applicable(dataset)


def test_rsa_of_the_supplied_model_rdms_equals_rsatoolbox_on_the_92_images(shared_dir):
    """The 92-image data as an RDM-only dataset, the published model RDMs as 'layers':
    Kendall tau-a against human IT equals rsatoolbox's (e.g. animacy 0.340, HMAX 0.149)."""
    rsatoolbox = pytest.importorskip("rsatoolbox")
    folder = shared_dir / "data" / "kriegeskorte92"
    load = lambda name: scipy.io.loadmat(folder / name, squeeze_me=True, struct_as_record=False)  # noqa: E731
    models = load("92_modelRDMs.mat")["Models"]
    brain = load("92_brainRDMs.mat")["RDMs"]
    ids = tuple(f"img{i:02d}" for i in range(92))
    descriptors = [{"subject": f"s{i // 2 + 1}", "region": "hIT"} for i in range(8)]
    # one "subject" holding all 8 session RDMs: their mean is the human IT reference RDM
    rdms = RDMSet(
        np.stack([r.RDM for r in brain.T.flat]), ids, [{**d, "subject": "all"} for d in descriptors]
    )
    dataset = Dataset(
        "test/92",
        image_stimuli(list(ids)),
        DatasetMetadata("human", "fMRI", kind="rdms"),
        rdms=rdms,
    )
    layers = [
        LayerFeatures(m.name, i, 0.0, 0, (0,), rdm=np.asarray(m.RDM, dtype=float))
        for i, m in enumerate(models)
    ]
    features = FeatureSet("test/models92", ids, layers)
    rows = brainrank.load_metric("rsa", comparison="kendall_tau_a").score(features, dataset)
    ours = {r.layer: r.value for r in rows if r.selection == "layer"}
    reference = rsatoolbox.rdm.RDMs(np.mean(rdms.dissimilarities, axis=0)[None])
    for m in models:
        expected = rsatoolbox.rdm.compare(
            rsatoolbox.rdm.RDMs(np.asarray(m.RDM, float)[None]), reference, "tau-a"
        )[0, 0]
        assert ours[m.name] == pytest.approx(expected, abs=1e-10)
    assert ours["animacy"] == pytest.approx(0.340, abs=5e-4)
    assert ours["HMAX"] == pytest.approx(0.149, abs=5e-4)
    assert compare(models[0].RDM, reference.get_matrices()[0], "kendall_tau_a") == pytest.approx(
        ours["animacy"]
    )


def test_an_rsa_score_from_few_stimuli_carries_a_warning_that_every_view_shows(tmp_path, caplog):
    """Issue 20: an RSA score from 3 stimuli was stored without a warning."""
    import brainrank.testing as bt
    from brainrank.core.features import score_features
    from brainrank.leaderboard import open_store, scores
    from brainrank.plugins.metrics.rsa import FEW_STIMULI, RSA

    metric = RSA()
    for n, warned in ((3, True), (FEW_STIMULI, False)):
        dataset = bt.example_dataset(n_stimuli=n, n_neuroids=4)
        features = bt.example_features(dataset, metric.feature_request(dataset))
        with caplog.at_level("WARNING"):
            rows = score_features(metric, features, dataset)
        flagged = [r for r in rows if "warning" in r.extra]
        assert bool(flagged) == warned and (len(flagged) == len(rows) or not warned)
        if warned:
            assert f"over {n} stimuli (3 pairs" in rows[0].extra["warning"]
            assert "over 3 stimuli" in caplog.text
            store = open_store(str(tmp_path / "few.db"))
            store.write_scores(run_id=None, model="m/a", dataset=dataset.identifier,
                               metric=metric, scores=rows)  # fmt: skip
            frame = scores(store)
            assert not frame.empty and frame["flag"].str.contains("warning: an RDM").all()
