"""Report sections of the seed papers' analyses and of rank uncertainty (issue 23 items 3
and 4), each ``section_x(store, options) -> Section`` as the sections of
:mod:`brainrank.leaderboard.report`, with its numbers in tables:

- :func:`section_rank_uncertainty`: rank intervals and pairwise tests
  (:mod:`brainrank.leaderboard.uncertainty`);
- :func:`section_properties`: scores against parameters, ImageNet top-1, depth and the best
  layer's depth (mouse paper, section 3.3);
- :func:`section_architectures`: transformers against the other families, and trained
  against random per architecture with Bonferroni (mouse paper, section 3.3);
- :func:`section_reliability_sweep` and :func:`section_cre_lines`: datasets built with
  different options (mouse paper, appendix A.6 and A.10);
- :func:`section_dimensionality`: effective dimensionality per layer and against scores;
- :func:`section_paired_differences`: paired-difference bootstrap CIs of two metrics (the NSD
  paper's veRSA - cRSA);
- :func:`section_generalisation`: the NSD paper's generalisation figure (appendix A.6);
- :func:`section_references`: the NSD paper's human reference points (appendix A.5,
  Figure 5), computed by loading the dataset and the stored metric configuration (the one
  section that reads data: computed only with ``references=True``, `brainrank report --references`).

:data:`SECTIONS` lists them in report order and :data:`TITLES` gives their anchors and
titles (the integrator adds them to the report's own lists). Options beyond
:class:`~brainrank.leaderboard.report.ReportOptions` come from :class:`AnalysisOptions`;
every section reads them with a default, so a plain ``ReportOptions`` works too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core.errors import BrainrankError, InputError
from brainrank.leaderboard import analyses
from brainrank.leaderboard.query import models as models_table
from brainrank.leaderboard.query import per_neuroid, scores
from brainrank.leaderboard.ranking import DESCRIPTIVE_METRICS, NOT_SUMMARY
from brainrank.leaderboard.report import NoData, ReportOptions, Section
from brainrank.leaderboard.store import Store

log = logging.getLogger(__name__)

COLOURS = {"convnet": "#1f77b4", "transformer": "#d62728", "mlp-mixer": "#2ca02c",
           "hybrid": "#9467bd", "other": "#7f7f7f"}  # fmt: skip


@dataclass
class AnalysisOptions(ReportOptions):
    #: families contrasted with all other trained models
    families: tuple[str, ...] = ("transformer",)
    #: pairs of metrics (or configurations) whose paired differences are shown
    paired: tuple[tuple[str, str], ...] = (("versa", "rsa"), ("srp-ridge", "rsa"))
    #: compute the human reference points (loads the datasets and metrics; `brainrank report
    #: --references`)
    references: bool = False
    #: the data folder the reference points read (None: the configured one)
    data_dir: str | None = None
    #: most models in the pairwise-test matrix
    max_pairwise: int = 30


def _option(options: Any, name: str) -> Any:
    return getattr(options, name, getattr(AnalysisOptions, name))


def _figure(width: float, height: float, rows: int = 1, columns: int = 1, **kwargs):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, columns, figsize=(width, height), squeeze=False,
                             layout="constrained", **kwargs)  # fmt: skip
    return fig, axes


def _summary_rows(store: Store, selection: str) -> pd.DataFrame:
    frame = scores(store, selection=selection)
    return frame[~frame["metric"].isin(DESCRIPTIVE_METRICS)]


def _configs(frame: pd.DataFrame) -> list[str]:
    """The metric configurations of ``frame``, seed metrics first."""
    names = sorted(set(frame["config"].astype(str))) if "config" in frame else []
    first = [n for n in analyses.SEED_METRICS if n in names]
    return first + [n for n in names if n not in first]


# --------------------------------------------------------------------------- rank uncertainty


def section_rank_uncertainty(store: Store, options: ReportOptions) -> Section:
    """Each model's 95% rank interval and the pairwise tests, from the paired bootstrap of
    :mod:`brainrank.leaderboard.uncertainty`."""
    from brainrank.leaderboard.uncertainty import pairwise_tests, rank_intervals, ranked_draws

    found = ranked_draws(store, options.ranking_selection, n_boot=options.n_boot,
                         seed=options.seed)  # fmt: skip
    if not found:
        raise NoData("fewer than 2 models are ranked.")
    section = Section(
        "rank-uncertainty",
        "Rank uncertainty and pairwise tests",
        "Left: each model's rank (dot) and its 95% rank interval over paired bootstrap draws "
        "(subjects resampled where there are 5 or more, else the neuroids of each subject's "
        "regions where per-neuroid values are stored; columns with neither held fixed). "
        "Right: Holm-adjusted p-values of every pair (t tests of the difference in ranked "
        "value with the bootstrap's standard error); dark cells differ at p < .05. Stimuli "
        "are not resampled: the answers are for these images.",
    )
    limit = _option(options, "max_pairwise")
    for ranking, draws in found:
        intervals = rank_intervals(draws).sort_values(["rank", "model"])
        pairs = pairwise_tests(draws)
        shown = intervals.head(options.max_models)
        fig, axes = _figure(11, 0.28 * len(shown) + 1.6, 1, 2)
        ax = axes[0, 0]
        y = np.arange(len(shown))[::-1]
        ax.hlines(y, shown["rank_low"], shown["rank_high"], color="#444", lw=2)
        ax.scatter(shown["rank"], y, color="#d62728", zorder=3, s=18)
        ax.set_yticks(y, shown["model"], fontsize=7)
        ax.set_xlabel("rank (1 = best)")
        ax.set_title(ranking.title, fontsize=9)
        names = list(intervals["model"].head(limit))
        matrix = np.full((len(names), len(names)), np.nan)
        index = {m: i for i, m in enumerate(names)}
        for row in pairs.itertuples():
            if row.a in index and row.b in index:
                matrix[index[row.a], index[row.b]] = matrix[index[row.b], index[row.a]] = (
                    row.p_adjusted
                )
        ax = axes[0, 1]
        # vector cells (imshow would embed a bitmap in the SVG and PDF), first row on top
        image = ax.pcolormesh(-np.log10(np.clip(matrix, 1e-12, 1)), cmap="Greys", vmin=0,
                              vmax=-math.log10(0.001), edgecolors="none")  # fmt: skip
        ax.invert_yaxis()
        ax.set_xticks(np.arange(len(names)) + 0.5, names, rotation=90, fontsize=6)
        ax.set_yticks(np.arange(len(names)) + 0.5, names, fontsize=6)
        bar = fig.colorbar(image, ax=ax, fraction=0.046, label="-log10 adjusted p")
        bar.solids.set_rasterized(False)
        section.add_drawn_figure(fig)
        section.tables.append((f"Rank intervals, {ranking.title}", intervals))
        section.tables.append((f"Pairwise tests, {ranking.title}", pairs))
        prefix = f"[{ranking.title}] " if len(found) > 1 else ""
        section.notes += [prefix + n for n in [*draws.notes, *pairs.attrs["notes"]]]
    return section


# --------------------------------------------------------------------------- model properties


def section_properties(store: Store, options: ReportOptions) -> Section:
    """Scores against model properties, Spearman's rho with bootstrap CIs."""
    frame = scores(store)
    frame = frame[~frame["metric"].isin(DESCRIPTIVE_METRICS)]
    summary = frame[frame["selection"] == options.selection]
    if summary.empty:
        raise NoData(f"no {options.selection!r} rows are stored yet.")
    models = models_table(store)
    configs = _configs(summary)[:4]
    results, rows = [], []
    for config in configs:
        for name in analyses.PROPERTIES:
            try:
                r = analyses.score_vs_property(
                    frame, name, models=models, metric=config, selection=options.selection,
                    n_boot=options.n_boot, seed=options.seed)  # fmt: skip
            except InputError as exc:
                results.append(exc)
                rows.append({"metric": config, "property": name, "n": 0, "note": str(exc)})
                continue
            results.append(r)
            rows.append({"metric": config, "property": name, "rho": r.rho, "p_value": r.p_value,
                         "ci_low": r.ci_low, "ci_high": r.ci_high, "n": r.n,
                         "note": r.reason or ""})  # fmt: skip
    table = pd.DataFrame(rows, columns=["metric", "property", "rho", "p_value", "ci_low",
                                        "ci_high", "n", "note"])  # fmt: skip
    usable = [r for r in results if not isinstance(r, Exception) and r.n >= 3]
    if not usable:
        raise NoData("fewer than 3 models have both a score and any of the properties.")
    section = Section(
        "properties",
        "Scores against model properties",
        f"Each point is a model: its '{options.selection}' score (mean over regions) against "
        "its number of parameters, published ImageNet top-1 accuracy, number of layers and "
        "the relative depth of its best layer; Spearman's rho with a 95% bootstrap CI over "
        "models and scipy's p-value (Conwell et al. 2021, section 3.3).",
    )
    fig, axes = _figure(3.0 * len(analyses.PROPERTIES), 2.8 * len(configs), len(configs),
                        len(analyses.PROPERTIES))  # fmt: skip
    for i, config in enumerate(configs):
        for j, name in enumerate(analyses.PROPERTIES):
            ax = axes[i, j]
            result = results[i * len(analyses.PROPERTIES) + j]
            if isinstance(result, Exception) or result.n < 3:
                ax.set_axis_off()
                ax.set_title(f"{config}: no {name}", fontsize=8)
                continue
            ax.scatter(result.table["value"], result.table["score"], s=12, color="#1f77b4")
            if name == "n_params" and (result.table["value"] > 0).all():
                ax.set_xscale("log")
            ax.set_xlabel(name, fontsize=8)
            ax.set_ylabel(config, fontsize=8)
            ax.set_title(f"rho = {result.rho:.2f} (n = {result.n})", fontsize=8)
    section.add_drawn_figure(fig)
    section.tables.append(("Spearman correlations", table))
    missing = table[table["n"] == 0]["note"].drop_duplicates().tolist()
    section.notes += missing
    return section


