"""A metric and score rows the store tests write (tests/leaderboard/store/)."""

from __future__ import annotations

from brainrank.core.metric import Metric
from brainrank.core.scores import Score


class FakeMetric(Metric):
    identifier = "fake"


def rows(value=0.5):
    return [
        Score("s1", "V1", "l1", value, n_neuroids=10, layer_index=0, relative_depth=0.0),
        Score("s1", "V1", "l2", value + 0.1, n_neuroids=10, layer_index=1, relative_depth=1.0),
        Score("s1", "V1", "l2", value + 0.1, n_neuroids=10, selection="max"),
        Score("s1", "IT", "l1", float("nan"), n_neuroids=0),
    ]
