"""Issue 20: a read-only leaderboard can be read. The reading commands open an SQLite
leaderboard read-only (they used to refuse one they could not write: "not writable"), write
nothing to it, and one written by an older brainrank that cannot be migrated here says why."""

from __future__ import annotations

import os
import sqlite3

import pytest
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.core.errors import StoreError
from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import ModelMetadata
from brainrank.leaderboard import open_store, ranking


class Toy(Metric):
    identifier = "toy"
    headline = "heldout"


@pytest.fixture
def leaderboard(tmp_path):
    path = tmp_path / "lb.db"
    store = open_store(str(path))
    store.register_metric(Toy(), "test", defaults={})
    for model, value in (("m/a", 0.4), ("m/b", 0.2)):
        store.register_model(model, ModelMetadata(source="m", architecture=model))
        rows = [Score("s1", "V1", "l1", value), Score("s1", "V1", "l1", value, selection="heldout")]
        store.write_scores(run_id=None, model=model, dataset="d", metric=Toy(), scores=rows)
    store.close()
    return path


def _snapshot(path):
    """The database file's size, time and bytes (SQLite may add its WAL's empty shared
    memory files beside it while reading: no data goes there)."""
    return os.path.getsize(path), os.path.getmtime(path), path.read_bytes()


@pytest.mark.parametrize(
    "command",
    [["leaderboard"], ["query"], ["runs"], ["show", "m/a"], ["failures"], ["metrics", "--stored"]],
)
def test_reading_commands_open_it_read_only(leaderboard, command, monkeypatch):
    before = _snapshot(leaderboard)
    # no write permission here (as root, access() is what brainrank consults)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if mode & os.W_OK
                        else real_access(p, mode, **k))  # fmt: skip
    result = CliRunner().invoke(main, [*command, "--db", str(leaderboard)])
    assert result.exit_code == 0, result.output
    assert "not writable" not in result.output
    assert _snapshot(leaderboard) == before


def test_a_store_opened_for_reading_cannot_write(leaderboard):
    store = open_store(str(leaderboard), create=False)
    assert store.readonly
    assert list(ranking(store, ci=None)["model"]) == ["m/a", "m/b"]
    with pytest.raises(Exception, match="readonly"):
        store._retrying(lambda conn: conn.exec_driver_sql("DELETE FROM runs"))


def test_an_old_read_only_leaderboard_says_why_it_cannot_be_read(leaderboard, monkeypatch):
    with sqlite3.connect(leaderboard) as conn:
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    monkeypatch.setattr(os, "access", lambda p, mode, **k: not mode & os.W_OK)
    with pytest.raises(StoreError, match=r"older than this brainrank's .*read-only here"):
        open_store(str(leaderboard), create=False)
    monkeypatch.undo()
    # writable: migrated (a no-op here: the columns exist), then read
    assert open_store(str(leaderboard), create=False).schema_version() == 4
