"""Which layers an extraction keeps (brainrank/core/extraction/layers.py): ``all``, the
architecture's ``blocks``, shell patterns, and the ``exact`` / ``affine`` rule for repeated
layers; the choice in the feature key and the plan hash (unchanged for the default)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from _toy_models import ConvNorm, stimuli, toy_model, toy_module
from torch import nn

from brainrank.core.errors import InputError
from brainrank.core.extraction import (
    ExtractionConfig,
    LayerSelection,
    block_modules,
    extract_features,
    layer_activations,
    probe_layers,
)
from brainrank.core.rsa import rdm
from brainrank.core.scores import FeatureRequest
from brainrank.core.specs import Model, ModelMetadata

REQUEST = FeatureRequest(frozenset({8}), rdm=True)


def images(n=6, size=6):
    stim = stimuli(n=n, size=size)
    return stim, [stim.image(s) for s in stim.stimulus_ids]


# --------------------------------------------------------------------------- parsing


def test_selections_parse_and_malformed_ones_are_refused_up_front():
    assert LayerSelection.parse("all").kind == "all" and LayerSelection.parse(None).kind == "all"
    assert LayerSelection.parse(" blocks ").kind == "blocks"
    pattern = LayerSelection.parse("layer4.*, avgpool,layer4.*")
    assert pattern.patterns == ("layer4.*", "avgpool")  # trimmed, repeats dropped
    assert pattern.key == LayerSelection.parse("avgpool,layer4.*").key  # order: same layers
    assert "layer4.1.conv2" in pattern and "avgpool" in pattern and "fc" not in pattern
    for bad in ("", " , ", "layer4 .*", "blocks,fc"):
        with pytest.raises(InputError):
            LayerSelection.parse(bad)
        with pytest.raises(InputError):
            ExtractionConfig(layers=bad)  # before any model is built
    with pytest.raises(InputError, match="aliases must be one of"):
        ExtractionConfig(aliases="loose")


# --------------------------------------------------------------------------- blocks


def test_blocks_of_each_family_by_the_generic_rule_and_its_overrides():
    import timm
    import torchvision.models as tvm

    def classes(module):
        return {type(m).__name__ for _, m in block_modules(module)}

    resnet = block_modules(tvm.resnet18())
    assert [n for n, _ in resnet] == [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    vit = tvm.VisionTransformer(image_size=32, patch_size=8, num_layers=3, num_heads=2,
                                hidden_dim=16, mlp_dim=32)  # fmt: skip
    assert [n for n, _ in block_modules(vit)] == [f"encoder.layers.encoder_layer_{i}"
                                                  for i in range(3)]  # fmt: skip
    assert classes(timm.create_model("vit_tiny_patch16_224", depth=2)) == {"Block"}
    # nested stages give their blocks
    convnext = block_modules(timm.create_model("convnext_atto"))
    assert len(convnext) == 12 and {type(m).__name__ for _, m in convnext} == {"ConvNeXtBlock"}
    # overrides: blocks whose insides hold sequences of convolution units
    assert "InvertedResidual" in classes(tvm.mobilenet_v2())
    assert not any(".conv." in n for n, _ in block_modules(tvm.mobilenet_v2()))
    assert classes(tvm.googlenet(init_weights=False, aux_logits=False)) == {"Inception"}
    assert classes(tvm.densenet121()) == {"_DenseBlock", "_Transition"}
    regnet = block_modules(tvm.regnet_y_400mf())
    assert {type(m).__name__ for _, m in regnet} == {"ResBottleneckBlock"}
    assert not any(".f." in name for name, _ in regnet)  # not the units inside a bottleneck
    assert not block_modules(tvm.alexnet())  # a plain sequence: no blocks


def test_blocks_extract_the_block_outputs_and_the_model_output():
    stim, _ = images(size=8)
    model = toy_model()
    features = extract_features(model, stim, REQUEST, ExtractionConfig(layers="blocks"))
    # the toy has one block (not in a sequence of blocks): the generic rule finds none, so a
    # plain network's stage ends are taken: activations and poolings, and the output
    assert features.layer_names == ["act", "block.relu", "block.relu:2", "pool", "output"]
    assert features.info["layers"] == "blocks"
    two = nn.Sequential(
        OrderedDict(conv=nn.Conv2d(3, 4, 3, padding=1), blocks=nn.Sequential(
            *(toy_module().block for _ in range(2))), pool=nn.AdaptiveAvgPool2d(1),
            flat=nn.Flatten())).eval()  # fmt: skip
    model = toy_model(two)
    features = extract_features(model, stim, REQUEST, ExtractionConfig(layers="blocks"))
    assert features.layer_names == ["blocks.0", "blocks.1", "output"]
    by_hand = layer_activations(model, [stim.image(s) for s in stim.stimulus_ids],
                                ["blocks.1"], selection="blocks")["blocks.1"]  # fmt: skip
    with torch.no_grad():
        x = torch.stack([torch.from_numpy(np.asarray(stim.image(s), np.float32)).permute(2, 0, 1)
                         / 127.5 - 1 for s in stim.stimulus_ids])  # fmt: skip
        expected = two.blocks(two.conv(x)).flatten(1).numpy()
    np.testing.assert_allclose(by_hand, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(features["blocks.1"].rdm, rdm(expected, dtype="float64"),
                               atol=1e-5)  # fmt: skip


# --------------------------------------------------------------------------- patterns


def test_patterns_select_layers_and_modules_with_sub_modules():
    stim, _ = images()
    model = toy_model()
    config = ExtractionConfig(layers="block,fc,conv")
    features = extract_features(model, stim, REQUEST, config)
    assert features.layer_names == ["conv", "block", "fc"]  # call order, not pattern order
    # 'drop' repeats block.relu:2, which is not selected: kept
    features = extract_features(model, stim, REQUEST, ExtractionConfig(layers="drop,block.c*"))
    assert features.layer_names == ["block.conv1", "block.conv2", "drop"]
    assert features.info["duplicates"] == {}
    with pytest.raises(InputError, match=r"\['nope\*'\] match no layer.*block\.relu:2"):
        extract_features(model, stim, REQUEST, ExtractionConfig(layers="fc,nope*"))


# --------------------------------------------------------------------------- aliases


def test_affine_aliases_keep_a_batch_norm_once_only_when_asked():
    stim, imgs = images(n=8, size=6)
    model = toy_model(ConvNorm().eval())
    exact = extract_features(model, stim, REQUEST, ExtractionConfig())
    assert exact.layer_names == ["conv", "bn", "relu", "pool"]  # as the paper counts them
    affine = extract_features(model, stim, REQUEST, ExtractionConfig(aliases="affine"))
    assert affine.layer_names == ["conv", "relu", "pool"]
    assert affine.info["affine_aliases"] == {"bn": "conv"} and affine.info["aliases"] == "affine"
    # fewer than 4 probe images cannot tell an affine map from chance: nothing is aliased
    infos = probe_layers(model, imgs[:3], aliases="affine")
    assert not any(i.affine_of for i in infos)


def test_which_scores_an_affine_alias_leaves_unchanged():
    """A per-channel affine map (eval batch norm) leaves a ridge on standardised features
    unchanged, but not the correlation-distance RDM: the documented reason ``affine`` is not
    the default (RSA would score the two layers differently)."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, imgs = images(n=12, size=6)
    module = ConvNorm().eval()
    acts = layer_activations(toy_model(module), imgs, ["conv", "bn"])
    y = np.random.default_rng(0).standard_normal(len(imgs))
    pipeline = make_pipeline(StandardScaler(), Ridge(alpha=10.0))
    predictions = [
        cross_val_predict(pipeline, acts[name], y, cv=LeaveOneOut()) for name in ("conv", "bn")
    ]
    np.testing.assert_allclose(predictions[0], predictions[1], rtol=1e-4, atol=1e-5)
    rdms = [1 - np.corrcoef(acts[name]) for name in ("conv", "bn")]
    assert np.abs(rdms[0] - rdms[1]).max() > 0.05