# --------------------------------------------------------------------------- architectures


def section_architectures(store: Store, options: ReportOptions) -> Section:
    """One family against all other trained models (Welch's t, Hedges' g), and trained
    against random per architecture (paired t tests, Bonferroni)."""
    frame = _summary_rows(store, options.selection)
    if frame.empty:
        raise NoData(f"no {options.selection!r} rows are stored yet.")
    families = _option(options, "families")
    contrasts, reasons = [], []
    for config in _configs(frame):
        for family in families:
            try:
                r = analyses.family_contrast(frame, family, config, options.selection)
            except InputError as exc:
                reasons.append(str(exc))
                continue
            contrasts.append({"metric": config, "family": family, "n_family": r.n_family,
                              "n_other": r.n_other, "mean_family": r.mean_family,
                              "mean_other": r.mean_other, "test": r.test, "t": r.t, "df": r.df,
                              "p": r.p_value, "hedges_g": r.hedges_g,
                              "note": r.reason or ""})  # fmt: skip
    per_architecture = []
    for config in _configs(frame):
        metric = str(frame.loc[frame["config"] == config, "metric"].iloc[0])
        values = per_neuroid(store, metric=metric, selection=options.selection)
        values = values if not values.empty else None
        try:
            table = analyses.trained_vs_random_by_architecture(
                frame[frame["config"] == config].assign(metric=metric), values, metric=metric,
                selection=options.selection,
            )  # fmt: skip
        except InputError as exc:
            reasons.append(str(exc))
            continue
        per_architecture.append(table.assign(metric=config))
    if not contrasts and not per_architecture:
        raise NoData(reasons[0] if reasons else "no model families to compare.")
    section = Section(
        "architectures",
        "Architectures: transformers against the rest, trained against random",
        "Top: per metric, the trained models of each family named against all other trained "
        "models (each model's mean over regions): Welch's t test (the mouse paper's t and p "
        "fit it, not Student's) and Hedges' g. Bottom: per architecture, its trained minus "
        "its random variant with a paired t test over neuroids (cells where no per-neuroid "
        "values are stored), Bonferroni over the architectures; filled bars: significant.",
    )
    if per_architecture:
        long = pd.concat(per_architecture, ignore_index=True)
        long = long.dropna(subset=["difference"])
        groups = list(long.groupby("metric", sort=True))
        fig, axes = _figure(max(5, 0.3 * long["architecture"].nunique() + 2), 2.8 * len(groups),
                            len(groups), 1)  # fmt: skip
        for ax, (metric, part) in zip(axes[:, 0], groups, strict=True):
            part = part.sort_values("difference")
            colours = [COLOURS.get(str(f), "#7f7f7f") for f in part["family"]]
            x = np.arange(len(part))
            significant = part["significant"].astype("boolean").fillna(False).to_numpy(bool)
            faded = [c + ("" if s else "59") for c, s in zip(colours, significant, strict=True)]
            ax.bar(x, part["difference"], color=faded)
            ax.set_xticks(x, part["architecture"], rotation=90, fontsize=6)
            ax.axhline(0, color="#999", lw=0.8)
            ax.set_ylabel("trained - random", fontsize=8)
            ax.set_title(metric, fontsize=9)
        section.add_drawn_figure(fig)
        section.tables.append(("Trained vs random per architecture", long))
        section.notes += [n for table in per_architecture for n in table.attrs.get("notes", [])]
    if contrasts:
        section.tables.insert(0, ("Family against the rest", pd.DataFrame(contrasts)))
    return section


