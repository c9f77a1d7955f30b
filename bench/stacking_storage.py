"""What storing per-neuroid stacking weights costs on NSD-sized data.

One (model, dataset) result of ``stacking`` as the metric writes it: per (subject, region),
a ``layer`` row per layer (each neuroid's test r), a ``weight`` row per layer (each neuroid's
stacking weight), the ``stacked`` and ``max`` rows; every per-neuroid array one float32
blob, the neuroid ids stored once per region. Measured with and without the weight rows:
the leaderboard file's growth, the write (one transaction, as the grid does) and reading
every weight back (``leaderboard.per_neuroid(selection="weight")``).

    python bench/stacking_storage.py [--voxels 40000] [--layers 30] [--regions 16]

Writes into a temporary folder; prints one line per layout.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from brainrank.core.metric import Metric
from brainrank.core.scores import Score


class _Stacking(Metric):
    identifier = "stacking"
    version = "bench"


def rows(n_voxels: int, n_layers: int, n_regions: int, weights: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    bounds = np.linspace(0, n_voxels, n_regions + 1).astype(int)
    out = []
    for g in range(n_regions):
        ids = tuple(f"subj01-v{i}" for i in range(bounds[g], bounds[g + 1]))
        v = len(ids)
        w = rng.dirichlet(np.ones(n_layers), size=v).astype(np.float32)  # (v, L)
        for layer in range(n_layers):
            r = rng.standard_normal(v).astype(np.float32) * 0.1
            common = dict(subject="subj01", region=f"roi{g:02d}", layer=f"layer{layer:02d}",
                          layer_index=layer, relative_depth=layer / (n_layers - 1),
                          neuroid_ids=ids)  # fmt: skip
            out.append(Score(value=float(r.mean()), n_neuroids=v, per_neuroid=r, **common))
            if weights:
                out.append(Score(value=float(w[:, layer].mean()), n_neuroids=v,
                                 selection="weight", per_neuroid=w[:, layer], **common))  # fmt: skip
        stacked = rng.standard_normal(v).astype(np.float32) * 0.1
        out.append(Score(subject="subj01", region=f"roi{g:02d}", layer="stacked",
                         value=float(stacked.mean()), n_neuroids=v, selection="stacked",
                         per_neuroid=stacked, neuroid_ids=ids))  # fmt: skip
    return out


def measure(n_voxels: int, n_layers: int, n_regions: int, weights: bool) -> dict[str, float]:
    from brainrank import leaderboard
    from brainrank.leaderboard import open_store

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lb.db"
        store = open_store(str(path))
        empty = os.path.getsize(path)
        scores = rows(n_voxels, n_layers, n_regions, weights)
        begun = time.perf_counter()
        store.write_scores(run_id=None, model="m", dataset="nsd", metric=_Stacking(),
                           scores=scores, plan_hash="x")  # fmt: skip
        written = time.perf_counter() - begun
        store.engine.dispose()
        size = os.path.getsize(path) - empty
        begun = time.perf_counter()
        frame = leaderboard.per_neuroid(str(path), selection="weight" if weights else "layer")
        read = time.perf_counter() - begun
        return {"rows": len(scores), "mb": size / 2**20, "write_s": written, "read_s": read,
                "values_read": len(frame)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxels", type=int, default=40_000)
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--regions", type=int, default=16)
    args = parser.parse_args()
    raw = args.voxels * args.layers * 4 / 2**20
    print(f"{args.voxels} voxels x {args.layers} layers in {args.regions} regions "
          f"(one float32 per voxel and layer: {raw:.1f} MB)")  # fmt: skip
    for weights in (False, True):
        m = measure(args.voxels, args.layers, args.regions, weights)
        label = "layer r + weights" if weights else "layer r only     "
        print(f"{label}: {m['rows']:5d} rows, file +{m['mb']:.1f} MB, write {m['write_s']:.1f} s, "
              f"read {m['values_read']} values back in {m['read_s']:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
