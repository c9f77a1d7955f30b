"""A checkpoint is a model: ``BASE@TAG`` identifiers for weights that are not ``BASE``'s.

Family plugins register the checkpoints they know (``torchvision/resnet50@barlowtwins``,
with the authors' file, layout and metadata). Any other ``BASE@TAG`` is a *user
checkpoint*: the architecture of ``BASE`` (a registered model that loads trained weights,
or a registered checkpoint ``BASE@OTHER`` whose factory reads the same layout) with the
weights of the file given as ``weights=PATH`` (``--weights BASE@TAG=PATH``). It is a model of
its own in the leaderboard, so its scores never overwrite those of ``BASE``. Its metadata
keeps ``BASE``'s architecture, family and input size and says that its task, training
method and training data are ``unknown``, unless the user states them (the factory's
``task``, ``training_method``, ``training_data`` and ``description`` options; ``--model-info
BASE@TAG.KEY=VALUE`` on the command line).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from brainrank.core.errors import WeightsUnavailableError
from brainrank.core.specs import Model, ModelMetadata, ModelSpec

#: the metadata a user may state about a checkpoint of theirs
STATED_FIELDS = ("task", "training_method", "training_data", "description")


def user_checkpoint_metadata(
    base: ModelMetadata, base_identifier: str, tag: str, **stated: Any
) -> ModelMetadata:
    """``base``'s architecture facts with the training of a user's checkpoint: ``unknown``
    unless stated."""
    extra = {k: v for k, v in base.extra.items() if k not in ("pretrained_tag", "fine_tuned_on")}
    extra["checkpoint"] = {"of": base_identifier, "tag": tag, "kind": "user"}
    given = {k: v for k, v in stated.items() if v is not None}
    description = given.pop("description", None) or (
        f"user checkpoint {tag!r} of the {base_identifier} architecture (weights from a local "
        "file); its training is not stated"
    )
    return ModelMetadata(
        source=base.source,
        architecture=base.architecture,
        family=base.family,
        task=given.get("task", "unknown"),
        training_method=given.get("training_method", "unknown"),
        training_data=given.get("training_data", "unknown"),
        trained=True,
        input_size=base.input_size,
        description=description,
        extra=extra,
    )


class UserCheckpoint:
    """The factory of a user checkpoint: the base model's factory with the user's weights
    file, renamed to the checkpoint's identifier and given the checkpoint's metadata."""

    def __init__(self, base: ModelSpec, identifier: str, tag: str):
        self.base = base
        self.identifier = identifier
        self.tag = tag

    def __call__(
        self,
        weights: Any = None,
        task: str | None = None,
        training_method: str | None = None,
        training_data: str | None = None,
        description: str | None = None,
    ) -> Model:
        metadata = user_checkpoint_metadata(
            self.base.metadata,
            self.base.identifier,
            self.tag,
            task=task,
            training_method=training_method,
            training_data=training_data,
            description=description,
        )  # checked before anything is built
        if weights is None:
            raise WeightsUnavailableError(
                f"{self.identifier!r} is a user checkpoint of {self.base.identifier!r}'s "
                f"architecture: give its file with weights=PATH (--weights "
                f"{self.identifier}=PATH on the command line)."
            )
        built = self.base.factory(weights=weights)
        extra = {
            **{k: v for k, v in built.metadata.extra.items() if k not in metadata.extra},
            **metadata.extra,
        }
        extra.pop("pretrained_tag", None)
        extra.pop("fine_tuned_on", None)
        return dataclasses.replace(
            built,
            identifier=self.identifier,
            metadata=dataclasses.replace(
                metadata,
                n_params=built.metadata.n_params,
                input_size=built.metadata.input_size,
                extra=extra,
            ),
        )


def user_checkpoint_spec(base: ModelSpec, identifier: str, tag: str) -> ModelSpec:
    """The spec of the user checkpoint ``identifier`` (``BASE@TAG``) of ``base``."""
    factory = UserCheckpoint(base, identifier, tag)
    return ModelSpec(
        identifier=identifier,
        factory=factory,
        metadata=user_checkpoint_metadata(base.metadata, base.identifier, tag),
        plugin=base.plugin,
        weights_missing=lambda: (
            f"{identifier!r} is a user checkpoint: give its file with --weights {identifier}=PATH."
        ),
    )


def is_user_checkpoint(spec: ModelSpec) -> bool:
    return isinstance(spec.factory, UserCheckpoint)