# --------------------------------------------------------------------------- dataset options


def _sweep_figure(sweeps: dict[str, Any], option: str, bars: bool = False) -> Any:
    fig, axes = _figure(4.2 * len(sweeps), 3.2, 1, len(sweeps))
    for ax, (metric, sweep) in zip(axes[0], sweeps.items(), strict=True):
        summary = sweep.summary
        labels = [str(v) for v in summary[option]]
        x = np.arange(len(labels)) if bars else summary[option].astype(float).to_numpy()
        if not bars:
            for _, row in sweep.scores.iterrows():
                ax.plot(x, row[summary[option]].to_numpy(dtype=float), color="#999", lw=0.6,
                        alpha=0.6)  # fmt: skip
        err = np.vstack([(summary["mean"] - summary["ci_low"]).fillna(0).clip(lower=0),
                         (summary["ci_high"] - summary["mean"]).fillna(0).clip(lower=0)])  # fmt: skip
        if bars:
            ax.bar(x, summary["mean"], yerr=err, color="#1f77b4", capsize=3)
            ax.set_xticks(x, labels, rotation=45, fontsize=7)
        else:
            ax.errorbar(x, summary["mean"], yerr=err, color="#d62728", lw=2, capsize=3)
        ax.set_xlabel(option, fontsize=8)
        ax.set_title(metric, fontsize=9)
    return fig


