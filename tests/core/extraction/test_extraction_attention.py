"""Attention's sub-operations as layers (brainrank/core/extraction/layers.py): q, k, v and
the attention output of every ViT family, taken without changing the module's numbers.

Per family (torchvision's VisionTransformer and open_clip's VisionTransformer on
``nn.MultiheadAttention``, open_clip's own ``Attention``, timm's ViT), at a reduced size and
random initialisation: the network's outputs with the hooks attached are bit-identical to
its outputs without them, q, k, v and the attention output are layers, and they are the
module's own: attention recomputed by hand from the captured q, k, v (softmax of the scaled
dot products, heads apart, the output projection) gives the captured attention output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _toy_models import ConvNorm, stimuli

from brainrank.core.extraction import ExtractionConfig, extract_features, probe_layers
from brainrank.core.extraction.layers import _forward, _Hooks, hooked_modules
from brainrank.core.scores import FeatureRequest
from brainrank.core.specs import Model, ModelMetadata


def preprocess(image):
    return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1


def as_model(module, family="transformer") -> Model:
    meta = ModelMetadata(source="test", architecture="vit", family=family)
    return Model("test/vit", module.eval(), preprocess, "test", meta)


def torchvision_vit():
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                            hidden_dim=16, mlp_dim=32, num_classes=5)  # fmt: skip
    torch.nn.init.normal_(vit.heads.head.weight)  # torchvision zeroes the head
    return vit


def open_clip_vit(block_type=None):
    from open_clip.transformer import VisionTransformer

    torch.manual_seed(0)
    return VisionTransformer(image_size=32, patch_size=8, width=16, layers=2, heads=2,
                             mlp_ratio=2.0, output_dim=8, block_type=block_type)  # fmt: skip


def timm_vit():
    import timm

    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32,
                             patch_size=8, depth=2, num_classes=5)  # fmt: skip


FAMILIES = {
    "torchvision": (torchvision_vit, "encoder.layers.encoder_layer_{}.self_attention"),
    "open_clip": (open_clip_vit, "transformer.resblocks.{}.attn"),
    "open_clip custom": (lambda: open_clip_vit("custom"), "transformer.resblocks.{}.attn"),
    "timm": (timm_vit, "blocks.{}.attn"),
}


def batch(n=4):
    stim = stimuli(n=n, size=32)
    return stim, torch.stack([preprocess(stim.image(s)) for s in stim.stimulus_ids])


def outputs_with_and_without_hooks(module):
    """The module's outputs on a batch: plain, and with every hook of the default
    selection attached and a handler that takes every layer (q, k, v computed)."""
    _, x = batch()
    model = as_model(module)
    with torch.inference_mode():
        plain = module(x)
    seen = []
    with _Hooks(hooked_modules(module)) as hooks:
        hooks.handler = lambda name, _m, tensor: seen.append((name, tensor.clone()))
        out = []
        original = module.forward

        def forward(*args, **kwargs):
            out.append(original(*args, **kwargs))
            return out[-1]

        module.forward = forward
        try:
            _forward(model, x, hooks)
        finally:
            del module.forward
    return plain, out[0], dict(seen)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_hooks_change_no_number_of_the_network(family):
    build, _ = FAMILIES[family]
    module = build().eval()
    plain, hooked, seen = outputs_with_and_without_hooks(module)
    assert plain.std(dim=0).min() > 0  # outputs that depend on the image (not a zero head)
    assert torch.equal(plain, hooked)  # bit for bit
    assert any(name.endswith(".v") for name in seen)  # the q, k, v were computed
    for m in module.modules():  # and the hooks are gone
        assert not m._forward_hooks and not m._forward_pre_hooks


def attention_by_hand(q, k, v, heads):
    """Multi-head attention from (batch, tokens, width) q, k, v: heads side by side."""
    b, n, width = q.shape
    split = [t.reshape(b, n, heads, width // heads).transpose(1, 2) for t in (q, k, v)]
    weights = torch.softmax(split[0] @ split[1].transpose(-1, -2) / math.sqrt(width // heads), -1)
    return (weights @ split[2]).transpose(1, 2).reshape(b, n, width)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_q_k_v_and_the_attention_output_are_the_module_s_own(family):
    build, attention = FAMILIES[family]
    module = build().eval()
    _, _, seen = outputs_with_and_without_hooks(module)
    for block in range(2):
        name = attention.format(block)
        attn = dict(module.named_modules())[name]
        q, k, v = (seen[f"{name}.{x}"] for x in "qkv")
        assert q.shape == k.shape == v.shape and q.shape[0] == 4  # (batch, tokens, width)
        assert not torch.equal(q, k) and not torch.equal(k, v)
        context = attention_by_hand(q, k, v, attn.num_heads)
        if isinstance(attn, torch.nn.MultiheadAttention):
            projection, captured = attn.out_proj, seen[name]  # the module's output
        elif hasattr(attn, "proj"):  # timm
            projection, captured = attn.proj, seen[f"{name}.proj"]
        else:  # open_clip's own
            projection, captured = attn.out_proj, seen[f"{name}.out_proj"]
        if captured.shape[0] != 4:  # sequence-first output
            captured = captured.transpose(0, 1)
        expected = torch.nn.functional.linear(context, projection.weight, projection.bias)
        torch.testing.assert_close(captured, expected, rtol=1e-5, atol=1e-5)


def test_a_broken_q_is_caught():
    """Mutation: a q computed with the key's weights fails the check above."""
    import brainrank.core.extraction.layers as layers

    original = layers._mha_qkv

    def swapped(mha, args, kwargs):
        _, k, v = original(mha, args, kwargs)
        return k, k, v

    module = torchvision_vit().eval()
    layers._mha_qkv = swapped
    try:
        _, _, seen = outputs_with_and_without_hooks(module)
    finally:
        layers._mha_qkv = original
    name = "encoder.layers.encoder_layer_0.self_attention"
    q, k, v = (seen[f"{name}.{x}"] for x in "qkv")
    attn = module.encoder.layers[0].self_attention
    expected = torch.nn.functional.linear(attention_by_hand(q, k, v, 2), attn.out_proj.weight,
                                          attn.out_proj.bias)  # fmt: skip
    with pytest.raises(AssertionError):
        torch.testing.assert_close(seen[name], expected, rtol=1e-5, atol=1e-5)


