"""Layer discovery and hooks (brainrank/core/extraction/layers.py): which layers, in which
order, captured before in-place operations, deduplicated, sequence-first outputs, named
layers, and max pooling through its channels-last kernel."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from _toy_models import (
    batch_of,
    reference_activations,
    stimuli,
    toy_model,
    toy_module,
)
from torch import nn

from brainrank.core.extraction import (
    ExtractionConfig,
    extract_features,
    layer_activations,
    probe_layers,
)
from brainrank.core.rsa import rdm
from brainrank.core.scores import FeatureRequest


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
