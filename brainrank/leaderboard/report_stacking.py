"""The report's section of the stacking paper's contrasts (ImageNet vs Places365 AlexNet and
ResNet-50; Taskonomy 2D vs 3D edges): :func:`section_stacking_contrast`, drawn from
:func:`brainrank.leaderboard.analyses.stacking.stacking_contrasts`.

Per contrast and dataset, one panel per region (up to :data:`MAX_REGIONS`): each model's
mean stacking weight over its layers' relative depth, the peak of each marked; under it, the
peaks with their shift, and where the two models were stacked together, the weight the joint
model gives each.
"""

from __future__ import annotations

import math

import numpy as np

from brainrank.leaderboard.analyses.stacking import CONTRASTS, stacking_contrasts
from brainrank.leaderboard.query import scores
from brainrank.leaderboard.report import NoData, ReportOptions, Section, _use_agg
from brainrank.leaderboard.store import Store

#: regions drawn per contrast and dataset (the table lists every one)
MAX_REGIONS = 16
COLOURS = ("#1f77b4", "#d62728")


def section_stacking_contrast(store: Store, options: ReportOptions) -> Section:
    """ImageNet vs Places365 and 2D vs 3D edges: where each network's stacking weight peaks,
    per region (see the module docstring)."""
    frame = scores(store, metric="stacking")
    if frame.empty:
        raise NoData(_missing_text())
    found = stacking_contrasts(frame)
    if found.peaks.empty:
        raise NoData(_missing_text())
    section = Section(
        "stacking-contrast",
        "Stacking contrasts: task at a fixed architecture",
        "As in Wang, Lin, Tarr & Wehbe (joint interpretation of representations): per region, "
        "the mean stacking weight of each layer of two networks of one architecture trained "
        "for different tasks (x: relative layer depth, 0 first, 1 last; a marker at each "
        "peak). A task that changes which layers a region draws on moves the peak (the "
        "paper: Conv-3 to Conv-4 in V1-V4 for AlexNet from objects to scenes, no shift for "
        "ResNet-50). 'shift' is the second network's peak depth minus the first's; 'joint' "
        "is the weight a stacked model of both networks' layers together gives each.",
    )
    for (label, dataset), part in found.profiles.groupby(["contrast", "dataset"], sort=False):
        regions = list(dict.fromkeys(part["region"]))[:MAX_REGIONS]
        columns = min(4, len(regions))
        rows = math.ceil(len(regions) / columns)
        fig, axes = _panels(rows, columns)
        flat = list(np.ravel(axes))
        models = list(dict.fromkeys(part["model"]))
        for ax, region in zip(flat, regions, strict=False):
            for colour, model in zip(COLOURS, models, strict=False):
                line = part[(part["region"] == region) & (part["model"] == model)]
                line = line.sort_values("relative_depth")
                ax.plot(line["relative_depth"], line["weight"], color=colour, lw=1.2,
                        label=model)  # fmt: skip
                if not line.empty:
                    top = line.loc[line["weight"].idxmax()]
                    ax.plot([top["relative_depth"]], [top["weight"]], "o", color=colour, ms=4)
            ax.set_title(str(region), fontsize=8)
            ax.tick_params(labelsize=6)
        for ax in list(flat)[len(regions) :]:
            ax.set_visible(False)
        flat[0].legend(fontsize=6, loc="upper right")
        fig.suptitle(f"{label}, {dataset}", fontsize=9)
        fig.supxlabel("relative layer depth", fontsize=8)
        fig.supylabel("mean stacking weight", fontsize=8)
        section.add_drawn_figure(fig)
    peaks = found.peaks.round(3)
    section.tables.append(("Peak layers per region", peaks))
    if not found.joint.empty:
        section.tables.append(("Joint stacking of both networks", found.joint.round(3)))
    if found.missing:
        section.notes.append(
            "Not stored yet: " + "; ".join(found.missing) + ". " + _command()
        )  # fmt: skip
    return section


def _panels(rows: int, columns: int):
    _use_agg()
    import matplotlib.pyplot as plt

    return plt.subplots(rows, columns, figsize=(2.6 * columns, 2.0 * rows + 0.6), sharey=True,
                        squeeze=False, layout="constrained")  # fmt: skip


def _command() -> str:
    return (
        "Score them with `brainrank run --models @stacking2023 --metrics stacking --datasets "
        "DATASET` (each network's layers stacked), and jointly with `--spaces 'A:*,B:*'`."
    )


def _missing_text() -> str:
    pairs = ", ".join(f"{a} and {b}" for _, a, b in CONTRASTS)
    return f"no stacking weights of both networks of a contrast ({pairs}). {_command()}"