def test_a_relu_is_no_affine_alias():
    """Mutation-style check of the detector: a map that zeroes some values of a feature is
    not affine, and a changed slope sign still is."""
    from brainrank.core.extraction.layers import _affine_image, _standardised

    x = torch.randn(8, 50, dtype=torch.float64)
    z, c = _standardised(x.float())
    assert _affine_image(*_standardised((-3 * x + 1).float()), z, c)
    assert not _affine_image(*_standardised(torch.relu(x).float()), z, c)
    assert not _affine_image(*_standardised((x**3).float()), z, c)


# --------------------------------------------------------------------------- keys


def plain_parts(facts, stimuli, config):
    """The feature-key parts as they were before the layer policy (written out here, as
    hashing.features_key made them)."""
    from brainrank._version import __version__
    from brainrank.core.extraction import EXTRACTION_VERSION
    from brainrank.core.projection import SCHEME

    return {
        "model": facts.identifier,
        "weights": facts.weights,
        "preprocess": facts.preprocess_id,
        "layers": list(facts.layers) if facts.layers is not None else None,
        "stimuli": stimuli.content_hash(),
        "projection_seed": config.projection_seed,
        "projection_scheme": SCHEME,
        "extraction": EXTRACTION_VERSION,
        "brainrank": __version__,
    }


