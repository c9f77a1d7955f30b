"""``brainrank report OUT.html``: one self-contained HTML file with the leaderboard's plots.

Every plot is a PNG embedded as base64 (no external file, no network), followed by the
numbers it shows. Sections:

1. the ranking with 95% bootstrap CIs across regions (the one definition of
   :mod:`brainrank.leaderboard.ranking`, shared with the CLI and the web page);
2. score vs relative layer depth, per region;
3. the best layer's relative depth per region;
4. RSA Max vs SRP-Ridge Max per model, with Spearman's r;
5. trained vs randomly initialised networks (paired t-test, Cohen's d);
6. architecture families (Kruskal-Wallis);
7. the Neural Taskonomy similarity matrix of task networks and its dendrogram;
8. stacking weights per region;
9. the stacking paper's contrasts (ImageNet vs Places365, Taskonomy 2D vs 3D edges).

A section whose data the leaderboard does not hold yet says so in one line instead of a
plot, and a section that fails for another reason says why without taking the rest down.
The statistics come from :mod:`brainrank.leaderboard.analyses` (overall ranking, trained vs
random, metric agreement, best-layer depth, family comparison, task similarity and
clustering); this module draws them.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core.errors import InputError
from brainrank.leaderboard import analyses
from brainrank.leaderboard.query import layer_curves, per_neuroid, rankings, scores
from brainrank.leaderboard.ranking import HEADLINE_SELECTIONS
from brainrank.leaderboard.store import Store

log = logging.getLogger(__name__)

FAMILY_COLOURS = {
    "convnet": "#1f77b4",
    "transformer": "#d62728",
    "mlp-mixer": "#2ca02c",
    "other": "#7f7f7f",
}


class NoData(Exception):
    """A section has nothing to plot yet; the message says what is missing."""


@dataclass
class Section:
    anchor: str
    title: str
    description: str
    images: list[str] = field(default_factory=list)  # base64 PNGs
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing: str | None = None


@dataclass
class ReportOptions:
    selection: str = "max"
    #: the ranking's layer choice; None: 'heldout' where stored, else 'max' (as the CLI)
    ranking_selection: str | None = None
    metric_pair: tuple[str, str] = ("rsa", "srp-ridge")
    taskonomy_models: str = "taskonomy/*"
    max_models: int = 40
    n_boot: int = 1000
    seed: int = 0


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _use_agg() -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)


def _figure(width: float, height: float):
    _use_agg()
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), layout="constrained")


# --------------------------------------------------------------------------- sections


def section_ranking(store: Store, options: ReportOptions) -> Section:
    """The ranking of :mod:`brainrank.leaderboard.ranking`, the same as ``brainrank
    leaderboard`` and the web page: one plot per data group (real, simulated)."""
    from brainrank.leaderboard.ranking import describe

    found = rankings(store, options.ranking_selection, n_boot=options.n_boot, seed=options.seed)
    if not found:
        raise NoData("no summary scores are stored yet (run `brainrank run`).")
    description = (
        "The leaderboard's ranking (as `brainrank leaderboard` and the web page): per model "
        "the mean over (dataset, metric configuration) columns, each the mean over regions "
        "of the subject-averaged cell values, on the cells every model has; bars: 95% "
        "percentile-bootstrap CI across regions (shown from 5 regions). The notes say what "
        "was ranked and what was left out."
    )
    section = Section("ranking", "Ranking with 95% confidence intervals", description)
    families = scores(store, selection=",".join(HEADLINE_SELECTIONS)).drop_duplicates("model")
    families = families.set_index("model")["family"]
    for ranking in found:
        table = ranking.table
        ranked = table[table["rank"].notna()]
        if ranked.empty:
            continue
        shown = ranked.head(options.max_models).iloc[::-1]
        fig, ax = _figure(7, 0.28 * len(shown) + 1.2)
        y = np.arange(len(shown))
        colours = [FAMILY_COLOURS.get(str(families.get(m)), "#7f7f7f") for m in shown["model"]]
        mean = shown["mean"].astype(float)
        if ranking.with_ci:
            err = np.vstack(
                [
                    (mean - shown["ci_low"].astype(float)).clip(lower=0).fillna(0),
                    (shown["ci_high"].astype(float) - mean).clip(lower=0).fillna(0),
                ]
            )
            ax.errorbar(mean, y, xerr=err, fmt="none", ecolor="#444", capsize=2, lw=1)
        ax.scatter(mean, y, c=colours, zorder=3, s=22)
        ax.set_yticks(y, shown["model"], fontsize=7)
        ax.set_xlabel("mean over the shared cells")
        ax.set_title(ranking.title, fontsize=9)
        ax.axvline(0, color="#bbb", lw=0.8)
        handles = [
            _legend_handle(colour, family)
            for family, colour in FAMILY_COLOURS.items()
            if family in set(families.astype(str))
        ]
        if handles:
            ax.legend(handles=handles, fontsize=7, loc="lower right")
        section.images.append(_png(fig))
        if len(ranked) > options.max_models:
            section.notes.append(
                f"The {ranking.title} plot shows the top {options.max_models} of {len(ranked)}."
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


def _legend_handle(colour: str, label: str):
    from matplotlib.lines import Line2D

    return Line2D([], [], marker="o", ls="", color=colour, label=label)


def section_depth(store: Store, options: ReportOptions) -> Section:
    section = Section(
        "depth",
        "Score vs relative layer depth",
        "Per-layer scores against the layer's relative depth (0 = first layer, 1 = last), one "
        "panel per region; thin lines: models; thick line: the mean over models in 10 depth "
        "bins.",
    )
    frame = scores(store, selection="layer")
    frame = frame.dropna(subset=["score", "relative_depth"])
    if frame.empty:
        raise NoData("no per-layer scores with a relative depth are stored yet.")
    curves = layer_curves(frame)
    # one figure per metric configuration: two settings of one metric are never averaged
    for (dataset, metric), part in curves.groupby(["dataset", "config"], sort=True):
        in_order = frame[(frame["dataset"] == dataset) & (frame["config"] == metric)]
        regions = list(in_order["region"].unique())  # in the order the dataset gives them
        columns = min(4, len(regions))
        rows = math.ceil(len(regions) / columns)
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(
            rows,
            columns,
            figsize=(3.2 * columns, 2.6 * rows),
            squeeze=False,
            sharey=True,
            layout="constrained",
        )
        for ax, region in zip(axes.flat, regions, strict=False):
            data = part[part["region"] == region]
            by_model = data.groupby(["model", "relative_depth"])["score"].mean().reset_index()
            for _, curve in by_model.groupby("model"):
                ax.plot(curve["relative_depth"], curve["score"], color="#999", lw=0.6, alpha=0.6)
            bins = np.clip((by_model["relative_depth"] * 10).astype(int), 0, 9)
            mean = by_model.groupby(bins)["score"].mean()
            ax.plot((mean.index + 0.5) / 10, mean.to_numpy(), color="#d62728", lw=2)
            ax.set_title(region, fontsize=9)
            ax.set_xlim(0, 1)
        for ax in axes.flat[len(regions) :]:
            ax.set_visible(False)
        fig.suptitle(f"{dataset} / {metric}", fontsize=10)
        fig.supxlabel("relative depth", fontsize=9)
        fig.supylabel("score", fontsize=9)
        section.images.append(_png(fig))
    return section


def _present(frame: pd.DataFrame, metrics: tuple[str, ...]) -> list[str]:
    have = set(frame["metric"])
    return [m for m in metrics if m in have]


def section_best_depth(store: Store, options: ReportOptions) -> Section:
    section = Section(
        "best-depth",
        "Relative depth of the best layer",
        f"Where the '{options.selection}' layer sits in each model (0 = first layer, "
        "1 = last), per dataset, metric and region; the table gives the mean per region and "
        "family.",
    )
    frame = scores(store, selection=options.selection).dropna(subset=["relative_depth"])
    if frame.empty:
        raise NoData("no best-layer rows with a relative depth are stored yet.")
    per_model = (
        frame.groupby(["dataset", "config", "region", "model"])["relative_depth"]
        .mean()
        .reset_index()
    )
    groups = list(per_model.groupby(["dataset", "config", "region"], sort=True))
    fig, ax = _figure(max(5, 0.45 * len(groups) + 1.5), 3.4)
    ax.boxplot([g["relative_depth"].to_numpy() for _, g in groups], showfliers=True)
    ax.set_xticks(
        np.arange(1, len(groups) + 1), [f"{d}\n{m}\n{r}" for (d, m, r), _ in groups], fontsize=6
    )
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("relative depth of the best layer")
    section.images.append(_png(fig))
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
        f"{first} Max vs {second} Max",
        f"Each point is a model: its '{options.selection}' score under {first} and under "
        f"{second} (mean over regions). The table gives Spearman's rank agreement of the two "
        "metrics over models, over trained models, over layers and layer by layer within "
        "models, with 95% bootstrap CIs.",
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
    fig, ax = _figure(4.2, 4.0)
    ax.scatter(a[common], b[common], s=16, color="#1f77b4")
    ax.set_xlabel(f"{first} Max")
    ax.set_ylabel(f"{second} Max")
    models_row = table[table["comparison"] == "models"]
    if not models_row.empty:
        rho = float(models_row["rho"].iloc[0])
        ax.set_title(f"Spearman r = {rho:.2f} ({len(common)} models)", fontsize=9)
    section.images.append(_png(fig))
    section.tables.append(("Rank agreement", table))
    return section


def _subplots(n: int, width: float, height: float):
    _use_agg()
    import matplotlib.pyplot as plt

    columns = min(3, n)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(width * columns, height * rows), squeeze=False, layout="constrained"
    )
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return flat[:n], fig


def section_trained_random(store: Store, options: ReportOptions) -> Section:
    section = Section(
        "trained-random",
        "Trained vs randomly initialised networks",
        "Each point is an architecture: its score trained (x) and randomly initialised (y, "
        "the ':random' variant), mean over regions of the best layer; paired t-test and "
        "Cohen's d (d_z) across architectures.",
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
    axes, fig = _subplots(len(results), 3.4, 3.3)
    rows = []
    for ax, (metric, result) in zip(axes, results, strict=True):
        pairs = result.pairs
        ax.scatter(pairs["trained"], pairs["random"], s=14, color="#2ca02c")
        low = float(np.nanmin(pairs[["trained", "random"]].to_numpy()))
        high = float(np.nanmax(pairs[["trained", "random"]].to_numpy()))
        ax.plot([low, high], [low, high], color="#999", lw=0.8, ls="--")
        ax.set_xlabel("trained")
        ax.set_ylabel("random")
        ax.set_title(f"{metric}: d = {result.cohens_d:.2f}", fontsize=9)
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
    section.images.append(_png(fig))
    section.tables.append(("Paired comparison", pd.DataFrame(rows)))
    return section


def section_families(store: Store, options: ReportOptions) -> Section:
    section = Section(
        "families",
        "Architecture families",
        "Scores of the trained models of each family (mean over regions of the best layer), "
        "per metric; Kruskal-Wallis test across families.",
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
    axes, fig = _subplots(len(results), 3.6, 3.2)
    tables = []
    for ax, (metric, result) in zip(axes, results, strict=True):
        per_model = analyses.region_scores(frame, metric, options.selection).mean(axis=1)
        families = list(result.summary["family"])
        samples = [
            per_model[
                [
                    m
                    for m in per_model.index
                    if info.loc[m, "family"] == f and bool(info.loc[m, "trained"])
                ]
            ].to_numpy()
            for f in families
        ]
        ax.boxplot(samples)
        ax.set_xticks(np.arange(1, len(families) + 1), families, fontsize=7)
        ax.set_title(f"{metric}: H = {result.h:.2f}, p = {result.p_value:.3g}", fontsize=9)
        tables.append(
            result.summary.assign(
                metric=metric,
                H=result.h,
                p=result.p_value,
                epsilon_squared=result.epsilon_squared,
                note=result.reason or "",
            )
        )
    section.images.append(_png(fig))
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
        "metrics that store per-voxel significance (encoding:taskonomy) are used.",
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
        import matplotlib.pyplot as plt

        labels = list(similarity.index)
        fig, (left, right) = plt.subplots(
            1, 2, figsize=(11, 0.3 * len(labels) + 3), layout="constrained"
        )
        image = left.imshow(similarity.to_numpy(), cmap="viridis", vmin=0, vmax=1)
        left.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        left.set_yticks(range(len(labels)), labels, fontsize=7)
        fig.colorbar(image, ax=left, fraction=0.046)
        dendrogram(
            tree.linkage, labels=tree.labels, orientation="right", ax=right, leaf_font_size=7
        )
        right.tick_params(axis="x", labelsize=7, labelrotation=45)
        right.set_xlabel("1 - cosine similarity", fontsize=8)
        fig.suptitle(f"{dataset} / {metric}", fontsize=10)
        section.images.append(_png(fig))
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


def section_stacking(store: Store, options: ReportOptions) -> Section:
    section = Section(
        "stacking",
        "Stacking weights per region",
        "Convex weights of each layer's encoding model in the stacked model (mean over a "
        "region's voxels and subjects); rows: regions, columns: layers in depth order.",
    )
    frame = scores(store, selection="stacked")
    weights = stacking_weights(frame)
    if weights.empty:
        raise NoData("no stacked scores with weights are stored yet (metric 'stacking').")
    order = scores(store, selection="layer", model=",".join(weights["model"].unique()))
    depth = order.groupby(["model", "layer"])["layer_index"].min()
    groups = list(weights.groupby(["model", "dataset"], sort=True))[: options.max_models]
    for (model, dataset), part in groups:
        table = part.pivot_table(index="region", columns="layer", values="weight", aggfunc="mean")
        layers = sorted(table.columns, key=lambda name: (depth.get((model, name), 1e9), name))
        table = table[layers]
        fig, ax = _figure(max(4, 0.35 * len(layers) + 2), 0.35 * len(table) + 1.6)
        image = ax.imshow(table.to_numpy(), cmap="magma", vmin=0, aspect="auto")
        ax.set_yticks(range(len(table)), table.index, fontsize=7)
        ax.set_xticks(range(len(layers)), layers, rotation=90, fontsize=6)
        ax.set_title(f"{model} on {dataset}", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
        section.images.append(_png(fig))
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
]

TITLES = {
    section_ranking: ("ranking", "Ranking with 95% confidence intervals"),
    section_uncalibrated: ("uncalibrated", "Configurations that are not calibrated"),
    section_depth: ("depth", "Score vs relative layer depth"),
    section_best_depth: ("best-depth", "Relative depth of the best layer"),
    section_metric_agreement: ("agreement", "RSA Max vs SRP-Ridge Max"),
    section_trained_random: ("trained-random", "Trained vs randomly initialised networks"),
    section_families: ("families", "Architecture families"),
    section_taskonomy: ("taskonomy", "Neural Taskonomy: task similarity and clustering"),
    section_stacking: ("stacking", "Stacking weights per region"),
    section_stacking_contrast: (
        "stacking-contrast",
        "Stacking contrasts: task at a fixed architecture",
    ),
    section_contrasts: ("contrasts", "Controlled contrasts: task, data, supervision, architecture"),
}


# --------------------------------------------------------------------------- assembly


def build_sections(store: Store, options: ReportOptions | None = None) -> list[Section]:
    options = options or ReportOptions()
    _use_agg()
    import matplotlib

    out = []
    for make in SECTIONS:
        anchor, title = TITLES[make]
        try:
            # every text drawn is data (model, region, layer names): a '$' is a dollar
            # sign, never the start of mathtext
            with matplotlib.rc_context({"text.parse_math": False}):
                out.append(make(store, options))
        except NoData as exc:
            out.append(Section(anchor, title, "", missing=str(exc)))
        except Exception as exc:  # a broken section must not take the report down
            log.exception("report section %s failed", anchor)
            out.append(Section(anchor, title, "", missing=f"this section failed: {_reason(exc)}"))
    return out


def _reason(exc: BaseException) -> str:
    """Why a section failed, never empty: the error's type and its message."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else f"{type(exc).__name__} (no message)"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em}
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


