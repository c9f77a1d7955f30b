"""Per-voxel values of the leaderboard as brain volumes (``brainrank export maps``).

A dataset whose neuroids are voxels (``bold5000/wholebrain``, ``nsd/*``) names each by its
indices in the subject's volume (neuroid ids ending in ``i-j-k``) and records, when it is
registered, each subject's volume: its ``shape`` and ``affine`` (in the dataset entry's
``details["volumes"]``). A map is then a float32 NIfTI volume of that shape and affine
holding one value per scored voxel and NaN elsewhere; a voxel scored in several regions (NSD
ROIs overlap) holds the mean of its values.

Quantities (:func:`maps`):
    - ``score``: the per-voxel values of the selected rows (``selection``, default ``max``:
      each voxel's score at the best layer), one map per (model, metric, subject);
    - ``contrast``: model A's per-voxel values minus model B's (Neural Taskonomy's 3D-vs-2D
      maps), on the voxels both have;
    - ``weights``: a metric's per-layer per-voxel weights (``stacking``'s rows of selection
      ``weight``), one 4D volume per (model, subject), the layers along the 4th axis in the
      order of their names in ``layers`` of the sidecar;
    - ``argmax-weight``: per voxel, the position (0-based, in that order) of the layer with
      the largest weight.

    - ``fdr``: per (model, subject), 1 at the voxels whose per-voxel score (``selection``)
      is significantly above 0 after Benjamini-Hochberg at ``alpha`` over the voxels of the
      map, 0 at the other scored voxels (:func:`fdr_volume`);
    - ``q-value``: the Benjamini-Hochberg adjusted p-values behind that mask.

The p-value of a voxel is that of its Pearson r over ``n`` stimuli, one-sided (H1: r > 0;
:func:`brainrank.core.stats.pearson_p_greater`, Student's t with n - 2 degrees of freedom),
with ``n`` the number of stimuli the leaderboard records for the dataset, or ``n_stimuli``
when given (e.g. the size of a held-out test set). It is exact for an r computed over n
predictions of independent stimuli that did not fit them (the leave-one-out protocols ``srp-ridge:nsd``,
``srp-ridge:mouse``); for a mean of per-fold r's (``srp-ridge``'s default k folds) it is an
approximation (the mean of k fold r's has about the null variance of one r over n); a
metric whose per-voxel value is not a correlation (stacking's weights, an explained
variance) has no such p-value: map correlations (values outside [-1, 1] are refused).

Each file has a JSON sidecar (same name, ``.json``) saying what it holds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core.errors import InputError

QUANTITIES = ("score", "contrast", "weights", "argmax-weight", "fdr", "q-value")
_VOXEL = re.compile(r"(\d+)-(\d+)-(\d+)$")


@dataclass
class BrainMap:
    """One volume: ``data`` (X, Y, Z) or (X, Y, Z, n) float32, NaN where nothing was
    scored, in the space ``affine`` maps to; ``about`` says what it holds."""

    name: str
    data: np.ndarray
    affine: np.ndarray
    about: dict[str, Any] = field(default_factory=dict)

    def write(self, folder: str | Path) -> Path:
        """``<folder>/<name>.nii.gz`` and its ``.json`` sidecar; returns the NIfTI's path."""
        import nibabel

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.nii.gz"
        image = nibabel.Nifti1Image(self.data.astype(np.float32), self.affine)
        image.header.set_xyzt_units("mm")
        nibabel.save(image, path)
        sidecar = {**self.about, "affine": self.affine.tolist(), "shape": list(self.data.shape)}
        (folder / f"{self.name}.json").write_text(json.dumps(sidecar, indent=1, default=str))
        return path


def voxel_indices(neuroid_ids: Any) -> np.ndarray:
    """``(n, 3)`` volume indices from neuroid ids ending in ``i-j-k``; an error naming an id
    that does not."""
    out = np.empty((len(neuroid_ids), 3), dtype=np.int64)
    for n, text in enumerate(map(str, neuroid_ids)):
        match = _VOXEL.search(text)
        if match is None:
            raise InputError(
                f"neuroid {text!r} is not a voxel (its id does not end in i-j-k): maps are for "
                "datasets of voxels (bold5000/wholebrain, nsd/*)."
            )
        out[n] = [int(g) for g in match.groups()]
    return out


def dataset_volumes(store: Any, dataset: str) -> dict[str, dict[str, Any]]:
    """``{subject: {"shape": [X, Y, Z], "affine": 4x4}}`` recorded for ``dataset``."""
    frame = store.datasets_frame()
    rows = frame[frame["identifier"] == dataset]
    details = rows["details"].iloc[0] if len(rows) else None
    if isinstance(details, str):
        details = json.loads(details)
    volumes = (details or {}).get("volumes") if isinstance(details, dict) else None
    if not volumes:
        raise InputError(
            f"the leaderboard records no brain volumes for dataset {dataset!r}: maps need a "
            "dataset of voxels (bold5000/wholebrain, nsd/*) registered by this version of "
            "brainrank; one registered before: run `brainrank run` on it again (its stored "
            "scores are reused, the run records its volumes)."
        )
    return volumes


