"""``pls`` and ``ridge-cv`` (Brain-Score's protocol) against scikit-learn pipelines written
from Brain-Score's definition, their ceiling, their refusals and the reference PCA."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats
from sklearn.cross_decomposition import PLSRegression as SklearnPLS
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

import brainrank
from brainrank.core.dataset import Dataset
from brainrank.core.errors import NotApplicableError
from brainrank.core.projection import SparseRandomProjection
from brainrank.core.responses import RDMSet, average_repetitions, make_responses
from brainrank.core.scores import FeatureSet, LayerFeatures
from brainrank.core.specs import DatasetMetadata
from brainrank.core.stimuli import StimulusSet
from brainrank.plugins.metrics.brainscore import ALPHA_LIST, with_pca_reference

N, REPS = 120, 3
OBJECTS = ("car", "dog", "face", "chair")


def make_dataset(seed: int = 0, labels: bool = True, n: int = N, noise: float = 1.0):
    """Trial-level responses of 2 regions (14 and 9 neuroids) read out from 10 latent
    directions of a 300-feature layer; stimulus ids deliberately not in sorted order."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 300)) * 0.85 ** np.arange(300)
    signal = X[:, :10] @ rng.standard_normal((10, 23))
    ids = [f"img-{(7 * i) % n:03d}" for i in range(n)]  # a permutation of the sorted ids
    trials = signal[None] + noise * rng.standard_normal((REPS, n, 23))
    presentation = (
        {"object_name": np.tile(np.array(OBJECTS)[np.arange(n) % 4], REPS)} if labels else {}
    )
    responses = make_responses(
        trials.reshape(REPS * n, 23),
        stimulus_id=ids * REPS,
        repetition=np.repeat(np.arange(REPS), n),
        neuroid_id=[f"n{i:02d}" for i in range(23)],
        subject="monkey",
        region=["IT"] * 14 + ["V4"] * 9,
        presentation_coords=presentation,
    )
    images = {s: np.zeros((4, 4, 3), np.uint8) for s in ids}
    dataset = Dataset(
        "test/brainscore",
        StimulusSet("test", ids, images.__getitem__),
        DatasetMetadata("macaque", "synthetic"),
        responses=responses,
    )
    return dataset, X


def features_for(metric, dataset, X, ids=None, name="layer") -> FeatureSet:
    k = next(iter(metric.feature_request(dataset).projection_dims))
    ids = ids or list(dataset.stimuli.stimulus_ids)
    x = X if X.shape[1] <= k else SparseRandomProjection(X.shape[1], k, seed=0).transform(X)
    layer = LayerFeatures(
        name, 0, 0.0, X.shape[1], (X.shape[1],), projections={k: np.asarray(x, np.float32)}
    )
    return FeatureSet("test/model", tuple(ids), [layer])


def reference_pipeline(dataset, X, fit_predict, stratify=True):
    """Brain-Score's protocol written out with scikit-learn and scipy: stimuli sorted by id,
    StratifiedShuffleSplit(10, train_size=0.9, random_state=1) by object_name, one model per
    region, Pearson r per neuroid on the test stimuli, median over neuroids, mean over
    splits. Returns {region: (score, per-neuroid mean r)}."""
    averaged = average_repetitions(dataset.responses())
    ids = np.asarray(averaged["stimulus_id"].values).astype(str)
    order = np.argsort(ids)
    Y = np.asarray(averaged.values, dtype=np.float64)[order]
    position = {s: i for i, s in enumerate(dataset.stimuli.stimulus_ids)}
    Xs = X[[position[s] for s in ids[order]]].astype(np.float32).astype(np.float64)
    responses = dataset.responses()
    if stratify:
        label_of = dict(
            zip(responses["stimulus_id"].values, responses["object_name"].values, strict=True)
        )
        labels = np.array([label_of[s] for s in ids[order]])
        splitter = StratifiedShuffleSplit(n_splits=10, train_size=0.9, random_state=1).split(
            Xs, labels
        )
    else:
        splitter = ShuffleSplit(n_splits=10, train_size=0.9, random_state=1).split(Xs)
    regions = np.asarray(averaged["region"].values).astype(str)
    splits = list(splitter)
    out = {}
    for region in ("IT", "V4"):
        cols = np.flatnonzero(regions == region)
        per = []
        for train, test in splits:
            predicted = fit_predict(Xs[train], Y[train][:, cols], Xs[test])
            per.append(
                [scipy.stats.pearsonr(predicted[:, j], Y[test, c])[0] for j, c in enumerate(cols)]
            )
        per = np.asarray(per)
        out[region] = (float(np.mean(np.median(per, axis=1))), per.mean(axis=0))
    return out


