"""Each model family reads the checkpoint layout its authors released.

Per family: a synthetic checkpoint is written here in the authors' layout (their key names,
prefixes and wrappers, random values), put where the plugin looks for it (the torch-hub
cache under the released file name, or given as weights=PATH), and the model built from it
must hold exactly those values, extract 4 tiny images with every expected kind of layer, give
features that differ from the random initialisation's, and carry the same metadata as its
listing. The layouts are written from the authors' code and documentation (cited per
writer), not from the plugins' readers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import brainrank
from brainrank.core.errors import WeightsUnavailableError
from brainrank.core.extraction import ExtractionConfig, extract_features
from brainrank.core.registry import Registry
from brainrank.core.scores import FeatureRequest

#: Per family, the kinds of module (class names) whose outputs must be among the extracted
#: layers of a model of that family; ``q``, ``k``, ``v``: attention's query, key and value
#: projections (brainrank.core.extraction.layers), with the attention output (timm's ``proj``,
#: a Linear; the output of an ``nn.MultiheadAttention`` itself).
EXPECTED_LAYER_KINDS: dict[str, set[str]] = {
    "resnet": {"Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d"},
    "vit": {"Conv2d", "LayerNorm", "Linear", "GELU", "q", "k", "v"},
    # ViTs on nn.MultiheadAttention (torchvision, open_clip)
    "vit-mha": {"Conv2d", "LayerNorm", "Linear", "GELU", "q", "k", "v", "MultiheadAttention"},
    # (an AlexNet's 6 x 6 adaptive pooling of a 6 x 6 map repeats its last max pool: a
    # duplicate layer, dropped)
    "alexnet-gn": {"Conv2d", "GroupNorm", "ReLU", "MaxPool2d", "Linear", "BatchNorm1d", "L2Norm"},
    "alexnet": {"Conv2d", "ReLU", "MaxPool2d", "Linear"},
    # a detector's backbone: the trunk (frozen batch norm) and the FPN's convolutions
    "detector": {"Conv2d", "FrozenBatchNorm2d", "ReLU", "MaxPool2d"},
    # a segmentation network: dilated trunk and its head (no global pooling)
    "segmenter": {"Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"},
    # MiDaS: the ResNeXt encoder and the RefineNet decoder (convolutions, upsampling)
    "midas": {"Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Interpolate"},
    # BiT ResNet-v2: weight-standardised convolutions, group norm (with its ReLU inside)
    "bit": {"StdConv2d", "ReLU", "MaxPool2d"},
}


_REGISTRY = Registry()


@pytest.fixture(scope="module")
def registry():
    return _REGISTRY


def random_values(state: dict[str, torch.Tensor], seed: int = 7) -> dict[str, torch.Tensor]:
    """Random tensors of the same names, shapes and dtypes (positive variances for norms)."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in state.items():
        if not value.is_floating_point():
            out[key] = value.clone()
        elif key.endswith("running_var"):
            out[key] = torch.rand(value.shape, generator=generator) + 0.5
        else:
            scale = float(value.float().std()) if value.numel() > 1 else 0.1
            out[key] = torch.randn(value.shape, generator=generator) * (scale or 0.05)
    return out


def layer_kinds(model, features) -> set[str]:
    """The class names of the modules the layers come from; ``q``, ``k``, ``v`` for an
    attention module's query, key and value projections."""
    modules = dict(model.module.named_modules())
    kinds = set()
    for layer in features:
        name = layer.name.split(":")[0]
        parent, _, last = name.rpartition(".")
        if name in modules:
            kinds.add(type(modules[name]).__name__)
        elif last in ("q", "k", "v") and parent in modules:
            kinds.add(last)
        else:
            kinds.add(name)
    return kinds


