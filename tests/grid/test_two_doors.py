"""The two doors to the leaderboard, ``brainrank run`` (the grid) and ``brainrank.score``
(the Python API), plan the same combination the same way: one plan hash (the resume key)
and one run configuration; the run record tells the door apart in its ``executor`` only.
So a score stored through one door is reused, not recomputed, by the other."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest
from click.testing import CliRunner

import brainrank
from brainrank.cli import main
from brainrank.leaderboard import open_store

MODEL, DATASET, METRIC = "baseline/pixels", "tiny/data", "rsa"


def tiny_module(path):
    spec = importlib.util.spec_from_file_location("tiny_for_two_doors", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grid_door(db: str, plugin) -> None:
    result = CliRunner().invoke(main, ["run", "--quiet", "--plugin", str(plugin), "--db", db,
                                       "--models", MODEL, "--datasets", DATASET,
                                       "--metrics", METRIC])  # fmt: skip
    assert result.exit_code == 0, result.output


def api_door(db: str, plugin, dataset_as: str) -> pd.DataFrame:
    brainrank.get_registry([plugin])
    dataset = DATASET if dataset_as == "identifier" else tiny_module(plugin).build_dataset()
    return brainrank.score(MODEL, dataset, METRIC, db=db)


def run_records(db: str) -> pd.DataFrame:
    return open_store(db, create=False).runs_frame().set_index("id")


def completion(db: str) -> pd.Series:
    done = open_store(db, create=False).completions_frame()
    assert len(done) == 1
    return done.iloc[0]


def without_pid(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "pid"}


@pytest.mark.parametrize("dataset_as", ["identifier", "object"])
def test_both_doors_make_one_plan_hash_and_one_run_configuration(tmp_path, tiny_plugin_path,
                                                                 dataset_as):  # fmt: skip
    grid_db, api_db = str(tmp_path / "grid.db"), str(tmp_path / "api.db")
    grid_door(grid_db, tiny_plugin_path)
    api_door(api_db, tiny_plugin_path, dataset_as)
    assert completion(grid_db)["plan_hash"] == completion(api_db)["plan_hash"]
    grid_run, api_run = run_records(grid_db).iloc[0], run_records(api_db).iloc[0]
    assert without_pid(grid_run["config"]) == without_pid(api_run["config"])
    assert grid_run["executor"] == "local"
    assert api_run["executor"] == "local (brainrank.score)"


def test_a_score_stored_by_the_python_api_is_reused_by_the_grid(tmp_path, tiny_plugin_path):
    db = str(tmp_path / "lb.db")
    api_door(db, tiny_plugin_path, "identifier")
    grid_door(db, tiny_plugin_path)
    runs = run_records(db)
    assert list(runs["status"]) == ["ok", "ok"]
    assert runs["n_scores"].iloc[1] == 0 and runs["n_skipped"].iloc[1] == 1  # reused
    assert set(open_store(db).scores_frame()["run_id"]) == {runs.index[0]}
    assert completion(db)["run_id"] == runs.index[0]


def test_a_score_stored_by_the_grid_is_reused_by_the_python_api(tmp_path, tiny_plugin_path):
    db = str(tmp_path / "lb.db")
    grid_door(db, tiny_plugin_path)
    frame = api_door(db, tiny_plugin_path, "identifier")
    runs = run_records(db)
    assert list(runs["status"]) == ["ok", "ok"]
    assert runs["n_scores"].iloc[1] == 0 and runs["n_skipped"].iloc[1] == 1  # reused
    stored = open_store(db).scores_frame()
    assert set(stored["run_id"]) == {runs.index[0]}
    # the frame returned is the stored result
    key = ["subject", "region", "layer", "selection"]
    mine = frame.set_index(key).sort_index()
    theirs = stored.set_index(key).sort_index()
    assert len(mine) == len(theirs) > 0
    assert list(mine.index) == list(theirs.index)
    pd.testing.assert_series_equal(mine["score"], theirs["score"], check_dtype=False)
