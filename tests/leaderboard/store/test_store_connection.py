"""Opening a leaderboard (brainrank/leaderboard/store/connection.py) on SQLite and
PostgreSQL: schema migration in place, a newer schema refused, clear errors for paths and
databases it cannot use."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from _store_rows import FakeMetric, rows
from sqlalchemy import create_engine, text

from brainrank.core.errors import StoreError
from brainrank.leaderboard import SCHEMA_VERSION, open_store, scores
from brainrank.leaderboard.engine import engine_url
from brainrank.leaderboard.store import Store

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _load_v1_sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.executescript((FIXTURES / "leaderboard_v1.sqlite.sql").read_text())
    con.close()


def test_a_version_1_sqlite_leaderboard_is_migrated_in_place(tmp_path):
    path = tmp_path / "old.db"
    _load_v1_sqlite(path)
    con = sqlite3.connect(path)
    before = con.execute(
        "SELECT model, metric, layer, selection, value FROM scores ORDER BY id"
    ).fetchall()
    con.close()
    assert len(before) == 48
    store = open_store(str(path))
    assert store.migrated_from == [2, 3, 4] and store.schema_version() == SCHEMA_VERSION
    assert Path(f"{path}.schema-v1.bak").is_file()  # a copy of the old file is kept
    frame = scores(store)
    after = list(
        frame[["model", "metric", "layer", "selection", "score"]].itertuples(index=False, name=None)
    )
    assert after == before  # every v1 score is still there, unchanged
    assert frame["weights_hash"].isna().all()
    assert {"neuroid_values", "neuroid_sets", "completions"} <= set(store.table_names())
    # new writes work, and opening it again changes nothing
    store.write_scores(
        run_id=None,
        model="m/new",
        dataset="d",
        metric=FakeMetric(),
        scores=rows(),
        weights_hash="w",
        plan_hash="p",
    )
    again = open_store(str(path))
    assert again.migrated_from == [] and len(scores(again)) == 52


def test_a_version_1_postgresql_leaderboard_is_migrated(postgres_url, tmp_path):
    engine = create_engine(engine_url(postgres_url))
    ddl = (FIXTURES / "schema_v1.postgresql.sql").read_text()
    with engine.begin() as conn:
        for statement in filter(str.strip, ddl.split(";")):
            conn.exec_driver_sql(statement)
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('schema_version', '1')"))
        conn.execute(
            text(
                "INSERT INTO scores (model, dataset, metric, metric_hash, subject, region, layer, "
                "selection, value, updated_at) VALUES ('m/old', 'd', 'fake', 'h', 's1', 'V1', 'l1', "
                "'max', 0.42, now())"
            )
        )
    engine.dispose()
    store = Store(postgres_url)
    assert store.migrated_from == [2, 3, 4] and store.schema_version() == SCHEMA_VERSION
    frame = scores(store)
    assert frame["score"].tolist() == [pytest.approx(0.42)] and frame["model"].tolist() == ["m/old"]
    store.write_scores(
        run_id=None,
        model="m/new",
        dataset="d",
        metric=FakeMetric(),
        scores=rows(),
        weights_hash="w",
        plan_hash="p",
    )
    assert store.count("scores") == 5 and store.count("completions") == 1


def test_a_newer_schema_is_refused_with_advice(tmp_path):
    path = tmp_path / "lb.db"
    open_store(str(path)).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=r"newer than this brainrank.*upgrade brainrank"):
        open_store(str(path))


def test_unwritable_database_path_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the folder"):
        open_store(str(blocker / "sub" / "lb.db"))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # not when running as root
            with pytest.raises(StoreError, match=r"not writable.*--db"):
                open_store(str(locked / "lb.db"))
    finally:
        locked.chmod(0o700)
    if os.path.isdir("/proc/self"):  # a filesystem where even root cannot create files
        with pytest.raises(StoreError, match=r"cannot open the leaderboard.*--db"):
            open_store("/proc/brainrank-test.db")


def test_unsupported_or_unreachable_databases():
    with pytest.raises(StoreError):
        open_store("notadb://x")
    with pytest.raises(StoreError, match=r"cannot open the leaderboard.*--db"):
        open_store("postgresql://127.0.0.1:1/nothing?connect_timeout=2")
