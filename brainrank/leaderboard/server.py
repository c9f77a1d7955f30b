"""``brainrank serve``: the leaderboard as a web page and a JSON API (standard library only).

Pages and files:

- ``/``: the leaderboard page (``static/index.html``, plain JavaScript, no external
  resources: it works offline);
- ``/static/...``: its script and style sheet.

JSON API (every answer is an object; errors are ``{"error": message}`` with status 400 or
404):

- ``/api/``: this list;
- ``/api/options``: the values the filters can take (datasets, metrics, regions,
  subjects, families, selections);
- ``/api/ranking``: the ranking of :mod:`brainrank.leaderboard.ranking` (as the CLI and
  the report) with 95% bootstrap CIs and the notes saying what was ranked; query parameters
  are the leaderboard filters (``dataset``, ``metric``, ``region``, ``subject``,
  ``family``, ``model``, ``trained=true|false``), ``selection`` (default ``heldout`` where
  stored, else ``max``), ``value`` (``auto``, ``score`` or ``normalized``) and ``ci=0`` to
  skip the intervals;
- ``/api/scores``: score rows for the same filters (``selection`` any, ``limit``);
- ``/api/models``: the scored models with their metadata;
- ``/api/model?id=MODEL``: one model's metadata, summary rows and per-layer curves;
- ``/api/runs``, ``/api/failures?run=N``: provenance and failures.
"""

from __future__ import annotations

import json
import logging
import math
import mimetypes
import threading
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd

from brainrank.core.errors import BrainrankError, InputError
from brainrank.leaderboard.query import (
    PATTERN_COLUMNS,
    configurations,
    model_detail,
    rankings,
    scores,
)
from brainrank.leaderboard.ranking import VALUES, combined, describe
from brainrank.leaderboard.store import Store

log = logging.getLogger(__name__)

ENDPOINTS = {
    "/api/options": "values the filters can take",
    "/api/ranking": "models ranked, with 95% bootstrap CIs (filters as query parameters)",
    "/api/scores": "score rows (filters, selection, limit)",
    "/api/models": "scored models and their metadata",
    "/api/model?id=MODEL": "one model: metadata, summary rows, per-layer curves",
    "/api/runs": "runs with their provenance",
    "/api/failures": "recorded failures (run=N for one run)",
}
RANK_FILTERS = ("model", "dataset", "metric", "config", "region", "subject", "family")
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


class NotFound(BrainrankError):
    pass


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
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


