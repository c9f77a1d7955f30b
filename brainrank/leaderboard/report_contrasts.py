"""The report's section on the seed papers' controlled contrasts: task vs task, data vs data,
self-supervised vs supervised, architecture vs architecture, each within matched sets of
models that agree on the other factors (:mod:`brainrank.leaderboard.analyses.contrasts`).

:func:`section_contrasts` has the signature of the sections of
:mod:`brainrank.leaderboard.report` (``(store, options) -> Section``; raises
:class:`~brainrank.leaderboard.report.NoData` when the leaderboard holds nothing to
compare); the report lists it among its sections.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from brainrank.core.errors import InputError
from brainrank.leaderboard import analyses
from brainrank.leaderboard.query import scores
from brainrank.leaderboard.report import NoData, ReportOptions, Section
from brainrank.leaderboard.store import Store

DESCRIPTION = (
    "Each factor of the taxonomy compared with the others held fixed, as the NSD paper "
    "does: models are compared only within matched sets that agree on every other factor "
    "(task: same architecture and training data; data: same architecture, task and training "
    "method; self-supervised vs supervised: same architecture and data; architecture family: "
    "same task, data and method). Each level against a reference level; per model, the "
    "difference between its '{selection}' score (mean over regions) and the mean of its "
    "matched reference models. Points: mean difference; bars: 95% bootstrap CI over the "
    "paired models; filled: Holm-adjusted p < .05 (paired t-test; Hedges' g in the table). "
    "Fewer than 5 paired models: no test, the reason in the table."
)


def section_contrasts(store: Store, options: ReportOptions) -> Section:
    """The seed contrasts of every stored metric configuration: a forest plot per
    configuration and one table of the comparisons; contrasts the leaderboard cannot make
    are listed with their reason."""
    section = Section(
        "contrasts",
        "Controlled contrasts: task, data, supervision, architecture",
        DESCRIPTION.format(selection=options.selection),
    )
    frame = scores(store, selection=options.selection)
    if frame.empty:
        raise NoData("no scores are stored yet (run `brainrank run`).")
    tables, reasons = [], []
    for metric in sorted(frame["config"].unique()):  # each configuration apart
        try:
            results = analyses.seed_contrasts(frame, metric=metric, selection=options.selection,
                                              n_boot=options.n_boot, seed=options.seed)  # fmt: skip
        except InputError as exc:
            reasons.append(f"{metric}: {exc}")
            continue
        for result in results:
            if result.comparisons:
                tables.append(result.table())
            else:
                reasons.append(f"{metric}, {result.name}: {result.reason}")
    if not tables:
        raise NoData(
            "no contrast can be made: "
            + (reasons[0] if reasons else "no model has the taxonomy the contrasts read.")
        )
    table = pd.concat(tables, ignore_index=True)
    section.add_drawn_figure(_forest(table))
    section.tables.append(("Comparisons (level - reference)", table))
    section.notes += reasons
    return section


def _forest(table: pd.DataFrame) -> str:
    """One panel per metric configuration: each comparison's mean difference and CI."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(table["metric"]))
    columns = min(2, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    height = 0.3 * max(len(table[table["metric"] == m]) for m in metrics) + 1.2
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, height * rows),
                             squeeze=False, layout="constrained")  # fmt: skip
    flat = list(axes.flat)
    for ax in flat[len(metrics) :]:
        ax.set_visible(False)
    for ax, metric in zip(flat, metrics, strict=False):
        part = table[table["metric"] == metric].iloc[::-1]
        y = np.arange(len(part))
        mean = part["mean_difference"].astype(float).to_numpy()
        low = (mean - part["ci_low"].astype(float)).clip(lower=0).fillna(0).to_numpy()
        high = (part["ci_high"].astype(float) - mean).clip(lower=0).fillna(0).to_numpy()
        ax.errorbar(mean, y, xerr=np.vstack([low, high]), fmt="none", ecolor="#444",
                    capsize=2, lw=1)  # fmt: skip
        significant = (part["p_adjusted"].astype(float) < 0.05).to_numpy()
        ax.scatter(mean[significant], y[significant], color="#d62728", s=22, zorder=3)
        ax.scatter(mean[~significant], y[~significant], facecolor="white",
                   edgecolor="#d62728", s=22, zorder=3)  # fmt: skip
        labels = [f"{c}: {lv} vs {ref} (n={n})" for c, lv, ref, n in
                  zip(part["contrast"], part["level"], part["reference"], part["n"], strict=True)]  # fmt: skip
        ax.set_yticks(y, labels, fontsize=7)
        ax.axvline(0, color="#bbb", lw=0.8)
        ax.set_xlabel("score difference (level - reference)")
        ax.set_title(metric, fontsize=9)
    return fig