def check_hooks_change_nothing(model, stimuli) -> None:
    """The model's outputs with every extraction hook attached (q, k, v computed) are its
    outputs without them, bit for bit (on a copy whose all-zero weights, such as a random
    torchvision ViT's head, are filled, so that the outputs depend on the image)."""
    import copy
    import dataclasses

    from brainrank.core.extraction.layers import _forward, _Hooks, hooked_modules

    module = copy.deepcopy(model.module)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in module.parameters():
            if parameter.numel() > 1 and not parameter.any():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
    model = dataclasses.replace(model, module=module)
    x = torch.stack([model.preprocess(stimuli.image(s)) for s in stimuli.stimulus_ids])
    with torch.inference_mode():
        plain = model.module(x)
    captured, seen = [], []
    handle = model.module.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with _Hooks(hooked_modules(model.module)) as hooks:
            hooks.handler = lambda name, _module, _tensor: seen.append(name)
            _forward(model, x, hooks)
    finally:
        handle.remove()
    assert any(name.endswith(".v") for name in seen)
    assert plain.std(dim=0).max() > 0 and torch.equal(plain, captured[0])


def extract(model, stimuli):
    config = ExtractionConfig(batch_size=len(stimuli))
    return extract_features(model, stimuli, FeatureRequest(frozenset({16}), True), config)


def outputs(model, stimuli) -> list[torch.Tensor]:
    """The module's outputs (every tensor of a tuple or dict) on the stimuli."""
    x = torch.stack([model.preprocess(stimuli.image(s)) for s in stimuli.stimulus_ids])
    with torch.no_grad():
        out = model.module(x)
    if isinstance(out, torch.Tensor):
        return [out]
    values = out.values() if isinstance(out, dict) else out
    return [v for v in values if isinstance(v, torch.Tensor)]


def check_family(trained, random, stimuli, family: str | None, expected: dict[str, torch.Tensor]):
    """The trained model holds ``expected``; its layers include every expected kind
    (``family=None``: the kinds were checked on another model of the same architecture);
    its outputs differ from the random initialisation's; the listing's metadata is the built
    model's."""
    loaded = trained.module.state_dict()
    assert set(expected) <= set(loaded), sorted(set(expected) - set(loaded))[:5]
    for key, value in expected.items():
        torch.testing.assert_close(loaded[key], value.to(loaded[key].dtype), rtol=0, atol=0)
    if family is not None:
        features = extract(trained, stimuli)
        kinds = EXPECTED_LAYER_KINDS[family]
        assert kinds <= layer_kinds(trained, features), kinds - layer_kinds(trained, features)
        assert all(np.isfinite(layer.rdm).all() for layer in features)
        if family.startswith("vit"):
            check_hooks_change_nothing(trained, stimuli)
    a, b = outputs(trained, stimuli), outputs(random, stimuli)
    assert all(torch.isfinite(t).all() for t in a)
    assert not all(
        x.shape == y.shape and torch.allclose(x, y, atol=1e-4) for x, y in zip(a, b, strict=False)
    ), "trained and random outputs are the same"
    listed = _REGISTRY.get("model", trained.identifier).metadata
    built = trained.metadata
    for field in ("source", "architecture", "family", "task", "task_cluster", "training_method",
                  "training_data", "trained", "input_size", "imagenet_top1"):  # fmt: skip
        assert getattr(listed, field) == getattr(built, field), field


# --------------------------------------------------------------------------- VISSL


@pytest.fixture(scope="module")
def resnet50():
    """torchvision's ResNet-50 at random, and random trunk values (no fc) in its names."""
    random = brainrank.load_model("torchvision/resnet50:random")
    trunk = {k: v for k, v in random.module.state_dict().items() if not k.startswith("fc.")}
    return random_values(trunk), random


