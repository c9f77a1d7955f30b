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
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core.errors import InputError
from brainrank.leaderboard.ranking import (
    HEADLINE_SELECTIONS,
    MIN_UNITS,
    NOT_SUMMARY,
    Ranking,
    bootstrap_mean_ci,
    combined,
    config_label_map,
    config_labels,
    data_groups,
    parameter_summary,
    rank_models,
)
from brainrank.leaderboard.store import Store, open_store

PATTERN_COLUMNS = (
    "model",
    "dataset",
    "metric",
    "metric_hash",
    "config",
    "region",
    "subject",
    "layer",
    "selection",
    "family",
    "source",
    "task",
    "training_data",
    "training_method",
    "task_cluster",
)
#: the filters every query function takes
FILTERS = (*PATTERN_COLUMNS, "trained", "baseline")
#: filters the store can narrow in SQL before the exact match in Python
_SQL_FILTERS = ("model", "dataset", "metric", "region", "subject", "layer", "selection", "family")

AGGREGATE_OVER = ("region", "subject", "dataset")


def _patterns(patterns: str | Iterable[str]) -> list[str]:
    if isinstance(patterns, str):
        return [p.strip() for p in patterns.split(",") if p.strip()]
    return [str(p) for p in patterns]


def _match(series: pd.Series, patterns: str | Iterable[str]) -> pd.Series:
    wanted = _patterns(patterns)
    exact = {p for p in wanted if not any(c in p for c in "*?[")}  # a set: many patterns stay fast
    globs = [p for p in wanted if p not in exact]
    # missing values match no pattern (pandas 3 keeps NaN through astype(str))
    values = series.map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))
    return values.map(lambda v: v in exact or any(fnmatch.fnmatchcase(v, p) for p in globs)).astype(
        bool
    )


def is_baseline(frame: pd.DataFrame) -> pd.Series:
    """Rows of hand-made baselines (training method ``handcrafted``; for models registered
    before the taxonomy's training method was stored, an untrained model of family
    ``other``)."""
    trained = frame["trained"].astype("boolean").fillna(False)
    nothing = pd.Series(None, index=frame.index, dtype=object)
    method = frame.get("training_method", nothing)
    family = frame.get("family", nothing)
    return (method == "handcrafted") | (method.isna() & ~trained & (family == "other"))


def filter_scores(frame: pd.DataFrame, **filters: Any) -> pd.DataFrame:
    """Rows of ``frame`` whose columns match shell-style patterns (comma-separated allowed);
    ``trained=True`` keeps trained models, ``trained=False`` randomly initialised networks
    (not the hand-made baselines); ``baseline=True/False`` keeps or drops the baselines."""
    mask = pd.Series(True, index=frame.index)
    for column, value in filters.items():
        if value is None:
            continue
        if column == "trained":
            trained = frame["trained"].astype("boolean").fillna(False)
            mask &= trained if value else (~trained & ~is_baseline(frame))
        elif column == "baseline":
            mask &= is_baseline(frame) == bool(value)
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
    store = _store(db)
    prefilter = {k: v for k, v in filters.items() if k in _SQL_FILTERS and v is not None}
    frame = store.scores_frame(**prefilter)
    frame["best"] = ~frame["selection"].isin(NOT_SUMMARY)
    parameters, known = metric_configs(store)
    frame.insert(
        frame.columns.get_loc("metric_hash") + 1,
        "config",
        config_labels(frame, parameters, known),
    )
    return filter_scores(frame, **filters)


def metric_configs(
    db: str | Store | None = None,
) -> tuple[dict[tuple[str, str], Any], list[tuple[str, str]]]:
    """The parameters of every registered metric configuration, ``{(metric, hash):
    parameters}``, and the (metric, hash) pairs that have stored scores (so that a
    configuration's name does not depend on the filter)."""
    store = _store(db)
    metrics = store.metrics_frame()
    parameters = {
        (str(m), str(h)): p if isinstance(p, dict) else None
        for m, h, p in zip(
            metrics.get("identifier", []), metrics.get("config_hash", []),
            metrics.get("parameters", []), strict=True,
        )
    }  # fmt: skip
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT DISTINCT metric, metric_hash FROM scores").all()
    return parameters, sorted((str(m), str(h)) for m, h in rows)


