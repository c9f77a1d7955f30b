"""DINO self-supervised networks (Caron et al. 2021), as checkpoints of torchvision / timm
architectures.

- ``torchvision/resnet50@dino``: torchvision's ResNet-50 without its classifier, with
  ``dino_resnet50_pretrain.pth``;
- ``timm/vit_small_patch16_224@dino``, ``timm/vit_small_patch8_224@dino``,
  ``timm/vit_base_patch16_224@dino``, ``timm/vit_base_patch8_224@dino``: timm's ViT-S/16,
  S/8, B/16, B/8 (``num_classes=0``: no head; DINO's backbones have none) with
  ``dino_deitsmall16_pretrain.pth``, ``dino_deitsmall8_pretrain.pth``,
  ``dino_vitbase16_pretrain.pth``, ``dino_vitbase8_pretrain.pth``.

These are the files DINO's ``hubconf.py`` loads (https://github.com/facebookresearch/dino):
flat state dicts of the backbone, the ResNet's with torchvision's key names and no ``fc``, the
ViTs' with the key names of DINO's ``vision_transformer.py`` (``cls_token``, ``pos_embed``,
``patch_embed.proj``, ``blocks.N.attn.qkv``...), which are timm's. They load strictly into
these architectures. All were trained on ImageNet-1k without labels (task non-contrastive
self-supervision, method dino); the linear-probe top-1 DINO reports is in
``extra["linear_probe_top1"]``. Preprocessing: DINO's evaluation transform (shorter side to
256, bicubic; centre crop 224; ImageNet mean and std).

Weights: ``weights=PATH``, else ``$TORCH_HOME/hub/checkpoints/<file name>`` (the name above).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from brainrank.plugin import (
    RANDOM_SEED,
    Model,
    ModelMetadata,
    ModelSet,
    ModelSpec,
    SetMember,
    hookimpl,
    seeded,
)
from brainrank.plugins.models._common import (
    ImagePreprocess,
    hub_weights_missing,
    load_state,
    load_torch_hub_weights,
    with_loaded_facts,
)

BASE_URL = "https://dl.fbaipublicfiles.com/dino/"


@dataclass(frozen=True)
class Release:
    identifier: str
    source: str  # "torchvision" or "timm": where the architecture comes from
    arch: str
    name: str  # DINO's file stem
    linear_top1: float
    description: str

    @property
    def url(self) -> str:
        return f"{BASE_URL}{self.name}/{self.name}.pth"


RELEASES: tuple[Release, ...] = (
    Release("torchvision/resnet50@dino", "torchvision", "resnet50", "dino_resnet50_pretrain",
            75.3, "ResNet-50"),
    Release("timm/vit_small_patch16_224@dino", "timm", "vit_small_patch16_224",
            "dino_deitsmall16_pretrain", 77.0, "ViT-S/16"),
    Release("timm/vit_small_patch8_224@dino", "timm", "vit_small_patch8_224",
            "dino_deitsmall8_pretrain", 79.7, "ViT-S/8"),
    Release("timm/vit_base_patch16_224@dino", "timm", "vit_base_patch16_224",
            "dino_vitbase16_pretrain", 78.2, "ViT-B/16"),
    Release("timm/vit_base_patch8_224@dino", "timm", "vit_base_patch8_224",
            "dino_vitbase8_pretrain", 80.1, "ViT-B/8"),
)  # fmt: skip
BY_ID = {r.identifier: r for r in RELEASES}
#: DINO hub models brainrank does not build, with the reason
UNSUPPORTED: dict[str, str] = {
    name: "DINO's XCiT backbones: no reader for their checkpoints here (timm's XCiT key names "
    "were not checked against DINO's files)"
    for name in (
        "dino_xcit_small_12_p16",
        "dino_xcit_small_12_p8",
        "dino_xcit_medium_24_p16",
        "dino_xcit_medium_24_p8",
    )
}


def _metadata(release: Release) -> ModelMetadata:
    return ModelMetadata(
        source="dino",
        architecture=release.arch,
        family="convnet" if release.source == "torchvision" else "transformer",
        task="non-contrastive self-supervision",
        training_method="dino",
        training_data="ImageNet-1k",
        trained=True,
        input_size=224,
        description=f"DINO {release.description} backbone (ImageNet-1k, no labels), "
        f"{release.source} architecture",
        extra={
            "checkpoint": {
                "of": release.identifier.split("@")[0],
                "tag": "dino",
                "url": release.url,
            },
            "linear_probe_top1": release.linear_top1,
            "linear_probe_source": "DINO README (linear evaluation on ImageNet-1k)",
        },
    )


def preprocess() -> ImagePreprocess:
    return ImagePreprocess(size=224, resize=256, interpolation="bicubic")


def architecture(release: Release):
    """The network DINO's file fits: no classifier head."""
    import torch

    with seeded(RANDOM_SEED):
        if release.source == "torchvision":
            import torchvision.models as tvm

            module = tvm.resnet50(weights=None)
            module.fc = torch.nn.Identity()
        else:
            import timm

            module = timm.create_model(release.arch, pretrained=False, num_classes=0)
    return module


def build(identifier: str, weights: str | Path | None = None) -> Model:
    release = BY_ID[identifier]
    module = architecture(release)
    checkpoint, path = load_torch_hub_weights(identifier, release.url, weights)
    load_state(module, checkpoint, identifier, path)
    module.eval()
    prep = preprocess()
    return Model(
        identifier=identifier,
        module=module,
        preprocess=prep,
        preprocess_id=prep.describe(),
        metadata=with_loaded_facts(_metadata(release), module, 224),
    )


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            identifier=r.identifier,
            factory=partial(build, r.identifier),
            metadata=_metadata(r),
            weights_missing=partial(hub_weights_missing, r.identifier, r.url),
        )
        for r in RELEASES
    ]


@hookimpl
def brainrank_model_sets() -> list[ModelSet]:
    """``@dino``: the DINO hub models (hubconf.py), with those brainrank does not build."""
    names = ("dino_resnet50", "dino_vits16", "dino_vits8", "dino_vitb16", "dino_vitb8")
    members = [SetMember(n, r.identifier) for n, r in zip(names, RELEASES, strict=True)]
    members += [SetMember(name, None, reason) for name, reason in UNSUPPORTED.items()]
    return [
        ModelSet(
            name="dino",
            title="DINO (facebookresearch/dino hubconf.py)",
            citation="Caron et al. (2021), Emerging properties in self-supervised vision "
            "transformers, ICCV",
            members=tuple(members),
        )
    ]
