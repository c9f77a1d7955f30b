"""Fits/s in the leaderboard: every run records its seconds per stage (model building,
extraction, scoring, writing) and the regression fits its scoring made; `brainrank runs`
shows them with fits/s; leaderboards of schema version 2 gain the columns on opening."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.core.registry import Registry
from brainrank.core.scores import Score
from brainrank.grid import run_grid
from brainrank.leaderboard import SCHEMA_VERSION, open_store, scores
from brainrank.plugins.metrics.rsa import RSA
from brainrank.results import STAGES

SEPARATELY = ["seconds_model", "seconds_extraction", "seconds_scoring", "seconds_writing"]


def _grid(tiny_plugin_path, store, metrics):
    registry = Registry(plugin_files=[tiny_plugin_path])
    return run_grid(registry=registry, store=store, models=["tiny/net"], datasets=["tiny/data"],
                    metrics=metrics, progress=False)  # fmt: skip


def test_a_run_records_stage_seconds_and_the_known_number_of_fits(tmp_path, tiny_plugin_path):
    store = open_store(str(tmp_path / "lb.db"))
    summary = _grid(tiny_plugin_path, store, ["srp-ridge", "rsa"])
    assert summary.status == "ok", summary.failures
    # the expected count, from the definitions: every layer of tiny/net (conv, relu, pool,
    # fc: flatten repeats pool and is dropped) x every neuroid of tiny/data x every alpha
    registry = Registry(plugin_files=[tiny_plugin_path])
    n_neuroids = registry.get("dataset", "tiny/data").load().responses().sizes["neuroid"]
    n_alphas = len(registry.get("metric", "srp-ridge").load().parameters["alphas"])
    n_layers = 4
    assert (n_neuroids, n_alphas) == (6, 11)
    stored = scores(store)
    srp = stored[(stored["metric"] == "srp-ridge") & (stored["selection"] == "layer")]
    assert srp["layer"].nunique() == n_layers
    expected = n_layers * n_neuroids * n_alphas  # rsa fits nothing
    run = store.runs_frame().iloc[0]
    assert int(run["fits"]) == expected == summary.stats.fits
    for column in SEPARATELY:
        assert run[column] > 0, column
    assert set(summary.stats.seconds) == set(STAGES)
    assert sum(summary.stats.seconds.values()) == pytest.approx(
        sum(run[c] for c in SEPARATELY), rel=1e-6
    )


def test_rsa_reports_no_fits_but_its_seconds(tmp_path, tiny_plugin_path):
    store = open_store(str(tmp_path / "lb.db"))
    assert _grid(tiny_plugin_path, store, ["rsa"]).status == "ok"
    run = store.runs_frame().iloc[0]
    assert int(run["fits"]) == 0 and run["seconds_scoring"] > 0 and run["seconds_writing"] > 0


def test_count_fits_reads_a_metric_s_own_count_and_skips_summary_and_nan_rows():
    rows = [Score("s", "a", "l1", 0.5, n_neuroids=3), Score("s", "a", "l2", float("nan")),
            Score("s", "a", "l1", 0.5, n_neuroids=3, selection="max")]  # fmt: skip

    class Counted(RSA):
        def count_fits(self, scores):
            return 7

    class Ridge(RSA):
        needs = "responses"

    ridge = Ridge()
    ridge.parameters["alphas"] = [1.0, 10.0]
    assert RSA().count_fits(rows) == 0
    assert Counted().count_fits(rows) == 7
    assert ridge.count_fits(rows) == 2 * 3  # the NaN layer and the summary row: no fits


def test_brainrank_runs_shows_fits_seconds_and_fits_per_second(tmp_path, tiny_plugin_path):
    db = str(tmp_path / "lb.db")
    store = open_store(db)
    summary = _grid(tiny_plugin_path, store, ["srp-ridge"])
    run = store.runs_frame().iloc[0]
    table = CliRunner().invoke(main, ["runs", "--db", db])
    assert table.exit_code == 0, table.output
    assert "fits/s" in table.output and "s_extraction" in table.output
    assert str(int(run["fits"])) in table.output
    rows = json.loads(CliRunner().invoke(main, ["runs", "--db", db, "--format", "json"]).output)
    assert rows[0]["fits"] == summary.stats.fits
    assert rows[0]["fits_per_s_scoring"] == pytest.approx(run["fits"] / run["seconds_scoring"])
    one = CliRunner().invoke(main, ["runs", "--db", db, "--run", str(summary.run_id),
                                    "--format", "json"])  # fmt: skip
    stages = {r["stage"]: r for r in json.loads(one.output)}
    assert set(stages) == {*STAGES, "all"}
    assert stages["scoring"]["fits_per_s"] == pytest.approx(run["fits"] / run["seconds_scoring"])
    assert stages["all"]["seconds"] == pytest.approx(sum(run[c] for c in SEPARATELY))
    text = CliRunner().invoke(main, ["runs", "--db", db, "--run", str(summary.run_id)]).output
    assert "extraction" in text and "fits_per_s" in text
    missing = CliRunner().invoke(main, ["runs", "--db", db, "--run", "99"])
    assert missing.exit_code != 0 and "there is no run 99" in missing.output


def _as_version_2(path) -> None:
    """Make a current leaderboard look like one of schema version 2."""
    con = sqlite3.connect(path)
    for column in (*SEPARATELY, "fits"):
        con.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    con.execute("DROP TABLE leases")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.commit()
    con.close()


def test_a_version_2_leaderboard_gains_stage_columns_and_leases(tmp_path, tiny_plugin_path):
    path = tmp_path / "lb.db"
    assert _grid(tiny_plugin_path, open_store(str(path)), ["rsa"]).status == "ok"
    _as_version_2(path)
    store = open_store(str(path))
    assert store.migrated_from == [3, 4] and store.schema_version() == SCHEMA_VERSION == 4
    assert "leases" in store.table_names()
    old = store.runs_frame().iloc[0]
    assert old["status"] == "ok" and old[[*SEPARATELY, "fits"]].isna().all()
    # an old run shows as "-" (no stage times), a new one with its stages
    output = CliRunner().invoke(main, ["runs", "--db", str(path), "--run", str(old["id"])])
    assert "no stage times" in output.output
    summary = _grid(tiny_plugin_path, store, ["srp-ridge"])
    assert summary.status == "ok"
    new = store.runs_frame().set_index("id").loc[summary.run_id]
    assert new["fits"] == summary.stats.fits > 0
