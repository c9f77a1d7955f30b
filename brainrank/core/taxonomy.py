"""The model taxonomy: the fixed vocabularies of :class:`~brainrank.core.specs.ModelMetadata`.

Every model records, besides its source and architecture, five facts the leaderboard
filters and the analyses compare (architecture vs task vs training data vs training method,
trained vs random). Each takes a value from a fixed vocabulary, so that "ImageNet-21k" means
the same thing in every row and a filter finds every model it should:

- **family** (:data:`FAMILIES`): ``convnet`` (convolutions only), ``transformer`` (attention
  over patch tokens; a convolutional patch embedding or pooling stage does not change that:
  ViT, DeiT, Swin, BEiT, CaiT, PiT, XCiT, TNT, Twins, CrossViT, EVA), ``mlp-mixer`` (token
  mixing by MLPs: MLP-Mixer, ResMLP, gMLP), ``hybrid`` (convolution stages and attention
  (or a pooling token mixer in a MetaFormer) in one network: Visformer, NesT, PoolFormer,
  EfficientFormer, MobileViT, LeViT, CoaT, ConViT, CvT, MaxViT, CoAtNet, BoTNet, HaloNet,
  LambdaNet, EdgeNeXt, FastViT, a ViT on a ResNet stem), ``other`` (no network: the
  hand-made baselines).
- **task** (:data:`TASKS`, or ``taskonomy:<task>`` for the Taskonomy tasks of
  :data:`TASKONOMY_TASKS`): the objective the released weights were last trained for. A
  network pre-trained without labels and fine-tuned on labels has task ``classification``;
  its pre-training shows in the training method.
- **task_cluster**: for Taskonomy tasks only, the cluster of Taskonomy's transfer tree
  (``2D``, ``3D``, ``geometric``, ``semantic``), derived from the task.
- **training_method** (:data:`TRAINING_METHODS`): the recipe that produced the weights
  (``supervised``, ``simclr``, ``clip``...); a self-supervised pre-training followed by a
  supervised fine-tuning is named by its pre-training (``beit``, ``mae``, ``clip``), the
  fine-tuning data recorded in ``extra["fine_tuned_on"]``.
- **training_data** (:data:`TRAINING_DATA`): the images the weights were (pre-)trained on,
  the largest set when there were several stages (a ViT pre-trained on ImageNet-21k and
  fine-tuned on ImageNet-1k has ``ImageNet-21k``).

An untrained network has task, training method and training data ``none``; a hand-made
baseline has training method ``handcrafted`` (so ``--random`` lists randomly initialised
networks and leaves the baselines apart). ``unknown`` is the honest value for a checkpoint
whose training nobody stated (a user's own file).

Values are matched without regard to case and normalised to the spellings below. Strings
that brainrank's own plugins wrote before this vocabulary existed are mapped (not warned
about): task ``"object classification"`` -> ``classification``, ``"image-text contrastive
(CLIP)"`` -> ``language-image``, a bare Taskonomy task name -> ``taskonomy:<name>``; training
data with a parenthesised or comma-separated remark (``"ImageNet-1k (a1_in1k)"``,
``"ImageNet-21k, fine-tuned on ImageNet-1k"``) -> the data set it names first. Anything else
outside the vocabulary is refused with the list of allowed values.

The Taskonomy clusters follow both seed papers that group the tasks (Conwell et al. 2021,
appendix A.12, figure 12; Conwell et al., "5.17 billion regression fits", figure 3A):
jigsaw is *geometric*; denoising (which the mouse paper lists as Taskonomy's "other"
cluster and lumps with the autoencoder) is *2D*; surface normals are *3D* (the NSD paper's
table and Taskonomy's tree; the mouse paper's definition table says "Other", which its own
text contradicts). Colorization, in neither paper's table, is 2D as in Taskonomy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from brainrank.core.errors import InputError

#: architecture families (see the module docstring for what falls where)
FAMILIES: tuple[str, ...] = ("convnet", "transformer", "mlp-mixer", "hybrid", "other")

#: tasks (other than the Taskonomy tasks) and what they mean
TASKS: dict[str, str] = {
    "classification": "category labels (object or scene classes), possibly after a "
    "self-supervised or language-image pre-training",
    "contrastive self-supervision": "instance discrimination against negative examples "
    "(SimCLR, MoCo, PIRL, NPID, IPCL)",
    "non-contrastive self-supervision": "self-supervision without negative pairs: "
    "redundancy reduction, self-distillation, clustering (BarlowTwins, DINO, SwAV, "
    "DeepCluster, ClusterFit)",
    "pretext self-supervision": "a hand-designed pretext task (jigsaw puzzles, rotation "
    "prediction, colorization)",
    "masked image modelling": "reconstruction of masked image patches (MAE, BEiT pre-training)",
    "language-image": "image-text contrastive alignment (CLIP, SLIP)",
    "detection": "object detection (bounding boxes)",
    "segmentation": "semantic, instance or panoptic segmentation",
    "keypoints": "keypoint (human pose) detection",
    "depth": "monocular depth estimation",
    "none": "no training (a random initialisation or a hand-made baseline)",
    "unknown": "not stated (for example a user's checkpoint)",
}

#: the 25 Taskonomy tasks (Zamir et al. 2018) and their cluster in the transfer tree
TASKONOMY_TASKS: dict[str, str] = {
    "autoencoding": "2D",
    "colorization": "2D",
    "denoising": "2D",
    "edge_texture": "2D",
    "inpainting": "2D",
    "keypoints2d": "2D",
    "segment_unsup2d": "2D",
    "curvature": "3D",
    "depth_euclidean": "3D",
    "depth_zbuffer": "3D",
    "edge_occlusion": "3D",
    "keypoints3d": "3D",
    "normal": "3D",
    "reshading": "3D",
    "segment_unsup25d": "3D",
    "egomotion": "geometric",
    "fixated_pose": "geometric",
    "jigsaw": "geometric",
    "nonfixated_pose": "geometric",
    "point_matching": "geometric",
    "room_layout": "geometric",
    "vanishing_point": "geometric",
    "class_object": "semantic",
    "class_scene": "semantic",
    "segment_semantic": "semantic",
}
TASKONOMY_CLUSTERS: tuple[str, ...] = ("2D", "3D", "geometric", "semantic")
TASKONOMY_PREFIX = "taskonomy:"

#: training methods and what they mean
TRAINING_METHODS: dict[str, str] = {
    "supervised": "category labels from scratch (or from a supervised initialisation)",
    "distillation": "labels plus a teacher network's outputs (DeiT/CaiT/LeViT 'dist')",
    "semi-supervised": "labelled images plus pseudo-labelled unlabelled ones (Noisy "
    "Student, FAIR's semi-supervised YFCC models)",
    "weakly-supervised": "hashtags or other noisy web labels (Instagram WSL, SWSL)",
    "simclr": "SimCLR (Chen et al. 2020)",
    "mocov2": "MoCo v2 (Chen et al. 2020)",
    "mocov3": "MoCo v3 (Chen et al. 2021)",
    "swav": "SwAV (Caron et al. 2020)",
    "barlowtwins": "Barlow Twins (Zbontar et al. 2021)",
    "pirl": "PIRL (Misra & van der Maaten 2020)",
    "npid": "NPID, instance discrimination with a memory bank (Wu et al. 2018)",
    "npid++": "NPID++ (Misra & van der Maaten 2020)",
    "deepclusterv2": "DeepCluster v2 (Caron et al. 2020)",
    "clusterfit": "ClusterFit (Yan et al. 2020)",
    "jigsaw": "jigsaw puzzles (Noroozi & Favaro 2016; Goyal et al. 2019)",
    "rotnet": "rotation prediction (Gidaris et al. 2018)",
    "colorization": "colorization (Zhang et al. 2016; Goyal et al. 2019)",
    "dino": "DINO self-distillation (Caron et al. 2021)",
    "ipcl": "instance-prototype contrastive learning (Konkle & Alvarez 2022)",
    "mae": "masked autoencoder (He et al. 2022)",
    "beit": "BEiT masked image modelling (Bao et al. 2022)",
    "eva": "EVA masked image modelling of CLIP features (Fang et al. 2023)",
    "clip": "contrastive language-image pre-training (Radford et al. 2021)",
    "slip": "CLIP plus SimCLR (Mu et al. 2022)",
    "taskonomy": "one Taskonomy task's supervision (Zamir et al. 2018)",
    "handcrafted": "no learning: a hand-made feature extractor (baselines)",
    "none": "no training: a random initialisation",
    "unknown": "not stated (for example a user's checkpoint)",
}

#: training data sets (the images a model was (pre-)trained on)
TRAINING_DATA: dict[str, str] = {
    "ImageNet-1k": "ILSVRC-2012, 1.28 M images, 1000 classes",
    "ImageNet-12k": "timm's 11,821-class subset of ImageNet-22k",
    "ImageNet-21k": "the full ImageNet (Winter 2021 release, ~13 M images, 19-21k classes)",
    "ImageNet-22k": "the full ImageNet (Fall 2011 release, 14.2 M images, 21,841 classes)",
    "Places365": "Places365-Standard or -Challenge (scenes, Zhou et al. 2017)",
    "OpenImages": "Open Images v6",
    "VGGFace2": "VGGFace2 (faces)",
    "FacesPlacesObjects": "Konkle lab's faces, places and objects mixture (IPCL)",
    "COCO": "MS COCO (detection, segmentation, keypoints)",
    "LVIS": "LVIS (COCO images, long-tail categories)",
    "Taskonomy": "the Taskonomy indoor-scene images (Zamir et al. 2018)",
    "MiDaS-mix": "the mixture of depth data sets MiDaS was trained on (Ranftl et al. 2020)",
    "CIFAR-10": "CIFAR-10 (60,000 32 x 32 images)",
    "JFT-300M": "Google's JFT-300M (Noisy Student: with ImageNet-1k labels)",
    "Instagram-1B": "1 billion public Instagram images (SWSL)",
    "Instagram-3.5B": "3.5 billion public Instagram images (WSL)",
    "YFCC-15M": "the 15 M English-captioned YFCC100M images (CLIP's subset)",
    "YFCC-100M": "YFCC100M (Flickr)",
    "WIT-400M": "OpenAI's 400 M image-text pairs (CLIP)",
    "LAION-400M": "LAION-400M image-text pairs",
    "LAION-2B": "LAION-2B (English) image-text pairs",
    "LAION-5B": "LAION-5B image-text pairs",
    "LAION-Aesthetics": "LAION's aesthetic subset",
    "DataComp": "DataComp image-text pairs",
    "CommonPool": "DataComp's CommonPool",
    "MetaCLIP": "MetaCLIP's curated image-text pairs",
    "DFN": "Data Filtering Networks' image-text pairs",
    "WebLI": "Google's WebLI",
    "CC-3M": "Conceptual Captions 3M",
    "CC-12M": "Conceptual Captions 12M",
    "other": "another data set (named in the model's description)",
    "none": "no training data (random initialisation or baseline)",
    "unknown": "not stated (for example a user's checkpoint)",
}

#: old free-text tasks -> vocabulary (brainrank's own plugins wrote these before)
LEGACY_TASKS: dict[str, str] = {
    "object classification": "classification",
    "image classification": "classification",
    "scene classification": "classification",
    "image-text contrastive (clip)": "language-image",
    **{name: TASKONOMY_PREFIX + name for name in TASKONOMY_TASKS},
}

#: other spellings of the training data sets
_DATA_ALIASES: dict[str, str] = {
    "imagenet": "ImageNet-1k",
    "in1k": "ImageNet-1k",
    "ilsvrc2012": "ImageNet-1k",
    "imagenet-21k-p": "ImageNet-21k",
    "in21k": "ImageNet-21k",
    "in22k": "ImageNet-22k",
    "in12k": "ImageNet-12k",
    "places": "Places365",
    "places2": "Places365",
    "coco2017": "COCO",
    "openimagesv6": "OpenImages",
    "openai": "WIT-400M",
    "jft": "JFT-300M",
}


def _allowed(values: Iterable[str], extra: str = "") -> str:
    return ", ".join(repr(v) for v in values) + extra


def _lookup(value: str, vocabulary: Iterable[str]) -> str | None:
    folded = value.strip().casefold()
    for canonical in vocabulary:
        if canonical.casefold() == folded:
            return canonical
    return None


def normalise_family(family: str) -> str:
    found = _lookup(str(family), FAMILIES)
    if found is None:
        raise InputError(
            f"model family {family!r} is not one of {_allowed(FAMILIES)} (see "
            "brainrank.core.taxonomy for what each covers)."
        )
    return found


def normalise_task(task: str | None) -> str | None:
    """A task in the vocabulary (``None`` stays ``None``: not stated)."""
    if task is None:
        return None
    text = str(task).strip()
    folded = text.casefold()
    if folded.startswith(TASKONOMY_PREFIX):
        name = folded[len(TASKONOMY_PREFIX) :]
        if name in TASKONOMY_TASKS:
            return TASKONOMY_PREFIX + name
        raise InputError(
            f"model task {task!r}: {name!r} is not a Taskonomy task; the Taskonomy tasks are "
            f"{_allowed(TASKONOMY_TASKS)}."
        )
    found = _lookup(text, TASKS)
    if found is not None:
        return found
    if folded in LEGACY_TASKS:
        return LEGACY_TASKS[folded]
    raise InputError(
        f"model task {task!r} is not in brainrank's task vocabulary: "
        f"{_allowed(TASKS)}, or 'taskonomy:<task>' for a Taskonomy task "
        f"({', '.join(TASKONOMY_TASKS)}). See brainrank.core.taxonomy.TASKS for what each "
        "means."
    )


def task_cluster(task: str | None) -> str | None:
    """The Taskonomy cluster of a (normalised) task, or None for other tasks."""
    if task and task.startswith(TASKONOMY_PREFIX):
        return TASKONOMY_TASKS[task[len(TASKONOMY_PREFIX) :]]
    return None


def normalise_training_method(method: str | None) -> str | None:
    if method is None:
        return None
    found = _lookup(str(method), TRAINING_METHODS)
    if found is None:
        raise InputError(
            f"training method {method!r} is not in brainrank's vocabulary: "
            f"{_allowed(TRAINING_METHODS)} (see brainrank.core.taxonomy.TRAINING_METHODS)."
        )
    return found


def normalise_training_data(data: str | None) -> str | None:
    if data is None:
        return None
    text = str(data).strip()
    candidates = [text]
    # legacy remarks: "ImageNet-1k (a1_in1k)", "ImageNet-21k, fine-tuned on ImageNet-1k"
    head = re.split(r"[(,]", text, maxsplit=1)[0].strip()
    if head and head != text:
        candidates.append(head)
    for candidate in candidates:
        found = _lookup(candidate, TRAINING_DATA)
        if found is None:
            found = _DATA_ALIASES.get(candidate.casefold())
        if found is not None:
            return found
    raise InputError(
        f"training data {data!r} is not in brainrank's vocabulary: {_allowed(TRAINING_DATA)} "
        "(see brainrank.core.taxonomy.TRAINING_DATA; 'other' with the data set named in the "
        "description for anything else)."
    )


def normalise(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The taxonomy fields of a model's metadata, checked and normalised.

    ``fields`` holds ``family``, ``task``, ``task_cluster``, ``training_method``,
    ``training_data``, ``trained``, ``imagenet_top1``, ``n_params`` and ``input_size``; the
    returned dict holds their normalised values. Raises :class:`InputError` saying what is
    wrong and which values are allowed.
    """
    out = dict(fields)
    out["family"] = normalise_family(fields["family"])
    task = normalise_task(fields.get("task"))
    method = normalise_training_method(fields.get("training_method"))
    data = normalise_training_data(fields.get("training_data"))
    trained = fields.get("trained", True)
    if not isinstance(trained, bool):
        raise InputError(f"ModelMetadata.trained must be True or False, not {trained!r}.")
    if not trained:
        task = "none" if task is None else task
        data = "none" if data is None else data
        method = "none" if method is None else method
        wrong = {
            name: value
            for name, value in (("task", task), ("training_data", data))
            if value != "none"
        }
        if method not in ("none", "handcrafted"):
            wrong["training_method"] = method
        if wrong:
            raise InputError(
                f"an untrained model (trained=False) has task and training data 'none' and "
                f"training method 'none' (a random initialisation) or 'handcrafted' (a "
                f"baseline); got {wrong}."
            )
    elif "none" in (task, data) or method in ("none", "handcrafted"):
        raise InputError(
            "a trained model (trained=True) cannot have task, training data or training "
            f"method 'none' or 'handcrafted' (got task={task!r}, training_data={data!r}, "
            f"training_method={method!r}); use 'unknown' for what is not known."
        )
    cluster = task_cluster(task)
    given = fields.get("task_cluster")
    if given is not None and given != cluster:
        raise InputError(
            f"task_cluster {given!r} does not match task {task!r} (whose cluster is "
            f"{cluster!r}); leave task_cluster out, it is derived from the task."
        )
    out.update(task=task, task_cluster=cluster, training_method=method, training_data=data)
    top1 = fields.get("imagenet_top1")
    if top1 is not None:
        try:
            top1 = float(top1)
        except (TypeError, ValueError):
            top1 = math.nan
        if not 0.0 <= top1 <= 100.0:
            raise InputError(
                f"imagenet_top1 must be a top-1 accuracy in percent (0-100), got "
                f"{fields.get('imagenet_top1')!r}."
            )
        out["imagenet_top1"] = top1
    for name in ("n_params", "input_size"):
        value = fields.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise InputError(f"ModelMetadata.{name} must be a non-negative integer, got {value!r}.")
    return out


def vocabularies() -> dict[str, Any]:
    """Every vocabulary, for documentation and ``brainrank models --vocabulary``."""
    return {
        "family": list(FAMILIES),
        "task": dict(TASKS),
        "taskonomy_tasks": dict(TASKONOMY_TASKS),
        "training_method": dict(TRAINING_METHODS),
        "training_data": dict(TRAINING_DATA),
    }
