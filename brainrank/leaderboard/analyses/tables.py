"""The tables every analysis starts from: a model x region table of one metric's summary
scores (:func:`region_scores`), the region of a score row, and each model's family and
training."""

from __future__ import annotations

import pandas as pd

from brainrank.core.errors import InputError

SEED_METRICS = ("srp-ridge", "rsa")


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
