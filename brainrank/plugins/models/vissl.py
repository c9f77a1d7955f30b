"""Self-supervised ResNet-50s of the VISSL model zoo, as checkpoints of torchvision's ResNet-50.

``torchvision/resnet50@<method>`` is torchvision's ResNet-50 architecture (without its
classifier, which these trunks do not have) with the weights VISSL released for a
self-supervised method (Goyal et al., VISSL, 2021; https://github.com/facebookresearch/vissl,
``MODEL_ZOO.md``): SimCLR, MoCo v2, PIRL, NPID, NPID++ (contrastive), Barlow Twins, SwAV,
DeepCluster v2, ClusterFit (non-contrastive), Jigsaw, RotNet, Colorization (pretext tasks).
All were trained on ImageNet-1k without labels. The linear-probe ImageNet top-1 that VISSL
reports is kept in ``extra["linear_probe_top1"]`` (it is not the accuracy of a classifier
these weights contain, so ``imagenet_top1`` stays empty).

Checkpoint layouts read (VISSL's ``extra_scripts/convert_vissl_to_torchvision.py`` and
``vissl/utils/checkpoint.py`` describe them):

- VISSL training checkpoints (``model_final_checkpoint_phase<N>.torch``): the trunk under
  ``classy_state_dict -> base_model -> model -> trunk``, keys prefixed ``_feature_blocks.``;
  the training heads under ``... -> heads`` are not used;
- converted files (``converted_vissl_*.torch``): the trunk under ``model_state_dict`` (or at
  the top), keys prefixed ``_feature_blocks.``;
- the SwAV repository's DeepCluster v2 files (``*_pretrain.pth.tar``): a flat state dict
  with DataParallel's ``module.`` prefix and the ``projection_head`` and ``prototypes`` of
  training (dropped).

After the prefixes are removed the keys are torchvision's (``conv1.weight``,
``layer1.0.bn1.running_mean``...), loaded strictly: a file that does not fit says which keys
differ. Preprocessing: shorter side to 256 (bilinear), centre crop 224, ImageNet mean and
std, as VISSL's evaluation transforms.

Weights: ``weights=PATH``, else the torch-hub checkpoint folder
(``$TORCH_HOME/hub/checkpoints``). The file name there is the URL's last part, except for
VISSL's ``model_final_checkpoint_phase<N>.torch`` files, whose names repeat across methods:
those are looked for as ``<URL folder>_model_final_checkpoint_phase<N>.torch`` (the error
message names the file and the URL).
"""

from __future__ import annotations

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
    drop_keys,
    hub_weights_missing,
    load_state,
    load_torch_hub_weights,
    strip_prefixes,
    with_loaded_facts,
)

ZOO = "https://dl.fbaipublicfiles.com/vissl/model_zoo/"


@dataclass(frozen=True)
class Release:
    """A VISSL ResNet-50 checkpoint: where it is and what it was trained with."""

    tag: str
    path: str  # under ZOO
    method: str
    task: str
    linear_top1: float
    description: str

    @property
    def url(self) -> str:
        return ZOO + self.path

    @property
    def filename(self) -> str:
        folder, _, name = self.path.rpartition("/")
        if name.startswith("model_final_checkpoint"):
            return f"{folder.rsplit('/', 1)[-1]}_{name}"
        return name


_C = "contrastive self-supervision"
_N = "non-contrastive self-supervision"
_P = "pretext self-supervision"

