"""Leave-one-out ridge: brainrank vs scikit-learn RidgeCV (exact LOO) and himalaya's
KernelRidgeCV (torch backend, 5-fold), plus the fraction of this machine's float32 matrix
multiply peak that brainrank reaches, by the minimal flop count of the LOO computation."""

from __future__ import annotations

import time

import numpy as np

from bench.common import best_time, entry

N_ALPHAS = 7


def data(n: int, k: int, v: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k), dtype=np.float32)
    W = rng.standard_normal((k, v), dtype=np.float32) / np.sqrt(k)
    Y = X @ W + rng.standard_normal((n, v), dtype=np.float32)
    return X, Y


def matmul_peak(n: int, v: int, repeat: int = 5) -> float:
    """float32 GFLOP/s of an (n x n) @ (n x v) product, the shape of the LOO products."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((n, n), dtype=np.float32)
    B = rng.standard_normal((n, min(v, 4096)), dtype=np.float32)
    seconds = best_time(lambda: A @ B, repeat=repeat)
    return 2 * n * n * B.shape[1] / seconds / 1e9


def loo_flops(n: int, k: int, v: int, n_alphas: int) -> float:
    """Minimal flops of exact LOO ridge with per-target alphas and LOO predictions: the Gram
    matrix (2 n^2 k), the rotation of the targets (2 n^2 v) and one product per alpha
    (2 n^2 v each); the eigendecomposition and element-wise work are not counted."""
    r = min(n, k)
    return 2 * n * n * k + (1 + n_alphas) * 2 * n * r * v


def run(n: int = 1000, k: int = 5960, v: int = 10_000, peers: bool = True) -> dict:
    from brainrank.core.ridge import ridge_loo

    alphas = np.logspace(-1, 5, N_ALPHAS)
    X, Y = data(n, k, v)
    seconds = {}
    seconds["brainrank"] = best_time(lambda: ridge_loo(X, Y, alphas), repeat=3)
    if peers:
        from sklearn.linear_model import RidgeCV

        sk = RidgeCV(alphas=alphas, alpha_per_target=True, store_cv_results=True)
        start = time.perf_counter()
        sk.fit(X, Y)  # scikit-learn keeps squared LOO errors; one run (it is slow)
        seconds["sklearn_ridgecv"] = time.perf_counter() - start
        del sk
        try:
            from himalaya.backend import set_backend
            from himalaya.kernel_ridge import KernelRidgeCV

            set_backend("torch", on_error="raise")
            hm = KernelRidgeCV(alphas=alphas, cv=5, fit_intercept=True)
            seconds["himalaya_kernelridgecv_torch_5fold"] = best_time(
                lambda: hm.fit(X, Y), repeat=2
            )
        except ImportError:
            pass
    peak = matmul_peak(n, v)
    achieved = loo_flops(n, k, v, N_ALPHAS) / seconds["brainrank"] / 1e9
    return entry(
        "ridge_loo",
        {"n": n, "k": k, "v": v, "alphas": N_ALPHAS},
        seconds,
        "brainrank",
        gflops=achieved,
        matmul_peak_gflops=peak,
        fraction_of_peak=achieved / peak,
    )