class LeaderboardAPI:
    """The JSON answers, independent of HTTP (tested directly and through the server)."""

    def __init__(self, store: Store, cache_size: int = 64):
        self.store = store
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _version(self) -> tuple:
        """Changes whenever scores are written, so cached answers are never stale."""
        with self.store.engine.connect() as conn:
            row = conn.exec_driver_sql("SELECT COUNT(*), MAX(updated_at) FROM scores").one()
        return tuple(str(v) for v in row)

    def _cached(self, key: tuple, compute: Any) -> Any:
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

    @staticmethod
    def _filters(params: dict[str, str], allowed: tuple[str, ...]) -> dict[str, Any]:
        filters: dict[str, Any] = {}
        for key, value in params.items():
            if key in allowed and value:
                filters[key] = value
        if "trained" in params:
            filters["trained"] = _trained(params["trained"])
        return filters

    def handle(self, path: str, params: dict[str, str]) -> Any:
        if path in ("/api", "/api/"):
            return {"endpoints": ENDPOINTS}
        route = {
            "/api/options": self.options,
            "/api/ranking": self.ranking,
            "/api/scores": self.scores,
            "/api/models": self.models,
            "/api/model": self.model,
            "/api/runs": self.runs,
            "/api/failures": self.failures,
        }.get(path.rstrip("/"))
        if route is None:
            raise NotFound(f"no API endpoint {path}; see /api/ for the list.")
        return self._cached((path, tuple(sorted(params.items()))), lambda: route(params))

    def options(self, params: dict[str, str]) -> dict[str, Any]:
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
        out["n_models"] = len(values["model"])
        out["n_scores"] = self.store.count("scores")
        out["leaderboard"] = self.store.display_url
        return out

    def ranking(self, params: dict[str, str]) -> dict[str, Any]:
        """The ranking of :mod:`brainrank.leaderboard.ranking` (as the CLI and the report):
        ``rows`` with ``data`` (real / simulated, ranked apart), ``columns`` (dataset /
        configuration), ``notes`` and, per group, the cells left out."""
        filters = self._filters(params, RANK_FILTERS)
        selection = params.get("selection") or None
        if selection == "layer":
            raise InputError("rank on a layer-choice policy (max, heldout...), not 'layer'.")
        value = params.get("value") or "auto"
        if value not in VALUES:
            raise InputError(f"value must be one of {', '.join(VALUES)}, not {value!r}.")
        with_ci = params.get("ci", "1") not in ("0", "false", "no")
        found = rankings(self.store, selection, value=value, ci=0.95 if with_ci else None,
                         **filters)  # fmt: skip
        table = combined(found)
        models = self.store.models_frame().set_index("identifier")
        fixed = {"data", "rank", "model", "mean", "n_cells", "n_missing", "ci_low", "ci_high"}
        columns = [c for c in table.columns if c not in fixed]
        if not table.empty:
            table.insert(3, "family", [models["family"].get(m) for m in table["model"]])
            table.insert(4, "trained", [models["trained"].get(m) for m in table["model"]])
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
        return {
            "columns": columns,
            "selection": selection or "heldout, else max",
            "value": value,
            "notes": describe(found),
            "groups": groups,
            "rows": _records(table),
        }

    def scores(self, params: dict[str, str]) -> dict[str, Any]:
        filters = self._filters(params, (*PATTERN_COLUMNS,))
        limit = params.get("limit")
        try:
            limit_n = int(limit) if limit else 5000
        except ValueError:
            limit_n = -1
        if limit_n < 0:  # pandas' head(-1) would silently drop the last row
            raise InputError(f"limit must be a whole number >= 0, not {limit!r}.")
        frame = scores(self.store, **filters)
        rows = frame[[c for c in SCORE_COLUMNS if c in frame.columns]]
        return {"total": len(rows), "rows": _records(rows.head(limit_n))}

    def models(self, params: dict[str, str]) -> dict[str, Any]:
        frame = self.store.models_frame().drop(columns=["details"], errors="ignore")
        return {"rows": _records(frame)}

    def model(self, params: dict[str, str]) -> dict[str, Any]:
        identifier = params.get("id")
        if not identifier:
            raise InputError("give the model as ?id=MODEL.")
        try:
            detail = model_detail(self.store, identifier)
        except InputError as exc:
            raise NotFound(str(exc)) from exc
        return {
            "metadata": _clean(
                {
                    k: v
                    for k, v in detail["metadata"].items()
                    if not (isinstance(v, float) and math.isnan(v))
                }
            ),
            "summary": _records(detail["summary"]),
            "layers": _records(detail["layers"]),
        }

    def runs(self, params: dict[str, str]) -> dict[str, Any]:
        return {"rows": _records(self.store.runs_frame())}

    def failures(self, params: dict[str, str]) -> dict[str, Any]:
        run = params.get("run")
        try:
            run_id = int(run) if run else None
        except ValueError as exc:
            raise InputError(f"run must be an integer, not {run!r}.") from exc
        return {"rows": _records(self.store.failures_frame(run_id))}


def _static(name: str) -> bytes | None:
    if "/" in name or name.startswith("."):
        return None
    try:
        return resources.files("brainrank.leaderboard").joinpath("static", name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, OSError):
        return None


def make_handler(api: LeaderboardAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "brainrank"

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, payload: Any) -> None:
            body = json.dumps(payload, allow_nan=False).encode()
            self._send(status, body, "application/json; charset=utf-8")

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path.startswith("/api"):
                params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                try:
                    self._json(HTTPStatus.OK, api.handle(url.path, params))
                except NotFound as exc:
                    self._json(HTTPStatus.NOT_FOUND, {"error": str(exc)})
                except BrainrankError as exc:
                    self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                except Exception as exc:
                    # the details (an SQL statement, paths) go to the server log only
                    log.exception("API error on %s", self.path)
                    message = (
                        f"internal error ({type(exc).__name__}) while answering {url.path}; "
                        "the details are in the server's log."
                    )
                    self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": message})
                return
            name = "index.html" if url.path in ("/", "/index.html") else None
            if url.path.startswith("/static/"):
                name = url.path[len("/static/") :]
            body = _static(name) if name else None
            if body is None:
                self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain; charset=utf-8")
                return
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind.endswith("javascript"):
                kind += "; charset=utf-8"
            self._send(HTTPStatus.OK, body, kind)

    return Handler


def make_server(store: Store, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """An HTTP server for ``store`` (port 0 picks a free port: see ``server.server_port``)."""
    try:
        server = ThreadingHTTPServer((host, port), make_handler(LeaderboardAPI(store)))
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror}. Choose another port with --port "
            "(or --port 0 for any free one)."
        ) from exc
    server.daemon_threads = True
    return server
