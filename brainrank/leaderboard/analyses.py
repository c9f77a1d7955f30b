"""The seed papers' analyses, computed from stored scores.

Every function takes the score table (``brainrank.leaderboard.scores()``: one row per model
x dataset x metric x subject x region x layer x selection, with the model's ``family`` and
``trained``) or arrays, and returns plain DataFrames / dataclasses that the report plots.

With fewer than 5 units (pairs, models per family, model x area combinations) no p-value,
CI or effect size is given: the result carries a ``reason`` / ``note`` instead.

- :func:`overall_ranking` (Conwell et al. 2021): the ranking of
  :mod:`brainrank.leaderboard.ranking` (shared with the CLI, report and web page) on
  SRP-Ridge and RSA: mean over (dataset, configuration) columns of region means, on the
  cells every model has, simulated data apart, with a 95% bootstrap CI across regions
  (from 5 regions).
- :func:`trained_vs_random`: paired t-test, Cohen's d and Hedges' g across architectures,
  and the architectures whose random variant matches or beats the trained one.
- :func:`metric_agreement`: Spearman rank agreement of two metrics over models (with and
  without random models) and the mouse paper's layer-wise rho averaged over model x area,
  with bootstrap CIs.
- :func:`best_layer_depth`: relative depth of the best layer per region and family.
- :func:`family_comparison`: Kruskal-Wallis across architecture families with epsilon^2,
  and per region with Holm-corrected p-values.
- :func:`generalisation`: layers chosen on one dataset, scored on another (NSD's shared
  images vs each subject's own images).
- Neural Taskonomy (Wang, Tarr & Wehbe 2019): :func:`voxel_significance` /
  :func:`encoding_significance` (read the held-out r and FDR-adjusted permutation p-values
  that the ``encoding:taskonomy`` metric stores; nothing is fitted here),
  :func:`significant_maps`, :func:`task_similarity` (cosine similarity of maps whose
  non-significant voxels count as 0), :func:`cluster_tasks` (average / ward linkage),
  :func:`compare_with_clusters` (agreement with the Taskonomy task clusters),
  :func:`contrast_map` (e.g. 3D vs 2D).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core import stats
from brainrank.core.errors import InputError

SEED_METRICS = ("srp-ridge", "rsa")


# --------------------------------------------------------------------------- helpers


def region_scores(
    frame: pd.DataFrame, metric: str, selection: str = "max", dataset: str | None = None
) -> pd.DataFrame:
    """Model x region table of ``selection`` rows of ``metric`` (mean over subjects, and over
    datasets unless ``dataset`` picks one). Regions are ``dataset/region`` whenever the frame
    holds several datasets, so regions of different datasets stay apart and every metric's
    table names a region the same way.

    ``metric`` is a metric identifier or a configuration name (the ``config`` column, e.g.
    ``srp-ridge(alphas=1e8)``). Two configurations of one metric are never averaged: a
    metric stored with several configurations must be named by configuration.
    """
    rows = frame[(frame["metric"] == metric) & (frame["selection"] == selection)]
    if rows.empty and "config" in frame.columns:
        rows = frame[(frame["config"] == metric) & (frame["selection"] == selection)]
    if dataset is not None:
        rows = rows[rows["dataset"] == dataset]
    if rows.empty:
        return pd.DataFrame()
    if "metric_hash" in rows.columns and rows["metric_hash"].nunique() > 1:
        names = (
            sorted(rows["config"].unique())
            if "config" in rows.columns
            else sorted(f"{metric}#{h[:6]}" for h in rows["metric_hash"].unique())
        )
        raise InputError(
            f"metric {metric!r} is stored with {len(names)} configurations ({', '.join(names)}); "
            "scores of different settings are never averaged: name one configuration."
        )
    rows = rows.assign(area=_area(rows, frame))
    return rows.pivot_table(index="model", columns="area", values="score", aggfunc="mean")


def _area(rows: pd.DataFrame, frame: pd.DataFrame | None = None) -> pd.Series:
    """``dataset/region`` when ``frame`` (default: ``rows``) holds several datasets, else the
    region: decided on the whole frame, so that the rows of every metric are labelled alike."""
    whole = rows if frame is None else frame
    if whole["dataset"].nunique() > 1:
        return rows["dataset"].astype(str) + "/" + rows["region"].astype(str)
    return rows["region"].astype(str)


def _model_info(frame: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in ("family", "trained") if c in frame.columns]
    if not columns or frame.empty:
        return pd.DataFrame(index=pd.Index([], name="model"))
    return frame.groupby("model")[columns].first()


# --------------------------------------------------------------------------- ranking


def overall_ranking(
    frame: pd.DataFrame,
    metrics: Sequence[str] = SEED_METRICS,
    selection: str | None = "max",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    *,
    value: str = "auto",
    species: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The overall rank of Conwell et al. (2021), computed by the one ranking definition of
    :mod:`brainrank.leaderboard.ranking`: models ranked on the mean over (dataset, metric
    configuration) columns of ``metrics``' ``selection`` scores (``None``: ``heldout`` where
    stored, else ``max``), each column the mean over regions, on the cells every model has.
    With one dataset and every region scored by both metrics this is the paper's mean over
    regions of the mean of SRP-Ridge and RSA.

    Columns: data (real / simulated, ranked apart), rank, model, score, ci_low, ci_high
    (NaN below 5 regions), n_regions, n_cells, n_missing, one column per metric (its mean
    over its columns), the (dataset/configuration) columns, family, trained.
    ``result.attrs["notes"]`` says what was ranked and what was left out.
    """
    from brainrank.leaderboard.ranking import combined, rank_models

    base = ["data", "rank", "model", "score", "ci_low", "ci_high", "n_regions"]
    wanted = [m for m in metrics]
    rows = frame[frame["metric"].astype(str).isin(wanted)] if not frame.empty else frame
    rankings = rank_models(
        rows, selection=selection, value=value, ci=ci, n_boot=n_boot, seed=seed,
        species=species,
    )  # fmt: skip
    if not rankings:
        empty = pd.DataFrame(columns=base)
        empty.attrs["notes"] = ["No summary scores of " + ", ".join(wanted) + " to rank."]
        return empty
    info = _model_info(frame)
    parts = []
    for ranking in rankings:
        table = ranking.table.rename(columns={"mean": "score"})
        table.insert(table.columns.get_loc("ci_high") + 1 if "ci_high" in table else 4,
                     "n_regions", ranking.n_units)  # fmt: skip
        configs = (
            ranking.cells.drop_duplicates(["dataset", "config"])
            if not ranking.cells.empty
            else pd.DataFrame(columns=["dataset", "config"])
        )
        metric_of = {}
        for dataset, config in zip(configs["dataset"], configs["config"], strict=True):
            metric = next((m for m in wanted if config == m or config.startswith(m + "(")
                           or config.startswith(m + "#")), config)  # fmt: skip
            metric_of.setdefault(metric, []).append(f"{dataset}/{config}")
        for metric in wanted:
            columns = metric_of.get(metric, [])
            table[metric] = table[columns].mean(axis=1) if columns else np.nan
        for column in info.columns:
            table[column] = [info[column].get(m) for m in table["model"]]
        parts.append(table.assign(data=ranking.group))
    result = pd.concat(parts, ignore_index=True)
    result = result[["data", *[c for c in result.columns if c != "data"]]]
    result.attrs["notes"] = combined(rankings).attrs["notes"]
    return result