def test_vissl_checkpoints_in_their_three_layouts(torch_home, tiny_stimuli, resnet50):
    from brainrank.plugins.models.vissl import BY_TAG, vissl_trunk

    trunk, random = resnet50
    # VISSL training checkpoint (vissl/utils/checkpoint.py): classy_state_dict -> base_model
    # -> model -> {trunk, heads}, trunk keys prefixed "_feature_blocks."
    classy = {
        "phase_idx": 999,
        "iteration": 10,
        "classy_state_dict": {
            "base_model": {
                "model": {
                    "trunk": {f"_feature_blocks.{k}": v for k, v in trunk.items()},
                    "heads": {"0.clf.0.weight": torch.zeros(128, 2048)},
                },
                "meta": {},
            },
            "loss": {},
        },
    }
    torch.save(classy, torch_home / BY_TAG["simclr"].filename)
    assert BY_TAG["simclr"].filename.startswith("simclr_rn50_1000ep")  # not the shared name
    simclr = brainrank.load_model("torchvision/resnet50@simclr")
    check_family(simclr, random, tiny_stimuli, "resnet", trunk)
    assert simclr.metadata.task == "contrastive self-supervision"
    assert simclr.metadata.imagenet_top1 is None and simclr.metadata.extra["linear_probe_top1"]

    # the same reader, on the other two layouts (the build and load above are theirs too):
    # converted files (convert_classy_vision_to_vissl_resnet.py): {"model_state_dict": trunk}
    converted = {"model_state_dict": {f"_feature_blocks.{k}": v for k, v in trunk.items()}}
    assert vissl_trunk(converted).keys() == trunk.keys()
    # the SwAV repository's DeepCluster v2 files: flat, "module." prefixes, training heads
    flat = {f"module.{k}": v for k, v in trunk.items()}
    flat["module.projection_head.0.weight"] = torch.zeros(2048, 2048)
    flat["module.prototypes.weight"] = torch.zeros(3000, 128)
    read = vissl_trunk(flat)
    assert read.keys() == trunk.keys() and read["layer4.2.bn3.bias"] is trunk["layer4.2.bn3.bias"]


def test_vissl_errors_name_the_file_and_the_keys(torch_home, tmp_path):
    with pytest.raises(WeightsUnavailableError) as info:
        brainrank.load_model("torchvision/resnet50@barlowtwins")
    message = str(info.value)
    for piece in ("barlow_twins_32gpus_4node_imagenet1k_1000ep_resnet50.torch", str(torch_home),
                  "https://dl.fbaipublicfiles.com/vissl/model_zoo/barlow_twins/"):  # fmt: skip
        assert piece in message
    wrong = tmp_path / "wrong.torch"
    torch.save({"model_state_dict": {"_feature_blocks.conv1.weight": torch.zeros(64, 3, 7, 7),
                                     "_feature_blocks.extra.weight": torch.zeros(3)}}, wrong)  # fmt: skip
    with pytest.raises(WeightsUnavailableError) as info:
        brainrank.load_model("torchvision/resnet50@barlowtwins", weights=str(wrong))
    message = str(info.value)
    assert str(wrong) in message and "'extra.weight'" in message and "'bn1.weight'" in message


# --------------------------------------------------------------------------- DINO


def test_dino_vit(torch_home, tiny_stimuli):
    # hubconf.py: the ViTs load DINO's vision_transformer.py keys, strict (its ResNet-50, a
    # torchvision state dict without fc, is in the slow tests)
    import timm

    vit = timm.create_model("vit_small_patch16_224", num_classes=0)
    names = list(vit.state_dict())
    assert names[:3] == ["cls_token", "pos_embed", "patch_embed.proj.weight"]
    assert "blocks.11.attn.qkv.weight" in names and "norm.weight" in names and len(names) == 150
    state = random_values(vit.state_dict())
    torch.save(state, torch_home / "dino_deitsmall16_pretrain.pth")
    trained = brainrank.load_model("timm/vit_small_patch16_224@dino")
    random_vit = brainrank.load_model("timm/vit_small_patch16_224:random")
    check_family(trained, random_vit, tiny_stimuli, "vit", state)
    assert trained.metadata.family == "transformer" and trained.metadata.training_method == "dino"


# --------------------------------------------------------------------------- SLIP


def slip_checkpoint(visual: dict[str, torch.Tensor], width: int) -> dict:
    """SLIP's layout (main.py saves it; eval_zeroshot.py reads it): state_dict of the whole
    CLIP/SLIP model under DistributedDataParallel ('module.'), the training arguments as an
    argparse.Namespace, the epoch."""
    import argparse

    state = {f"module.visual.{k}": v for k, v in visual.items()}
    state["module.image_projection"] = torch.randn(width, 512)
    state["module.text_projection"] = torch.randn(512, 512)
    state["module.logit_scale"] = torch.tensor(2.6)
    state["module.token_embedding.weight"] = torch.randn(16, 512)
    state["module.transformer.resblocks.0.attn.in_proj_weight"] = torch.randn(1536, 512)
    state["module.image_mlp.layer1.weight"] = torch.randn(16, width)
    args = argparse.Namespace(model="SLIP_VITS16", epochs=25, ssl_scale=1.0)
    return {"epoch": 25, "state_dict": state, "best_acc1": 0.0, "args": args}


