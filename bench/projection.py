"""Sparse random projection of (n x p) float32 activations to k: brainrank vs
scikit-learn's SparseRandomProjection, time and peak extra memory, each in a fresh process.

Worker: ``python -m bench.projection IMPL N P K`` prints a JSON line."""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from bench.common import entry, peak_rss_bytes, reset_peak_rss, rss_bytes, run_worker


def worker(impl: str, n: int, p: int, k: int) -> dict:
    # import (and warm up) each implementation before the baseline, so neither the time nor
    # the memory of importing torch or scikit-learn counts as the projection's
    if impl == "brainrank":
        from brainrank.core.projection import SparseRandomProjection

        SparseRandomProjection(100, 10).transform(np.ones((2, 100), np.float32))

        def project(X):
            return SparseRandomProjection(p, k, seed=0).transform(X)
    else:
        from sklearn.random_projection import SparseRandomProjection

        def project(X):
            return SparseRandomProjection(k, random_state=0).fit_transform(X)

    X = np.random.default_rng(0).standard_normal((n, p), dtype=np.float32)
    base = rss_bytes()
    reset_peak_rss()
    start = time.perf_counter()
    Y = project(X)
    seconds = time.perf_counter() - start
    extra = peak_rss_bytes() - base
    return {"seconds": seconds, "extra_bytes": extra, "shape": list(Y.shape)}


def run(n: int = 1000, p: int = 1_000_000, k: int = 5960) -> dict:
    results = {impl: run_worker("bench.projection", impl, str(n), str(p), str(k))
               for impl in ("brainrank", "sklearn")}  # fmt: skip
    seconds = {
        "brainrank": results["brainrank"]["seconds"],
        "sklearn_sparserandomprojection": results["sklearn"]["seconds"],
    }
    return entry(
        "sparse_random_projection",
        {"n": n, "p": p, "k": k},
        seconds,
        "brainrank",
        extra_memory_gb={impl: r["extra_bytes"] / 2**30 for impl, r in results.items()},
    )


if __name__ == "__main__":
    impl, n, p, k = sys.argv[1], *map(int, sys.argv[2:5])
    print(json.dumps(worker(impl, n, p, k)))
