"""Job leasing: two runs on one leaderboard never compute the same (model, dataset, metric).

A job leases its combinations before extracting and scoring them; a combination another
live run holds is skipped and waited for (then counted as stored by that run, or computed
here if its holder stopped without storing it). Leases of dead holders (run ended, process
gone from this host, no heartbeat) are taken over. SQLite and PostgreSQL (the
``postgres_url`` and ``db_url`` fixtures of tests/leaderboard/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter

import pytest

import brainrank.grid.execute as grid_execute
from brainrank.core.registry import Registry
from brainrank.core.scores import Score
from brainrank.grid import run_grid
from brainrank.leaderboard import open_store, scores
from brainrank.leaderboard.compare import compare
from brainrank.leaderboard.schema import LeaseRow
from brainrank.leaderboard.store import Store
from brainrank.results import LeaseOutcome

KEY = ("tiny/net", "tiny/data", "rsa", "h1")


def _run(store: Store) -> int:
    return store.start_run({"test": True})


def _set_lease(store: Store, **values) -> None:
    with store.engine.begin() as conn:
        conn.execute(LeaseRow.__table__.update().values(**values))


# --------------------------------------------------------------------------- the store


def test_a_lease_is_held_until_its_scores_are_written_then_done(db_url):
    store = open_store(db_url)
    first, second = _run(store), _run(store)
    assert store.acquire_leases(first, "a", [(KEY, "p")]) == {KEY: (LeaseOutcome.ACQUIRED, first)}
    assert store.acquire_leases(first, "a", [(KEY, "p")]) == {
        KEY: (LeaseOutcome.ACQUIRED, first)
    }  # again
    assert store.acquire_leases(second, "b", [(KEY, "p")]) == {KEY: (LeaseOutcome.HELD, first)}
    assert store.lease_holders([KEY]) == {KEY: first}
    assert store.renew_leases("a") == 1 and store.renew_leases("b") == 0
    # writing the scores drops the lease in the same transaction; then it is done
    store.write_scores(run_id=first, model=KEY[0], dataset=KEY[1], metric=FakeMetric(),
                       scores=[Score("s1", "a", "l1", 0.5, n_neuroids=3)], plan_hash="p")  # fmt: skip
    assert store.leases_frame().empty and store.lease_holders([KEY]) == {}
    assert store.acquire_leases(second, "b", [(KEY, "p")]) == {KEY: (LeaseOutcome.DONE, first)}
    assert store.leases_frame().empty  # nothing to compute: no lease kept
    # stored with another plan (other content): computed again
    assert store.acquire_leases(second, "b", [(KEY, "q")]) == {KEY: (LeaseOutcome.ACQUIRED, second)}
    store.release_leases("b", [KEY])
    assert store.leases_frame().empty


def test_leases_of_dead_holders_are_taken_over(db_url):
    store = open_store(db_url)
    first, second = _run(store), _run(store)
    # no heartbeat for longer than the timeout
    assert store.acquire_leases(first, "a", [(KEY, "p")])[KEY][0] == LeaseOutcome.ACQUIRED
    _set_lease(store, heartbeat=time.time() - 100)
    assert store.acquire_leases(second, "b", [(KEY, "p")], timeout=50) == {
        KEY: (LeaseOutcome.ACQUIRED, second)
    }
    assert store.leases_frame()["token"].tolist() == ["b"]
    # the holder's process is gone from this host
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _set_lease(store, pid=dead.pid)
    assert store.acquire_leases(first, "a", [(KEY, "p")]) == {KEY: (LeaseOutcome.ACQUIRED, first)}
    # the holder's run has ended
    store.finish_run(first, "partial", 0, 1)
    assert store.lease_holders([KEY]) == {}
    assert store.acquire_leases(second, "b", [(KEY, "p")]) == {KEY: (LeaseOutcome.ACQUIRED, second)}
    # a live holder on another host with a fresh heartbeat keeps it
    _set_lease(store, host="someone@elsewhere", pid=1)
    third = _run(store)
    assert store.acquire_leases(third, "c", [(KEY, "p")]) == {KEY: (LeaseOutcome.HELD, second)}


class FakeMetric:
    identifier, config_hash, version, parameters = "rsa", "h1", "1", {}


# --------------------------------------------------------------------------- the grid


def _reference(tmp_path, tiny_plugin_path, models):
    """A serial run's leaderboard."""
    store = open_store(str(tmp_path / "reference.db"))
    summary = run_grid(registry=Registry(plugin_files=[tiny_plugin_path]), store=store,
                       models=models, datasets=["tiny/data"], metrics=["rsa"], progress=False)  # fmt: skip
    assert summary.status == "ok"
    return store


