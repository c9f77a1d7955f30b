"""A damaged feature-cache entry (issue 13, item 4) is moved aside, logged with its path and
recomputed, never a ``BadZipFile`` on every later run.

docs/reliability.md lists it with the other faults of issue 13.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from brainrank.core.cache import FeatureCache
from brainrank.core.scores import FeatureRequest, FeatureSet, LayerFeatures


def _feature_set(n: int = 5) -> FeatureSet:
    rng = np.random.default_rng(0)
    layers = []
    for index, name in enumerate(("conv1", "fc")):
        x = rng.standard_normal((n, 8)).astype(np.float32)
        layers.append(
            LayerFeatures(
                name=name,
                index=index,
                relative_depth=float(index),
                n_features=8,
                shape=(8,),
                projections={8: x},
                rdm=1 - np.corrcoef(x),
            )
        )
    return FeatureSet(
        model="toy",
        stimulus_ids=tuple(f"s{i}" for i in range(n)),
        layers=layers,
        info={"projection_dims": [8], "rdm": True},
    )


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path):
    path.write_bytes(np.random.default_rng(1).bytes(300))


def _garbage_npz(path):
    # a valid archive whose arrays do not match meta.json (wrong number of rows)
    np.savez(path, proj_8=np.zeros((2, 8), np.float32), rdm=np.zeros((2, 2)))


def _garbage_meta(path):
    (path.parent / "meta.json").write_text('{"format": 1, "model": ')


@pytest.mark.parametrize(
    "damage", [_truncate, _garbage, _garbage_npz, _garbage_meta], ids=lambda f: f.__name__[1:]
)
def test_a_corrupt_cache_entry_is_moved_aside_and_recomputed(tmp_path, caplog, damage):
    """Was: ``BadZipFile`` from ``FeatureCache.load`` on every later run."""
    cache = FeatureCache(tmp_path / "cache")
    key = "ab" + "0" * 62
    cache.store(key, _feature_set())
    folder = tmp_path / "cache" / "ab" / key
    damage(folder / "layer_0001.npz")
    request = FeatureRequest(frozenset({8}), rdm=True)
    with caplog.at_level(logging.WARNING, logger="brainrank.core.cache"):
        assert not cache.covers(key, request) or cache.load(key) is None
    assert str(folder) in caplog.text and "damaged" in caplog.text
    assert not folder.exists()  # moved aside, so the next store replaces it cleanly
    assert list(folder.parent.glob(f"{key}.corrupt-*"))
    assert cache.load(key) is None and not cache.covers(key, request)
    cache.store(key, _feature_set())
    again = cache.load(key)
    assert again is not None and again.info["cache"] == "hit"
    np.testing.assert_array_equal(again["fc"].projections[8], _feature_set()["fc"].projections[8])


def test_the_runner_recomputes_over_a_truncated_entry(tmp_path, caplog):
    """End to end through ``compute_features``: the damaged entry costs one recomputation."""
    import brainrank
    from brainrank.core.extraction import ExtractionConfig
    from brainrank.core.features import compute_features
    from brainrank.core.stimuli import StimulusSet

    rng = np.random.default_rng(0)
    images = {f"s{i}": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for i in range(4)}
    stimuli = StimulusSet("tiny-cache", list(images), images.__getitem__)
    cache = FeatureCache(tmp_path / "cache")
    request = FeatureRequest(frozenset({8}), rdm=True)
    model = brainrank.load_model("cifar/resnet20:random")
    first = compute_features(model, stimuli, request, ExtractionConfig(), cache)
    for file in (tmp_path / "cache").rglob("layer_0000.npz"):
        _truncate(file)
    with caplog.at_level(logging.WARNING, logger="brainrank.core.cache"):
        second = compute_features(model, stimuli, request, ExtractionConfig(), cache)
    assert second.info.get("cache") != "hit" and "damaged" in caplog.text
    np.testing.assert_allclose(second.layers[0].rdm, first.layers[0].rdm)
    third = compute_features(model, stimuli, request, ExtractionConfig(), cache)
    assert third.info["cache"] == "hit"
