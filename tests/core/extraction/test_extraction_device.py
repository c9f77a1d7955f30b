"""Extraction on a torch device: device names resolved and checked, and the device code path
(activations, projections and RDM Grams kept as torch tensors) equal to the numpy path.

CI has no GPU: the device path is forced on the CPU, where it runs the same torch code."""

from __future__ import annotations

import itertools
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from brainrank.core import projection
from brainrank.core.backend import resolve_device
from brainrank.core.errors import InputError
from brainrank.core.extraction import (
    ExtractionConfig,
    capture,
    extract_features,
    pass_budget,
    planning,
)
from brainrank.core.extraction import arenas as arena_module
from brainrank.core.projection import SparseRandomProjection
from brainrank.core.rsa import GramAccumulator
from brainrank.core.scores import FeatureRequest
from brainrank.core.specs import Model, ModelMetadata
from brainrank.core.stimuli import StimulusSet

# ----------------------------------------------------------------------------- devices


def test_resolve_device_cpu_and_auto_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(" CPU ") == "cpu"
    assert resolve_device("auto") == "cpu"
    assert resolve_device(None) == "cpu"


def test_resolve_device_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"
    assert resolve_device("mps") == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "mps"


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "mps"])
def test_resolve_device_unavailable_says_what_exists(monkeypatch, spec):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(InputError, match=r"available.*present here are: cpu\. .*'auto'"):
        resolve_device(spec)


def test_resolve_device_bad_index_and_name(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(InputError, match=r"only 1 CUDA device.*cuda:0"):
        resolve_device("cuda:3")
    with pytest.raises(InputError, match="not a device name"):
        resolve_device("cuda:x")
    with pytest.raises(InputError, match="unknown device 'gpu'"):
        resolve_device("gpu")


def test_pass_budget_is_capped_by_free_device_memory(monkeypatch):
    free = 3 * 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 8 * 2**30))
    config = ExtractionConfig(memory_budget=4 * 2**30, device="cuda")
    assert pass_budget(config) == int(free * planning.DEVICE_MEMORY_SHARE)
    small = ExtractionConfig(memory_budget=2**30, device="cuda:0")
    assert pass_budget(small) == 2**30
    assert pass_budget(ExtractionConfig(memory_budget=4 * 2**30)) == 4 * 2**30


# ----------------------------------------------------------------------------- accumulators


def test_gram_accumulator_torch_chunks_equal_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 300)).astype(np.float32)
    x[:, 100:200] += 50.0  # a chunk with large means: the centre-first branch
    ref, dev = GramAccumulator(9), GramAccumulator(9, device="cpu")
    for a, b in ((0, 100), (100, 200), (200, 300)):
        ref.add(x[:, a:b])
        dev.add(torch.from_numpy(x[:, a:b].copy()))
    for method in ("correlation", "cosine", "euclidean"):
        np.testing.assert_allclose(dev.rdm(method), ref.rdm(method), atol=1e-6)
    whole = 1 - np.corrcoef(x.astype(np.float64))
    np.testing.assert_allclose(dev.rdm(), whole, atol=1e-5)


@pytest.mark.parametrize("scipy_rows", [0, 32])  # torch's CSR kernel (as on a GPU) / scipy's
def test_projection_accumulator_torch_chunks_equal_numpy(monkeypatch, scipy_rows):
    monkeypatch.setattr(projection, "SCIPY_ROWS", scipy_rows)
    monkeypatch.setattr(projection, "PIECE_ROWS", 1000)  # several pieces, not block-aligned
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 9000)).astype(np.float32)
    proj = SparseRandomProjection(9000, 50, seed=3)
    acc = proj.accumulator(7, device="cpu")
    for a, b in ((0, 5000), (5000, 9000)):  # a chunk across a block boundary
        acc.add(torch.from_numpy(x[:, a:b].copy()), a)
    np.testing.assert_allclose(acc.result(), x @ proj.dense(), rtol=1e-4, atol=1e-4)


def test_joined_columns_equal_the_dense_matrix(monkeypatch):
    monkeypatch.setattr(projection, "CACHE_NONZEROS", 1)  # nothing cached: joined every time
    proj = SparseRandomProjection(10_000, 30, seed=4)
    dense = proj.dense()
    for start, stop in ((0, 10_000), (4000, 9000), (4096, 8192), (5, 6), (7, 7)):
        got = proj.columns_transposed(start, stop).toarray()
        np.testing.assert_array_equal(got, dense[start:stop].T)
    monkeypatch.setattr(projection, "CACHE_NONZEROS", 2**23)
    first = proj.columns_transposed(0, 10_000)
    assert proj.columns_transposed(0, 10_000) is first  # memoised
    np.testing.assert_array_equal(first.toarray(), dense.T)


def test_joined_cache_keeps_its_running_total_within_the_limit(monkeypatch):
    monkeypatch.setattr(projection, "_joined", projection.OrderedDict())
    monkeypatch.setattr(projection, "_joined_nonzeros", 0)
    monkeypatch.setattr(projection, "CACHE_NONZEROS", 3000)
    proj = SparseRandomProjection(40_000, 50, seed=1)  # ~10 non-zeros per 40 columns
    for start in range(0, 40_000, 1000):
        proj.columns_transposed(start, start + 1000)
        cached = projection._joined
        assert projection._joined_nonzeros == sum(m.nnz for m in cached.values()) <= 3000
    assert 0 < len(projection._joined) < 40  # the oldest were evicted


