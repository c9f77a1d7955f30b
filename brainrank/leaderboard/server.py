"""``brainrank serve``: the leaderboard web site and its JSON API (FastAPI on uvicorn).

The site (``static/index.html``, ``static/app.js``, ``static/style.css`` and the vendored
chart library under ``static/vendor/``, all package data: it needs no external resource and
works offline) shows what this API answers; it computes no leaderboard arithmetic of its
own. Every number comes from :mod:`brainrank.leaderboard.ranking` (the one ranking
definition, shared with the CLI and the report) and the read functions of
:mod:`brainrank.leaderboard.query`.

JSON API (every answer is an object; errors are ``{"error": message}``: 400 for a bad
parameter, unknown parameters included, 404 for an unknown model, dataset or endpoint).
The OpenAPI schema is served at ``/api/openapi.json``.

- ``/api/``: the endpoints;
- ``/api/options``: the values the filters take, the model taxonomy, the model count;
- ``/api/ranking``: the ranking (``rows`` as before, plus ``column_info`` and per-row
  ``cells``: region and subject values of every column with the flags the ranking attaches
  to a cell), filtered by the leaderboard filters and the model taxonomy;
- ``/api/scores``: score rows (filters, ``selection``, ``limit``);
- ``/api/models``: the models with their taxonomy (``kind``: trained, random, baseline);
- ``/api/model?id=MODEL``: metadata, summary rows, per-layer rows and subject-averaged
  curves, provenance (runs, hashes, code versions);
- ``/api/dataset?id=DATASET``: metadata, description, citation, regions in order, the
  metric configurations scored on it, ceilings per region and subject;
- ``/api/metrics``: the metric configurations with their parameters;
- ``/api/compare?x=COLUMN&y=COLUMN``: two columns of the ranking (``mean``, a column,
  ``COLUMN|REGION[|SUBJECT]``) per model, with Spearman's r (the ranking's filters apply);
- ``/api/runs``: runs with provenance, stage seconds and fits per second;
- ``/api/failures?run=N``: recorded failures.

Changes from the earlier ``http.server`` API: unknown query parameters are now refused (400)
instead of ignored; ``/api/ranking`` answers have the extra keys ``column_info``,
``model_count`` and, per row, ``kind`` and ``cells``; ``/api/model`` has ``curves`` and
``provenance``; ``/api/models`` rows have ``model`` (was ``identifier``), ``kind`` and the
keys of ``details``.
"""

from __future__ import annotations

import inspect
import logging
import math
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from importlib import resources
from typing import Any, Literal

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from brainrank.core.errors import BrainrankError, InputError
from brainrank.leaderboard import palette
from brainrank.leaderboard.query import (
    PATTERN_COLUMNS,
    ceilings,
    configurations,
    dataset_regions,
    layer_curves,
    layer_means,
    metric_info,
    model_table,
    ranking_cells,
    rankings,
    scores,
    species_of,
    taxonomy,
)
from brainrank.leaderboard.ranking import (
    HEADLINE_SELECTIONS,
    NOT_SUMMARY,
    SIMULATED,
    combined,
    data_groups,
    describe,
)
from brainrank.leaderboard.store import Store

log = logging.getLogger(__name__)

ENDPOINTS = {
    "/api/options": "values the filters can take, the model taxonomy and the model count",
    "/api/ranking": "models ranked, with 95% bootstrap CIs (filters as query parameters)",
    "/api/scores": "score rows (filters, selection, limit)",
    "/api/models": "models and their metadata (kind: trained, random or baseline)",
    "/api/model?id=MODEL": "one model: metadata, summary rows, layer curves, provenance",
    "/api/dataset?id=DATASET": "one dataset: metadata, metric configurations, ceilings",
    "/api/metrics": "metric configurations with their parameters",
    "/api/compare?x=COLUMN&y=COLUMN": "two ranking columns per model, with Spearman's r",
    "/api/runs": "runs with their provenance, stage seconds and fits per second",
    "/api/failures": "recorded failures (run=N for one run)",
    "/api/openapi.json": "the OpenAPI schema of this API",
}
SCORE_COLUMNS = [
    "model",
    "dataset",
    "metric",
    "config",
    "subject",
    "region",
    "layer",
    "selection",
    "score",
    "ceiling",
    "normalized",
    "ci_low",
    "ci_high",
    "n_neuroids",
    "layer_index",
    "relative_depth",
    "family",
    "trained",
]
#: the kinds of model (see :func:`brainrank.leaderboard.query.model_kind`)
KINDS = ("trained", "random", "baseline")
#: a configuration name longer than this gets a short column header (full name in a tooltip)
SHORT_HEADER = 18
DEFAULT_LIMIT = 5000
MAX_LIMIT = 1_000_000
#: models overlaid on the model page's layer curves at most
MAX_OVERLAY = 4


