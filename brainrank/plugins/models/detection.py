"""Detection, segmentation and keypoint networks: torchvision's COCO models and the
Detectron2 model zoo's, converted to torchvision architectures.

**Which layers.** A detector's region heads run on proposals (a variable number of boxes per
image), not on the image, so they give no fixed-size features per image. brainrank takes, as
the NSD paper's authors did for the Detectron2 models (DeepNSD, ``model_opts/
model_options.py``: ``get_detectron_model(..., backbone_only=True)``, images resized to 224
on their shorter side), the **backbone**: the ResNet trunk and, where the network has one,
its feature pyramid (FPN), at 224 x 224. Every module of the backbone is a layer (the
convolutions, normalisations and ReLUs of the trunk, the FPN's lateral and output
convolutions, RetinaNet's P6/P7). The segmentation networks FCN and DeepLab-v3 are
image-to-image: every module but the auxiliary classifier (a training-only branch) is a
layer, at 224 x 224 too. brainrank centre-crops after resizing (the authors' code did not
crop); on square stimuli such as NSD's the input is the same.

**torchvision** (``torchvision/<name>`` and ``torchvision/<name>:random``): Faster, Mask and
Keypoint R-CNN and RetinaNet with a ResNet-50-FPN backbone (COCO), FCN and DeepLab-v3 with
ResNet-50 and ResNet-101 (COCO images, VOC labels); the weights torchvision publishes
(``weights=PATH`` or ``$TORCH_HOME/hub/checkpoints/<file of the URL>``), the whole model's
state loaded strictly (detectors with frozen batch norm, as torchvision trains them), then
the backbone kept. Preprocessing: ImageNet mean and std on RGB in [0, 1] (the detectors'
``GeneralizedRCNNTransform``; the segmentation weights' transforms).

**Detectron2** (``detectron2/<config>``): Detectron2 (Wu et al. 2019) is not on the package
index, so its checkpoints are converted: a model-zoo ``model_final_*.pkl`` is a pickle of
``{"model": {name: numpy array}, "__author__": "Detectron2 Model Zoo"}`` (read with an
unpickler that allows numpy arrays and plain containers only), whose backbone keys
(``backbone.bottom_up.stem.conv1.weight``, ``backbone.bottom_up.res2.0.conv1.norm.*``,
``...shortcut.*``, ``backbone.fpn_lateral2.*``, ``backbone.fpn_output2.*``,
``backbone.top_block.p6.*``) map onto torchvision's ResNet (``conv1``, ``bn1``,
``layer1.0.conv1``, ``layer1.0.bn1``, ``downsample.0/1``) and FPN (``inner_blocks.0.0``,
``layer_blocks.0.0``, ``extra_blocks.p6``). Detectron2's ResNets differ from torchvision's
in one place, handled: the MSRA-initialised R-50/R-101 put a block's stride on its first 1 x 1
convolution (``STRIDE_IN_1X1``), the X-101-32x8d on the 3 x 3 one as torchvision does.
Inputs are BGR in 0-255 minus Detectron2's ``PIXEL_MEAN`` (103.530, 116.280, 123.675),
divided by ``PIXEL_STD`` (1 for R-50/R-101; 57.375, 57.120, 58.395 for X-101). Backbones:
``*_fpn_*`` ResNet + FPN (RetinaNet with P6/P7 from C5); ``*_c4_*`` the trunk up to res4 (its
res5 is in the region head); ``*_dc5_*`` the whole trunk with res5 dilated. The heads in the
file are not used.

Weights: ``weights=PATH``, else ``$TORCH_HOME/hub/checkpoints/<config>_<file of the URL>`` (the
model zoo's file names, ``model_final_<hash>.pkl``, are prefixed with the configuration so
that they cannot clash).
"""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from dataclasses import dataclass
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
    explicit_weights,
    hub_weights_missing,
    load_state,
    load_torch_hub_weights,
    with_loaded_facts,
)

SIZE = 224

# --------------------------------------------------------------------------- torchvision