def test_slip_vit_small_with_its_12_heads(torch_home, tiny_stimuli):
    random = brainrank.load_model("slip/vit-s16:random")
    assert random.module.visual.blocks[0].attn.num_heads == 12  # SLIP's ViT-S, not timm's
    visual = random_values(random.module.visual.state_dict())
    checkpoint = slip_checkpoint(visual, 384)
    torch.save(checkpoint, torch_home / "slip_small_25ep.pt")
    trained = brainrank.load_model("slip/vit-s16@slip")
    expected = {f"visual.{k}": v for k, v in visual.items()}
    expected["image_projection.weight"] = checkpoint["state_dict"]["module.image_projection"].t()
    check_family(trained, random, tiny_stimuli, "vit", expected)
    assert (trained.metadata.task, trained.metadata.training_data) == ("language-image", "YFCC-15M")
    # the SimCLR objective has no image projection: the ViT's output is the last layer
    torch.save(checkpoint, torch_home / "simclr_small_25ep.pt")
    simclr = brainrank.load_model("slip/vit-s16@simclr")
    assert simclr.module.image_projection is None
    assert simclr.metadata.task == "contrastive self-supervision"
    torch.testing.assert_close(simclr.module.visual.state_dict()["norm.bias"], visual["norm.bias"])


# --------------------------------------------------------------------------- IPCL


def test_ipcl_alexnet_gn(torch_home, tiny_stimuli):
    from brainrank.plugins.models.ipcl import BY_TAG

    random = brainrank.load_model("ipcl/alexnet-gn:random")
    names = list(random.module.state_dict())
    assert names[:3] == ["conv_block_1.0.weight", "conv_block_1.1.weight", "conv_block_1.1.bias"]
    assert "fc6.1.running_var" in names and "fc8.0.weight" in names
    state = random_values(random.module.state_dict())
    # the release's .pth.tar: {"state_dict": ...} with DataParallel's "module." prefixes
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 100},
               torch_home / BY_TAG["ipcl-imagenet"].cache)  # fmt: skip
    trained = brainrank.load_model("ipcl/alexnet-gn@ipcl-imagenet")
    check_family(trained, random, tiny_stimuli, "alexnet-gn", state)
    norms = outputs(trained, tiny_stimuli)[0].norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))  # the L2-normalised embedding
    assert trained.metadata.training_method == "ipcl"
    places = brainrank.load_model("ipcl/alexnet-gn@ipcl-places", weights=str(
        torch_home / BY_TAG["ipcl-imagenet"].cache))  # fmt: skip
    assert places.preprocess.std == (0.2, 0.2, 0.2)  # the visual-diet set's normalisation
    assert places.metadata.training_data == "Places365"


# --------------------------------------------------------------------------- Places365


def test_places365_alexnet(torch_home, tiny_stimuli):
    import torchvision.models as tvm

    # CSAIL's files: the PyTorch ImageNet example's checkpoint, old serialisation; AlexNet
    # with only its features wrapped in DataParallel
    alexnet = tvm.alexnet(num_classes=365)
    state = random_values(alexnet.state_dict())
    wrapped = {k.replace("features.", "features.module."): v for k, v in state.items()}
    torch.save({"epoch": 90, "arch": "alexnet", "state_dict": wrapped, "best_prec1": 53.17},
               torch_home / "alexnet_places365.pth.tar", _use_new_zipfile_serialization=False)  # fmt: skip
    trained = brainrank.load_model("torchvision/alexnet@places365")
    random = brainrank.load_model("torchvision/alexnet:random")
    check_family(trained, random, tiny_stimuli, "alexnet", state)
    assert outputs(trained, tiny_stimuli)[0].shape == (4, 365)
    assert trained.metadata.training_data == "Places365"


