"""Differences between two leaderboards, score by score (``brainrank diff``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from brainrank.leaderboard.store import Store

#: what identifies one score across leaderboards (the configuration by its hash)
KEY = ["model", "dataset", "metric", "metric_hash", "subject", "region", "layer", "selection"]
#: the values of a score row compared: the score, its ceiling and the value the ranking uses
#: (normalised by the ceiling where it is usable), the ceiling's interval, the chance level
VALUES = ["score", "ceiling", "normalized", "ceiling_low", "ceiling_high", "chance", "chance_sd"]


@dataclass
class Difference:
    only_a: pd.DataFrame
    only_b: pd.DataFrame
    #: rows in both whose values differ by more than the tolerance: score_a, score_b, the
    #: largest difference over :data:`VALUES` and the per-neuroid values, and which differ
    changed: pd.DataFrame
    n_common: int
    max_difference: float
    tolerance: float

    @property
    def same(self) -> bool:
        return self.only_a.empty and self.only_b.empty and self.changed.empty


def _values(store: Store, per_neuroid: bool, **filters) -> pd.DataFrame:
    from brainrank.leaderboard.query import normalized_values

    frame = store.scores_frame(**filters)
    frame["normalized"] = normalized_values(frame)  # the floor rule, also for older rows
    for column in VALUES:
        if column not in frame.columns:
            frame[column] = np.nan
    frame = frame[[*KEY, "score_id", *VALUES]]
    if not per_neuroid:
        return frame.drop(columns="score_id")
    arrays = store.neuroid_values(frame["score_id"].tolist())
    frame = frame.copy()
    frame["per_neuroid"] = [arrays.get(int(i), (None, None))[1] for i in frame["score_id"]]
    return frame.drop(columns="score_id")


def _distance(a: object, b: object) -> float:
    missing_a = a is None or (np.ndim(a) == 0 and pd.isna(a))
    missing_b = b is None or (np.ndim(b) == 0 and pd.isna(b))
    if missing_a and missing_b:
        return 0.0
    if missing_a or missing_b:
        return float("inf")
    x = np.atleast_1d(np.asarray(a, dtype=np.float64))
    y = np.atleast_1d(np.asarray(b, dtype=np.float64))
    if x.shape != y.shape:
        return float("inf")
    if x.size == 0:
        return 0.0
    both_nan = np.isnan(x) & np.isnan(y)
    if (np.isnan(x) != np.isnan(y)).any():
        return float("inf")
    d = np.abs(x - y)
    d[both_nan] = 0.0
    return float(d.max())


def compare(
    a: Store, b: Store, *, tolerance: float = 0.0, per_neuroid: bool = False, **filters
) -> Difference:
    """Scores present in only one leaderboard, and scores whose values (score, ceiling,
    normalised value, the ceiling's interval, chance level and, with ``per_neuroid``,
    per-neuroid values) differ by more than ``tolerance`` (absolute); a value present in
    one and missing in the other differs."""
    left = _values(a, per_neuroid, **filters)
    right = _values(b, per_neuroid, **filters)
    merged = left.merge(right, on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    only_a = merged[merged["_merge"] == "left_only"][KEY]
    only_b = merged[merged["_merge"] == "right_only"][KEY]
    both = merged[merged["_merge"] == "both"].copy()
    columns = [*VALUES, "per_neuroid"] if per_neuroid else list(VALUES)
    per_column = {
        c: [_distance(x, y) for x, y in zip(both[f"{c}_a"], both[f"{c}_b"], strict=True)]
        for c in columns
    }
    distance = [max(ds) for ds in zip(*per_column.values(), strict=True)] if len(both) else []
    both["difference"] = distance
    both["columns"] = [
        ",".join(c for c in columns if per_column[c][i] > tolerance) for i in range(len(both))
    ]
    changed = both[both["difference"] > tolerance][
        [*KEY, "columns", "score_a", "score_b", "difference"]
    ]
    finite = [d for d in distance if np.isfinite(d)]
    return Difference(
        only_a.reset_index(drop=True),
        only_b.reset_index(drop=True),
        changed.reset_index(drop=True),
        len(both),
        max(finite) if finite else 0.0,
        tolerance,
    )
