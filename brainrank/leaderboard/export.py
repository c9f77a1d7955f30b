"""Leaderboard rows for other tools: an xarray score in Brain-Score's terms, and files.

:func:`as_xarray` gives, per (model, dataset, metric configuration, region), what a
Brain-Score user reads from a benchmark's ``Score``:

- ``center``: the value the ranking uses: the score divided by the ceiling where the
  ceiling is usable (its lower 95% bound above the floor, see
  :func:`brainrank.leaderboard.query.normalized_values`), the raw score where it is not
  (``ceiled`` says which), averaged over subjects;
- ``error``: the standard error of ``center`` over subjects (standard deviation / sqrt(n));
  with one subject, the half-width of the row's own 95% interval / 1.96 where the metric
  stores one, else NaN;
- ``raw``: the score before any division, averaged over subjects (Brain-Score's
  ``score.attrs["raw"]``);
- ``ceiling``: the noise ceiling, averaged over subjects (``score.attrs["ceiling"]``);
- ``n_subjects``, ``layer`` (the chosen layer of the first subject) and ``selection``.

Rows are the row each metric declares leak-free (``heldout``, ``stacked``...) unless
``selection`` names another policy. :func:`write_scores` writes score rows to CSV or
Parquet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core.errors import InputError
from brainrank.leaderboard.ranking import HEADLINE_SELECTIONS, NOT_SUMMARY

KEYS = ["model", "dataset", "config", "region"]
SCORE_FORMATS = ("csv", "parquet")


def headline_rows(frame: pd.DataFrame, selection: str | None = None) -> pd.DataFrame:
    """The summary rows of ``selection``, or per (dataset, configuration) the row its
    metric declares leak-free (``headline``; ``heldout``, else ``max``, where none is
    stored)."""
    rows = frame[~frame["selection"].isin(NOT_SUMMARY)]
    if selection is not None:
        return rows[rows["selection"] == selection]
    keep = []
    config = "config" if "config" in rows.columns else "metric"
    for _, part in rows.groupby(["dataset", config], sort=False):
        declared = part["headline"].dropna().unique() if "headline" in part.columns else []
        choices = [str(declared[0])] if len(declared) else list(HEADLINE_SELECTIONS)
        have = set(part["selection"])
        chosen = next((c for c in choices if c in have), None)
        if chosen is not None:
            keep.append(part[part["selection"] == chosen])
    return pd.concat(keep) if keep else rows.iloc[:0]


def as_xarray(frame: pd.DataFrame, selection: str | None = None) -> Any:
    """Score rows (of :func:`brainrank.leaderboard.scores` or :func:`brainrank.score`) as
    an ``xarray.Dataset`` with variables ``center``, ``error``, ``raw``, ``ceiling``,
    ``ceiled``, ``n_subjects``, ``layer``, ``selection`` over dims (model, dataset, config,
    region); see the module docstring. ``ds.center.sel(model=..., region="IT")`` is a
    Brain-Score-style ceiled score."""

    if frame.empty:
        raise InputError("there are no score rows to turn into an xarray score.")
    rows = headline_rows(frame, selection)
    if rows.empty:
        have = sorted(set(frame["selection"]) - set(NOT_SUMMARY))
        raise InputError(
            f"no summary rows of selection {selection!r} among these rows (they have: "
            f"{', '.join(have) or 'only per-layer rows'})."
        )
    normalized = pd.to_numeric(rows["normalized"], errors="coerce")
    score = pd.to_numeric(rows["score"], errors="coerce")
    rows = rows.assign(
        config=rows["config"] if "config" in rows.columns else rows["metric"],
        score=score,
        ceiling=pd.to_numeric(rows["ceiling"], errors="coerce"),
        _center=normalized.where(normalized.notna(), score),
        _ceiled=normalized.notna(),
    )
    grouped = rows.groupby(KEYS, sort=True)
    n = grouped["subject"].nunique()
    spread = grouped["_center"].std(ddof=1)
    out = pd.DataFrame(
        {
            "center": grouped["_center"].mean(),
            "error": spread / np.sqrt(n.clip(lower=1)),
            "raw": grouped["score"].mean(),
            "ceiling": grouped["ceiling"].mean(),
            "ceiled": grouped["_ceiled"].all(),
            "n_subjects": n,
            "layer": grouped["layer"].first().astype(str),
            "selection": grouped["selection"].first().astype(str),
        }
    )
    if {"ci_low", "ci_high"} <= set(rows.columns):  # one subject: the row's own interval
        width = pd.to_numeric(rows["ci_high"], errors="coerce") - pd.to_numeric(
            rows["ci_low"], errors="coerce"
        )
        half = (width / 2 / 1.96).groupby([rows[k] for k in KEYS], sort=True).mean()
        out["error"] = out["error"].where(out["n_subjects"] > 1, half.reindex(out.index))
    data = out.to_xarray()
    data["center"].attrs["description"] = (
        "score / ceiling where the ceiling is usable, else the raw score (see 'ceiled'); "
        "mean over subjects"
    )
    data["error"].attrs["description"] = (
        "standard error over subjects (one subject: the row's 95% interval half-width / 1.96)"
    )
    data["raw"].attrs["description"] = "the score before ceiling normalisation"
    data["ceiling"].attrs["description"] = "the noise ceiling (mean over subjects)"
    data.attrs["source"] = "brainrank"
    return data


def score_format(path: Any, fmt: str | None = None) -> str:
    """``csv`` or ``parquet``: ``fmt`` when given, else from the suffix."""
    suffix = Path(path).suffix.lower().lstrip(".")
    chosen = fmt or {"csv": "csv", "parquet": "parquet", "pq": "parquet"}.get(suffix)
    if chosen not in SCORE_FORMATS:
        raise InputError(
            f"scores are written as CSV or Parquet; give a path ending in .csv or .parquet "
            f"(or --format), not {path}."
        )
    return chosen


def write_scores(frame: pd.DataFrame, path: Any, fmt: str | None = None) -> str:
    """Write score rows to ``path`` (CSV, or Parquet: needs ``pyarrow``); ``details``
    (a dict per row) is written as JSON text. Returns the format written."""
    import json

    chosen = score_format(path, fmt)
    out = frame.copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, (dict, list, tuple))).any():
            out[column] = out[column].map(
                lambda v: json.dumps(v, default=str) if isinstance(v, (dict, list, tuple)) else v
            )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if chosen == "csv":
        out.to_csv(target, index=False)
    else:
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise InputError(
                "writing Parquet needs pyarrow: pip install pyarrow; "
                "or write CSV (a path ending in .csv)."
            ) from exc
        out.to_parquet(target, index=False)
    return chosen
