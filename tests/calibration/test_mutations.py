"""Mutation tests: break the pipeline on purpose and check that the suite notices.

Each test runs a check of the suite (a calibration bound on pure noise, an oracle against
scikit-learn or scipy, a ceiling against the known reliability) twice: on the intact
pipeline, where it must pass, and with one mutation applied by monkeypatching, where it
must FAIL. A mutation the checks cannot see would be a defect the suite cannot catch.

Mutations (issue 10): alpha chosen in-sample; rows of features and responses misaligned;
veRSA computed with the leaky leave-one-out predictor; RSA compared with the wrong
correlation; an SRP of 16 dimensions; a ceiling that ignores reliability.

The data are small, seeded and synthetic (200 stimuli, 4 repetitions, 2 subjects), so that
every test runs in seconds; the tolerances are the calibration tests' (see
``tests/calibration/test_metrics_calibration.py``: ``Z = 4`` standard errors).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.stats

import brainrank
from brainrank.core.dataset import Dataset
from brainrank.core.projection import SparseRandomProjection
from brainrank.core.responses import average_repetitions, make_responses, neuroid_groups
from brainrank.core.rsa import rdm
from brainrank.core.scores import FeatureSet, LayerFeatures
from brainrank.core.specs import DatasetMetadata
from brainrank.core.stimuli import StimulusSet
from brainrank.plugins.metrics import _encoding as enc

N = 200
REPS = 4
PER_SUBJECT = 72  # 144 neuroids in all, as the noise neuroids of `simulated`
Z = 4.0  # as tests/calibration/test_metrics_calibration.py
SUBJECTS = ("s1", "s2")


# --------------------------------------------------------------------------- data


def _dataset(trials: np.ndarray, reliability: np.ndarray | None = None) -> Dataset:
    """``trials`` (repetitions, stimuli, neuroids), neuroids split between two subjects."""
    reps, n, v = trials.shape
    ids = [f"s{i:03d}" for i in range(n)]
    images = {s: np.zeros((4, 4, 3), np.uint8) for s in ids}
    coords = {} if reliability is None else {"true_reliability": reliability}
    responses = make_responses(
        trials.reshape(reps * n, v),
        stimulus_id=ids * reps,
        repetition=np.repeat(np.arange(reps), n),
        neuroid_id=[f"n{i:03d}" for i in range(v)],
        subject=np.repeat(np.array(SUBJECTS, dtype=object), v // 2),
        region="r",
        neuroid_coords=coords,
    )
    return Dataset(
        "test/mutations",
        StimulusSet("test", ids, images.__getitem__),
        DatasetMetadata("none", "synthetic"),
        responses=responses,
    )


def noise_dataset(seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    sd = rng.uniform(0.5, 2.0, size=2 * PER_SUBJECT)
    return _dataset(rng.standard_normal((REPS, N, 2 * PER_SUBJECT)) * sd)


def latent(seed: int = 1, dims: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((N, dims))


def signal_dataset(Z_latent: np.ndarray, seed: int = 2) -> tuple[Dataset, np.ndarray]:
    """Neuroids = random read-outs of the latent, z-scored, plus trial noise of known
    reliability (uniform in [0.35, 0.9] for the 4-repetition average)."""
    rng = np.random.default_rng(seed)
    v = 2 * PER_SUBJECT
    signal = Z_latent @ rng.standard_normal((Z_latent.shape[1], v))
    signal = (signal - signal.mean(0)) / signal.std(0)
    reliability = rng.uniform(0.35, 0.9, size=v)
    noise_sd = np.sqrt(REPS * (1.0 / reliability - 1.0))
    trials = signal[None] + rng.standard_normal((REPS, N, v)) * noise_sd
    return _dataset(trials, reliability), reliability


def power_law_features(seed: int, p: int = 300) -> np.ndarray:
    """Features whose singular values fall as 1 / rank (as pixels and network layers do):
    different alphas then select different directions, which is what makes a choice of
    alpha on the scored responses optimistic (with isotropic Gaussian features the
    predictions at all alphas are almost proportional and the choice hardly matters)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((N, N)))[0]
    return (basis * np.arange(1, N + 1) ** -1.0) @ rng.standard_normal((N, p))


