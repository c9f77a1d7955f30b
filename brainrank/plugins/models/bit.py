"""BiT experts (Puigcerver et al. 2021, "Scalable transfer learning with expert models"):
BiT-M ResNet-50x1 networks fine-tuned on subtrees of ImageNet-21k.

``timm/resnetv2_50x1_bit@expert-<subtree>`` is timm's ``resnetv2_50x1_bit`` (the BiT ResNet-v2:
pre-activation bottlenecks, weight-standardised convolutions, group norm; no classifier, as
the expert modules output 2048-d features) with an expert's weights. The BiT-M base model
they start from is timm's own ``timm/resnetv2_50x1_bit.goog_in21k`` (listed by the timm plugin
on demand).

**Where the weights come from.** Google released the experts only as TF-Hub SavedModels
(``https://tfhub.dev/google/experts/bit/r50x1/in21k/<subtree>/1``), with no PyTorch or NumPy
file, and reading a SavedModel needs TensorFlow, which brainrank does not use. brainrank reads
the layout Google released the BiT models themselves in (``BiT-M-R50x1.npz``, read by
``bit_pytorch/models.py`` of https://github.com/google-research/big_transfer): a ``.npz`` of
arrays named ``resnet/root_block/standardized_conv2d/kernel``,
``resnet/block<i>/unit<jj>/<a|b|c>/{group_norm/gamma,group_norm/beta,standardized_conv2d/kernel}``,
``resnet/block<i>/unit01/a/proj/standardized_conv2d/kernel``, ``resnet/group_norm/{gamma,beta}``
(convolution kernels in TensorFlow's HWIO order, transposed here). Export an expert's
variables under these names (for example with TensorFlow elsewhere: load the SavedModel and
save each variable's value under its name without the module prefix) to
``$TORCH_HOME/hub/checkpoints/bit_m-r50x1-expert-<subtree>.npz`` or pass ``weights=PATH``;
the error message says so. The files are read with ``allow_pickle=False`` (arrays only).

Metadata: task classification (of the subtree's classes), supervised, ImageNet-21k (BiT-M's
pre-training and the expert's fine-tuning data); the subtree in ``extra``. Preprocessing: BiT's
(224 x 224, values scaled to [-1, 1]).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from brainrank.plugin import (
    RANDOM_SEED,
    Model,
    ModelMetadata,
    ModelSpec,
    WeightsUnavailableError,
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

ARCH = "resnetv2_50x1_bit"
TFHUB = "https://tfhub.dev/google/experts/bit/r50x1/in21k/{}/1"
#: the experts the NSD follow-up work used (DeepNSD's model list), by ImageNet-21k subtree
EXPERTS = ("abstraction", "animal", "arthropod", "bird", "flower", "food", "instrument",
           "mammal", "object", "relation", "vehicle")  # fmt: skip


def filename(subtree: str) -> str:
    return f"bit_m-r50x1-expert-{subtree}.npz"


def _missing_hint(identifier: str, subtree: str) -> str:
    return (
        f" The BiT experts are released only as TF-Hub SavedModels ({TFHUB.format(subtree)}); "
        f"export {identifier}'s variables to a .npz under the names of BiT's own .npz files "
        "(resnet/root_block/standardized_conv2d/kernel, ...; see the brainrank.plugins.models."
        "bit docstring) where TensorFlow is installed."
    )


def read_bit_npz(identifier: str, path: Path) -> dict[str, Any]:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except Exception as exc:
        raise WeightsUnavailableError(
            f"cannot read {path} of {identifier!r} as a .npz of arrays ({exc})."
        ) from exc


def bit_to_timm(arrays: dict[str, Any], prefix: str = "resnet/") -> dict[str, Any]:
    """BiT's TensorFlow names -> timm ResNetV2 names (kernels HWIO -> OIHW). The head
    (``resnet/head/conv2d``), if present, is dropped: the experts are feature extractors."""
    import re

    import numpy as np
    import torch

    def tensor(array: Any) -> Any:
        array = np.asarray(array)
        if array.ndim == 4:
            array = array.transpose(3, 2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(array))

    out: dict[str, Any] = {}
    for name, array in arrays.items():
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :]
        if rest == "root_block/standardized_conv2d/kernel":
            key = "stem.conv.weight"
        elif rest in ("group_norm/gamma", "group_norm/beta"):
            key = "norm." + ("weight" if rest.endswith("gamma") else "bias")
        elif rest.startswith("head/"):
            continue
        elif match := re.match(r"block(\d)/unit(\d+)/(.*)", rest):
            stage, unit, part = int(match[1]) - 1, int(match[2]) - 1, match[3]
            base = f"stages.{stage}.blocks.{unit}."
            conv = {"a": "conv1", "b": "conv2", "c": "conv3"}
            norm = {"a": "norm1", "b": "norm2", "c": "norm3"}
            if part == "a/proj/standardized_conv2d/kernel":
                key = base + "downsample.conv.weight"
            elif part.endswith("/standardized_conv2d/kernel"):
                key = base + conv[part[0]] + ".weight"
            elif part.endswith("/group_norm/gamma"):
                key = base + norm[part[0]] + ".weight"
            elif part.endswith("/group_norm/beta"):
                key = base + norm[part[0]] + ".bias"
            else:
                key = "unconverted." + rest
        else:
            key = "unconverted." + rest
        out[key] = tensor(array)
    return out


def _metadata(subtree: str | None) -> ModelMetadata:
    if subtree is None:
        return ModelMetadata(
            source="bit",
            architecture=ARCH,
            family="convnet",
            trained=False,
            input_size=224,
            description=f"BiT ResNet-50x1 without classifier, random initialisation (seed "
            f"{RANDOM_SEED})",
        )
    return ModelMetadata(
        source="bit",
        architecture=ARCH,
        family="convnet",
        task="classification",
        training_method="supervised",
        training_data="ImageNet-21k",
        trained=True,
        input_size=224,
        description=f"BiT-M R50x1 expert for the ImageNet-21k '{subtree}' subtree",
        extra={"expert_subtree": subtree, "tfhub": TFHUB.format(subtree)},
    )


def build(subtree: str | None, weights: str | Path | None = None) -> Model:
    import timm

    identifier = f"timm/{ARCH}@expert-{subtree}" if subtree else f"bit/{ARCH}:random"
    if subtree is None and weights is not None:
        raise ValueError(f"{identifier} takes no weights file: it is a random initialisation.")
    with seeded(RANDOM_SEED):
        module = timm.create_model(ARCH, pretrained=False, num_classes=0)
    if subtree is not None:
        try:
            arrays, path = load_torch_hub_weights(
                identifier, TFHUB.format(subtree), weights, filename=filename(subtree),
                reader=read_bit_npz, download=False,
            )  # fmt: skip
        except WeightsUnavailableError as exc:
            raise WeightsUnavailableError(str(exc) + _missing_hint(identifier, subtree)) from None
        load_state(module, bit_to_timm(arrays), identifier, path)
    module.eval()
    prep = ImagePreprocess(size=224, resize=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return Model(
        identifier=identifier,
        module=module,
        preprocess=prep,
        preprocess_id=prep.describe(),
        metadata=with_loaded_facts(_metadata(subtree), module, 224),
    )


def _weights_missing(subtree: str) -> str | None:
    identifier = f"timm/{ARCH}@expert-{subtree}"
    missing = hub_weights_missing(identifier, TFHUB.format(subtree), filename(subtree))
    return None if missing is None else missing + _missing_hint(identifier, subtree)


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    specs = [
        ModelSpec(
            f"timm/{ARCH}@expert-{subtree}",
            partial(build, subtree),
            _metadata(subtree),
            weights_missing=partial(_weights_missing, subtree),
        )
        for subtree in EXPERTS
    ]
    specs.append(ModelSpec(f"bit/{ARCH}:random", partial(build, None), _metadata(None)))
    return specs
