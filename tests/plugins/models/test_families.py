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
#: layers of a model of that family. The layer-policy work (q, k, v and the attention output
#: of every ViT as layers) extends the ViT entries.
EXPECTED_LAYER_KINDS: dict[str, set[str]] = {
    "resnet": {"Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d"},
    "vit": {"Conv2d", "LayerNorm", "Linear", "GELU"},
}


@pytest.fixture(scope="module")
def registry():
    return Registry()


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
    modules = dict(model.module.named_modules())
    kinds = set()
    for layer in features:
        name = layer.name.split(":")[0]
        kinds.add(type(modules[name]).__name__ if name in modules else name)
    return kinds


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
    a, b = outputs(trained, stimuli), outputs(random, stimuli)
    assert all(torch.isfinite(t).all() for t in a)
    assert not all(
        x.shape == y.shape and torch.allclose(x, y, atol=1e-4) for x, y in zip(a, b, strict=False)
    ), "trained and random outputs are the same"
    listed = Registry().get("model", trained.identifier).metadata
    built = trained.metadata
    for field in ("source", "architecture", "family", "task", "task_cluster", "training_method",
                  "training_data", "trained", "input_size", "imagenet_top1"):  # fmt: skip
        assert getattr(listed, field) == getattr(built, field), field


# --------------------------------------------------------------------------- VISSL


def resnet50_trunk() -> tuple[dict[str, torch.Tensor], object]:
    random = brainrank.load_model("torchvision/resnet50:random")
    trunk = {k: v for k, v in random.module.state_dict().items() if not k.startswith("fc.")}
    return random_values(trunk), random


def test_vissl_checkpoints_in_their_three_layouts(torch_home, tiny_stimuli):
    from brainrank.plugins.models.vissl import BY_TAG

    trunk, random = resnet50_trunk()
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

    # converted files (convert_classy_vision_to_vissl_resnet.py): {"model_state_dict": trunk}
    torch.save({"model_state_dict": {f"_feature_blocks.{k}": v for k, v in trunk.items()}},
               torch_home / "converted_vissl_rn50_rotnet_16kclusters_in1k_ep105.torch")  # fmt: skip
    clusterfit = brainrank.load_model("torchvision/resnet50@clusterfit")
    check_family(clusterfit, random, tiny_stimuli, None, trunk)
    # the SwAV repository's DeepCluster v2 files: flat, "module." prefixes, training heads
    flat = {f"module.{k}": v for k, v in trunk.items()}
    flat["module.projection_head.0.weight"] = torch.zeros(2048, 2048)
    flat["module.prototypes.weight"] = torch.zeros(3000, 128)
    path = torch_home / "dc.pth.tar"
    torch.save(flat, path)
    dc = brainrank.load_model("torchvision/resnet50@deepclusterv2", weights=str(path))
    check_family(dc, random, tiny_stimuli, None, trunk)
    assert dc.metadata.training_method == "deepclusterv2"


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


def test_dino_resnet50_and_vit(torch_home, tiny_stimuli):
    # hubconf.py: dino_resnet50 loads a torchvision state dict without fc (strict=False);
    # the ViTs load DINO's vision_transformer.py keys, strict
    trunk, random = resnet50_trunk()
    torch.save(trunk, torch_home / "dino_resnet50_pretrain.pth")
    resnet = brainrank.load_model("torchvision/resnet50@dino")
    check_family(resnet, random, tiny_stimuli, None, trunk)  # layer kinds: as VISSL's

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
