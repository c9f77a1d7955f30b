"""Every-layer extraction: which layers, in which order, captured before in-place
operations, deduplicated, and exact whatever the memory budget."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from brainrank.core.extraction import (
    ExtractionConfig,
    extract_features,
    layer_activations,
    probe_layers,
)
from brainrank.core.projection import SparseRandomProjection
from brainrank.core.rsa import rdm
from brainrank.core.scores import FeatureRequest
from brainrank.core.specs import Model, ModelMetadata
from brainrank.core.stimuli import StimulusSet


class Block(nn.Module):
    """A residual block that calls its ReLU twice and adds in place (like torchvision's)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        out = self.relu(self.conv1(x))
        out = self.conv2(out)
        out += x
        return self.relu(out)


def toy_module() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(3, 4, 3, padding=1),
            act=nn.ReLU(inplace=True),
            block=Block(4),
            drop=nn.Dropout(0.5),
            pool=nn.AdaptiveAvgPool2d(3),
            flat=nn.Flatten(),
            fc=nn.Linear(36, 7),
        )
    ).eval()


def preprocess(image):
    return torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1.0


def toy_model(module=None) -> Model:
    return Model(
        identifier="test/toy",
        module=module or toy_module(),
        preprocess=preprocess,
        preprocess_id="toy",
        metadata=ModelMetadata(source="test", architecture="toy"),
    )


def stimuli(n=10, size=6) -> StimulusSet:
    rng = np.random.default_rng(0)
    images = {f"s{i}": rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(n)}
    return StimulusSet("toy", list(images), images.__getitem__)


def reference_activations(module, batch):
    """The activations computed by hand, in the order the layers run."""
    with torch.no_grad():
        conv = module.conv(batch)
        act = torch.relu(conv)
        b = module.block
        c1 = b.conv1(act)
        r1 = torch.relu(c1)
        c2 = b.conv2(r1)
        r2 = torch.relu(c2 + act)
        pool = module.pool(r2)
        fc = module.fc(pool.flatten(1))
    return OrderedDict(
        [("conv", conv), ("act", act), ("block.conv1", c1), ("block.relu", r1),
         ("block.conv2", c2), ("block.relu:2", r2), ("pool", pool), ("fc", fc)]
    )  # fmt: skip


def batch_of(stim: StimulusSet) -> torch.Tensor:
    return torch.stack([preprocess(stim.image(s)) for s in stim.stimulus_ids])


def test_layers_in_call_order_with_second_calls_and_duplicates():
    stim = stimuli()
    infos = probe_layers(toy_model(), [stim.image(s) for s in stim.stimulus_ids])
    names = [i.name for i in infos]
    assert names == ["conv", "act", "block.conv1", "block.relu", "block.conv2", "block.relu:2",
                     "drop", "pool", "flat", "fc", "output"]  # fmt: skip
    duplicates = {i.name: i.duplicate_of for i in infos if i.duplicate_of}
    # dropout at eval time repeats the block output; flatten repeats the pooled values; the
    # model's output is the last layer's
    assert duplicates == {"drop": "block.relu:2", "flat": "pool", "output": "fc"}


def test_captured_before_in_place_operations():
    stim = stimuli()
    module = toy_module()
    expected = reference_activations(module, batch_of(stim))
    names = list(expected)
    got = layer_activations(toy_model(module), [stim.image(s) for s in stim.stimulus_ids], names)
    for name in names:
        np.testing.assert_allclose(
            got[name], expected[name].flatten(1).numpy(), rtol=1e-5, atol=1e-6
        )
    # the conv output keeps its negative values although an in-place ReLU follows it
    assert (got["conv"] < 0).any() and (got["block.conv2"] < 0).any()


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