def _volume(values: pd.DataFrame, volume: dict[str, Any], extra: int | None = None) -> np.ndarray:
    """``values`` (neuroid_id, value) into a NaN volume; a voxel present twice gets the mean."""
    shape = tuple(int(s) for s in volume["shape"])
    out = np.full(shape if extra is None else (*shape, extra), np.nan, dtype=np.float64)
    if values.empty:
        return out
    ijk = voxel_indices(values["neuroid_id"].to_numpy())
    frame = pd.DataFrame({"i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2],
                          "value": values["value"].to_numpy(dtype=np.float64)})  # fmt: skip
    outside = (ijk < 0).any(axis=1) | (ijk >= np.array(shape)).any(axis=1)
    if outside.any():
        raise InputError(
            f"voxel {ijk[outside][0].tolist()} is outside the recorded volume {list(shape)}."
        )
    mean = frame.groupby(["i", "j", "k"], sort=False)["value"].mean()
    index = np.array(mean.index.tolist(), dtype=np.int64).reshape(-1, 3)
    out[tuple(index.T)] = mean.to_numpy()
    return out


def layer_stack(rows: pd.DataFrame, volume: dict[str, Any]) -> tuple[list[str], np.ndarray]:
    """Per-layer values (``rows``: neuroid_id, layer, value) as a 4D volume, the layers
    (sorted by name) on the 4th axis."""
    layers = sorted(set(rows["layer"].astype(str)))
    names = rows["layer"].astype(str)
    stack = np.stack([_volume(rows[names == layer], volume) for layer in layers], axis=-1)
    return layers, stack


def argmax_layer(stack: np.ndarray) -> np.ndarray:
    """Per voxel, the position on the 4th axis of the largest value (ties: the first); NaN
    where no layer has a value."""
    scored = np.isfinite(stack).any(axis=-1)
    best = np.full(stack.shape[:3], np.nan, dtype=np.float32)
    best[scored] = np.nanargmax(stack[scored], axis=-1)
    return best


def fdr_volume(data: np.ndarray, n: int, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """``(mask, q)`` of a 3D map of Pearson r over ``n`` stimuli: the one-sided p-value of
    every voxel with a value (:func:`brainrank.core.stats.pearson_p_greater`),
    Benjamini-Hochberg adjusted over those voxels (:func:`brainrank.core.stats.fdr_bh`);
    ``mask`` is 1 where the adjusted p is <= ``alpha``, 0 at the other voxels with a value,
    NaN elsewhere (as ``q``)."""
    from brainrank.core.stats import fdr_bh, pearson_p_greater

    if not 0 < alpha < 1:
        raise InputError(f"alpha must lie strictly between 0 and 1, got {alpha}.")
    q, rejected = fdr_bh(pearson_p_greater(data, n), alpha)
    mask = np.where(np.isfinite(data), rejected.astype(np.float64), np.nan)
    return mask.astype(np.float32), q.astype(np.float32)


def dataset_n_stimuli(store: Any, dataset: str) -> int:
    """The number of stimuli the leaderboard records for ``dataset``."""
    frame = store.datasets_frame()
    rows = frame[frame["identifier"] == dataset]
    n = rows["n_stimuli"].iloc[0] if len(rows) and "n_stimuli" in rows else None
    if n is None or not np.isfinite(n) or n < 3:
        raise InputError(
            f"the leaderboard records no number of stimuli for {dataset!r}: give the number "
            "of stimuli each per-voxel r was computed over (--n-stimuli)."
        )
    return int(n)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+=-]+", "_", text).strip("_")