@pytest.mark.slow
def test_resnet50_checkpoints_of_dino_and_places365(torch_home, tiny_stimuli, resnet50):
    trunk, random = resnet50
    torch.save(trunk, torch_home / "dino_resnet50_pretrain.pth")  # hubconf: no fc, flat
    dino = brainrank.load_model("torchvision/resnet50@dino")
    check_family(dino, random, tiny_stimuli, None, trunk)
    state = {**trunk, "fc.weight": torch.randn(365, 2048), "fc.bias": torch.randn(365)}
    torch.save({"epoch": 40, "arch": "resnet50", "best_prec1": 54.74,
                "state_dict": {f"module.{k}": v for k, v in state.items()}},
               torch_home / "resnet50_places365.pth.tar", _use_new_zipfile_serialization=False)  # fmt: skip
    places = brainrank.load_model("torchvision/resnet50@places365")
    check_family(places, random, tiny_stimuli, None, state)


# --------------------------------------------------------------------------- detection


@pytest.mark.slow  # a whole Faster R-CNN (41 M parameters) is built, saved and read three times
def test_torchvision_detector_backbone(torch_home, tiny_stimuli):
    import torchvision.models as tvm

    # torchvision's COCO file: the whole detector's state (frozen batch norm: no
    # num_batches_tracked), keys backbone.body.*, backbone.fpn.*, rpn.*, roi_heads.*
    network = tvm.get_model("fasterrcnn_resnet50_fpn", weights=None, weights_backbone=None)
    state = {k: v for k, v in network.state_dict().items() if "num_batches_tracked" not in k}
    state = random_values(state)
    assert any(k.startswith("roi_heads.") for k in state)
    torch.save(state, torch_home / "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth")
    trained = brainrank.load_model("torchvision/fasterrcnn_resnet50_fpn")
    random = brainrank.load_model("torchvision/fasterrcnn_resnet50_fpn:random")
    backbone = {k: v for k, v in state.items() if k.startswith("backbone.")}
    check_family(trained, random, tiny_stimuli, "detector", backbone)
    assert set(trained.module.state_dict()) == set(backbone)  # the heads are not kept
    assert trained.metadata.task == "detection" and trained.metadata.training_data == "COCO"


@pytest.mark.slow
def test_torchvision_segmentation_network(torch_home, tiny_stimuli):
    import torchvision.models as tvm

    # torchvision's COCO-with-VOC-labels file: the network with its auxiliary head
    network = tvm.get_model("fcn_resnet50", weights=None, weights_backbone=None, aux_loss=True)
    state = random_values(network.state_dict())
    assert any(k.startswith("aux_classifier.") for k in state)
    torch.save(state, torch_home / "fcn_resnet50_coco-1167a1af.pth")
    trained = brainrank.load_model("torchvision/fcn_resnet50")
    random = brainrank.load_model("torchvision/fcn_resnet50:random")
    kept = {f"network.{k}": v for k, v in state.items() if not k.startswith("aux_classifier.")}
    check_family(trained, random, tiny_stimuli, "segmenter", kept)
    assert outputs(trained, tiny_stimuli)[0].shape == (4, 21, 224, 224)
    assert trained.metadata.task == "segmentation"


