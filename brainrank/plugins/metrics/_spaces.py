"""Shared pieces of the metrics that score feature spaces of several models (``stacking``
with ``spaces``, ``variance-partitioning``): the spaces' designs on a split, and the choice
of a best-layer space's layer per (subject, region) on the training stimuli only.

A space given as a bare model (``MODEL``) stands for that model's best layer. The layer is
chosen per (subject, region), as the layer whose ridge model has the highest mean
leave-one-out R^2 over the region's neuroids *on the training stimuli* (the test stimuli the
metric is scored on play no part in it, so the choice cannot flatter the score); the rows
say which layer was chosen (``extra["layers"]``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from brainrank.core.ridge import RidgeCV
from brainrank.plugin import InputError
from brainrank.plugins.metrics import _encoding as enc

#: (subject, region)
Group = tuple[str, str]


@dataclass
class SpacePlan:
    """Per (subject, region) group, the layer each space uses: ``layers[g][s]`` for group
    ``g`` and space ``s`` (a fixed layer, or the best-layer space's choice), with the mean
    training LOO R^2 behind each choice (``train_r2[g][s]``, NaN for fixed layers)."""

    labels: list[str]
    layers: dict[Group, list[str]]
    train_r2: dict[Group, list[float]]

    def combinations(self, groups: Sequence[tuple[Group, np.ndarray]]):
        """``[(layers per space, neuroid indices)]``: the groups that use the same layers,
        merged (their joint models are the same fits)."""
        merged: dict[tuple[str, ...], list[np.ndarray]] = {}
        for key, index in groups:
            merged.setdefault(tuple(self.layers[key]), []).append(index)
        return [(list(layers), np.concatenate(parts)) for layers, parts in merged.items()]


def design(space, layer: str, k: int, rows: np.ndarray) -> np.ndarray | None:
    """The projected features of ``layer`` of a :class:`~brainrank.core.spaces.FeatureSpace`
    for ``rows`` (``None`` when constant)."""
    return enc.design(space.features[layer], k, rows)


def plan_layers_per_space(
    spaces: Sequence,
    k: int,
    rows_of: dict[str, np.ndarray],
    train: np.ndarray,
    Y: np.ndarray,
    groups: Sequence[tuple[Group, np.ndarray]],
    ridge: Callable[[], RidgeCV],
) -> SpacePlan:
    """The layer of every space per group (see the module docstring). ``ridge`` makes the
    ridge model a layer is fitted with (the metric's alphas, scoring and device);
    ``rows_of[label]`` are the rows of each space's features in the order of ``Y``."""
    labels = [s.label for s in spaces]
    layers: dict[Group, list[str]] = {key: [] for key, _ in groups}
    scores: dict[Group, list[float]] = {key: [] for key, _ in groups}
    for space in spaces:
        rows = rows_of[space.label]
        if space.layer is not None:
            if design(space, space.layer, k, rows) is None:
                raise InputError(
                    f"feature space {space.label!r} is constant on these stimuli; it predicts "
                    "nothing. Choose another layer."
                )
            for key, _ in groups:
                layers[key].append(space.layer)
                scores[key].append(float("nan"))
            continue
        names, per_layer = [], []
        for name in space.features.layer_names:
            X = design(space, name, k, rows)
            if X is None or np.ptp(X[train], axis=0).max() == 0:
                continue
            fitted = ridge().fit(X[train], Y[train], return_predictions=False)
            names.append(name)
            per_layer.append(np.asarray(fitted.result_.r2, dtype=np.float64))
        if not names:
            raise InputError(
                f"feature space {space.label!r}: every layer of {space.model!r} is constant on "
                "these stimuli."
            )
        table = np.stack(per_layer)  # (layers, neuroids)
        for key, index in groups:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                means = np.nanmean(table[:, index], axis=1)
            pick = int(np.nanargmax(means)) if np.isfinite(means).any() else 0
            layers[key].append(names[pick])
            scores[key].append(float(means[pick]))
    return SpacePlan(labels, layers, scores)


def space_extra(plan: SpacePlan, key: Group, spaces: Sequence) -> dict:
    """What every row of a group says about its spaces: the layer each used and how a
    best-layer space's layer was chosen."""
    chosen = {s.label: name for s, name in zip(spaces, plan.layers[key], strict=True)}
    out: dict = {"layers": chosen}
    if any(s.layer is None for s in spaces):
        out["chosen_by"] = (
            "best-layer spaces: the layer with the highest mean leave-one-out R^2 on the "
            "training stimuli"
        )
    return out


def space_position(space, layer: str) -> tuple[int | None, float | None]:
    """``(layer index, relative depth)`` of ``layer`` in its model's features."""
    try:
        found = space.features[layer]
    except KeyError:
        return None, None
    return found.index, found.relative_depth