def maps(
    db: Any = None,
    *,
    dataset: str,
    metric: str,
    quantity: str = "score",
    model: str | None = None,
    contrast: tuple[str, str] | None = None,
    selection: str = "max",
    subject: str | None = None,
    alpha: float = 0.05,
    n_stimuli: int | None = None,
) -> list[BrainMap]:
    """The brain maps of ``quantity`` (see the module docstring) on ``dataset`` for
    ``metric``, one per subject (and model). ``model`` (a pattern) narrows the models;
    ``contrast=(A, B)`` names the two models of a contrast; ``alpha`` (the false discovery
    rate) and ``n_stimuli`` (default: the dataset's recorded number) are those of the
    ``fdr`` and ``q-value`` maps."""
    from brainrank.leaderboard.query import _store, per_neuroid

    if quantity not in QUANTITIES:
        raise InputError(f"quantity must be one of {', '.join(QUANTITIES)}, got {quantity!r}.")
    if (quantity == "contrast") != (contrast is not None):
        raise InputError("a contrast needs two models (--contrast A B), and only a contrast does.")
    store = _store(db)
    volumes = dataset_volumes(store, dataset)
    significance = quantity in ("fdr", "q-value")
    if significance:
        if not 0 < alpha < 1:
            raise InputError(f"alpha must lie strictly between 0 and 1, got {alpha}.")
        if n_stimuli is not None and n_stimuli < 3:
            raise InputError(f"--n-stimuli must be at least 3, got {n_stimuli}.")
        n = int(n_stimuli) if n_stimuli is not None else dataset_n_stimuli(store, dataset)
    chosen = "weight" if quantity in ("weights", "argmax-weight") else selection
    models = ",".join(contrast) if contrast else model
    values = per_neuroid(db=store, dataset=dataset, metric=metric, selection=chosen,
                         model=models, subject=subject)  # fmt: skip
    if values.empty:
        raise InputError(
            f"no per-voxel values of {metric} (selection {chosen}) on {dataset}"
            + (f" for {models}" if models else "")
            + ": score them first (`brainrank run`), or check the names (`brainrank query`)."
        )
    if values["metric_hash"].nunique() > 1:
        raise InputError(
            f"{metric} has {values['metric_hash'].nunique()} configurations on {dataset}; name "
            "one (a metric identifier with its parameters, see `brainrank metrics --stored`)."
        )
    out = []
    base = {"dataset": dataset, "metric": metric, "quantity": quantity}
    for subject_name, rows in values.groupby("subject", sort=True):
        volume = volumes.get(str(subject_name))
        if volume is None:
            raise InputError(f"no volume recorded for subject {subject_name!r} of {dataset}.")
        affine = np.asarray(volume["affine"], dtype=np.float64)
        about = {**base, "subject": str(subject_name)}
        if quantity == "contrast":
            a, b = contrast
            got = {m: rows[rows["model"] == m] for m in (a, b)}
            for m, part in got.items():
                if part.empty:
                    raise InputError(f"no per-voxel values of {m} for {subject_name} on {dataset}.")
            first, second = _volume(got[a], volume), _volume(got[b], volume)
            name = f"contrast_{_safe(a)}_minus_{_safe(b)}_{_safe(dataset)}_{_safe(metric)}_{subject_name}"
            out.append(BrainMap(name, (first - second).astype(np.float32), affine,
                                {**about, "models": [a, b], "selection": chosen,
                                 "value": f"{a} minus {b}"}))  # fmt: skip
            continue
        for model_name, part in rows.groupby("model", sort=True):
            stem = f"{_safe(str(model_name))}_{_safe(dataset)}_{_safe(metric)}_{subject_name}"
            about_model = {**about, "model": str(model_name), "selection": chosen}
            if quantity == "score":
                out.append(BrainMap(f"score_{stem}", _volume(part, volume).astype(np.float32),
                                    affine, {**about_model, "value": "per-voxel score"}))  # fmt: skip
                continue
            if significance:
                mask, q = fdr_volume(_volume(part, volume), n, alpha)
                about_test = {**about_model, "alpha": alpha, "n_stimuli": n,
                              "n_significant": int(np.nansum(mask)),
                              "p_value": "one-sided p of Pearson r over n_stimuli (t, n - 2 "
                                         "df), Benjamini-Hochberg over the map's voxels"}  # fmt: skip
                if quantity == "fdr":
                    out.append(BrainMap(f"fdr_{stem}", mask, affine,
                                        {**about_test, "value": f"1: significant at FDR {alpha}, "
                                         "0: not, NaN: not scored"}))  # fmt: skip
                else:
                    out.append(BrainMap(f"q-value_{stem}", q, affine,
                                        {**about_test, "value": "Benjamini-Hochberg adjusted "
                                         "p-value"}))  # fmt: skip
                continue
            layers, stack = layer_stack(part, volume)
            if quantity == "weights":
                out.append(BrainMap(f"weights_{stem}", stack.astype(np.float32), affine,
                                    {**about_model, "layers": layers,
                                     "value": "weight of each layer (4th axis)"}))  # fmt: skip
            else:
                out.append(BrainMap(f"argmax-weight_{stem}", argmax_layer(stack), affine,
                                    {**about_model, "layers": layers,
                                     "value": "position in layers of the largest weight"}))  # fmt: skip
    return out


def peak_voxel(data: np.ndarray) -> tuple[int, int, int] | None:
    """The voxel of largest absolute value of a 3D map (None when it holds no value)."""
    finite = np.isfinite(data)
    if not finite.any():
        return None
    flat = np.nanargmax(np.where(finite, np.abs(data), -np.inf))
    return tuple(int(i) for i in np.unravel_index(flat, data.shape))


