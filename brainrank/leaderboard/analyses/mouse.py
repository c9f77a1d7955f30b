"""The analyses of the mouse model zoology (Conwell et al., NeurIPS 2021; see the package
docstring): the overall ranking of SRP-Ridge and RSA, trained against randomly initialised
architectures, and the rank agreement of the two metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core import stats
from brainrank.core.errors import InputError
from brainrank.leaderboard.analyses.tables import SEED_METRICS, _area, _model_info, region_scores


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
