"""The Dask path: a run submitted to a cluster of 2 single-threaded worker processes (a
``distributed.LocalCluster`` standing in for a multi-node one) stores the scores of a
serial run; the workers read the stimuli and data from the data folder and the features
from the feature cache given to the run (shared storage), open the leaderboard by URL, and
add their stage times and fits to the run's row."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from brainrank.core.cache import FeatureCache
from brainrank.core.registry import Registry
from brainrank.grid import run_grid
from brainrank.leaderboard import open_store, scores
from brainrank.leaderboard.compare import compare

distributed = pytest.importorskip("distributed")

#: the workers run single-threaded kernels: sums in another order, equal within float32
FLOAT32 = 1e-5

# a dataset read from the run's data folder (as on a cluster's shared file system): a worker
# that did not get the folder, or cannot read it, fails instead of scoring
SHARED_PLUGIN = textwrap.dedent(
    """
    import os
    from pathlib import Path
    import numpy as np
    from brainrank.plugin import (Dataset, DatasetMetadata, DatasetSpec, StimulusSet, hookimpl,
                                  make_responses)

    META = DatasetMetadata(species="none", modality="synthetic", regions=("a", "b"))

    def build(data_dir=None):
        if data_dir is None:
            raise RuntimeError("no data folder given to this worker")
        data = np.load(Path(data_dir) / "shared.npz")
        with open(Path(data_dir) / "readers.log", "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        ids = [f"img{i:02d}" for i in range(len(data["images"]))]
        images = dict(zip(ids, data["images"]))
        responses = make_responses(
            data["trials"], stimulus_id=ids * 2, repetition=[0] * len(ids) + [1] * len(ids),
            neuroid_id=[f"n{i}" for i in range(6)], subject="s1", region=["a"] * 3 + ["b"] * 3,
        )
        return Dataset("shared/data", StimulusSet("shared", ids, images.__getitem__), META,
                       responses=responses)

    @hookimpl
    def brainrank_datasets():
        return [DatasetSpec("shared/data", build, META)]
    """
)


@pytest.fixture
def shared(tmp_path, tiny_plugin_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(3)
    np.savez(data / "shared.npz", images=rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8),
             trials=rng.standard_normal((40, 6)))  # fmt: skip
    plugin = tmp_path / "shared_plugin.py"
    plugin.write_text(SHARED_PLUGIN)
    return {
        "registry": Registry(plugin_files=[tiny_plugin_path, plugin]),
        "models": ["tiny/net", "baseline/pixels", "baseline/gabor"],
        "datasets": ["tiny/data", "shared/data"],
        "metrics": ["srp-ridge", "rsa"],
        "data_dir": data,
        "progress": False,
    }


def test_a_local_cluster_of_two_workers_gives_the_serial_scores(tmp_path, shared):
    serial = open_store(str(tmp_path / "serial.db"))
    assert run_grid(store=serial, **shared).status == "ok"
    cache = FeatureCache(tmp_path / "cache")  # the shared feature cache
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:  # fmt: skip
        with distributed.Client(cluster) as client:
            workers = client.run(lambda: __import__("os").getpid())
        assert len(set(workers.values())) == 2
        store = open_store(str(tmp_path / "cluster.db"))
        summary = run_grid(store=store, scheduler=cluster.scheduler_address, cache=cache,
                           **shared)  # fmt: skip
        assert summary.status == "ok", summary.failures
        assert summary.executor == f"dask scheduler {cluster.scheduler_address}"
        result = compare(serial, store, per_neuroid=True, tolerance=FLOAT32)
        assert result.n_common == len(scores(serial)) > 0
        assert result.only_a.empty and result.only_b.empty and result.changed.empty
        # the workers read the data folder and wrote the features to the shared cache
        readers = set((shared["data_dir"] / "readers.log").read_text().split())
        assert readers & set(map(str, workers.values()))
        cached = sorted(p for p in (tmp_path / "cache").rglob("*") if p.is_file())
        assert cached
        # the run's row sums every worker's stage times and fits: the serial run's fits
        runs = {r.id: r for r in open_store(str(tmp_path / "cluster.db")).runs_frame().itertuples()}
        first = runs[summary.run_id]
        assert first.fits == serial.runs_frame().iloc[0]["fits"] > 0
        assert first.seconds_extraction > 0 and first.seconds_scoring > 0
        # again with --recompute: the features come from the shared cache, the scores are
        # the same
        stamps = {p: p.stat().st_mtime_ns for p in cached}
        again = run_grid(store=store, scheduler=cluster.scheduler_address, cache=cache,
                         recompute=True, **shared)  # fmt: skip
        assert again.status == "ok" and again.n_scored == summary.n_scored
        assert {p: p.stat().st_mtime_ns for p in cached} == stamps  # read, not rewritten
        result = compare(serial, store, per_neuroid=True, tolerance=FLOAT32)
        assert result.only_a.empty and result.only_b.empty and result.changed.empty