def section_reliability_sweep(store: Store, options: ReportOptions) -> Section:
    """Scores at each reliability threshold of the neurons kept (mouse paper, Figure 6)."""
    frame = _summary_rows(store, options.selection)
    try:
        sweeps = analyses.reliability_sweep(frame, selection=options.selection,
                                            n_boot=options.n_boot, seed=options.seed)  # fmt: skip
    except InputError as exc:
        raise NoData(str(exc)) from exc
    section = Section(
        "reliability-sweep",
        "Scores across reliability thresholds",
        "Each model's score (thin lines) on the neurons kept at each split-half reliability "
        "threshold (each threshold a dataset of its own), and the mean over models with a "
        "95% bootstrap CI across models (Conwell et al. 2021, appendix A.6, Figure 6).",
    )
    section.add_drawn_figure(_sweep_figure(sweeps, "reliability_threshold"))
    for metric, sweep in sweeps.items():
        section.tables.append((f"Mean over models per threshold, {metric}", sweep.summary))
        section.tables.append((f"Scores per threshold, {metric}", sweep.scores.reset_index()))
        section.notes += [f"{metric}: {n}" for n in sweep.notes]
    return section


def section_cre_lines(store: Store, options: ReportOptions) -> Section:
    """Scores per genetic cre line (mouse paper, appendix A.10, Figure 10)."""
    frame = _summary_rows(store, options.selection)
    sweeps, reasons = {}, []
    for config in _configs(frame):
        try:
            sweeps[config] = analyses.cre_line_breakdown(frame, metric=config,
                                                         selection=options.selection,
                                                         n_boot=options.n_boot,
                                                         seed=options.seed)  # fmt: skip
        except InputError as exc:
            reasons.append(str(exc))
    if not sweeps:
        raise NoData(reasons[0] if reasons else "no scores are stored yet.")
    sweeps = dict(list(sweeps.items())[:3])
    section = Section(
        "cre-lines",
        "Scores per cre line",
        "Mean score over models on the neurons of each genetic cre line (each a dataset of "
        "its own), with a 95% bootstrap CI across models, in descending order (Conwell et "
        "al. 2021, appendix A.10, Figure 10).",
    )
    section.add_drawn_figure(_sweep_figure(sweeps, "cre_lines", bars=True))
    for metric, sweep in sweeps.items():
        section.tables.append((f"Mean over models per cre line, {metric}", sweep.summary))
        section.tables.append((f"Scores per cre line, {metric}", sweep.scores.reset_index()))
    return section


