"""Partial least squares regression and principal components, for many targets at once.

:class:`PLSRegression` is PLS2 in its NIPALS form with "regression" deflation (Wold;
de Jong 1993), the model of scikit-learn's ``PLSRegression(scale=False)`` and so of
Brain-Score's ``pls`` metric (25 components): with centred ``X`` (n x p) and ``Y`` (n x v),
component k takes the weight vector ``w_k``, the first left singular vector of
``X_k^T Y_k``; its scores ``t_k = X_k w_k``; loadings ``p_k = X_k^T t_k / t_k't_k`` and
``q_k = Y_k^T t_k / t_k't_k``; and deflates ``X_{k+1} = X_k - t_k p_k^T``,
``Y_{k+1} = Y_k - t_k q_k^T``. Predictions are ``(X - mean) W (P^T W)^{-1} Q^T + mean(Y)``.

Written from that definition, not from any implementation, and computed differently:

- the singular vector is exact (an eigendecomposition of the smaller of ``C^T C`` and
  ``C C^T``, ``C = X_k^T Y_k``), where scikit-learn runs power iterations until the weights
  change by less than 1e-3 (squared change < 1e-6), so its weights carry an error of that
  order; the tests compare both with scikit-learn run to a tighter tolerance;
- nothing is deflated in place: the scores are orthogonal, so ``X_k^T t_k = X^T t_k``,
  ``Y_k^T t_k = Y^T t_k`` and ``C_{k+1} = C_k - (t_k't_k) p_k q_k^T`` (a p x v update),
  and ``t_k = X w_k - T (P^T w_k)``: memory stays at one copy of X plus p x v;
- components stop early, with a note in :attr:`PLSRegression.n_components_`, when the
  scores vanish (X or Y exhausted: fewer features or stimuli than components).

:func:`pca_scores` gives every row's scores on the principal components of chosen rows
(scikit-learn's ``PCA(n_components).fit(X[rows]).transform(X)`` up to the sign of each
component), through the smaller of the two Gram matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from brainrank.core.blas import one_blas_thread
from brainrank.core.errors import InputError

#: Brain-Score's PLS: 25 components, no scaling (``pls_regression`` of brainscore-vision)
N_COMPONENTS = 25
#: components whose scores' squared norm falls below this fraction of the first one's
#: carry nothing but rounding: the fit stops there
_VANISHING = 1e-20
#: above this size of both dimensions of C, the leading singular vector comes from
#: ARPACK (scipy's svds) instead of a dense eigendecomposition
_DENSE_LIMIT = 3000


def _as_matrix(a: Any, name: str) -> np.ndarray:
    out = np.asarray(a, dtype=np.float64)
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2:
        raise InputError(f"{name} must be 2-D (n_stimuli, n_columns); got shape {out.shape}.")
    if not np.isfinite(out).all():
        raise InputError(f"{name} contains NaN or infinite values.")
    return out


def leading_left_singular_vector(C: np.ndarray) -> tuple[np.ndarray, float]:
    """The first left singular vector of ``C`` (p x v) and its singular value (exact: from
    the eigendecomposition of the smaller Gram matrix; ARPACK for very large ones)."""
    p, v = C.shape
    if min(p, v) > _DENSE_LIMIT:
        from scipy.sparse.linalg import svds

        u, s, _ = svds(C, k=1, v0=np.ones(min(p, v)) / np.sqrt(min(p, v)), tol=0)
        return u[:, 0], float(s[0])
    import scipy.linalg

    m = min(p, v)
    if v <= p:
        values, vectors = scipy.linalg.eigh(C.T @ C, subset_by_index=[m - 1, m - 1])
        w = C @ vectors[:, -1]
    else:
        values, vectors = scipy.linalg.eigh(C @ C.T, subset_by_index=[m - 1, m - 1])
        w = vectors[:, -1]
    norm = float(np.linalg.norm(w))
    if norm == 0 or values[-1] <= 0:
        return np.zeros(p), 0.0
    return w / norm, float(np.sqrt(values[-1]))


class PLSRegression:
    """PLS2 regression with "regression" deflation (see the module docstring).

    Parameters
    ----------
    n_components : int
        Components to extract (Brain-Score: 25). Fewer are kept when the data run out
        (:attr:`n_components_` says how many).

    Attributes (after :meth:`fit`)
    ------------------------------
    n_components_ : int
        Components actually extracted.
    x_mean_, y_mean_ : ndarray
        Column means of the training features ``(p,)`` and targets ``(v,)``.
    x_weights_, x_loadings_ : ndarray
        ``W`` and ``P``, ``(p, n_components_)``.
    y_loadings_ : ndarray
        ``Q``, ``(v, n_components_)``.
    x_scores_ : ndarray
        ``T``, ``(n, n_components_)``.
    """

    def __init__(self, n_components: int = N_COMPONENTS):
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
            raise InputError(f"n_components must be a positive integer, got {n_components!r}.")
        if n_components < 1:
            raise InputError(f"n_components must be >= 1, got {n_components}.")
        self.n_components = int(n_components)

    def fit(self, X: Any, Y: Any) -> PLSRegression:
        """Fit on features ``X`` (n, p) and targets ``Y`` (n, v) (float64 internally)."""
        X = _as_matrix(X, "X")
        Y = _as_matrix(Y, "Y")
        n = X.shape[0]
        if Y.shape[0] != n:
            raise InputError(f"X has {n} rows and Y {Y.shape[0]}; they must match.")
        fit = pls_fit_batch(X[None], Y[None, None], self.n_components)
        k = int(fit.n_components[0, 0])
        self.n_components_ = k
        self.x_mean_ = fit.x_mean[0]
        self.y_mean_ = fit.y_mean[0, 0]
        self.x_scores_ = fit.x_scores[0, 0, :, :k]
        self.x_loadings_ = fit.x_loadings[0, 0, :, :k]
        self.x_weights_ = fit.x_weights[0, 0, :, :k]
        self.y_loadings_ = fit.y_loadings[0, 0, :, :k]
        self.x_rotations_ = fit.x_rotations[0, 0, :, :k]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The x-scores of new stimuli, ``(n_new, n_components_)``."""
        if not hasattr(self, "x_rotations_"):
            raise InputError("call fit() before transform() or predict().")
        X = _as_matrix(X, "X")
        if X.shape[1] != self.x_mean_.size:
            raise InputError(
                f"X has {X.shape[1]} columns; the model was fitted on {self.x_mean_.size}."
            )
        return (X - self.x_mean_) @ self.x_rotations_

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets of new stimuli ``X`` (n_new, p): ``(n_new, v)`` float64. The
        p x v coefficient matrix is never formed."""
        return self.transform(X) @ self.y_loadings_.T + self.y_mean_


@dataclass
class PLSBatchFit:
    """PLS models fitted by :func:`pls_fit_batch`, for S feature matrices x G target sets.

    Arrays (K = n_components asked; components past ``n_components[s, g]`` are zero):
    ``x_mean`` (S, p), ``y_mean`` (S, G, v), ``x_scores`` (S, G, n, K), ``x_weights``,
    ``x_loadings``, ``x_rotations`` (S, G, p, K), ``y_loadings`` (S, G, v, K),
    ``n_components`` (S, G) int.
    """

    x_mean: np.ndarray
    y_mean: np.ndarray
    x_scores: np.ndarray
    x_weights: np.ndarray
    x_loadings: np.ndarray
    x_rotations: np.ndarray
    y_loadings: np.ndarray
    n_components: np.ndarray

    def predict(self, X_new: np.ndarray) -> np.ndarray:
        """Predictions ``(S, G, m, v)`` for new features ``X_new`` (S, m, p): feature set s
        predicted by each of its G models."""
        centred = np.asarray(X_new, dtype=np.float64) - self.x_mean[:, None, :]
        scores = centred[:, None] @ self.x_rotations  # (S, G, m, K)
        return scores @ np.swapaxes(self.y_loadings, -1, -2) + self.y_mean[:, :, None, :]


def pls_fit_batch(X: np.ndarray, Y: np.ndarray, n_components: int = N_COMPONENTS) -> PLSBatchFit:
    """Fit S x G PLS models at once (see the module docstring for the algorithm).

    Parameters
    ----------
    X : ndarray
        ``(S, n, p)``: S feature matrices of the same shape (e.g. the training stimuli of S
        cross-validation splits).
    Y : ndarray
        ``(S, G, n, v)``: for each feature matrix, G sets of targets fitted separately (e.g.
        the neuroids of G regions; pad a smaller set with zero columns, which change nothing
        and are predicted as 0).
    n_components : int
        Components per model; a model stops early when its scores vanish.

    Returns
    -------
    PLSBatchFit
        Equal, model by model, to :class:`PLSRegression` fitted on ``X[s]`` and ``Y[s, g]``
        (it is that class's implementation).
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 3 or Y.ndim != 4 or Y.shape[0] != X.shape[0] or Y.shape[2] != X.shape[1]:
        raise InputError(f"X must be (S, n, p) and Y (S, G, n, v); got {X.shape} and {Y.shape}.")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise InputError("the features or targets contain NaN or infinite values.")
    S, n, p = X.shape
    G, v = Y.shape[1], Y.shape[3]
    if n < 2:
        raise InputError("PLS needs at least 2 stimuli.")
    K = int(n_components)
    x_mean = X.mean(axis=1)  # (S, p)
    y_mean = Y.mean(axis=2)  # (S, G, v)
    Xc = (X - x_mean[:, None, :])[:, None]  # (S, 1, n, p)
    Yc = Y - y_mean[:, :, None, :]  # (S, G, n, v)
    XcT = np.swapaxes(Xc, -1, -2)  # (S, 1, p, n)
    C = XcT @ Yc  # (S, G, p, v)
    T = np.zeros((S, G, n, K))
    P = np.zeros((S, G, p, K))
    W = np.zeros((S, G, p, K))
    Q = np.zeros((S, G, v, K))
    active = np.ones((S, G), dtype=bool)
    first = np.zeros((S, G))
    for k in range(K):
        if not active.any():
            break
        with one_blas_thread():  # many small eigenproblems: threads only contend (13x here)
            if v <= p:
                values, vectors = np.linalg.eigh(np.swapaxes(C, -1, -2) @ C)
                w = (C @ vectors[..., -1:])[..., 0]  # (S, G, p)
            else:
                values, vectors = np.linalg.eigh(C @ np.swapaxes(C, -1, -2))
                w = vectors[..., -1].copy()
        norm = np.linalg.norm(w, axis=-1)
        active &= (values[..., -1] > 0) & (norm > 0)
        w = np.where(active[..., None], w / np.where(norm > 0, norm, 1.0)[..., None], 0.0)
        t = (Xc @ w[..., None])[..., 0]  # (S, G, n)
        if k:
            t -= (T[..., :k] @ (np.swapaxes(P[..., :k], -1, -2) @ w[..., None]))[..., 0]
        tt = np.einsum("sgn,sgn->sg", t, t)
        if k == 0:
            first = tt.copy()
        active &= tt > _VANISHING * first
        if not active.any():
            break
        safe = np.where(active, tt, 1.0)
        t = np.where(active[..., None], t, 0.0)
        w = np.where(active[..., None], w, 0.0)
        p_k = (XcT @ t[..., None])[..., 0] / safe[..., None]  # (S, G, p)
        q_k = (np.swapaxes(Yc, -1, -2) @ t[..., None])[..., 0] / safe[..., None]  # (S, G, v)
        C -= (tt * active)[..., None, None] * p_k[..., :, None] * q_k[..., None, :]
        T[..., k], P[..., k], W[..., k], Q[..., k] = t, p_k, w, q_k
    used = np.count_nonzero(np.abs(T).sum(axis=2) > 0, axis=-1)  # (S, G): a prefix
    # rotations W (P^T W)^-1 over each model's own components (the unused ones are zero
    # columns; an identity block there keeps the inverse defined and changes nothing)
    PtW = np.swapaxes(P, -1, -2) @ W
    unused = np.arange(K)[None, None, :] >= used[..., None]
    PtW[unused, :] = 0.0
    index = np.arange(K)
    PtW[..., index, index] = np.where(unused, 1.0, PtW[..., index, index])
    R = W @ np.linalg.inv(PtW)
    R[np.broadcast_to(unused[:, :, None, :], R.shape)] = 0.0
    return PLSBatchFit(x_mean, y_mean, T, W, P, R, Q, used)


def pca_scores(
    X: Any,
    fit_rows: Any = None,
    n_components: int | None = None,
    *,
    rtol: float = 1e-10,
) -> np.ndarray:
    """Scores of every row of ``X`` on the principal components of ``X[fit_rows]``.

    Parameters
    ----------
    X : array
        ``(n, p)`` features.
    fit_rows : array of int, optional
        The rows the components are fitted on (centred with their mean); all rows by
        default.
    n_components : int, optional
        The leading components to keep (all by default). Components whose variance is below
        ``rtol`` times the largest are dropped: they span nothing the fitted rows have
        (scikit-learn's ``PCA`` would return arbitrary null directions there).

    Returns
    -------
    ndarray
        ``(n, c)`` float64 scores, components in decreasing variance, each signed so that its
        largest score on the fitted rows is positive. Equal to scikit-learn's
        ``PCA(n_components).fit(X[fit_rows]).transform(X)`` up to those signs.
    """
    import scipy.linalg

    X = _as_matrix(X, "X")
    n, p = X.shape
    rows = np.arange(n) if fit_rows is None else np.asarray(fit_rows, dtype=np.int64)
    if rows.size < 2:
        raise InputError("principal components need at least 2 fitted rows.")
    if n_components is not None and n_components < 1:
        raise InputError(f"n_components must be >= 1, got {n_components}.")
    fitted = X[rows]
    mean = fitted.mean(axis=0)
    centred = fitted - mean
    m = rows.size
    size = min(m, p)
    c = size if n_components is None else min(int(n_components), size)
    subset = None if c >= size else [size - c, size - 1]
    if m <= p:  # through the m x m Gram matrix of the fitted rows
        values, vectors = scipy.linalg.eigh(centred @ centred.T, subset_by_index=subset)
    else:  # through the p x p covariance
        values, vectors = scipy.linalg.eigh(centred.T @ centred, subset_by_index=subset)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    if values.size == 0 or values[0] <= 0:
        keep = np.zeros(values.size, dtype=bool)
    else:
        keep = values > rtol * values[0]
    values, vectors = values[keep], vectors[:, keep]
    if m <= p:
        # X_fit_c = U S V^T: V = X_fit_c^T U / S, scores = (X - mean) V
        if fit_rows is None:
            scores = vectors * np.sqrt(values)
        else:
            scores = ((X - mean) @ centred.T) @ (vectors / np.sqrt(values))
    else:
        scores = (X - mean) @ vectors
    if scores.shape[1]:
        fitted_scores = scores[rows]
        sign = np.sign(
            fitted_scores[np.argmax(np.abs(fitted_scores), axis=0), np.arange(scores.shape[1])]
        )
        scores *= np.where(sign == 0, 1.0, sign)
    return scores
