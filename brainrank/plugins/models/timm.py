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
transformers (ViT, DeiT, Swin, BEiT, CaiT, PiT, XCiT), a hybrid (LeViT) and MLP models
(MLP-Mixer, ResMLP, gMLP). It records, without importing timm, the pretrained tag each name
loads and that tag's ImageNet-1k top-1 at the model's input size from timm's published
results (``results/results-imagenet.csv``); a test checks the tags against timm's
pretrained configurations, which is what a built model records.

Taxonomy (:mod:`brainrank.core.taxonomy`) from the pretrained tag (:func:`tag_taxonomy`): the
part before ``_ft_`` names the (pre-)training data and method (``in21k``, ``in22k``,
``in12k``, ``in1k``; ``jft`` with ``ns``: Noisy Student; ``ig1b`` with ``swsl``; ``laion2b``,
``openai``... : CLIP; ``dino``, ``mae``, ``mim`` (EVA), BEiT's architecture: their
self-supervised pre-training), the part after it the fine-tuning data; ``dist`` or a
``distilled`` architecture: distillation. A tag that names no data gives ``unknown`` (no
guess). Families: convnet unless the name is a transformer, MLP-Mixer or hybrid
(convolution with attention or a pooling token mixer: Visformer, NesT, PoolFormer,
EfficientFormer, MobileViT, LeViT, CoaT, ConViT, CvT, MaxViT, ...).
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
    hf_cached_file,
    hf_missing_message,
    hf_weights_file,
    with_loaded_facts,
)

#: Curated timm models (listed): name -> (family, the pretrained tag ``timm.create_model(name,
#: pretrained=True)`` loads, ImageNet-1k top-1 of that tag at its default input size from
#: timm's published results). Any other timm name resolves on demand.
CURATED: dict[str, tuple[str, str, float]] = {
    "resnet18": ("convnet", "a1_in1k", 71.504),
    "resnet50": ("convnet", "a1_in1k", 80.382),
    "resnet101": ("convnet", "a1h_in1k", 81.95),
    "resnet152": ("convnet", "a1h_in1k", 82.818),
    "resnext50_32x4d": ("convnet", "a1h_in1k", 81.14),
    "wide_resnet50_2": ("convnet", "racm_in1k", 81.466),
    "densenet121": ("convnet", "ra_in1k", 75.574),
    "vgg16": ("convnet", "tv_in1k", 71.594),
    "inception_v3": ("convnet", "tv_in1k", 77.472),
    "inception_v4": ("convnet", "tf_in1k", 80.144),
    "inception_resnet_v2": ("convnet", "tf_in1k", 80.434),
    "xception65": ("convnet", "ra3_in1k", 83.186),
    "mobilenetv3_large_100": ("convnet", "ra_in1k", 75.784),
    "regnety_040": ("convnet", "ra3_in1k", 82.308),
    "convnext_tiny": ("convnet", "in12k_ft_in1k", 84.192),
    "efficientnet_b0": ("convnet", "ra_in1k", 77.698),
    "efficientnet_b3": ("convnet", "ra2_in1k", 81.472),
    "tf_efficientnet_b7": ("convnet", "ns_jft_in1k", 86.85),
    "nf_resnet50": ("convnet", "ra2_in1k", 80.236),
    "dm_nfnet_f0": ("convnet", "dm_in1k", 81.436),
    "eca_nfnet_l0": ("convnet", "ra2_in1k", 81.762),
    "vit_tiny_patch16_224": ("transformer", "augreg_in21k_ft_in1k", 75.452),
    "vit_small_patch16_224": ("transformer", "augreg_in21k_ft_in1k", 81.402),
    "vit_base_patch16_224": ("transformer", "augreg2_in21k_ft_in1k", 85.108),
    "vit_base_patch32_224": ("transformer", "augreg_in21k_ft_in1k", 80.732),
    "vit_large_patch16_224": ("transformer", "augreg_in21k_ft_in1k", 85.856),
    "deit_tiny_patch16_224": ("transformer", "fb_in1k", 72.19),
    "deit_small_patch16_224": ("transformer", "fb_in1k", 79.856),
    "deit_base_patch16_224": ("transformer", "fb_in1k", 81.98),
    "swin_tiny_patch4_window7_224": ("transformer", "ms_in1k", 81.388),
    "swin_small_patch4_window7_224": ("transformer", "ms_in22k_ft_in1k", 83.33),
    "swin_base_patch4_window7_224": ("transformer", "ms_in22k_ft_in1k", 85.276),
    "beit_base_patch16_224": ("transformer", "in22k_ft_in22k_in1k", 85.238),
    "cait_xxs24_224": ("transformer", "fb_dist_in1k", 78.4),
    "levit_128": ("hybrid", "fb_dist_in1k", 78.486),
    "pit_ti_224": ("transformer", "in1k", 72.926),
    "xcit_tiny_12_p16_224": ("transformer", "fb_in1k", 77.122),
    "mixer_b16_224": ("mlp-mixer", "goog_in21k_ft_in1k", 76.616),
    "mixer_l16_224": ("mlp-mixer", "goog_in21k_ft_in1k", 72.084),
    "resmlp_12_224": ("mlp-mixer", "fb_in1k", 76.66),
    "resmlp_24_224": ("mlp-mixer", "fb_in1k", 79.38),
    "resmlp_36_224": ("mlp-mixer", "fb_in1k", 79.772),
    "gmlp_s16_224": ("mlp-mixer", "ra3_in1k", 79.652),
    "gmixer_24_224": ("mlp-mixer", "ra3_in1k", 78.048),
}
#: where the top-1 accuracies above come from
TOP1_SOURCE = (
    "timm results/results-imagenet.csv (huggingface/pytorch-image-models, commit aa4b5850), "
    "at the model's default input size"
)

