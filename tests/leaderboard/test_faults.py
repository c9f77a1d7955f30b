"""Fault injection: a run killed with SIGKILL during extraction, during scoring or inside a
leaderboard write (on SQLite and PostgreSQL), then run again, ends with exactly the
leaderboard of an uninterrupted run: every score and every per-neuroid value, no row lost,
none duplicated, and the killed run recorded as killed. Two runs with overlapping grids at
the same time end the same way.

The faults are injected by a driver script that wraps one brainrank function in the child
process (a marker file says when the child is inside it) before calling the command line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from brainrank.leaderboard import open_store
from brainrank.leaderboard.compare import compare

MODELS = "tiny/net,baseline/pixels,baseline/gabor"
METRICS = "rsa,srp-ridge"

DRIVER = textwrap.dedent(
    """
    import os, pathlib, sys, time
    point, mark = os.environ["FAULT_POINT"], pathlib.Path(os.environ["FAULT_MARK"])
    calls = {"n": 0}

    def stall(original):
        def wrapper(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == int(os.environ.get("FAULT_AT", "2")):
                if point != "write":
                    mark.write_text(point)
                    time.sleep(600)
                result = original(*args, **kwargs)
                mark.write_text(point)  # inside the write transaction, rows not committed
                time.sleep(600)
                return result
            return original(*args, **kwargs)
        return wrapper

    import brainrank.grid.jobs as jobs
    from brainrank.leaderboard.store import Store
    if point == "extraction":
        jobs.compute_features = stall(jobs.compute_features)
    elif point == "scoring":
        jobs.score_features = stall(jobs.score_features)
    elif point == "write":
        Store._write_arrays = stall(Store._write_arrays)
    from brainrank.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _command(plugin, db, *extra):
    return ["--plugin", str(plugin), "run", "--models", MODELS, "--datasets", "tiny/data",
            "--metrics", METRICS, "--db", db, "--quiet", "--no-cache", *extra]  # fmt: skip


def _run(args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "brainrank", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_plugin_path_module):
    """The leaderboard of an uninterrupted run."""
    folder = tmp_path_factory.mktemp("reference")
    db = f"sqlite:///{folder / 'reference.db'}"
    env = {"BRAINRANK_HOME": str(folder / "home")}
    out = _run(_command(tiny_plugin_path_module, db), env)
    assert out.returncode == 0, out.stderr[-3000:]
    return db


@pytest.fixture(scope="module")
def tiny_plugin_path_module():
    from pathlib import Path

    return Path(__file__).parents[1] / "fixtures" / "tiny_plugin.py"


def _same_as_reference(db: str, reference: str) -> None:
    result = compare(open_store(reference), open_store(db), per_neuroid=True)
    assert result.n_common > 0
    assert result.only_a.empty, f"lost: {result.only_a.head()}"
    assert result.only_b.empty, f"extra: {result.only_b.head()}"
    assert result.changed.empty, f"changed: {result.changed.head()}"
    frame = open_store(db).scores_frame()
    assert not frame.duplicated(
        ["model", "dataset", "metric", "subject", "region", "layer", "selection"]
    ).any()


# SQLite in `make test`; PostgreSQL (a server on 127.0.0.1:5432) in `make test-slow`
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]


def _url(kind: str, request, tmp_path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'lb.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("point", ["extraction", "scoring", "write"])
def test_sigkill_then_rerun_gives_the_uninterrupted_leaderboard(
    point, backend, request, tmp_path, reference, tiny_plugin_path_module
):
    db_url = _url(backend, request, tmp_path)
    mark = tmp_path / "inside"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "FAULT_POINT": point, "FAULT_MARK": str(mark),
           "BRAINRANK_HOME": str(tmp_path / "home")}  # fmt: skip
    proc = subprocess.Popen([sys.executable, str(driver), *_command(tiny_plugin_path_module,
                                                                   db_url)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.time() + 300
    while not mark.exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline, f"the run never reached the {point} fault"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    if point == "write":  # the transaction died with the process: nothing half-written
        store = open_store(db_url)
        done = store.completions_frame()
        rows = store.scores_frame()
        for key, group in rows.groupby(["model", "metric"]):
            assert ((done["model"] == key[0]) & (done["metric"] == key[1])).any(), key
            assert int(done[(done["model"] == key[0]) & (done["metric"] == key[1])]
                       ["n_scores"].iloc[0]) == len(group)  # fmt: skip
    out = _run(
        _command(tiny_plugin_path_module, db_url), {"BRAINRANK_HOME": str(tmp_path / "home")}
    )
    assert out.returncode == 0, out.stderr[-3000:]
    _same_as_reference(db_url, reference)
    runs = open_store(db_url).runs_frame().sort_values("id")
    assert runs["status"].tolist() == ["killed", "ok"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_concurrent_runs_with_overlapping_grids(backend, request, tmp_path, reference,
                                                    tiny_plugin_path_module):  # fmt: skip
    db_url = _url(backend, request, tmp_path)
    home = {"BRAINRANK_HOME": str(tmp_path / "home")}
    first = ["--plugin", str(tiny_plugin_path_module), "run", "--models",
             "tiny/net,baseline/pixels", "--datasets", "tiny/data", "--metrics", METRICS,
             "--db", db_url, "--quiet", "--no-cache"]  # fmt: skip
    second = ["--plugin", str(tiny_plugin_path_module), "run", "--models",
              "baseline/pixels,baseline/gabor", "--datasets", "tiny/data", "--metrics", METRICS,
              "--db", db_url, "--quiet", "--no-cache"]  # fmt: skip
    procs = [subprocess.Popen([sys.executable, "-m", "brainrank", *args],
                              env={**os.environ, **home}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for args in (first, second)]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-3000:]
    _same_as_reference(db_url, reference)
