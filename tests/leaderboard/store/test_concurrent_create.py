"""Several processes creating the same new SQLite leaderboard at the same instant.

SQLite does not apply its busy timeout to the switch into WAL mode, so without a retry
around it about one process in five lost the race with "database is locked" (seen in CI
as a failed concurrent ``brainrank run``)."""

from __future__ import annotations

import multiprocessing as mp
import sys
import time

import pytest

from brainrank.leaderboard.store import SCHEMA_VERSION, Store

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses fork")


def _open_at(url: str, start: float, results) -> None:
    while time.time() < start:
        pass
    try:
        store = Store(url)
        store.close()
        results.put("ok")
    except Exception as exc:  # reported to the parent, which asserts on it
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_creating_one_new_leaderboard_at_once_all_open_it(tmp_path):
    ctx = mp.get_context("fork")
    failures = []
    for round_ in range(12):
        url = f"sqlite:///{tmp_path / f'lb{round_}.db'}"
        results = ctx.Queue()
        start = time.time() + 0.3
        procs = [ctx.Process(target=_open_at, args=(url, start, results)) for _ in range(6)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=120)
        outcomes = [results.get(timeout=10) for _ in procs]
        failures += [outcome for outcome in outcomes if outcome != "ok"]
        store = Store(url)
        assert store.schema_version() == SCHEMA_VERSION
        store.close()
    assert failures == []
