"""Scene-classification networks trained on Places365 (Zhou et al. 2017), as checkpoints of
torchvision's AlexNet and ResNet-50.

``torchvision/alexnet@places365`` and ``torchvision/resnet50@places365`` are torchvision's
architectures with a 365-way classifier and the weights the CSAIL group released
(https://github.com/CSAILVision/places365, ``run_placesCNN_basic.py``;
``http://places2.csail.mit.edu/models_places365/<arch>_places365.pth.tar``): the ImageNet vs
Places365 contrast of the stacking paper (Wang et al., joint interpretation) uses exactly
these two architectures.

Checkpoint layout: a ``.pth.tar`` written by the PyTorch ImageNet example, ``{"epoch",
"arch", "state_dict", "best_prec1"}``, its keys carrying DataParallel's ``module.`` (for
AlexNet inside the name, ``features.module.0.weight``, as only its features were wrapped);
``module.`` is removed wherever it appears, as CSAIL's demo does. Old (pre-zip, possibly
Python 2) files are read too, tensors only.

Preprocessing: shorter side to 256, centre crop 224, ImageNet mean and std, as brainrank's
ImageNet networks, so that object and scene networks see the same pixels (CSAIL's demo
squashes the whole image to 224 x 224 instead). Metadata: task classification (of scenes),
supervised, Places365; the Places365 validation top-1 CSAIL reports is in ``extra``.

Weights: ``weights=PATH``, else ``$TORCH_HOME/hub/checkpoints/<arch>_places365.pth.tar``.
"""

from __future__ import annotations

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

BASE_URL = "http://places2.csail.mit.edu/models_places365/"
#: architecture -> Places365 validation top-1 (CSAIL's README)
ARCHITECTURES: dict[str, float] = {"alexnet": 53.17, "resnet50": 54.74}


def url(arch: str) -> str:
    return f"{BASE_URL}{arch}_places365.pth.tar"


def _metadata(arch: str) -> ModelMetadata:
    return ModelMetadata(
        source="places365",
        architecture=arch,
        family="convnet",
        task="classification",
        training_method="supervised",
        training_data="Places365",
        trained=True,
        input_size=224,
        description=f"torchvision {arch} trained on Places365 scene classes (CSAIL release)",
        extra={
            "checkpoint": {"of": f"torchvision/{arch}", "tag": "places365", "url": url(arch)},
            "places365_top1": ARCHITECTURES[arch],
            "places365_top1_source": "CSAILVision/places365 README (validation, 224 crop)",
            "classes": 365,
        },
    )


def preprocess() -> ImagePreprocess:
    return ImagePreprocess(size=224, resize=256)


def build(arch: str, weights: str | Path | None = None) -> Model:
    import torchvision.models as tvm

    identifier = f"torchvision/{arch}@places365"
    with seeded(RANDOM_SEED):
        module = tvm.get_model(arch, weights=None, num_classes=365)
    checkpoint, path = load_torch_hub_weights(identifier, url(arch), weights)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else {}
    state = {k.replace("module.", ""): v for k, v in state.items()}
    load_state(module, state, identifier, path)
    module.eval()
    prep = preprocess()
    return Model(
        identifier=identifier,
        module=module,
        preprocess=prep,
        preprocess_id=prep.describe(),
        metadata=with_loaded_facts(_metadata(arch), module, 224),
    )


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            f"torchvision/{arch}@places365",
            partial(build, arch),
            _metadata(arch),
            weights_missing=partial(
                hub_weights_missing, f"torchvision/{arch}@places365", url(arch)
            ),
        )
        for arch in ARCHITECTURES
    ]
