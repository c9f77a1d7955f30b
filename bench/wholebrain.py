"""A whole-brain encoding fit: seconds and peak memory of the leave-one-out ridge of one
feature space on every voxel of a synthetic brain volume (issue 23: ~50,000 voxels x 5,000
stimuli must score within this machine's memory).

The volume is BOLD5000's subject-space grid (71 x 89 x 72 voxels of 2 mm) with an ellipsoid
"brain" of ``v`` voxels; each voxel's response to ``n`` stimuli is a random linear function
of ``k`` features plus noise. The fit is :func:`brainrank.core.ridge.ridge_loo` (7 alphas,
per-voxel alpha, LOO predictions returned), whose targets go in batches of
``target_batch`` voxels so that its working memory does not grow with ``v``.

Run in a fresh process (``python -m bench.wholebrain --n 5000 --v 50000``); it prints one
JSON line: seconds, peak resident memory, the memory the inputs and outputs need by
themselves (features, responses, LOO predictions) and the rest (the fit's working memory).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from bench.common import cpu_name, peak_rss_bytes, rss_bytes

SHAPE = (71, 89, 72)  # BOLD5000 CSI1's subject-space grid (release 2.0 README)


def brain_mask(v: int, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """A boolean volume with exactly ``v`` voxels set: the ``v`` voxels closest to the
    centre in ellipsoid distance (the axes scaled to the grid)."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    distance = (grid**2).sum(0).ravel()
    if v > distance.size:
        raise SystemExit(f"v = {v} is more than the {distance.size} voxels of the grid")
    mask = np.zeros(distance.size, dtype=bool)
    mask[np.argsort(distance, kind="stable")[:v]] = True
    return mask.reshape(shape)


def data(n: int, k: int, v: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k), dtype=np.float32)
    Y = np.empty((n, v), dtype=np.float32)
    for a in range(0, v, 4096):  # built in blocks: no (k, v) weights at once
        b = min(v, a + 4096)
        W = rng.standard_normal((k, b - a), dtype=np.float32) / np.sqrt(k)
        Y[:, a:b] = X @ W + 2.0 * rng.standard_normal((n, b - a), dtype=np.float32)
    voxels = np.argwhere(brain_mask(v))
    return X, Y, voxels


def run(n: int, k: int, v: int, target_batch: int = 4096) -> dict:
    from brainrank.core.ridge import ridge_loo

    X, Y, voxels = data(n, k, v)
    before = rss_bytes()
    start = time.perf_counter()
    result = ridge_loo(X, Y, np.logspace(-1, 5, 7), target_batch=target_batch)
    seconds = time.perf_counter() - start
    peak = peak_rss_bytes()
    held = X.nbytes + Y.nbytes + result.predictions.nbytes
    return {
        "benchmark": "wholebrain_ridge_loo",
        "cpu": cpu_name(),
        "sizes": {
            "n_stimuli": n,
            "k_features": k,
            "n_voxels": v,
            "target_batch": target_batch,
            "volume": list(SHAPE),
            "voxels_in_mask": len(voxels),
        },
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(peak / 2**30, 2),
        "rss_before_fit_gb": round(before / 2**30, 2),
        "inputs_and_predictions_gb": round(held / 2**30, 2),
        "working_memory_gb": round((peak - before - result.predictions.nbytes) / 2**30, 2),
        "median_loo_r": round(float(np.nanmedian(result.scores)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000, help="stimuli")
    parser.add_argument("--k", type=int, default=4096, help="features (SRP dimension)")
    parser.add_argument("--v", type=int, default=50_000, help="voxels")
    parser.add_argument("--target-batch", type=int, default=4096)
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.k, args.v, args.target_batch)), flush=True)


if __name__ == "__main__":
    main()