class NotFound(BrainrankError):
    pass


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    frame = frame.astype(object).where(frame.notna(), None)
    return [_clean(row) for row in frame.to_dict(orient="records")]


def _trained(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "trained"):
        return True
    if lowered in ("false", "0", "no", "random"):
        return False
    raise InputError(f"trained must be true or false, not {value!r}.")


def short_headers(columns: list[tuple[str, str, str]]) -> dict[str, str]:
    """A short header per (column, metric, config): the configuration's name when it is
    short, else ``metric [n]`` numbering that metric's configurations (the full name goes in
    the header's tooltip and the legend)."""
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for key, metric, config in columns:
        if len(config) <= SHORT_HEADER:
            out[key] = config
            continue
        seen[metric] = seen.get(metric, 0) + 1
        base = metric if len(metric) <= SHORT_HEADER else metric[: SHORT_HEADER - 1] + "…"
        out[key] = f"{base} [{seen[metric]}]"
    return out


class LeaderboardAPI:
    """The JSON answers, independent of HTTP (tested directly and through the server)."""

    def __init__(self, store: Store, cache_size: int = 64):
        self.store = store
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _version(self) -> tuple:
        """Changes whenever scores, models or runs are written, so cached answers are never
        stale."""
        with self.store.engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT (SELECT COUNT(*) FROM scores), (SELECT MAX(updated_at) FROM scores), "
                "(SELECT MAX(updated_at) FROM models), (SELECT COUNT(*) FROM runs)"
            ).one()
        return tuple(str(v) for v in row)

    def cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
        key = (*key, self._version())
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = compute()
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return value

    # ------------------------------------------------------------------ models

    def _models(self) -> pd.DataFrame:
        return self.cached(("model_table",), lambda: model_table(self.store))

    def _model_filter(
        self, kind: str | None, where: list[str], model: str | None
    ) -> tuple[str | None, list[str]]:
        """The ``model`` filter that applies ``kind`` and ``where`` (``field:value,value``
        on the model table), and sentences saying what was filtered."""
        if not kind and not where:
            return model, []
        table = self._models()
        fields = taxonomy(table)
        mask = pd.Series(True, index=table.index)
        said = []
        conditions = ([f"kind:{kind}"] if kind else []) + list(where)
        for condition in conditions:
            name, sep, values = condition.partition(":")
            name = name.strip()
            if not sep or not name or not values.strip():
                raise InputError(
                    f"where takes FIELD:VALUE[,VALUE...] (e.g. where=family:convnet), not "
                    f"{condition!r}."
                )
            if name not in fields:
                raise InputError(
                    f"no model field {name!r} to filter on; fields: {', '.join(fields)}."
                )
            wanted = [v.strip() for v in values.split(",") if v.strip()]
            values_of = KINDS if name == "kind" else [str(v) for v in fields[name]]
            unknown = [v for v in wanted if v.lower() not in {k.lower() for k in values_of}]
            if unknown:
                raise InputError(
                    f"{name} has no value {', '.join(map(repr, unknown))}; values: "
                    f"{', '.join(values_of)}."
                )
            column = table[name].map(lambda v: str(v).lower() if v is not None else "")
            mask &= column.isin({v.lower() for v in wanted})
            said.append(f"{name} is {' or '.join(wanted)}")
        chosen = table.loc[mask, "model"].tolist()
        if model:
            from brainrank.leaderboard.query import filter_scores

            chosen = filter_scores(pd.DataFrame({"model": chosen}), model=model)["model"].tolist()
        return ",".join(chosen) if chosen else "", said

    # ------------------------------------------------------------------ answers

    def options(self) -> dict[str, Any]:
        values = self.store.distinct_values()
        plural = {
            "dataset": "datasets",
            "metric": "metrics",
            "region": "regions",
            "subject": "subjects",
            "family": "families",
            "selection": "selections",
        }
        out: dict[str, Any] = {name: values[column] for column, name in plural.items()}
        # metric configurations by the name the ranking's columns use (never averaged)
        out["configs"] = sorted(set(configurations(self.store)["config"]))
        table = self._models()
        scored = table[table["scored"]]
        out["taxonomy"] = _clean(taxonomy(scored))
        out["n_models"] = len(values["model"])
        out["n_scores"] = self.store.count("scores")
        out["leaderboard"] = self.store.display_url
        species = species_of(self.store)
        groups = data_groups(pd.Series(values["dataset"], dtype=object), species)
        out["simulated_datasets"] = [d for d, g in zip(values["dataset"], groups, strict=True)
                                     if g == SIMULATED]  # fmt: skip
        out["region_order"] = dataset_regions(self.store)
        out["headline_selections"] = list(HEADLINE_SELECTIONS)
        out["palette"] = palette.as_json()  # the report's colours (leaderboard/palette.py)
        return out

    def ranking(
        self,
        *,
        filters: dict[str, Any],
        kind: str | None = None,
        where: list[str] | None = None,
        selection: str | None = None,
        value: str = "auto",
        ci: bool = True,
    ) -> dict[str, Any]:
        """The ranking of :mod:`brainrank.leaderboard.ranking` (as the CLI and the report):
        ``rows`` with ``data`` (real / simulated, ranked apart), ``columns`` (dataset /
        configuration), ``column_info``, per-row ``cells``, ``notes`` and, per group, the
        cells left out."""
        if selection == "layer":
            raise InputError("rank on a layer-choice policy (max, heldout...), not 'layer'.")
        filters = {k: v for k, v in filters.items() if v not in (None, "")}
        model, said = self._model_filter(kind, where or [], filters.pop("model", None))
        if model == "":  # the taxonomy filters leave no model
            found = []
        else:
            if model is not None:
                filters["model"] = model
            found = rankings(self.store, selection, value=value, ci=0.95 if ci else None,
                             **filters)  # fmt: skip
        table = combined(found)
        models = self._models().set_index("model")
        fixed = {"data", "rank", "model", "mean", "n_cells", "n_missing", "ci_low", "ci_high"}
        columns = [c for c in table.columns if c not in fixed]
        if not table.empty:
            for position, name in ((3, "family"), (4, "trained"), (5, "kind")):
                column = models[name] if name in models.columns else pd.Series(dtype=object)
                table.insert(position, name, [column.get(m) for m in table["model"]])
        regions = dataset_regions(self.store)
        cells = ranking_cells(found)
        known = configurations(self.store)
        metric_of = dict(zip(known["config"], known["metric"], strict=True))
        column_info = self._column_info(found, cells, regions, metric_of)
        rows = _records(table)
        by_row = self._row_cells(cells)
        for row in rows:
            row["cells"] = by_row.get((row["data"], row["model"]), {})
        groups = [
            {
                "data": r.group,
                "title": r.title,
                "columns": r.columns,
                "with_ci": r.with_ci,
                "n_units": r.n_units,
                "notes": r.notes,
                "excluded": [
                    {"cell": e.cell, "missing_for": list(e.missing_for)}
                    for e in r.excluded.itertuples()
                ],
            }
            for r in found
        ]
        notes = describe(found) if found else ["No model matches these filters."]
        if said:
            notes.insert(0, "Models where " + " and ".join(said) + ".")
        return {
            "columns": columns,
            "column_info": column_info,
            "selection": selection or "the row each metric declares leak-free",
            "value": value,
            "notes": notes,
            "groups": groups,
            "model_count": len({r["model"] for r in rows}),
            "rows": rows,
        }

    @staticmethod
    def _column_info(
        found: list[Any],
        cells: pd.DataFrame,
        regions: dict[str, list[str]],
        metric_of: dict[str, str],
    ) -> list[dict[str, Any]]:
        keyed = []
        for r in found:
            parts = {}
            if not r.cells.empty:
                pairs = r.cells[["dataset", "config"]].drop_duplicates()
                parts = {f"{d}/{c}": (str(d), str(c)) for d, c in pairs.itertuples(index=False)}
            for column in r.columns:
                dataset, config = parts.get(column, tuple(column.split("/", 1)))  # type: ignore[arg-type]
                metric = metric_of.get(config, config)
                keyed.append((r.group, column, dataset, config, metric, r.chance_columns))
        short = short_headers([(f"{g}|{c}", m, cf) for g, c, _, cf, m, _ in keyed])
        out = []
        for group, column, dataset, config, metric, chance_columns in keyed:
            part = cells[(cells["data"] == group) & (cells["column"] == column)]
            present = set(part["region"])
            order = [x for x in regions.get(dataset, []) if x in present]
            order += sorted(present - set(order))
            subjects = sorted({s for s in part["subject"] if s is not None})
            out.append(
                {
                    "key": column,
                    "data": group,
                    "dataset": dataset,
                    "config": config,
                    "metric": metric,
                    "label": short[f"{group}|{column}"],
                    "title": f"{dataset} / {config}"
                    + (
                        " (not calibrated: its expected score without signal is not 0; each "
                        "cell shows its chance level)"
                        if column in chance_columns
                        else ""
                    ),
                    "calibrated": column not in chance_columns,
                    "chance_column": chance_columns.get(column),
                    "simulated": group == SIMULATED,
                    "regions": order,
                    "subjects": subjects,
                }
            )
        return out

    @staticmethod
    def _row_cells(cells: pd.DataFrame) -> dict[tuple[str, str], dict[str, Any]]:
        """Per (data, model), per column: ``regions`` {region: value}, ``subjects`` {region:
        {subject: value}} and, only where the ranking attached any, ``flags`` (the column's
        distinct flags), ``region_flags`` {region: [...]}, ``subject_flags`` {region:
        {subject: [...]}} and ``extra`` {region: {subject: {name: value}}}."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for record in cells.to_dict(orient="records"):
            row = out.setdefault((record["data"], record["model"]), {})
            column = row.setdefault(record["column"], {"regions": {}, "subjects": {}})
            value = _clean(record["value"])
            region = record["region"]
            flags = list(record["flags"])
            if record["subject"] is None:
                column["regions"][region] = value
                if flags:
                    column.setdefault("region_flags", {})[region] = flags
                    known = column.setdefault("flags", [])
                    known += [f for f in flags if f not in known]
                continue
            subject = record["subject"]
            column["subjects"].setdefault(region, {})[subject] = value
            if flags:
                column.setdefault("subject_flags", {}).setdefault(region, {})[subject] = flags
            if record["extra"]:
                extra = column.setdefault("extra", {}).setdefault(region, {})
                extra[subject] = _clean(record["extra"])
        return out

    def compare(self, x: str, y: str, query: RankingQuery) -> dict[str, Any]:
        """Per model, the values of two columns of the ranking (``mean``, a column, or
        ``COLUMN|REGION[|SUBJECT]``) and Spearman's rank correlation between them
        (:func:`scipy.stats.spearmanr`) over the models that have both."""
        from scipy import stats

        payload = self.cached(query.key(), lambda: query.answer(self))
        known = {c["key"] for c in payload["column_info"]}

        def pick(spec: str, row: dict[str, Any]) -> float | None:
            if spec == "mean":
                return row.get("mean")
            column, *rest = spec.split("|")
            if column not in known:
                raise InputError(
                    f"no column {column!r} in this ranking; columns: mean, "
                    f"{', '.join(sorted(known))}."
                )
            if not rest:
                return row.get(column)
            cells = row.get("cells", {}).get(column, {})
            if len(rest) == 1:
                return cells.get("regions", {}).get(rest[0])
            return cells.get("subjects", {}).get(rest[0], {}).get(rest[1])

        points: dict[str, dict[str, Any]] = {}
        for row in payload["rows"]:
            for axis, spec in (("x", x), ("y", y)):
                found = pick(spec, row)
                if found is not None:
                    point = points.setdefault(row["model"], {"model": row["model"],
                                                             "kind": row.get("kind"),
                                                             "family": row.get("family"),
                                                             "data": []})  # fmt: skip
                    point[axis] = found
                    if row["data"] not in point["data"]:
                        point["data"].append(row["data"])
        both = [p for p in points.values() if "x" in p and "y" in p]
        n = len(both)
        if n >= 3:
            result = stats.spearmanr([p["x"] for p in both], [p["y"] for p in both])
            r, p_value = float(result.statistic), float(result.pvalue)
        else:
            r = p_value = float("nan")
        return _clean({"x": x, "y": y, "n": n, "spearman_r": r, "p_value": p_value,
                       "points": both, "notes": payload["notes"]})  # fmt: skip

    def scores(self, *, filters: dict[str, Any], limit: int) -> dict[str, Any]:
        frame = scores(self.store, **{k: v for k, v in filters.items() if v not in (None, "")})
        rows = frame[[c for c in SCORE_COLUMNS if c in frame.columns]]
        return {"total": len(rows), "rows": _records(rows.head(limit))}

    def models(self) -> dict[str, Any]:
        return {"rows": _records(self._models())}

    def model(self, identifier: str, with_layers: bool = True) -> dict[str, Any]:
        table = self._models()
        known = table[table["model"] == identifier]
        frame = scores(self.store, model=identifier)
        if known.empty and frame.empty:
            import difflib

            close = difflib.get_close_matches(identifier, table["model"].tolist(), n=5,
                                              cutoff=0.6)  # fmt: skip
            hint = f" Closest stored: {', '.join(close)}." if close else ""
            raise NotFound(
                f"the leaderboard at {self.store.display_url} has no model {identifier!r}."
                f"{hint} /api/models lists the models."
            )
        metadata = known.iloc[0].to_dict() if not known.empty else {"model": identifier}
        summary = frame[~frame["selection"].isin(NOT_SUMMARY)].sort_values(
            ["dataset", "metric", "config", "selection", "subject", "region"]
        )
        columns = ["dataset", "metric", "metric_hash", "config", "selection", "subject",
                   "region", "layer", "relative_depth", "score", "ceiling", "normalized",
                   "ci_low", "ci_high", "n_neuroids"]  # fmt: skip
        species = species_of(self.store)
        simulated = sorted(
            {
                d
                for d, g in zip(
                    frame["dataset"], data_groups(frame["dataset"], species), strict=True
                )
                if g == SIMULATED
            }
        )
        return {
            "metadata": _clean({k: v for k, v in metadata.items() if not _empty(v)}),
            "summary": _records(summary[columns]) if not summary.empty else [],
            "layers": _records(layer_curves(frame)) if with_layers and not frame.empty else [],
            "curves": _records(layer_means(frame)) if not frame.empty else [],
            "simulated_datasets": simulated,
            "region_order": {
                d: r for d, r in dataset_regions(self.store).items() if d in set(frame["dataset"])
            },
            "provenance": self._provenance(frame),
        }

    def _provenance(self, frame: pd.DataFrame) -> dict[str, Any]:
        if frame.empty:
            return {"runs": [], "hashes": []}
        run_ids = sorted({int(r) for r in frame["run_id"].dropna()})
        runs = self.store.runs_frame()
        runs = runs[runs["id"].isin(run_ids)]
        keep = ["id", "started_at", "finished_at", "status", "code_version", "git_revision",
                "host", "executor"]  # fmt: skip
        hashes = (
            frame.groupby(["dataset", "metric", "config"], sort=True)
            .agg(
                weights_hash=("weights_hash", _distinct),
                stimuli_hash=("stimuli_hash", _distinct),
                data_hash=("data_hash", _distinct),
                feature_key=("feature_key", _distinct),
                metric_hash=("metric_hash", _distinct),
                runs=("run_id", lambda s: sorted({int(v) for v in s.dropna()})),
                updated_at=("updated_at", "max"),
            )
            .reset_index()
        )
        return {
            "runs": _records(runs[[c for c in keep if c in runs.columns]]),
            "hashes": _records(hashes),
        }

    def dataset(self, identifier: str) -> dict[str, Any]:
        datasets = self.store.datasets_frame()
        known = datasets[datasets["identifier"] == identifier] if not datasets.empty else datasets
        frame = scores(self.store, dataset=identifier)
        if known.empty and frame.empty:
            stored = sorted(set(self.store.distinct_values()["dataset"]))
            raise NotFound(
                f"the leaderboard at {self.store.display_url} has no dataset {identifier!r}; "
                f"stored: {', '.join(stored) or 'none'}."
            )
        metadata = known.iloc[0].to_dict() if not known.empty else {"identifier": identifier}
        details = metadata.pop("details", None)
        if isinstance(details, dict):
            for key, item in details.items():
                metadata.setdefault(key, item)
        group = data_groups(pd.Series([identifier]), species_of(self.store)).iloc[0]
        configs = []
        if not frame.empty:
            parameters = configurations(self.store).set_index(["metric", "metric_hash"])
            counted = frame.groupby(["metric", "metric_hash", "config"], sort=True)
            for (metric, metric_hash, config), part in counted:
                row: dict[str, Any] = {
                    "config": config,
                    "metric": metric,
                    "metric_hash": metric_hash,
                    "n_models": int(part["model"].nunique()),
                    "selections": sorted(set(part["selection"]) - {"layer"}),
                }
                if (metric, metric_hash) in parameters.index:
                    found = parameters.loc[(metric, metric_hash)]
                    row["parameters"] = found["parameters"]
                    row["version"] = found["version"]
                row.update(metric_info(str(metric)))
                configs.append(row)
        return {
            "metadata": _clean({k: v for k, v in metadata.items() if not _empty(v)}),
            "simulated": group == SIMULATED,
            "regions": dataset_regions(self.store).get(identifier, []),
            "configs": _clean(configs),
            "ceilings": _records(ceilings(frame=frame)),
        }

    def metrics(self) -> dict[str, Any]:
        frame = configurations(self.store)
        rows = _records(frame)
        for row in rows:
            row.update(metric_info(str(row["metric"])))
        return {"rows": rows}

    def runs(self) -> dict[str, Any]:
        frame = self.store.runs_frame()
        if not frame.empty:
            seconds = pd.to_numeric(frame.get("seconds_scoring"), errors="coerce")
            fits = pd.to_numeric(frame.get("fits"), errors="coerce")
            frame["fits_per_second"] = (fits / seconds).where(seconds > 0)
            started = pd.to_datetime(frame["started_at"])
            finished = pd.to_datetime(frame["finished_at"])
            frame["seconds"] = (finished - started).dt.total_seconds()
        return {"rows": _records(frame)}

    def failures(self, run: int | None) -> dict[str, Any]:
        return {"rows": _records(self.store.failures_frame(run))}


def _distinct(series: pd.Series) -> Any:
    values = sorted({str(v) for v in series.dropna()})
    return values[0] if len(values) == 1 else values


def _empty(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


# --------------------------------------------------------------------------- the web app


def _message(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "body"))
    text = str(error.get("msg", "invalid"))
    given = error.get("input")
    shown = f" (got {given!r})" if given is not None and not isinstance(given, dict) else ""
    return f"{where}: {text}{shown}" if where else f"{text}{shown}"


def _reject_unknown(request: Request) -> None:
    """Refuse query parameters the route does not declare (a typo would otherwise be
    ignored silently and answer for other filters than the caller meant)."""
    endpoint = getattr(request.scope.get("route"), "endpoint", None)
    if endpoint is None:
        return
    allowed = set()
    for name, parameter in inspect.signature(endpoint).parameters.items():
        if type(parameter.default).__name__ == "Depends":  # the RankingQuery parameters
            allowed |= set(inspect.signature(RankingQuery.__init__).parameters) - {"self"}
        elif name != "rest":
            allowed.add(name)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise InputError(
            f"unknown parameter {', '.join(unknown)} for {request.url.path}; it takes "
            f"{', '.join(sorted(allowed)) or 'no parameter'} (see /api/openapi.json)."
        )


def _pattern(description: str) -> Any:
    return Query(None, description=description)


COLUMN_SPEC = (
    "a column of the ranking: mean, a dataset/configuration column (as in columns), "
    "COLUMN|REGION or COLUMN|REGION|SUBJECT"
)
FILTER_HELP = "shell-style patterns, comma-separated alternatives"


class RankingQuery:
    """The parameters of a ranking (``/api/ranking``, ``/api/compare``)."""

    def __init__(
        self,
        dataset: str | None = Query(None, description=f"datasets ({FILTER_HELP})"),
        metric: str | None = Query(None, description=f"metrics ({FILTER_HELP})"),
        config: str | None = Query(None, description="metric configurations, by column name"),
        region: str | None = Query(None, description=f"regions ({FILTER_HELP})"),
        subject: str | None = Query(None, description=f"subjects ({FILTER_HELP})"),
        family: str | None = Query(None, description="model families"),
        model: str | None = Query(None, description=f"models ({FILTER_HELP})"),
        trained: str | None = Query(None, description="true (trained) or false (random)"),
        kind: str | None = Query(None, description="trained, random or baseline (comma-separated)"),
        where: list[str] = Query(  # noqa: B008
            [], description="model taxonomy, FIELD:VALUE[,VALUE...] (repeatable)"
        ),
        selection: str | None = Query(
            None, description="layer-choice policy; default: heldout where stored, else max"
        ),
        value: Literal["auto", "score", "normalized"] = Query(
            "auto",
            description="auto: ceiling-normalised where the ceiling's lower 95% bound is "
            "above 0.1, raw where no ceiling is stored, cells below that floor left out",
        ),
        ci: bool = Query(True, description="0 skips the bootstrap confidence intervals"),
    ):
        self.filters = {"dataset": dataset, "metric": metric, "config": config,
                        "region": region, "subject": subject, "family": family,
                        "model": model, "trained": _trained(trained)}  # fmt: skip
        self.kind = kind
        self.where = list(where)
        self.selection = selection
        self.value = value
        self.ci = ci

    def key(self) -> tuple:
        return ("ranking", tuple(sorted((k, str(v)) for k, v in self.filters.items())),
                self.kind, tuple(self.where), self.selection, self.value, self.ci)  # fmt: skip

    def answer(self, api: LeaderboardAPI) -> dict[str, Any]:
        return api.ranking(filters=dict(self.filters), kind=self.kind, where=self.where,
                           selection=self.selection, value=self.value, ci=self.ci)  # fmt: skip


def create_app(store: Store) -> FastAPI:
    """The site and its API for ``store``."""
    api = LeaderboardAPI(store)
    app = FastAPI(
        title="brainrank leaderboard",
        description=(
            "The leaderboard's JSON API. Every number is computed by brainrank's ranking "
            "and query functions (the same as the command line and the report). Errors are "
            '{"error": message}: 400 for a bad or unknown parameter, 404 for an unknown '
            "model, dataset or endpoint."
        ),
        version="1",
        openapi_url="/api/openapi.json",
        docs_url=None,  # the interactive docs load scripts from the internet
        redoc_url=None,
        dependencies=[Depends(_reject_unknown)],
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message = "; ".join(_message(e) for e in exc.errors())
        return JSONResponse({"error": f"bad parameter: {message}."}, status_code=400)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(BrainrankError)
    async def _bad(request: Request, exc: BrainrankError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # the details (an SQL statement, paths) go to the server log only
        log.error("API error on %s", request.url.path, exc_info=exc)
        message = (
            f"internal error ({type(exc).__name__}) while answering {request.url.path}; "
            "the details are in the server's log."
        )
        return JSONResponse({"error": message}, status_code=500)

    def answer(key: tuple, compute: Callable[[], Any]) -> JSONResponse:
        return JSONResponse(api.cached(key, compute), headers={"Cache-Control": "no-store"})

    filter_help = FILTER_HELP

    @app.get("/api/", summary="The endpoints")
    @app.get("/api", include_in_schema=False)
    def index() -> JSONResponse:
        return JSONResponse({"endpoints": ENDPOINTS})

    @app.get("/api/options", summary="Values the filters can take")
    def options() -> JSONResponse:
        return answer(("options",), api.options)

    @app.get("/api/ranking", summary="Models ranked (the one ranking definition)")
    def ranking(q: RankingQuery = Depends()) -> JSONResponse:  # noqa: B008
        return answer(q.key(), lambda: q.answer(api))

    @app.get("/api/compare", summary="Two columns of the ranking against each other")
    def compare(
        x: str = Query(..., min_length=1, description=COLUMN_SPEC),
        y: str = Query(..., min_length=1, description=COLUMN_SPEC),
        q: RankingQuery = Depends(),  # noqa: B008
    ) -> JSONResponse:
        return answer(("compare", x, y, q.key()), lambda: api.compare(x, y, q))

    @app.get("/api/scores", summary="Score rows")
    def score_rows(
        model: str | None = _pattern(f"models ({filter_help})"),
        dataset: str | None = _pattern(f"datasets ({filter_help})"),
        metric: str | None = _pattern(f"metrics ({filter_help})"),
        metric_hash: str | None = _pattern("metric configuration hashes"),
        config: str | None = _pattern("metric configurations"),
        region: str | None = _pattern(f"regions ({filter_help})"),
        subject: str | None = _pattern(f"subjects ({filter_help})"),
        layer: str | None = _pattern(f"layers ({filter_help})"),
        selection: str | None = _pattern("layer (per-layer rows) or a layer-choice policy"),
        family: str | None = _pattern("model families"),
        source: str | None = _pattern("model sources"),
        task: str | None = _pattern("model training tasks"),
        training_data: str | None = _pattern("model training data"),
        trained: str | None = Query(None, description="true (trained) or false (random)"),
        limit: int = Query(DEFAULT_LIMIT, ge=0, le=MAX_LIMIT, description="rows returned"),
    ) -> JSONResponse:
        filters = {"model": model, "dataset": dataset, "metric": metric,
                   "metric_hash": metric_hash, "config": config, "region": region,
                   "subject": subject, "layer": layer, "selection": selection,
                   "family": family, "source": source, "task": task,
                   "training_data": training_data, "trained": _trained(trained)}  # fmt: skip
        assert set(filters) - {"trained"} <= set(PATTERN_COLUMNS)
        key = ("scores", tuple(sorted((k, str(v)) for k, v in filters.items())), limit)
        return answer(key, lambda: api.scores(filters=filters, limit=limit))

    @app.get("/api/models", summary="Models and their metadata")
    def model_rows() -> JSONResponse:
        return answer(("models",), api.models)

    @app.get("/api/model", summary="One model")
    def model(
        id: str = Query(..., min_length=1, description="the model's identifier"),
        layers: bool = Query(True, description="0 leaves out the per-subject layer rows"),
    ) -> JSONResponse:
        return answer(("model", id, layers), lambda: api.model(id, layers))

    @app.get("/api/dataset", summary="One dataset")
    def dataset(
        id: str = Query(..., min_length=1, description="the dataset's identifier"),
    ) -> JSONResponse:
        return answer(("dataset", id), lambda: api.dataset(id))

    @app.get("/api/metrics", summary="Metric configurations")
    def metrics() -> JSONResponse:
        return answer(("metrics",), api.metrics)

    @app.get("/api/runs", summary="Runs and their provenance")
    def runs() -> JSONResponse:
        return answer(("runs",), api.runs)

    @app.get("/api/failures", summary="Recorded failures")
    def failures(run: int | None = Query(None, ge=1, description="one run's id")) -> JSONResponse:
        return answer(("failures", run), lambda: api.failures(run))

    @app.get("/api/{rest:path}", include_in_schema=False)
    def unknown(rest: str) -> JSONResponse:
        raise NotFound(f"no API endpoint /api/{rest}; see /api/ for the list.")

    static = resources.files("brainrank.leaderboard").joinpath("static")

    @app.get("/", include_in_schema=False)
    @app.get("/index.html", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(
            str(static.joinpath("index.html")), headers={"Cache-Control": "no-store"}
        )

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/{rest:path}", include_in_schema=False)
    def nothing(rest: str) -> PlainTextResponse:
        return PlainTextResponse("not found", status_code=404)

    return app


class WebServer:
    """uvicorn serving ``app`` on a socket bound up front (so the port, ``port=0``
    included, is known before serving and a busy port is refused at once)."""

    def __init__(self, app: FastAPI, sock: socket.socket):
        import uvicorn

        self._socket = sock
        self.server_port = int(sock.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop serving (from another thread) and wait until the server has stopped."""
        self._server.should_exit = True
        self._stopped.wait(timeout=10)

    def server_close(self) -> None:
        self._socket.close()


def make_server(store: Store, host: str = "127.0.0.1", port: int = 8000) -> WebServer:
    """A web server for ``store`` (port 0 picks a free port: see ``server.server_port``)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(
            f"cannot listen on {host}:{port}: {reason}. Choose another port with --port "
            "(or --port 0 for any free one)."
        ) from exc
    return WebServer(create_app(store), sock)
