"""Covariance spectra from the extraction (FeatureRequest(spectrum=True)): every layer's
eigenvalues equal numpy's on the activations computed by hand, with or without RDMs, in one
pass or many, and the feature cache keeps them."""

from __future__ import annotations

import numpy as np
import pytest
from _toy_models import batch_of, reference_activations, stimuli, toy_model, toy_module

from brainrank.core.cache import FeatureCache
from brainrank.core.dimensionality import participation_ratio
from brainrank.core.extraction import ExtractionConfig, extract_features
from brainrank.core.features import compute_features
from brainrank.core.scores import FeatureRequest


def numpy_spectrum(acts: np.ndarray, n: int) -> np.ndarray:
    values = np.linalg.eigvalsh(np.cov(acts.T)) if acts.shape[1] > 1 else np.var(acts, ddof=1)
    values = np.sort(np.clip(np.atleast_1d(values), 0, None))[::-1]
    return np.concatenate([values, np.zeros(max(0, n - values.size))])[:n]


def test_spectra_equal_numpy_on_the_activations():
    stim = stimuli(n=12, size=8)
    module = toy_module()
    expected = reference_activations(module, batch_of(stim))
    config = ExtractionConfig(batch_size=5)
    features = extract_features(toy_model(module), stim, FeatureRequest(spectrum=True), config)
    assert features.layer_names == list(expected) and features.info["spectrum"] is True
    for layer in features:
        assert layer.rdm is None  # not requested
        acts = expected[layer.name].flatten(1).numpy().astype(np.float64)
        reference = numpy_spectrum(acts, 12)
        assert layer.spectrum.shape == (12,)
        # the Gram's products run in float32 (as for the RDMs): ~1e-5 of the largest value
        np.testing.assert_allclose(layer.spectrum, reference, atol=1e-4 * reference[0])
        assert participation_ratio(layer.spectrum) == pytest.approx(
            participation_ratio(reference), rel=1e-4
        )


def test_spectra_are_the_same_in_many_passes():
    stim = stimuli(n=12, size=100)  # conv layers: 40,000 features x 12 stimuli = 1.9 MB
    request = FeatureRequest(rdm=True, spectrum=True)
    big = extract_features(toy_model(), stim, request, ExtractionConfig(memory_budget=2**30))
    small = extract_features(
        toy_model(), stim, request, ExtractionConfig(memory_budget=2**20, batch_size=4)
    )
    assert small.info["passes"] > len(small)  # some layers were split into column slices
    for a, b in zip(big, small, strict=True):
        assert a.rdm is not None
        np.testing.assert_allclose(a.spectrum, b.spectrum, rtol=1e-4, atol=1e-5 * a.spectrum[0])


def test_the_cache_keeps_spectra_and_extends_an_entry_without_them(tmp_path):
    stim = stimuli(n=6, size=6)
    cache = FeatureCache(tmp_path)
    model = toy_model()
    first = compute_features(model, stim, FeatureRequest(frozenset({8})), ExtractionConfig(),
                             cache)  # fmt: skip
    assert all(layer.spectrum is None for layer in first)
    assert not cache.covers(first.key, FeatureRequest(spectrum=True))
    both = compute_features(model, stim, FeatureRequest(spectrum=True), ExtractionConfig(), cache)
    assert cache.covers(both.key, FeatureRequest(frozenset({8}), spectrum=True))
    again = cache.load(both.key)
    assert again is not None and again.info["cache"] == "hit"
    for a, b in zip(both, again, strict=True):
        np.testing.assert_array_equal(a.spectrum, b.spectrum)
        np.testing.assert_array_equal(a.projections[8], b.projections[8])
    assert FeatureRequest(rdm=True) | FeatureRequest(spectrum=True) == FeatureRequest(
        rdm=True, spectrum=True
    )