def features(spaces: dict[str, np.ndarray], dims) -> FeatureSet:
    """A FeatureSet whose layers hold, for every requested k, brainrank's sparse random
    projection of the space (the raw space when it has at most k columns), and exact RDMs."""
    layers = []
    for i, (name, x) in enumerate(spaces.items()):
        x = np.asarray(x, dtype=np.float32)
        projections = {
            k: x if x.shape[1] <= k else SparseRandomProjection(x.shape[1], k, seed=0).transform(x)
            for k in dims
        }
        layers.append(
            LayerFeatures(
                name,
                i,
                i / max(1, len(spaces) - 1),
                x.shape[1],
                (x.shape[1],),
                projections={k: np.asarray(p, dtype=np.float32) for k, p in projections.items()},
                rdm=rdm(x, dtype="float64"),
            )
        )
    return FeatureSet("test/model", tuple(f"s{i:03d}" for i in range(N)), layers)


def for_metric(metric, dataset, spaces) -> FeatureSet:
    return features(spaces, metric.feature_request(dataset).projection_dims or {N})


# --------------------------------------------------------------------------- checks


def layer_values(rows, layer: str) -> list:
    out = [r for r in rows if r.selection == "layer" and r.layer == layer]
    assert out, f"no rows for layer {layer!r}"
    return out


def check_encoding_null(rows, layer: str, n_eval: int = N) -> float:
    """The calibration check of an encoding metric: the neuroid-weighted mean r on pure
    noise is within Z standard errors of 0 (SE = 1 / sqrt((n_eval - 1) v))."""
    members = layer_values(rows, layer)
    v = sum(r.n_neuroids for r in members)
    value = float(np.average([r.value for r in members], weights=[r.n_neuroids for r in members]))
    tolerance = Z / math.sqrt((n_eval - 1) * v)
    assert abs(value) <= tolerance, f"{value:+.4f} on pure noise (tolerance {tolerance:.4f})"
    return value