# --------------------------------------------------------------------------- dimensionality


def section_dimensionality(store: Store, options: ReportOptions) -> Section:
    """Effective dimensionality per layer, and against the layers' scores."""
    frame = scores(store, selection="layer")
    dims = analyses.layer_dimensionality(frame)
    if dims.empty:
        raise NoData(
            "no effective dimensionality is stored (score models with "
            "`brainrank run --metrics effective-dimensionality`)."
        )
    section = Section(
        "dimensionality",
        "Effective dimensionality of the layers",
        "Left: each layer's effective dimensionality (participation ratio of its covariance "
        "eigenvalues over the dataset's stimuli) against its relative depth, one line per "
        "model. Right: per layer, effective dimensionality against its score (mean over "
        "subjects and regions); Spearman's rho over all layers with a 95% bootstrap CI over "
        "models (a model's layers resampled together).",
    )
    others = frame[~frame["metric"].isin(DESCRIPTIVE_METRICS)]
    encoding = _configs(others)
    fig, axes = _figure(10, 3.6, 1, 2)
    for _, part in dims.groupby(["model", "dataset"], sort=True):
        family = str(part["family"].iloc[0])
        axes[0, 0].plot(part["relative_depth"], part["effective_dimensionality"], lw=0.8,
                        color=COLOURS.get(family, "#7f7f7f"), alpha=0.8)  # fmt: skip
    axes[0, 0].set_xlabel("relative depth")
    axes[0, 0].set_ylabel("effective dimensionality")
    rows, plotted = [], False
    for config in encoding:
        part = others[others["config"] == config]
        metric = str(part["metric"].iloc[0])
        try:
            result = analyses.dimensionality_vs_score(
                pd.concat([frame[frame["metric"].isin(DESCRIPTIVE_METRICS)],
                           part.assign(metric=metric)]), metric,
                n_boot=options.n_boot, seed=options.seed)  # fmt: skip
        except InputError as exc:
            rows.append({"metric": config, "note": str(exc)})
            continue
        rows.append({"metric": config, "rho": result["rho"], "ci_low": result["ci_low"],
                     "ci_high": result["ci_high"], "n_layers": result["n_layers"],
                     "n_models": result["n_models"], "mean_model_rho": result["mean_model_rho"],
                     "note": result["reason"] or ""})  # fmt: skip
        if not plotted:
            plotted = True
            table = result["table"]
            axes[0, 1].scatter(table["effective_dimensionality"], table["score"], s=8)
            axes[0, 1].set_xlabel("effective dimensionality")
            axes[0, 1].set_ylabel(config)
            axes[0, 1].set_title(f"rho = {result['rho']:.2f}", fontsize=9)
    section.add_drawn_figure(fig)
    per_model = dims.groupby(["model", "dataset"]).agg(
        n_layers=("layer", "count"),
        mean=("effective_dimensionality", "mean"),
        max=("effective_dimensionality", "max"),
    ).reset_index()  # fmt: skip
    section.tables.append(("Per model", per_model))
    if rows:
        section.tables.append(("Against scores", pd.DataFrame(rows)))
    section.tables.append(("Per layer", dims))
    return section