def layer_rows(rows):
    return {r.region: r for r in rows if r.selection == "layer"}


def sklearn_pls(X_train, Y_train, X_test):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol 0 runs to max_iter: convergence, on purpose
        model = SklearnPLS(n_components=25, scale=False, tol=0.0, max_iter=200)
        return model.fit(X_train, Y_train).predict(X_test)


def test_pls_equals_brainscores_protocol_with_scikit_learn():
    dataset, X = make_dataset()
    metric = brainrank.load_metric("pls")
    rows = layer_rows(metric.score(features_for(metric, dataset, X), dataset))
    expected = reference_pipeline(dataset, X, sklearn_pls)
    assert set(rows) == {"IT", "V4"}
    for region, (score, per_neuroid) in expected.items():
        assert rows[region].value == pytest.approx(score, abs=1e-8)
        np.testing.assert_allclose(rows[region].per_neuroid, per_neuroid, atol=1e-6)
        assert rows[region].extra["stratified_by"] == "object_name"
        assert rows[region].extra["n_components"] == 25
    assert rows["IT"].value > 0.5  # the layer carries the signal


def test_ridge_cv_equals_scikit_learn_ridgecv_and_ridge():
    dataset, X = make_dataset(1)

    def ridgecv(X_train, Y_train, X_test):  # one alpha for the region: sklearn's default
        return RidgeCV(alphas=list(ALPHA_LIST)).fit(X_train, Y_train).predict(X_test)

    def ridge1(X_train, Y_train, X_test):  # Brain-Score's `ridge` metric
        return Ridge(alpha=1.0).fit(X_train, Y_train).predict(X_test)

    for parameters, fit_predict in (({}, ridgecv), ({"alphas": [1.0]}, ridge1)):
        metric = brainrank.load_metric("ridge-cv", **parameters)
        rows = layer_rows(metric.score(features_for(metric, dataset, X), dataset))
        for region, (score, per_neuroid) in reference_pipeline(dataset, X, fit_predict).items():
            assert rows[region].value == pytest.approx(score, abs=1e-8), parameters
            np.testing.assert_allclose(rows[region].per_neuroid, per_neuroid, atol=1e-6)


def test_without_object_labels_the_splits_are_unstratified():
    dataset, X = make_dataset(2, labels=False)
    metric = brainrank.load_metric("ridge-cv", alphas=[1.0])
    rows = layer_rows(metric.score(features_for(metric, dataset, X), dataset))
    expected = reference_pipeline(
        dataset, X, lambda a, b, c: Ridge(alpha=1.0).fit(a, b).predict(c), stratify=False
    )
    assert rows["IT"].extra["stratified_by"] is None
    assert rows["IT"].value == pytest.approx(expected["IT"][0], abs=1e-8)


def test_ceiling_is_brainscores_internal_consistency():
    """sqrt of: 10 halvings of the repetition values (ShuffleSplit(train_size=0.5, seed 1)),
    Pearson r per neuroid between the halves' means, Spearman-Brown, median over the
    region's neuroids, mean over halvings (written out here); Brain-Score's ceiled score
    r^2 / IC in extra."""
    dataset, X = make_dataset(3, noise=3.0)
    metric = brainrank.load_metric("pls")
    rows = layer_rows(metric.score(features_for(metric, dataset, X), dataset))
    responses = dataset.responses()
    values = np.asarray(responses.values, dtype=np.float64)
    stimulus = np.asarray(responses["stimulus_id"].values).astype(str)
    repetition = np.asarray(responses["repetition"].values)
    regions = np.asarray(responses["region"].values).astype(str)
    ids = np.unique(stimulus)
    per_split = []
    for a, b in ShuffleSplit(n_splits=10, train_size=0.5, random_state=1).split(np.arange(REPS)):
        halves = []
        for reps in (a, b):
            keep = np.isin(repetition, reps)
            halves.append(np.stack([values[keep & (stimulus == s)].mean(0) for s in ids]))
        r = np.array([scipy.stats.pearsonr(halves[0][:, j], halves[1][:, j])[0] for j in range(23)])
        per_split.append(2 * r / (1 + r))
    per_split = np.asarray(per_split)
    for region, row in rows.items():
        ic = float(np.mean(np.median(per_split[:, regions == region], axis=1)))
        assert row.extra["internal_consistency"] == pytest.approx(ic, abs=1e-12)
        assert row.ceiling == pytest.approx(math.sqrt(ic), abs=1e-12)
        assert row.extra["brainscore_ceiled"] == pytest.approx(row.value**2 / ic, rel=1e-12)
        assert row.normalized**2 == pytest.approx(row.extra["brainscore_ceiled"], rel=1e-12)