def configurations(db: str | Store | None = None, **filters: Any) -> pd.DataFrame:
    """Every stored metric configuration: its name (as in the leaderboard's columns), the
    metric, the full configuration hash, its version and parameters and how many score rows
    it has. ``filters``: ``metric`` or ``config`` patterns."""
    store = _store(db)
    parameters, known = metric_configs(store)
    metrics = store.metrics_frame()
    versions = {
        (str(m), str(h)): v
        for m, h, v in zip(metrics.get("identifier", []), metrics.get("config_hash", []),
                           metrics.get("version", []), strict=True)
    }  # fmt: skip
    with store.engine.connect() as conn:
        counts = dict(
            ((str(m), str(h)), int(n))
            for m, h, n in conn.exec_driver_sql(
                "SELECT metric, metric_hash, COUNT(*) FROM scores GROUP BY metric, metric_hash"
            ).all()
        )
    pairs = sorted(set(known) | set(parameters))
    labels = config_label_map([*known, *pairs], parameters)
    rows = [
        {
            "config": labels[p],
            "metric": p[0],
            "metric_hash": p[1],
            "version": versions.get(p),
            "parameters": parameter_summary(parameters.get(p)) if parameters.get(p) is not None
            else "(not registered)",
            "n_scores": counts.get(p, 0),
        }
        for p in pairs
    ]  # fmt: skip
    frame = pd.DataFrame(
        rows, columns=["config", "metric", "metric_hash", "version", "parameters", "n_scores"]
    )
    frame = frame.sort_values(["metric", "config"], kind="stable")
    for column, value in filters.items():
        if value is None:
            continue
        if column not in ("metric", "config", "metric_hash"):
            raise InputError(f"unknown filter {column!r}; filters: metric, config, metric_hash.")
        frame = frame[_match(frame[column], value)]
    return frame.reset_index(drop=True)


# --------------------------------------------------------------------------- aggregation


