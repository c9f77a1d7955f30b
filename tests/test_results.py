"""The contracts the grid and the leaderboard share (brainrank/results.py): both stores
implement the result sink and the lease board with the same types."""

from __future__ import annotations

import pytest

from brainrank.core.registry import Registry
from brainrank.grid import run_grid
from brainrank.leaderboard import open_store
from brainrank.results import LeaseBoard, LeaseOutcome, MemoryStore, ResultSink, ResultStore

KEY = ("m", "d", "x", "h")


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    return MemoryStore() if request.param == "memory" else open_store(str(tmp_path / "lb.db"))


def test_both_stores_are_sinks_and_lease_boards(store):
    assert isinstance(store, ResultSink) and isinstance(store, LeaseBoard)
    assert isinstance(store, ResultStore)


def test_lease_outcomes_are_the_enum_in_both_stores(store):
    first = store.start_run({}, executor="test")
    second = store.start_run({}, executor="test")
    got = store.acquire_leases(first, "a", [(KEY, "p")])
    assert got == {KEY: (LeaseOutcome.ACQUIRED, first)}
    assert type(got[KEY][0]) is LeaseOutcome
    assert store.acquire_leases(second, "b", [(KEY, "p")])[KEY][0] is LeaseOutcome.HELD


def test_completion_records_name_their_run(store, tiny_plugin_path):
    summary = run_grid(registry=Registry(plugin_files=[tiny_plugin_path]), store=store,
                       models=["tiny/net"], datasets=["tiny/data"], metrics=["rsa"],
                       progress=False)  # fmt: skip
    assert summary.n_scored == 1
    (record,) = store.completed([("tiny/net", "tiny/data", "rsa", _rsa_hash())]).values()
    assert record["run_id"] == summary.run_id and record["plan_hash"]


def test_recompute_scores_again_in_memory_too(tiny_plugin_path):
    """Was: MemoryStore's completion records had no run, so a recomputing run took the
    record it meant to replace for one stored by another run, and scored nothing."""
    store = MemoryStore()
    kwargs = dict(registry=Registry(plugin_files=[tiny_plugin_path]), store=store,
                  models=["tiny/net"], datasets=["tiny/data"], metrics=["rsa"], progress=False)  # fmt: skip
    first = run_grid(**kwargs)
    again = run_grid(**kwargs, recompute=True)
    assert (first.n_scored, again.n_scored, again.n_elsewhere) == (1, 1, 0)
    (result,) = store.results.values()
    assert result.run_id == again.run_id


def _rsa_hash() -> str:
    from brainrank.plugins.metrics.rsa import RSA

    return RSA().config_hash