def test_bad_input_is_refused_before_any_work():
    dataset, _ = make_dataset(4, labels=False)
    with pytest.raises(NotApplicableError, match="no such label"):
        brainrank.load_metric("pls", stratify_by="object_name").check_applicable(dataset)
    small, _ = make_dataset(5, labels=False, n=20)
    with pytest.raises(NotApplicableError, match="at least 21 stimuli"):
        brainrank.load_metric("ridge-cv").check_applicable(small)
    rdms = RDMSet(
        np.zeros((1, 5, 5)), tuple(f"s{i}" for i in range(5)), [{"subject": "a", "region": "r"}]
    )
    images = {f"s{i}": np.zeros((2, 2, 3), np.uint8) for i in range(5)}
    only_rdms = Dataset("test/rdms", StimulusSet("t", list(images), images.__getitem__),
                        DatasetMetadata("none", "rdms", kind="rdms"), rdms=rdms)  # fmt: skip
    for name in ("pls", "ridge-cv", "cka"):
        with pytest.raises(NotApplicableError, match="RDMs only"):
            brainrank.load_metric(name).check_applicable(only_rdms)
    with pytest.raises(NotApplicableError, match="reference stimuli"):
        brainrank.load_metric("pls", pca_fit="reference").check_applicable(dataset)
    for bad in ({"pca": 0}, {"pca_fit": "imagenet"}, {"n_splits": 0}, {"train_size": 1.5}):
        with pytest.raises(brainrank.core.errors.InputError):
            brainrank.load_metric("pls", **bad)


def test_reference_pca_is_fitted_on_the_reference_stimuli_only():
    """``with_pca_reference`` + ``pca_fit="reference"``: the components of the reference
    images' features (scikit-learn PCA), applied to the dataset's, then PLS: as Brain-Score's
    LayerPCA with ImageNet images does."""
    dataset, X = make_dataset(6)
    rng = np.random.default_rng(7)
    ref_ids = [f"r{i:02d}" for i in range(40)]
    ref_images = {s: np.zeros((4, 4, 3), np.uint8) for s in ref_ids}
    X_ref = rng.standard_normal((40, 300)) * 0.85 ** np.arange(300)
    with_ref = with_pca_reference(dataset, StimulusSet("ref", ref_ids, ref_images.__getitem__))
    assert len(with_ref.stimuli) == N + 40 and with_ref.responses() is dataset.responses()
    metric = brainrank.load_metric("pls", pca=30, pca_fit="reference")
    metric.check_applicable(with_ref)
    fs = features_for(
        metric, with_ref, np.vstack([X, X_ref]), ids=list(with_ref.stimuli.stimulus_ids)
    )
    rows = layer_rows(metric.score(fs, with_ref))
    pca = PCA(n_components=30).fit(X_ref.astype(np.float32).astype(np.float64))
    expected = reference_pipeline(
        dataset, pca.transform(X.astype(np.float32).astype(np.float64)), sklearn_pls
    )
    for region, (score, _) in expected.items():
        assert rows[region].value == pytest.approx(score, abs=1e-8)
        assert rows[region].extra["n_features"] == 30
    # the same from the exact Gram matrix of the stimuli and the reference images together
    both = np.vstack([X, X_ref]).astype(np.float32).astype(np.float64)
    both -= both.mean(0)
    exact = brainrank.load_metric("pls", pca=30, pca_fit="reference", features="exact")
    assert exact.feature_request(with_ref).gram
    layer = LayerFeatures("layer", 0, 0.0, 300, (300,), gram=both @ both.T)
    exact_rows = layer_rows(
        exact.score(FeatureSet("m", with_ref.stimuli.stimulus_ids, [layer]), with_ref)
    )
    for region, (score, _) in expected.items():
        assert exact_rows[region].value == pytest.approx(score, abs=1e-8)


