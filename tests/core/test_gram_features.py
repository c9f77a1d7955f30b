"""Exact Gram matrices from extraction (``FeatureRequest(gram=True)``): equal to the
column-centred Gram matrix of the full activations whatever the memory budget, cached and
reloaded, and merged with other requests."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from brainrank.core.cache import FeatureCache
from brainrank.core.extraction import ExtractionConfig, extract_features, layer_activations
from brainrank.core.scores import FeatureRequest
from brainrank.core.specs import Model, ModelMetadata
from brainrank.core.stimuli import StimulusSet


def model() -> Model:
    torch.manual_seed(0)
    module = nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(3, 6, 3, padding=1),
            act=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(4),
            flat=nn.Flatten(),
            fc=nn.Linear(96, 5),
        )
    ).eval()

    def preprocess(image):
        return torch.from_numpy(np.asarray(image, np.float32)).permute(2, 0, 1) / 255.0

    return Model(
        "test/gram", module, preprocess, "unit", ModelMetadata(source="test", architecture="toy")
    )


def stimuli(n: int = 12) -> StimulusSet:
    rng = np.random.default_rng(0)
    images = {f"s{i:02d}": rng.integers(0, 256, (10, 10, 3), dtype=np.uint8) for i in range(n)}
    return StimulusSet("gram", list(images), images.__getitem__)


def centred_gram(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    a = a - a.mean(axis=0)
    return a @ a.T


def test_gram_equals_the_full_activations_whatever_the_budget(tmp_path, monkeypatch):
    from brainrank.core.extraction import capture, planning

    stim = stimuli()
    m = model()
    images = [stim.image(s) for s in stim.stimulus_ids]
    names = ["conv", "act", "pool", "fc"]
    expected = layer_activations(m, images, names)
    request = FeatureRequest(projection_dims=frozenset({8}), gram=True)
    passes = []
    for budget in (2**30, 8000):  # one pass, and layers split into column slices
        monkeypatch.setattr(planning, "SMALLEST_PASS_BYTES", min(budget, 2**30))
        monkeypatch.setattr(capture, "pass_budget", lambda config, b=budget: b)
        features = extract_features(m, stim, request, ExtractionConfig())
        passes.append(features.info["passes"])
        assert features.info["gram"] and not features.info["rdm"]
        for name in names:
            layer = features[name]
            assert layer.rdm is None
            want = centred_gram(expected[name])
            np.testing.assert_allclose(layer.gram, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
            np.testing.assert_array_equal(layer.gram, layer.gram.T)
    assert passes[0] == 1 and passes[1] > 4  # the 28,800-byte conv layer was sliced
    cache = FeatureCache(tmp_path / "cache")
    cache.store("k" * 64, features)
    assert cache.covers("k" * 64, FeatureRequest(gram=True))
    assert not cache.covers("k" * 64, FeatureRequest(rdm=True))
    assert cache.stored_request("k" * 64) == request
    loaded = cache.load("k" * 64)
    for a, b in zip(features, loaded, strict=True):
        np.testing.assert_array_equal(a.gram, b.gram)


def test_requests_merge():
    merged = FeatureRequest(projection_dims=frozenset({4}), rdm=True) | FeatureRequest(gram=True)
    assert merged == FeatureRequest(frozenset({4}), rdm=True, gram=True)
    assert not (FeatureRequest() | FeatureRequest(rdm=True)).gram