def colour_scale(data: np.ndarray) -> tuple[str, float, float]:
    """``(colour map, vmin, vmax)`` of a map's figures: symmetric about 0 on a diverging map
    when it has negative values, else from 0 to its largest value."""
    limit = float(np.nanmax(np.abs(data))) or 1.0
    signed = float(np.nanmin(data)) < 0
    return ("RdBu_r", -limit, limit) if signed else ("viridis", 0.0, limit)


_VIEWS = {"L": "sagittal", "R": "sagittal", "A": "coronal", "P": "coronal", "S": "axial",
          "I": "axial"}  # fmt: skip


def projection_names(affine: Any) -> list[str]:
    """The view a projection along each voxel axis (i, j, k) gives, from the axis's
    nearest world direction in ``affine`` (``nibabel.aff2axcodes``): along left-right
    "sagittal", along anterior-posterior "coronal", along superior-inferior "axial"; an
    axis whose direction is ambiguous is named "along i" (j, k)."""
    import nibabel

    codes = nibabel.aff2axcodes(np.asarray(affine, dtype=np.float64))
    names = [_VIEWS.get(str(code), "") for code in codes]
    if len(set(names)) < 3 or "" in names:
        return [f"along {axis}" for axis in "ijk"]
    return names


def max_intensity_projection(data: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``(plane, depth)``: along ``axis`` of a 3D map, the value of largest absolute value
    (its sign kept; ties: the first) and its index on that axis; NaN and -1 where the line
    holds no value."""
    finite = np.isfinite(data)
    magnitude = np.where(finite, np.abs(data), -np.inf)
    depth = np.argmax(magnitude, axis=axis)
    plane = np.take_along_axis(data, np.expand_dims(depth, axis), axis=axis).squeeze(axis)
    empty = ~finite.any(axis=axis)
    plane = np.where(empty, np.nan, plane)
    return plane, np.where(empty, -1, depth)


def glass_brain(brain_map: BrainMap, axes: Any, label: str = "") -> tuple[Any, list[dict]]:
    """Draw the maximum-intensity projections of a 3D map along i, j and k on three
    matplotlib axes (:func:`max_intensity_projection`), as vector cells with the colour
    scale of :func:`orthogonal_slices`; returns the mappable (None when the map holds no
    value) and per projection its peak: the view, the axis, the value of largest absolute
    value and its voxel ``(i, j, k)``."""
    data = brain_map.data if brain_map.data.ndim == 3 else np.nanmax(brain_map.data, axis=-1)
    if not np.isfinite(data).any():
        for ax in axes:
            ax.axis("off")
        return None, []
    cmap, vmin, limit = colour_scale(data)
    views = projection_names(brain_map.affine)
    mesh, peaks = None, []
    for axis, ax in enumerate(axes):
        plane, depth = max_intensity_projection(data, axis)
        flat = np.argmax(np.where(np.isfinite(plane), np.abs(plane), -np.inf))
        a, b = np.unravel_index(flat, plane.shape)
        voxel = [int(a), int(b)]
        voxel.insert(axis, int(depth[a, b]))
        peaks.append({"projection": views[axis], "along": "ijk"[axis],
                      "peak": float(plane[a, b]), "peak_ijk": "-".join(map(str, voxel))})  # fmt: skip
        mesh = ax.pcolormesh(np.ma.masked_invalid(plane.T), cmap=cmap, vmin=vmin, vmax=limit)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{views[axis]} (max along {'ijk'[axis]})", fontsize=7)
    if label:
        axes[0].set_ylabel(label, fontsize=6)
    return mesh, peaks


def orthogonal_slices(brain_map: BrainMap, axes: Any, label: str = "") -> Any:
    """Draw the three orthogonal slices through the peak voxel (:func:`peak_voxel`) of a 3D
    map on three matplotlib axes, as vector cells (NaN left blank); returns the mappable
    for a colour bar, or None when the map holds no value."""
    data = brain_map.data if brain_map.data.ndim == 3 else np.nanmax(brain_map.data, axis=-1)
    peak = peak_voxel(data)
    if peak is None:
        for ax in axes:
            ax.axis("off")
        return None
    cmap, vmin, limit = colour_scale(data)
    mesh = None
    for axis, ax in enumerate(axes):
        plane = np.take(data, peak[axis], axis=axis).T  # rows: the second remaining axis
        mesh = ax.pcolormesh(np.ma.masked_invalid(plane), cmap=cmap, vmin=vmin, vmax=limit)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{'ijk'[axis]} = {peak[axis]}", fontsize=7)
    if label:
        axes[0].set_ylabel(label, fontsize=6)
    return mesh
