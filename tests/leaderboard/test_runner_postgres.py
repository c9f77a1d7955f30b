"""The runner on a PostgreSQL leaderboard: two Dask worker processes write different parts
of the grid at once; the result equals a one-process run into SQLite, and a rerun
recomputes nothing."""

from __future__ import annotations

import numpy as np

from brainrank.core.registry import Registry
from brainrank.grid import run_grid
from brainrank.leaderboard import open_store, scores

KEY = ["model", "dataset", "metric", "subject", "region", "layer", "selection"]


def test_dask_workers_write_one_postgresql_leaderboard(postgres_url, tmp_path, tiny_plugin_path):
    registry = Registry(plugin_files=[tiny_plugin_path])
    grid = dict(
        models=["tiny/net", "baseline/pixels"],
        datasets=["tiny/data"],
        metrics=["srp-ridge", "rsa"],
        progress=False,
    )
    reference = open_store(str(tmp_path / "one-process.db"))
    run_grid(registry=registry, store=reference, **grid)
    store = open_store(postgres_url)
    summary = run_grid(registry=registry, store=store, workers=2, **grid)
    assert not summary.failures and summary.n_scored == 4
    a = scores(reference).sort_values(KEY).reset_index(drop=True)
    b = scores(store).sort_values(KEY).reset_index(drop=True)
    assert len(b) == len(a) > 0 and not b.duplicated(KEY).any()
    assert (a[KEY] == b[KEY]).all().all()
    # Dask workers run one BLAS/torch thread each, the serial run two: the float32 Gram of a
    # 150,528-feature layer (baseline/pixels) sums in another order, which moves an RSA
    # score by up to ~3e-6 (measured); float32 rounding, not a different computation
    np.testing.assert_allclose(a["score"], b["score"], rtol=0, atol=2e-5)
    assert store.count("completions") == 4
    assert store.count("neuroid_values") == reference.count("neuroid_values") > 0
    again = run_grid(registry=registry, store=store, **grid)
    assert again.n_scored == 0 and again.n_stored == 4 and store.count("scores") == len(b)