def render(store: Store, sections: list[Section]) -> str:
    counts = {
        "models": scores(store)["model"].nunique(),
        "scores": store.count("scores"),
        "runs": store.count("runs"),
    }
    runs = store.runs_frame()
    latest = runs.iloc[-1] if not runs.empty else None
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>brainrank report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>brainrank leaderboard report</h1>",
        f"<p class='meta'>Leaderboard {html.escape(store.display_url)}; {counts['models']} "
        f"models, {counts['scores']} score rows, {counts['runs']} runs; generated {now}.",
    ]
    if latest is not None:
        parts.append(
            f" Latest run {int(latest['id'])} ({html.escape(str(latest['status']))}), brainrank "
            f"{html.escape(str(latest['code_version']))}, revision "
            f"{html.escape(str(latest['git_revision']))}."
        )
    parts.append("</p><nav>")
    parts += [f"<a href='#{s.anchor}'>{html.escape(s.title)}</a>" for s in sections]
    parts.append("</nav>")
    for section in sections:
        parts.append(f"<section id='{section.anchor}'><h2>{html.escape(section.title)}</h2>")
        if section.missing:
            parts.append(
                f"<p class='missing'>No data for this plot yet: {html.escape(section.missing)}</p>"
            )
        else:
            parts.append(f"<p>{html.escape(section.description)}</p>")
            for image in section.images:
                parts.append(
                    f"<img alt='{html.escape(section.title)}' src='data:image/png;base64,{image}'>"
                )
            for note in section.notes:
                parts.append(f"<p class='meta'>{html.escape(note)}</p>")
            for title, table in section.tables:
                parts.append(f"<details><summary>{html.escape(title)} (numbers)</summary>")
                parts.append(_table_html(table))
                parts.append("</details>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(store: Store, path: Any, options: ReportOptions | None = None) -> list[Section]:
    """Write the report to ``path``; returns its sections (with what was missing)."""
    from pathlib import Path

    target = Path(path)
    if target.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"the report is an HTML file; give a path ending in .html, not {path}.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder {target.parent}: {exc.strerror}.") from exc
    sections = build_sections(store, options)
    text = render(store, sections)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the report to {target}: {exc.strerror}.") from exc
    return sections