# --------------------------------------------------------------------------- trained vs random


@dataclass
class TrainedVsRandom:
    """Per architecture, the trained and the random variant's score; the paired test.

    With fewer than :data:`brainrank.core.stats.MIN_UNITS` pairs, ``t``, ``p_value``,
    ``cohens_d`` and ``hedges_g`` are NaN and ``reason`` says why.
    """

    pairs: pd.DataFrame  # architecture, trained_model, random_model, trained, random, difference
    t: float
    p_value: float
    cohens_d: float
    random_matches_or_beats: list[str] = field(default_factory=list)
    hedges_g: float = float("nan")
    n: int = 0
    reason: str | None = None


def _pair_models(models: Sequence[str]) -> list[tuple[str, str]]:
    """(trained, random) pairs: ``x:random`` goes with ``x`` or with ``x.<tag>``."""
    names = set(models)
    pairs = []
    for random_id in sorted(m for m in names if m.endswith(":random")):
        base = random_id[: -len(":random")]
        trained = [m for m in names if ":" not in m and (m == base or m.split(".")[0] == base)]
        for t in sorted(trained):
            pairs.append((t, random_id))
    return pairs


def trained_vs_random(
    frame: pd.DataFrame, metric: str = "srp-ridge", selection: str = "max"
) -> TrainedVsRandom:
    """Paired comparison of trained and randomly initialised variants of the same
    architectures on a metric (each model's score: its mean over regions): paired t-test,
    Cohen's d_z (mean difference / SD of the differences, as Conwell et al. 2021 report)
    and Hedges' g (d_z times ``1 - 3 / (4 (n - 1) - 1)``). Fewer than 5 pairs: no test or
    effect size, a ``reason`` instead."""
    table = region_scores(frame, metric, selection)
    if table.empty:
        raise InputError(f"no {selection!r} scores of metric {metric!r} in the leaderboard.")
    per_model = table.mean(axis=1)
    pairs = _pair_models(per_model.index)
    if len(pairs) < 2:
        raise InputError(
            f"trained vs random needs at least 2 architectures scored both trained and "
            f"':random' on {metric!r}; found {len(pairs)}."
        )
    rows = [
        {
            "architecture": trained.split(":")[0],
            "trained_model": trained,
            "random_model": random_id,
            "trained": float(per_model[trained]),
            "random": float(per_model[random_id]),
        }
        for trained, random_id in pairs
    ]
    pairs_frame = pd.DataFrame(rows)
    pairs_frame["difference"] = pairs_frame["trained"] - pairs_frame["random"]
    beaten = pairs_frame.loc[pairs_frame["difference"] <= 0, "architecture"].tolist()
    n = int(np.isfinite(pairs_frame["difference"]).sum())
    reason = stats.too_few(n, "trained/random pairs")
    if reason is not None:
        nan = float("nan")
        return TrainedVsRandom(pairs_frame, nan, nan, nan, beaten, nan, n, reason)
    test = stats.paired_ttest(pairs_frame["trained"], pairs_frame["random"])
    d = stats.cohens_d_paired(pairs_frame["trained"], pairs_frame["random"])
    g = stats.hedges_g(pairs_frame["trained"], pairs_frame["random"], paired=True)
    return TrainedVsRandom(pairs_frame, test.statistic, test.p_value, d, beaten, g, n)