def test_plan_groups_layers_and_slices_big_ones():
    from brainrank.core.extraction import LayerInfo, plan_passes

    layers = [
        LayerInfo(name, name, (size,), size)
        for name, size in [("a", 1000), ("b", 1500), ("c", 10_000), ("d", 10)]
    ]
    plan = plan_passes(layers, n=100, budget=2**20)  # 1 MiB = 2621 columns of 100 rows
    assert [[(s.layer, s.start, s.stop) for s in p] for p in plan] == [
        [("a", 0, 1000), ("b", 0, 1500)],
        [("c", 0, 2621)], [("c", 2621, 5242)], [("c", 5242, 7863)], [("c", 7863, 10_000)],
        [("d", 0, 10)],
    ]  # fmt: skip


def _resnet_like():
    """Layer sizes shaped like resnet18's (large early layers): 5.4 GB for 200 images."""
    from brainrank.core.extraction import LayerInfo

    sizes = [802_816] * 3 + [200_704] * 13 + [100_352] * 10 + [50_176] * 10 + [25_088] * 10
    return [LayerInfo(f"l{i}", f"l{i}", (s,), s) for i, s in enumerate([*sizes, 512, 1000])]


def _covers_in_order(plan, layers) -> None:
    spans = [(p.layer, p.start, p.stop) for slices in plan for p in slices]
    assert [layer for layer, _, _ in spans] == [layer.name for layer in layers]
    assert all(
        start == 0 and stop == layer.size
        for (_, start, stop), layer in zip(spans, layers, strict=True)
    )


def test_plan_by_need_trades_a_few_passes_over_few_images_for_memory():
    from brainrank.core.extraction import plan_balanced, plan_by_need, planning

    budget = 4 * 2**30
    layers = _resnet_like()
    fewest, by_need = plan_balanced(layers, 200, budget), plan_by_need(layers, 200, budget)
    assert len(fewest) == 2
    assert len(fewest) < len(by_need) <= len(fewest) + planning.SPARE_IMAGES // 200
    largest = planning._largest(by_need, 200)
    assert planning.SMALLEST_PASS_BYTES <= largest < 0.6 * planning._largest(fewest, 200)
    _covers_in_order(by_need, layers)
    # many images: every extra pass runs them all again, so the fewest passes are kept
    many = plan_balanced(layers, 1000, budget)
    assert plan_by_need(layers, 1000, budget) == many
    # one more pass at most where it runs at most SPARE_IMAGES images
    n = planning.SPARE_IMAGES
    assert len(plan_balanced(layers, n, budget)) <= len(plan_by_need(layers, n, budget))
    assert len(plan_by_need(layers, n, budget)) <= len(plan_balanced(layers, n, budget)) + 1
    # small runs are not split below the smallest pass buffer
    small = layers[-12:]
    assert plan_by_need(small, 200, budget) == plan_balanced(small, 200, budget)
    assert len(plan_by_need(small, 200, budget)) == 1


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


def test_named_layers_and_missing_layers():
    stim = stimuli()
    model = toy_model()
    model.layers = ["block", "fc"]  # a non-leaf module can be named explicitly
    features = extract_features(model, stim, FeatureRequest(frozenset({20}), rdm=False))
    assert features.layer_names == ["block", "fc"]
    assert features["fc"].rdm is None
    model.layers = ["nope"]
    with pytest.raises(Exception, match="no modules named"):
        extract_features(model, stim, FeatureRequest(frozenset({20})))