def detectron2_r50_fpn(rng) -> dict[str, np.ndarray]:
    """A Detectron2 R-50-FPN model's arrays under Detectron2's names (build_resnet_backbone,
    BottleneckBlock, FPN of detectron2/modeling/backbone), plus a few head tensors."""

    def norm(prefix, c):
        return {f"{prefix}.norm.weight": rng.standard_normal(c), f"{prefix}.norm.bias":
                rng.standard_normal(c), f"{prefix}.norm.running_mean": rng.standard_normal(c),
                f"{prefix}.norm.running_var": rng.random(c) + 0.5}  # fmt: skip

    arrays: dict[str, np.ndarray] = {}
    root = "backbone.bottom_up"
    arrays[f"{root}.stem.conv1.weight"] = rng.standard_normal((64, 3, 7, 7)) * 0.05
    arrays.update(norm(f"{root}.stem.conv1", 64))
    cin = 64
    for stage, (blocks, mid) in enumerate([(3, 64), (4, 128), (6, 256), (3, 512)], start=2):
        out = mid * 4
        for b in range(blocks):
            p = f"{root}.res{stage}.{b}"
            for i, shape in enumerate([(mid, cin, 1, 1), (mid, mid, 3, 3), (out, mid, 1, 1)], 1):
                arrays[f"{p}.conv{i}.weight"] = rng.standard_normal(shape) * 0.05
                arrays.update(norm(f"{p}.conv{i}", shape[0]))
            if b == 0:
                arrays[f"{p}.shortcut.weight"] = rng.standard_normal((out, cin, 1, 1)) * 0.05
                arrays.update(norm(f"{p}.shortcut", out))
            cin = out
        arrays[f"backbone.fpn_lateral{stage}.weight"] = rng.standard_normal((256, out, 1, 1))
        arrays[f"backbone.fpn_lateral{stage}.bias"] = rng.standard_normal(256)
        arrays[f"backbone.fpn_output{stage}.weight"] = rng.standard_normal((256, 256, 3, 3)) * 0.02
        arrays[f"backbone.fpn_output{stage}.bias"] = rng.standard_normal(256)
    arrays["proposal_generator.rpn_head.conv.weight"] = rng.standard_normal((256, 256, 3, 3))
    arrays["roi_heads.box_predictor.cls_score.weight"] = rng.standard_normal((81, 1024))
    return {k: v.astype(np.float32) for k, v in arrays.items()}


def test_detectron2_pkl_converted_to_torchvision(torch_home, tiny_stimuli):
    import pickle

    from brainrank.plugins.models.detection import D2_BY_NAME

    arrays = detectron2_r50_fpn(np.random.default_rng(0))
    config = D2_BY_NAME["faster_rcnn_r_50_fpn_3x"]
    with open(torch_home / config.filename, "wb") as fh:  # the model zoo's pickle layout
        pickle.dump({"model": arrays, "__author__": "Detectron2 Model Zoo"}, fh)
    trained = brainrank.load_model("detectron2/faster_rcnn_r_50_fpn_3x")
    random = brainrank.load_model("detectron2/faster_rcnn_r_50_fpn_3x:random")
    pairs = {  # Detectron2 name -> torchvision module name
        "backbone.bottom_up.stem.conv1.weight": "body.conv1.weight",
        "backbone.bottom_up.stem.conv1.norm.running_var": "body.bn1.running_var",
        "backbone.bottom_up.res2.0.shortcut.norm.bias": "body.layer1.0.downsample.1.bias",
        "backbone.bottom_up.res3.3.conv2.weight": "body.layer2.3.conv2.weight",
        "backbone.bottom_up.res5.2.conv3.norm.weight": "body.layer4.2.bn3.weight",
        "backbone.fpn_lateral2.weight": "fpn.inner_blocks.0.0.weight",
        "backbone.fpn_output5.bias": "fpn.layer_blocks.3.0.bias",
    }
    expected = {tv: torch.from_numpy(arrays[d2]) for d2, tv in pairs.items()}
    check_family(trained, random, tiny_stimuli, None, expected)  # kinds: the slow test
    n_backbone = sum(k.startswith("backbone.") for k in arrays)
    assert len(trained.module.state_dict()) == n_backbone  # every backbone tensor, no head
    # MSRA ResNets stride on the first 1 x 1 convolution of a stage
    layer2 = trained.module.body.layer2[0]
    assert layer2.conv1.stride == (2, 2) and layer2.conv2.stride == (1, 1)
    assert trained.preprocess.bgr and trained.preprocess.std == pytest.approx((1 / 255,) * 3)
    # a pickle that names anything but arrays and containers is refused, not run
    evil = torch_home / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(WeightsUnavailableError, match=r"os\.system"):
        brainrank.load_model("detectron2/faster_rcnn_r_50_fpn_3x", weights=str(evil))


# --------------------------------------------------------------------------- MiDaS


