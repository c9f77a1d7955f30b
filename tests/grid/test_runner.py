"""The runner: the grid with third-party plugins, failures recorded, content-hash resume
(also after SIGKILL, in a real subprocess), and the same scores on a local Dask cluster."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from brainrank.core.cache import FeatureCache
from brainrank.core.registry import Registry
from brainrank.grid import run_grid
from brainrank.leaderboard import open_store, scores

KEY = ["model", "dataset", "metric", "subject", "region", "layer", "selection"]

# A plugin with models whose weights and a dataset whose data come from files the tests
# change, and a metric that logs every scoring and can be slowed down.
VARIABLE_PLUGIN = textwrap.dedent(
    """
    import os, time
    from collections import OrderedDict
    from pathlib import Path
    import numpy as np
    from brainrank import (Dataset, DatasetMetadata, DatasetSpec, MetricMetadata, MetricSpec,
                           Model, ModelMetadata, ModelSpec, StimulusSet, hookimpl,
                           make_responses)
    from brainrank.plugins.metrics.rsa import RSA

    HERE = Path(__file__).parent
    META = ModelMetadata(source="var", architecture="tiny", family="convnet", trained=False)

    def _seed(name):
        path = HERE / name
        return int(path.read_text()) if path.exists() else 0

    def build(i):
        import torch
        from torch import nn
        torch.manual_seed(1000 * i + _seed("weights_seed"))
        module = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 4, 3), relu=nn.ReLU(),
                                           pool=nn.AdaptiveAvgPool2d(2))).eval()
        prep = lambda im: torch.from_numpy(np.array(im, dtype=np.float32)).permute(2, 0, 1) / 255
        return Model(f"var/net-{i}", module, prep, "uint8/255", META)

    IMAGES = {f"img{i:02d}": np.random.default_rng(i).integers(0, 256, (8, 8, 3), dtype=np.uint8)
              for i in range(16)}

    def dataset(data_dir=None):
        ids = list(IMAGES)
        rng = np.random.default_rng(_seed("data_seed"))
        trials = rng.standard_normal((32, 6))
        responses = make_responses(trials, stimulus_id=ids * 2, repetition=[0] * 16 + [1] * 16,
                                   neuroid_id=[f"n{i}" for i in range(6)], subject="s1",
                                   region=["a"] * 3 + ["b"] * 3)
        return Dataset("var/data", StimulusSet("var", ids, IMAGES.__getitem__), DMETA,
                       responses=responses)

    DMETA = DatasetMetadata(species="none", modality="synthetic", regions=("a", "b"))

    class LoggedRSA(RSA):
        identifier = "logged-rsa"

        def score(self, features, dataset):
            time.sleep(float(os.environ.get("SLOW_SECONDS", "0")))
            with open(HERE / "scored.log", "a") as fh:
                fh.write(features.model + "\\n")
            return super().score(features, dataset)

    @hookimpl
    def brainrank_models():
        return [ModelSpec(f"var/net-{i}", (lambda i=i: build(i)), META) for i in range(6)]

    @hookimpl
    def brainrank_datasets():
        return [DatasetSpec("var/data", dataset, DMETA)]

    @hookimpl
    def brainrank_metrics():
        return [MetricSpec("logged-rsa", LoggedRSA, MetricMetadata("rsa, logged"))]
    """
)


@pytest.fixture
def variable_plugin(tmp_path):
    folder = tmp_path / "plugin"
    folder.mkdir()
    path = folder / "variable_plugin.py"
    path.write_text(VARIABLE_PLUGIN)
    return path


def scored_log(plugin) -> list[str]:
    log = plugin.parent / "scored.log"
    return log.read_text().split() if log.exists() else []


def test_grid_scores_every_combination_and_a_rerun_recomputes_nothing(tmp_path, tiny_plugin_path):
    registry = Registry(plugin_files=[tiny_plugin_path])
    store = open_store(str(tmp_path / "lb.db"))
    cache = FeatureCache(tmp_path / "cache")
    kwargs = dict(
        registry=registry,
        store=store,
        models=["tiny/net", "baseline/pixels"],
        datasets=["tiny/data"],
        metrics=["srp-ridge", "rsa"],
        cache=cache,
        progress=False,
    )
    first = run_grid(**kwargs)
    assert not first.failures, first.failures
    assert first.n_scored == 4 and first.n_stored == 0
    frame = scores(store)
    # tiny/net has 4 distinct layers (flatten repeats pool), pixels 1; 2 regions; 2 metrics
    per_layer = frame[frame["selection"] == "layer"]
    assert len(per_layer) == (4 + 1) * 2 * 2
    assert len(frame[frame["selection"] == "max"]) == 2 * 2 * 2
    assert first.n_scores == len(frame)
    # every row carries the content hashes that determine it
    assert frame[["weights_hash", "stimuli_hash", "data_hash", "feature_key"]].notna().all().all()
    assert frame.groupby("model")["weights_hash"].nunique().eq(1).all()
    # the same grid again: everything is stored, nothing is recomputed or duplicated
    second = run_grid(**kwargs)
    assert second.n_scores == 0 and second.n_scored == 0 and second.n_stored == 4
    again = scores(store)
    assert len(again) == len(frame)
    pd_sorted = again.sort_values(KEY)["score"].to_numpy()
    np.testing.assert_allclose(pd_sorted, frame.sort_values(KEY)["score"].to_numpy())
    # --recompute scores again, in place, with the same values (features from the cache)
    third = run_grid(**kwargs, recompute=True)
    assert third.n_scored == 4 and third.n_scores == len(frame)
    final = scores(store)
    assert len(final) == len(frame) and set(final["run_id"]) == {third.run_id}
    np.testing.assert_allclose(final.sort_values(KEY)["score"].to_numpy(), pd_sorted)
    runs = store.runs_frame()
    assert runs["n_skipped"].tolist() == [0, 4, 0] and (runs["status"] == "ok").all()
    # the dataset is driven by layer 'pool' of tiny/net: that layer wins the ridge metric
    best = frame[(frame["selection"] == "max") & (frame["metric"] == "srp-ridge")]
    tiny = best[best["model"] == "tiny/net"]
    assert (tiny["layer"] == "pool").all() and (tiny["score"] > 0.8).all()


def test_changed_data_or_weights_are_scored_again(tmp_path, variable_plugin):
    registry = Registry(plugin_files=[variable_plugin])
    store = open_store(str(tmp_path / "lb.db"))
    grid = dict(
        registry=registry,
        store=store,
        models=["var/net-0", "var/net-1"],
        datasets=["var/data"],
        progress=False,
    )
    run_grid(**grid, metrics=["logged-rsa"])
    assert len(scored_log(variable_plugin)) == 2
    before = scores(store)
    # new data under the same identifier: its plan hash changes, both models are rescored
    (variable_plugin.parent / "data_seed").write_text("7")
    registry = Registry(plugin_files=[variable_plugin])
    summary = run_grid(**{**grid, "registry": registry}, metrics=["logged-rsa"])
    assert summary.n_scored == 2 and len(scored_log(variable_plugin)) == 4
    after = scores(store)
    assert (
        set(after["data_hash"]).isdisjoint(before["data_hash"])
        and after["data_hash"].nunique() == 1
    )
    # one result per combination: no summary row of the old data is left beside the new one
    summary_rows = after[after["selection"] != "layer"]
    assert not summary_rows.duplicated(["model", "metric", "subject", "region", "selection"]).any()
    assert after["run_id"].nunique() == 1
    # new weights under the same identifier are found when the model is built for other
    # work (here a new metric): its stored combinations are rescored too
    (variable_plugin.parent / "weights_seed").write_text("3")
    registry = Registry(plugin_files=[variable_plugin])
    summary = run_grid(
        **{**grid, "registry": registry, "models": ["var/net-0"]}, metrics=["logged-rsa", "rsa"]
    )
    assert summary.n_scored == 2 and scored_log(variable_plugin)[-1] == "var/net-0"
    net0 = scores(store, model="var/net-0")
    assert net0["weights_hash"].nunique() == 1
    assert net0["weights_hash"].iloc[0] not in set(before["weights_hash"])


def test_failures_are_recorded_and_the_rest_goes_on(tmp_path, tiny_plugin_path):
    broken = tmp_path / "broken_model.py"
    broken.write_text(
        textwrap.dedent(
            """
        from brainrank import ModelMetadata, ModelSpec, hookimpl

        def build():
            raise RuntimeError("weights corrupted")

        @hookimpl
        def brainrank_models():
            return [ModelSpec("broken/net", build, ModelMetadata(source="broken", architecture="x"))]
        """
        )
    )
    failing_import = tmp_path / "failing_import.py"
    failing_import.write_text("import not_a_module_anywhere\n")
    registry = Registry(plugin_files=[tiny_plugin_path, broken, failing_import])
    store = open_store(str(tmp_path / "lb.db"))
    summary = run_grid(
        registry=registry,
        store=store,
        models=["broken/net", "tiny/net"],
        datasets=["tiny/data"],
        metrics=["rsa"],
        progress=False,
    )
    stages = sorted(f.stage for f in summary.failures)
    assert stages == ["model", "plugin"]
    failures = store.failures_frame()
    model_failure = failures[failures["stage"] == "model"].iloc[0]
    assert (
        model_failure["model"] == "broken/net" and "weights corrupted" in model_failure["message"]
    )
    assert "Traceback" in model_failure["traceback"]
    plugin_failure = failures[failures["stage"] == "plugin"].iloc[0]
    assert "not_a_module_anywhere" in plugin_failure["message"]
    assert set(scores(store)["model"]) == {"tiny/net"}
    assert store.runs_frame().iloc[-1]["status"] == "partial"
    # the failed model is tried again by the next run; the stored one is not recomputed
    again = run_grid(
        registry=registry,
        store=store,
        models=["broken/net", "tiny/net"],
        datasets=["tiny/data"],
        metrics=["rsa"],
        progress=False,
    )
    assert again.n_stored == 1 and [f.stage for f in again.failures if f.model] == ["model"]


def _completions(db) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM completions").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # not created yet
        return 0


def test_a_run_killed_with_sigkill_resumes_without_loss_duplicates_or_recomputation(
    tmp_path, variable_plugin
):
    db = tmp_path / "lb.db"
    command = [
        sys.executable,
        "-m",
        "brainrank",
        "run",
        "--plugin",
        str(variable_plugin),
        "--models",
        "var/*",
        "--datasets",
        "var/data",
        "--metrics",
        "logged-rsa",
        "--db",
        str(db),
        "--quiet",
        "--no-cache",
    ]
    env = {**os.environ, "SLOW_SECONDS": "0.6"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while _completions(db) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "the run never stored two combinations"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    stored = _completions(db)
    assert 2 <= stored < 6, "the kill came too late to test anything"
    first_log = scored_log(variable_plugin)
    killed_store = open_store(str(db))
    partial = scores(killed_store)
    assert killed_store.runs_frame()["status"].tolist() == ["running"]  # it never finished
    # every stored combination is complete: all its rows are there
    assert partial.groupby("model").size().eq(partial.groupby("model").size().iloc[0]).all()

    out = subprocess.run(
        command,
        env={**os.environ, "SLOW_SECONDS": "0"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"skipped as already stored: {stored} combinations" in out.stderr
    resumed = scored_log(variable_plugin)[len(first_log) :]
    done_before = set(partial["model"])
    assert len(resumed) == 6 - stored and done_before.isdisjoint(resumed)
    final = scores(open_store(str(db)))
    per_model = len(partial[partial["model"] == sorted(done_before)[0]])
    assert len(final) == 6 * per_model
    assert not final.duplicated(KEY).any()
    assert sorted(final["model"].unique()) == [f"var/net-{i}" for i in range(6)]
    # what the killed run stored is untouched: same values, same run
    merged = partial.merge(final, on=KEY, suffixes=("_before", "_after"))
    assert len(merged) == len(partial)
    np.testing.assert_array_equal(merged["score_before"], merged["score_after"])
    np.testing.assert_array_equal(merged["run_id_before"], merged["run_id_after"])


def _same_scores(store_a, store_b):
    """Both stores hold the same score rows with the same values; returns both, sorted."""
    a = scores(store_a).sort_values(KEY).reset_index(drop=True)
    b = scores(store_b).sort_values(KEY).reset_index(drop=True)
    assert len(a) == len(b) > 0
    assert (a[KEY] == b[KEY]).all().all()
    # Dask workers run one BLAS/torch thread each, the serial run two: the float32 Gram of a
    # 150,528-feature layer (baseline/pixels) sums in another order, which moves an RSA
    # score by up to ~3e-6 (measured); float32 rounding, not a different computation
    np.testing.assert_allclose(a["score"], b["score"], rtol=0, atol=2e-5)
    return a, b


def test_a_local_dask_cluster_gives_the_same_scores(tmp_path, tiny_plugin_path):
    broken = tmp_path / "broken_model.py"
    broken.write_text(
        textwrap.dedent(
            """
        from brainrank import ModelMetadata, ModelSpec, hookimpl

        def build():
            raise RuntimeError("no weights on this worker")

        @hookimpl
        def brainrank_models():
            return [ModelSpec("broken/net", build, ModelMetadata(source="broken", architecture="x"))]
        """
        )
    )
    registry = Registry(plugin_files=[tiny_plugin_path, broken])
    grid = dict(
        models=["tiny/net", "baseline/pixels", "broken/net"],
        datasets=["tiny/data"],
        metrics=["srp-ridge", "rsa"],
        progress=False,
    )
    local = open_store(str(tmp_path / "local.db"))
    run_grid(registry=registry, store=local, **grid)
    dask = open_store(str(tmp_path / "dask.db"))
    summary = run_grid(
        registry=registry, store=dask, workers=2, cache=FeatureCache(tmp_path / "cache"), **grid
    )
    assert summary.executor == "dask local cluster, 2 workers"
    assert [(f.stage, f.model) for f in summary.failures] == [("model", "broken/net")]
    failure = dask.failures_frame().iloc[0]
    assert "no weights on this worker" in failure["message"] and "Traceback" in failure["traceback"]
    a, b = _same_scores(local, dask)
    assert (a["weights_hash"] == b["weights_hash"]).all()
    assert dask.runs_frame().iloc[0]["executor"] == "dask local cluster, 2 workers"
    # resumed on Dask too: nothing left to do
    again = run_grid(registry=registry, store=dask, workers=2, **grid)
    assert again.n_scored == 0 and again.n_stored == 4


def test_sigterm_stops_a_run_like_ctrl_c_and_records_it(tmp_path, variable_plugin):
    db = tmp_path / "lb.db"
    command = [
        sys.executable,
        "-m",
        "brainrank",
        "run",
        "--plugin",
        str(variable_plugin),
        "--models",
        "var/*",
        "--datasets",
        "var/data",
        "--metrics",
        "logged-rsa",
        "--db",
        str(db),
        "--quiet",
        "--no-cache",
    ]
    proc = subprocess.Popen(
        command,
        env={**os.environ, "SLOW_SECONDS": "0.6"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while _completions(db) < 1:
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted: the scores written so far are kept" in err
    store = open_store(str(db))
    run = store.runs_frame().iloc[-1]
    assert run["status"] == "interrupted" and run["finished_at"] is not None
    assert 1 <= store.count("completions") < 6


def test_a_stop_request_whose_interrupt_was_dropped_stops_after_the_job(
    tmp_path, variable_plugin, monkeypatch
):
    """The KeyboardInterrupt of a signal handler is dropped by Python when it lands in a
    garbage-collection callback (seen: SQLAlchemy's weakref callback; the run then finished
    every job and exited 0). The request flag the handler also sets stops the run after the
    job it came in."""
    from brainrank.grid import execute as grid_execute

    store = open_store(str(tmp_path / "lb.db"))
    registry = Registry(plugin_files=[variable_plugin])
    models = [f"var/net-{i}" for i in range(6)]
    grid = dict(registry=registry, store=store, models=models, datasets=["var/data"])
    monkeypatch.setattr(grid_execute.STOP_REQUESTED, "is_set", lambda: True)  # as if signalled
    with pytest.raises(KeyboardInterrupt):
        run_grid(**grid, metrics=["logged-rsa"], progress=False)
    assert len(scored_log(variable_plugin)) == 1  # one job of six, then it stopped
    run = store.runs_frame().iloc[-1]
    assert run["status"] == "interrupted" and store.count("completions") == 1


def test_the_run_command_turns_sigterm_into_a_stop_request():
    import signal as signals

    from brainrank.cli.run import _sigterm_as_interrupt
    from brainrank.grid.execute import STOP_REQUESTED

    before = signals.getsignal(signals.SIGTERM), signals.getsignal(signals.SIGINT)
    with _sigterm_as_interrupt():
        assert not STOP_REQUESTED.is_set()
        with pytest.raises(KeyboardInterrupt):
            signals.raise_signal(signals.SIGTERM)
        assert STOP_REQUESTED.is_set()
    assert not STOP_REQUESTED.is_set()  # cleared for the next run in this process
    assert (signals.getsignal(signals.SIGTERM), signals.getsignal(signals.SIGINT)) == before


def test_an_existing_dask_scheduler_runs_the_grid(tmp_path, tiny_plugin_path):
    """``scheduler=ADDRESS``: the jobs go to a scheduler and workers that brainrank did not
    start (here a separate local cluster, as dask-jobqueue would start one on SLURM); the
    workers load the plugin files themselves and the scores equal a serial run's."""
    from distributed import LocalCluster

    registry = Registry(plugin_files=[tiny_plugin_path])
    grid = dict(models=["tiny/net", "baseline/pixels"], datasets=["tiny/data"],
                metrics=["srp-ridge", "rsa"], progress=False)  # fmt: skip
    local = open_store(str(tmp_path / "local.db"))
    run_grid(registry=registry, store=local, **grid)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit=0) as cluster:  # fmt: skip
        address = cluster.scheduler_address
        remote = open_store(str(tmp_path / "remote.db"))
        summary = run_grid(registry=registry, store=remote, scheduler=address, **grid)
        assert summary.executor == f"dask scheduler {address}"
        assert summary.n_scored == 4 and not summary.failures
        # the jobs really went through that scheduler
        assert "brainrank-job" in cluster.scheduler.task_prefixes
        # the cluster outlives the run, and a second run there resumes: nothing to do
        assert cluster.scheduler_address == address
        again = run_grid(registry=registry, store=remote, scheduler=address, **grid)
        assert again.n_scored == 0 and again.n_stored == 4
    _same_scores(local, remote)
    assert remote.runs_frame().iloc[0]["executor"] == f"dask scheduler {address}"