_MIXERS = ("mixer", "resmlp", "gmlp", "gmixer")
#: convolution and attention (or a pooling token mixer) in one network
_HYBRIDS = (
    "visformer", "nest_", "jx_nest", "poolformer", "efficientformer", "mobilevit", "levit",
    "coat", "convit", "cvt", "maxvit", "maxxvit", "coatnet", "coatnext", "botnet", "halonet",
    "lambda_resnet", "edgenext", "fastvit", "convformer", "caformer", "efficientvit", "tiny_vit",
    "nextvit", "gcvit", "halo2botnet", "sebotnet", "eca_botnext", "eca_halonext", "lamhalobotnet",
    "vit_tiny_r_s16", "vit_small_r26", "vit_base_r50", "vit_large_r50", "vit_base_resnet",
    "vit_small_resnet", "mobilenetv4_hybrid",
)  # fmt: skip
_TRANSFORMERS = (
    "vit", "deit", "swin", "beit", "cait", "xcit", "pit", "eva", "tnt", "twins", "crossvit",
    "mvit", "flexivit", "samvit", "hiera", "volo", "davit", "pvt", "sequencer",
)  # fmt: skip


def family_of(name: str) -> str:
    """convnet, transformer, mlp-mixer or hybrid (see :mod:`brainrank.core.taxonomy`)."""
    base = name.split(".")[0]
    if base in CURATED:
        return CURATED[base][0]
    if base.startswith(_MIXERS):
        return "mlp-mixer"
    if base.startswith(_HYBRIDS):
        return "hybrid"
    if base.startswith(_TRANSFORMERS):
        return "transformer"
    return "convnet"


#: pieces of a pretrained tag -> training data (checked in this order)
_TAG_DATA = (
    ("jft", "JFT-300M"), ("ig1b", "Instagram-1B"), ("ig3b", "Instagram-3.5B"),
    ("yfcc100m", "YFCC-100M"), ("yfcc15m", "YFCC-15M"), ("laion2b", "LAION-2B"),
    ("laion400m", "LAION-400M"), ("laion", "LAION-2B"), ("openai", "WIT-400M"),
    ("datacomp", "DataComp"), ("dfn", "DFN"), ("metaclip", "MetaCLIP"), ("webli", "WebLI"),
    ("cc12m", "CC-12M"), ("m38m", "other"), ("merged", "other"), ("lvd", "other"),
    ("seer", "Instagram-1B"), ("swag", "Instagram-3.5B"), ("in22k", "ImageNet-22k"),
    ("in21k", "ImageNet-21k"), ("in12k", "ImageNet-12k"), ("in1k", "ImageNet-1k"),
    ("dino", "ImageNet-1k"), ("mae", "ImageNet-1k"),
)  # fmt: skip
_LANGUAGE_IMAGE = ("WIT-400M", "LAION-2B", "LAION-400M", "DataComp", "DFN", "MetaCLIP",
                   "WebLI", "CC-12M", "YFCC-15M")  # fmt: skip


def _data_in(piece: str, last: bool = False) -> str | None:
    found = [(piece.find(key), data) for key, data in _TAG_DATA if key in piece]
    if not found:
        return None
    if last:  # the last data set named (the final fine-tuning stage)
        return max(found, key=lambda item: item[0])[1]
    return found[0][1]