def check_rdm_null(rows, layer: str, n_eval: int = N // 2) -> float:
    """The calibration check of an RDM metric: mean over groups within Z standard errors
    of 0 (SE = 1 / sqrt(n_pairs g))."""
    members = layer_values(rows, layer)
    value = float(np.mean([r.value for r in members]))
    tolerance = Z / math.sqrt(n_eval * (n_eval - 1) / 2 * len(members))
    assert abs(value) <= tolerance, f"{value:+.4f} on pure noise (tolerance {tolerance:.4f})"
    return value


def check_agrees(rows, layer: str, expected: dict, tolerance: float) -> None:
    members = layer_values(rows, layer)
    assert {(r.subject, r.region) for r in members} == set(expected)
    for r in members:
        assert r.value == pytest.approx(expected[(r.subject, r.region)], abs=tolerance), (
            r.subject,
            r.value,
            expected[(r.subject, r.region)],
        )


# --------------------------------------------------------------------------- mutations


def test_alpha_chosen_in_sample_fails_calibration(monkeypatch):
    """Mutation: each neuroid's alpha is the one whose held-out r is highest, i.e. chosen on
    the responses that are then scored (not on the training folds)."""
    from brainrank.core.ridge import RidgeKFoldResult
    from brainrank.plugins.metrics import srp_ridge

    dataset = noise_dataset()
    metric = brainrank.load_metric("srp-ridge")
    X = {"powerlaw": power_law_features(5)}
    fs = for_metric(metric, dataset, X)
    check_encoding_null(metric.score(fs, dataset), "powerlaw")  # intact: passes

    original = srp_ridge.ridge_kfold

    def in_sample(X, Y, folds, alphas=None, **options):
        results = [original(X, Y, folds, [a], **options) for a in alphas]
        scores = np.stack([r.scores for r in results])  # (alphas, v)
        best = np.nanargmax(np.nan_to_num(scores, nan=-np.inf), axis=0)
        cols = np.arange(scores.shape[1])

        def pick(name):  # (alphas, ..., v) -> (..., v) at each target's best alpha
            stacked = np.stack([getattr(r, name) for r in results])
            return np.moveaxis(stacked[best, ..., cols], 0, -1)

        assert isinstance(results[0], RidgeKFoldResult)
        return dataclasses.replace(
            results[0],
            fold_scores=pick("fold_scores"),
            scores=scores[best, cols],
            predictions=pick("predictions"),
            alphas=pick("alphas"),
        )

    monkeypatch.setattr(srp_ridge, "ridge_kfold", in_sample)
    with pytest.raises(AssertionError, match="on pure noise"):
        check_encoding_null(metric.score(fs, dataset), "powerlaw")


def _sklearn_loo_r(X: np.ndarray, dataset: Dataset, alpha: float) -> dict:
    """Oracle of ``srp-ridge:mouse`` on raw features: scikit-learn's ``scale`` then
    ``Ridge(alpha)`` leave-one-out predictions, Pearson r per neuroid, mean per group."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.preprocessing import scale

    averaged = average_repetitions(dataset.responses())
    Y = np.asarray(averaged.values, dtype=np.float64)
    order = [int(str(s)[1:]) for s in averaged["stimulus_id"].values]
    predicted = cross_val_predict(Ridge(alpha=alpha), scale(X[order]), Y, cv=LeaveOneOut())
    r = np.array([scipy.stats.pearsonr(predicted[:, j], Y[:, j])[0] for j in range(Y.shape[1])])
    return {key: float(r[index].mean()) for key, index in neuroid_groups(averaged)}


def test_misaligned_rows_fail_the_scikit_learn_oracle(monkeypatch):
    """Mutation: the responses' stimulus order is shuffled against the features."""
    Z_latent = latent()
    dataset, _ = signal_dataset(Z_latent)
    X = Z_latent @ np.random.default_rng(3).standard_normal((40, 60))
    metric = brainrank.load_metric("srp-ridge:mouse")
    fs = for_metric(metric, dataset, {"x": X})
    expected = _sklearn_loo_r(X, dataset, alpha=1.0)
    assert min(expected.values()) > 0.4  # the signal is there to be found
    check_agrees(metric.score(fs, dataset), "x", expected, 1e-4)  # intact: agrees

    original = enc.Targets.of

    def shuffled(dataset):
        targets = original(dataset)
        order = np.random.default_rng(0).permutation(len(targets.stimulus_ids))
        return dataclasses.replace(targets, stimulus_ids=[targets.stimulus_ids[i] for i in order])

    monkeypatch.setattr(enc.Targets, "of", staticmethod(shuffled))
    with pytest.raises(AssertionError):
        check_agrees(metric.score(fs, dataset), "x", expected, 1e-4)


def test_leaky_versa_predictor_fails_calibration(monkeypatch):
    """Mutation: veRSA's predictions are the leave-one-out predictions over all stimuli
    (the paper's predictor: a fully shrunk ridge predicts (sum(y) - y_i) / (n - 1))."""
    from brainrank.core.ridge import RidgeCV
    from brainrank.plugins.metrics.versa import VERSA

    dataset = noise_dataset()
    metric = brainrank.load_metric("versa", alphas=[1e5])
    X = {"gauss": np.random.default_rng(6).standard_normal((N, 300))}
    fs = for_metric(metric, dataset, X)
    check_rdm_null(metric.score(fs, dataset), "gauss")  # intact: passes

    def leaky(self, X, Y, folds):
        ridge = RidgeCV(self.parameters["alphas"], scoring=self.parameters["alpha_scoring"])
        return ridge.fit(X, Y).result_.predictions

    monkeypatch.setattr(VERSA, "heldout_predictions", leaky)
    with pytest.raises(AssertionError, match="on pure noise"):
        check_rdm_null(metric.score(fs, dataset), "gauss")


def _rsa_oracle(X: np.ndarray, dataset: Dataset) -> dict:
    """RDM = 1 - Pearson r between stimulus patterns (numpy), compared by scipy's Pearson r
    of the upper triangles."""
    averaged = average_repetitions(dataset.responses())
    Y = np.asarray(averaged.values, dtype=np.float64)
    order = [int(str(s)[1:]) for s in averaged["stimulus_id"].values]
    upper = np.triu_indices(N, k=1)
    model = (1 - np.corrcoef(X[order]))[upper]
    return {
        key: float(scipy.stats.pearsonr(model, (1 - np.corrcoef(Y[:, index]))[upper])[0])
        for key, index in neuroid_groups(averaged)
    }


@pytest.mark.parametrize("wrong", ["spearman", "cosine"])
def test_rsa_with_the_wrong_correlation_fails_the_scipy_oracle(monkeypatch, wrong):
    """Mutation: the RDMs are compared by Spearman's rho (where Pearson is claimed) or by a
    cosine similarity of the upper triangles (not a correlation)."""
    from brainrank.core import rsa as rsa_kernel
    from brainrank.plugins.metrics import rsa as rsa_metric

    Z_latent = latent()
    dataset, _ = signal_dataset(Z_latent)
    X = np.exp(Z_latent[:, :10] @ np.random.default_rng(4).standard_normal((10, 80)) / 3)
    metric = brainrank.load_metric("rsa")
    fs = for_metric(metric, dataset, {"x": X})
    expected = _rsa_oracle(X, dataset)
    check_agrees(metric.score(fs, dataset), "x", expected, 1e-6)  # intact: agrees

    original = rsa_kernel.compare

    def mutated(a, b, method="pearson"):
        if wrong == "spearman":
            return original(a, b, "spearman")
        a, b = np.asarray(a), np.asarray(b)
        upper = np.triu_indices(a.shape[-1], k=1)
        va, vb = a[..., upper[0], upper[1]], b[..., upper[0], upper[1]]
        return (va * vb).sum(-1) / np.sqrt((va * va).sum(-1) * (vb * vb).sum(-1))

    monkeypatch.setattr(rsa_metric, "compare", mutated)
    with pytest.raises(AssertionError):
        check_agrees(metric.score(fs, dataset), "x", expected, 1e-6)


def test_srp_of_16_dimensions_fails_the_projection_check(monkeypatch):
    """Check: the sparse random projection at the metric's dimension keeps the score of the
    unprojected features (within 0.03). Mutation: the projection has 16 dimensions."""
    Z_latent = latent(dims=40)
    dataset, _ = signal_dataset(Z_latent)
    rng = np.random.default_rng(7)
    X = Z_latent @ rng.standard_normal((40, 6000)) + 0.5 * rng.standard_normal((N, 6000))
    metric = brainrank.load_metric("srp-ridge")

    def score_of(fs):
        rows = layer_values(metric.score(fs, dataset), "x")
        return float(np.mean([r.value for r in rows]))

    dims = metric.feature_request(dataset).projection_dims
    (unprojected,) = features({"x": X}, [X.shape[1]]).layers
    unprojected.projections = {k: unprojected.projections[X.shape[1]] for k in dims}
    raw = score_of(FeatureSet("test/model", tuple(f"s{i:03d}" for i in range(N)), [unprojected]))
    assert raw > 0.4

    def check_projection_keeps_the_score() -> None:
        projected = score_of(for_metric(metric, dataset, {"x": X}))
        assert projected == pytest.approx(raw, abs=0.03), (projected, raw)

    check_projection_keeps_the_score()  # intact: k = JL dimension (4541 for 200 stimuli)
    monkeypatch.setattr(enc, "dimension", lambda parameters, n: 16)
    assert metric.feature_request(dataset).projection_dims == frozenset({16})
    with pytest.raises(AssertionError):
        check_projection_keeps_the_score()


def test_ceiling_that_ignores_reliability_fails_the_ceiling_check(monkeypatch):
    """Check: the encoding ceiling is the mean sqrt(true reliability) within 0.03 on data of
    known reliability. Mutation: every neuroid's reliability is taken to be 1."""
    dataset, reliability = signal_dataset(latent())

    def check_ceiling(ds) -> None:
        ceiling = ds.ceiling("encoding")
        groups = neuroid_groups(ds.responses())
        assert len(groups) == 2 and set(ceiling) == {key for key, _ in groups}
        for key, index in groups:
            truth = float(np.sqrt(reliability[index]).mean())
            assert ceiling[key] == pytest.approx(truth, abs=0.03), key

    check_ceiling(dataset)  # intact
    monkeypatch.setattr(
        Dataset, "neuroid_reliability", lambda self: np.ones(self.responses().shape[1])
    )
    fresh, _ = signal_dataset(latent())
    with pytest.raises(AssertionError):
        check_ceiling(fresh)


# --------------------------------------------------------------------------- issue 22 metrics


def check_split_null(rows, layer: str) -> float:
    """The calibration check of a metric with Brain-Score's protocol (a mean over splits of
    a median over v neuroids of r over n_test stimuli): within Z standard errors of 0, SE =
    sqrt(pi / 2) / sqrt(splits (n_test - 1) v)."""
    members = layer_values(rows, layer)
    v = sum(r.n_neuroids for r in members)
    value = float(np.average([r.value for r in members], weights=[r.n_neuroids for r in members]))
    splits, n_test = members[0].extra["splits"], members[0].extra["n_test"]
    tolerance = Z * math.sqrt(math.pi / 2) / math.sqrt(splits * (n_test - 1) * v)
    assert abs(value) <= tolerance, f"{value:+.4f} on pure noise (tolerance {tolerance:.4f})"
    return value


def test_pls_fitted_on_its_test_stimuli_fails_calibration(monkeypatch):
    """Mutation: each split's PLS is fitted on the training AND the test stimuli (the leak
    cross-validation exists to prevent)."""
    from brainrank.plugins.metrics.brainscore import PLS

    dataset = noise_dataset()
    metric = brainrank.load_metric("pls")
    fs = for_metric(metric, dataset, {"powerlaw": power_law_features(8)})
    check_split_null(metric.score(fs, dataset), "powerlaw")  # intact: passes

    original = PLS.fit_predict_splits

    def leaky(self, X, Y, trains, tests, groups):
        both = np.concatenate([trains, tests], axis=1)
        predicted, records = original(self, X, Y, both, tests, groups)
        return predicted, records

    monkeypatch.setattr(PLS, "fit_predict_splits", leaky)
    with pytest.raises(AssertionError, match="on pure noise"):
        check_split_null(metric.score(fs, dataset), "powerlaw")


def test_ridge_cv_with_other_splits_fails_the_scikit_learn_oracle(monkeypatch):
    """Check: ``ridge-cv(alphas=[1])`` equals scikit-learn's ``Ridge(alpha=1)`` on Brain-Score's
    splits (``ShuffleSplit(10, train_size=0.9, random_state=1)`` over the sorted stimulus
    ids, Pearson r per neuroid, median, mean) within 1e-8. Mutation: the splits are drawn
    with another seed (what a change of split code would do to every number)."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import ShuffleSplit

    from brainrank.plugins.metrics import brainscore

    Z_latent = latent()
    dataset, _ = signal_dataset(Z_latent)
    X = Z_latent @ np.random.default_rng(9).standard_normal((40, 60))
    metric = brainrank.load_metric("ridge-cv", alphas=[1.0])
    fs = for_metric(metric, dataset, {"x": X})
    averaged = average_repetitions(dataset.responses())
    Y = np.asarray(averaged.values, dtype=np.float64)  # s000...s199: sorted already
    Xs = X.astype(np.float32).astype(np.float64)
    expected = {}
    for key, index in neuroid_groups(averaged):
        medians = []
        for train, test in ShuffleSplit(10, train_size=0.9, random_state=1).split(Xs):
            predicted = Ridge(alpha=1.0).fit(Xs[train], Y[train][:, index]).predict(Xs[test])
            r = [scipy.stats.pearsonr(predicted[:, j], Y[test, c])[0] for j, c in enumerate(index)]
            medians.append(np.median(r))
        expected[key] = float(np.mean(medians))
    check_agrees(metric.score(fs, dataset), "x", expected, 1e-8)  # intact: agrees

    original = brainscore.cv.shuffle_splits
    monkeypatch.setattr(
        brainscore.cv,
        "shuffle_splits",
        lambda n, labels=None, **kw: original(n, labels, **{**kw, "seed": 0}),
    )
    with pytest.raises(AssertionError):
        check_agrees(metric.score(fs, dataset), "x", expected, 1e-8)


def test_cka_with_the_biased_hsic_fails_calibration(monkeypatch):
    """Mutation: ``cka`` uses the biased HSIC (what it computes as ``cka:biased``), whose
    expectation on independent representations is positive."""
    from brainrank.plugins.metrics import cka as cka_metric

    dataset = noise_dataset()
    metric = brainrank.load_metric("cka")
    fs = for_metric(metric, dataset, {"gauss": np.random.default_rng(10).standard_normal((N, 300))})
    # SE sqrt(2) / (n - 1) per group (tests/core/test_cka.py), the mean over 2 groups
    tolerance = Z * math.sqrt(2) / (N - 1) / math.sqrt(2)

    def check() -> float:
        value = float(np.mean([r.value for r in layer_values(metric.score(fs, dataset), "gauss")]))
        assert abs(value) <= tolerance, f"{value:+.4f} on pure noise (tolerance {tolerance:.4f})"
        return value

    check()  # intact: passes
    original = cka_metric.cka
    monkeypatch.setattr(
        cka_metric, "cka", lambda K, L, estimator="debiased": original(K, L, "biased")
    )
    with pytest.raises(AssertionError, match="on pure noise"):
        check()


def test_error_consistency_without_the_chance_correction_fails_calibration(monkeypatch):
    """Mutation: ``error-consistency`` reports the observed agreement of the correct/incorrect
    patterns instead of Cohen's kappa (no correction for the agreement two independent
    observers with those accuracies share). Check: random choices score 0 within 4 standard
    errors (tests/plugins/metrics/test_behaviour.py)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "plugins" / "metrics"))
    import test_behaviour as behaviour_tests

    from brainrank.plugins.metrics import behaviour

    F, centroids, labels, rng = behaviour_tests.world(3)
    dataset = behaviour_tests.observers(F, centroids, labels, rng, random_choices=True)
    metric = brainrank.load_metric("error-consistency")
    fs = behaviour_tests.features(metric, dataset, {"truth": F})

    def check() -> None:
        rows = behaviour_tests.by_layer(metric.score(fs, dataset), "truth")
        value = float(np.mean([r.value for r in rows]))
        tolerance = 4 * behaviour_tests.null_sd(rows)
        assert abs(value) <= tolerance, f"{value:+.4f} on pure noise (tolerance {tolerance:.4f})"

    check()  # intact: passes
    monkeypatch.setattr(
        behaviour, "error_consistency", lambda a, b: float(np.mean(a * b + (1 - a) * (1 - b)))
    )
    with pytest.raises(AssertionError, match="on pure noise"):
        check()
