"""timm models: a curated list, and any timm name on demand.

``timm/<name>`` is the model ``timm.create_model(name, pretrained=True)`` gives (``name``
may carry a pretrained tag, e.g. ``resnet50.a1_in1k``); ``timm/<name>:random`` is the same
architecture with timm's initialisation under seed 0. Preprocessing follows the model's
timm data config (input size, interpolation, crop fraction, mean and std).

Trained weights come from ``weights=PATH``, else from the Hugging Face cache
(``$HF_HOME/hub``, repository ``timm/<name>.<tag>``, file ``model.safetensors``); they are
downloaded only when missing, allowed (no ``BRAINRANK_OFFLINE``) and the hub is reachable.

The curated list covers the seed papers' families: classic and modern convnets,
EfficientNets, normaliser-free nets (NF-ResNet, NFNet), Inception-ResNet-v2, vision
transformers (ViT, DeiT, Swin, BEiT, CaiT, LeViT, PiT, XCiT) and MLP models (MLP-Mixer,
ResMLP, gMLP).
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

from brainrank.plugin import (
    RANDOM_SEED,
    Model,
    ModelMetadata,
    ModelSpec,
    WeightsUnavailableError,
    hookimpl,
    seeded,
    split_variant,
)
from brainrank.plugins.models._common import (
    ImagePreprocess,
    explicit_weights,
    hf_weights_file,
    with_loaded_facts,
)

#: Curated timm models (listed): name -> family. Any other timm name resolves on demand.
CURATED: dict[str, str] = {
    # convnets
    "resnet18": "convnet",
    "resnet50": "convnet",
    "resnet101": "convnet",
    "resnet152": "convnet",
    "resnext50_32x4d": "convnet",
    "wide_resnet50_2": "convnet",
    "densenet121": "convnet",
    "vgg16": "convnet",
    "inception_v3": "convnet",
    "inception_v4": "convnet",
    "inception_resnet_v2": "convnet",
    "xception65": "convnet",
    "mobilenetv3_large_100": "convnet",
    "regnety_040": "convnet",
    "convnext_tiny": "convnet",
    # EfficientNets
    "efficientnet_b0": "convnet",
    "efficientnet_b3": "convnet",
    "tf_efficientnet_b7": "convnet",
    # normaliser-free networks
    "nf_resnet50": "convnet",
    "dm_nfnet_f0": "convnet",
    "eca_nfnet_l0": "convnet",
    # transformers
    "vit_tiny_patch16_224": "transformer",
    "vit_small_patch16_224": "transformer",
    "vit_base_patch16_224": "transformer",
    "vit_base_patch32_224": "transformer",
    "vit_large_patch16_224": "transformer",
    "deit_tiny_patch16_224": "transformer",
    "deit_small_patch16_224": "transformer",
    "deit_base_patch16_224": "transformer",
    "swin_tiny_patch4_window7_224": "transformer",
    "swin_small_patch4_window7_224": "transformer",
    "swin_base_patch4_window7_224": "transformer",
    "beit_base_patch16_224": "transformer",
    "cait_xxs24_224": "transformer",
    "levit_128": "transformer",
    "pit_ti_224": "transformer",
    "xcit_tiny_12_p16_224": "transformer",
    # MLP-Mixers and relatives
    "mixer_b16_224": "mlp-mixer",
    "mixer_l16_224": "mlp-mixer",
    "resmlp_12_224": "mlp-mixer",
    "resmlp_24_224": "mlp-mixer",
    "resmlp_36_224": "mlp-mixer",
    "gmlp_s16_224": "mlp-mixer",
    "gmixer_24_224": "mlp-mixer",
}

_MIXERS = ("mixer", "resmlp", "gmlp", "gmixer")
_TRANSFORMERS = (
    "vit", "deit", "swin", "beit", "cait", "xcit", "levit", "pit", "eva", "coat", "crossvit",
    "tnt", "twins", "convit", "mvit", "maxvit", "flexivit", "samvit", "hiera",
)  # fmt: skip


def family_of(name: str) -> str:
    base = name.split(".")[0]
    if base in CURATED:
        return CURATED[base]
    if base.startswith(_MIXERS):
        return "mlp-mixer"
    if base.startswith(_TRANSFORMERS):
        return "transformer"
    return "convnet"


#: Pieces of timm pretrained tags -> the training data they stand for.
_TAG_DATA = (
    ("in22k_ft_in22k_in1k", "ImageNet-22k, fine-tuned on ImageNet-22k then ImageNet-1k"),
    ("in21k_ft_in1k", "ImageNet-21k, fine-tuned on ImageNet-1k"),
    ("in22k_ft_in1k", "ImageNet-22k, fine-tuned on ImageNet-1k"),
    ("in12k_ft_in1k", "ImageNet-12k, fine-tuned on ImageNet-1k"),
    ("jft", "JFT-300M (noisy student), fine-tuned on ImageNet-1k"),
    ("laion", "LAION"),
    ("in21k", "ImageNet-21k"),
    ("in22k", "ImageNet-22k"),
    ("in1k", "ImageNet-1k"),
)


def training_data_of(tag: str | None) -> str:
    """Training data named by a timm pretrained tag (``a1_in1k`` -> ImageNet-1k)."""
    if not tag:
        return "ImageNet-1k (timm default weights)"
    for piece, data in _TAG_DATA:
        if piece in tag:
            return f"{data} ({tag})"
    return f"timm weights {tag}"


def _metadata(name: str, trained: bool, tag: str | None = None) -> ModelMetadata:
    tag = tag or (name.split(".", 1)[1] if "." in name else None)
    return ModelMetadata(
        source="timm",
        architecture=name.split(".")[0],
        family=family_of(name),
        task="object classification" if trained else None,
        training_data=training_data_of(tag) if trained else None,
        trained=trained,
        description=f"timm {name}, "
        + ("pretrained weights" if trained else f"random initialisation (seed {RANDOM_SEED})"),
    )


def _cfg_get(cfg, key: str):
    """A field of a timm pretrained config (a dict on models, a dataclass elsewhere)."""
    if isinstance(cfg, dict):
        return cfg.get(key)
    return getattr(cfg, key, None)


def _weights_file(name: str, cfg) -> Path:
    repo = _cfg_get(cfg, "hf_hub_id")
    if not repo:
        raise WeightsUnavailableError(
            f"timm model {name!r} has no published weights on the Hugging Face hub; use "
            f"'timm/{name}:random' or pass weights=PATH (--weights MODEL=PATH)."
        )
    return hf_weights_file(f"timm/{name}", repo, ("model.safetensors", "pytorch_model.bin"))


def build(name: str, trained: bool, weights: str | Path | None = None) -> Model:
    import timm

    if not timm.is_model(name):
        raise WeightsUnavailableError(f"timm has no model named {name!r}.")
    with seeded(RANDOM_SEED):
        module = timm.create_model(name, pretrained=False)
    if trained:
        identifier = f"timm/{name}"
        if weights is not None:
            path = explicit_weights(identifier, weights)
        else:
            path = _weights_file(name, module.pretrained_cfg)
        try:
            timm.models.load_checkpoint(module, str(path))
        except (RuntimeError, KeyError, ValueError, OSError) as exc:
            raise WeightsUnavailableError(
                f"the weights file {path} does not fit {identifier!r} ({exc})."
            ) from exc
    elif weights is not None:
        raise ValueError(f"timm/{name}:random takes no weights file.")
    module.eval()
    cfg = timm.data.resolve_model_data_config(module)
    size = int(cfg["input_size"][-1])
    preprocess = ImagePreprocess(
        size=size,
        resize=math.floor(size / cfg.get("crop_pct", 1.0)),
        mean=cfg["mean"],
        std=cfg["std"],
        interpolation=cfg.get("interpolation", "bilinear"),
    )
    return Model(
        identifier=f"timm/{name}" + ("" if trained else ":random"),
        module=module,
        preprocess=preprocess,
        preprocess_id=preprocess.describe(),
        metadata=with_loaded_facts(
            _metadata(name, trained, _cfg_get(module.pretrained_cfg, "tag") or None),
            module,
            size,
        ),
    )


def _spec(name: str, trained: bool) -> ModelSpec:
    return ModelSpec(
        identifier=f"timm/{name}" + ("" if trained else ":random"),
        factory=partial(build, name, trained),
        metadata=_metadata(name, trained),
    )


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    return [_spec(name, trained) for name in CURATED for trained in (True, False)]


@hookimpl
def brainrank_resolve_model(identifier: str) -> ModelSpec | None:
    base, variant = split_variant(identifier)
    if not base.startswith("timm/") or variant not in (None, "random"):
        return None
    name = base[len("timm/") :]
    import timm

    if not timm.is_model(name):
        return None
    if "." in name and name not in timm.list_pretrained(name):
        return None  # a pretrained tag timm does not know
    return _spec(name, trained=variant is None)