def test_a_folder_of_reference_images_becomes_reference_stimuli(tmp_path):
    from PIL import Image

    dataset, _ = make_dataset(12)
    rng = np.random.default_rng(13)
    for name in ("b.png", "a.png", "c.jpg"):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    with_ref = with_pca_reference(dataset, tmp_path)
    added = list(with_ref.stimuli.stimulus_ids[N:])
    assert added == ["pca-reference/a.png", "pca-reference/b.png", "pca-reference/c.jpg"]
    assert with_ref.stimuli.image(added[1]).shape == (8, 8, 3)
    assert with_ref.stimuli.metadata.loc[added, "pca_reference"].all()
    assert not with_ref.stimuli.metadata["pca_reference"].iloc[:N].any()
    assert with_ref.stimuli.content_hash() != dataset.stimuli.content_hash()
    with pytest.raises(brainrank.core.errors.InputError, match="at least 2 image files"):
        with_pca_reference(dataset, tmp_path / "missing")


def wide_layer(seed: int = 8):
    """The 300 signal features of :func:`make_dataset` among 19,700 more whose variances fall
    as 1 / rank (a layer's spectrum)."""
    dataset, X = make_dataset(seed)
    rng = np.random.default_rng(seed + 1)
    rest = rng.standard_normal((N, 19_700)) / np.sqrt(np.arange(301, 20_001))
    return dataset, np.hstack([X, rest])


def test_exact_features_equal_the_unprojected_layer_and_the_projection_is_close():
    """``features="exact"`` (principal components from the exact Gram matrix) scores what the
    unprojected features score (1e-8); the default projection to the JL dimension of the
    120 stimuli stays within 0.01 of it on this layer (docs/validation.md gives the figures
    on real layers, up to 0.03 for PLS)."""
    dataset, wide = wide_layer()
    centred = wide.astype(np.float32).astype(np.float64)
    centred -= centred.mean(0)
    for name in ("pls", "cka"):
        metric = brainrank.load_metric(name)
        exact_metric = brainrank.load_metric(name, features="exact")
        assert exact_metric.feature_request(dataset).gram
        k = next(iter(metric.feature_request(dataset).projection_dims))
        assert k < wide.shape[1]
        projected = layer_rows(metric.score(features_for(metric, dataset, wide), dataset))
        raw = LayerFeatures("l", 0, 0.0, wide.shape[1], (wide.shape[1],),
                            projections={k: wide.astype(np.float32)})  # fmt: skip
        unprojected = layer_rows(
            metric.score(FeatureSet("m", dataset.stimuli.stimulus_ids, [raw]), dataset)
        )
        exact_layer = LayerFeatures(
            "l", 0, 0.0, wide.shape[1], (wide.shape[1],), gram=centred @ centred.T
        )
        exact = layer_rows(
            exact_metric.score(
                FeatureSet("m", dataset.stimuli.stimulus_ids, [exact_layer]), dataset
            )
        )
        for region in ("IT", "V4"):
            assert exact[region].value == pytest.approx(unprojected[region].value, abs=1e-8)
            assert abs(projected[region].value - unprojected[region].value) < 0.01


@pytest.mark.parametrize("name", ["pls", "ridge-cv"])
def test_pure_noise_scores_zero(name):
    """Calibration on small data (tests/calibration covers the full grid, marked slow): 23
    neuroids and features independent of them (noise), 120 stimuli; the tolerance is 4 standard errors of a mean over 10
    splits of a median over v neuroids of r over 12 test stimuli:
    4 * sqrt(pi / 2) / sqrt(10 * 11 * v), pooled over the regions' neuroids (0.08)."""
    dataset, _ = make_dataset(10, noise=1.0)
    rng = np.random.default_rng(11)
    noise = rng.standard_normal((N, 40)) * 0.9 ** np.arange(40)
    metric = brainrank.load_metric(name)
    rows = layer_rows(metric.score(features_for(metric, dataset, noise), dataset))
    v = sum(r.n_neuroids for r in rows.values())
    value = sum(r.value * r.n_neuroids for r in rows.values()) / v
    n_test = N - int(0.9 * N)
    tolerance = 4 * math.sqrt(math.pi / 2) / math.sqrt(10 * (n_test - 1) * v)
    assert abs(value) <= tolerance, (value, tolerance)
    assert all(r.extra["n_test"] == n_test for r in rows.values())