def _in_thread(db_url, tiny_plugin_path, models):
    """``run_grid`` in a thread; returns the thread and a dict that gets its summary."""
    out: dict = {}

    def target() -> None:
        try:
            out["summary"] = run_grid(
                registry=Registry(plugin_files=[tiny_plugin_path]), store=open_store(db_url),
                models=models, datasets=["tiny/data"], metrics=["rsa"], progress=False,
            )  # fmt: skip
        except BaseException as exc:  # reported by the test
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def _hold(store: Store, reference: Store, model: str) -> tuple[int, tuple]:
    """Another live run (this process, a fresh heartbeat) holds ``model`` x rsa."""
    done = reference.completions_frame()
    row = done[done["model"] == model].iloc[0]
    key = (model, row["dataset"], row["metric"], row["metric_hash"])
    holder = _run(store)
    assert store.acquire_leases(holder, "other", [(key, "x")])[key] == (
        LeaseOutcome.ACQUIRED,
        holder,
    )
    return holder, key


def _wait_until(condition, seconds=120.0):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def _waiting_run(db_url, tmp_path, tiny_plugin_path, monkeypatch):
    """A run of tiny/net and baseline/pixels, in a thread, while another live run holds
    tiny/net: once it has stored baseline/pixels it is still alive, waiting for tiny/net.
    Returns ``(reference store, store, holder run id, thread, its output dict)``."""
    monkeypatch.setattr(grid_execute, "WAIT_POLL", 0.1)
    reference = _reference(tmp_path, tiny_plugin_path, ["tiny/net", "baseline/pixels"])
    store = open_store(db_url)
    holder, _ = _hold(store, reference, "tiny/net")
    thread, out = _in_thread(db_url, tiny_plugin_path, ["tiny/net", "baseline/pixels"])
    _wait_until(lambda: (store.completions_frame()["model"] == "baseline/pixels").any())
    time.sleep(0.5)
    assert thread.is_alive()  # waiting for tiny/net
    return reference, store, holder, thread, out


def test_a_run_waits_for_a_combination_another_run_holds_and_reports_it_as_theirs(
    db_url, tmp_path, tiny_plugin_path, monkeypatch
):
    reference, store, holder, thread, out = _waiting_run(
        db_url, tmp_path, tiny_plugin_path, monkeypatch
    )
    # the holder stores it (the same rows as the serial run's), then its lease is gone
    rows = scores(reference)
    rows = rows[rows["model"] == "tiny/net"]
    plan = reference.completions_frame().set_index("model").loc["tiny/net", "plan_hash"]
    metric = Registry(plugin_files=[tiny_plugin_path]).get("metric", "rsa").load()
    store.write_scores(run_id=holder, model="tiny/net", dataset="tiny/data", metric=metric,
                       scores=[_score(r) for r in rows.itertuples()], plan_hash=plan)  # fmt: skip
    thread.join(120)
    assert not thread.is_alive() and "error" not in out, out.get("error")
    summary = out["summary"]
    assert summary.status == "ok" and summary.complete
    assert (summary.n_planned, summary.n_scored, summary.n_elsewhere) == (2, 1, 1)
    done = store.completions_frame().set_index("model")["run_id"].to_dict()
    assert done == {"tiny/net": holder, "baseline/pixels": summary.run_id}
    run = store.runs_frame().set_index("id").loc[summary.run_id]
    assert run["status"] == "ok" and run["n_skipped"] == 1


def test_a_combination_whose_holder_gives_up_is_computed_by_the_waiting_run(
    db_url, tmp_path, tiny_plugin_path, monkeypatch
):
    reference, store, holder, thread, out = _waiting_run(
        db_url, tmp_path, tiny_plugin_path, monkeypatch
    )
    store.finish_run(holder, "failed", 0, 1)  # it stopped without storing tiny/net
    thread.join(120)
    assert not thread.is_alive() and "error" not in out, out.get("error")
    summary = out["summary"]
    assert summary.status == "ok" and (summary.n_scored, summary.n_elsewhere) == (2, 0)
    assert set(store.completions_frame()["run_id"]) == {summary.run_id}
    result = compare(reference, store, per_neuroid=True)
    assert result.n_common > 0 and result.only_a.empty and result.only_b.empty
    assert result.changed.empty