RELEASES: tuple[Release, ...] = (
    Release("simclr", "simclr_rn50_1000ep_simclr_8node_resnet_16_07_20.afe428c7/"
            "model_final_checkpoint_phase999.torch", "simclr", _C, 68.8, "SimCLR, 1000 epochs"),
    Release("mocov2", "moco_v2_1node_lr.03_step_b32_zero_init/"
            "model_final_checkpoint_phase199.torch", "mocov2", _C, 66.4,
            "MoCo v2, 200 epochs, batch 256"),
    Release("pirl", "pirl_jigsaw_4node_pirl_jigsaw_4node_resnet_22_07_20.34377f59/"
            "model_final_checkpoint_phase799.torch", "pirl", _C, 64.29, "PIRL, 800 epochs"),
    Release("npid", "npid_1node_200ep_4kneg_npid_8gpu_resnet_23_07_20.9eb36512/"
            "model_final_checkpoint_phase199.torch", "npid", _C, 52.73,
            "NPID, 4k negatives, 200 epochs"),
    Release("npid++", "npid_pp/4node_800ep_32kneg_cosine_resnet_23_07_20.75432662/"
            "model_final_checkpoint_phase799.torch", "npid++", _C, 56.68,
            "NPID++, 32k negatives, 800 epochs"),
    Release("barlowtwins", "barlow_twins/barlow_twins_32gpus_4node_imagenet1k_1000ep_resnet50.torch",
            "barlowtwins", _N, 71.80, "Barlow Twins, 1000 epochs, batch 2048"),
    Release("swav", "swav_in1k_rn50_400ep_swav_8node_resnet_27_07_20.a5990fc9/"
            "model_final_checkpoint_phase399.torch", "swav", _N, 74.81,
            "SwAV, 400 epochs, 2x224+6x96 crops, batch 4096"),
    Release("swav-2x224", "swav_8node_2x224_rn50_in1k_swav_8node_resnet_30_07_20.c8fd7169/"
            "model_final_checkpoint_phase399.torch", "swav", _N, 69.53,
            "SwAV, 400 epochs, 2x224 crops, batch 4096"),
    Release("deepclusterv2", "deepclusterv2_800ep_pretrain.pth.tar", "deepclusterv2", _N, 75.18,
            "DeepCluster v2, 800 epochs, 2x224+6x96 crops"),
    Release("deepclusterv2-2x224", "deepclusterv2_400ep_2x224_pretrain.pth.tar", "deepclusterv2",
            _N, 70.01, "DeepCluster v2, 400 epochs, 2x224 crops"),
    Release("clusterfit", "converted_vissl_rn50_rotnet_16kclusters_in1k_ep105.torch", "clusterfit",
            _N, 53.63, "ClusterFit, 16k clusters of RotNet features, 105 epochs"),
    Release("jigsaw", "jigsaw_rn50_in1k_ep105_perm2k_jigsaw_8gpu_resnet_17_07_20.db174a43/"
            "model_final_checkpoint_phase104.torch", "jigsaw", _P, 48.57,
            "Jigsaw, 100 permutations, 105 epochs"),
    Release("jigsaw-goyal19", "converted_vissl_rn50_jigsaw_in1k_goyal19.torch", "jigsaw", _P, 46.58,
            "Jigsaw (Goyal et al. 2019, converted from Caffe2)"),
    Release("rotnet", "rotnet_rn50_in1k_ep105_rotnet_8gpu_resnet_17_07_20.46bada9f/"
            "model_final_checkpoint_phase125.torch", "rotnet", _P, 48.2, "RotNet, 105 epochs"),
    Release("colorization-goyal19", "converted_vissl_rn50_colorization_in1k_goyal19.torch",
            "colorization", _P, 40.11, "Colorization (Goyal et al. 2019, converted from Caffe2)"),
)  # fmt: skip
BY_TAG = {r.tag: r for r in RELEASES}

#: prefixes of VISSL trunks and of DataParallel, removed from the keys
PREFIXES = ("module.", "_feature_blocks.", "trunk.", "base_model.")
#: training heads, not part of the trunk
HEADS = ("fc.", "projection_head.", "prototypes.", "heads.", "head.")


def vissl_trunk(checkpoint: Any) -> dict[str, Any]:
    """The ResNet trunk of a VISSL (or SwAV-repository) checkpoint with torchvision's key
    names."""
    state = checkpoint
    if isinstance(state, dict) and "classy_state_dict" in state:
        try:
            state = state["classy_state_dict"]["base_model"]["model"]["trunk"]
        except (KeyError, TypeError) as exc:
            raise WeightsUnavailableError(
                "the VISSL checkpoint has a 'classy_state_dict' without "
                "base_model -> model -> trunk; it is not a VISSL trunk checkpoint."
            ) from exc
    elif isinstance(state, dict):
        for key in ("model_state_dict", "state_dict"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state:
        raise WeightsUnavailableError("the checkpoint holds no state dict.")
    state = strip_prefixes(dict(state), PREFIXES)
    return drop_keys(state, HEADS)


def _metadata(release: Release) -> ModelMetadata:
    return ModelMetadata(
        source="vissl",
        architecture="resnet50",
        family="convnet",
        task=release.task,
        training_method=release.method,
        training_data="ImageNet-1k",
        trained=True,
        input_size=224,
        description=f"torchvision ResNet-50 with VISSL's {release.description} trunk "
        "(ImageNet-1k, no labels)",
        extra={
            "checkpoint": {"of": "torchvision/resnet50", "tag": release.tag, "url": release.url},
            "linear_probe_top1": release.linear_top1,
            "linear_probe_source": "VISSL MODEL_ZOO.md (linear evaluation on ImageNet-1k)",
        },
    )


def preprocess() -> ImagePreprocess:
    return ImagePreprocess(size=224, resize=256)


def build(tag: str, weights: str | Path | None = None) -> Model:
    import torch
    import torchvision.models as tvm

    release = BY_TAG[tag]
    identifier = f"torchvision/resnet50@{tag}"
    with seeded(RANDOM_SEED):
        module = tvm.resnet50(weights=None)
    module.fc = torch.nn.Identity()  # the trunk has no classifier
    checkpoint, path = load_torch_hub_weights(
        identifier, release.url, weights, filename=release.filename
    )
    try:
        state = vissl_trunk(checkpoint)
    except WeightsUnavailableError as exc:
        raise WeightsUnavailableError(f"the weights file {path} of {identifier!r}: {exc}") from exc
    load_state(module, state, identifier, path)
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
            identifier=f"torchvision/resnet50@{r.tag}",
            factory=partial(build, r.tag),
            metadata=_metadata(r),
            weights_missing=partial(
                hub_weights_missing, f"torchvision/resnet50@{r.tag}", r.url, r.filename
            ),
        )
        for r in RELEASES
    ]
