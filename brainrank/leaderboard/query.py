"""Querying the leaderboard from Python: pandas DataFrames, filters, aggregations, ranking.

>>> from brainrank import leaderboard
>>> leaderboard.scores(dataset="simulated", selection="max")      # best-layer rows
>>> leaderboard.aggregate(leaderboard.scores(selection="max"), over="region")
>>> leaderboard.ranking()                                        # models ranked, with CIs
>>> leaderboard.model_detail("timm/resnet18:random")             # one model's layer curves

Filters take shell-style patterns (comma-separated alternatives): ``model="timm/*"``,
``region="V1,V2"``; ``trained=True/False`` filters on the model's training. ``selection``
is ``"layer"`` for per-layer rows or a layer-choice policy (``"max"``, ``"heldout"``...).
Aggregations are plain, tested Python over these frames (never SQL views): means over
regions, subjects or datasets with percentile-bootstrap confidence intervals (the draws of
:func:`brainrank.core.stats.bootstrap_ci`, vectorised).
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core.errors import InputError
from brainrank.leaderboard.store import Store, open_store

PATTERN_COLUMNS = (
    "model",
    "dataset",
    "metric",
    "metric_hash",
    "region",
    "subject",
    "layer",
    "selection",
    "family",
    "source",
    "task",
    "training_data",
)
#: the filters every query function takes
FILTERS = (*PATTERN_COLUMNS, "trained")
#: filters the store can narrow in SQL before the exact match in Python
_SQL_FILTERS = ("model", "dataset", "metric", "region", "subject", "layer", "selection", "family")

AGGREGATE_OVER = ("region", "subject", "dataset")


def _patterns(patterns: str | Iterable[str]) -> list[str]:
    if isinstance(patterns, str):
        return [p.strip() for p in patterns.split(",") if p.strip()]
    return [str(p) for p in patterns]


def _match(series: pd.Series, patterns: str | Iterable[str]) -> pd.Series:
    wanted = _patterns(patterns)
    values = series.astype(str)
    return values.map(lambda v: any(fnmatch.fnmatchcase(v, p) for p in wanted)).astype(bool)


def filter_scores(frame: pd.DataFrame, **filters: Any) -> pd.DataFrame:
    """Rows of ``frame`` whose columns match shell-style patterns (comma-separated allowed);
    ``trained=True/False`` filters on the model's training."""
    mask = pd.Series(True, index=frame.index)
    for column, value in filters.items():
        if value is None:
            continue
        if column == "trained":
            mask &= frame["trained"].astype("boolean").fillna(False) == bool(value)
        elif column in PATTERN_COLUMNS:
            if column not in frame.columns:
                raise InputError(f"these rows have no column {column!r} to filter on.")
            mask &= _match(frame[column], value)
        else:
            raise InputError(f"unknown filter {column!r}; filters: {', '.join(FILTERS)}.")
    return frame.loc[mask].reset_index(drop=True)


def _store(db: str | Store | None) -> Store:
    return db if isinstance(db, Store) else open_store(db)


def scores(db: str | Store | None = None, **filters: Any) -> pd.DataFrame:
    """Stored scores (one row per model x dataset x metric x subject x region x layer x
    selection) with the model's family, training, task and source, filtered by
    ``filters``. ``best`` marks the summary (layer-choice) rows."""
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise InputError(f"unknown filter {sorted(unknown)}; filters: {', '.join(FILTERS)}.")
    prefilter = {k: v for k, v in filters.items() if k in _SQL_FILTERS and v is not None}
    frame = _store(db).scores_frame(**prefilter)
    frame["best"] = frame["selection"] != "layer"
    return filter_scores(frame, **filters)


# --------------------------------------------------------------------------- aggregation


