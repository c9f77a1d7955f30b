"""Shared pieces of the encoding metrics (srp-ridge, versa, stacking): the trial-averaged
targets, the projected features of a layer, per-group reductions, and the device their
kernels run on.

Device: every metric here has two *run settings*, attributes that are not parameters (so
not part of :attr:`Metric.config_hash`): ``device`` (:attr:`Metric.device`: the run's
``--device`` inside a run, else ``"cpu"`` unless assigned) and ``backend`` (``"numpy"``,
or ``"torch"`` to run the torch kernels on the CPU, as the tests do). On a device other
than the CPU the ridge (factorisation, leave-one-out products, predictions) and the
Pearson reductions run on torch there. Results agree with the CPU's within float32
tolerance; a neuroid whose two best alphas are tied to float32 precision may choose the
other one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from brainrank.core.backend import get_backend
from brainrank.core.projection import jl_dimension
from brainrank.core.ridge import DEFAULT_ALPHAS, SCORINGS, column_pearson, kernel_backend
from brainrank.plugin import (
    Dataset,
    FeatureSet,
    InputError,
    LayerFeatures,
    NotApplicableError,
    average_repetitions,
    neuroid_groups,
    split_halves,
)

#: Seed of the stimulus split behind the held-out layer choice and the train/test metrics.
SPLIT_SEED = 0


class OnDevice:
    """The run settings ``device`` and ``backend`` of a metric (see the module docstring).
    Mixed into a :class:`Metric`, whose ``device`` is the run's."""

    device: str
    #: array backend on the CPU: "numpy" or "torch" (any other device always uses torch)
    backend: str = "numpy"

    def ridge_options(self) -> dict[str, Any]:
        """``backend`` and ``device`` keyword arguments for :class:`RidgeCV`."""
        backend, device = kernel_backend(self.device, self.backend)
        return {"backend": backend, "device": device}

    def array_backend(self) -> Any:
        """The array backend of the kernels (for :func:`column_r`)."""
        backend, device = kernel_backend(self.device, self.backend)
        return get_backend(backend, device)


@dataclass
class Targets:
    """Trial-averaged responses of a dataset, ready for regression."""

    stimulus_ids: list[str]
    values: np.ndarray  # (n_stimuli, n_neuroids) float32
    neuroid_ids: np.ndarray
    groups: list[tuple[tuple[str, str], np.ndarray]]

    @classmethod
    def of(cls, dataset: Dataset) -> Targets:
        responses = average_repetitions(dataset.responses())
        return cls(
            stimulus_ids=[str(s) for s in responses["stimulus_id"].values],
            values=np.asarray(responses.values, dtype=np.float32),
            neuroid_ids=np.asarray(responses["neuroid_id"].values).astype(str),
            groups=neuroid_groups(responses),
        )


def check_encoding_parameters(n_components: Any, alphas: Any, alpha_scoring: str) -> list[float]:
    if n_components != "jl" and (not isinstance(n_components, int) or n_components < 1):
        raise InputError(f"n_components must be 'jl' or a positive integer, got {n_components!r}.")
    if alpha_scoring not in SCORINGS:
        raise InputError(f"alpha_scoring must be one of {SCORINGS}, got {alpha_scoring!r}.")
    return [float(a) for a in np.atleast_1d(DEFAULT_ALPHAS if alphas is None else alphas)]


def dimension(parameters: dict[str, Any], n_stimuli: int) -> int:
    """The projection dimension: the Johnson-Lindenstrauss dimension for ``n_stimuli`` at
    ``eps`` when ``n_components`` is "jl" (never below 1), else ``n_components``."""
    k = parameters["n_components"]
    return max(1, jl_dimension(max(1, n_stimuli), parameters["eps"])) if k == "jl" else int(k)


