"""The report's brain-map section (:func:`section_maps`): for each dataset of voxels in the
leaderboard (``bold5000/wholebrain``, ``nsd/*``: the datasets whose volumes it records) and
each metric with per-voxel values, a quick look at the best-scoring model's map of one
subject: three orthogonal slices through its peak voxel and a glass-brain view (its
maximum-intensity projections along the three axes: sagittal, coronal, axial), drawn as
vector cells with one colour scale per map, with the numbers (voxels, mean, peak and where
it is) of every model and subject in a table, and each projection's peak voxel in another.
``brainrank export maps`` writes the volumes themselves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from brainrank.core.errors import InputError
from brainrank.leaderboard.maps import glass_brain, maps, orthogonal_slices, peak_voxel
from brainrank.leaderboard.query import scores
from brainrank.leaderboard.report import NoData, ReportOptions, Section, new_figure
from brainrank.leaderboard.store import Store

#: most (dataset, metric) rows drawn
MAX_ROWS = 4


def voxel_datasets(store: Store) -> list[str]:
    """The datasets whose brain volumes the leaderboard records."""
    frame = store.datasets_frame()
    out = []
    for identifier, details in zip(frame["identifier"], frame["details"], strict=True):
        if isinstance(details, str):
            details = json.loads(details)
        if isinstance(details, dict) and details.get("volumes"):
            out.append(str(identifier))
    return out


def section_maps(store: Store, options: ReportOptions) -> Section:
    """Brain maps: orthogonal slices of per-voxel scores (see the module docstring)."""
    datasets = voxel_datasets(store)
    if not datasets:
        raise NoData(
            "nothing to show: the leaderboard holds no dataset of voxels with brain volumes "
            "(score bold5000/wholebrain or nsd/* with a per-voxel metric such as srp-ridge)."
        )
    section = Section(
        "maps",
        "Brain maps",
        "Per-voxel scores in the subject's volume: for each dataset of voxels and metric, the "
        "best model's map (highest mean score) of the first subject, three orthogonal slices "
        "through its peak voxel (blank: voxels not scored) and its glass brain (the value of "
        "largest magnitude along each axis, on the slices' colour scale); the tables give every "
        "model's and subject's map and each projection's peak voxel. `brainrank export maps` "
        "writes them as NIfTI volumes.",
    )
    rows, drawn = [], []
    selection = getattr(options, "selection", "max") or "max"
    for dataset in datasets:
        frame = scores(store, dataset=dataset, selection=selection)
        for metric in sorted(set(frame["metric"])):
            try:
                found = maps(store, dataset=dataset, metric=metric, selection=selection)
            except InputError:  # no per-voxel values (an RSA metric), or several configurations
                continue
            for brain_map in found:
                about = brain_map.about
                peak = peak_voxel(brain_map.data)
                rows.append({"dataset": dataset, "metric": metric, "model": about["model"],
                             "subject": about["subject"],
                             "n_voxels": int(np.isfinite(brain_map.data).sum()),
                             "mean": float(np.nanmean(brain_map.data)),
                             "peak": float(brain_map.data[peak]) if peak else np.nan,
                             "peak_ijk": "-".join(map(str, peak)) if peak else ""})  # fmt: skip
            if found:
                best = max(found, key=lambda m: float(np.nanmean(m.data)))
                first = min(
                    m.about["subject"] for m in found if m.about["model"] == best.about["model"]
                )
                drawn.append(next(m for m in found if m.about["model"] == best.about["model"]
                                  and m.about["subject"] == first))  # fmt: skip
    if not rows:
        raise NoData(
            f"nothing to show: no per-voxel values on the datasets of voxels ({', '.join(datasets)})"
            " for the selection " + repr(selection) + "; score them with an encoding metric "
            "(srp-ridge, versa, stacking)."
        )
    table = pd.DataFrame(rows)
    section.tables.append(("Per-voxel maps", table.round(4)))
    drawn = drawn[:MAX_ROWS]
    figure, axes = new_figure(6.5, 1.9 * len(drawn) + 0.4, rows=len(drawn), columns=3)
    for brain_map, ax_row in zip(drawn, axes, strict=True):
        about = brain_map.about
        mesh = orthogonal_slices(brain_map, ax_row, f"{about['model']}\n{about['subject']}")
        ax_row[1].set_xlabel(f"{about['dataset']} / {about['metric']}", fontsize=6)
        if mesh is not None:
            bar = figure.colorbar(mesh, ax=list(ax_row), shrink=0.8, label="score")
            bar.solids.set_rasterized(False)  # vector, as every figure of the report
    section.add_figure(figure, table, name="slices",
                       title="Best model's per-voxel scores, orthogonal slices through the peak")  # fmt: skip
    figure, axes = new_figure(6.5, 1.9 * len(drawn) + 0.4, rows=len(drawn), columns=3)
    peaks = []
    for brain_map, ax_row in zip(drawn, axes, strict=True):
        about = brain_map.about
        mesh, found_peaks = glass_brain(brain_map, ax_row, f"{about['model']}\n{about['subject']}")
        ax_row[1].set_xlabel(f"{about['dataset']} / {about['metric']}", fontsize=6)
        peaks += [{"dataset": about["dataset"], "metric": about["metric"], "model": about["model"],
                   "subject": about["subject"], **peak} for peak in found_peaks]  # fmt: skip
        if mesh is not None:
            bar = figure.colorbar(mesh, ax=list(ax_row), shrink=0.8, label="score")
            bar.solids.set_rasterized(False)
    glass = pd.DataFrame(peaks, columns=["dataset", "metric", "model", "subject", "projection",
                                         "along", "peak", "peak_ijk"])  # fmt: skip
    section.tables.append(("Glass-brain peaks", glass.round(4)))
    section.add_figure(figure, glass, name="glass-brain",
                       title="Best model's per-voxel scores, glass brain (maximum-intensity "
                       "projections)")  # fmt: skip
    return section
