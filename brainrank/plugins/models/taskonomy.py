"""Taskonomy encoders (Zamir et al. 2018) through the ``visualpriors`` package.

``taskonomy/<task>`` is the encoder trained for one of the 25 Taskonomy tasks (a ResNet-50
trunk with a 8 x 16 x 16 latent); ``taskonomy/random`` is the same encoder initialised with
seed 0. Every layer of the encoder is a layer for brainrank (convolutions, batch norms, ReLUs
of every bottleneck, the compression to the latent and its group norm), not only the latent.
Inputs are 256 x 256 RGB scaled to [-1, 1], the encoders' training input.

The metadata carries each task's cluster in Taskonomy's task-similarity tree (2D, 3D,
geometric, semantic), the grouping Neural Taskonomy (Wang, Tarr & Wehbe 2019) compares with
the brain; jigsaw, an image-rearrangement pretext task, is counted as 2D.

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
    load_state,
    load_torch_hub_weights,
    with_loaded_facts,
)

INPUT_SIZE = 256

#: task -> (cluster, what the task network was trained to output)
TASKS: dict[str, tuple[str, str]] = {
    "autoencoding": ("2D", "the image itself (autoencoder)"),
    "colorization": ("2D", "colours from a greyscale image"),
    "denoising": ("2D", "the clean image from a noisy one"),
    "edge_texture": ("2D", "2D (texture) edges"),
    "inpainting": ("2D", "the masked centre of the image"),
    "jigsaw": ("2D", "the permutation of shuffled image tiles"),
    "keypoints2d": ("2D", "2D keypoints (SURF-like)"),
    "segment_unsup2d": ("2D", "unsupervised 2D segmentation"),
    "curvature": ("3D", "principal surface curvature"),
    "depth_euclidean": ("3D", "Euclidean depth"),
    "depth_zbuffer": ("3D", "z-buffer depth"),
    "edge_occlusion": ("3D", "occlusion (3D) edges"),
    "keypoints3d": ("3D", "3D keypoints"),
    "normal": ("3D", "surface normals"),
    "reshading": ("3D", "shading under a fixed light"),
    "segment_unsup25d": ("3D", "unsupervised 2.5D segmentation"),
    "egomotion": ("geometric", "camera motion between images"),
    "fixated_pose": ("geometric", "relative camera pose, fixated"),
    "nonfixated_pose": ("geometric", "relative camera pose, non-fixated"),
    "point_matching": ("geometric", "whether two patches show the same point"),
    "room_layout": ("geometric", "the room's 3D layout box"),
    "vanishing_point": ("geometric", "vanishing points"),
    "class_object": ("semantic", "ImageNet object classes (distilled)"),
    "class_scene": ("semantic", "Places scene classes (distilled)"),
    "segment_semantic": ("semantic", "semantic segmentation"),
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
    cluster, output = TASKS[task]
    return ModelMetadata(
        source="taskonomy",
        architecture="taskonomy-encoder",
        family="convnet",
        task=task,
        training_data="Taskonomy (indoor scenes)",
        trained=True,
        input_size=INPUT_SIZE,
        description=f"Taskonomy {task} encoder, trained to predict {output}",
        extra={"cluster": cluster},
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
        ModelSpec(f"taskonomy/{task}", partial(build, task), _metadata(task))
        for task in [*TASKS, "random"]
    ]
