"""The feature cache: a second extraction of the same model on the same stimuli is read
back; changing the weights, the preprocessing, the stimuli or the projection seed
recomputes. Also the ``brainrank extract`` command that fills it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import brainrank
from brainrank.cli import main
from brainrank.core.cache import FeatureCache
from brainrank.core.extraction import ExtractionConfig
from brainrank.core.features import compute_features
from brainrank.core.scores import FeatureRequest
from brainrank.core.stimuli import StimulusSet

REQUEST = FeatureRequest(frozenset({8}), rdm=True)


def make_stimuli(n: int = 4, size: int = 16, seed: int = 0) -> StimulusSet:
    rng = np.random.default_rng(seed)
    images = {f"s{i}": rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(n)}
    return StimulusSet(f"tiny-{seed}-{n}-{size}", list(images), images.__getitem__)


@pytest.fixture
def stimuli_factory():
    """(The model-zoo tests' fixture of the same name lives in tests/plugins/models/.)"""
    return make_stimuli


def extract(model, stimuli, cache, config=None):
    return compute_features(model, stimuli, REQUEST, config or ExtractionConfig(), cache)


def test_hit_then_every_change_recomputes(tmp_path, stimuli_factory):
    cache = FeatureCache(tmp_path / "cache")
    model = brainrank.load_model("cifar/resnet20:random")
    stimuli = stimuli_factory(n=4, size=32)
    first = extract(model, stimuli, cache)
    assert first.info.get("cache") != "hit"
    again = extract(brainrank.load_model("cifar/resnet20:random"), stimuli, cache)
    assert again.info["cache"] == "hit" and again.key == first.key
    for a, b in zip(first, again, strict=True):
        assert a.name == b.name and a.relative_depth == b.relative_depth
        np.testing.assert_array_equal(a.rdm, b.rdm)
        np.testing.assert_array_equal(a.projections[8], b.projections[8])

    changed_weights = brainrank.load_model("cifar/resnet20:random")
    with torch.no_grad():
        changed_weights.module.conv1.weight[0, 0, 0, 0] += 1.0
    changed_preprocess = brainrank.load_model("cifar/resnet20:random")
    changed_preprocess.preprocess_id += ";other"
    variants = {
        "weights": (changed_weights, stimuli, None),
        "preprocessing": (changed_preprocess, stimuli, None),
        "stimuli": (model, stimuli_factory(n=4, size=32, seed=1), None),
        "projection seed": (model, stimuli, ExtractionConfig(projection_seed=1)),
    }
    keys = {first.key}
    for what, (m, s, config) in variants.items():
        features = extract(m, s, cache, config)
        assert features.info.get("cache") != "hit", what
        assert features.key not in keys, what
        keys.add(features.key)
        # and the recomputed entry is itself a hit the next time
        assert extract(m, s, cache, config).info["cache"] == "hit", what
    reseeded = extract(model, stimuli, cache, ExtractionConfig(projection_seed=1))
    assert not np.allclose(reseeded["conv1"].projections[8], first["conv1"].projections[8])
    np.testing.assert_allclose(reseeded["conv1"].rdm, first["conv1"].rdm)


def test_a_larger_request_extends_the_entry(tmp_path, stimuli_factory):
    cache = FeatureCache(tmp_path / "cache")
    model = brainrank.load_model("cifar/resnet20:random")
    stimuli = stimuli_factory(n=4, size=32)
    config = ExtractionConfig()
    compute_features(model, stimuli, FeatureRequest(frozenset({8})), config, cache)
    bigger = FeatureRequest(frozenset({8, 16}), rdm=True)
    features = compute_features(model, stimuli, bigger, config, cache)
    assert features.info.get("cache") != "hit"
    assert all(set(layer.projections) == {8, 16} and layer.rdm is not None for layer in features)
    smaller = compute_features(model, stimuli, FeatureRequest(frozenset({16})), config, cache)
    assert smaller.info["cache"] == "hit"


def test_the_budget_does_not_change_the_features(stimuli_factory):
    from brainrank.core.extraction import extract_features

    model = brainrank.load_model("cifar/resnet20:random")
    stimuli = stimuli_factory(n=20, size=32)  # the first layers: 20 x 16,384 floats = 1.3 MB
    roomy = extract_features(model, stimuli, REQUEST, ExtractionConfig(batch_size=4))
    tight = ExtractionConfig(batch_size=4, memory_budget=2**20)  # 1 MiB: layers are sliced
    sliced = extract_features(model, stimuli, REQUEST, tight)
    assert roomy.info["passes"] == 1 and sliced.info["passes"] > 1
    too_big = [layer for layer in sliced if 4 * 20 * layer.n_features > 2**20]
    assert too_big and sliced.info["passes"] >= 2 * len(too_big)  # each split in 2+ passes
    for a, b in zip(roomy, sliced, strict=True):
        np.testing.assert_allclose(a.rdm, b.rdm, atol=1e-6)
        # the same sums in another order: float32 rounding relative to the layer's scale
        scale = float(np.abs(a.projections[8]).max())
        np.testing.assert_allclose(a.projections[8], b.projections[8], rtol=0, atol=2e-6 * scale)


def test_extract_command_fills_the_cache(tiny_plugin_path, brainrank_home):
    args = ["--plugin", str(tiny_plugin_path), "extract", "cifar/resnet20:random",
            "--dataset", "tiny/data", "--metrics", "rsa", "--quiet"]  # fmt: skip
    first = CliRunner().invoke(main, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "tiny/data: 59 layers x 24 stimuli" in first.output and "(extracted" in first.output
    second = CliRunner().invoke(main, args, catch_exceptions=False)
    assert "(cache" in second.output
    assert any((brainrank_home / "cache" / "features").rglob("meta.json"))
    missing = CliRunner().invoke(main, ["--plugin", str(tiny_plugin_path), "extract",
                                        "cifar/resnet20", "--dataset", "tiny/data"])  # fmt: skip
    assert missing.exit_code != 0 and "resnet20-12fca82f.th" in missing.output


@pytest.mark.slow
def test_vgg16_at_224_px_within_a_small_budget(stimuli_factory, monkeypatch):
    """VGG16's first layers hold 3.2 million values per image: with 40 images and a 256 MiB
    budget every early layer is split over several passes, and the features still equal
    those of one roomy pass (the fewest passes kept: no smaller passes by need)."""
    from brainrank.core.extraction import extract_features, planning

    monkeypatch.setattr(planning, "SPARE_IMAGES", 0)

    model = brainrank.load_model("torchvision/vgg16:random")
    stimuli = stimuli_factory(n=40, size=64)
    request = FeatureRequest(frozenset({64}), rdm=True)
    tight = extract_features(model, stimuli, request, ExtractionConfig(memory_budget=2**28))
    roomy = extract_features(model, stimuli, request, ExtractionConfig(memory_budget=2**33))
    too_big = [layer for layer in tight if 4 * 40 * layer.n_features > 2**28]
    assert roomy.info["passes"] == 1 and too_big
    assert tight.info["passes"] >= 2 * len(too_big)  # each of those split over 2+ passes
    assert (
        tight.layer_names == roomy.layer_names and len(tight) == 36
    )  # 13 conv + 13 ReLU + 5 pool + 3 linear + 2 ReLU
    for a, b in zip(tight, roomy, strict=True):
        np.testing.assert_allclose(a.rdm, b.rdm, atol=1e-5)
        np.testing.assert_allclose(a.projections[64], b.projections[64], rtol=1e-4, atol=1e-4)
