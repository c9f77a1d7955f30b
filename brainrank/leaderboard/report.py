"""``brainrank report OUT.html|OUT.pdf``: the leaderboard's figures, ready for a paper.

**Figures.** Every figure is vector graphics: inline SVG in the HTML file (text kept as text,
so it can be searched and edited), one page of ``OUT.pdf`` with ``--format pdf``. Every
figure comes with the numbers it draws, one row per drawn element, as CSV:

- in the HTML, by default, a *numbers (CSV)* link per figure whose target is a ``data:`` URI
  inside the file, so the report stays one self-contained file that opens without a
  network or the files beside it;
- with ``assets=DIR`` (``--assets DIR``), each figure's SVG (or PDF) and CSV are also written
  to ``DIR`` and the links point there (what to hand to a co-author or a journal);
- a PDF report always writes its CSV files (and each figure as a PDF of its own) to a folder
  beside it, ``OUT_figures/`` unless ``--assets`` names another.

**How models are drawn** (:mod:`brainrank.leaderboard.palette`, the same on the web site):
colour = architecture family, filled = trained, hollow = randomly initialised, a grey diamond
or a horizontal reference line = a hand-made baseline. Baselines are never drawn as depth
curves (they have one or two layers) and never enter a mean over models. Every point of a
scatter is labelled (by name up to :data:`MAX_NAMED_POINTS` points, by number with the key
in its CSV beyond). Heat maps of one figure group share one colour scale and one colour
bar. Titles say what is drawn, and a confidence interval is named only where one is drawn.

**Sections** (each a function ``section_x(store, options) -> Section`` in :data:`SECTIONS`):

1. the ranking (the one definition of :mod:`brainrank.leaderboard.ranking`, shared with the
   CLI and the web page), and the configurations that are not calibrated, beside their
   chance levels;
2. score vs relative layer depth, per region;
3. the best layer's relative depth per region;
4. one metric's best-layer score vs another's per model, with Spearman's r;
5. trained vs randomly initialised networks (paired t-test, Cohen's d);
6. architecture families (Kruskal-Wallis);
7. the Neural Taskonomy similarity matrix of task networks and its dendrogram;
8. stacking weights per region, in bins of relative depth (the per-layer weights in a
   table);
9. the stacking paper's contrasts (ImageNet vs Places365, Taskonomy 2D vs 3D edges).
10. the controlled contrasts (task, data, supervision, architecture);
11. brain maps: orthogonal slices and a glass brain (maximum-intensity projections) of
    per-voxel scores of the datasets of voxels (:mod:`brainrank.leaderboard.report_maps`).

A section whose data the leaderboard does not hold yet says so in one line instead of a
figure, and a section that fails for another reason says why without taking the rest down.
Other modules add sections the same way: write ``section_x(store, options)`` returning a
:class:`Section` (``section.add_figure(fig, data, name=..., title=...)`` for each figure,
:func:`new_figure` to make one; raise :class:`NoData` when there is nothing to draw), and
add it to :data:`SECTIONS` with its anchor and title in :data:`TITLES`. A section that still
appends base64 PNGs to ``section.images`` is shown as before.

The statistics come from :mod:`brainrank.leaderboard.analyses`; this module draws them.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core.errors import InputError
from brainrank.leaderboard import analyses
from brainrank.leaderboard.palette import (
    BASELINE_COLOUR,
    FAMILY_COLOURS,
    KIND_STYLES,
    SEQUENTIAL,
    family_colour,
    model_style,
)
from brainrank.leaderboard.query import (
    dataset_regions,
    layer_curves,
    model_kind,
    models,
    per_neuroid,
    rankings,
    scores,
)
from brainrank.leaderboard.store import Store

log = logging.getLogger(__name__)

#: a scatter with more points than this labels them by number (the key is in its CSV)
MAX_NAMED_POINTS = 30
#: bins of relative depth for the mean curves and the stacking weights
DEPTH_BINS = 10
FORMATS = ("html", "pdf")

#: kept for sections written against the former report (the palette module is the source)
FAMILY_COLOURS = FAMILY_COLOURS


class NoData(Exception):
    """A section has nothing to plot yet; the message says what is missing."""


@dataclass
class Figure:
    """One figure of a section: the matplotlib figure, what it draws (``title``) and the
    numbers it draws (``data``: one row per point, bar, line vertex or heat-map cell)."""

    name: str
    title: str
    figure: Any
    data: pd.DataFrame
    caption: str = ""

    def svg(self) -> str:
        """The figure as an ``<svg>`` element (text as text; ids unique to this figure)."""
        import matplotlib

        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": self.name}):
            self.figure.savefig(buffer, format="svg", bbox_inches="tight",
                                metadata={"Date": None})  # fmt: skip
        text = buffer.getvalue()
        return text[text.index("<svg") :]

    def pdf(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="pdf", bbox_inches="tight",
                            metadata={"CreationDate": None})  # fmt: skip
        return buffer.getvalue()

    def csv(self) -> str:
        return self.data.to_csv(index=False)


@dataclass
class Section:
    anchor: str
    title: str
    description: str
    #: base64 PNGs of sections written against the former report (shown as images)
    images: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing: str | None = None
    figures: list[Figure] = field(default_factory=list)

    def add_figure(
        self, figure: Any, data: pd.DataFrame, *, name: str, title: str, caption: str = ""
    ) -> Figure:
        """Add a figure with the numbers it draws; ``name`` (made unique in the report)
        names its files, ``title`` says what is drawn (also set as the figure's title)."""
        figure.suptitle(title, fontsize=9, wrap=True)
        made = Figure(_slug(f"{self.anchor}-{name}"), title, figure, data.reset_index(drop=True),
                      caption)  # fmt: skip
        self.figures.append(made)
        return made

    def add_drawn_figure(self, figure: Any, name: str = "") -> Figure:
        """Add a figure whose title its own code drew and whose numbers are the section's
        tables: the first table becomes its CSV once the section is built (a figure of a
        section that drew it before adding its tables)."""
        titles = [t.get_text() for t in figure.texts if t.get_text()] + [
            ax.get_title() for ax in figure.axes if ax.get_title()
        ]
        title = titles[0] if titles else self.title
        made = Figure(_slug(f"{self.anchor}-{name or len(self.figures) + 1}"), title, figure,
                      None, "")  # type: ignore[arg-type]  # fmt: skip
        self.figures.append(made)
        return made


@dataclass
class ReportOptions:
    selection: str = "max"
    #: the ranking's layer choice; None: the row each metric declares (as the CLI)
    ranking_selection: str | None = None
    metric_pair: tuple[str, str] = ("rsa", "srp-ridge")
    taskonomy_models: str = "taskonomy/*"
    max_models: int = 40
    n_boot: int = 1000
    seed: int = 0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower() or "figure"


def _use_agg() -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)


def new_figure(
    width: float, height: float, rows: int | None = None, columns: int | None = None,
    **kwargs: Any,
):  # fmt: skip
    """A matplotlib figure outside pyplot's registry (freed with its last reference) and
    its axes: one ``Axes`` without ``rows``/``columns``, else a 2-d array of them."""
    from matplotlib.figure import Figure as MplFigure

    figure = MplFigure(figsize=(width, height), layout="constrained")
    if rows is None and columns is None:
        return figure, figure.add_subplot()
    axes = figure.subplots(rows or 1, columns or 1, squeeze=False, **kwargs)
    return figure, axes