def _score(row) -> Score:
    return Score(row.subject, row.region, row.layer, row.score, n_neuroids=int(row.n_neuroids),
                 selection=row.selection, layer_index=row.layer_index,
                 relative_depth=row.relative_depth, ceiling=row.ceiling)  # fmt: skip


# --------------------------------------------------------------------------- two processes

LOGGED_PLUGIN = textwrap.dedent(
    """
    import os, time
    from brainrank.plugin import MetricMetadata, MetricSpec, hookimpl
    from brainrank.plugins.metrics.rsa import RSA

    def logged(name, comparison):
        class Logged(RSA):
            identifier = name

            def __init__(self):
                super().__init__(comparison=comparison)

            def score(self, features, dataset):
                with open(os.environ["SCORED_LOG"], "a") as fh:
                    fh.write(f"{os.getpid()} {features.model} {self.identifier}\\n")
                time.sleep(float(os.environ.get("SLOW_SECONDS", "0")))
                return super().score(features, dataset)

        return Logged

    @hookimpl
    def brainrank_metrics():
        return [MetricSpec(name, logged(name, comparison), MetricMetadata("rsa, logged"))
                for name, comparison in (("logged-p", "pearson"), ("logged-s", "spearman"))]
    """
)

MODELS = ["tiny/net", "baseline/pixels", "baseline/gabor"]
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_concurrent_runs_compute_disjoint_combinations(backend, request, tmp_path,
                                                           tiny_plugin_path):  # fmt: skip
    db_url = (f"sqlite:///{tmp_path / 'lb.db'}" if backend == "sqlite"
              else request.getfixturevalue("postgres_url"))  # fmt: skip
    plugin = tmp_path / "logged_plugin.py"
    plugin.write_text(LOGGED_PLUGIN)
    log = tmp_path / "scored.log"
    env = {**os.environ, "SCORED_LOG": str(log), "SLOW_SECONDS": "0.7",
           "BRAINRANK_HOME": str(tmp_path / "home")}  # fmt: skip

    def command(models, db=db_url):
        return [sys.executable, "-m", "brainrank", "--plugin", str(tiny_plugin_path), "--plugin",
                str(plugin), "run", "--models", ",".join(models), "--datasets", "tiny/data",
                "--metrics", "logged-p,logged-s", "--db", db, "--quiet", "--no-cache"]  # fmt: skip

    # opposite orders: each run reaches the other's first models while those are in flight
    procs = [subprocess.Popen(command(models), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for models in (MODELS, MODELS[::-1])]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-3000:]
    lines = [line.split() for line in log.read_text().splitlines()]
    computed = Counter((model, metric) for _, model, metric in lines)
    assert set(computed) == {(m, x) for m in MODELS for x in ("logged-p", "logged-s")}
    assert max(computed.values()) == 1, computed  # no combination computed twice
    store = open_store(db_url)
    runs = store.runs_frame()
    assert (runs["status"] == "ok").all() and len(runs) == 2
    run_of_pid = {str(r.config["pid"]): r.id for r in runs.itertuples()}
    assert {pid for pid, _, _ in lines} == set(run_of_pid)  # both runs computed some
    done = store.completions_frame()
    for pid, model, metric in lines:  # each stored by the run that computed it
        row = done[(done["model"] == model) & (done["metric"] == metric)]
        assert row["run_id"].tolist() == [run_of_pid[pid]]
    assert store.leases_frame().empty
    # the union is the leaderboard of one serial run
    serial = f"sqlite:///{tmp_path / 'serial.db'}"
    env["SCORED_LOG"], env["SLOW_SECONDS"] = str(tmp_path / "serial.log"), "0"
    out = subprocess.run(command(MODELS, serial), env=env, capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = compare(open_store(serial), store, per_neuroid=True)
    assert result.n_common > 0 and result.only_a.empty and result.only_b.empty
    assert result.changed.empty