def _ci(values: np.ndarray, ci: float, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean over units (see
    :func:`brainrank.leaderboard.ranking.bootstrap_mean_ci`)."""
    return bootstrap_mean_ci(values, ci, n_boot, seed)


def aggregate(
    frame: pd.DataFrame,
    over: str = "region",
    *,
    value: str = "score",
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    min_units: int = MIN_UNITS,
    species: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Means over regions, subjects or datasets, with bootstrap confidence intervals.

    - ``over="region"``: per (model, dataset, metric configuration, selection), the mean over
      regions of the subject-averaged scores; the CI resamples regions.
    - ``over="subject"``: the same with the roles of subjects and regions swapped.
    - ``over="dataset"``: per (model, metric configuration, selection), the mean over datasets
      of each dataset's mean (over subjects and regions); the CI resamples datasets.
      Simulated datasets (``species``: dataset -> species; a dataset named ``simulated``
      without one) are averaged apart from real ones (column ``data``).

    ``value`` is the column averaged (``score`` or ``normalized``). Returns one row per group
    with ``mean``, ``ci_low``, ``ci_high`` and ``n`` (the number of units averaged); the CI
    is NaN with fewer than ``min_units`` (5) units, where a bootstrap interval only brackets
    the units' min and max (``result.attrs["notes"]`` says so). Missing (NaN) scores are
    left out, not counted as 0.
    """
    if over not in AGGREGATE_OVER:
        raise InputError(f"over must be one of {AGGREGATE_OVER}, got {over!r}.")
    if value not in frame.columns:
        raise InputError(f"these rows have no column {value!r} to average.")
    config = ["config"] if "config" in frame.columns else []
    columns = ["model", "dataset", "metric", "metric_hash", *config, "selection", "mean",
               "ci_low", "ci_high", "n"]  # fmt: skip
    if over == "dataset":
        columns.remove("dataset")
        columns.insert(0, "data")
    if frame.empty:
        return pd.DataFrame(columns=columns)
    data = frame.dropna(subset=[value])
    if over == "dataset":
        data = data.assign(data=data_groups(data["dataset"], species).to_numpy())
        group = ["data", "model", "metric", "metric_hash", *config, "selection"]
        units = data.groupby([*group, "dataset"], sort=True)[value].mean().reset_index()
        unit = "dataset"
    else:
        group = ["model", "dataset", "metric", "metric_hash", *config, "selection"]
        unit = over  # the other of subject/region is averaged within each unit
        units = data.groupby([*group, unit], sort=True)[value].mean().reset_index()
    rows = []
    few = 0
    for key, part in units.groupby(group, sort=True):
        values = part[value].to_numpy(dtype=np.float64)
        if values.size >= min_units:
            low, high = _ci(values, ci, n_boot, seed)
        else:
            low, high, few = np.nan, np.nan, few + 1
        rows.append({**dict(zip(group, key, strict=True)), "mean": float(values.mean()),
                     "ci_low": low, "ci_high": high, "n": int(values.size)})  # fmt: skip
    out = pd.DataFrame(rows, columns=columns)
    out.attrs["notes"] = (
        [f"No confidence interval for {few} of {len(rows)} rows: fewer than {min_units} {unit}s "
         f"(n column); over so few, a bootstrap interval only brackets their min and max."]
        if few else []
    )  # fmt: skip
    return out


def rank_frame(
    frame: pd.DataFrame,
    *,
    selection: str | None = None,
    value: str = "auto",
    ci: float | None = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    species: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Models ranked on score rows already read (see :mod:`brainrank.leaderboard.ranking`
    for the definition): one row per model and data group (``data``: real or simulated,
    ranked apart), ``mean`` over the (dataset, configuration) columns of the cells every
    model has, ``n_cells`` and ``n_missing``; ``attrs["notes"]`` says what was ranked."""
    return combined(
        rank_models(
            frame, selection=selection, value=value, ci=ci, n_boot=n_boot, seed=seed,
            species=species,
        )
    )  # fmt: skip


def species_of(db: str | Store | None = None) -> dict[str, Any]:
    """dataset -> species, from the datasets the leaderboard has registered."""
    datasets = _store(db).datasets_frame()
    if datasets.empty:
        return {}
    return dict(zip(datasets["identifier"], datasets["species"], strict=True))


def rankings(
    db: str | Store | None = None,
    selection: str | None = None,
    *,
    ci: float | None = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    value: str = "auto",
    **filters: Any,
) -> list[Ranking]:
    """The rankings (real data, simulated data) of the stored summary scores: the objects
    behind :func:`ranking`, with their cells, excluded cells and notes."""
    store = _store(db)
    if selection is None:
        wanted = ",".join(HEADLINE_SELECTIONS)
    else:  # every summary policy, so that columns without the one asked for are named
        policies = [p for p in store.distinct_values()["selection"] if p not in NOT_SUMMARY]
        wanted = ",".join(policies) or selection
    frame = scores(store, selection=wanted, **filters)
    return rank_models(
        frame, selection=selection, value=value, ci=ci, n_boot=n_boot, seed=seed,
        species=species_of(store),
    )  # fmt: skip


def ranking(
    db: str | Store | None = None,
    selection: str | None = None,
    *,
    ci: float | None = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    value: str = "auto",
    **filters: Any,
) -> pd.DataFrame:
    """Models ranked like with like (the one definition of
    :mod:`brainrank.leaderboard.ranking`, shared with the CLI, report and web page).

    Default: per (dataset, metric configuration) the ``heldout`` layer choice where stored,
    else ``max``; ceiling-normalised where a ceiling exists; only the cells every model has;
    simulated data ranked apart from real data (column ``data``). The notes
    (``result.attrs["notes"]``) say what was ranked and what was left out."""
    return combined(
        rankings(db, selection, ci=ci, n_boot=n_boot, seed=seed, value=value, **filters)
    )


# --------------------------------------------------------------------------- one model


def layer_curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-layer rows in depth order: one curve per (model, dataset, metric configuration,
    subject, region), x = ``relative_depth`` (0 = first layer, 1 = last)."""
    rows = frame[frame["selection"] == "layer"]
    keys = ["model", "dataset", "metric", "metric_hash", "subject", "region", "layer_index"]
    config = ["config"] if "config" in frame.columns else []
    columns = [*keys, *config, "layer", "relative_depth", "score", "normalized", "n_neuroids"]
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
    summary = frame[~frame["selection"].isin(NOT_SUMMARY)]
    summary = summary.sort_values(["dataset", "metric", "config", "selection", "subject", "region"])
    columns = ["dataset", "metric", "metric_hash", "config", "selection", "subject", "region",
               "layer",
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
    task_cluster, training_data, training_method, trained, baseline)."""
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