# --------------------------------------------------------------------------- metric agreement


def metric_agreement(
    frame: pd.DataFrame,
    a: str = "srp-ridge",
    b: str = "rsa",
    selection: str = "max",
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Spearman rank agreement between two metrics, with bootstrap CIs.

    Rows:

    - ``models``: rho over models of their ``selection`` scores (mean over regions);
      ``trained models``: the same without random variants and untrained baselines;
    - ``layers (model x area)``: the mouse paper's layer-by-layer statistic (Conwell et al.
      2021, "we decompose the Spearman correlation across distinct combinations of model
      and cortical area"): for every model and area, the Spearman rho between the two
      metrics' per-layer scores (mean over subjects), averaged over the model x area
      combinations, with a percentile bootstrap CI over combinations;
      ``layers (model x area), trained models``: the same without random models;
    - ``layers (pooled)``: rho over every layer of every model pooled (each layer's mean over
      regions; brainrank's earlier statistic, kept for comparison).

    ``n`` is the number of units (models, combinations or layers). With fewer than 5 units
    the CI is not given (NaN) and ``note`` says why.
    """
    out = []
    ta, tb = region_scores(frame, a, selection), region_scores(frame, b, selection)
    info = _model_info(frame)
    is_trained = (
        (lambda m: bool(info.loc[m, "trained"])) if "trained" in info.columns else (lambda m: True)
    )
    if not ta.empty and not tb.empty:
        common = ta.index.intersection(tb.index)
        sa, sb = ta.loc[common].mean(axis=1), tb.loc[common].mean(axis=1)
        if len(common) >= 3:
            out.append(_agreement("models", sa, sb, n_boot, seed))
        if "trained" in info.columns:
            trained = [m for m in common if is_trained(m)]
            if len(trained) >= 3:
                out.append(_agreement("trained models", sa[trained], sb[trained], n_boot, seed))
    la = _layer_table(frame, a)
    lb = _layer_table(frame, b)
    if not la.empty and not lb.empty:
        joined = la.to_frame("a").join(lb.to_frame("b"), how="inner").dropna()
        combos = []
        for (model, _area), group in joined.groupby(level=["model", "area"]):
            if len(group) >= 3 and group["a"].nunique() > 1 and group["b"].nunique() > 1:
                rho = float(scipy_spearman(group["a"].to_numpy(), group["b"].to_numpy()))
                combos.append((model, rho))
        for name, keep in [
            ("layers (model x area)", lambda m: True),
            ("layers (model x area), trained models", is_trained),
        ]:
            values = np.asarray([rho for m, rho in combos if keep(m)])
            if values.size == 0 or (name.endswith("trained models") and values.size == len(combos)):
                continue
            out.append(_mean_with_ci(name, values, n_boot, seed))
        pooled = joined.groupby(level=["model", "layer"])[["a", "b"]].mean()
        if len(pooled) >= 3:
            out.append(_agreement("layers (pooled)", pooled["a"], pooled["b"], n_boot, seed))
    return pd.DataFrame(out, columns=["comparison", "rho", "ci_low", "ci_high", "n", "note"])


def scipy_spearman(x: np.ndarray, y: np.ndarray) -> float:
    import scipy.stats

    return float(scipy.stats.spearmanr(x, y).statistic)


def _mean_with_ci(name: str, values: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    row: dict[str, Any] = {"comparison": name, "rho": float(values.mean()), "n": int(values.size)}
    note = stats.too_few(int(values.size), "model x area combinations")
    if note is None:
        low, high = stats.bootstrap_ci(values, np.mean, n_boot=n_boot, seed=seed)
        row.update(ci_low=float(low), ci_high=float(high), note="")
    else:
        row.update(ci_low=np.nan, ci_high=np.nan, note=note)
    return row


def _layer_table(frame: pd.DataFrame, metric: str) -> pd.Series:
    """Per-layer scores of ``metric``, mean over subjects, indexed (model, area, layer)."""
    rows = frame[(frame["metric"] == metric) & (frame["selection"] == "layer")]
    if rows.empty:
        return pd.Series(dtype=float)
    rows = rows.assign(area=_area(rows))
    return rows.groupby(["model", "area", "layer"])["score"].mean()


def _agreement(name: str, a: pd.Series, b: pd.Series, n_boot: int, seed: int) -> dict[str, Any]:
    n = len(a)
    note = stats.too_few(n, "items")
    if note is None:
        rho, low, high = stats.spearman_rank_agreement(
            np.asarray(a), np.asarray(b), n_boot=n_boot, seed=seed
        )
        return {"comparison": name, "rho": rho, "ci_low": low, "ci_high": high, "n": n, "note": ""}
    rho = scipy_spearman(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    return {"comparison": name, "rho": rho, "ci_low": np.nan, "ci_high": np.nan, "n": n,
            "note": note}  # fmt: skip


# --------------------------------------------------------------------------- generalisation


def generalisation(
    frame: pd.DataFrame,
    dataset: str = "nsd/generalisation:*",
    metric: str = "versa:generalisation",
) -> pd.DataFrame:
    """The generalisation test of the 5.17-billion-fit paper, from stored rows: per model,
    subject and region, the layer chosen on the training stimuli (NSD's shared 1000
    images), scored on the test stimuli (the subject's own 1000 images) with the weights
    fitted on the training stimuli.

    Reads the per-layer rows of a train/test metric (``versa:generalisation``,
    ``versa:nsd``) on the datasets matching ``dataset``: each holds the test score as its
    value and the (leak-free, cross-fitted) training score in ``details["train"]``.

    Returns one row per model, subject and region: the chosen layer, its training score
    (``selected``), its test score (``generalised``) and the best test score over all layers
    (``best_possible``, for reference: choosing on the test stimuli would be optimistic).
    """
    import fnmatch

    rows = frame[(frame["metric"] == metric) & (frame["selection"] == "layer")]
    rows = rows[rows["dataset"].map(lambda d: fnmatch.fnmatchcase(str(d), dataset))].copy()
    if not rows.empty:
        rows["train"] = [
            (d or {}).get("train") if isinstance(d, dict) else None for d in rows["details"]
        ]
        rows = rows[rows["train"].notna() & rows["score"].notna()]
    if rows.empty:
        raise InputError(
            f"no per-layer {metric!r} scores with a training score on {dataset!r}: score a "
            "dataset with a train/test split (e.g. nsd/generalisation:subj01) with "
            "versa:generalisation or versa:nsd first."
        )
    keys = ["model", "dataset", "subject", "region"]
    rows["train"] = rows["train"].astype(float)
    chosen = rows.loc[rows.groupby(keys)["train"].idxmax()][[*keys, "layer", "train", "score"]]
    chosen = chosen.rename(columns={"train": "selected", "score": "generalised"})
    best = rows.groupby(keys)["score"].max().rename("best_possible").reset_index()
    out = chosen.merge(best, on=keys, how="left")
    return out.sort_values(keys).reset_index(drop=True)


# --------------------------------------------------------------------------- hierarchy and families


def best_layer_depth(
    frame: pd.DataFrame, metric: str = "srp-ridge", selection: str = "max"
) -> pd.DataFrame:
    """Relative depth (0 = first layer, 1 = last) of the best layer per region and family:
    mean, standard deviation and number of models (mean over subjects first)."""
    rows = frame[(frame["metric"] == metric) & (frame["selection"] == selection)]
    rows = rows[rows["relative_depth"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=["region", "family", "mean_depth", "sd_depth", "n_models"])
    rows = rows.assign(area=_area(rows))
    per_model = rows.groupby(["area", "model"]).agg(
        depth=("relative_depth", "mean"), family=("family", "first")
    )
    grouped = per_model.reset_index().groupby(["area", "family"])["depth"]
    out = grouped.agg(mean_depth="mean", sd_depth="std", n_models="count").reset_index()
    return out.rename(columns={"area": "region"})


@dataclass
class FamilyComparison:
    """Kruskal-Wallis across families on the models' mean over regions (``h``, ``p_value``,
    ``epsilon_squared``), and per region with Holm-corrected p-values (``regions``)."""

    summary: pd.DataFrame  # family, n_models, mean, median
    h: float
    p_value: float
    df: float
    epsilon_squared: float = float("nan")
    n: int = 0
    reason: str | None = None
    #: region, h, df, p_value, p_holm, epsilon_squared, n (one Kruskal-Wallis per region)
    regions: pd.DataFrame = field(default_factory=pd.DataFrame)


def family_comparison(
    frame: pd.DataFrame,
    metric: str = "srp-ridge",
    selection: str = "max",
    families: Sequence[str] = ("convnet", "transformer", "mlp-mixer"),
    trained_only: bool = True,
) -> FamilyComparison:
    """Kruskal-Wallis test of the models' scores (mean over regions) across families, with
    the rank effect size epsilon^2 = H / (n - 1) (the ``epsilon^2_ordinal`` of Conwell et al.'s
    5.17-billion-fit paper), and the same test per region with Holm-corrected p-values
    across regions (that paper's ``p_Holm``). p-values are given only when every family has
    at least 5 models (the chi-square approximation's usual minimum); otherwise ``reason``
    says why and ``p_value`` is NaN."""
    table = region_scores(frame, metric, selection)
    if table.empty:
        raise InputError(f"no {selection!r} scores of metric {metric!r} in the leaderboard.")
    per_model = table.mean(axis=1)
    info = _model_info(frame)
    groups = {}
    for family in families:
        members = [m for m in per_model.index if info.loc[m, "family"] == family]
        if trained_only and "trained" in info.columns:
            members = [m for m in members if bool(info.loc[m, "trained"])]
        if members:
            groups[family] = per_model[members].to_numpy()
    if len(groups) < 2:
        raise InputError(f"the family comparison needs models of at least 2 of {list(families)}.")
    result = stats.kruskal_wallis(list(groups.values()))
    n = int(sum(v.size for v in groups.values()))
    smallest = min(v.size for v in groups.values())
    reason = stats.too_few(smallest, "models in the smallest family")
    members = {f: [m for m in per_model.index if _in_family(info, m, f, trained_only)]
               for f in groups}  # fmt: skip
    region_rows = []
    for area in table.columns:
        samples = [table.loc[members[f], area].dropna().to_numpy() for f in groups]
        if sum(x.size > 0 for x in samples) < 2:
            continue
        samples = [x for x in samples if x.size]
        test = stats.kruskal_wallis(samples)
        m = int(sum(x.size for x in samples))
        region_rows.append({"region": area, "h": test.statistic, "df": test.df,
                            "p_value": test.p_value, "epsilon_squared": stats.epsilon_squared(
                                test.statistic, m), "n": m,
                            "min_group": min(x.size for x in samples)})  # fmt: skip
    regions = pd.DataFrame(region_rows)
    if not regions.empty:
        regions["p_holm"] = stats.holm(regions["p_value"].to_numpy())[0]
        few = regions["min_group"] < stats.MIN_UNITS
        regions.loc[few, ["p_value", "p_holm"]] = np.nan
    summary = pd.DataFrame(
        [
            {
                "family": f,
                "n_models": v.size,
                "mean": float(v.mean()),
                "median": float(np.median(v)),
            }
            for f, v in groups.items()
        ]
    )
    p_value = result.p_value if reason is None else float("nan")
    return FamilyComparison(
        summary,
        result.statistic,
        p_value,
        result.df or 0.0,
        stats.epsilon_squared(result.statistic, n),
        n,
        reason,
        regions,
    )


def _in_family(info: pd.DataFrame, model: str, family: str, trained_only: bool) -> bool:
    if info.loc[model, "family"] != family:
        return False
    return not (trained_only and "trained" in info.columns and not bool(info.loc[model, "trained"]))


# --------------------------------------------------------------------------- Neural Taskonomy


@dataclass
class VoxelSignificance:
    """Per-neuroid held-out r and FDR-adjusted permutation p-values, read from the store."""

    neuroid_ids: np.ndarray  # "subject/neuroid_id"
    r: np.ndarray
    p_fdr: np.ndarray
    significant: np.ndarray
    q: float
    layers: dict[tuple[str, str], str] = field(default_factory=dict)  # (subject, region) -> layer


def voxel_significance(
    per_neuroid: pd.DataFrame, *, layer: str | None = None, q: float = 0.05
) -> VoxelSignificance:
    """Per-voxel significance of one model's held-out encoding, from stored values only.

    ``per_neuroid``: rows of :func:`brainrank.leaderboard.per_neuroid` for one model,
    dataset and metric that stores a ``selection="significance"`` row per layer (e.g.
    ``encoding:taskonomy``: its ``layer`` rows hold each voxel's held-out r, its
    ``significance`` rows the Benjamini-Hochberg adjusted permutation p-values). The layer
    is ``layer`` when given, else per (subject, region) the layer of the stored ``max`` row.
    A voxel is significant when its adjusted p <= ``q`` (the q the metric used, 0.05 by
    default). Nothing is fitted or extracted here.
    """
    if per_neuroid.empty:
        raise InputError("no per-neuroid values were given.")
    for column in ("model", "dataset", "metric"):
        if per_neuroid[column].nunique() > 1:
            raise InputError(
                f"voxel significance needs the rows of one {column}; got "
                f"{sorted(per_neuroid[column].unique())}."
            )
    significance = per_neuroid[per_neuroid["selection"] == "significance"]
    if significance.empty:
        raise InputError(
            f"metric {per_neuroid['metric'].iloc[0]!r} stores no per-neuroid significance "
            "('significance' rows); score the model with 'encoding:taskonomy', which stores "
            "held-out permutation p-values with FDR correction."
        )
    layer_rows = per_neuroid[per_neuroid["selection"] == "layer"]
    keys = ["subject", "region"]
    if layer is not None:
        chosen = {k: layer for k, _ in significance.groupby(keys)}
    else:
        best = per_neuroid[per_neuroid["selection"] == "max"].drop_duplicates(keys)
        if best.empty:
            raise InputError("no 'max' rows to choose the layer from; pass layer=...")
        chosen = {(row.subject, row.region): row.layer for row in best.itertuples()}
    parts = []
    for (subject, region), name in chosen.items():
        pick = (
            (significance["subject"] == subject)
            & (significance["region"] == region)
            & (significance["layer"] == name)
        )
        sig = significance[pick][["neuroid_id", "value"]].rename(columns={"value": "p_fdr"})
        pick_r = (
            (layer_rows["subject"] == subject)
            & (layer_rows["region"] == region)
            & (layer_rows["layer"] == name)
        )
        r = layer_rows[pick_r][["neuroid_id", "value"]].rename(columns={"value": "r"})
        if sig.empty:
            raise InputError(f"no stored significance for layer {name!r} in {subject}/{region}.")
        part = sig.merge(r, on="neuroid_id", how="left")
        part.insert(0, "subject", subject)
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    p_fdr = table["p_fdr"].to_numpy(dtype=np.float64)
    return VoxelSignificance(
        neuroid_ids=(
            table["subject"].astype(str) + "/" + table["neuroid_id"].astype(str)
        ).to_numpy(),
        r=table["r"].to_numpy(dtype=np.float64),
        p_fdr=p_fdr,
        significant=np.nan_to_num(p_fdr, nan=1.0) <= q,
        q=q,
        layers={k: str(v) for k, v in chosen.items()},
    )


def encoding_significance(
    db: Any,
    model: str,
    dataset: str,
    *,
    layer: str | None = None,
    metric: str = "encoding:taskonomy",
    q: float = 0.05,
) -> VoxelSignificance:
    """:func:`voxel_significance` of ``model`` on ``dataset`` from the store ``db`` (a path,
    URL or Store). Reads stored rows only; score first with ``brainrank run --metric
    encoding:taskonomy`` (the held-out protocol of Neural Taskonomy)."""
    from brainrank.leaderboard.query import per_neuroid

    rows = per_neuroid(db, model=model, dataset=dataset, metric=metric)
    if rows.empty:
        raise InputError(
            f"no per-neuroid {metric!r} values of {model!r} on {dataset!r} are stored; run "
            f"'brainrank run --model {model} --dataset {dataset} --metric {metric}' first."
        )
    return voxel_significance(rows, layer=layer, q=q)


def significant_maps(
    per_neuroid: pd.DataFrame, key: str = "model", q: float = 0.05
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(maps, significant)`` for :func:`task_similarity`: per model (``key``), the held-out
    r of the best layer of every voxel and whether that voxel is FDR-significant, aligned on
    the voxels every model has. Rows as for :func:`voxel_significance`, several models."""
    results = {}
    for name, rows in per_neuroid.groupby(key):
        try:
            results[str(name)] = voxel_significance(rows, q=q)
        except InputError:
            continue
    if not results:
        return {}, {}
    common = set.intersection(*(set(r.neuroid_ids) for r in results.values()))
    ids = sorted(common)
    maps, significant = {}, {}
    for name, result in results.items():
        position = {v: i for i, v in enumerate(result.neuroid_ids)}
        index = np.array([position[v] for v in ids], dtype=np.int64)
        maps[name] = result.r[index] if index.size else np.empty(0)
        significant[name] = result.significant[index] if index.size else np.empty(0, bool)
    return maps, significant


def task_similarity(
    maps: Mapping[str, np.ndarray], significant: Mapping[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """Task x task cosine similarity of voxelwise performance maps; voxels not significant
    for a task (``significant[task]`` False) count as 0 for that task."""
    names = list(maps)
    if len(names) < 2:
        raise InputError("task similarity needs the maps of at least 2 tasks.")
    stack = np.stack([np.nan_to_num(np.asarray(maps[n], dtype=np.float64)) for n in names])
    if significant is not None:
        stack = stack * np.stack([np.asarray(significant[n], dtype=bool) for n in names])
    norms = np.linalg.norm(stack, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = (stack @ stack.T) / np.outer(norms, norms)
    return pd.DataFrame(similarity, index=names, columns=names)


@dataclass
class TaskTree:
    method: str
    labels: list[str]
    linkage: np.ndarray  # scipy linkage matrix
    order: list[str]  # leaves in dendrogram order

    def clusters(self, n_clusters: int) -> dict[str, int]:
        from scipy.cluster.hierarchy import fcluster

        ids = fcluster(self.linkage, n_clusters, criterion="maxclust")
        return dict(zip(self.labels, ids.tolist(), strict=True))


def cluster_tasks(similarity: pd.DataFrame, method: str = "average") -> TaskTree:
    """Hierarchical clustering of tasks from their similarity (distance = 1 - similarity)
    with ``average`` or ``ward`` linkage."""
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    if method not in ("average", "ward"):
        raise InputError(f"method must be 'average' or 'ward', got {method!r}.")
    values = np.nan_to_num(similarity.to_numpy(dtype=np.float64))
    distance = np.clip(1.0 - (values + values.T) / 2, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method=method)
    labels = list(similarity.index)
    leaves = dendrogram(tree, no_plot=True, labels=labels)["ivl"]
    return TaskTree(method, labels, tree, list(leaves))


def compare_with_clusters(tree: TaskTree, clusters: Mapping[str, str]) -> dict[str, float]:
    """Agreement between the tree cut into as many clusters as ``clusters`` names (e.g. the
    Taskonomy 2D / 3D / geometric / semantic groups) and those clusters: adjusted Rand index
    and purity, over the tasks present in both."""
    from sklearn.metrics import adjusted_rand_score

    tasks = [t for t in tree.labels if t in clusters]
    if len(tasks) < 3:
        raise InputError("comparing clusterings needs at least 3 tasks with a known cluster.")
    k = len({clusters[t] for t in tasks})
    cut = tree.clusters(k)
    truth = [clusters[t] for t in tasks]
    found = [cut[t] for t in tasks]
    purity = 0
    for label in set(found):
        members = [truth[i] for i, f in enumerate(found) if f == label]
        purity += max(members.count(c) for c in set(members))
    return {
        "adjusted_rand": float(adjusted_rand_score(truth, found)),
        "purity": purity / len(tasks),
        "n_clusters": k,
    }


def contrast_map(
    maps: Mapping[str, np.ndarray], group_a: Sequence[str], group_b: Sequence[str]
) -> np.ndarray:
    """Per voxel, the mean map of ``group_a`` tasks minus that of ``group_b`` (e.g. 3D vs 2D)."""
    missing = [t for t in [*group_a, *group_b] if t not in maps]
    if missing:
        raise InputError(f"no maps for tasks {missing}.")
    a = np.nanmean(np.stack([maps[t] for t in group_a]), axis=0)
    b = np.nanmean(np.stack([maps[t] for t in group_b]), axis=0)
    return a - b


def maps_from_per_neuroid(per_neuroid: pd.DataFrame, key: str = "model") -> dict[str, np.ndarray]:
    """``{model: values}`` aligned on the neuroids every model has, from
    ``brainrank.leaderboard.per_neuroid(...)`` rows of one dataset, subject and selection."""
    if per_neuroid.empty:
        return {}
    table = per_neuroid.pivot_table(index="neuroid_id", columns=key, values="value", aggfunc="mean")
    table = table.dropna()
    return {str(c): table[c].to_numpy() for c in table.columns}
