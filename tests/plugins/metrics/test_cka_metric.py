"""The ``cka`` metric: equal to linear CKA written out on the raw features, calibrated on
noise (the debiased estimator) and not (the biased one), and its split-half ceiling."""

from __future__ import annotations

import math

import numpy as np
import pytest

import brainrank
from brainrank.core.dataset import Dataset
from brainrank.core.responses import average_repetitions, make_responses
from brainrank.core.scores import FeatureSet, LayerFeatures
from brainrank.core.specs import DatasetMetadata
from brainrank.core.stimuli import StimulusSet

N, REPS = 100, 4


def dataset_and_signal(seed: int = 0, noise: float = 2.0, v: int = (30, 20)):
    """Two regions of neuroids driven by a 6-dimensional latent signal, 4 repetitions."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((N, 6))
    signal = latent @ rng.standard_normal((6, sum(v)))
    trials = signal[None] + noise * rng.standard_normal((REPS, N, sum(v)))
    ids = [f"s{i:03d}" for i in range(N)]
    responses = make_responses(
        trials.reshape(REPS * N, -1),
        stimulus_id=ids * REPS,
        repetition=np.repeat(np.arange(REPS), N),
        neuroid_id=[f"n{i}" for i in range(sum(v))],
        subject="subj",
        region=["a"] * v[0] + ["b"] * v[1],
    )
    images = {s: np.zeros((4, 4, 3), np.uint8) for s in ids}
    dataset = Dataset("test/cka", StimulusSet("t", ids, images.__getitem__),
                      DatasetMetadata("none", "synthetic"), responses=responses)  # fmt: skip
    return dataset, signal, latent


def features(metric, dataset, spaces: dict[str, np.ndarray]) -> FeatureSet:
    k = next(iter(metric.feature_request(dataset).projection_dims))
    layers = [
        LayerFeatures(
            name,
            i,
            i / max(1, len(spaces) - 1),
            x.shape[1],
            (x.shape[1],),
            projections={k: x.astype(np.float32)},
        )
        for i, (name, x) in enumerate(spaces.items())
    ]
    return FeatureSet("test/model", dataset.stimuli.stimulus_ids, layers)


def plain_cka(X: np.ndarray, Y: np.ndarray, debiased: bool) -> float:
    """Linear CKA with the HSIC estimators written out (explicit centring matrix H for the
    biased one; Song et al.'s formula for the debiased one)."""
    n = X.shape[0]
    K, L = X @ X.T, Y @ Y.T

    def hsic(K, L):
        if not debiased:
            H = np.eye(n) - 1.0 / n
            return np.trace(K @ H @ L @ H) / (n - 1) ** 2
        K, L = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
        one = np.ones(n)
        return (
            np.trace(K @ L)
            + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ K @ L @ one
        ) / (n * (n - 3))

    return hsic(K, L) / math.sqrt(hsic(K, K) * hsic(L, L))


@pytest.mark.parametrize("estimator", ["debiased", "biased"])
def test_cka_equals_the_formula_on_the_raw_features(estimator):
    dataset, _, latent = dataset_and_signal()
    rng = np.random.default_rng(1)
    X = np.hstack([latent, rng.standard_normal((N, 50))]).astype(np.float32).astype(np.float64)
    metric = brainrank.load_metric("cka" if estimator == "debiased" else "cka:biased")
    assert metric.calibrated is (estimator == "debiased")
    rows = metric.score(features(metric, dataset, {"layer": X}), dataset)
    averaged = average_repetitions(dataset.responses())
    Y = np.asarray(averaged.values, dtype=np.float64)
    regions = np.asarray(averaged["region"].values)
    layer = {r.region: r for r in rows if r.selection == "layer"}
    for region in ("a", "b"):
        expected = plain_cka(X, Y[:, regions == region], estimator == "debiased")
        # the metric averages the trials into float32 responses (as every encoding metric)
        assert layer[region].value == pytest.approx(expected, abs=1e-8)
        assert layer[region].extra["calibrated"] is (estimator == "debiased")
    assert {r.selection for r in rows} == {"layer", "heldout"}


def test_noise_scores_zero_debiased_and_not_biased():
    """Features unrelated to the responses: debiased CKA is 0 within 4 standard errors
    (sqrt(2) / (n - 1) per region, 2 regions, 3 layers: tolerance 0.040 per region value),
    biased CKA is not (it measures dimensionality): its value is far above that."""
    dataset, _, _ = dataset_and_signal(2)
    rng = np.random.default_rng(3)
    spaces = {
        "white": rng.standard_normal((N, 400)),
        "powerlaw": rng.standard_normal((N, 400)) / np.arange(1, 401),
        "lowrank": rng.standard_normal((N, 3)) @ rng.standard_normal((3, 400)),
    }
    tolerance = 4 * math.sqrt(2) / (N - 1)
    for name, calibrated in (("cka", True), ("cka:biased", False)):
        metric = brainrank.load_metric(name)
        rows = [
            r
            for r in metric.score(features(metric, dataset, spaces), dataset)
            if r.selection == "layer"
        ]
        values = np.array([r.value for r in rows])
        assert values.size == 6
        if calibrated:
            assert np.all(np.abs(values) <= tolerance), values
        else:
            assert values[:2].mean() > 3 * tolerance  # the white-noise layer, both regions


def test_the_noise_free_signal_reaches_the_ceiling():
    """A layer that is the responses' noise-free signal scores its region's ceiling (within
    0.03 on one draw); a layer of noise scores far below."""
    dataset, signal, _ = dataset_and_signal(4, noise=3.0)
    rng = np.random.default_rng(5)
    metric = brainrank.load_metric("cka")
    spaces = {
        "signal_a": signal[:, :30],
        "signal_b": signal[:, 30:],
        "noise": rng.standard_normal((N, 40)),
    }
    rows = {
        (r.layer, r.region): r
        for r in metric.score(features(metric, dataset, spaces), dataset)
        if r.selection == "layer"
    }
    for layer, region in (("signal_a", "a"), ("signal_b", "b")):
        row = rows[(layer, region)]
        assert 0.3 < row.ceiling < 1.0
        assert row.value == pytest.approx(row.ceiling, abs=0.03)
        assert rows[("noise", region)].value < 0.1
    assert brainrank.load_metric("cka:biased").ceilings(dataset, [], None) == {}