# --------------------------------------------------------------------------- paired differences


def section_paired_differences(store: Store, options: ReportOptions) -> Section:
    """Paired-difference bootstrap CIs of pairs of metrics over (model, dataset, region)."""
    rows, by_region = [], []
    for a, b in _option(options, "paired"):
        frame = scores(store, metric=f"{a},{b}")
        frame = frame[~frame["selection"].isin(NOT_SUMMARY)]
        if frame.empty:
            continue
        shared = set(frame.loc[frame["metric"] == a, "selection"]) & set(
            frame.loc[frame["metric"] == b, "selection"])  # fmt: skip
        selection = next((s for s in ("heldout", options.selection, "max") if s in shared), None)
        if selection is None:
            continue
        try:
            result = analyses.paired_difference(frame, a, b, selection=selection,
                                                n_boot=options.n_boot, seed=options.seed)  # fmt: skip
        except InputError as exc:
            rows.append({"a": a, "b": b, "selection": selection, "note": str(exc)})
            continue
        rows.append({"a": a, "b": b, "selection": selection, "mean": result.mean,
                     "ci_low": result.ci_low, "ci_high": result.ci_high, "n": result.n,
                     "note": result.reason or ""})  # fmt: skip
        by_region.append(result.by_region.assign(pair=f"{a} - {b}"))
    if not rows:
        raise NoData(
            "no pair of metrics scored on the same models and regions ("
            + ", ".join(f"{a} - {b}" for a, b in _option(options, "paired"))
            + ")."
        )
    section = Section(
        "paired-differences",
        "Paired differences between metrics",
        "The mean over (model, dataset, region) units of the difference between two metrics' "
        "scores (subject-averaged, the layer choice both store: 'heldout' where they do), "
        "with a 95% percentile bootstrap CI over units, as the NSD paper's veRSA gains over "
        "cRSA; the plot shows the mean per region.",
    )
    if by_region:
        long = pd.concat(by_region, ignore_index=True)
        groups = list(long.groupby("pair", sort=True))
        fig, axes = _figure(max(5, 0.3 * long["region"].nunique() + 2), 2.6 * len(groups),
                            len(groups), 1)  # fmt: skip
        for ax, (pair, part) in zip(axes[:, 0], groups, strict=True):
            labels = part["dataset"].astype(str) + "/" + part["region"].astype(str)
            ax.bar(np.arange(len(part)), part["mean"], color="#1f77b4")
            ax.set_xticks(np.arange(len(part)), labels, rotation=90, fontsize=6)
            ax.axhline(0, color="#999", lw=0.8)
            ax.set_title(pair, fontsize=9)
        section.add_drawn_figure(fig)
        section.tables.append(("Per region", long))
    section.tables.insert(0, ("Mean difference", pd.DataFrame(rows)))
    return section


# --------------------------------------------------------------------------- generalisation


GENERALISATION_METRICS = ("versa:generalisation", "versa:nsd")


