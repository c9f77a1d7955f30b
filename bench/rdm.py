"""Correlation-distance RDM of (n x p) patterns: brainrank vs ``1 - np.corrcoef``."""

from __future__ import annotations

import numpy as np

from bench.common import best_time, entry


def run(n: int = 1000, p: int = 50_000) -> dict:
    from brainrank.core.rsa import rdm

    X = np.random.default_rng(0).standard_normal((n, p), dtype=np.float32)
    X += np.random.default_rng(1).standard_normal((n, 1), dtype=np.float32)
    seconds = {
        "brainrank": best_time(lambda: rdm(X), repeat=5),
        "numpy_corrcoef": best_time(lambda: 1 - np.corrcoef(X), repeat=3),
    }
    error = float(np.abs(rdm(X) - (1 - np.corrcoef(X))).max())
    return entry(
        "rdm_correlation", {"n": n, "p": p}, seconds, "brainrank", max_abs_difference=error
    )