#: torchvision name -> (task, training data)
TORCHVISION: dict[str, tuple[str, str]] = {
    "fasterrcnn_resnet50_fpn": ("detection", "COCO"),
    "maskrcnn_resnet50_fpn": ("segmentation", "COCO"),
    "keypointrcnn_resnet50_fpn": ("keypoints", "COCO"),
    "retinanet_resnet50_fpn": ("detection", "COCO"),
    "fcn_resnet50": ("segmentation", "COCO"),
    "fcn_resnet101": ("segmentation", "COCO"),
    "deeplabv3_resnet50": ("segmentation", "COCO"),
    "deeplabv3_resnet101": ("segmentation", "COCO"),
}
_SEGMENTATION = ("fcn_", "deeplabv3_")
#: listed at random initialisation: one per distinct network (Mask and Keypoint R-CNN's
#: backbone is Faster R-CNN's ResNet-50-FPN)
TORCHVISION_RANDOM = (
    "fasterrcnn_resnet50_fpn",
    "retinanet_resnet50_fpn",
    "fcn_resnet50",
    "fcn_resnet101",
    "deeplabv3_resnet50",
    "deeplabv3_resnet101",
)


def _tv_metadata(name: str, trained: bool) -> ModelMetadata:
    detector = not name.startswith(_SEGMENTATION)
    what = "backbone (ResNet-50 + FPN)" if detector else "network without its auxiliary head"
    if not trained:
        return ModelMetadata(
            source="torchvision",
            architecture=name,
            family="convnet",
            trained=False,
            input_size=SIZE,
            description=f"torchvision {name} {what}, random initialisation (seed {RANDOM_SEED})",
        )
    task, data = TORCHVISION[name]
    return ModelMetadata(
        source="torchvision",
        architecture=name,
        family="convnet",
        task=task,
        training_method="supervised",
        training_data=data,
        trained=True,
        input_size=SIZE,
        description=f"torchvision {name} {what}, COCO weights (ImageNet-1k backbone)",
        extra={"backbone_pretrained_on": "ImageNet-1k"},
    )


def _freeze_batchnorm(module: Any) -> None:
    """Replace every BatchNorm2d by torchvision's FrozenBatchNorm2d (the detectors' norm when
    torchvision trains them; the same numbers in eval mode, other state keys)."""
    import torch
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.BatchNorm2d):
            setattr(module, name, FrozenBatchNorm2d(child.num_features, eps=child.eps))
        else:
            _freeze_batchnorm(child)


def _tv_weights(name: str):
    import torchvision.models as tvm

    return tvm.get_model_weights(name).DEFAULT


def _backbone_module():
    import torch

    class DetectorBackbone(torch.nn.Module):
        """A detector's image backbone (trunk, FPN); its output: the pyramid's levels."""

        def __init__(self, backbone: Any):
            super().__init__()
            self.backbone = backbone

        def forward(self, x):
            return self.backbone(x)

    class Segmenter(torch.nn.Module):
        """A segmentation network without its auxiliary head; its output: the logits map."""

        def __init__(self, network: Any):
            super().__init__()
            network.aux_classifier = None
            self.network = network

        def forward(self, x):
            return self.network(x)["out"]

    return DetectorBackbone, Segmenter


def build_torchvision(name: str, trained: bool, weights: str | Path | None = None) -> Model:
    import torchvision.models as tvm

    identifier = f"torchvision/{name}" + ("" if trained else ":random")
    if not trained and weights is not None:
        raise ValueError(f"{identifier} takes no weights file: it is a random initialisation.")
    reference = _tv_weights(name)
    segmentation = name.startswith(_SEGMENTATION)
    kwargs: dict[str, Any] = {"num_classes": len(reference.meta["categories"])}
    if segmentation:  # torchvision's COCO weights hold the auxiliary head: built, then dropped
        kwargs["aux_loss"] = True
    with seeded(RANDOM_SEED):
        network = tvm.get_model(name, weights=None, weights_backbone=None, **kwargs)
    if not segmentation:
        _freeze_batchnorm(network)
    if trained:
        checkpoint, path = load_torch_hub_weights(identifier, reference.url, weights)
        load_state(network, checkpoint, identifier, path)
    detector_cls, segmenter_cls = _backbone_module()
    module = segmenter_cls(network) if segmentation else detector_cls(network.backbone)
    module.eval()
    prep = ImagePreprocess(size=SIZE, resize=SIZE)
    return Model(
        identifier=identifier,
        module=module,
        preprocess=prep,
        preprocess_id=prep.describe(),
        metadata=with_loaded_facts(_tv_metadata(name, trained), module, SIZE),
    )


# --------------------------------------------------------------------------- Detectron2

DETECTRON2_URL = "https://dl.fbaipublicfiles.com/detectron2/"
MSRA_MEAN = (103.530, 116.280, 123.675)  # BGR, 0-255
MSRA_STD = (1.0, 1.0, 1.0)
X101_STD = (57.375, 57.120, 58.395)