def midas_release_state(module) -> dict[str, torch.Tensor]:
    """Random values under MiDaS v2.1's names (midas/midas_net.py, midas/blocks.py): the
    encoder as pretrained.layer1 (stem + stage 1, Sequential indices 0, 1 and 4) to
    layer4, the decoder as scratch.*."""
    state = random_values(module.state_dict())
    names = list(state)
    assert names[0] == "pretrained.layer1.0.weight" and "pretrained.layer1.1.running_var" in state
    assert "pretrained.layer1.4.0.conv1.weight" in state
    assert {"scratch.layer4_rn.weight", "scratch.refinenet1.resConfUnit2.conv2.bias",
            "scratch.output_conv.4.weight"} <= set(state)  # fmt: skip
    return state


def test_midas_decoder_at_a_small_width(tiny_stimuli):
    """The MiDaS network's structure, names and layer kinds with a small encoder (the real
    one, a ResNeXt-101 at 384 px, is built in the slow tests)."""
    from brainrank.core.specs import Model, ModelMetadata
    from brainrank.plugins.models._common import ImagePreprocess, load_state
    from brainrank.plugins.models.midas import midas_net

    torch.manual_seed(0)
    small = midas_net("resnet18", features=32)
    state = midas_release_state(small)
    fresh = midas_net("resnet18", features=32)
    load_state(fresh, {"model": state, "optimizer": {}}, "midas/test", "checkpoint.pt")
    prep = ImagePreprocess(size=64, resize=64)
    meta = ModelMetadata(source="midas", architecture="small", family="convnet", trained=False)
    model = Model("midas/test", fresh.eval(), prep, prep.describe(), meta)
    depth = outputs(model, tiny_stimuli)[0]
    assert depth.shape == (4, 64, 64) and (depth >= 0).all()  # a non-negative map per pixel
    features = extract(model, tiny_stimuli)
    assert EXPECTED_LAYER_KINDS["midas"] <= layer_kinds(model, features)
    random = Model("midas/random", small.eval(), prep, prep.describe(), meta)
    assert not torch.allclose(depth, outputs(random, tiny_stimuli)[0])


@pytest.mark.slow
def test_midas_v21(torch_home, tiny_stimuli):
    random = brainrank.load_model("midas/midas-v21:random")
    state = midas_release_state(random.module)
    torch.save({"model": state, "optimizer": {}}, torch_home / "midas_v21_384.pt")
    trained = brainrank.load_model("midas/midas-v21")
    check_family(trained, random, tiny_stimuli, None, state)  # kinds: the small test's
    assert outputs(trained, tiny_stimuli)[0].shape == (4, 384, 384)
    assert trained.metadata.task == "depth"


# --------------------------------------------------------------------------- BiT


def bit_arrays(module, rng) -> dict[str, np.ndarray]:
    """An expert's variables under BiT's names (big_transfer bit_pytorch/models.py
    load_from), kernels in TensorFlow's HWIO order, with the head the experts lack."""
    state = module.state_dict()

    def hwio(key):
        shape = tuple(state[key].shape)
        return rng.standard_normal((shape[2], shape[3], shape[1], shape[0])).astype(np.float32)

    arrays = {"resnet/root_block/standardized_conv2d/kernel": hwio("stem.conv.weight")}
    for stage, blocks in enumerate((3, 4, 6, 3)):
        for unit in range(blocks):
            p = f"resnet/block{stage + 1}/unit{unit + 1:02d}"
            t = f"stages.{stage}.blocks.{unit}"
            for letter, i in (("a", 1), ("b", 2), ("c", 3)):
                width = state[f"{t}.norm{i}.weight"].shape[0]
                arrays[f"{p}/{letter}/group_norm/gamma"] = rng.random(width).astype(np.float32)
                arrays[f"{p}/{letter}/group_norm/beta"] = rng.standard_normal(width).astype(
                    np.float32
                )
                arrays[f"{p}/{letter}/standardized_conv2d/kernel"] = hwio(f"{t}.conv{i}.weight")
            if unit == 0:
                arrays[f"{p}/a/proj/standardized_conv2d/kernel"] = hwio(
                    f"{t}.downsample.conv.weight"
                )
    arrays["resnet/group_norm/gamma"] = rng.random(2048).astype(np.float32)
    arrays["resnet/group_norm/beta"] = rng.standard_normal(2048).astype(np.float32)
    return arrays


