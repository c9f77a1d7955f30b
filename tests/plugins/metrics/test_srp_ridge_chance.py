"""The chance levels of the leave-one-out presets reuse each layer's factorisation across the
relabelled datasets (Metric.score_with_permutations, issue 19 item 4): the fast path must
give what scoring every relabelled dataset on its own gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import brainrank.testing as bt
from brainrank.core import ridge as ridge_module
from brainrank.core.chance import attach_chance_levels, permuted_datasets
from brainrank.core.errors import InputError
from brainrank.core.features import score_features
from brainrank.core.metric import Metric
from brainrank.core.ridge import Decomposition, RidgeCV
from brainrank.core.scores import FeatureRequest
from brainrank.plugins.metrics.srp_ridge import PRESETS, SRPRidge


def _nsd(dtype: str = "float64") -> SRPRidge:
    metric = SRPRidge(**{**PRESETS["srp-ridge:nsd"], "n_components": 200, "alphas": [30.0]})
    metric.ridge_dtype = dtype
    return metric


@pytest.fixture
def problem():
    dataset = bt.example_dataset(n_stimuli=60, n_neuroids=6, n_repetitions=2)
    features = bt.example_features(dataset, FeatureRequest(frozenset({200})), n_layers=4)
    # widths 40 and 20 (< 60 stimuli: thin SVD), 300 -> 200 (Gram), and one constant layer
    layers = list(features)
    layers[3].projections[200] = np.ones_like(layers[3].projections[200])
    return dataset, features


@pytest.mark.parametrize("k", [25, 90])
def test_a_permuted_decomposition_is_the_decomposition_of_the_permuted_rows(k):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, k))
    Y = X[:, :3] @ rng.standard_normal((3, 7)) + rng.standard_normal((50, 7))
    order = rng.permutation(50)
    ridge = RidgeCV([0.1, 10.0, 1e3], dtype="float64")
    base = Decomposition.of(X)
    fast = ridge.fit(X[order], Y, decomposition=base.permuted(order)).result_
    plain = RidgeCV([0.1, 10.0, 1e3], dtype="float64").fit(X[order], Y).result_
    np.testing.assert_allclose(fast.predictions, plain.predictions, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fast.scores, plain.scores, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(fast.alpha_index, plain.alpha_index)
    # not the unpermuted fit: the permutation matters
    unpermuted = RidgeCV([0.1, 10.0, 1e3], dtype="float64").fit(X, Y).result_
    assert np.abs(unpermuted.scores - plain.scores).max() > 0.05
    with pytest.raises(InputError, match="permutation"):
        base.permuted(np.zeros(50, dtype=int))


@pytest.mark.parametrize("k", [10, 30, 90])
@pytest.mark.parametrize("scoring", ["mse", "pearson"])
@pytest.mark.parametrize("per_target", [True, False])
def test_relabelled_fits_are_the_fits_of_the_permuted_rows(k, scoring, per_target):
    """k = 10: the basis spans too little for the n x n operators (the thin products are
    used); 30: an incomplete basis with operators; 90 > n: the Gram matrix, complete."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, k)) + 3.0
    Y = X[:, :3] @ rng.standard_normal((3, 9)) + rng.standard_normal((50, 9)) + 5.0
    Y[:, 4] = 1.5  # a constant target: NaN in both
    orders = [rng.permutation(50) for _ in range(3)]
    options = {"dtype": "float64", "scoring": scoring, "alpha_per_target": per_target}
    ridge = RidgeCV([0.1, 10.0, 1e3], **options)
    with pytest.warns(RuntimeWarning, match="constant"):
        fast = ridge.fit_relabelled(X, Y, orders)
    assert (ridge.residual_operators(Decomposition.of(X)) is None) == (k == 10)
    for order, got in zip(orders, fast, strict=True):
        with pytest.warns(RuntimeWarning, match="constant"):
            want = RidgeCV([0.1, 10.0, 1e3], **options).fit(X[order], Y).result_
        np.testing.assert_allclose(got.predictions, want.predictions, rtol=0, atol=1e-10)
        np.testing.assert_allclose(got.scores, want.scores, rtol=0, atol=1e-10)
        np.testing.assert_allclose(got.cv_scores, want.cv_scores, rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(got.alpha_index, want.alpha_index)
        assert np.isnan(got.scores[4]) and np.isfinite(np.delete(got.scores, 4)).all()
    assert np.abs(fast[0].scores - fast[1].scores)[np.arange(9) != 4].max() > 0.01
    with pytest.raises(InputError, match="permutation"):
        ridge.fit_relabelled(X, Y, [np.arange(49)])


def _compare(fast, plain, atol):
    assert len(fast) == len(plain) == 6
    for a_rows, b_rows in zip(fast, plain, strict=True):
        assert [(r.subject, r.region, r.layer, r.selection) for r in a_rows] == [
            (r.subject, r.region, r.layer, r.selection) for r in b_rows
        ]
        for a, b in zip(a_rows, b_rows, strict=True):
            assert (np.isnan(a.value) and np.isnan(b.value)) or abs(a.value - b.value) <= atol
            if a.per_neuroid is not None:
                np.testing.assert_allclose(a.per_neuroid, b.per_neuroid, rtol=0, atol=atol)
            if a.halves is not None:
                np.testing.assert_allclose(a.halves, b.halves, rtol=0, atol=atol)


def test_the_fast_path_equals_scoring_each_relabelling(problem, monkeypatch):
    dataset, features = problem
    datasets = [dataset, *permuted_datasets(dataset)]
    metric = _nsd("float64")
    plain = Metric.score_with_permutations(metric, features, datasets)  # the default
    calls = []
    original = ridge_module.Decomposition.of.__func__

    def counting(cls, *args, **kwargs):
        calls.append(1)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(ridge_module.Decomposition, "of", classmethod(counting))
    fast = metric.score_with_permutations(features, datasets)
    assert len(calls) == 3  # one factorisation per non-constant layer, not per relabelling
    _compare(fast, plain, 1e-10)
    # the relabellings give different scores (the comparison above is not of equal copies)
    firsts = [rows[0].value for rows in fast]
    assert np.ptp(firsts) > 1e-3
    # the layer that is constant scores NaN on every relabelling
    assert all(np.isnan(r.value) for rows in fast for r in rows if r.layer == "layer3")


def test_the_fast_path_in_float32_agrees_within_float32_rounding(problem):
    dataset, features = problem
    datasets = [dataset, *permuted_datasets(dataset)]
    metric = _nsd("float32")
    plain = Metric.score_with_permutations(metric, features, datasets)
    fast = metric.score_with_permutations(features, datasets)
    _compare(fast, plain, 1e-5)
    # the real dataset's scores (what is stored) are the plain path's exactly
    real = [r.value for r in metric.score(features, dataset)]
    assert np.array_equal([r.value for r in fast[0]], real, equal_nan=True)


def test_chance_levels_of_the_nsd_preset_come_from_the_fast_path(problem):
    dataset, features = problem
    metric = _nsd("float64")
    stored = score_features(metric, features, dataset)
    assert any(r.chance is not None for r in stored)
    rows = [dataclasses.replace(r, chance=None, chance_sd=None) for r in stored]
    plain = attach_chance_levels(rows, lambda d: metric.score(features, d), dataset)
    real = metric.score(features, dataset)
    values = [r.value for r in real]
    assert np.array_equal([r.value for r in stored[: len(real)]], values, equal_nan=True)
    for a, b in zip(stored, plain, strict=True):
        if b.chance is None:
            assert a.chance is None
            continue
        assert a.chance == pytest.approx(b.chance, abs=1e-10)
        assert a.chance_sd == pytest.approx(b.chance_sd, abs=1e-10)


def test_folds_and_single_datasets_use_the_default(problem):
    dataset, features = problem
    metric = SRPRidge(n_components=200, alphas=[1.0, 100.0], cv=4)
    datasets = permuted_datasets(dataset, 2)
    fast = metric.score_with_permutations(features, datasets)
    plain = [metric.score(features, d) for d in datasets]
    for a, b in zip(fast, plain, strict=True):
        np.testing.assert_array_equal([r.value for r in a], [r.value for r in b])