def _nanmean_stat(x: np.ndarray, axis: int = 0) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def _ci(values: np.ndarray, ci: float, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile-bootstrap ``(low, high)`` of the mean over the first axis (units); for a
    2-D ``values`` (units x columns) the statistic is the mean of the column means. NaN
    with fewer than 2 units. The draws are those of :func:`brainrank.core.stats.bootstrap_ci`
    with the same seed, computed at once rather than one resample at a time."""
    if not 0 < ci < 1:
        raise InputError(f"ci must be in (0, 1), got {ci}.")
    finite_rows = np.isfinite(values).reshape(values.shape[0], -1).any(axis=1)
    values = values[finite_rows]
    n = values.shape[0]
    if n < 2:
        return float("nan"), float("nan")
    index = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    stats = _nanmean_stat(values[index], axis=1)
    if stats.ndim > 1:
        stats = _nanmean_stat(stats, axis=1)
    alpha = (1 - ci) / 2
    return float(np.nanquantile(stats, alpha)), float(np.nanquantile(stats, 1 - alpha))


def aggregate(
    frame: pd.DataFrame,
    over: str = "region",
    *,
    value: str = "score",
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Means over regions, subjects or datasets, with bootstrap confidence intervals.

    - ``over="region"``: per (model, dataset, metric configuration, selection), the mean over
      regions of the subject-averaged scores; the CI resamples regions.
    - ``over="subject"``: the same with the roles of subjects and regions swapped.
    - ``over="dataset"``: per (model, metric configuration, selection), the mean over datasets
      of each dataset's mean (over subjects and regions); the CI resamples datasets.

    ``value`` is the column averaged (``score`` or ``normalized``). Returns one row per group
    with ``mean``, ``ci_low``, ``ci_high`` and ``n`` (the number of units averaged); the CI
    is NaN with fewer than two units. Missing (NaN) scores are left out, not counted as 0.
    """
    if over not in AGGREGATE_OVER:
        raise InputError(f"over must be one of {AGGREGATE_OVER}, got {over!r}.")
    if value not in frame.columns:
        raise InputError(f"these rows have no column {value!r} to average.")
    columns = ["model", "dataset", "metric", "metric_hash", "selection", "mean", "ci_low",
               "ci_high", "n"]  # fmt: skip
    if over == "dataset":
        columns.remove("dataset")
    if frame.empty:
        return pd.DataFrame(columns=columns)
    data = frame.dropna(subset=[value])
    if over == "dataset":
        group = ["model", "metric", "metric_hash", "selection"]
        units = data.groupby([*group, "dataset"], sort=True)[value].mean().reset_index()
        unit = "dataset"
    else:
        group = ["model", "dataset", "metric", "metric_hash", "selection"]
        unit = over  # the other of subject/region is averaged within each unit
        units = data.groupby([*group, unit], sort=True)[value].mean().reset_index()
    rows = []
    for key, part in units.groupby(group, sort=True):
        values = part[value].to_numpy(dtype=np.float64)
        low, high = _ci(values, ci, n_boot, seed)
        rows.append({**dict(zip(group, key, strict=True)), "mean": float(values.mean()),
                     "ci_low": low, "ci_high": high, "n": int(values.size)})  # fmt: skip
    out = pd.DataFrame(rows, columns=columns)
    return out


def _column_names(frame: pd.DataFrame) -> pd.Series:
    """``dataset/metric`` per row (``#hash`` appended where one metric has several
    configurations)."""
    configs = frame.groupby("metric")["metric_hash"].nunique()
    return pd.Series(
        [
            f"{d}/{m}" if configs[m] == 1 else f"{d}/{m}#{h[:6]}"
            for d, m, h in zip(frame["dataset"], frame["metric"], frame["metric_hash"], strict=True)
        ],
        index=frame.index,
    )


def rank_frame(
    frame: pd.DataFrame,
    *,
    value: str = "score",
    ci: float | None = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Models ranked by their mean summary score.

    One column per dataset/metric: the mean over regions of the subject-averaged scores.
    ``mean`` is the mean of those columns, ``n_scores`` how many columns a model has (models
    missing a column are ranked on the ones they have). With ``ci``, ``ci_low`` and
    ``ci_high`` bracket ``mean`` by a bootstrap over (dataset, region) units: each resample
    recomputes every column from the units drawn, then their mean (the seed papers' "95%
    bootstrap CIs across areas").
    """
    base = ["rank", "model", "mean", "n_scores"] + (["ci_low", "ci_high"] if ci else [])
    data = frame.dropna(subset=[value]) if not frame.empty else frame
    if data.empty:
        return pd.DataFrame(columns=base)
    data = data.copy()
    data["column"] = _column_names(data)
    units = data.groupby(["model", "column", "dataset", "region"], sort=True)[value].mean()
    units = units.reset_index()
    table = units.pivot_table(index="model", columns="column", values=value, aggfunc="mean")
    columns = sorted(table.columns)
    table = table[columns]
    table["mean"] = table[columns].mean(axis=1)
    table["n_scores"] = table[columns].notna().sum(axis=1)
    if ci:
        lows, highs = [], []
        for model in table.index:
            part = units[units["model"] == model]
            matrix = part.pivot_table(
                index=["dataset", "region"], columns="column", values=value, aggfunc="mean"
            ).to_numpy(dtype=np.float64)
            low, high = _ci(matrix, ci, n_boot, seed)
            lows.append(low)
            highs.append(high)
        table["ci_low"] = lows
        table["ci_high"] = highs
    table = table.sort_values(["mean"], ascending=False, na_position="last", kind="stable")
    table = table.reset_index()
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.columns.name = None
    return table


def ranking(
    db: str | Store | None = None,
    selection: str = "max",
    *,
    ci: float | None = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    value: str = "score",
    **filters: Any,
) -> pd.DataFrame:
    """Models ranked by their mean summary (``selection``) score; see :func:`rank_frame`."""
    frame = scores(db, selection=selection, **filters)
    return rank_frame(frame, value=value, ci=ci, n_boot=n_boot, seed=seed)


# --------------------------------------------------------------------------- one model


def layer_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-layer rows in depth order: one curve per (model, dataset, metric configuration,
    subject, region), x = ``relative_depth`` (0 = first layer, 1 = last)."""
    rows = frame[frame["selection"] == "layer"]
    keys = ["model", "dataset", "metric", "metric_hash", "subject", "region", "layer_index"]
    columns = [*keys, "layer", "relative_depth", "score", "normalized", "n_neuroids"]
    return rows.sort_values(keys, kind="stable")[columns].reset_index(drop=True)


def model_detail(db: str | Store | None, model: str) -> dict[str, Any]:
    """One model: ``metadata`` (dict), ``summary`` (its layer-choice rows per dataset,
    metric, subject and region) and ``layers`` (its per-layer curves)."""
    store = _store(db)
    frame = scores(store, model=model)
    models = store.models_frame()
    known = models[models["identifier"] == model]
    if frame.empty and known.empty:
        import difflib

        stored = sorted(set(models["identifier"]) | set(scores(store)["model"]))
        close = difflib.get_close_matches(model, stored, n=5, cutoff=0.6)
        hint = f" Closest stored: {', '.join(close)}." if close else ""
        raise InputError(
            f"the leaderboard at {store.display_url} has no model {model!r}.{hint} "
            "`brainrank leaderboard` lists the scored models."
        )
    metadata = known.iloc[0].to_dict() if not known.empty else {"identifier": model}
    summary = frame[frame["selection"] != "layer"]
    summary = summary.sort_values(["dataset", "metric", "selection", "subject", "region"])
    columns = ["dataset", "metric", "metric_hash", "selection", "subject", "region", "layer",
               "relative_depth", "score", "ceiling", "normalized", "ci_low", "ci_high",
               "n_neuroids"]  # fmt: skip
    return {
        "metadata": metadata,
        "summary": summary[columns].reset_index(drop=True),
        "layers": layer_curves(frame),
    }


def per_neuroid(db: str | Store | None = None, **filters: Any) -> pd.DataFrame:
    """Per-neuroid values behind the matching score rows, one row per (score, neuroid).

    Summary rows (``selection="max"``...) whose values are those of their layer's row are
    stored once, with the layer row; they are followed to it here.
    """
    store = _store(db)
    frame = scores(store, **filters)
    if frame.empty:
        return pd.DataFrame(columns=[*SCORE_COLUMNS, "neuroid_id", "value"])
    arrays = store.neuroid_values(frame["score_id"].tolist())
    missing = frame[~frame["score_id"].isin(arrays) & (frame["selection"] != "layer")]
    if not missing.empty:  # follow summary rows to their layer's row
        layer_rows = scores(
            store,
            model=",".join(sorted(set(missing["model"]))),
            dataset=",".join(sorted(set(missing["dataset"]))),
            selection="layer",
        )
        keys = ["model", "dataset", "metric", "metric_hash", "subject", "region", "layer"]
        merged = missing.merge(layer_rows[[*keys, "score_id"]], on=keys, suffixes=("", "_layer"))
        layer_arrays = store.neuroid_values(merged["score_id_layer"].tolist())
        for own, other in zip(merged["score_id"], merged["score_id_layer"], strict=True):
            if other in layer_arrays:
                arrays[own] = layer_arrays[other]
    parts = []
    for _, row in frame.iterrows():
        found = arrays.get(row["score_id"])
        if found is None:
            continue
        ids, values = found
        part = pd.DataFrame({"neuroid_id": ids, "value": values.astype(np.float64)})
        for column in SCORE_COLUMNS:
            part.insert(len(part.columns) - 2, column, row[column])
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=[*SCORE_COLUMNS, "neuroid_id", "value"])
    return pd.concat(parts, ignore_index=True)


SCORE_COLUMNS = ["model", "dataset", "metric", "metric_hash", "subject", "region", "layer",
                 "selection"]  # fmt: skip


# --------------------------------------------------------------------------- other tables


def models(db: str | Store | None = None, **filters: Any) -> pd.DataFrame:
    """The scored models with their metadata (filters: model, family, source, task,
    training_data, trained)."""
    frame = _store(db).models_frame().rename(columns={"identifier": "model"})
    return filter_scores(frame, **filters)


def runs(db: str | Store | None = None) -> pd.DataFrame:
    """Every run with its provenance (code version, git revision, packages, configuration,
    seeds, executor, host, start and end)."""
    return _store(db).runs_frame()


def failures(db: str | Store | None = None, run: int | None = None, **filters: Any) -> pd.DataFrame:
    """Recorded failures (with tracebacks), optionally of one run; filters: model, dataset,
    metric (patterns) and ``stage``."""
    frame = _store(db).failures_frame(run)
    mask = pd.Series(True, index=frame.index)
    for column, value in filters.items():
        if value is None:
            continue
        if column not in ("model", "dataset", "metric", "stage"):
            raise InputError(f"unknown filter {column!r}; filters: model, dataset, metric, stage.")
        mask &= _match(frame[column].fillna(""), value)
    return frame.loc[mask].reset_index(drop=True)
