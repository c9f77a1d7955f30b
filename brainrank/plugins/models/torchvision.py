"""torchvision models, trained on ImageNet-1k and randomly initialised.

``torchvision/<name>`` uses the architecture's ``IMAGENET1K_V1`` weights (the weights of
the seed papers; task classification, supervised, ImageNet-1k, with the top-1 accuracy
torchvision publishes for them) and their preprocessing; ``torchvision/<name>:random`` is the same
architecture initialised by torchvision with seed 0 (same identifier, same network) and the
same preprocessing. Trained weights are read from ``weights=PATH`` or the torch-hub cache
(``$TORCH_HOME/hub/checkpoints``) and downloaded only when missing.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

from brainrank.plugin import RANDOM_SEED, Model, ModelMetadata, ModelSpec, hookimpl, seeded
from brainrank.plugins.models._common import (
    ImagePreprocess,
    hub_weights_missing,
    load_state,
    load_torch_hub_weights,
    with_loaded_facts,
)

#: name -> family. The seed papers' torchvision architectures (Conwell et al. 2021 use
#: the ImageNet classifiers of torchvision; the transformers are later additions).
ARCHITECTURES: dict[str, str] = {
    "alexnet": "convnet",
    "vgg11": "convnet",
    "vgg13": "convnet",
    "vgg16": "convnet",
    "vgg19": "convnet",
    "vgg11_bn": "convnet",
    "vgg13_bn": "convnet",
    "vgg16_bn": "convnet",
    "vgg19_bn": "convnet",
    "resnet18": "convnet",
    "resnet34": "convnet",
    "resnet50": "convnet",
    "resnet101": "convnet",
    "resnet152": "convnet",
    "resnext50_32x4d": "convnet",
    "resnext101_32x8d": "convnet",
    "wide_resnet50_2": "convnet",
    "wide_resnet101_2": "convnet",
    "densenet121": "convnet",
    "densenet161": "convnet",
    "densenet169": "convnet",
    "densenet201": "convnet",
    "googlenet": "convnet",
    "inception_v3": "convnet",
    "mnasnet0_5": "convnet",
    "mnasnet0_75": "convnet",
    "mnasnet1_0": "convnet",
    "mnasnet1_3": "convnet",
    "mobilenet_v2": "convnet",
    "mobilenet_v3_small": "convnet",
    "mobilenet_v3_large": "convnet",
    "shufflenet_v2_x0_5": "convnet",
    "shufflenet_v2_x1_0": "convnet",
    "squeezenet1_0": "convnet",
    "squeezenet1_1": "convnet",
    "efficientnet_b0": "convnet",
    "efficientnet_b1": "convnet",
    "efficientnet_b2": "convnet",
    "efficientnet_b3": "convnet",
    "efficientnet_b4": "convnet",
    "efficientnet_b5": "convnet",
    "efficientnet_b6": "convnet",
    "efficientnet_b7": "convnet",
    "vit_b_16": "transformer",
    "vit_b_32": "transformer",
    "swin_t": "transformer",
    "convnext_tiny": "convnet",
}

#: Input sizes (crop) of the IMAGENET1K_V1 transforms that are not 224.
_INPUT_SIZE = {
    "inception_v3": 299,
    "efficientnet_b1": 240,
    "efficientnet_b2": 288,
    "efficientnet_b3": 300,
    "efficientnet_b4": 380,
    "efficientnet_b5": 456,
    "efficientnet_b6": 528,
    "efficientnet_b7": 600,
}


#: ImageNet-1k top-1 of the IMAGENET1K_V1 weights, as torchvision publishes it
#: (``weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]``; a test checks the table against it)
TOP1: dict[str, float] = {
    "alexnet": 56.522, "vgg11": 69.02, "vgg13": 69.928, "vgg16": 71.592, "vgg19": 72.376,
    "vgg11_bn": 70.37, "vgg13_bn": 71.586, "vgg16_bn": 73.36, "vgg19_bn": 74.218,
    "resnet18": 69.758, "resnet34": 73.314, "resnet50": 76.13, "resnet101": 77.374,
    "resnet152": 78.312, "resnext50_32x4d": 77.618, "resnext101_32x8d": 79.312,
    "wide_resnet50_2": 78.468, "wide_resnet101_2": 78.848, "densenet121": 74.434,
    "densenet161": 77.138, "densenet169": 75.6, "densenet201": 76.896, "googlenet": 69.778,
    "inception_v3": 77.294, "mnasnet0_5": 67.734, "mnasnet0_75": 71.18, "mnasnet1_0": 73.456,
    "mnasnet1_3": 76.506, "mobilenet_v2": 71.878, "mobilenet_v3_small": 67.668,
    "mobilenet_v3_large": 74.042, "shufflenet_v2_x0_5": 60.552, "shufflenet_v2_x1_0": 69.362,
    "squeezenet1_0": 58.092, "squeezenet1_1": 58.178, "efficientnet_b0": 77.692,
    "efficientnet_b1": 78.642, "efficientnet_b2": 80.608, "efficientnet_b3": 82.008,
    "efficientnet_b4": 83.384, "efficientnet_b5": 83.444, "efficientnet_b6": 84.008,
    "efficientnet_b7": 84.122, "vit_b_16": 81.072, "vit_b_32": 75.912, "swin_t": 81.474,
    "convnext_tiny": 82.52,
}  # fmt: skip
TOP1_SOURCE = "torchvision weights.meta['_metrics']['ImageNet-1K']['acc@1'] (IMAGENET1K_V1)"


def _metadata(name: str, trained: bool, top1: float | None = None) -> ModelMetadata:
    if not trained:
        return ModelMetadata(
            source="torchvision",
            architecture=name,
            family=ARCHITECTURES[name],
            trained=False,
            input_size=_INPUT_SIZE.get(name, 224),
            description=f"torchvision {name}, random initialisation (seed {RANDOM_SEED})",
        )
    return ModelMetadata(
        source="torchvision",
        architecture=name,
        family=ARCHITECTURES[name],
        task="classification",
        training_method="supervised",
        training_data="ImageNet-1k",
        trained=True,
        input_size=_INPUT_SIZE.get(name, 224),
        imagenet_top1=TOP1[name] if top1 is None else top1,
        top1_source=TOP1_SOURCE,
        description=f"torchvision {name}, IMAGENET1K_V1 weights",
    )


def build(name: str, trained: bool, weights: str | Path | None = None) -> Model:
    import torchvision.models as tvm

    enum = tvm.get_model_weights(name)
    reference = enum.IMAGENET1K_V1
    kwargs = {}
    if name in ("googlenet", "inception_v3"):  # as torchvision builds them for its weights
        kwargs = {"aux_logits": True, "init_weights": True, "transform_input": True}
    with seeded(RANDOM_SEED):
        module = tvm.get_model(name, weights=None, **kwargs)
    removed: list[str] = []
    if trained:
        identifier = f"torchvision/{name}"
        state, path = load_torch_hub_weights(identifier, reference.url, weights)
        removed = load_state(module, state, identifier, path)
    elif weights is not None:
        raise ValueError(f"torchvision/{name}:random takes no weights file.")
    if hasattr(module, "aux_logits"):  # inception/googlenet: no auxiliary heads at eval
        module.aux_logits = False
        for attr in ("AuxLogits", "aux1", "aux2"):
            if hasattr(module, attr):
                setattr(module, attr, None)
    module.eval()
    t = reference.transforms()
    preprocess = ImagePreprocess(
        size=t.crop_size[0],
        resize=t.resize_size[0],
        mean=t.mean,
        std=t.std,
        interpolation=t.interpolation.value,
    )
    identifier = f"torchvision/{name}" + ("" if trained else ":random")
    metadata = _metadata(name, trained, reference.meta["_metrics"]["ImageNet-1K"]["acc@1"])
    if removed:  # a checkpoint without the classifier head (a user's trunk)
        metadata = dataclasses.replace(metadata, extra={**metadata.extra, "heads_removed": removed})
    return Model(
        identifier=identifier,
        module=module,
        preprocess=preprocess,
        preprocess_id=preprocess.describe(),
        metadata=with_loaded_facts(metadata, module, preprocess.size),
    )


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    specs = []
    for name in ARCHITECTURES:
        for trained in (True, False):
            specs.append(
                ModelSpec(
                    identifier=f"torchvision/{name}" + ("" if trained else ":random"),
                    factory=partial(build, name, trained),
                    metadata=_metadata(name, trained),
                    weights_missing=partial(weights_missing, name) if trained else None,
                )
            )
    return specs


def weights_missing(name: str) -> str | None:
    """None when the IMAGENET1K_V1 file of ``name`` is in the torch-hub cache, else where
    it belongs."""
    import torchvision.models as tvm

    url = tvm.get_model_weights(name).IMAGENET1K_V1.url
    return hub_weights_missing(f"torchvision/{name}", url)