@dataclass(frozen=True)
class Detectron2Config:
    name: str  # brainrank's name: the model-zoo configuration, lower case
    path: str  # the model-zoo path, e.g. COCO-Detection/faster_rcnn_R_50_FPN_3x
    file: str  # "<id>/model_final_<hash>.pkl"
    task: str
    data: str = "COCO"

    @property
    def url(self) -> str:
        return f"{DETECTRON2_URL}{self.path}/{self.file}"

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.file.rsplit('/', 1)[1]}"

    @property
    def depth(self) -> int:
        return 50 if "_r_50_" in self.name else 101

    @property
    def resnext(self) -> bool:
        return "_x_101_32x8d_" in self.name

    @property
    def kind(self) -> str:
        """fpn, retinanet, c4 or dc5: which backbone the configuration has."""
        if self.name.startswith("retinanet"):
            return "retinanet"
        for kind in ("c4", "dc5"):
            if f"_{kind}_" in self.name + "_":
                return kind
        return "fpn"


def _d2(path: str, file: str, task: str, data: str = "COCO", suffix: str = "") -> Detectron2Config:
    return Detectron2Config(path.rsplit("/", 1)[1].lower() + suffix, path, file, task, data)


DETECTRON2: tuple[Detectron2Config, ...] = (
    _d2("COCO-Detection/faster_rcnn_R_50_FPN_3x", "137849458/model_final_280758.pkl", "detection"),
    _d2("COCO-Detection/faster_rcnn_R_101_FPN_3x", "137851257/model_final_f6e8b1.pkl", "detection"),
    _d2("COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x", "139173657/model_final_68b088.pkl",
        "detection"),
    _d2("COCO-Detection/faster_rcnn_R_50_C4_3x", "137849393/model_final_f97cb7.pkl", "detection"),
    _d2("COCO-Detection/faster_rcnn_R_101_C4_3x", "138204752/model_final_298dad.pkl", "detection"),
    _d2("COCO-Detection/faster_rcnn_R_50_DC5_3x", "137849425/model_final_68d202.pkl", "detection"),
    _d2("COCO-Detection/faster_rcnn_R_101_DC5_3x", "138204841/model_final_3e0943.pkl", "detection"),
    _d2("COCO-Detection/retinanet_R_50_FPN_3x", "190397829/model_final_5bd44e.pkl", "detection"),
    _d2("COCO-Detection/retinanet_R_101_FPN_3x", "190397697/model_final_971ab9.pkl", "detection"),
    _d2("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x", "137849600/model_final_f10217.pkl",
        "segmentation"),
    _d2("COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x", "138205316/model_final_a3ec72.pkl",
        "segmentation"),
    _d2("COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x",
        "139653917/model_final_2d9806.pkl", "segmentation"),
    _d2("COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x", "137849525/model_final_4ce675.pkl",
        "segmentation"),
    _d2("COCO-InstanceSegmentation/mask_rcnn_R_101_C4_3x", "138363239/model_final_a2914c.pkl",
        "segmentation"),
    _d2("COCO-InstanceSegmentation/mask_rcnn_R_50_DC5_3x", "137849551/model_final_84107b.pkl",
        "segmentation"),
    _d2("COCO-InstanceSegmentation/mask_rcnn_R_101_DC5_3x", "138363294/model_final_0464b7.pkl",
        "segmentation"),
    _d2("COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x", "137849621/model_final_a6e10b.pkl",
        "keypoints"),
    _d2("COCO-PanopticSegmentation/panoptic_fpn_R_50_3x", "139514569/model_final_c10459.pkl",
        "segmentation"),
    _d2("LVISv0.5-InstanceSegmentation/mask_rcnn_R_50_FPN_1x", "144219072/model_final_571f7c.pkl",
        "segmentation", "LVIS", "_lvis"),
    _d2("LVISv0.5-InstanceSegmentation/mask_rcnn_R_101_FPN_1x", "144219035/model_final_824ab5.pkl",
        "segmentation", "LVIS", "_lvis"),
    _d2("LVISv0.5-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_1x",
        "144219108/model_final_5e3439.pkl", "segmentation", "LVIS", "_lvis"),
)  # fmt: skip
D2_BY_NAME = {c.name: c for c in DETECTRON2}
#: configurations listed at random initialisation: one per backbone architecture
D2_RANDOM = (
    "faster_rcnn_r_50_fpn_3x",
    "faster_rcnn_r_101_fpn_3x",
    "faster_rcnn_x_101_32x8d_fpn_3x",
    "retinanet_r_50_fpn_3x",
    "faster_rcnn_r_50_c4_3x",
    "faster_rcnn_r_50_dc5_3x",
)


