"""Reads (brainrank/leaderboard/store/reads.py): what the queries and the Python API read
back from a leaderboard."""

from __future__ import annotations

import numpy as np
from _store_rows import FakeMetric, rows

from brainrank.leaderboard import ranking
from brainrank.leaderboard.store import Store


def test_ranking_orders_models_by_mean_best_layer_score(db_url):
    store = Store(db_url)
    metric = FakeMetric()
    for model, value in [("m/low", 0.1), ("m/high", 0.6), ("m/mid", 0.3)]:
        store.write_scores(run_id=None, model=model, dataset="d", metric=metric, scores=rows(value))
    table = ranking(store)
    assert list(table["model"]) == ["m/high", "m/mid", "m/low"]
    assert list(table["rank"]) == [1, 2, 3]
    np.testing.assert_allclose(table["d/fake"], [0.7, 0.4, 0.2])
    assert table["ci_low"].isna().all()  # one region per model: no interval


def test_stored_scores_read_back_what_was_written_with_per_neuroid_values(db_url):
    """What ``brainrank.score`` returns when a combination is stored: the rows as written
    (NaN for a missing value), their extras, and per-neuroid values; a summary row stored
    without its own array has its layer row's, as the per-neuroid query gives it."""
    store = Store(db_url)
    metric = FakeMetric()
    written = rows()
    ids = tuple(f"n{i}" for i in range(10))
    written[1].per_neuroid = np.linspace(0, 1, 10, dtype=np.float32)
    written[1].neuroid_ids = ids
    written[2].per_neuroid, written[2].neuroid_ids = written[1].per_neuroid, ids  # the max row
    written[0].extra = {"alpha": 1.0, "why": "test"}
    store.write_scores(run_id=None, model="m/a", dataset="d", metric=metric, scores=written)
    store.write_scores(run_id=None, model="m/b", dataset="d", metric=metric, scores=rows(0.9))
    read = store.stored_scores(("m/a", "d", "fake", metric.config_hash))
    key = lambda s: (s.subject, s.region, s.layer, s.selection)  # noqa: E731
    assert sorted(map(key, read)) == sorted(map(key, written)) and len(read) == 4
    got = {key(s): s for s in read}
    for want in written:
        row = got[key(want)]
        assert np.isnan(row.value) if np.isnan(want.value) else row.value == want.value
        assert (row.n_neuroids, row.layer_index, row.relative_depth) == (
            want.n_neuroids, want.layer_index, want.relative_depth,
        )  # fmt: skip
    assert got[key(written[0])].extra == {"alpha": 1.0, "why": "test"}
    for k in (key(written[1]), key(written[2])):
        np.testing.assert_array_equal(got[k].per_neuroid, written[1].per_neuroid)
        assert got[k].neuroid_ids == ids
    assert got[key(written[3])].per_neuroid is None
    assert store.stored_scores(("m/none", "d", "fake", metric.config_hash)) == []
