"""A tiny third-party-style plugin used by the tests: one small torch model, one small
dataset whose responses are driven by that model, and nothing else. It is loaded with
``--plugin FILE`` and, in the entry-point test, through a real ``entry_points.txt``."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from brainrank.plugin import (
    Dataset,
    DatasetMetadata,
    DatasetSpec,
    Model,
    ModelMetadata,
    ModelSpec,
    StimulusSet,
    hookimpl,
    make_responses,
)

N_STIMULI = 24


def _module():
    import torch
    from torch import nn

    torch.manual_seed(1)
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(3, 4, 3),
            relu=nn.ReLU(inplace=True),
            pool=nn.AdaptiveAvgPool2d(2),
            flatten=nn.Flatten(),
            fc=nn.Linear(16, 5),
        )
    ).eval()


def _preprocess(image):
    """uint8 (H, W, 3) -> float (3, 8, 8) in [0, 1], resized so any image size works."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1) / 255.0
    if x.shape[1:] != (8, 8):
        x = F.interpolate(x[None], size=(8, 8), mode="bilinear", align_corners=False)[0]
    return x


def build_model() -> Model:
    return Model(
        identifier="tiny/net",
        module=_module(),
        preprocess=_preprocess,
        preprocess_id="tiny:uint8/255",
        metadata=ModelMetadata(
            source="tiny", architecture="tinynet", family="convnet", trained=False
        ),
    )


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        f"img{i:02d}": rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for i in range(N_STIMULI)
    }


def build_dataset(data_dir=None) -> Dataset:
    from brainrank.core.extraction import layer_activations

    images = _images()
    ids = list(images)
    acts = layer_activations(build_model(), list(images.values()), ["pool"])["pool"]
    rng = np.random.default_rng(1)
    signal = acts @ rng.standard_normal((acts.shape[1], 6))
    signal = (signal - signal.mean(0)) / signal.std(0)
    trials = np.concatenate([signal + 0.1 * rng.standard_normal(signal.shape) for _ in range(2)])
    responses = make_responses(
        trials,
        stimulus_id=ids * 2,
        repetition=[0] * N_STIMULI + [1] * N_STIMULI,
        neuroid_id=[f"n{i}" for i in range(6)],
        subject="s1",
        region=["a", "a", "a", "b", "b", "b"],
    )
    stimuli = StimulusSet("tiny", ids, images.__getitem__)
    return Dataset("tiny/data", stimuli, METADATA, responses=responses)


METADATA = DatasetMetadata(
    species="none", modality="synthetic", regions=("a", "b"), n_stimuli=N_STIMULI
)


@hookimpl
def brainrank_models():
    return [
        ModelSpec(
            "tiny/net",
            build_model,
            ModelMetadata(source="tiny", architecture="tinynet", family="convnet", trained=False),
        )
    ]


@hookimpl
def brainrank_datasets():
    return [DatasetSpec("tiny/data", build_dataset, METADATA)]