def model_of(family: str) -> Model:
    meta = ModelMetadata(source="test", architecture="toy", family=family)
    return Model("test/toy", toy_module(), lambda x: x, "toy", meta)


def test_default_layers_keep_the_keys_of_before_and_other_choices_change_them():
    from brainrank.core.cache import feature_key
    from brainrank.core.hashing import ModelFacts, features_key, plan_hash

    stim, _ = images()
    facts = ModelFacts.of(model_of("convnet"))
    default = ExtractionConfig()
    assert features_key(facts, stim, default) == feature_key(plain_parts(facts, stim, default))
    args = ("test/toy", {}, "d", "s", "x", "m")
    plain = plain_parts(facts, stim, default)
    before = feature_key({"model": "test/toy", "options": {}, "dataset": "d", "stimuli": "s",
                          "data": "x", "metric": "m", "projection_seed": 0,
                          "projection_scheme": plain["projection_scheme"],
                          "extraction": plain["extraction"], "code": "c"})  # fmt: skip
    assert plan_hash(*args, default, code="c", family="convnet") == before
    keys = {features_key(facts, stim, default)}
    plans = {plan_hash(*args, default, code="c", family="convnet")}
    for config in (ExtractionConfig(layers="blocks"), ExtractionConfig(layers="fc,conv"),
                   ExtractionConfig(aliases="affine")):  # fmt: skip
        keys.add(features_key(facts, stim, config))
        plans.add(plan_hash(*args, config, code="c", family="convnet"))
    assert len(keys) == len(plans) == 4
    same = ExtractionConfig(layers="conv,fc")  # the same patterns in another order
    assert features_key(facts, stim, same) in keys
    # networks with attention: their default keys change once (q, k, v are new layers)
    vit = ModelFacts.of(model_of("transformer"))
    assert features_key(vit, stim, default) != feature_key(plain_parts(vit, stim, default))
    assert plan_hash(*args, default, code="c", family="transformer") != before


def test_the_grid_keeps_layer_choices_apart(tmp_path, tiny_plugin_path):
    """Through the grid: another --layers is another plan hash for the same combination,
    and the feature cache keeps both extractions."""
    from brainrank.core.cache import FeatureCache
    from brainrank.core.registry import Registry
    from brainrank.grid.plan import plan

    registry = Registry(plugin_files=[tiny_plugin_path])
    cache = FeatureCache(tmp_path / "features")
    hashes = {}
    for layers in ("all", "blocks", "conv,pool"):
        made = plan(["tiny/net"], ["tiny/data"], ["rsa"], ExtractionConfig(layers=layers),
                    registry=registry, cache=cache)  # fmt: skip
        hashes[layers] = made.combos[0].combo.plan_hash
        assert made.config["extraction"]["layers"] == layers
    assert len(set(hashes.values())) == 3


def test_a_network_of_one_leaf_module_is_one_layer_as_before():
    from brainrank.core.extraction import hooked_modules, leaf_modules

    linear = nn.Linear(3, 2)
    assert [h.name for h in hooked_modules(linear)] == [n for n, _ in leaf_modules(linear)]
    assert [h.name for h in hooked_modules(linear, layers="blocks")] == ["output"]
    module = toy_module()  # a network without attention: the leaves and the output, as before
    assert [(h.name, h.module) for h in hooked_modules(module)] == leaf_modules(module)


def test_the_feature_key_sees_attention_that_the_family_does_not_name():
    """A network with attention modules whose metadata says family 'other' (a user's
    object): its feature key carries the attention layers' version all the same."""
    from brainrank.core.cache import feature_key
    from brainrank.core.hashing import ModelFacts, features_key

    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(3, 4)
            self.attn = nn.MultiheadAttention(4, 2, batch_first=True)

        def forward(self, x):
            tokens = self.embed(x.flatten(2).transpose(1, 2))
            return self.attn(tokens, tokens, tokens, need_weights=False)[0]

    stim, _ = images()
    meta = ModelMetadata(source="test", architecture="tokens")  # family: the default
    facts = ModelFacts.of(Model("test/tokens", Tokens(), lambda x: x, "t", meta))
    assert facts.attention and facts.metadata.family not in ("transformer", "hybrid")
    default = ExtractionConfig()
    assert features_key(facts, stim, default) != feature_key(plain_parts(facts, stim, default))
    assert not ModelFacts.of(model_of("convnet")).attention
