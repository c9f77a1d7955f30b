"""Runs and writes (brainrank/leaderboard/store/writes.py) on SQLite and PostgreSQL:
idempotent writes, per-neuroid arrays, provenance and completion in one transaction, a
new result replacing the old whole, and concurrent writers in real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _store_rows import FakeMetric, rows

from brainrank.core.errors import StoreError
from brainrank.core.scores import Score
from brainrank.core.specs import ModelMetadata
from brainrank.leaderboard import per_neuroid, scores
from brainrank.leaderboard.store import Store

WRITER = Path(__file__).parent / "_grid_writer.py"


def test_writes_are_idempotent_upserts(db_url):
    store = Store(db_url)
    metric = FakeMetric(alpha=1)
    store.register_model(
        "m/a", ModelMetadata(source="m", architecture="a", family="convnet", trained=True)
    )
    run = store.start_run({"x": 1})
    for _ in range(3):
        assert (
            store.write_scores(run_id=run, model="m/a", dataset="d", metric=metric, scores=rows())
            == 4
        )
    frame = scores(store)
    assert len(frame) == 4
    # a new value for the same key replaces the old one
    store.write_scores(run_id=run, model="m/a", dataset="d", metric=metric, scores=rows(0.7))
    frame = scores(store)
    assert len(frame) == 4 and frame["score"].max() == pytest.approx(0.8)
    assert frame["score"].isna().sum() == 1  # NaN stored as NULL
    # other parameters of the same metric are other scores, not overwrites
    store.write_scores(
        run_id=run, model="m/a", dataset="d", metric=FakeMetric(alpha=2), scores=rows()
    )
    assert len(scores(store)) == 8
    assert scores(store, selection="max", trained=True, family="conv*").shape[0] == 2
    assert scores(store, selection="max", trained=False).empty
    # a metric returning the same key twice is refused, nothing is written
    with pytest.raises(StoreError, match="several scores for the same"):
        store.write_scores(
            run_id=run, model="m/b", dataset="d", metric=metric, scores=rows() + rows()[:1]
        )
    assert scores(store, model="m/b").empty


def test_per_neuroid_values_provenance_and_completion_in_one_write(db_url):
    store = Store(db_url)
    metric = FakeMetric()
    per = np.array([0.1, np.nan, 0.3], dtype=np.float32)
    layer_rows = [
        Score(
            "s1",
            "V1",
            f"l{i}",
            0.2 * (i + 1),
            n_neuroids=3,
            layer_index=i,
            relative_depth=i / 1,
            per_neuroid=per * (i + 1),
            neuroid_ids=("a", "b", "c"),
        )
        for i in range(2)
    ]
    best = Score(
        "s1",
        "V1",
        "l1",
        0.4,
        n_neuroids=3,
        selection="max",
        per_neuroid=per * 2,
        neuroid_ids=("a", "b", "c"),
    )
    other = Score(
        "s1",
        "V1",
        "l0",
        0.25,
        selection="heldout",
        per_neuroid=per * 7,
        neuroid_ids=("a", "b", "c"),
    )
    store.write_scores(
        run_id=None,
        model="m/a",
        dataset="d",
        metric=metric,
        scores=[*layer_rows, best, other],
        feature_key="f" * 64,
        weights_hash="w1",
        stimuli_hash="s" * 64,
        data_hash="d" * 64,
        plan_hash="p1",
        seconds=1.5,
    )
    frame = scores(store)
    assert set(frame["weights_hash"]) == {"w1"} and set(frame["feature_key"]) == {"f" * 64}
    assert set(frame["stimuli_hash"]) == {"s" * 64} and set(frame["data_hash"]) == {"d" * 64}
    # stored compactly: one id list, one blob per distinct array (the max row's values are
    # its layer's and are not stored twice; the heldout row's are its own)
    assert store.count("neuroid_sets") == 1 and store.count("neuroid_values") == 3
    values = per_neuroid(store, selection="max")
    np.testing.assert_array_equal(values["neuroid_id"], ["a", "b", "c"])
    np.testing.assert_allclose(values["value"], per * 2, rtol=1e-7)
    assert values["layer"].tolist() == ["l1"] * 3
    heldout = per_neuroid(store, selection="heldout")
    np.testing.assert_allclose(heldout["value"], per * 7, rtol=1e-7)
    assert len(per_neuroid(store, selection="layer")) == 6
    done = store.completed([("m/a", "d", "fake", metric.config_hash)])
    record = done[("m/a", "d", "fake", metric.config_hash)]
    assert (
        record["plan_hash"] == "p1" and record["n_scores"] == 4 and record["weights_hash"] == "w1"
    )
    # rewriting the same combination updates every row, nothing is added
    store.write_scores(
        run_id=None,
        model="m/a",
        dataset="d",
        metric=metric,
        scores=[*layer_rows, best, other],
        plan_hash="p2",
    )
    assert store.count("scores") == 4 and store.count("neuroid_values") == 3
    assert store.count("completions") == 1
    assert store.completions_frame()["plan_hash"].tolist() == ["p2"]


def test_a_failed_write_leaves_nothing_behind(db_url):
    store = Store(db_url)
    bad = Score("s1", "V1", "l0", 0.3, per_neuroid=np.ones(3, np.float32), neuroid_ids=("a",))
    good = Score("s1", "V2", "l0", 0.3)
    with pytest.raises(StoreError, match="3 per-neuroid values but 1 neuroid ids"):
        store.write_scores(
            run_id=None,
            model="m/a",
            dataset="d",
            metric=FakeMetric(),
            scores=[good, bad],
            plan_hash="p",
        )
    assert store.count("scores") == 0 and store.count("completions") == 0


def test_runs_record_provenance_and_failures(db_url):
    store = Store(db_url)
    run = store.start_run(
        {"models": ["x"]}, seeds={"projection_seed": 0}, executor="dask local cluster, 2 workers"
    )
    try:
        raise ValueError("boom")
    except ValueError as exc:
        store.record_failure(run, "score", exc, model="x", dataset="d", metric="fake")
    store.finish_run(run, "partial", 0, 1, n_skipped=3)
    failures = store.failures_frame()
    assert failures.loc[0, "message"] == "boom" and "Traceback" in failures.loc[0, "traceback"]
    runs = store.runs_frame()
    row = runs.iloc[0]
    assert row["status"] == "partial" and row["packages"]["numpy"] and row["packages"]["python"]
    assert row["seeds"] == {"projection_seed": 0} and row["n_skipped"] == 3
    assert row["executor"].startswith("dask") and row["finished_at"] >= row["started_at"]
    assert row["code_version"] and "@" in row["host"]


def _start_writers(url: str, tmp_path: Path, parts: list[list[str]]) -> list[subprocess.Popen]:
    start = tmp_path / "start"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), url, str(start), *models],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for models in parts
    ]
    time.sleep(1.5)  # both interpreters up and waiting
    start.write_text("go")
    return procs


def test_two_processes_writing_one_grid_lose_and_duplicate_nothing(db_url, tmp_path):
    """Two real processes write different parts of a grid (and one part both) into one new
    leaderboard at the same time; both also create the schema at the same time."""
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from _grid_writer import LAYERS, NEUROIDS, REGIONS, grid_scores
    finally:
        sys.path.pop(0)
    shared = [f"m/shared{i}" for i in range(4)]
    part_a = [f"m/a{i}" for i in range(8)] + shared
    part_b = [f"m/b{i}" for i in range(8)] + shared[::-1]
    procs = _start_writers(db_url, tmp_path, [part_a, part_b])
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]
    models = sorted(set(part_a) | set(part_b))
    per_model = LAYERS * len(REGIONS) + len(REGIONS)
    store = Store(db_url)
    frame = scores(store)
    assert len(frame) == len(models) * per_model
    assert not frame.duplicated(
        ["model", "metric", "subject", "region", "layer", "selection"]
    ).any()
    assert sorted(frame["model"].unique()) == models
    assert store.count("completions") == len(models)
    assert store.count("neuroid_values") == len(models) * LAYERS * len(REGIONS)
    assert store.count("neuroid_sets") == len(REGIONS)
    assert len(store.runs_frame()) == 2
    for model in ("m/a3", "m/b5", "m/shared2"):  # every value is the one computed for it
        expected = {(s.region, s.layer, s.selection): s.value for s in grid_scores(model)}
        got = frame[frame["model"] == model]
        for row in got.itertuples():
            assert row.score == pytest.approx(expected[(row.region, row.layer, row.selection)])
    values = per_neuroid(store, model="m/shared1", selection="layer", layer="layer2")
    assert len(values) == len(REGIONS) * NEUROIDS


def test_a_new_result_replaces_the_old_one_whole(db_url):
    """When the best layer moves, the old best-layer row goes: one result per combination."""
    store = Store(db_url)
    metric = FakeMetric()
    first = rows(0.5)  # best layer l2
    store.write_scores(run_id=None, model="m/a", dataset="d", metric=metric, scores=first)
    moved = [
        Score("s1", "V1", "l1", 0.9, n_neuroids=10, layer_index=0, relative_depth=0.0),
        Score("s1", "V1", "l1", 0.9, n_neuroids=10, selection="max"),
    ]
    store.write_scores(run_id=None, model="m/a", dataset="d", metric=metric, scores=moved)
    frame = scores(store)
    assert sorted(zip(frame["layer"], frame["selection"], strict=True)) == [
        ("l1", "layer"),
        ("l1", "max"),
    ]
    # another configuration of the metric is another result and is left alone
    store.write_scores(run_id=None, model="m/a", dataset="d", metric=FakeMetric(x=1), scores=first)
    store.write_scores(run_id=None, model="m/a", dataset="d", metric=metric, scores=moved)
    assert len(scores(store)) == 2 + 4
