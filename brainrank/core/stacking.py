"""Convex stacking of predictions: per target, the weights on the simplex that best combine
the predictions of several feature spaces (Lin, Wang, Tarr, Wehbe: stacked encoding models).

For every target v, with ``P_v`` the (n x L) predictions of its L feature spaces and ``y_v``
its responses, :func:`stack_weights` solves

    minimise ||y_v - P_v w||^2   subject to  w >= 0,  sum(w) = 1

for thousands of targets at once: accelerated projected gradient (FISTA) on the L x L
normal equations of every target in parallel, each step projected onto the simplex (the
sort-based projection of Duchi et al. 2008), then a polishing step that solves the
equality-constrained problem exactly on the support the iterations found (kept when it is
feasible and at least as good).

With a torch ``backend`` (see :mod:`brainrank.core.backend`) the normal equations and the
iterations run on that backend's device in float64 (MPS, which has no float64, runs them on
the CPU); the polishing step runs on the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from brainrank.core.errors import InputError


@dataclass
class StackingResult:
    """``weights`` (v, L) on the simplex; ``r2`` (v,) of the stacked prediction on the
    data it was fitted on; ``iterations`` used."""

    weights: np.ndarray
    r2: np.ndarray
    iterations: int


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of every row of ``v`` onto the probability simplex."""
    v = np.asarray(v, dtype=np.float64)
    u = -np.sort(-v, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    index = np.arange(1, v.shape[1] + 1)
    cond = u - css / index > 0
    rho = v.shape[1] - 1 - np.argmax(cond[:, ::-1], axis=1)  # last index where cond holds
    theta = css[np.arange(v.shape[0]), rho] / (rho + 1)
    return np.maximum(v - theta[:, None], 0.0)


def stack_weights(
    predictions: np.ndarray,
    targets: np.ndarray,
    *,
    max_iter: int = 5000,
    tol: float = 1e-10,
    backend: Any = None,
) -> StackingResult:
    """Simplex-constrained least-squares weights per target.

    ``predictions``: (L, n, v), the predictions of L feature spaces for v targets on n
    stimuli; ``targets``: (n, v); ``backend``: a torch backend runs the iterations on its
    device (see the module docstring).
    """
    P = np.asarray(predictions, dtype=np.float64)
    Y = np.asarray(targets, dtype=np.float64)
    if P.ndim != 3:
        raise InputError(f"predictions must be (n_spaces, n_stimuli, n_targets); got {P.shape}.")
    if Y.ndim == 1:
        Y = Y[:, None]
    L, n, v = P.shape
    if Y.shape != (n, v):
        raise InputError(
            f"targets have shape {Y.shape}; expected ({n}, {v}) to match the predictions."
        )
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(Y))):
        raise InputError("predictions and targets must be finite.")
    on_device = (
        backend is not None
        and backend.name == "torch"
        and getattr(backend.device, "type", "cpu") != "mps"
    )
    if on_device and L > 1:
        A, b, c, w, iteration = _iterate_torch(backend, P, Y, max_iter, tol)
        w = _polish(A, b, w)
        return StackingResult(w, _r2(A, b, c, w, Y), iteration)
    A = np.einsum("lnv,mnv->vlm", P, P)  # (v, L, L) normal matrices
    b = np.einsum("lnv,nv->vl", P, Y)  # (v, L)
    c = (Y * Y).sum(axis=0)  # (v,)
    if L == 1:
        w = np.ones((v, 1))
        return StackingResult(w, _r2(A, b, c, w, Y), 0)

    def objective(w: np.ndarray) -> np.ndarray:
        return np.einsum("vl,vlm,vm->v", w, A, w) - 2 * np.einsum("vl,vl->v", w, b) + c

    lipschitz = np.linalg.eigvalsh(A)[:, -1]  # largest eigenvalue of each A_v
    step = 1.0 / np.maximum(lipschitz, np.finfo(np.float64).tiny)
    w = np.full((v, L), 1.0 / L)
    z = w.copy()
    t = 1.0
    scale = np.maximum(c, np.finfo(np.float64).tiny)
    previous = objective(w)
    iteration = 0
    for iteration in range(1, max_iter + 1):
        grad = np.einsum("vlm,vm->vl", A, z) - b
        w_next = project_simplex(z - step[:, None] * grad)
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = w_next + ((t - 1) / t_next) * (w_next - w)
        w, t = w_next, t_next
        if iteration % 25 == 0:
            current = objective(w)
            if np.max(np.abs(previous - current) / scale) < tol:
                break
            previous = current
    w = _polish(A, b, w)
    return StackingResult(w, _r2(A, b, c, w, Y), iteration)