def _d2_metadata(config: Detectron2Config, trained: bool) -> ModelMetadata:
    trunk = "ResNeXt-101-32x8d" if config.resnext else f"ResNet-{config.depth}"
    backbone = {"fpn": f"{trunk} + FPN", "retinanet": f"{trunk} + FPN with P6/P7",
                "c4": f"{trunk} up to res4", "dc5": f"{trunk}, res5 dilated"}[config.kind]  # fmt: skip
    if not trained:
        return ModelMetadata(
            source="detectron2",
            architecture=config.name,
            family="convnet",
            trained=False,
            input_size=SIZE,
            description=f"Detectron2 {config.path} backbone ({backbone}), random "
            f"initialisation (seed {RANDOM_SEED})",
        )
    return ModelMetadata(
        source="detectron2",
        architecture=config.name,
        family="convnet",
        task=config.task,
        training_method="supervised",
        training_data=config.data,
        trained=True,
        input_size=SIZE,
        description=f"Detectron2 model zoo {config.path}: its backbone ({backbone}), converted to "
        "torchvision modules",
        extra={"checkpoint": {"url": config.url}, "backbone_pretrained_on": "ImageNet-1k"},
    )


def _d2_backbone(config: Detectron2Config):
    """The torchvision modules that take the configuration's backbone weights."""
    import torch
    import torchvision.models as tvm
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7
    from torchvision.ops.misc import FrozenBatchNorm2d

    arch = "resnext101_32x8d" if config.resnext else f"resnet{config.depth}"
    dilate = [False, False, config.kind == "dc5"]
    with seeded(RANDOM_SEED):
        trunk = tvm.get_model(arch, weights=None, norm_layer=FrozenBatchNorm2d,
                              replace_stride_with_dilation=dilate)  # fmt: skip
    if not config.resnext:  # MSRA ResNets: the block's stride on its first 1 x 1 conv
        for layer in (trunk.layer2, trunk.layer3, trunk.layer4):
            first = layer[0]
            stride = first.conv2.stride
            if stride != (1, 1):
                first.conv1.stride, first.conv2.stride = stride, (1, 1)
    if config.kind in ("fpn", "retinanet"):
        extra = LastLevelP6P7(2048, 256) if config.kind == "retinanet" else LastLevelMaxPool()
        with seeded(RANDOM_SEED):
            return BackboneWithFPN(
                trunk,
                return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                in_channels_list=[256, 512, 1024, 2048],
                out_channels=256,
                extra_blocks=extra,
            )
    stages = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"]
    if config.kind == "dc5":
        stages.append("layer4")
    return torch.nn.Sequential(OrderedDict((s, getattr(trunk, s)) for s in stages))


def detectron2_to_torchvision(model: dict[str, Any], kind: str) -> dict[str, Any]:
    """Detectron2 backbone keys -> the keys of :func:`_d2_backbone`'s modules (heads and
    everything outside ``backbone.`` dropped)."""
    import re

    import numpy as np
    import torch

    fpn = kind in ("fpn", "retinanet")
    body = "body." if fpn else ""
    out: dict[str, Any] = {}
    for key, value in model.items():
        if not key.startswith("backbone."):
            continue
        name = key[len("backbone.") :].removeprefix("bottom_up.")  # FPN's trunk is bottom_up
        if name.startswith("stem.conv1.norm."):
            name = body + "bn1." + name[len("stem.conv1.norm.") :]
        elif name.startswith("stem.conv1."):
            name = body + "conv1." + name[len("stem.conv1.") :]
        elif match := re.match(r"res(\d)\.(\d+)\.(.*)", name):
            stage, block, rest = int(match[1]), match[2], match[3]
            rest = re.sub(r"^conv(\d)\.norm\.", r"bn\1.", rest)
            rest = re.sub(r"^shortcut\.norm\.", "downsample.1.", rest)
            rest = re.sub(r"^shortcut\.", "downsample.0.", rest)
            name = f"{body}layer{stage - 1}.{block}.{rest}"
        elif match := re.match(r"fpn_(lateral|output)(\d)\.(.*)", name):
            which = "inner_blocks" if match[1] == "lateral" else "layer_blocks"
            name = f"fpn.{which}.{int(match[2]) - 2}.0.{match[3]}"
        elif name.startswith("top_block."):
            name = "fpn.extra_blocks." + name[len("top_block.") :]
        else:
            name = "unconverted." + name  # reported by the strict load
        array = np.ascontiguousarray(value) if not isinstance(value, torch.Tensor) else value
        out[name] = torch.as_tensor(array)
    return out


