"""The extraction (brainrank/core/extraction/capture.py): exact projections and RDMs
whatever the memory budget, in passes or streamed in chunks of images, and seeded."""

from __future__ import annotations

import numpy as np
import pytest
from _toy_models import (
    batch_of,
    reference_activations,
    stimuli,
    toy_model,
    toy_module,
)

from brainrank.core.extraction import (
    ExtractionConfig,
    extract_features,
)
from brainrank.core.projection import SparseRandomProjection
from brainrank.core.rsa import rdm
from brainrank.core.scores import FeatureRequest


def test_features_are_exact_projections_and_rdms():
    stim = stimuli(n=12, size=24)  # conv layers: 4 x 24 x 24 = 2304 features
    module = toy_module()
    expected = reference_activations(module, batch_of(stim))
    dims = (200, 500, 3000)  # 3000 keeps the conv layers raw; 200 is nested in 500's product
    config = ExtractionConfig(batch_size=5, projection_seed=3)
    features = extract_features(
        toy_model(module), stim, FeatureRequest(frozenset(dims), rdm=True), config
    )
    assert features.layer_names == list(expected)
    assert features.info["passes"] == 1
    depths = [layer.relative_depth for layer in features]
    assert depths[0] == 0.0 and depths[-1] == 1.0 and np.all(np.diff(depths) > 0)
    for layer in features:
        acts = expected[layer.name].flatten(1).numpy().astype(np.float64)
        assert layer.n_features == acts.shape[1]
        np.testing.assert_allclose(layer.rdm, rdm(acts, dtype="float64"), atol=2e-5)
        assert sorted(layer.projections) == sorted(dims)
        for k in dims:
            projected = layer.projections[k]
            if acts.shape[1] > k:  # each size against its own matrix, drawn directly
                reference = acts @ SparseRandomProjection(acts.shape[1], k, seed=3).dense()
                np.testing.assert_allclose(projected, reference, rtol=1e-4, atol=1e-4)
            else:  # small layers are kept as they are
                np.testing.assert_allclose(projected, acts, rtol=1e-6, atol=1e-6)


def test_extraction_plans_by_need_with_the_same_features(monkeypatch):
    """Passes smaller than the budget (here: the smallest buffer lowered to 1 MiB) give the
    same RDMs and projections as one pass."""
    from brainrank.core.extraction import planning

    stim = stimuli(n=12, size=100)  # conv layers: 40,000 features x 12 stimuli = 1.9 MB
    request = FeatureRequest(frozenset({300}), rdm=True)
    config = ExtractionConfig(memory_budget=2**30, batch_size=4)
    one = extract_features(toy_model(), stim, request, config)
    monkeypatch.setattr(planning, "SMALLEST_PASS_BYTES", 2**20)
    several = extract_features(toy_model(), stim, request, config)
    assert one.info["passes"] == 1 < several.info["passes"]
    for a, b in zip(one, several, strict=True):
        np.testing.assert_allclose(a.rdm, b.rdm, atol=1e-6)
        np.testing.assert_allclose(a.projections[300], b.projections[300], rtol=1e-5, atol=1e-5)


def test_tiny_budget_gives_the_same_features_in_many_passes():
    stim = stimuli(n=12, size=100)  # conv layers: 40,000 features x 12 stimuli = 1.9 MB
    request = FeatureRequest(frozenset({300}), rdm=True)
    big = extract_features(toy_model(), stim, request, ExtractionConfig(memory_budget=2**30))
    small = extract_features(
        toy_model(), stim, request, ExtractionConfig(memory_budget=2**20, batch_size=4)
    )
    assert big.info["passes"] == 1
    assert small.info["passes"] > len(small)  # some layers were split into column slices
    for a, b in zip(big, small, strict=True):
        np.testing.assert_allclose(a.rdm, b.rdm, atol=1e-6)
        np.testing.assert_allclose(a.projections[300], b.projections[300], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch_size", [4, 5])  # chunks of 8 or 5 images, the last one short
def test_without_rdms_images_are_projected_in_chunks_with_the_same_features(batch_size):
    """No RDM asked for: one forward pass, every layer held for a chunk of images only (as
    many as the budget allows); the projections equal the hand-computed ones and the
    whole-set extraction's, and layers kept raw equal their activations."""
    stim = stimuli(n=13, size=100)  # conv layers: 40,000 features; 1 MiB holds ~1.6 images
    module = toy_module()
    expected = reference_activations(module, batch_of(stim))
    k, nested = 300, 120
    request = FeatureRequest(frozenset({k, nested}), rdm=False)
    whole = extract_features(toy_model(module), stim, request, ExtractionConfig(projection_seed=2))
    passes: list[int] = []
    chunked = extract_features(
        toy_model(module), stim, request,
        ExtractionConfig(memory_budget=2**20, batch_size=batch_size, projection_seed=2),
        progress=passes.append,
    )  # fmt: skip
    assert whole.info["passes"] == chunked.info["passes"] == 1
    assert whole.info["images_per_chunk"] == len(stim)
    assert chunked.info["images_per_chunk"] == batch_size  # 1 MiB: one batch at a time
    assert sum(passes) == len(stim)  # every image through the network once
    for layer, same in zip(chunked, whole, strict=True):
        assert layer.rdm is None and same.rdm is None
        acts = expected[layer.name].flatten(1).numpy().astype(np.float64)
        if acts.shape[1] > k:
            reference = acts @ SparseRandomProjection(acts.shape[1], k, seed=2).dense()
            np.testing.assert_allclose(layer.projections[k], reference, rtol=1e-4, atol=1e-4)
        else:
            np.testing.assert_allclose(layer.projections[k], acts, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(layer.projections[k], same.projections[k], rtol=1e-5, atol=1e-5)
        if acts.shape[1] > nested:
            reference = acts @ SparseRandomProjection(acts.shape[1], nested, seed=2).dense()
            np.testing.assert_allclose(layer.projections[nested], reference, rtol=1e-4, atol=1e-4)


def test_seeded_extraction_is_deterministic():
    stim = stimuli()
    request = FeatureRequest(frozenset({50}), rdm=True)
    a = extract_features(toy_model(), stim, request)
    b = extract_features(toy_model(), stim, request)
    assert len(a.layers) > 0 and a.layer_names == b.layer_names
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.projections[50], y.projections[50])
        np.testing.assert_array_equal(x.rdm, y.rdm)