# ----------------------------------------------------------------------------- extraction


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(3, 8, 3, padding=1),
            relu=nn.ReLU(inplace=True),
            drop=nn.Dropout(0.5),  # equal to relu at eval time: a duplicate
            pool=nn.AdaptiveAvgPool2d(4),
            flat=nn.Flatten(),
            fc=nn.Linear(128, 10),
        )
    ).eval()


def preprocess(image):
    return torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1.0


def small_model() -> Model:
    return Model(
        identifier="test/small",
        module=small_net(),
        preprocess=preprocess,
        preprocess_id="small",
        metadata=ModelMetadata(source="test", architecture="small"),
    )


def stimuli(n: int = 16, size: int = 48) -> StimulusSet:
    rng = np.random.default_rng(0)
    images = {f"s{i}": rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(n)}
    return StimulusSet("small", list(images), images.__getitem__)


@pytest.mark.parametrize("rdm", [True, False])  # passes over layers / chunks of images
@pytest.mark.parametrize("budget", [2**20, 2**30])  # 1 MiB splits the conv layers in columns
def test_device_path_equals_numpy_path(monkeypatch, budget, rdm):
    request = FeatureRequest(projection_dims=frozenset({64, 20000}), rdm=rdm)
    config = ExtractionConfig(batch_size=5, memory_budget=budget)
    reference = extract_features(small_model(), stimuli(), request, config)

    arenas: list[int] = []

    class Spy(arena_module._DeviceArena):
        def __init__(self, n_floats: int, device: str):
            arenas.append(n_floats)
            super().__init__(n_floats, device)

    monkeypatch.setattr(arena_module, "_FORCE_DEVICE_PATH", True)
    monkeypatch.setattr(capture, "_DeviceArena", Spy)
    monkeypatch.setattr(projection, "SCIPY_ROWS", 0)  # torch's CSR product, as on a GPU
    features = extract_features(small_model(), stimuli(), request, config)

    assert arenas, "the device code path was not taken"
    assert features.info["passes"] == reference.info["passes"]
    if budget == 2**20 and rdm:
        assert features.info["passes"] > 2
    assert features.info["duplicates"] == reference.info["duplicates"]
    assert reference.info["duplicates"] == {"drop": "relu", "flat": "pool", "output": "fc"}
    assert [layer.name for layer in features.layers] == [layer.name for layer in reference.layers]
    for got, want in zip(features.layers, reference.layers, strict=True):
        assert set(got.projections) == set(want.projections) == {64, 20000}
        for k in want.projections:
            assert isinstance(got.projections[k], np.ndarray)
            assert got.projections[k].shape == want.projections[k].shape
            np.testing.assert_allclose(
                got.projections[k], want.projections[k], rtol=1e-4, atol=1e-4
            )
        if rdm:
            np.testing.assert_allclose(got.rdm, want.rdm, atol=1e-5)
        else:
            assert got.rdm is None


@pytest.mark.parametrize("rdm", [True, False])
def test_device_path_refuses_non_finite_activations(monkeypatch, rdm):
    module = small_net()
    with torch.no_grad():
        module.fc.bias[3] = float("nan")
    model = small_model()
    model = Model(
        identifier=model.identifier,
        module=module,
        preprocess=model.preprocess,
        preprocess_id=model.preprocess_id,
        metadata=model.metadata,
    )
    monkeypatch.setattr(arena_module, "_FORCE_DEVICE_PATH", True)
    with pytest.raises(InputError, match=r"NaN or infinite activations in layer\(s\) 'fc'"):
        extract_features(
            model, stimuli(), FeatureRequest(frozenset({64}), rdm=rdm), ExtractionConfig()
        )


def test_balanced_plan_has_as_few_passes_and_a_smaller_arena():
    from brainrank.core.extraction import LayerInfo, plan_balanced, plan_passes

    sizes = [9000, 300, 5000, 5000, 7000, 100, 20000, 40]
    layers = [LayerInfo(f"l{i}", f"l{i}", (s,), s) for i, s in enumerate(sizes)]
    n, budget = 50, 2**21  # 2 MiB: 10485 columns of 50 rows; l6 is split in columns
    greedy, balanced = plan_passes(layers, n, budget), plan_balanced(layers, n, budget)

    def largest(plan):
        return max(4 * n * sum(p.stop - p.start for p in slices) for slices in plan)

    assert len(balanced) == len(greedy) > 2
    assert largest(balanced) <= budget
    assert largest(balanced) < largest(greedy)
    covered: dict[str, list[tuple[int, int]]] = {}
    for slices in balanced:
        for part in slices:
            covered.setdefault(part.layer, []).append((part.start, part.stop))
    assert list(covered) == [layer.name for layer in layers]  # in order
    for layer in layers:
        spans = covered[layer.name]
        assert spans[0][0] == 0 and spans[-1][1] == layer.size
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # no gap, no overlap
