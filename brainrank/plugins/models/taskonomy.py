"""Taskonomy encoders (Zamir et al. 2018) through the ``visualpriors`` package.

``taskonomy/<task>`` is the encoder trained for one of the 25 Taskonomy tasks (a ResNet-50
trunk with a 8 x 16 x 16 latent); ``taskonomy/random`` is the same encoder initialised with
seed 0. Every layer of the encoder is a layer for brainrank (convolutions, batch norms, ReLUs
of every bottleneck, the compression to the latent and its group norm), not only the latent.
Inputs are 256 x 256 RGB scaled to [-1, 1], the encoders' training input.

The metadata's task is ``taskonomy:<task>`` and its ``task_cluster`` the task's cluster in
Taskonomy's transfer tree (2D, 3D, geometric, semantic), the grouping the seed papers compare
with the brain (see :mod:`brainrank.core.taxonomy`: jigsaw is geometric, as in both Conwell
et al. papers' tables).

Weights: ``weights=PATH``, else the torch-hub checkpoint folder
(``$TORCH_HOME/hub/checkpoints/<task>_encoder-<sha256>.pth``, the file names ``visualpriors``
downloads), else a download when allowed. A checkpoint is ``{"state_dict": ...}``.
"""

from __future__ import annotations

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
)
from brainrank.plugins.models._common import (
    ImagePreprocess,
    hub_weights_missing,
    load_state,
    load_torch_hub_weights,
    with_loaded_facts,
)

INPUT_SIZE = 256

#: task -> what the task network was trained to output (the cluster of each task in
#: Taskonomy's transfer tree is :data:`brainrank.core.taxonomy.TASKONOMY_TASKS`)
TASKS: dict[str, str] = {
    "autoencoding": "the image itself (autoencoder)",
    "colorization": "colours from a greyscale image",
    "denoising": "the clean image from a noisy one",
    "edge_texture": "2D (texture) edges",
    "inpainting": "the masked centre of the image",
    "jigsaw": "the permutation of shuffled image tiles",
    "keypoints2d": "2D keypoints (SURF-like)",
    "segment_unsup2d": "unsupervised 2D segmentation",
    "curvature": "principal surface curvature",
    "depth_euclidean": "Euclidean depth",
    "depth_zbuffer": "z-buffer depth",
    "edge_occlusion": "occlusion (3D) edges",
    "keypoints3d": "3D keypoints",
    "normal": "surface normals",
    "reshading": "shading under a fixed light",
    "segment_unsup25d": "unsupervised 2.5D segmentation",
    "egomotion": "camera motion between images",
    "fixated_pose": "relative camera pose, fixated",
    "nonfixated_pose": "relative camera pose, non-fixated",
    "point_matching": "whether two patches show the same point",
    "room_layout": "the room's 3D layout box",
    "vanishing_point": "vanishing points",
    "class_object": "ImageNet object classes (distilled)",
    "class_scene": "Places scene classes (distilled)",
    "segment_semantic": "semantic segmentation",
}


def _metadata(task: str) -> ModelMetadata:
    if task == "random":
        return ModelMetadata(
            source="taskonomy",
            architecture="taskonomy-encoder",
            family="convnet",
            trained=False,
            input_size=INPUT_SIZE,
            description=f"Taskonomy encoder (ResNet-50 trunk), random initialisation "
            f"(seed {RANDOM_SEED})",
        )
    return ModelMetadata(
        source="taskonomy",
        architecture="taskonomy-encoder",
        family="convnet",
        task=f"taskonomy:{task}",
        training_method="taskonomy",
        training_data="Taskonomy",
        trained=True,
        input_size=INPUT_SIZE,
        description=f"Taskonomy {task} encoder, trained to predict {TASKS[task]}",
    )


def preprocess() -> ImagePreprocess:
    return ImagePreprocess(
        size=INPUT_SIZE, resize=INPUT_SIZE, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
    )


def _visualpriors():
    # visualpriors uses torch.utils.model_zoo without importing it (an AttributeError on
    # recent torch): import the submodule first.
    import torch.utils.model_zoo  # noqa: F401
    import visualpriors.taskonomy_network as network

    return network


def build(task: str, weights: str | Path | None = None) -> Model:
    network = _visualpriors()
    identifier = f"taskonomy/{task}"
    with seeded(RANDOM_SEED):
        module = network.TaskonomyEncoder(normalize_outputs=True, eval_only=True)
    if task != "random":
        url = network.TASKONOMY_PRETRAINED_URLS.get(f"{task}_encoder")
        if url is None:
            raise WeightsUnavailableError(f"visualpriors has no encoder for task {task!r}.")
        checkpoint, path = load_torch_hub_weights(identifier, url, weights)
        load_state(module, checkpoint, identifier, path)
    elif weights is not None:
        raise ValueError("taskonomy/random takes no weights file.")
    module.eval()
    prep = preprocess()
    return Model(
        identifier=identifier,
        module=module,
        preprocess=prep,
        preprocess_id=prep.describe(),
        metadata=with_loaded_facts(_metadata(task), module, INPUT_SIZE),
    )


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            f"taskonomy/{task}",
            partial(build, task),
            _metadata(task),
            weights_missing=partial(weights_missing, task) if task != "random" else None,
        )
        for task in [*TASKS, "random"]
    ]


def weights_missing(task: str) -> str | None:
    url = _visualpriors().TASKONOMY_PRETRAINED_URLS[f"{task}_encoder"]
    return hub_weights_missing(f"taskonomy/{task}", url)