def test_run_on_the_majajhong2015_format_stores_scores_with_ceilings(tmp_path):
    """``brainrank run --metrics pls,ridge-cv,cka`` on brainio's real file format (80 public
    images of 4 objects, IT and V4): every metric stores per-layer, max and heldout rows, with
    the internal-consistency ceiling, stratified by object_name."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "datasets"))
    from dataset_fixtures import make_majajhong

    from brainrank.core.registry import Registry
    from brainrank.grid import run_grid
    from brainrank.leaderboard import open_store, scores
    from brainrank.plugins.datasets import majajhong2015
    from brainrank.plugins.metrics import brainscore, cka
    from brainrank.plugins.models import baselines

    make_majajhong(tmp_path / "data" / "majajhong2015", per_variation=40)
    registry = Registry(plugins=[baselines, majajhong2015, brainscore, cka], entry_points=False)
    store = open_store(str(tmp_path / "lb.db"))
    summary = run_grid(registry=registry, store=store, models=["baseline/pixels"],
                       datasets=["majajhong2015/public"], metrics=["pls", "ridge-cv", "cka"],
                       data_dir=tmp_path / "data", progress=False)  # fmt: skip
    assert not summary.failures, summary.failures
    frame = scores(store)
    assert set(frame["metric"]) == {"pls", "ridge-cv", "cka"}
    for metric, rows in frame.groupby("metric"):
        assert set(rows["region"]) == {"IT", "V4"}
        assert {"layer", "max", "heldout"} <= set(rows["selection"]), metric
        assert rows["ceiling"].notna().all() and np.isfinite(rows["score"]).all()
    dataset = registry.get("dataset", "majajhong2015/public").load(data_dir=tmp_path / "data")
    ic = dataset.ceiling("internal-consistency")
    pls = frame[(frame["metric"] == "pls") & (frame["selection"] == "layer")]
    for _, row in pls.iterrows():
        assert row["ceiling"] == pytest.approx(math.sqrt(ic[("pooled", row["region"])]))


def test_the_default_suite_keeps_its_four_metrics():
    """``brainrank run`` without --metrics: the seed papers' four metrics; pls, ridge-cv, cka
    and error-consistency are asked for by name (their cost: README, brainrank/suite.py)."""
    from brainrank import suite
    from brainrank.core.registry import get_registry

    registry = get_registry()
    assert {"pls", "ridge-cv", "cka", "cka:biased", "error-consistency"} <= set(
        registry.identifiers("metric")
    )
    default = suite.default_metrics(registry)
    assert {"rsa", "srp-ridge", "stacking", "versa"} <= set(default)
    assert not {"pls", "ridge-cv", "cka", "error-consistency"} & set(default)


@pytest.mark.slow
def test_run_on_simulated_stores_scores_that_find_the_generating_layer(tmp_path):
    """``brainrank run --metrics pls,ridge-cv,cka`` on ``simulated`` with ``baseline/gabor``:
    its ``pool`` layer generates the ``early`` region, which every metric scores far above
    ``null`` (pure noise: near 0)."""
    from brainrank.core.registry import get_registry
    from brainrank.grid import run_grid
    from brainrank.leaderboard import open_store, scores

    store = open_store(str(tmp_path / "lb.db"))
    summary = run_grid(registry=get_registry(), store=store, models=["baseline/gabor"],
                       datasets=["simulated"], metrics=["pls", "ridge-cv", "cka"], progress=False)  # fmt: skip
    assert not summary.failures, summary.failures
    frame = scores(store)
    layer = frame[(frame["selection"] == "layer") & (frame["layer"] == "pool")]
    for metric, rows in layer.groupby("metric"):
        by_region = rows.groupby("region")["score"].mean()
        assert by_region["early"] > 0.5 and abs(by_region["null"]) < 0.05, (metric, by_region)
        assert rows[rows["region"] != "null"]["ceiling"].notna().all()