#: (module, name) the Detectron2 pickles may name: numpy arrays and plain containers only
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
}


def read_detectron2_pickle(identifier: str, path: Path) -> dict[str, Any]:
    """The ``model`` dict of a Detectron2 model-zoo ``.pkl``, read without running code from
    the file (only numpy arrays and plain containers are rebuilt)."""
    import numpy as np

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) not in _PICKLE_ALLOWED:
                raise pickle.UnpicklingError(f"the file holds a {module}.{name} object")
            if name == "_reconstruct":
                return np._core.multiarray._reconstruct
            if name == "scalar":
                return np._core.multiarray.scalar
            if module == "collections":
                import collections

                return collections.OrderedDict
            return getattr(np, name)

    try:
        data = Unpickler(io.BytesIO(Path(path).read_bytes()), encoding="latin1").load()
    except Exception as exc:
        raise WeightsUnavailableError(
            f"cannot read the Detectron2 checkpoint {path} of {identifier!r} ({exc}); it should "
            "be a model-zoo .pkl ({'model': {name: array}, '__author__': ...}) of numpy arrays."
        ) from exc
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict):
        raise WeightsUnavailableError(
            f"the Detectron2 checkpoint {path} of {identifier!r} has no 'model' dict (a "
            "Detectron1 'blobs' file or another format); use a Detectron2 model-zoo file."
        )
    return model


def build_detectron2(name: str, trained: bool, weights: str | Path | None = None) -> Model:
    config = D2_BY_NAME[name]
    identifier = f"detectron2/{name}" + ("" if trained else ":random")
    if not trained and weights is not None:
        raise ValueError(f"{identifier} takes no weights file: it is a random initialisation.")
    module = _d2_backbone(config)
    if trained:
        if weights is not None:
            path = explicit_weights(identifier, weights)
            model = read_detectron2_pickle(identifier, path)
        else:
            model, path = load_torch_hub_weights(
                identifier, config.url, None, filename=config.filename,
                reader=read_detectron2_pickle,
            )  # fmt: skip
        state = detectron2_to_torchvision(model, config.kind)
        load_state(module, state, identifier, path)
    module.eval()
    std = X101_STD if config.resnext else MSRA_STD
    prep = ImagePreprocess(
        size=SIZE,
        resize=SIZE,
        mean=tuple(m / 255 for m in MSRA_MEAN),
        std=tuple(s / 255 for s in std),
        bgr=True,
    )
    return Model(
        identifier=identifier,
        module=module,
        preprocess=prep,
        preprocess_id=prep.describe(),
        metadata=with_loaded_facts(_d2_metadata(config, trained), module, SIZE),
    )


# --------------------------------------------------------------------------- listing


def _tv_missing(name: str) -> str | None:
    return hub_weights_missing(f"torchvision/{name}", _tv_weights(name).url)


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    specs = []
    for name in TORCHVISION:
        specs.append(
            ModelSpec(
                f"torchvision/{name}",
                partial(build_torchvision, name, True),
                _tv_metadata(name, True),
                weights_missing=partial(_tv_missing, name),
            )
        )
        if name in TORCHVISION_RANDOM:
            specs.append(
                ModelSpec(
                    f"torchvision/{name}:random",
                    partial(build_torchvision, name, False),
                    _tv_metadata(name, False),
                )
            )
    for config in DETECTRON2:
        specs.append(
            ModelSpec(
                f"detectron2/{config.name}",
                partial(build_detectron2, config.name, True),
                _d2_metadata(config, True),
                weights_missing=partial(
                    hub_weights_missing, f"detectron2/{config.name}", config.url, config.filename
                ),
            )
        )
    for name in D2_RANDOM:
        specs.append(
            ModelSpec(
                f"detectron2/{name}:random",
                partial(build_detectron2, name, False),
                _d2_metadata(D2_BY_NAME[name], False),
            )
        )
    return specs
