"""One path from a model to a stored score: the grid (``brainrank run``) and the Python API
(``brainrank.score(..., db=...)``) are both ``execute(plan(...))`` and go through the job
function, so every stored row carries its run, its content hashes and a completion record
whichever door it came through; the analyses only read what is stored (see
tests/leaderboard/analyses/). tests/grid/test_two_doors.py checks that the doors
make one plan hash and one run configuration."""

from __future__ import annotations

import numpy as np
import pytest

import brainrank
from brainrank.core.registry import Registry
from brainrank.grid import MemoryStore, ResultStore, run_grid
from brainrank.grid import jobs as grid_jobs
from brainrank.leaderboard import open_store

HASHES = ["run_id", "weights_hash", "stimuli_hash", "data_hash", "feature_key"]


def check_provenance(store, model: str, dataset: str, metric: str) -> None:
    frame = store.scores_frame(model=model, dataset=dataset, metric=metric)
    assert len(frame) > 0
    assert frame[HASHES].notna().all().all(), frame[HASHES].isna().sum().to_dict()
    runs = store.runs_frame().set_index("id")
    assert set(frame["run_id"]) <= set(runs.index)
    assert (runs.loc[sorted(set(frame["run_id"])), "status"] == "ok").all()
    done = store.completions_frame([model])
    done = done[(done["dataset"] == dataset) & (done["metric"] == metric)]
    assert len(done) == 1 and done["plan_hash"].notna().all()
    assert int(done["n_scores"].iloc[0]) == len(frame)
    assert set(done["run_id"]) == set(frame["run_id"])


def test_the_grid_door(tmp_path, tiny_plugin_path):
    store = open_store(str(tmp_path / "lb.db"))
    registry = Registry(plugin_files=[tiny_plugin_path])
    summary = run_grid(registry=registry, store=store, models=["tiny/net"],
                       datasets=["tiny/data"], metrics=["rsa", "srp-ridge"], progress=False)  # fmt: skip
    assert summary.complete and summary.status == "ok"
    for metric in ("rsa", "srp-ridge"):
        check_provenance(store, "tiny/net", "tiny/data", metric)


def test_the_python_api_door_with_a_database(tmp_path, tiny_plugin_path):
    brainrank.get_registry([tiny_plugin_path])
    db = str(tmp_path / "api.db")
    frame = brainrank.score("tiny/net", "tiny/data", "rsa", db=db)
    assert len(frame) > 0 and {"layer", "max"} <= set(frame["selection"])
    store = open_store(db)
    check_provenance(store, "tiny/net", "tiny/data", "rsa")
    stored = store.scores_frame(model="tiny/net", metric="rsa").sort_values(["layer", "selection"])
    returned = frame.sort_values(["layer", "selection"])
    np.testing.assert_allclose(
        stored["score"].to_numpy(float), returned["score"].to_numpy(float), rtol=0, atol=1e-6
    )


def test_a_model_object_built_in_user_code_goes_the_same_way(tmp_path, tiny_plugin_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_for_api", tiny_plugin_path)
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    model, dataset = tiny.build_model(), tiny.build_dataset()
    db = str(tmp_path / "own.db")
    brainrank.score(model, dataset, "srp-ridge", db=db)
    check_provenance(open_store(db), "tiny/net", "tiny/data", "srp-ridge")


def test_without_a_database_the_scores_are_kept_in_memory_only(tmp_path, tiny_plugin_path):
    brainrank.get_registry([tiny_plugin_path])
    frame = brainrank.score("tiny/net", "tiny/data", "rsa")
    assert len(frame) > 0
    assert not list(tmp_path.glob("*.db"))


def test_every_door_calls_the_one_job_function(tmp_path, tiny_plugin_path, monkeypatch):
    calls = []
    real = grid_jobs.run_job

    def spy(job, *args, **kwargs):
        calls.append(job.model)
        return real(job, *args, **kwargs)

    import brainrank.grid.execute as grid_execute

    monkeypatch.setattr(grid_execute, "run_job", spy)
    brainrank.get_registry([tiny_plugin_path])
    brainrank.score("tiny/net", "tiny/data", "rsa")
    run_grid(registry=Registry(plugin_files=[tiny_plugin_path]), store=MemoryStore(),
             models=["tiny/net"], datasets=["tiny/data"], metrics=["rsa"], progress=False)  # fmt: skip
    assert calls == ["tiny/net", "tiny/net"]


def test_errors_from_the_python_api_are_raised_and_recorded(tmp_path, tiny_plugin_path):
    brainrank.get_registry([tiny_plugin_path])
    dataset = brainrank.load_dataset("tiny/data")
    model = brainrank.load_model("tiny/net")
    metric = brainrank.load_metric("rsa")

    def broken(features, ds):
        raise RuntimeError("metric bug")

    metric.score = broken
    db = str(tmp_path / "api.db")
    with pytest.raises(RuntimeError, match="metric bug"):
        brainrank.score(model, dataset, metric, db=db)
    store = open_store(db, create=False)
    failures = store.failures_frame()
    assert list(failures["stage"]) == ["score"] and "metric bug" in failures["message"].iloc[0]
    assert failures["traceback"].iloc[0]
    assert list(store.runs_frame()["status"]) == ["failed"]


def test_both_stores_implement_the_protocol(tmp_path):
    assert isinstance(MemoryStore(), ResultStore)
    assert isinstance(open_store(str(tmp_path / "p.db")), ResultStore)
