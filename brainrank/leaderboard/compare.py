"""Differences between two leaderboards, score by score (``brainrank diff``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from brainrank.leaderboard.store import Store

#: what identifies one score across leaderboards (the configuration by its hash)
KEY = ["model", "dataset", "metric", "metric_hash", "subject", "region", "layer", "selection"]


@dataclass
class Difference:
    only_a: pd.DataFrame
    only_b: pd.DataFrame
    #: rows in both whose values differ by more than the tolerance (columns a, b, difference)
    changed: pd.DataFrame
    n_common: int
    max_difference: float
    tolerance: float

    @property
    def same(self) -> bool:
        return self.only_a.empty and self.only_b.empty and self.changed.empty


def _values(store: Store, per_neuroid: bool, **filters) -> pd.DataFrame:
    frame = store.scores_frame(**filters)[[*KEY, "score_id", "score"]]
    if not per_neuroid:
        return frame.drop(columns="score_id")
    arrays = store.neuroid_values(frame["score_id"].tolist())
    frame = frame.copy()
    frame["per_neuroid"] = [arrays.get(int(i), (None, None))[1] for i in frame["score_id"]]
    return frame.drop(columns="score_id")


def _distance(a: object, b: object) -> float:
    if a is None and b is None:
        return 0.0
    if a is None or b is None:
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
    """Scores present in only one leaderboard, and scores whose values (and, with
    ``per_neuroid``, per-neuroid values) differ by more than ``tolerance`` (absolute)."""
    left = _values(a, per_neuroid, **filters)
    right = _values(b, per_neuroid, **filters)
    merged = left.merge(right, on=KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    only_a = merged[merged["_merge"] == "left_only"][KEY]
    only_b = merged[merged["_merge"] == "right_only"][KEY]
    both = merged[merged["_merge"] == "both"].copy()
    distance = [_distance(x, y) for x, y in zip(both["score_a"], both["score_b"], strict=True)]
    if per_neuroid:
        distance = [
            max(d, _distance(x, y))
            for d, x, y in zip(distance, both["per_neuroid_a"], both["per_neuroid_b"], strict=True)
        ]
    both["difference"] = distance
    changed = both[both["difference"] > tolerance][[*KEY, "score_a", "score_b", "difference"]]
    finite = [d for d in distance if np.isfinite(d)]
    return Difference(
        only_a.reset_index(drop=True),
        only_b.reset_index(drop=True),
        changed.reset_index(drop=True),
        len(both),
        max(finite) if finite else 0.0,
        tolerance,
    )