def section_generalisation(store: Store, options: ReportOptions) -> Section:
    """The NSD paper's generalisation figure: training score of the chosen layer against its
    score on new images, per subject and region."""
    frame = scores(store, selection="layer")
    tables, reasons = [], []
    for metric in GENERALISATION_METRICS:
        try:
            tables.append((metric, analyses.generalisation(frame, dataset="*", metric=metric)))
        except InputError as exc:
            reasons.append(str(exc))
    if not tables:
        raise NoData(reasons[0])
    section = Section(
        "generalisation",
        "Generalisation to new images",
        "Per subject (panels) and region, each model's layer chosen on the training images: "
        "its training score (red; cross-fitted within the training images) and its score on "
        "the test images with the weights fitted on the training images (blue), as the NSD "
        "paper's appendix Figure 4; the table gives the mean decrease with a 95% bootstrap "
        "CI over (model, subject, region).",
    )
    for metric, table in tables:
        overall, by_cell = analyses.generalisation_summary(table, n_boot=options.n_boot,
                                                           seed=options.seed)  # fmt: skip
        subjects = sorted(set(table["subject"].astype(str)))
        fig, axes = _figure(min(16, 3.6 * len(subjects)), 3.2, 1, len(subjects), sharey=True)
        for ax, subject in zip(axes[0], subjects, strict=True):
            part = table[table["subject"].astype(str) == subject]
            regions = sorted(set(part["region"].astype(str)))
            x = {r: i for i, r in enumerate(regions)}
            jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(part))
            xs = np.array([x[str(r)] for r in part["region"]]) + jitter
            ax.scatter(xs - 0.1, part["selected"], s=8, color="#d62728", label="training")
            ax.scatter(xs + 0.1, part["generalised"], s=8, color="#1f77b4", label="test")
            ax.set_xticks(range(len(regions)), regions, rotation=90, fontsize=7)
            ax.set_title(subject, fontsize=9)
        axes[0, 0].legend(fontsize=7)
        section.add_drawn_figure(fig)
        section.tables.append((f"Mean decrease, {metric}", pd.DataFrame([overall])))
        section.tables.append((f"Per subject and region, {metric}", by_cell))
    return section


# --------------------------------------------------------------------------- references


REFERENCE_METRICS = ("rsa", "versa")


def _stored_metric(store: Store, identifier: str, config_hash: str) -> Any:
    """The metric configuration ``(identifier, config_hash)`` rebuilt from the parameters the
    leaderboard recorded (None where it cannot be: unknown metric, other version)."""
    from brainrank.core.registry import get_registry

    metrics = store.metrics_frame()
    row = metrics[(metrics["identifier"] == identifier) & (metrics["config_hash"] == config_hash)]
    if row.empty:
        return None
    parameters = row["parameters"].iloc[0] if isinstance(row["parameters"].iloc[0], dict) else {}
    spec = get_registry().get("metric", identifier)
    # a metric records derived values among its parameters (rsa: its distance); pass only
    # what its factory takes, and keep the result only if it is the same configuration
    accepted = _keywords(spec.factory)
    given = parameters if accepted is None else {k: v for k, v in parameters.items()
                                                 if k in accepted}  # fmt: skip
    try:
        metric = spec.load(**given)
    except (BrainrankError, TypeError, ValueError):
        return None
    return metric if metric.config_hash == config_hash else None


