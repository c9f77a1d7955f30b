"""The SQL leaderboard: store, queries, aggregations, report and web page.

>>> from brainrank import leaderboard
>>> leaderboard.ranking()                         # models ranked like with like (see ranking.py)
>>> leaderboard.scores(model="timm/*", region="late")
>>> leaderboard.scores(db="lab.db", dataset="simulated")   # the leaderboard is always db=
>>> leaderboard.aggregate(leaderboard.scores(selection="max"), over="region")
>>> leaderboard.as_xarray(leaderboard.scores(model="timm/*"))  # center, error, raw, ceiling
"""

from brainrank.leaderboard.export import as_xarray
from brainrank.leaderboard.query import (
    FILTERS,
    aggregate,
    configurations,
    failures,
    filter_scores,
    layer_curves,
    model_detail,
    models,
    per_neuroid,
    rank_frame,
    ranking,
    rankings,
    runs,
    scores,
)
from brainrank.leaderboard.schema import SCHEMA_VERSION
from brainrank.leaderboard.store import Store, open_store

__all__ = [
    "FILTERS",
    "SCHEMA_VERSION",
    "Store",
    "aggregate",
    "as_xarray",
    "configurations",
    "failures",
    "filter_scores",
    "layer_curves",
    "model_detail",
    "models",
    "open_store",
    "per_neuroid",
    "rank_frame",
    "ranking",
    "rankings",
    "runs",
    "scores",
]