def _png(fig: Any) -> str:
    """A figure as a base64 PNG (for sections written against the former report; a pyplot
    figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float):
    """(figure, axes) of one panel (the former report's helper; see :func:`new_figure`)."""
    return new_figure(width, height)


def _subplots(n: int, width: float, height: float):
    """(a list of ``n`` axes, figure): up to 3 panels a row (the former report's helper)."""
    columns = min(3, n)
    rows = math.ceil(n / columns)
    figure, axes = new_figure(width * columns, height * rows, rows, columns)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return flat[:n], figure


def _legend_handle(colour: str, label: str):
    """A legend entry: a dot of ``colour`` (the former report's helper)."""
    from matplotlib.lines import Line2D

    return Line2D([], [], marker="o", ls="", color=colour, label=label)


# --------------------------------------------------------------------------- models


def model_kinds(store: Store) -> pd.DataFrame:
    """Per model its ``family`` and ``kind`` (``trained``, ``random`` or ``baseline``: a
    hand-made feature set), as the web site labels them
    (:func:`brainrank.leaderboard.query.model_kind`)."""
    frame = models(store)
    if frame.empty:
        return pd.DataFrame(columns=["family", "kind"], index=pd.Index([], name="model"))
    out = pd.DataFrame({"family": frame["family"].astype(object).to_numpy(),
                        "kind": model_kind(frame).to_numpy()},
                       index=pd.Index(frame["model"], name="model"))  # fmt: skip
    return out[~out.index.duplicated()]


def _kind(info: pd.DataFrame, model: str) -> tuple[Any, str]:
    if model in info.index:
        return info.at[model, "family"], str(info.at[model, "kind"])
    kind = "random" if str(model).endswith(":random") else "trained"
    return None, kind


def _legend_handles(families: Iterable[Any], kinds: Iterable[str]) -> list[Any]:
    """Legend entries: one per family colour present, then the meaning of the fills.
    ``families`` and ``kinds`` run in parallel (a baseline's family is not a colour)."""
    from matplotlib.lines import Line2D

    families, kinds = list(families), list(kinds)
    handles = []
    present = {str(f) for f, k in zip(families, kinds, strict=True)
               if k != "baseline" and f is not None and str(f) != "nan"}  # fmt: skip
    for family in [*FAMILY_COLOURS, *sorted(present - set(FAMILY_COLOURS))]:
        if family in present:
            handles.append(Line2D([], [], marker="s", ls="", markersize=7,
                                  color=family_colour(family), label=family))  # fmt: skip
    labels = {"trained": "trained (filled)", "random": "random init. (hollow)",
              "baseline": "baseline (diamond)"}  # fmt: skip
    for kind in ("trained", "random", "baseline"):
        if kind in set(kinds) and (kind != "trained" or len(set(kinds)) > 1):
            style = model_style("other", kind)
            style.update(markeredgecolor="#333" if kind != "baseline" else BASELINE_COLOUR,
                         markerfacecolor=("#333" if kind == "trained" else
                                          "white" if kind == "random" else BASELINE_COLOUR))  # fmt: skip
            handles.append(Line2D([], [], markersize=6, label=labels[kind], **style))
    return handles


def _points(ax: Any, xs: Sequence[float], ys: Sequence[float], families: Sequence[Any],
            kinds: Sequence[str], names: Sequence[str], size: float = 6) -> None:  # fmt: skip
    """One marker per model in its palette style (the artist's label ``_model:NAME``, kept
    out of legends, tells which model it is)."""
    for x, y, family, kind, name in zip(xs, ys, families, kinds, names, strict=True):
        ax.plot([x], [y], markersize=size, zorder=3, label=f"_model:{name}",
                **model_style(family, kind))  # fmt: skip


def _label_points(ax: Any, xs: Sequence[float], ys: Sequence[float], names: Sequence[str],
                  max_named: int = MAX_NAMED_POINTS) -> list[str]:  # fmt: skip
    """Write each point's label beside it: its name, or with more than ``max_named``
    points its number (returned; the key is the figure's CSV)."""
    labels = list(names) if len(names) <= max_named else [str(i + 1) for i in range(len(names))]
    for x, y, label in zip(xs, ys, labels, strict=True):
        if np.isfinite(x) and np.isfinite(y):
            ax.annotate(label, (x, y), xytext=(3, 2), textcoords="offset points", fontsize=6,
                        color="#333")  # fmt: skip
    return labels


def model_numbers(names: Iterable[str]) -> dict[str, str]:
    """A number per model (in name order), to label points where names would crowd."""
    return {name: str(i) for i, name in enumerate(sorted(set(names)), start=1)}


def number_key(numbers: dict[str, str], most: int = MAX_NAMED_POINTS) -> str:
    """The key of numbered points for a caption (up to ``most``; the CSV has all)."""
    items = sorted(numbers.items(), key=lambda kv: int(kv[1]))
    shown = "; ".join(f"{n} {name}" for name, n in items[:most])
    more = f"; ... ({len(items) - most} more in the CSV)" if len(items) > most else ""
    return f"Points: {shown}{more}." if items else ""


def _figure_legend(figure: Any, handles: list[Any], columns: int = 4, right: bool = False) -> None:
    """One legend per figure, outside the axes: below them, or on the right."""
    if not handles:
        return
    if right:
        figure.legend(handles=handles, loc="outside right center", fontsize=7, frameon=False)
    else:
        figure.legend(handles=handles, loc="outside lower center", fontsize=7, frameon=False,
                      ncols=min(columns, len(handles)))  # fmt: skip


# --------------------------------------------------------------------------- sections


def section_ranking(store: Store, options: ReportOptions) -> Section:
    """The ranking of :mod:`brainrank.leaderboard.ranking`, the same as ``brainrank
    leaderboard`` and the web page: one figure per data group (real, simulated)."""
    from brainrank.leaderboard.ranking import describe

    found = rankings(store, options.ranking_selection, n_boot=options.n_boot, seed=options.seed)
    if not found:
        raise NoData("no summary scores are stored yet (run `brainrank run`).")
    description = (
        "The leaderboard's ranking (as `brainrank leaderboard` and the web page): per model "
        "the mean over (dataset, metric configuration) columns, each the mean over regions "
        "of the subject-averaged cell values, on the cells every model has. A 95% "
        "percentile-bootstrap interval across regions is drawn only from 5 regions on. The "
        "notes say what was ranked and what was left out."
    )
    section = Section("ranking", "Ranking", description)
    info = model_kinds(store)
    for ranking in found:
        table = ranking.table
        ranked = table[table["rank"].notna()]
        if ranked.empty:
            continue
        shown = ranked.head(options.max_models).iloc[::-1]
        fig, ax = new_figure(7, 0.26 * len(shown) + 1.6)
        y = np.arange(len(shown))
        mean = shown["mean"].astype(float).to_numpy()
        kinds = [_kind(info, m) for m in shown["model"]]
        low = (
            shown["ci_low"].astype(float).to_numpy() if ranking.with_ci else np.full(len(y), np.nan)
        )
        high = (
            shown["ci_high"].astype(float).to_numpy()
            if ranking.with_ci
            else np.full(len(y), np.nan)
        )
        if ranking.with_ci:
            err = np.vstack([np.clip(mean - low, 0, None), np.clip(high - mean, 0, None)])
            ax.errorbar(mean, y, xerr=np.nan_to_num(err), fmt="none", ecolor="#444", capsize=2,
                        lw=1)  # fmt: skip
        _points(ax, mean, y, [f for f, _ in kinds], [k for _, k in kinds], list(shown["model"]))
        ax.set_yticks(y, shown["model"], fontsize=7)
        ax.set_xlabel("mean over the shared cells (ceiling-normalised where the ceiling is usable)",
                      fontsize=8)  # fmt: skip
        ax.axvline(0, color="#bbb", lw=0.8)
        _figure_legend(fig, _legend_handles([f for f, _ in kinds], [k for _, k in kinds]))
        what = (
            f"dots: mean; bars: 95% percentile-bootstrap CI over {ranking.n_units} (dataset, "
            "region) units"
            if ranking.with_ci
            else f"dots: mean; no CI drawn ({ranking.n_units} (dataset, region) units, fewer than 5)"
        )
        title = f"Ranking, {ranking.title}: {what}"
        data = pd.DataFrame({
            "rank": shown["rank"].to_numpy(), "model": shown["model"].to_numpy(),
            "family": [f for f, _ in kinds], "kind": [k for _, k in kinds], "mean": mean,
            "ci_low": low, "ci_high": high,
        }).iloc[::-1]  # fmt: skip
        section.add_figure(fig, data, name=ranking.group, title=title)
        if len(ranked) > options.max_models:
            section.notes.append(
                f"The {ranking.title} figure shows the top {options.max_models} of {len(ranked)}."
            )
    section.notes += describe(found)
    for ranking in found:
        label = f"Ranking, {ranking.title}" if len(found) > 1 else "Ranking"
        section.tables.append((label, ranking.table))
        if not ranking.excluded.empty:
            excluded = ranking.excluded.assign(
                missing_for=ranking.excluded["missing_for"].map(", ".join)
            )[["cell", "n_models", "missing_for"]]
            section.tables.append((f"Cells left out, {ranking.title}", excluded))
    return section


def _heat_map(ax: Any, values: np.ndarray, **scale: Any) -> Any:
    """A heat map as vector cells (``pcolormesh``; ``imshow`` would embed a bitmap in the
    SVG and PDF), first row at the top."""
    mesh = ax.pcolormesh(values, cmap=SEQUENTIAL, edgecolors="none", **scale)
    ax.invert_yaxis()
    return mesh


def _colour_bar(figure: Any, mappable: Any, axes: Any, label: str) -> Any:
    """One colour bar for ``axes`` (all the heat maps of a figure share its scale), drawn as
    vector cells (matplotlib rasterises a colour bar of 50 or more levels)."""
    bar = figure.colorbar(mappable, ax=axes, fraction=0.046, label=label)
    bar.solids.set_rasterized(False)
    return bar


def _depth_bin(depth: pd.Series | np.ndarray) -> np.ndarray:
    return np.clip((np.asarray(depth, dtype=float) * DEPTH_BINS).astype(int), 0, DEPTH_BINS - 1)


def section_depth(store: Store, options: ReportOptions) -> Section:
    section = Section(
        "depth",
        "Score vs relative layer depth",
        "Per-layer scores (mean over subjects) against the layer's relative depth (0 = first "
        "layer, 1 = last), one panel per region, one figure per dataset and metric "
        "configuration. Thin lines: networks (colour: family; solid: trained, dashed: "
        f"random); thick black lines: the mean over trained (solid) and over random (dashed) "
        f"networks in {DEPTH_BINS} depth bins; grey horizontal lines: baselines (hand-made "
        "features, one or two layers) at their best layer, for reference: they are no depth "
        "curve and enter no mean.",
    )
    frame = scores(store, selection="layer")
    frame = frame.dropna(subset=["score", "relative_depth"])
    if frame.empty:
        raise NoData("no per-layer scores with a relative depth are stored yet.")
    curves = layer_curves(frame)
    info = model_kinds(store)
    kind_of = {m: _kind(info, m) for m in curves["model"].unique()}
    region_order = dataset_regions(store)
    # one figure per metric configuration: two settings of one metric are never averaged
    for (dataset, config), part in curves.groupby(["dataset", "config"], sort=True):
        have = set(part["region"].astype(str))
        # in the order the dataset gives them
        regions = [r for r in region_order.get(str(dataset), []) if r in have]
        regions += sorted(have - set(regions))
        columns = min(4, len(regions))
        rows = math.ceil(len(regions) / columns)
        fig, axes = new_figure(3.0 * columns + 1.8, 2.5 * rows + 0.5, rows, columns, sharey=True)
        records = []
        baselines_seen: list[str] = []
        counts = {"trained": set(), "random": set()}
        for ax, region in zip(axes.flat, regions, strict=False):
            data = part[part["region"] == region]
            by_model = data.groupby(["model", "relative_depth"])["score"].mean().reset_index()
            networks = by_model[[kind_of[m][1] != "baseline" for m in by_model["model"]]]
            for model, curve in networks.groupby("model"):
                family, kind = kind_of[model]
                counts[kind].add(model)
                ax.plot(curve["relative_depth"], curve["score"], color=family_colour(family),
                        lw=0.7, alpha=0.6, ls=KIND_STYLES[kind]["linestyle"],
                        label=f"_model:{model}")  # fmt: skip
                records += [{"region": region, "series": model, "kind": kind, "family": family,
                             "relative_depth": d, "score": s}
                            for d, s in zip(curve["relative_depth"], curve["score"], strict=True)]  # fmt: skip
            for kind in ("trained", "random"):
                members = networks[[kind_of[m][1] == kind for m in networks["model"]]]
                if members["model"].nunique() < 2:
                    continue
                mean = members.groupby(_depth_bin(members["relative_depth"]))["score"].mean()
                centres = (mean.index.to_numpy() + 0.5) / DEPTH_BINS
                ax.plot(centres, mean.to_numpy(), color="black", lw=2,
                        ls=KIND_STYLES[kind]["linestyle"])  # fmt: skip
                records += [{"region": region, "series": f"mean of {kind} networks",
                             "kind": kind, "family": None, "relative_depth": c, "score": s}
                            for c, s in zip(centres, mean.to_numpy(), strict=True)]  # fmt: skip
            dashes = [(0, (1, 1)), (0, (8, 2)), (0, (6, 2, 1, 2)), (0, (1, 3))]
            for model, curve in by_model.groupby("model"):
                if kind_of[model][1] != "baseline":
                    continue
                if model not in baselines_seen:
                    baselines_seen.append(model)
                best = float(curve["score"].max())
                ax.axhline(best, color=BASELINE_COLOUR, lw=1.2,
                           ls=dashes[baselines_seen.index(model) % len(dashes)])  # fmt: skip
                records.append({"region": region, "series": model, "kind": "baseline",
                                "family": kind_of[model][0], "relative_depth": None,
                                "score": best})  # fmt: skip
            ax.set_title(region, fontsize=9)
            ax.set_xlim(0, 1)
            ax.tick_params(labelsize=7)
        for ax in axes.flat[len(regions) :]:
            ax.set_visible(False)
        fig.supxlabel("relative depth of the layer (0 = first, 1 = last)", fontsize=8)
        fig.supylabel("score (mean over subjects)", fontsize=8)
        handles = _depth_legend(part, kind_of, counts, baselines_seen, dashes)
        _figure_legend(fig, handles, right=True)
        shown = [f"{len(v)} {k}" for k, v in counts.items() if v]
        title = (
            f"{dataset} / {config}: per-layer score vs relative depth, one panel per region "
            f"({', '.join(shown) or 'no'} networks"
            + (f"; {len(baselines_seen)} baselines as reference lines" if baselines_seen else "")
            + ")"
        )
        section.add_figure(fig, pd.DataFrame(records), name=f"{dataset}-{config}", title=title)
    return section


def _depth_legend(part, kind_of, counts, baselines, dashes) -> list[Any]:
    from matplotlib.lines import Line2D

    families = [kind_of[m][0] for m in part["model"].unique() if kind_of[m][1] != "baseline"]
    handles = _legend_handles(families, ["trained"] * len(families))
    if counts["trained"]:
        handles.append(Line2D([], [], color="#333", lw=0.8, label="trained network"))
    if counts["random"]:
        handles.append(Line2D([], [], color="#333", lw=0.8, ls="--", label="random network"))
    for kind in ("trained", "random"):
        if len(counts[kind]) >= 2:
            handles.append(Line2D([], [], color="black", lw=2, ls=KIND_STYLES[kind]["linestyle"],
                                  label=f"mean of {len(counts[kind])} {kind}"))  # fmt: skip
    for i, model in enumerate(baselines):
        handles.append(Line2D([], [], color=BASELINE_COLOUR, lw=1.2, ls=dashes[i % len(dashes)],
                              label=f"{model} (best layer)"))  # fmt: skip
    return handles


def _present(frame: pd.DataFrame, metrics: tuple[str, ...]) -> list[str]:
    have = set(frame["metric"])
    return [m for m in metrics if m in have]


def section_best_depth(store: Store, options: ReportOptions) -> Section:
    section = Section(
        "best-depth",
        "Relative depth of the best layer",
        f"Where the '{options.selection}' layer sits in each network (0 = first layer, "
        "1 = last), per dataset, metric configuration and region: one point per network "
        "(mean over subjects; colour: family, hollow: random), boxes over the networks. "
        "Baselines (one or two layers) are left out of the figure. The tables give the mean "
        "per region and family.",
    )
    frame = scores(store, selection=options.selection).dropna(subset=["relative_depth"])
    if frame.empty:
        raise NoData("no best-layer rows with a relative depth are stored yet.")
    info = model_kinds(store)
    per_model = (
        frame.groupby(["dataset", "config", "region", "model"], sort=False)["relative_depth"]
        .mean()
        .reset_index()
    )
    per_model["family"] = [_kind(info, m)[0] for m in per_model["model"]]
    per_model["kind"] = [_kind(info, m)[1] for m in per_model["model"]]
    networks = per_model[per_model["kind"] != "baseline"]
    if networks.empty:
        raise NoData("only baselines have best-layer rows; a depth needs a network.")
    declared = dataset_regions(store)  # each dataset's regions in its own order

    def position(key: tuple) -> tuple:
        regions = declared.get(str(key[0]), [])
        where = regions.index(key[2]) if key[2] in regions else len(regions)
        return (key[0], key[1], where, key[2])

    groups = sorted(networks.groupby(["dataset", "config", "region"], sort=False),
                    key=lambda kv: position(kv[0]))  # fmt: skip
    fig, ax = new_figure(max(5, 0.5 * len(groups) + 1.5), 4.0)
    ax.boxplot([g["relative_depth"].to_numpy() for _, g in groups], showfliers=False,
               widths=0.5, medianprops={"color": "#333"})  # fmt: skip
    jitter = np.random.default_rng(0)
    number = model_numbers(networks["model"])
    for i, (_, group) in enumerate(groups, start=1):
        xs = i + jitter.uniform(-0.15, 0.15, len(group))
        ys = group["relative_depth"].to_numpy()
        _points(ax, xs, ys, list(group["family"]), list(group["kind"]), list(group["model"]),
                size=4)  # fmt: skip
        _label_points(ax, xs, ys, [number[m] for m in group["model"]], max_named=len(group))
    ax.set_xticks(np.arange(1, len(groups) + 1),
                  [f"{d}\n{m}\n{r}" for (d, m, r), _ in groups], fontsize=6)  # fmt: skip
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("relative depth of the best layer", fontsize=8)
    _figure_legend(fig, _legend_handles(networks["family"], networks["kind"]))
    data = networks.assign(label=[number[m] for m in networks["model"]])
    section.add_figure(
        fig,
        data[["dataset", "config", "region", "label", "model", "family", "kind",
              "relative_depth"]],
        name="all",
        title=f"Relative depth of the '{options.selection}' layer per region: one point per "
        f"network ({networks['model'].nunique()} networks, numbered), boxes: quartiles",
        caption=number_key(number),
    )  # fmt: skip
    for metric, part in frame.groupby("config", sort=True):  # configurations apart
        table = analyses.best_layer_depth(
            part, metric=str(part["metric"].iloc[0]), selection=options.selection
        )
        if not table.empty:
            section.tables.append((f"Best-layer depth, {metric}", table))
    return section


def section_metric_agreement(store: Store, options: ReportOptions) -> Section:
    first, second = options.metric_pair
    section = Section(
        "agreement",
        f"{first} vs {second}, best layer",
        f"Each point is a model: its '{options.selection}' score under {first} and under "
        f"{second} (mean over regions), labelled (colour: family; hollow: random; diamond: "
        "baseline). The table gives Spearman's rank agreement of the two metrics over "
        "models, over trained models, over layers and layer by layer within models, with 95% "
        "bootstrap CIs.",
    )
    frame = scores(store, metric=f"{first},{second}")
    if len(_present(frame, options.metric_pair)) < 2:
        raise NoData(f"the leaderboard does not hold scores of both {first} and {second}.")
    try:  # a metric stored with several configurations: never averaged, so no plot
        a = analyses.region_scores(frame, first, options.selection).mean(axis=1)
        b = analyses.region_scores(frame, second, options.selection).mean(axis=1)
    except InputError as exc:
        raise NoData(str(exc)) from exc
    common = a.index.intersection(b.index)
    if len(common) < 3:
        raise NoData(f"fewer than 3 models are scored with both {first} and {second}.")
    table = analyses.metric_agreement(
        frame, first, second, selection=options.selection, n_boot=options.n_boot, seed=options.seed
    )
    info = model_kinds(store)
    kinds = [_kind(info, m) for m in common]
    fig, ax = new_figure(5.0, 5.0)
    xs, ys = a[common].to_numpy(dtype=float), b[common].to_numpy(dtype=float)
    _points(ax, xs, ys, [f for f, _ in kinds], [k for _, k in kinds], list(common))
    labels = _label_points(ax, xs, ys, list(common))
    ax.set_xlabel(f"{first}, '{options.selection}' layer (mean over regions)", fontsize=8)
    ax.set_ylabel(f"{second}, '{options.selection}' layer (mean over regions)", fontsize=8)
    _figure_legend(fig, _legend_handles([f for f, _ in kinds], [k for _, k in kinds]), columns=3)
    models_row = table[table["comparison"] == "models"]
    rho = float(models_row["rho"].iloc[0]) if not models_row.empty else float("nan")
    title = (f"{first} vs {second} per model ('{options.selection}' layer, mean over regions): "
             f"Spearman r = {rho:.2f} over {len(common)} models")  # fmt: skip
    data = pd.DataFrame({"label": labels, "model": list(common), "family": [f for f, _ in kinds],
                         "kind": [k for _, k in kinds], first: xs, second: ys})  # fmt: skip
    section.add_figure(fig, data, name="scatter", title=title)
    section.tables.append(("Rank agreement", table))
    return section


def section_trained_random(store: Store, options: ReportOptions) -> Section:
    section = Section(
        "trained-random",
        "Trained vs randomly initialised networks",
        "Each point is an architecture (labelled; colour: family): its score trained (x) and "
        "randomly initialised (y, the ':random' variant), mean over regions of the "
        f"'{options.selection}' layer; the dashed line is y = x. Paired t-test and Cohen's d "
        "(d_z) across architectures, given from 5 pairs on.",
    )
    frame = scores(store, selection=options.selection)
    results, reasons = [], []
    for metric in sorted(frame["config"].unique()):  # each configuration apart
        try:
            results.append((metric, analyses.trained_vs_random(frame, metric, options.selection)))
        except InputError as exc:
            reasons.append(str(exc))
    if not results:
        raise NoData(reasons[0] if reasons else "no scores are stored yet.")
    info = model_kinds(store)
    columns = min(3, len(results))
    rows_n = math.ceil(len(results) / columns)
    fig, axes = new_figure(3.6 * columns, 3.4 * rows_n + 0.6, rows_n, columns)
    rows, records, families = [], [], set()
    for ax, (metric, result) in zip(axes.flat, results, strict=False):
        pairs = result.pairs
        fams = [_kind(info, m)[0] for m in pairs["trained_model"]]
        families |= {f for f in fams if f is not None}
        xs, ys = pairs["trained"].to_numpy(dtype=float), pairs["random"].to_numpy(dtype=float)
        _points(ax, xs, ys, fams, ["trained"] * len(pairs), list(pairs["trained_model"]))
        labels = _label_points(ax, xs, ys, list(pairs["architecture"]))
        low = float(np.nanmin(np.r_[xs, ys]))
        high = float(np.nanmax(np.r_[xs, ys]))
        ax.plot([low, high], [low, high], color="#999", lw=0.8, ls="--")
        ax.set_xlabel("trained", fontsize=8)
        ax.set_ylabel("randomly initialised", fontsize=8)
        effect = (f"d = {result.cohens_d:.2f}, p = {result.p_value:.3g}"
                  if np.isfinite(result.cohens_d) else f"{result.n} pairs: no test")  # fmt: skip
        ax.set_title(f"{metric}: {effect}", fontsize=8)
        records += [{"metric": metric, "label": lab, "architecture": arch, "family": fam,
                     "trained": x, "random": y}
                    for lab, arch, fam, x, y in zip(labels, pairs["architecture"], fams, xs, ys,
                                                    strict=True)]  # fmt: skip
        rows.append(
            {
                "metric": metric,
                "n_architectures": len(pairs),
                "mean_trained": pairs["trained"].mean(),
                "mean_random": pairs["random"].mean(),
                "t": result.t,
                "p": result.p_value,
                "cohens_d": result.cohens_d,
                "random_matches_or_beats": ", ".join(result.random_matches_or_beats),
                "note": result.reason or "",
            }
        )
    for ax in axes.flat[len(results) :]:
        ax.set_visible(False)
    _figure_legend(fig, _legend_handles(sorted(families), ["trained"] * len(families)))
    section.add_figure(
        fig, pd.DataFrame(records), name="pairs",
        title=f"Trained vs randomly initialised, one point per architecture ('{options.selection}' "
        "layer, mean over regions), one panel per metric configuration",
    )  # fmt: skip
    section.tables.append(("Paired comparison", pd.DataFrame(rows)))
    return section


def section_families(store: Store, options: ReportOptions) -> Section:
    section = Section(
        "families",
        "Architecture families",
        "Scores of the trained models of each family (mean over regions of the "
        f"'{options.selection}' layer): one point per model, boxes over the models; "
        "Kruskal-Wallis test across families (p only with 5 models in every family).",
    )
    frame = scores(store, selection=options.selection)
    results, reasons = [], []
    for metric in sorted(frame["config"].unique()):  # each configuration apart
        try:
            results.append((metric, analyses.family_comparison(frame, metric, options.selection)))
        except InputError as exc:
            reasons.append(str(exc))
    if not results:
        raise NoData(reasons[0] if reasons else "no scores are stored yet.")
    info = frame.groupby("model")[["family", "trained"]].first()
    number = model_numbers(m for m in info.index if bool(info.loc[m, "trained"]))
    columns = min(3, len(results))
    rows_n = math.ceil(len(results) / columns)
    fig, axes = new_figure(3.6 * columns, 3.2 * rows_n + 0.5, rows_n, columns)
    tables, records = [], []
    jitter = np.random.default_rng(0)
    for ax, (metric, result) in zip(axes.flat, results, strict=False):
        per_model = analyses.region_scores(frame, metric, options.selection).mean(axis=1)
        families = list(result.summary["family"])
        members = [
            [m for m in per_model.index
             if info.loc[m, "family"] == f and bool(info.loc[m, "trained"])]
            for f in families
        ]  # fmt: skip
        ax.boxplot([per_model[m].to_numpy() for m in members], showfliers=False, widths=0.5,
                   medianprops={"color": "#333"})  # fmt: skip
        for i, (family, names) in enumerate(zip(families, members, strict=True), start=1):
            xs = i + jitter.uniform(-0.15, 0.15, len(names))
            ys = per_model[names].to_numpy()
            _points(ax, xs, ys, [family] * len(names), ["trained"] * len(names), names,
                    size=4)  # fmt: skip
            _label_points(ax, xs, ys, [number[m] for m in names], max_named=len(names))
            records += [{"metric": metric, "label": number[m], "family": family, "model": m,
                         "score": per_model[m]} for m in names]  # fmt: skip
        ax.set_xticks(np.arange(1, len(families) + 1), families, fontsize=7)
        p = f"p = {result.p_value:.3g}" if np.isfinite(result.p_value) else "no p (few models)"
        ax.set_title(f"{metric}: H = {result.h:.2f}, {p}", fontsize=8)
        ax.set_ylabel("score (mean over regions)", fontsize=8)
        tables.append(
            result.summary.assign(
                metric=metric,
                H=result.h,
                p=result.p_value,
                epsilon_squared=result.epsilon_squared,
                note=result.reason or "",
            )
        )
    for ax in axes.flat[len(results) :]:
        ax.set_visible(False)
    section.add_figure(
        fig, pd.DataFrame(records), name="families",
        title=f"Trained models by family ('{options.selection}' layer, mean over regions; "
        "points numbered), one panel per metric configuration",
        caption=number_key(number),
    )  # fmt: skip
    section.tables.append(("Kruskal-Wallis", pd.concat(tables, ignore_index=True)))
    return section


def section_taskonomy(store: Store, options: ReportOptions) -> Section:
    section = Section(
        "taskonomy",
        "Neural Taskonomy: task similarity and clustering",
        f"Models {options.taskonomy_models}: cosine similarity between their voxel-wise "
        "performance maps (each voxel's held-out r at the best layer; voxels whose "
        "permutation test is not significant after Benjamini-Hochberg FDR, q = 0.05, count "
        "as 0, as in Wang et al. 2019), and the average-linkage tree of 1 - similarity. Only "
        "metrics that store per-voxel significance (encoding:taskonomy) are used. Every "
        "matrix uses one colour scale, 0 to 1.",
    )
    frame = scores(store, selection=options.selection, model=options.taskonomy_models)
    if frame["model"].nunique() < 3:
        raise NoData(
            f"fewer than 3 task networks ({options.taskonomy_models}) have best-layer scores."
        )
    found = []
    for (dataset, metric), part in frame.groupby(["dataset", "metric"], sort=True):
        if part["model"].nunique() < 3:
            continue
        values = per_neuroid(store, dataset=dataset, metric=metric, model=options.taskonomy_models)
        if values.empty or not (values["selection"] == "significance").any():
            continue
        maps, significant = analyses.significant_maps(values)
        maps = {name.split("/")[-1]: m for name, m in maps.items()}
        significant = {name.split("/")[-1]: m for name, m in significant.items()}
        if len(maps) < 3:
            continue
        similarity = analyses.task_similarity(maps, significant)
        found.append((dataset, metric, similarity, analyses.cluster_tasks(similarity)))
    if not found:
        raise NoData(
            "no dataset has per-neuroid significance of 3 or more task networks; score them "
            "with the metric 'encoding:taskonomy' (held-out r, permutation test, FDR)."
        )
    from scipy.cluster.hierarchy import dendrogram

    for dataset, metric, similarity, tree in found:
        labels = list(similarity.index)
        fig, axes = new_figure(11, 0.3 * len(labels) + 3, 1, 2)
        left, right = axes[0]
        image = _heat_map(left, similarity.to_numpy(), vmin=0, vmax=1)
        left.set_aspect("equal")
        left.set_xticks(np.arange(len(labels)) + 0.5, labels, rotation=90, fontsize=7)
        left.set_yticks(np.arange(len(labels)) + 0.5, labels, fontsize=7)
        _colour_bar(fig, image, left, "cosine similarity")
        dendrogram(
            tree.linkage, labels=tree.labels, orientation="right", ax=right, leaf_font_size=7
        )
        right.tick_params(axis="x", labelsize=7, labelrotation=45)
        right.set_xlabel("1 - cosine similarity", fontsize=8)
        long = similarity.rename_axis(index="task_a", columns="task_b").stack()
        data = long.rename("similarity").reset_index()
        section.add_figure(
            fig, data, name=f"{dataset}-{metric}",
            title=f"{dataset} / {metric}: cosine similarity of the task networks' significant "
            "voxel maps (left, scale 0-1) and their average-linkage tree (right)",
        )  # fmt: skip
        section.tables.append((f"Similarity, {dataset} / {metric}", similarity.reset_index()))
    return section


def stacking_weights(frame: pd.DataFrame) -> pd.DataFrame:
    """Long table of stacking weights: (model, dataset, region, layer, weight), averaged over
    subjects, from the stacked rows' ``details["weights"]``."""
    rows = []
    for row in frame.itertuples():
        details = row.details if isinstance(row.details, dict) else {}
        for layer, weight in (details.get("weights") or {}).items():
            rows.append(
                {
                    "model": row.model,
                    "dataset": row.dataset,
                    "region": row.region,
                    "subject": row.subject,
                    "layer": layer,
                    "weight": weight,
                }
            )
    long = pd.DataFrame(rows, columns=["model", "dataset", "region", "subject", "layer", "weight"])
    if long.empty:
        return long.drop(columns="subject")
    return (
        long.groupby(["model", "dataset", "region", "layer"], sort=False)["weight"]
        .mean()
        .reset_index()
    )


def binned_weights(weights: pd.DataFrame, depth: dict[str, float]) -> pd.DataFrame:
    """Stacking weights summed within :data:`DEPTH_BINS` bins of relative depth, so that
    every model reads alike whatever its layer count (each region's bins sum to its total
    weight, 1). ``weights``: rows of one model (region, layer, weight); ``depth``: layer ->
    relative depth. Layers of unknown depth go to a last column ``unknown depth``."""
    out = pd.DataFrame(0.0, index=pd.Index(list(dict.fromkeys(weights["region"])), name="region"),
                       columns=[*_bin_labels(), "unknown depth"])  # fmt: skip
    labels = _bin_labels()
    for row in weights.itertuples():
        d = depth.get(row.layer)
        column = "unknown depth" if d is None or not np.isfinite(d) else labels[_depth_bin([d])[0]]
        out.loc[row.region, column] += float(row.weight)
    if not out["unknown depth"].any():
        out = out.drop(columns="unknown depth")
    return out


def _bin_labels() -> list[str]:
    return [f"{i / DEPTH_BINS:.1f}-{(i + 1) / DEPTH_BINS:.1f}" for i in range(DEPTH_BINS)]


def section_stacking(store: Store, options: ReportOptions) -> Section:
    section = Section(
        "stacking",
        "Stacking weights per region",
        "Convex weights of each layer's encoding model in the stacked model (mean over a "
        f"region's voxels and subjects), summed within {DEPTH_BINS} bins of relative layer "
        "depth so that networks of any layer count read alike: rows: regions, columns: depth "
        "bins (0 = first layer, 1 = last); each row sums to 1. One colour scale for every "
        "model; the per-layer weights are in the table and the CSV.",
    )
    frame = scores(store, selection="stacked")
    weights = stacking_weights(frame)
    if weights.empty:
        raise NoData("no stacked scores with weights are stored yet (metric 'stacking').")
    order = scores(store, selection="layer", model=",".join(weights["model"].unique()))
    depth = order.groupby(["model", "layer"])["relative_depth"].mean()
    index = order.groupby(["model", "layer"])["layer_index"].min()
    groups = list(weights.groupby(["model", "dataset"], sort=True))[: options.max_models]
    binned = []
    for (model, dataset), part in groups:
        depths = {layer: float(depth[(model, layer)]) for layer in part["layer"].unique()
                  if (model, layer) in depth.index}  # fmt: skip
        binned.append(((model, dataset), binned_weights(part, depths)))
    high = max(float(table.to_numpy().max()) for _, table in binned) or 1.0
    n = len(binned)
    height = sum(0.28 * len(t) + 0.9 for _, t in binned) + 1.0
    fig, axes = new_figure(7.5, height, n, 1)
    from matplotlib import colors

    norm = colors.Normalize(vmin=0, vmax=high)
    image = None
    records = []
    for ax, ((model, dataset), table) in zip(axes.flat, binned, strict=True):
        image = _heat_map(ax, table.to_numpy(), norm=norm)
        ax.set_yticks(np.arange(len(table)) + 0.5, table.index, fontsize=7)
        ax.set_xticks(np.arange(len(table.columns)) + 0.5, table.columns, fontsize=6, rotation=45)
        ax.set_title(f"{model} on {dataset}", fontsize=8)
        ax.set_xlabel("relative depth of the layers (bin)", fontsize=7)
        long = table.rename_axis(columns="depth_bin").stack().rename("weight").reset_index()
        records.append(long.assign(model=model, dataset=dataset))
    _colour_bar(fig, image, list(axes.flat), "summed layer weight")
    data = pd.concat(records, ignore_index=True)[["model", "dataset", "region", "depth_bin",
                                                   "weight"]]  # fmt: skip
    section.add_figure(
        fig, data, name="weights",
        title=f"Stacking weights in {DEPTH_BINS} bins of relative depth, one panel per model "
        f"(one colour scale, 0 to {high:.2f})",
    )  # fmt: skip
    detail = weights.assign(
        layer_index=[index.get((m, layer)) for m, layer in zip(weights["model"], weights["layer"],
                                                               strict=True)],
        relative_depth=[depth.get((m, layer)) for m, layer in zip(weights["model"],
                                                                  weights["layer"], strict=True)],
    )  # fmt: skip
    detail = detail.sort_values(["model", "dataset", "region", "layer_index"], kind="stable")
    section.tables.append(("Stacking weights per layer", detail.reset_index(drop=True)))
    return section


def section_stacking_contrast(store: Store, options: ReportOptions) -> Section:
    """The stacking paper's contrasts (its own module: brainrank/leaderboard/report_stacking.py)."""
    from brainrank.leaderboard.report_stacking import section_stacking_contrast as draw

    return draw(store, options)


def section_uncalibrated(store: Store, options: ReportOptions) -> Section:
    """Configurations that are not calibrated (left out of the ranking above), ranked by
    name with their chance levels beside their scores, as ``brainrank leaderboard --config
    NAME`` and the web page show them."""
    frame = scores(store)
    if frame.empty or "calibrated" not in frame.columns:
        raise NoData("no scores are stored yet.")
    uncalibrated = frame[frame["calibrated"].map(lambda v: v is False or v == 0)]
    if uncalibrated.empty:
        return Section(
            "uncalibrated",
            "Configurations that are not calibrated",
            "Every stored configuration is calibrated (its expected score without signal is 0): "
            "none is left out of the ranking for that reason.",
        )
    names = sorted(set(uncalibrated["config"].astype(str)))
    found = rankings(store, options.ranking_selection, n_boot=options.n_boot, seed=options.seed,
                     config=",".join(names), include_uncalibrated=True)  # fmt: skip
    section = Section(
        "uncalibrated",
        "Configurations that are not calibrated, with their chance levels",
        "These configurations (the seed papers' exact protocols) do not score 0 without "
        "signal, so the ranking above leaves them out. Here each is ranked on its own cells, "
        "and each column is followed by its chance level: the same protocol on the same "
        "features with the stimulus labels permuted. Read a score against its chance level, "
        "not against 0.",
    )
    from brainrank.leaderboard.ranking import describe

    for ranking in found:
        section.tables.append((f"Not calibrated, {ranking.title}", ranking.table))
    section.notes += describe(found)
    return section


def section_contrasts(store: Store, options: ReportOptions) -> Section:
    """The seed contrasts (task, data, supervision, architecture), each controlling for the
    other taxonomy fields: :mod:`brainrank.leaderboard.report_contrasts` (imported here, as it
    imports this module's Section)."""
    from brainrank.leaderboard.report_contrasts import section_contrasts as contrasts

    return contrasts(store, options)


def section_maps(store: Store, options: ReportOptions) -> Section:
    """Brain maps of the datasets of voxels: :mod:`brainrank.leaderboard.report_maps`
    (imported here, as it imports this module's Section)."""
    from brainrank.leaderboard.report_maps import section_maps as brain_maps

    return brain_maps(store, options)


SECTIONS: list[Callable[[Store, ReportOptions], Section]] = [
    section_ranking,
    section_uncalibrated,
    section_depth,
    section_best_depth,
    section_metric_agreement,
    section_trained_random,
    section_families,
    section_taskonomy,
    section_stacking,
    section_stacking_contrast,
    section_contrasts,
    section_maps,
]

TITLES = {
    section_ranking: ("ranking", "Ranking"),
    section_uncalibrated: ("uncalibrated", "Configurations that are not calibrated"),
    section_depth: ("depth", "Score vs relative layer depth"),
    section_best_depth: ("best-depth", "Relative depth of the best layer"),
    section_metric_agreement: ("agreement", "One metric vs another, best layer"),
    section_trained_random: ("trained-random", "Trained vs randomly initialised networks"),
    section_families: ("families", "Architecture families"),
    section_taskonomy: ("taskonomy", "Neural Taskonomy: task similarity and clustering"),
    section_stacking: ("stacking", "Stacking weights per region"),
    section_stacking_contrast: (
        "stacking-contrast",
        "Stacking contrasts: task at a fixed architecture",
    ),
    section_contrasts: ("contrasts", "Controlled contrasts: task, data, supervision, architecture"),
    section_maps: ("maps", "Brain maps"),
}


# --------------------------------------------------------------------------- assembly


def build_sections(store: Store, options: ReportOptions | None = None) -> list[Section]:
    options = options or ReportOptions()
    _use_agg()
    import matplotlib

    out = []
    sections, titles = all_sections()
    for make in sections:
        anchor, title = titles.get(make) or _default_title(make)
        try:
            # every text drawn is data (model, region, layer names): a '$' is a dollar
            # sign, never the start of mathtext
            with matplotlib.rc_context({"text.parse_math": False, "font.size": 8}):
                out.append(make(store, options))
        except NoData as exc:
            out.append(Section(anchor, title, "", missing=str(exc)))
        except Exception as exc:  # a broken section must not take the report down
            log.exception("report section %s failed", anchor)
            out.append(Section(anchor, title, "", missing=f"this section failed: {_reason(exc)}"))
    _fill_drawn(out)
    _unique_names(out)
    return out


def _fill_drawn(sections: list[Section]) -> None:
    """Drawn figures (:meth:`Section.add_drawn_figure`) get their section's first table as
    their numbers."""
    for section in sections:
        for figure in section.figures:
            if figure.data is None:
                figure.data = (
                    section.tables[0][1].reset_index(drop=True)
                    if section.tables
                    else pd.DataFrame({"note": ["the figure's numbers are in its section"]})
                )


def all_sections() -> tuple[list[Callable[[Store, ReportOptions], Section]], dict]:
    """:data:`SECTIONS` followed by the papers' analyses
    (:mod:`brainrank.leaderboard.report_analyses`, imported here: it imports this module),
    and their titles."""
    from brainrank.leaderboard import report_analyses

    return [*SECTIONS, *report_analyses.SECTIONS], {**TITLES, **report_analyses.TITLES}


def _default_title(make: Callable) -> tuple[str, str]:
    """Anchor and title of a section function missing from :data:`TITLES`."""
    name = getattr(make, "__name__", "section").removeprefix("section_")
    return name.replace("_", "-"), name.replace("_", " ").capitalize()


def _unique_names(sections: list[Section]) -> None:
    seen: dict[str, int] = {}
    for section in sections:
        for figure in section.figures:
            count = seen.get(figure.name, 0)
            seen[figure.name] = count + 1
            if count:
                figure.name = f"{figure.name}-{count + 1}"


def _reason(exc: BaseException) -> str:
    """Why a section failed, never empty: the error's type and its message."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else f"{type(exc).__name__} (no message)"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}
figcaption{font-size:.9em;color:#333}figcaption a{margin-left:.6em}
img{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:12px;margin:.6em 0}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
.missing{color:#8a6d3b;background:#fcf8e3;padding:.5em 1em;border-radius:4px}
.meta{color:#555;font-size:.9em}
details{margin:.4em 0}
nav a{margin-right:1em}
"""


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(
        index=False, float_format=lambda v: f"{v:.3f}", na_rep="–", border=0, escape=True
    )


def _header(store: Store) -> tuple[str, str]:
    """The report's title line and its provenance sentence."""
    counts = {
        "models": scores(store)["model"].nunique(),
        "scores": store.count("scores"),
        "runs": store.count("runs"),
    }
    runs = store.runs_frame()
    latest = runs.iloc[-1] if not runs.empty else None
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = (f"Leaderboard {store.display_url}; {counts['models']} models, {counts['scores']} "
            f"score rows, {counts['runs']} runs; generated {now}.")  # fmt: skip
    if latest is not None:
        text += (
            f" Latest run {int(latest['id'])} ({latest['status']}), brainrank "
            f"{latest['code_version']}, revision {latest['git_revision']}."
        )
    return "brainrank leaderboard report", text


def _data_uri(text: str, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(text.encode("utf-8")).decode("ascii")


def render(store: Store, sections: list[Section], assets: Path | None = None,
           relative_to: Path | None = None) -> str:  # fmt: skip
    """The report as one HTML document: figures inline as SVG, each with a link to its
    numbers (a ``data:`` URI, or with ``assets`` a CSV file written there, linked relative
    to ``relative_to``, the HTML file's folder)."""
    _fill_drawn(sections)
    title, meta = _header(store)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='meta'>{html.escape(meta)} Figures are vector graphics (SVG); each links "
        "the numbers it draws as CSV.</p><nav>",
    ]
    parts += [f"<a href='#{s.anchor}'>{html.escape(s.title)}</a>" for s in sections]
    parts.append("</nav>")
    for section in sections:
        parts.append(f"<section id='{section.anchor}'><h2>{html.escape(section.title)}</h2>")
        if section.missing:
            parts.append(
                f"<p class='missing'>No data for this figure yet: {html.escape(section.missing)}</p>"
            )
        else:
            parts.append(f"<p>{html.escape(section.description)}</p>")
            for figure in section.figures:
                parts.append(_figure_html(figure, assets, relative_to))
            for image in section.images:
                parts.append(
                    f"<img alt='{html.escape(section.title)}' src='data:image/png;base64,{image}'>"
                )
            for note in section.notes:
                parts.append(f"<p class='meta'>{html.escape(note)}</p>")
            for name, table in section.tables:
                parts.append(f"<details><summary>{html.escape(name)} (numbers)</summary>")
                parts.append(_table_html(table))
                parts.append("</details>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _figure_html(figure: Figure, assets: Path | None, relative_to: Path | None) -> str:
    svg = figure.svg()
    csv = figure.csv()
    if assets is not None:
        (assets / f"{figure.name}.svg").write_text(svg, encoding="utf-8")
        (assets / f"{figure.name}.csv").write_text(csv, encoding="utf-8")
        base = _relative(assets, relative_to)
        csv_link = f"{base}/{figure.name}.csv"
        svg_link = f" <a href='{html.escape(base)}/{html.escape(figure.name)}.svg'>SVG file</a>"
    else:
        csv_link, svg_link = _data_uri(csv, "text/csv"), ""
    caption = html.escape(figure.title) + (
        f" {html.escape(figure.caption)}" if figure.caption else ""
    )
    return (
        f"<figure id='fig-{html.escape(figure.name)}'>{svg}<figcaption>{caption}"
        f"<a download='{html.escape(figure.name)}.csv' href='{html.escape(csv_link)}'>numbers "
        f"(CSV, {len(figure.data)} rows)</a>{svg_link}</figcaption></figure>"
    )


def _relative(folder: Path, start: Path | None) -> str:
    import os

    if start is None:
        return folder.as_posix()
    try:
        return Path(os.path.relpath(folder, start)).as_posix()
    except ValueError:  # another drive (Windows)
        return folder.resolve().as_uri()


def render_pdf(store: Store, sections: list[Section], path: Path, assets: Path) -> None:
    """The report as a PDF: a first page saying what is in it (and what has no data), then
    one page per figure; every figure's CSV and a PDF of each figure go to ``assets``."""
    _fill_drawn(sections)
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure as MplFigure

    title, meta = _header(store)
    lines = [meta, "", "Figures (one per page; numbers as CSV in "
             f"{assets.name}/, one file per figure):"]  # fmt: skip
    number = 0
    for section in sections:
        if section.missing:
            lines.append(f"- {section.title}: no data ({section.missing})")
            continue
        for figure in section.figures:
            number += 1
            lines.append(f"- page {number + 1}: {figure.title} [{figure.name}.csv]")
        for name, table in section.tables:
            file = _slug(f"{section.anchor}-{name}") + ".csv"
            table.to_csv(assets / file, index=False)
            lines.append(f"  table '{name}': {file}")
        if section.images:
            lines.append(f"  {len(section.images)} image(s) of '{section.title}' (PNG, below)")
    metadata = {"Title": title, "Creator": "brainrank report", "CreationDate": None}
    with PdfPages(path, metadata=metadata) as pdf:
        pdf.savefig(_text_page(MplFigure, title, lines))
        for section in sections:
            for figure in section.figures:
                pdf.savefig(figure.figure, bbox_inches="tight")
                (assets / f"{figure.name}.pdf").write_bytes(figure.pdf())
                (assets / f"{figure.name}.csv").write_text(figure.csv(), encoding="utf-8")
            for image in section.images:
                pdf.savefig(_png_page(MplFigure, image, section.title))


def _text_page(make: Callable, title: str, lines: list[str]) -> Any:
    import textwrap

    page = make(figsize=(8.27, 11.69))  # A4
    wrapped = [w for line in lines for w in (textwrap.wrap(line, 100) or [""])]
    page.text(0.06, 0.96, title, fontsize=14, va="top")
    page.text(0.06, 0.92, "\n".join(wrapped[:80]), fontsize=7, va="top", family="monospace")
    return page


def _png_page(make: Callable, image: str, title: str) -> Any:
    import matplotlib.image as mpimg

    page = make(figsize=(8.27, 11.69))
    ax = page.add_axes((0.05, 0.05, 0.9, 0.85))
    ax.imshow(mpimg.imread(io.BytesIO(base64.b64decode(image)), format="png"))
    ax.set_axis_off()
    page.text(0.05, 0.95, title, fontsize=10)
    return page


def report_format(path: Any, fmt: str | None = None) -> str:
    """``html`` or ``pdf``: ``fmt`` when given (checked against the file's suffix), else
    from the suffix (``.html``, ``.htm``, ``.pdf``)."""
    suffix = Path(path).suffix.lower()
    implied = {".html": "html", ".htm": "html", ".pdf": "pdf"}.get(suffix)
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"the report's format is one of {', '.join(FORMATS)}, not {fmt!r}.")
    if implied is None:
        raise InputError(
            f"the report is an HTML or PDF file; give a path ending in .html or .pdf, not {path}."
        )
    if fmt is not None and fmt != implied:
        raise InputError(f"--format {fmt} writes a .{fmt} file; {path} ends in {suffix}.")
    return implied


def write_report(
    store: Store,
    path: Any,
    options: ReportOptions | None = None,
    *,
    fmt: str | None = None,
    assets: Any = None,
) -> list[Section]:
    """Write the report to ``path`` (``.html``, or ``.pdf``); returns its sections (with
    what was missing). ``assets``: a folder for each figure's files and CSV (default: none
    for HTML, whose CSV links are ``data:`` URIs; ``<stem>_figures`` beside a PDF)."""
    target = Path(path)
    kind = report_format(target, fmt)
    folder = Path(assets) if assets is not None else None
    if kind == "pdf" and folder is None:
        folder = target.with_name(f"{target.stem}_figures")
    for where in [target.parent, *([folder] if folder is not None else [])]:
        try:
            where.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the folder {where}: {exc.strerror}.") from exc
    sections = build_sections(store, options)
    try:
        if kind == "pdf":
            assert folder is not None
            render_pdf(store, sections, target, folder)
        else:
            text = render(store, sections, folder, target.parent)
            target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the report to {target}: {exc.strerror}.") from exc
    return sections