def _keywords(factory: Any) -> set[str] | None:
    """The keyword names ``factory`` takes; None when it takes any (``**kwargs``)."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters}


def _load_dataset(identifier: str, data_dir: Any = None) -> Any:
    """The dataset ``identifier`` read through its plugin (the report's one read of data)."""
    from brainrank.core.registry import get_registry

    return get_registry().get("dataset", identifier).load(data_dir=data_dir)


def section_references(store: Store, options: ReportOptions) -> Section:
    """The NSD paper's Figure 5: models' scores against human reference points (one subject
    predicted from another, and from all the others), computed with the stored metric
    configurations on the loaded dataset."""
    if not _option(options, "references"):
        raise NoData(
            "not computed: `brainrank report --references` scores them (it loads the datasets)."
        )
    frame = scores(store)
    frame = frame[frame["metric"].isin(REFERENCE_METRICS) & ~frame["selection"].isin(["layer"])]
    if frame.empty:
        raise NoData("no rsa or versa scores are stored yet.")
    results, notes = [], []
    for dataset, part in frame.groupby("dataset", sort=True):
        if part["subject"].nunique() < 2:
            continue
        try:
            loaded = _load_dataset(str(dataset), _option(options, "data_dir"))
        except Exception as exc:  # the data may not be on this machine
            notes.append(f"{dataset}: not loaded ({type(exc).__name__}: {exc}).")
            continue
        for (metric_id, config_hash, config), rows in part.groupby(
            ["metric", "metric_hash", "config"], sort=True
        ):
            metric = _stored_metric(store, str(metric_id), str(config_hash))
            if metric is None:
                notes.append(f"{dataset}/{config}: configuration not rebuilt from the store.")
                continue
            try:
                refs = analyses.subject_references(loaded, metric, seed=options.seed)
            except (InputError, ValueError) as exc:
                notes.append(f"{dataset}/{config}: {exc}")
                continue
            headline = refs["selection"].iloc[0] if not refs.empty else "max"
            ranked = rows[rows["selection"] == headline]
            results.append((str(dataset), str(config), refs, ranked))
    if not results:
        raise NoData(
            "no dataset with 2 or more subjects scored with rsa or versa could be loaded"
            + (f" ({'; '.join(notes)})" if notes else "")
            + "."
        )
    section = Section(
        "references",
        "Models against human reference points",
        "Per region, each model's score (black: mean over subjects) against how well other "
        "brains predict one brain, scored by the same metric configuration: one other subject "
        "(subject) or all the others together (multisubject); bands: the range over target "
        "subjects and sources, line: their mean (the NSD paper's appendix A.5, Figure 5).",
    )
    colours = {"subject": "#ff7f0e", "multisubject": "#1f77b4"}
    for dataset, config, refs, ranked in results:
        regions = sorted(set(refs["region"]))
        fig, axes = _figure(max(5, 0.6 * len(regions) + 2), 3.4)
        ax = axes[0, 0]
        x = {r: i for i, r in enumerate(regions)}
        for kind, part in refs.groupby("kind"):
            stats = part.groupby("region")["value"].agg(["min", "max", "mean"]).reindex(regions)
            xs = np.arange(len(regions))
            ax.fill_between(xs, stats["min"], stats["max"], color=colours.get(kind), alpha=0.25,
                            step="mid", label=kind)  # fmt: skip
            ax.plot(xs, stats["mean"], color=colours.get(kind), drawstyle="steps-mid")
        model_means = ranked.groupby(["model", "region"])["score"].mean().reset_index()
        model_means = model_means[model_means["region"].isin(regions)]
        ax.scatter([x[r] for r in model_means["region"]], model_means["score"], s=10,
                   color="black", zorder=3, label="models")  # fmt: skip
        ax.set_xticks(range(len(regions)), regions, rotation=90, fontsize=7)
        ax.set_title(f"{dataset} / {config}", fontsize=9)
        ax.legend(fontsize=7)
        section.add_drawn_figure(fig)
        summary = refs.groupby(["region", "kind"])["value"].agg(["mean", "min", "max", "count"])
        above = {}
        for (region, kind), row in summary.iterrows():
            values = model_means.loc[model_means["region"] == region, "score"]
            above[(region, kind)] = float((values > row["mean"]).mean()) if len(values) else np.nan
        summary["models_above_mean"] = pd.Series(above)
        section.tables.append((f"Reference points, {dataset} / {config}", summary.reset_index()))
        section.tables.append((f"Every reference, {dataset} / {config}", refs))
    section.notes += notes
    return section


SECTIONS: list[Callable[[Store, ReportOptions], Section]] = [
    section_rank_uncertainty,
    section_properties,
    section_architectures,
    section_reliability_sweep,
    section_cre_lines,
    section_dimensionality,
    section_paired_differences,
    section_generalisation,
    section_references,
]

TITLES = {
    section_rank_uncertainty: ("rank-uncertainty", "Rank uncertainty and pairwise tests"),
    section_properties: ("properties", "Scores against model properties"),
    section_architectures: ("architectures", "Architectures: transformers against the rest, "
                            "trained against random"),
    section_reliability_sweep: ("reliability-sweep", "Scores across reliability thresholds"),
    section_cre_lines: ("cre-lines", "Scores per cre line"),
    section_dimensionality: ("dimensionality", "Effective dimensionality of the layers"),
    section_paired_differences: ("paired-differences", "Paired differences between metrics"),
    section_generalisation: ("generalisation", "Generalisation to new images"),
    section_references: ("references", "Models against human reference points"),
}  # fmt: skip
