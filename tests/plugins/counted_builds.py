"""A test plugin whose models note every build in the file named by the environment
variable ``BRAINRANK_TEST_BUILD_LOG`` (one line per build), so tests can tell whether a run
built a model. Stimuli come from ``tiny_plugin.py``'s ``tiny/data`` (8 x 8 images)."""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

from brainrank.plugin import Model, ModelMetadata, ModelSpec, hookimpl, seeded

RANDOM = ModelMetadata(source="counted", architecture="net", family="convnet", trained=False)
TRAINED = ModelMetadata(source="counted", architecture="net", family="convnet", trained=True)


def _note(identifier: str) -> None:
    log = os.environ.get("BRAINRANK_TEST_BUILD_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(identifier + "\n")


def _module():
    from torch import nn

    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(3, 4, 3),
            relu=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(2),
            flatten=nn.Flatten(),
            fc=nn.Linear(16, 5),
        )
    ).eval()


def _preprocess(image):
    import torch

    return torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1) / 255.0


def _model(identifier: str, module, metadata: ModelMetadata) -> Model:
    return Model(identifier, module, _preprocess, "counted:uint8/255", metadata)


def build_random(seed: int = 0) -> Model:
    """A seeded random initialisation (``seed`` is a model option)."""
    _note("counted/random")
    with seeded(int(seed)):
        module = _module()
    return _model("counted/random", module, RANDOM)


def build_file(weights: str | None = None) -> Model:
    """Weights from the file given as the ``weights`` option."""
    import torch

    _note("counted/file")
    with seeded(0):
        module = _module()
    if weights is not None:
        module.load_state_dict(torch.load(weights, weights_only=True))
    return _model("counted/file", module, TRAINED)


def build_implicit() -> Model:
    """Trained weights found implicitly (as from a hub cache): always built."""
    _note("counted/implicit")
    with seeded(3):
        module = _module()
    return _model("counted/implicit", module, TRAINED)


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    return [
        ModelSpec("counted/random", build_random, RANDOM),
        ModelSpec("counted/file", build_file, TRAINED),
        ModelSpec("counted/implicit", build_implicit, TRAINED),
    ]