class SequenceFirst(nn.Module):
    """Tokens laid out (sequence, batch, width), as in sequence-first transformers, and a
    zero-initialised head whose output is the same for every image."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Linear(3, 5)
        self.mix = nn.Linear(5, 5)
        self.head = nn.Linear(5, 2)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        tokens = x.flatten(2).permute(2, 0, 1)  # (pixels, batch, channels)
        mixed = self.mix(self.embed(tokens))
        return mixed.mean(0), self.head(mixed.mean(0))


def test_sequence_first_outputs_and_constant_layers():
    stim = stimuli(n=6, size=3)  # 9 tokens per image, so no axis is ambiguous
    model = toy_model(SequenceFirst().eval())
    features = extract_features(model, stim, FeatureRequest(frozenset({100}), rdm=True))
    assert features.layer_names == ["embed", "mix", "output"]
    assert features.info["constant_layers"] == ["head"]
    batch = batch_of(stim)
    with torch.no_grad():
        mixed = model.module.mix(model.module.embed(batch.flatten(2).permute(2, 0, 1)))
    expected = mixed.permute(1, 0, 2).flatten(1).numpy()  # rows are images
    assert features["mix"].shape == (9, 5)
    np.testing.assert_allclose(features["mix"].projections[100], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(features["mix"].rdm, rdm(expected, dtype="float64"), atol=2e-5)


def test_max_pooling_gives_the_same_features_through_its_channels_last_kernel():
    """On the CPU, max pooling runs on a channels-last copy of its input (a faster kernel):
    every layer's features, the pooling's own and those after it, equal the features
    computed by hand in the default layout, and the hooks are gone afterwards."""
    from brainrank.core.extraction.layers import _channels_last_pooling

    torch.manual_seed(1)
    module = nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(3, 5, 3, padding=1),
            pool=nn.MaxPool2d(3, 2, 1),
            conv2=nn.Conv2d(5, 3, 3),
            flat=nn.Flatten(),
        )
    ).eval()
    stim = stimuli(n=9, size=17)
    batch = batch_of(stim)
    with torch.no_grad():  # in the extraction's batches of 4 (same convolution kernels)
        conv = torch.cat([module.conv(batch[i : i + 4]) for i in range(0, len(batch), 4)])
        pool = nn.functional.max_pool2d(conv, 3, 2, 1)
        conv2 = torch.cat([module.conv2(pool[i : i + 4]) for i in range(0, len(batch), 4)])
    seen = []
    probe = module.pool.register_forward_pre_hook(
        lambda _m, inputs: seen.append(inputs[0].is_contiguous(memory_format=torch.channels_last))
    )
    with _channels_last_pooling(module, "cpu"), torch.no_grad():
        out = torch.cat([module(batch[i : i + 4]) for i in range(0, len(batch), 4)])
    probe.remove()
    assert seen == [True] * 3  # the kernel got a channels-last input
    assert torch.equal(out, conv2.flatten(1))
    assert not module.pool._forward_pre_hooks and not module.pool._forward_hooks
    features = extract_features(
        toy_model(module), stim, FeatureRequest(frozenset({10_000}), rdm=False),
        ExtractionConfig(batch_size=4),
    )  # fmt: skip
    np.testing.assert_array_equal(features["pool"].projections[10_000], pool.flatten(1).numpy())
    np.testing.assert_array_equal(features["conv2"].projections[10_000], conv2.flatten(1).numpy())


def test_stream_chunks_are_the_fewest_that_fit_and_as_equal_as_batches_allow():
    from brainrank.core.extraction import stream_chunk

    per_image = 4 * 1_075_688  # alexnet's layers, float32
    big = 10_000  # no cap on the images per chunk
    assert stream_chunk(1000, per_image, 8 * 2**30, 50, big) == 1000  # everything fits
    assert stream_chunk(1000, per_image, 4 * 2**30, 50, big) == 500  # 1.002 budgets: 2 x 500
    assert stream_chunk(1000, per_image, 2**29, 50) == 100  # 124 fit: 10 chunks of 100
    assert stream_chunk(13, 640_000, 2**20, 4) == 4  # less than one batch fits: one batch
    # at most STREAM_IMAGES (256) images per chunk whatever the budget, balanced
    assert stream_chunk(1000, per_image, 8 * 2**30, 50) == 250  # 4 x 250
    assert stream_chunk(200, per_image, 8 * 2**30, 32) == 200  # all fit under the cap
    assert stream_chunk(300, 4, 8 * 2**30, 32) == 160  # 2 chunks: 160 + 140
    for n, budget, batch in [(1000, 2**29, 50), (997, 3 * 2**28, 32), (13, 2**21, 5)]:
        chunk = stream_chunk(n, per_image if n > 13 else 640_000, budget, batch)
        fit = budget // (per_image if n > 13 else 640_000)
        assert chunk % batch == 0 and (chunk <= fit or chunk == batch)
        chunks = -(-n // chunk)
        assert chunks == -(-n // max(batch, fit // batch * batch))  # no more chunks than needed
