"""torchvision models, trained on ImageNet-1k and randomly initialised.

``torchvision/<name>`` uses the architecture's ``IMAGENET1K_V1`` weights (the weights of
the seed papers) and their preprocessing; ``torchvision/<name>:random`` is the same
architecture initialised by torchvision with seed 0 (same identifier, same network) and the
same preprocessing. Trained weights are read from ``weights=PATH`` or the torch-hub cache
(``$TORCH_HOME/hub/checkpoints``) and downloaded only when missing.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from brainrank.plugin import RANDOM_SEED, Model, ModelMetadata, ModelSpec, hookimpl, seeded
from brainrank.plugins.models._common import (
    ImagePreprocess,
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


def _metadata(name: str, trained: bool) -> ModelMetadata:
    return ModelMetadata(
        source="torchvision",
        architecture=name,
        family=ARCHITECTURES[name],
        task="object classification" if trained else None,
        training_data="ImageNet-1k" if trained else None,
        trained=trained,
        input_size=_INPUT_SIZE.get(name, 224),
        description=f"torchvision {name}, "
        + ("IMAGENET1K_V1 weights" if trained else f"random initialisation (seed {RANDOM_SEED})"),
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
    if trained:
        identifier = f"torchvision/{name}"
        state, path = load_torch_hub_weights(identifier, reference.url, weights)
        load_state(module, state, identifier, path)
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
    return Model(
        identifier=identifier,
        module=module,
        preprocess=preprocess,
        preprocess_id=preprocess.describe(),
        metadata=with_loaded_facts(_metadata(name, trained), module, preprocess.size),
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
                )
            )
    return specs