def _project_simplex_torch(torch: Any, v: Any) -> Any:
    """:func:`project_simplex` on torch tensors."""
    u = torch.sort(v, dim=1, descending=True).values
    css = torch.cumsum(u, dim=1) - 1.0
    index = torch.arange(1, v.shape[1] + 1, device=v.device, dtype=v.dtype)
    cond = (u - css / index) > 0
    rho = v.shape[1] - 1 - torch.argmax(torch.flip(cond, dims=(1,)).to(torch.uint8), dim=1)
    theta = css.gather(1, rho[:, None])[:, 0] / (rho + 1).to(v.dtype)
    return torch.clamp(v - theta[:, None], min=0.0)


def _iterate_torch(be: Any, P: np.ndarray, Y: np.ndarray, max_iter: int, tol: float):
    """The accelerated projected gradient of :func:`stack_weights` on a torch device, in
    float64; returns ``(A, b, c, w, iterations)`` as numpy arrays for the polishing step."""
    torch = be.torch
    Pt = be.asarray(P, "float64")
    Yt = be.asarray(Y, "float64")
    A = torch.einsum("lnv,mnv->vlm", Pt, Pt)
    b = torch.einsum("lnv,nv->vl", Pt, Yt)
    c = (Yt * Yt).sum(dim=0)
    v, L = b.shape

    def objective(w: Any) -> Any:
        return torch.einsum("vl,vlm,vm->v", w, A, w) - 2 * (w * b).sum(dim=1) + c

    lipschitz = torch.linalg.eigvalsh(A)[:, -1]
    step = 1.0 / torch.clamp(lipschitz, min=float(np.finfo(np.float64).tiny))
    w = be.full((v, L), 1.0 / L, "float64")
    z = w.clone()
    t = 1.0
    scale = torch.clamp(c, min=float(np.finfo(np.float64).tiny))
    previous = objective(w)
    iteration = 0
    for iteration in range(1, max_iter + 1):
        grad = torch.einsum("vlm,vm->vl", A, z) - b
        w_next = _project_simplex_torch(torch, z - step[:, None] * grad)
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = w_next + ((t - 1) / t_next) * (w_next - w)
        w, t = w_next, t_next
        if iteration % 25 == 0:
            current = objective(w)
            if float(torch.max(torch.abs(previous - current) / scale)) < tol:
                break
            previous = current
    out = (be.to_numpy(x).astype(np.float64) for x in (A, b, c, w))
    return (*out, iteration)


def _polish(A: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Solve exactly on each target's support: min w^T A w - 2 b^T w with sum(w) = 1."""
    out = w.copy()
    support = w > 1e-9
    before = objective_rows(A, b, w)
    patterns, inverse = np.unique(support, axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        rows = np.flatnonzero(inverse.ravel() == k)
        idx = np.flatnonzero(pattern)
        m = idx.size
        # KKT system [[2A, 1], [1^T, 0]] [w; mu] = [2b; 1]
        kkt = np.zeros((rows.size, m + 1, m + 1))
        kkt[:, :m, :m] = 2 * A[np.ix_(rows, idx, idx)]
        kkt[:, :m, m] = 1.0
        kkt[:, m, :m] = 1.0
        rhs = np.zeros((rows.size, m + 1))
        rhs[:, :m] = 2 * b[np.ix_(rows, idx)]
        rhs[:, m] = 1.0
        try:
            sol = np.linalg.solve(kkt, rhs[..., None])[..., 0][:, :m]
        except np.linalg.LinAlgError:
            continue
        candidate = np.zeros((rows.size, w.shape[1]))
        candidate[:, idx] = sol
        ok = np.all(sol >= -1e-12, axis=1)
        candidate = np.clip(candidate, 0.0, None)
        candidate /= candidate.sum(axis=1, keepdims=True)
        better = ok & (
            objective_rows(A[rows], b[rows], candidate)
            <= before[rows] + 1e-12 * np.abs(before[rows])
        )
        out[rows[better]] = candidate[better]
    return out


def objective_rows(A: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.einsum("vl,vlm,vm->v", w, A, w) - 2 * np.einsum("vl,vl->v", w, b)


def _r2(A, b, c, w, Y) -> np.ndarray:
    sse = objective_rows(A, b, w) + c
    sst = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - sse / sst