def tag_taxonomy(tag: str | None, name: str = "") -> dict[str, str | None]:
    """Task, training method, training data and fine-tuning data named by a timm pretrained
    tag (``augreg_in21k_ft_in1k`` -> classification, supervised, ImageNet-21k, fine-tuned on
    ImageNet-1k). ``name`` (the architecture) tells BEiT and EVA pre-training apart."""
    if not tag:
        return {"task": "unknown", "training_method": "unknown", "training_data": "unknown",
                "fine_tuned_on": None}  # fmt: skip
    t = tag.lower()
    pre, sep, ft = t.partition("_ft_")
    data = _data_in(pre) or "unknown"
    fine_tuned = _data_in(ft, last=True) if sep else None
    arch = name.split(".")[0].lower()
    if data == "unknown" and not sep:  # a tag that names no data: nothing to infer
        return {"task": "unknown", "training_method": "unknown", "training_data": "unknown",
                "fine_tuned_on": None}  # fmt: skip
    if "dino" in pre or pre.startswith("lvd"):  # lvd*: DINOv2/v3's curated data
        method = "dino"
    elif "seer" in pre:
        method = "swav"
    elif "mae" in pre.split("_"):
        method = "mae"
    elif arch.startswith("eva") and "mim" in pre:
        method = "eva"
    elif arch.startswith("beit"):
        method = "beit"
    elif data in _LANGUAGE_IMAGE or "clip" in pre.split("_"):
        method = "clip"
    elif pre.startswith("ns") or "_ssl" in pre or pre.startswith("ssl"):
        method = "semi-supervised"
    elif "wsl" in pre or "swag" in pre:
        method = "weakly-supervised"
    elif "dist" in pre.split("_") or "distilled" in arch:
        method = "distillation"
    else:
        method = "supervised" if data != "unknown" else "unknown"
    if sep:
        task = "classification"
    elif method in ("dino", "swav"):
        task = "non-contrastive self-supervision"
    elif method in ("mae", "eva", "beit"):
        task = "masked image modelling"
    elif method == "clip":
        task = "language-image"
    else:
        task = "classification"
    return {"task": task, "training_method": method, "training_data": data,
            "fine_tuned_on": fine_tuned}  # fmt: skip


def default_tag(name: str) -> str | None:
    """The pretrained tag of a curated name (from the table, no timm import)."""
    base, _, tag = name.partition(".")
    if tag:
        return tag
    return CURATED[base][1] if base in CURATED else None


def _metadata(name: str, trained: bool, tag: str | None = None) -> ModelMetadata:
    base = name.split(".")[0]
    tag = tag or default_tag(name)
    if not trained:
        return ModelMetadata(
            source="timm",
            architecture=base,
            family=family_of(name),
            trained=False,
            description=f"timm {base}, random initialisation (seed {RANDOM_SEED})",
        )
    facts = tag_taxonomy(tag, base)
    top1 = CURATED[base][2] if base in CURATED and tag == CURATED[base][1] else None
    extra = {"pretrained_tag": tag}
    if facts["fine_tuned_on"]:
        extra["fine_tuned_on"] = facts["fine_tuned_on"]
    return ModelMetadata(
        source="timm",
        architecture=base,
        family=family_of(name),
        task=facts["task"],
        training_method=facts["training_method"],
        training_data=facts["training_data"],
        trained=True,
        imagenet_top1=top1,
        top1_source=TOP1_SOURCE if top1 is not None else None,
        description=f"timm {base}.{tag} pretrained weights",
        extra=extra,
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


def _spec(name: str, trained: bool, tag: str | None = None) -> ModelSpec:
    return ModelSpec(
        identifier=f"timm/{name}" + ("" if trained else ":random"),
        factory=partial(build, name, trained),
        metadata=_metadata(name, trained, tag),
        weights_missing=partial(_weights_missing, name, tag) if trained else None,
    )


def _weights_missing(name: str, tag: str | None = None) -> str | None:
    """Why the trained weights of ``timm/<name>`` are not in the Hugging Face cache (None:
    they are)."""
    base = name.split(".")[0]
    tag = tag or default_tag(name)
    if tag is None:
        import timm

        tag = _cfg_get(timm.models.get_pretrained_cfg(name), "tag")
    repo = f"timm/{base}.{tag}"
    if hf_cached_file(repo, ("model.safetensors", "pytorch_model.bin")) is not None:
        return None
    return hf_missing_message(f"timm/{name}", repo, ("model.safetensors", "pytorch_model.bin"))


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
    tag = None
    if variant is None and "." not in name:  # the tag timm's pretrained=True loads
        tag = _cfg_get(timm.models.get_pretrained_cfg(name), "tag") or None
    return _spec(name, trained=variant is None, tag=tag)
