"""RDMs as rsatoolbox objects: brain RDMs of a dataset and layer RDMs of a model, as the
``rsa`` metric computes them, written in rsatoolbox's HDF5 layout (what
``rsatoolbox.rdm.RDMs.save(path, file_type="hdf5")`` writes and
``rsatoolbox.rdm.load_rdm(path)`` reads), without importing rsatoolbox.

The layout (rsatoolbox's ``io/hdf5.py``: a nested dictionary, strings as attributes, arrays
as datasets, string arrays as bytes): the file's attribute ``dissimilarity_measure``; the
dataset ``dissimilarities`` (n_rdms, n_pairs), the upper triangles row by row; the groups
``descriptors`` (one attribute per descriptor of the whole set), ``rdm_descriptors`` (one
array per descriptor, one value per RDM, ``index`` among them) and ``pattern_descriptors``
(one array per descriptor, one value per stimulus: ``index``, ``stimulus_id`` and the
stimulus metadata's columns). Dissimilarity measures carry rsatoolbox's names:
``correlation``, ``squared euclidean``, ``crossnobis``.

Used by ``brainrank export rdms DATASET --out FILE [--model MODEL]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainrank._version import __version__
from brainrank.core.dataset import Dataset
from brainrank.core.errors import InputError
from brainrank.core.rsa import upper_triangle
from brainrank.core.scores import FeatureSet

#: rsatoolbox's name of each distance of the ``rsa`` metric (brain RDMs; model RDMs of the
#: euclidean and crossnobis configurations are squared Euclidean)
MEASURES = {"correlation": "correlation", "euclidean": "squared euclidean",
            "crossnobis": "crossnobis"}  # fmt: skip


@dataclass
class RDMStack:
    """RDMs ``(m, n, n)`` over the same stimuli with what rsatoolbox keeps of them."""

    dissimilarities: np.ndarray
    measure: str
    stimulus_ids: list[str]
    rdm_descriptors: dict[str, list[Any]]
    descriptors: dict[str, str] = field(default_factory=dict)
    pattern_descriptors: dict[str, list[Any]] = field(default_factory=dict)


def dataset_rdms(dataset: Dataset, metric: Any) -> RDMStack:
    """The brain RDMs the RSA ``metric`` compares with: one per (subject, region), with its
    subject, region and number of neuroids, in the metric's distance."""
    metric.check_applicable(dataset)
    ids, keys, brain, sizes = metric.brain_rdms(dataset)
    if dataset.responses() is None:
        measure = dataset.rdms().distance
        measure = MEASURES.get(measure, measure)
    else:
        measure = MEASURES[metric.distance]
    descriptors = {"dataset": dataset.identifier, "what": "brain RDMs (rsa metric)",
                   **_noise(metric)}  # fmt: skip
    return RDMStack(
        brain, measure, list(ids),
        {"subject": [k[0] for k in keys], "region": [k[1] for k in keys],
         "n_neuroids": list(sizes)},
        descriptors, _patterns(dataset, ids),
    )  # fmt: skip


def model_rdms(
    features: FeatureSet, dataset: Dataset, metric: Any, layers: Sequence[str] | None = None
) -> RDMStack:
    """The layer RDMs of ``features`` the RSA ``metric`` compares (its model distance), on
    the stimuli of its brain RDMs in their order; ``layers`` limits which."""
    ids = metric.brain_rdms(dataset)[0]
    rows = features.rows_for(ids)
    chosen = [layer for layer in features if layers is None or layer.name in layers]
    if not chosen:
        raise InputError(f"model {features.model!r} has none of the layers {list(layers or [])}.")
    stack = np.stack([metric.model_rdm(layer)[np.ix_(rows, rows)] for layer in chosen])
    measure = "correlation" if metric.distance == "correlation" else "squared euclidean"
    return RDMStack(
        stack, measure, list(ids),
        {"model": [features.model] * len(chosen), "layer": [layer.name for layer in chosen],
         "layer_index": [layer.index for layer in chosen],
         "relative_depth": [layer.relative_depth for layer in chosen]},
        {"dataset": dataset.identifier, "model": features.model, "what": "model RDMs (rsa metric)"},
        _patterns(dataset, ids),
    )  # fmt: skip


def _noise(metric: Any) -> dict[str, str]:
    noise = metric.parameters.get("noise")
    return {"noise": str(noise)} if noise else {}


def _patterns(dataset: Dataset, ids: Sequence[str]) -> dict[str, list[Any]]:
    """``stimulus_id`` and the stimulus metadata's columns of strings and numbers."""
    out: dict[str, list[Any]] = {"stimulus_id": [str(s) for s in ids]}
    meta = dataset.stimuli.metadata
    if meta is None or len(meta) == 0:
        return out
    for column in meta.columns:
        values = meta[column].reindex([str(s) for s in ids]).tolist()
        if all(isinstance(v, (str, bool, int, float, np.integer, np.floating, np.bool_))
               for v in values):  # fmt: skip
            out[str(column)] = values
    return out


def write_rsatoolbox_hdf5(path: str | Path, rdms: RDMStack, overwrite: bool = False) -> Path:
    """Write ``rdms`` in rsatoolbox's HDF5 layout (see the module docstring)."""
    import h5py

    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; choose another file or pass --overwrite.")
    d = np.asarray(rdms.dissimilarities, dtype=np.float64)
    if d.ndim != 3 or d.shape[1] != d.shape[2] or d.shape[1] != len(rdms.stimulus_ids):
        raise InputError(f"RDMs of shape {d.shape} for {len(rdms.stimulus_ids)} stimuli.")
    m = d.shape[0]
    rdm_descriptors = {"index": list(range(m)), **rdms.rdm_descriptors}
    for name, values in rdm_descriptors.items():
        if len(values) != m:
            raise InputError(f"rdm descriptor {name!r} has {len(values)} values for {m} RDMs.")
    patterns = {"index": list(range(d.shape[1])), **rdms.pattern_descriptors}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with h5py.File(tmp, "w") as file:
        file.attrs["rsatoolbox_version"] = f"written by brainrank {__version__}"
        file.attrs["dissimilarity_measure"] = rdms.measure
        file["dissimilarities"] = upper_triangle(d)
        group = file.create_group("descriptors")
        for name, value in rdms.descriptors.items():
            group.attrs[name] = str(value)
        for group_name, values in (("rdm_descriptors", rdm_descriptors),
                                   ("pattern_descriptors", patterns)):  # fmt: skip
            group = file.create_group(group_name)
            for name, column in values.items():
                group[name] = _array(column)
    tmp.replace(path)
    return path


def _array(values: Sequence[Any]) -> np.ndarray:
    """A descriptor column as rsatoolbox writes one: strings as bytes, numbers as numbers."""
    array = np.asarray(list(values))
    if array.dtype.kind in "US" or array.dtype == object:
        return np.asarray([str(v) for v in values]).astype("S")
    return array


def read_measures(path: str | Path) -> Mapping[str, Any]:
    """What a written file says of itself (its measure and descriptors), read with h5py."""
    import h5py

    with h5py.File(path, "r") as file:
        return {
            "dissimilarity_measure": str(file.attrs["dissimilarity_measure"]),
            "n_rdms": int(file["dissimilarities"].shape[0]),
            "descriptors": dict(file["descriptors"].attrs),
        }