def test_layer_names_and_order_of_a_vit():
    """q, k, v come before the attention output, in call order; an identity q_norm / k_norm
    (timm) is not a layer, a normalising one is; the dropout after torchvision's attention
    repeats the attention output."""
    stim = stimuli(n=6, size=32)
    images = [stim.image(s) for s in stim.stimulus_ids]
    names = [i.name for i in probe_layers(as_model(torchvision_vit()), images)]
    attn = "encoder.layers.encoder_layer_0.self_attention"
    i = names.index(attn)
    assert names[i - 3 : i + 2] == [f"{attn}.q", f"{attn}.k", f"{attn}.v", attn,
                                    "encoder.layers.encoder_layer_0.dropout"]  # fmt: skip
    infos = {i.name: i for i in probe_layers(as_model(torchvision_vit()), images)}
    assert infos["encoder.layers.encoder_layer_0.dropout"].duplicate_of == attn
    timm_names = [i.name for i in probe_layers(as_model(timm_vit()), images)]
    assert "blocks.0.attn.q" in timm_names and "blocks.0.attn.q_norm" not in timm_names
    assert timm_names.index("blocks.0.attn.qkv") < timm_names.index("blocks.0.attn.v")

    import timm

    torch.manual_seed(0)
    normed = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32,
                               patch_size=8, depth=1, num_classes=5, qk_norm=True)  # fmt: skip
    normed_names = [i.name for i in probe_layers(as_model(normed), images)]
    assert {"blocks.0.attn.q", "blocks.0.attn.q_norm", "blocks.0.attn.k_norm"} <= set(normed_names)


def test_a_pass_computes_q_k_v_only_when_it_keeps_them(monkeypatch):
    """With ``layers`` patterns that keep no q, k or v, the projections are not computed."""
    import brainrank.core.extraction.layers as layers

    calls = []
    original = layers._mha_qkv
    monkeypatch.setattr(layers, "_mha_qkv", lambda *a: calls.append(1) or original(*a))
    stim = stimuli(n=4, size=32)
    model = as_model(torchvision_vit())
    request = FeatureRequest(frozenset({8}))
    features = extract_features(model, stim, request, ExtractionConfig(layers="conv_proj,*.ln_1"))
    assert features.layer_names[0] == "conv_proj" and not calls
    features = extract_features(model, stim, request, ExtractionConfig(layers="*.v"))
    assert calls and all(name.endswith(".v") for name in features.layer_names)


def test_a_hook_that_touched_the_inputs_is_caught(monkeypatch):
    """Mutation: a q, k, v computation that changed the module's input in place (as a careless
    hook could) makes the outputs differ, so the bit-identity check above can fail."""
    import brainrank.core.extraction.layers as layers

    original = layers._mha_qkv

    def in_place(mha, args, kwargs):
        args[0].mul_(1.001)
        return original(mha, args, kwargs)

    monkeypatch.setattr(layers, "_mha_qkv", in_place)
    plain, hooked, _ = outputs_with_and_without_hooks(torchvision_vit().eval())
    assert not torch.equal(plain, hooked)


def test_the_device_code_path_gives_the_same_attention_layers(monkeypatch):
    """The device path (torch tensors throughout, run here on the CPU) finds the same
    layers, q, k, v included, with the same values; so do affine aliases."""
    import brainrank.core.extraction.arenas as arenas
    from brainrank.core.extraction.layers import _standardised

    stim = stimuli(n=8, size=32)
    request = FeatureRequest(frozenset({16}), rdm=True)
    config = ExtractionConfig(batch_size=4, aliases="affine")
    reference = extract_features(as_model(torchvision_vit()), stim, request, config)
    monkeypatch.setattr(arenas, "_FORCE_DEVICE_PATH", True)
    features = extract_features(as_model(torchvision_vit()), stim, request, config)
    assert features.layer_names == reference.layer_names
    assert "encoder.layers.encoder_layer_1.self_attention.v" in features.layer_names
    assert features.info["affine_aliases"] == reference.info["affine_aliases"]
    for got, want in zip(features, reference, strict=True):
        np.testing.assert_allclose(got.rdm, want.rdm, atol=1e-5)
    z, constant = _standardised(torch.randn(8, 5))
    assert z.dtype == torch.float32 and not constant.any()
    small = stimuli(n=8, size=6)
    aliased = extract_features(as_model(ConvNorm().eval()), small, request, config)
    assert aliased.info["affine_aliases"] == {"bn": "conv"}