def require_stimuli(metric: str, dataset: Dataset, minimum: int, why: str) -> int:
    """The number of stimuli with responses in ``dataset``; raises NotApplicableError, before
    any feature is extracted, when there are fewer than ``minimum``."""
    n = n_stimuli(dataset)
    if n < minimum:
        raise NotApplicableError(
            f"metric {metric!r} needs at least {minimum} stimuli with responses ({why}); "
            f"dataset {dataset.identifier!r} has {n}. Use a dataset with more stimuli, or an "
            "RSA metric."
        )
    return n


def folds(n: int, n_folds: int, seed: int = SPLIT_SEED) -> list[np.ndarray]:
    """``n_folds`` (even) disjoint test folds of ``range(n)``, nested in the seeded halves of
    :func:`split_halves`: the first ``n_folds / 2`` folds make up the first half exactly, so
    per-half scores can be read off the folds."""
    if n_folds < 2 or n_folds % 2:
        raise InputError(f"the number of folds must be an even number >= 2, got {n_folds}.")
    half_a, half_b = split_halves(n, seed)
    return [np.sort(f) for half in (half_a, half_b) for f in np.array_split(half, n_folds // 2)]


def n_stimuli(dataset: Dataset) -> int:
    return int(np.unique(np.asarray(dataset.responses()["stimulus_id"].values)).size)


def design(layer: LayerFeatures, k: int, rows: np.ndarray) -> np.ndarray | None:
    """The layer's projected features for ``rows``; ``None`` when they are constant (a layer
    that carries nothing, e.g. a zero-initialised batch norm of a random network)."""
    X = layer.projections[k][rows]
    if X.shape[1] == 0 or np.ptp(X, axis=0).max() == 0:
        return None
    return X


def rows_for(features: FeatureSet, targets: Targets) -> np.ndarray:
    return features.rows_for(targets.stimulus_ids)


def column_r(a: np.ndarray, b: np.ndarray, backend: Any = None) -> np.ndarray:
    """Pearson r of matching columns, in float64, clipped to [-1, 1] (NaN for constant
    columns); on the device of a torch ``backend`` when given."""
    return column_pearson(a, b, backend)


def group_mean(values: np.ndarray, index: np.ndarray) -> tuple[float, int]:
    v = values[index]
    finite = np.isfinite(v)
    return (float(v[finite].mean()) if finite.any() else float("nan")), int(finite.sum())


def dataset_split(
    dataset: Dataset, stimulus_ids: list[str]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions within ``stimulus_ids`` of the dataset's own training and test stimuli
    (:meth:`Dataset.train_test_split`), or ``None`` when it has no split of its own. The two
    lists must be disjoint and name only stimuli with responses."""
    split = dataset.train_test_split()
    if split is None:
        return None
    train_ids, test_ids = ([str(s) for s in ids] for ids in split)
    overlap = set(train_ids) & set(test_ids)
    if overlap:
        raise InputError(
            f"the train/test split of dataset {dataset.identifier!r} puts {len(overlap)} "
            f"stimuli in both sets (e.g. {sorted(overlap)[:3]}); its train_test_split() "
            "must return disjoint lists."
        )
    position = {s: i for i, s in enumerate(stimulus_ids)}
    missing = [s for s in [*train_ids, *test_ids] if s not in position]
    if missing:
        raise InputError(
            f"the train/test split of dataset {dataset.identifier!r} names {len(missing)} "
            f"stimuli without responses (e.g. {missing[:3]}); every training and test "
            "stimulus needs responses."
        )
    return (
        np.array([position[s] for s in train_ids], dtype=np.int64),
        np.array([position[s] for s in test_ids], dtype=np.int64),
    )


def train_test_split(dataset: Dataset, stimulus_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the training and test stimuli within ``stimulus_ids``: the dataset's own
    split (:func:`dataset_split`) when it has one, else a seeded half split."""
    own = dataset_split(dataset, stimulus_ids)
    return own if own is not None else split_halves(len(stimulus_ids), SPLIT_SEED)
