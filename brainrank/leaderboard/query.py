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
:func:`brainrank.core.stats.bootstrap_ci`, brainrank's one bootstrap).
"""

from __future__ import annotations

import fnmatch
import functools
import math
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from brainrank.core.errors import InputError
from brainrank.core.scores import ceiling_usable
from brainrank.leaderboard.ranking import (
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
    row_flags,
)
from brainrank.leaderboard.store import Store, open_store

F = TypeVar("F", bound=Callable[..., Any])

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


def split_patterns(text: str) -> list[str]:
    """Comma-separated patterns, split only at commas outside parentheses and brackets, so
    that a configuration name such as ``srp-ridge:mouse(alphas=1, standardize=all)`` is one
    pattern."""
    out, depth, current = [], 0, []
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}" and depth:
            depth -= 1
        if char == "," and depth == 0:
            out.append("".join(current))
            current = []
        else:
            current.append(char)
    out.append("".join(current))
    return [p.strip() for p in out if p.strip()]


def _patterns(patterns: str | Iterable[str]) -> list[str]:
    if isinstance(patterns, str):
        return split_patterns(patterns)
    return [str(p) for p in patterns]


def _match(series: pd.Series, patterns: str | Iterable[str]) -> pd.Series:
    wanted = _patterns(patterns)
    exact = set(wanted)  # a name equal to a pattern matches it, brackets and all
    globs = [p for p in wanted if any(c in p for c in "*?[")]
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
    """The leaderboard ``db`` names (an open store, a path, a URL; None: the configured one).
    Reading never creates one: a path where there is no leaderboard is refused, as the
    command line refuses it."""
    return db if isinstance(db, Store) else open_store(db, create=False)


def _names_a_leaderboard(value: Any) -> bool:
    """A positional value that can only mean a leaderboard: a database URL, or the path of
    a file that exists."""
    if not isinstance(value, (str, os.PathLike)):
        return False
    text = os.fspath(value)
    return "://" in text or os.path.isfile(text)


def leaderboard_keyword(*legacy: str, own: int = 0) -> Callable[[F], F]:
    """The leaderboard is the keyword argument ``db`` of the decorated function.

    Calls written before it was (the leaderboard first, then ``legacy`` positionals) still
    work: an open :class:`Store` first is taken as it is; ``None`` or an existing file or
    URL is taken with a :class:`DeprecationWarning`. Anything else first is refused with a
    message naming the keyword, so that ``scores("baseline/pixels")`` never makes a new,
    empty leaderboard called ``baseline/pixels`` (it did). ``own``: how many positional
    arguments the function itself takes (``model_detail(model)``)."""

    def wrap(function: F) -> F:
        name = function.__name__

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            if "db" in kwargs or len(args) <= own:
                return function(*args, **kwargs)
            first, rest = args[0], args[1:]
            if not isinstance(first, Store):
                if first is not None and not _names_a_leaderboard(first):
                    raise InputError(
                        f"{name}({first!r}, ...): {first!r} is not a leaderboard (no such "
                        "file, and not a database URL). The leaderboard is the keyword "
                        f"argument db= (a path, a URL or leaderboard.open_store(...); default: "
                        f"the configured one); filters are keywords too, e.g. {name}("
                        f"model={first!r}) or {name}(db='lab.db', model=...)."
                    )
                warnings.warn(
                    f"{name}(): the leaderboard as the first positional argument is "
                    f"deprecated; give it as db= ({name}(db={first!r}, ...)).",
                    DeprecationWarning,
                    stacklevel=2,
                )
            positional, extra = rest[:own], rest[own:]
            if len(extra) > len(legacy):
                raise InputError(
                    f"{name}() takes {own} positional argument(s) and the keyword db=; got "
                    f"{len(args)} positional arguments."
                )
            kwargs.update(zip(legacy, extra, strict=False))
            return function(*positional, db=first, **kwargs)

        return call  # type: ignore[return-value]

    return wrap


@leaderboard_keyword()
def scores(*, db: str | Store | None = None, **filters: Any) -> pd.DataFrame:
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
    parameters, known, defaults = _metric_configs(store)
    frame.insert(
        frame.columns.get_loc("metric_hash") + 1,
        "config",
        config_labels(frame, parameters, known, defaults),
    )
    frame["normalized"] = normalized_values(frame)
    frame["flag"] = row_flags(frame)
    return filter_scores(frame, **filters)


def normalized_values(frame: pd.DataFrame) -> pd.Series:
    """``score / ceiling`` where the ceiling is usable (its lower confidence bound, or the
    ceiling itself where no interval is stored, above
    :data:`~brainrank.core.scores.CEILING_FLOOR`), else NaN: the rule every view applies,
    also to rows stored before it."""
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=np.float64)
    score = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=np.float64)
    ceiling = pd.to_numeric(frame["ceiling"], errors="coerce").to_numpy(dtype=np.float64)
    low = (
        pd.to_numeric(frame["ceiling_low"], errors="coerce").to_numpy(dtype=np.float64)
        if "ceiling_low" in frame.columns
        else np.full(len(frame), np.nan)
    )
    usable = np.array([ceiling_usable(c, lo) for c, lo in zip(ceiling, low, strict=True)], bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.Series(np.where(usable, score / ceiling, np.nan), index=frame.index)


def metric_configs(
    db: str | Store | None = None,
) -> tuple[dict[tuple[str, str], Any], list[tuple[str, str]]]:
    """The parameters of every registered metric configuration, ``{(metric, hash):
    parameters}``, and the (metric, hash) pairs that have stored scores (so that a
    configuration's name does not depend on the filter)."""
    parameters, known, _ = _metric_configs(db)
    return parameters, known


def _metric_configs(
    db: str | Store | None = None,
) -> tuple[dict[tuple[str, str], Any], list[tuple[str, str]], dict[tuple[str, str], Any]]:
    """:func:`metric_configs` and the parameters of the preset each configuration was built
    from (``defaults``; ``None`` where not recorded)."""
    store = _store(db)
    metrics = store.metrics_frame()
    pairs = list(zip(metrics.get("identifier", []), metrics.get("config_hash", []), strict=True))
    parameters = {
        (str(m), str(h)): p if isinstance(p, dict) else None
        for (m, h), p in zip(pairs, metrics.get("parameters", []), strict=True)
    }
    defaults = {
        (str(m), str(h)): d if isinstance(d, dict) else None
        for (m, h), d in zip(pairs, metrics.get("defaults", [None] * len(pairs)), strict=True)
    }
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT DISTINCT metric, metric_hash FROM scores").all()
    return parameters, sorted((str(m), str(h)) for m, h in rows), defaults


@leaderboard_keyword()
def configurations(*, db: str | Store | None = None, **filters: Any) -> pd.DataFrame:
    """Every stored metric configuration: its name (as in the leaderboard's columns), the
    metric, the full configuration hash, its version and parameters and how many score rows
    it has. ``filters``: ``metric`` or ``config`` patterns."""
    store = _store(db)
    parameters, known, defaults = _metric_configs(store)
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
    labels = config_label_map([*known, *pairs], parameters, defaults)
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


@leaderboard_keyword()
def species_of(*, db: str | Store | None = None) -> dict[str, Any]:
    """dataset -> species, from the datasets the leaderboard has registered."""
    datasets = _store(db).datasets_frame()
    if datasets.empty:
        return {}
    return dict(zip(datasets["identifier"], datasets["species"], strict=True))


@leaderboard_keyword("selection")
def rankings(
    *,
    db: str | Store | None = None,
    selection: str | None = None,
    ci: float | None = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    value: str = "auto",
    include_uncalibrated: bool | None = None,
    intervals: bool | Callable[..., Any] = False,
    **filters: Any,
) -> list[Ranking]:
    """The rankings (real data, simulated data) of the stored summary scores: the objects
    behind :func:`ranking`, with their cells, excluded cells and notes.
    ``include_uncalibrated``: rank configurations that are not calibrated too (default:
    only when a ``config`` or ``metric`` filter is given, i.e. when they are asked for by
    name). ``intervals``: add ``rank_low`` and ``rank_high``, each model's 95% rank
    interval from a paired bootstrap over subjects or neuroids
    (:mod:`brainrank.leaderboard.uncertainty`; ``n_boot`` draws, ``seed``); a callable is
    passed to :func:`~brainrank.leaderboard.ranking.rank_models` as its ``rank_intervals``."""
    store = _store(db)
    # every summary policy: each metric's declared row is chosen per configuration, and
    # columns without the policy asked for are named
    policies = [p for p in store.distinct_values()["selection"] if p not in NOT_SUMMARY]
    wanted = ",".join(policies) or (selection or "max")
    frame = scores(db=store, selection=wanted, **filters)
    if include_uncalibrated is None:  # a configuration named by a filter is ranked
        include_uncalibrated = bool(filters.get("config") or filters.get("metric"))
    source = intervals if callable(intervals) else None
    if intervals is True:
        from brainrank.leaderboard.uncertainty import interval_source

        source = interval_source(store, n_boot=n_boot, seed=seed)
    return rank_models(
        frame, selection=selection, value=value, ci=ci, n_boot=n_boot, seed=seed,
        species=species_of(db=store), include_uncalibrated=include_uncalibrated,
        rank_intervals=source,
    )  # fmt: skip


@leaderboard_keyword("selection")
def ranking(
    *,
    db: str | Store | None = None,
    selection: str | None = None,
    ci: float | None = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    value: str = "auto",
    include_uncalibrated: bool | None = None,
    intervals: bool = False,
    **filters: Any,
) -> pd.DataFrame:
    """Models ranked like with like (the one definition of
    :mod:`brainrank.leaderboard.ranking`, shared with the CLI, report and web page).

    Default: per (dataset, metric configuration) the row its metric declares leak-free
    (``heldout``, ``stacked``, ``generalisation``); calibrated configurations only (one that
    is not is ranked when named by ``config=``/``metric=`` or ``include_uncalibrated=True``,
    with a ``(chance)`` column beside each of its columns); ceiling-normalised where the
    ceiling is usable; only the cells every model has; simulated data ranked apart from real
    data (column ``data``). The notes (``result.attrs["notes"]``) say what was ranked and
    what was left out. ``intervals``: each model's rank interval (``rank_low``,
    ``rank_high``; see :func:`rankings`)."""
    return combined(
        rankings(
            db=db,
            selection=selection,
            ci=ci,
            n_boot=n_boot,
            seed=seed,
            value=value,
            include_uncalibrated=include_uncalibrated,
            intervals=intervals,
            **filters,
        )
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


@leaderboard_keyword(own=1)
def model_detail(model: str, *, db: str | Store | None = None) -> dict[str, Any]:
    """One model: ``metadata`` (dict), ``summary`` (its layer-choice rows per dataset,
    metric, subject and region) and ``layers`` (its per-layer curves)."""
    store = _store(db)
    frame = scores(db=store, model=model)
    models = store.models_frame()
    known = models[models["identifier"] == model]
    if frame.empty and known.empty:
        import difflib

        stored = sorted(set(models["identifier"]) | set(scores(db=store)["model"]))
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


@leaderboard_keyword()
def per_neuroid(*, db: str | Store | None = None, **filters: Any) -> pd.DataFrame:
    """Per-neuroid values behind the matching score rows, one row per (score, neuroid).

    Summary rows (``selection="max"``...) whose values are those of their layer's row are
    stored once, with the layer row; they are followed to it here.
    """
    store = _store(db)
    frame = scores(db=store, **filters)
    if frame.empty:
        return pd.DataFrame(columns=[*SCORE_COLUMNS, "neuroid_id", "value"])
    arrays = store.neuroid_values(frame["score_id"].tolist())
    missing = frame[~frame["score_id"].isin(arrays) & (frame["selection"] != "layer")]
    if not missing.empty:  # follow summary rows to their layer's row
        layer_rows = scores(
            db=store,
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


@leaderboard_keyword()
def models(*, db: str | Store | None = None, **filters: Any) -> pd.DataFrame:
    """The scored models with their metadata (filters: model, family, source, task,
    task_cluster, training_data, training_method, trained, baseline)."""
    frame = _store(db).models_frame().rename(columns={"identifier": "model"})
    return filter_scores(frame, **filters)


@leaderboard_keyword()
def runs(*, db: str | Store | None = None) -> pd.DataFrame:
    """Every run with its provenance (code version, git revision, packages, configuration,
    seeds, executor, host, start and end)."""
    return _store(db).runs_frame()


@leaderboard_keyword("run")
def failures(
    *, db: str | Store | None = None, run: int | None = None, **filters: Any
) -> pd.DataFrame:
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


# --------------------------------------------------------------------------- for the web site

#: columns of :attr:`Ranking.cells` that locate a cell; any other column the ranking adds
#: (flags, chance levels, ceiling bounds...) is passed on as the cell's own information
_CELL_KEYS = ("model", "dataset", "config", "region", "subject", "selection", "value", "metric",
              "metric_hash")  # fmt: skip
#: columns of the models table that are not a taxonomy to filter on
_NOT_TAXONOMY = ("identifier", "model", "details", "updated_at", "plugin", "weights_hash",
                 "architecture", "n_params", "input_size", "description", "trained")  # fmt: skip
#: a model column with more distinct values than this is shown, not offered as a filter
MAX_FILTER_VALUES = 40


def model_kind(frame: pd.DataFrame) -> pd.Series:
    """``baseline`` (a hand-made feature set: training method ``handcrafted``, or a model of
    the ``baseline`` source; see :func:`is_baseline`), else ``trained`` or ``random`` from the
    ``trained`` flag; one value per row of a models frame (``source``, ``trained``;
    ``training_method`` and ``family`` where the table has them). A randomly initialised
    network (training method ``none``) is ``random``, never a baseline."""
    source = frame.get("source", pd.Series("", index=frame.index)).fillna("").astype(str)
    trained = frame.get("trained", pd.Series(True, index=frame.index))
    trained = trained.astype("boolean").fillna(True)
    kind = np.where(trained.to_numpy(dtype=bool), "trained", "random").astype(object)
    with_columns = frame.assign(trained=trained)
    for column in ("training_method", "family"):
        if column not in with_columns.columns:
            with_columns[column] = None
    baseline = is_baseline(with_columns) | (source == "baseline")
    kind[baseline.to_numpy(dtype=bool)] = "baseline"
    return pd.Series(kind, index=frame.index, dtype=object)


@leaderboard_keyword()
def model_table(*, db: str | Store | None = None) -> pd.DataFrame:
    """The models table as the site shows it: every stored column (new taxonomy fields
    appear without code changes) but ``details``, whose keys become columns too, plus
    ``kind`` (see :func:`model_kind`) and ``scored`` (whether it has scores)."""
    store = _store(db)
    frame = store.models_frame()
    details = frame.pop("details") if "details" in frame.columns else None
    if details is not None:
        extra = pd.DataFrame([d if isinstance(d, dict) else {} for d in details], index=frame.index)
        extra = extra[[c for c in extra.columns if c not in frame.columns]]
        frame = pd.concat([frame, extra], axis=1)
    frame = frame.rename(columns={"identifier": "model"})
    frame["kind"] = model_kind(frame)
    scored = set(store.distinct_values()["model"])
    frame["scored"] = frame["model"].isin(scored)
    missing = sorted(scored - set(frame["model"]))  # scores of a model never registered
    if missing:
        extra_rows = pd.DataFrame({"model": missing, "kind": "trained", "scored": True})
        frame = pd.concat([frame, extra_rows], ignore_index=True)
    return frame.sort_values("model", kind="stable").reset_index(drop=True)


def taxonomy(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """The model columns to filter on and their values: every column of
    :func:`model_table` with between 1 and :data:`MAX_FILTER_VALUES` distinct text or
    true/false values (``kind`` first; ``kind`` stands for ``trained``)."""
    out: dict[str, list[Any]] = {}
    for column in ["kind", *[c for c in frame.columns if c != "kind"]]:
        if column in _NOT_TAXONOMY or column == "scored" or column not in frame.columns:
            continue
        values = frame[column].dropna()
        if values.empty or not all(isinstance(v, (str, bool, np.bool_)) for v in values):
            continue
        distinct = sorted({v.item() if isinstance(v, np.generic) else v for v in values},
                          key=str)  # fmt: skip
        if 1 <= len(distinct) <= MAX_FILTER_VALUES:
            out[column] = distinct
    return out


@leaderboard_keyword()
def dataset_regions(*, db: str | Store | None = None) -> dict[str, list[str]]:
    """dataset -> its regions in the dataset's own order (as its plugin declares them, then
    any other stored region in alphabetical order)."""
    store = _store(db)
    declared: dict[str, list[str]] = {}
    datasets = store.datasets_frame()
    for identifier, details in zip(datasets.get("identifier", []), datasets.get("details", []),
                                   strict=True):  # fmt: skip
        regions = details.get("regions") if isinstance(details, dict) else None
        declared[str(identifier)] = [str(r) for r in regions or []]
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT DISTINCT dataset, region FROM scores").all()
    found: dict[str, set[str]] = {}
    for dataset, region in stored:
        found.setdefault(str(dataset), set()).add(str(region))
    out = {}
    for dataset in sorted(set(declared) | set(found)):
        order = [r for r in declared.get(dataset, []) if r in found.get(dataset, set())]
        out[dataset] = order + sorted(found.get(dataset, set()) - set(order))
    return out


def _flags(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Iterable):
        return [str(v) for v in value if v is not None and str(v)]
    return [str(value)]


def ranking_cells(found: Sequence[Ranking]) -> pd.DataFrame:
    """What each ranking column is made of, for display: one row per (data, model, column,
    region, subject) ranked cell, and one per (data, model, column, region) with ``subject``
    None holding the region's value as the ranking computes it (the mean over subjects; a
    column's value is the mean of these over its regions).

    ``flags`` (a list of sentences) and ``extra`` (a dict) carry whatever else the ranking
    attaches to a cell: a ``flags``/``flag``/``notes``/``note`` column of
    :attr:`Ranking.cells` becomes ``flags``, any other column (a chance level, a ceiling
    bound...) goes into ``extra``. A region row lists the distinct flags of its cells."""
    columns = ["data", "model", "column", "dataset", "config", "region", "subject", "value",
               "flags", "extra"]  # fmt: skip
    parts = []
    for r in found:
        cells = r.cells
        if cells is None or cells.empty:
            continue
        flag_columns = [c for c in ("flags", "flag", "notes", "note") if c in cells.columns]
        extra_columns = [c for c in cells.columns if c not in _CELL_KEYS and c not in flag_columns]
        rows = []
        for record in cells.to_dict(orient="records"):
            flags = [f for c in flag_columns for f in _flags(record.get(c))]
            extra = {c: record[c] for c in extra_columns if not _missing(record.get(c))}
            rows.append(
                {"data": r.group, "model": record["model"],
                 "column": f"{record['dataset']}/{record['config']}",
                 "dataset": record["dataset"], "config": record["config"],
                 "region": str(record["region"]), "subject": str(record["subject"]),
                 "value": float(record["value"]), "flags": flags, "extra": extra}
            )  # fmt: skip
        subject_rows = pd.DataFrame(rows, columns=columns)
        keys = ["data", "model", "column", "dataset", "config", "region"]
        region_rows = (
            subject_rows.groupby(keys, sort=True)
            .agg(
                value=("value", "mean"),
                flags=("flags", lambda s: sorted({f for fl in s for f in fl})),
            )
            .reset_index()
        )
        region_rows["subject"] = None
        region_rows["extra"] = [{} for _ in range(len(region_rows))]
        parts += [region_rows[columns], subject_rows]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


@leaderboard_keyword()
def ceilings(
    *, db: str | Store | None = None, frame: pd.DataFrame | None = None, **filters: Any
) -> pd.DataFrame:
    """The stored ceilings per (dataset, metric configuration, region, subject): ``ceiling``
    (the value every row of that cell stores; the median where rows disagree, with
    ``n_values`` > 1 saying so) and any ``ceiling_*`` column the store keeps (bounds).
    ``filters``: as :func:`scores`; or ``frame``, rows of :func:`scores` already read."""
    if frame is None:
        frame = scores(db=db, **filters)
    keys = ["dataset", "metric", "config", "region", "subject"]
    extra = [c for c in frame.columns if c.startswith("ceiling_")]
    columns = [*keys, "ceiling", "n_values", *extra]
    frame = frame.dropna(subset=["ceiling"])
    if frame.empty:
        return pd.DataFrame(columns=columns)
    grouped = frame.groupby(keys, sort=True)
    out = grouped["ceiling"].median().rename("ceiling").to_frame()
    out["n_values"] = grouped["ceiling"].nunique()
    for column in extra:
        out[column] = grouped[column].median()
    return out.reset_index()[columns]


def layer_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-layer curves averaged over subjects: one row per (model, dataset, configuration,
    region, layer) with the mean ``score`` (and ``normalized``) over the subjects that have
    it, ``n_subjects``, and the band of the region's ceiling over subjects (``ceiling_low``,
    ``ceiling_high``: the lowest lower 95% bound and the highest upper bound of the
    subjects' ceilings, the ceilings themselves where no interval is stored). ``frame``:
    rows of :func:`scores` (per-layer rows are used)."""
    columns = ["model", "dataset", "metric", "config", "region", "layer_index", "layer",
               "relative_depth", "score", "normalized", "n_subjects", "ceiling_low",
               "ceiling_high"]  # fmt: skip
    rows = frame[frame["selection"] == "layer"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows = rows.assign(
        _low=rows["ceiling_low"].fillna(rows["ceiling"])
        if "ceiling_low" in rows
        else rows["ceiling"],
        _high=rows["ceiling_high"].fillna(rows["ceiling"])
        if "ceiling_high" in rows
        else rows["ceiling"],
    )
    keys = ["model", "dataset", "metric", "config", "region", "layer_index", "layer"]
    grouped = rows.groupby(keys, sort=True, dropna=False)
    out = grouped.agg(
        relative_depth=("relative_depth", "mean"),
        score=("score", "mean"),
        normalized=("normalized", "mean"),
        n_subjects=("subject", "nunique"),
        ceiling_low=("_low", "min"),
        ceiling_high=("_high", "max"),
    ).reset_index()
    return out[columns].sort_values(["model", "dataset", "config", "region", "layer_index"],
                                    kind="stable").reset_index(drop=True)  # fmt: skip


def metric_info(identifier: str) -> dict[str, Any]:
    """A metric's description and citation from its plugin, where the plugin is installed
    (an empty dict otherwise: a leaderboard can hold metrics this installation lacks)."""
    try:
        from brainrank.core.registry import get_registry

        spec = get_registry().get("metric", identifier)
    except Exception:  # an unknown or broken plugin: the page shows what the store has
        return {}
    return {"description": spec.metadata.description, "citation": spec.metadata.citation,
            "plugin": spec.plugin}  # fmt: skip