def test_bit_expert_from_a_bit_npz(torch_home, tiny_stimuli):
    random = brainrank.load_model("bit/resnetv2_50x1_bit:random")
    arrays = bit_arrays(random.module, np.random.default_rng(0))
    np.savez(torch_home / "bit_m-r50x1-expert-animal.npz", **arrays)
    trained = brainrank.load_model("timm/resnetv2_50x1_bit@expert-animal")
    expected = {
        "stem.conv.weight": torch.from_numpy(
            arrays["resnet/root_block/standardized_conv2d/kernel"].transpose(3, 2, 0, 1).copy()
        ),
        "stages.1.blocks.0.downsample.conv.weight": torch.from_numpy(
            arrays["resnet/block2/unit01/a/proj/standardized_conv2d/kernel"]
            .transpose(3, 2, 0, 1)
            .copy()
        ),
        "stages.3.blocks.2.norm3.bias": torch.from_numpy(
            arrays["resnet/block4/unit03/c/group_norm/beta"]
        ),
        "norm.weight": torch.from_numpy(arrays["resnet/group_norm/gamma"]),
    }
    check_family(trained, random, tiny_stimuli, None, expected)  # kinds: the slow test
    assert trained.metadata.extra["expert_subtree"] == "animal"
    with pytest.raises(WeightsUnavailableError) as info:  # no file: says how to make one
        brainrank.load_model("timm/resnetv2_50x1_bit@expert-bird")
    message = str(info.value)
    assert "bit_m-r50x1-expert-bird.npz" in message and "tfhub.dev" in message
    assert "SavedModel" in message


@pytest.mark.slow
@pytest.mark.parametrize(
    ("identifier", "family"),
    [("detectron2/faster_rcnn_r_50_fpn_3x:random", "detector"),
     ("bit/resnetv2_50x1_bit:random", "bit")],
)  # fmt: skip
def test_layer_kinds_of_the_converted_families(identifier, family, tiny_stimuli):
    """The layer kinds of families whose fast test checks the conversion only (the kinds
    belong to the architecture: its random initialisation has them)."""
    model = brainrank.load_model(identifier)
    kinds = layer_kinds(model, extract(model, tiny_stimuli))
    assert EXPECTED_LAYER_KINDS[family] <= kinds, EXPECTED_LAYER_KINDS[family] - kinds


@pytest.mark.slow
@pytest.mark.parametrize(
    "identifier",
    ["ipcl/alexnet-gn:random", "slip/vit-s16:random", "bit/resnetv2_50x1_bit:random",
     "detectron2/faster_rcnn_r_50_c4_3x:random"],
)  # fmt: skip
def test_new_families_pass_the_plugin_checks(registry, identifier):
    import brainrank.testing as bt

    assert bt.check_model(registry.get("model", identifier))


def test_every_checkpoint_family_is_listed_with_its_file(registry):
    from brainrank.plugins.models import dino, vissl

    releases = [*vissl.RELEASES, *dino.RELEASES]
    assert len(releases) >= 20
    names = [getattr(r, "filename", None) or r.url.rsplit("/", 1)[1] for r in releases]
    assert len(set(names)) == len(names)  # no two checkpoints share a cache file
    for r in vissl.RELEASES:
        spec = registry.get("model", f"torchvision/resnet50@{r.tag}")
        assert spec.metadata.training_data == "ImageNet-1k" and spec.metadata.trained
        assert spec.metadata.task.endswith("self-supervision")


@pytest.mark.slow
@pytest.mark.parametrize("identifier", ["torchvision/vit_b_16:random", "openclip/vit-b-32:random"])
def test_vits_on_multihead_attention_have_q_k_v_layers(identifier, tiny_stimuli):
    """torchvision's and open_clip's ViTs (nn.MultiheadAttention) through their plugins:
    q, k, v and the attention output are layers, and the hooks change no output."""
    model = brainrank.load_model(identifier)
    kinds = layer_kinds(model, extract(model, tiny_stimuli))
    assert EXPECTED_LAYER_KINDS["vit-mha"] <= kinds, EXPECTED_LAYER_KINDS["vit-mha"] - kinds
    check_hooks_change_nothing(model, tiny_stimuli)
