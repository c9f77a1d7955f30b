"""Closed-form leave-one-out ridge regression for many targets and many alphas at once.

For features ``X`` (n x k) and targets ``Y`` (n x v), with ``Xc``/``Yc`` centred when an
intercept is fitted, the ridge hat matrix for penalty ``alpha`` is

    H(alpha) = Q diag(d / (d + alpha)) Q^T  (+ 11^T / n with an intercept)

where ``Xc = Q S V^T`` and ``d = S^2``. One factorisation per feature matrix serves every
alpha and every target: the eigendecomposition of the n x n Gram matrix ``Xc Xc^T`` when
``k >= n``, the thin SVD of ``Xc`` (whose cost grows with k^2 n) when ``k < n``. It is always
computed in float64; the products with the targets run in ``dtype`` (float32 by default).

The leave-one-out residual of sample i is ``e_i = (y_i - yhat_i) / (1 - h_ii)``, exact for
ridge. With an intercept, the intercept is unpenalised and re-estimated in every fold, which
is what scikit-learn's ``RidgeCV`` (gcv mode) computes: its LOO predictions ``y - e`` are
reproduced to float tolerance (tests check this). Per target, the alpha with the lowest LOO
mean squared error (or, with ``scoring="pearson"``, the highest LOO Pearson r) is chosen;
ties go to the first alpha in the grid, as in scikit-learn.

Nothing of size k x v or n x v x n_alphas is ever formed: targets are processed in batches
and only the running best residuals are kept.

Devices: with ``backend="torch"`` and ``device`` (``"cuda"``, ``"cuda:1"``, ``"mps"`` or
``"cpu"``), the factorisation (float64), the products with the targets (``dtype``) and the
out-of-sample predictions of :meth:`RidgeCV.predict` (float64) run on that device; only
per-target summaries (scores, chosen alphas) and the requested predictions come back to the
host. MPS has no float64: there the factorisation and :meth:`RidgeCV.predict` run on the
CPU and only the float32 products on the device. :func:`kernel_backend` maps a device to
the backend that runs on it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainrank.core.backend import get_backend
from brainrank.core.errors import InputError

#: Default alpha grid: 10^-2 .. 10^8. Wide because feature scales differ by orders of
#: magnitude across layers and models; per-target choice by LOO error picks within it.
DEFAULT_ALPHAS = tuple(float(10.0**e) for e in range(-2, 9))

SCORINGS = ("mse", "pearson")


@dataclass
class RidgeLOOResult:
    """Leave-one-out results for every target.

    - ``predictions`` (n, v): LOO predictions at the chosen alpha (None if not requested)
    - ``alphas`` (v,): the chosen alpha per target; ``alpha_index`` its position in the grid
    - ``scores`` (v,): Pearson r between LOO predictions and targets
    - ``r2`` (v,): 1 - SSE / SST of the LOO predictions
    - ``cv_scores`` (n_alphas, v): LOO mean squared error (``scoring="mse"``) or LOO Pearson
      r (``scoring="pearson"``) for every alpha
    - ``n_constant``: targets without variance (their scores are NaN)
    """

    predictions: np.ndarray | None
    alphas: np.ndarray
    alpha_index: np.ndarray
    scores: np.ndarray
    r2: np.ndarray
    cv_scores: np.ndarray
    alpha_grid: np.ndarray
    scoring: str
    n_constant: int = 0
    info: dict[str, Any] = field(default_factory=dict)


def kernel_backend(device: str | None, backend: str = "numpy") -> tuple[str, str | None]:
    """``(backend, device)`` for :class:`RidgeCV` and :func:`column_pearson`: numpy for the
    CPU (or ``backend``, e.g. ``"torch"`` to run the torch kernels on the CPU), torch on
    any other device (``"cuda"``, ``"cuda:N"``, ``"mps"``)."""
    if device in (None, "", "cpu"):
        return backend, ("cpu" if backend == "torch" else None)
    return "torch", device


def _exact_on_device(be: Any) -> bool:
    """Whether float64 work (the factorisation, predictions) runs on the backend's device:
    every torch device but MPS, which has no float64."""
    return be.name == "torch" and getattr(be.device, "type", "cpu") != "mps"


def _check_finite(a: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        rows, cols = np.nonzero(bad.reshape(a.shape[0], -1))
        raise InputError(
            f"{name} contains {int(bad.sum())} NaN or infinite values in {np.unique(rows).size} "
            f"rows and {np.unique(cols).size} columns (first at row {rows[0]}, column "
            f"{cols[0]}); remove or impute them before fitting."
        )


def _check_alphas(alphas: Any) -> np.ndarray:
    grid = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if grid.ndim != 1 or grid.size == 0:
        raise InputError("alphas must be a number or a non-empty 1-D sequence of numbers.")
    if not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise InputError(f"every alpha must be a finite number > 0; got {grid.tolist()}.")
    return grid


def _check_inputs(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    Y = np.asarray(Y)
    if X.ndim != 2:
        raise InputError(f"X must be 2-D (n_stimuli, n_features); got shape {X.shape}.")
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise InputError(f"Y must be 1-D or 2-D (n_stimuli, n_targets); got shape {Y.shape}.")
    if X.shape[0] != Y.shape[0]:
        raise InputError(
            f"X has {X.shape[0]} rows but Y has {Y.shape[0]}; both need one row per stimulus, "
            "in the same order."
        )
    if X.shape[0] < 3:
        raise InputError(f"leave-one-out ridge needs at least 3 stimuli; got {X.shape[0]}.")
    if not np.issubdtype(X.dtype, np.number) or not np.issubdtype(Y.dtype, np.number):
        raise InputError("X and Y must be numeric arrays.")
    _check_finite(X, "X")
    _check_finite(Y, "Y")
    return X, Y


def _eigh_one_thread(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``numpy.linalg.eigh`` of a symmetric float64 matrix with the BLAS limited to one
    thread. On shared or oversubscribed cores a multithreaded OpenBLAS ``eigh`` of a
    1000 x 1000 Gram took 0.5-9 s against a steady 0.17 s on one thread (issue 12). Without
    threadpoolctl (installed with scikit-learn) the BLAS keeps its own thread count."""
    from brainrank.core.blas import one_blas_thread

    with one_blas_thread():
        return np.linalg.eigh(gram)


@dataclass
class Decomposition:
    """The shared factorisation of one (centred) feature matrix, in float64."""

    method: str  # "gram" (eigendecomposition of Xc Xc^T) or "svd" (thin SVD of Xc)
    basis: np.ndarray  # Q (n, r), orthonormal columns
    eigenvalues: np.ndarray  # d (r,), squared singular values, >= 0
    x_mean: np.ndarray | None  # (k,) or None without intercept
    n_samples: int

    @classmethod
    def of(
        cls, X: np.ndarray, fit_intercept: bool = True, chunk: int = 8192, backend: Any = None
    ) -> Decomposition:
        """The factorisation of ``X``; with a torch ``backend`` it is computed on that
        backend's device (float64; on MPS, which has none, on the CPU) and returned as
        numpy arrays."""
        if backend is not None and _exact_on_device(backend):
            return cls._of_torch(X, fit_intercept, chunk, backend)
        n, k = X.shape
        x_mean = X.mean(axis=0, dtype=np.float64) if fit_intercept else None

        def centred(a: int, b: int) -> np.ndarray:
            block = X[:, a:b].astype(np.float64)
            return block - x_mean[a:b] if x_mean is not None else block

        if k >= n:
            gram = np.zeros((n, n))
            for a in range(0, k, chunk):
                block = centred(a, a + chunk)
                gram += block @ block.T
            d, q = _eigh_one_thread(gram)
            method = "gram"
        else:
            q, s, _ = np.linalg.svd(centred(0, k), full_matrices=False)
            d = s**2
            method = "svd"
        np.clip(d, 0.0, None, out=d)
        return cls(method, q, d, x_mean, n)

    @classmethod
    def _of_torch(cls, X: Any, fit_intercept: bool, chunk: int, be: Any) -> Decomposition:
        """As :meth:`of`, on the device of the torch backend ``be``: ``X`` goes over in its
        own dtype, one column chunk at a time, and is widened to float64 there."""
        n, k = X.shape
        x_mean = be.asarray(X, "float64").mean(dim=0) if fit_intercept and k < n else None
        if k >= n:
            gram = be.zeros((n, n), "float64")
            means = []
            for a in range(0, k, chunk):
                block = be.asarray(X[:, a : a + chunk], "float64")
                if fit_intercept:
                    mean = block.mean(dim=0)
                    block = block - mean
                    means.append(mean)
                gram += block @ block.T
            d, q = be.eigh(gram)
            if fit_intercept:
                x_mean = be.torch.cat(means)
            method = "gram"
        else:
            block = be.asarray(X, "float64")
            if x_mean is not None:
                block = block - x_mean
            q, s = be.svd(block)
            d = s**2
            method = "svd"
        d = be.to_numpy(d).astype(np.float64)
        np.clip(d, 0.0, None, out=d)
        mean = None if x_mean is None else be.to_numpy(x_mean).astype(np.float64)
        return cls(method, be.to_numpy(q).astype(np.float64), d, mean, n)

    def permuted(self, order: Any) -> Decomposition:
        """The factorisation of ``X[order]`` for a permutation ``order`` of the rows of the
        ``X`` this one factorises, without factorising again: a row permutation ``P``
        leaves the column means unchanged and ``P Xc = (P Q) S V^T`` (the Gram matrix of
        ``P Xc`` is ``P G P^T``), so the eigenvalues stay and the basis's rows move. A
        leave-one-out fit on row-permuted features (the targets of a chance level, which
        relabel the stimuli) then costs only the products with the targets."""
        order = np.asarray(order)
        n = self.n_samples
        if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
            raise InputError(f"order must be a permutation of range({n}); got shape {order.shape}.")
        return Decomposition(self.method, self.basis[order], self.eigenvalues, self.x_mean, n)

    def leverages(self, alphas: np.ndarray, fit_intercept: bool) -> np.ndarray:
        """``h_ii`` for every alpha: (n, n_alphas), float64."""
        shrink = self.eigenvalues[:, None] / (self.eigenvalues[:, None] + alphas[None, :])
        h = (self.basis**2) @ shrink
        if fit_intercept:
            h += 1.0 / self.n_samples
        return h


class RidgeCV:
    """Ridge with exact leave-one-out alpha choice, for many targets at once.

    Parameters
    ----------
    alphas: a positive number or a grid of them.
    fit_intercept: fit an unpenalised intercept (as scikit-learn).
    alpha_per_target: choose an alpha per target (default) or one for all targets.
    scoring: ``"mse"`` (LOO mean squared error, default) or ``"pearson"`` (LOO Pearson r).
    backend, device: ``"numpy"`` or ``"torch"`` (``device="cuda"`` on a GPU).
    dtype: dtype of the target products (``"float32"`` default, ``"float64"`` for exactness).
    target_batch: targets processed at once; bounds memory to about
        ``6 * n * target_batch`` numbers.
    """

    def __init__(
        self,
        alphas: Any = DEFAULT_ALPHAS,
        *,
        fit_intercept: bool = True,
        alpha_per_target: bool = True,
        scoring: str = "mse",
        backend: str = "numpy",
        device: str | None = None,
        dtype: str = "float32",
        target_batch: int = 4096,
    ):
        self.alphas = _check_alphas(alphas)
        if scoring not in SCORINGS:
            raise InputError(f"scoring must be one of {SCORINGS}, got {scoring!r}.")
        if dtype not in ("float32", "float64"):
            raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}.")
        if target_batch < 1:
            raise InputError(f"target_batch must be >= 1, got {target_batch}.")
        self.fit_intercept = fit_intercept
        self.alpha_per_target = alpha_per_target
        self.scoring = scoring
        self.backend = get_backend(backend, device)
        self.dtype = dtype
        self.target_batch = int(target_batch)

    # ------------------------------------------------------------------ fit

    def fit(
        self,
        X: Any,
        Y: Any,
        *,
        decomposition: Decomposition | None = None,
        return_predictions: bool = True,
        _operators: list | None = None,
        _centred_blocks: dict | None = None,
    ) -> RidgeCV:
        """Compute LOO predictions and scores for every target; ``self.result_`` holds them.

        ``decomposition`` lets callers reuse the factorisation of ``X`` across target sets.
        (``_operators``: the n x n residual operators of :meth:`residual_operators`, and
        ``_centred_blocks``: each target batch as given and centred, which
        :meth:`fit_relabelled` passes.)
        """
        X, Y = _check_inputs(X, Y)
        n, v = Y.shape
        be, dt = self.backend, self.dtype
        dec = decomposition or Decomposition.of(X, self.fit_intercept, backend=be)
        if dec.n_samples != n:
            raise InputError("the decomposition was computed for a different number of rows.")
        grid = self.alphas
        n_alphas = grid.size
        # The LOO residuals of one alpha are e = D Q diag(alpha / (d + alpha)) Q^T Yc, plus
        # D (Yc - Q Q^T Yc) when Q does not span every direction (k < n), with
        # D = diag(1 / (1 - h_ii)). The factors are computed in float64 and folded into one
        # n x r operator per alpha, so each alpha costs one matrix product of the working
        # dtype and no cancellation occurs even when the fit is almost exact.
        keep = grid[None, :] / (dec.eigenvalues[:, None] + grid[None, :])  # (r, A)
        inv_den = 1.0 / (1.0 - dec.leverages(grid, self.fit_intercept))  # (n, A)
        complete = dec.basis.shape[1] == n
        r = dec.basis.shape[1]
        itemsize = np.dtype(dt).itemsize

        def operator(a: int):
            return be.asarray(inv_den[:, a, None] * dec.basis * keep[None, :, a], dt)

        stored_ops = (
            [operator(a) for a in range(n_alphas)]
            if _operators is None and n_alphas * n * r * itemsize <= 2**29
            else None
        )
        Q = be.asarray(dec.basis, dt)
        inv_den_dt = be.asarray(inv_den, dt)

        constant = np.ptp(Y, axis=0) == 0
        cv = np.empty((n_alphas, v))
        chosen = np.zeros(v, dtype=np.int64)
        predictions = np.empty((n, v), dtype=np.dtype(dt)) if return_predictions else None
        scores = np.empty(v)
        r2 = np.empty(v)
        y_means = np.empty(v)

        def residuals(a: int, Z, outside, out):
            if _operators is not None:  # Z is Yc: the whole operator in one product
                return be.matmul(_operators[a], Z, out=out)
            be.matmul(stored_ops[a] if stored_ops is not None else operator(a), Z, out=out)
            if outside is not None:
                out += outside * inv_den_dt[:, a : a + 1]
            return out

        for b0 in range(0, v, self.target_batch):
            b1 = min(v, b0 + self.target_batch)
            if _centred_blocks is not None:
                Yb, Yc, mean = _centred_blocks[b0]
            else:
                Yb, Yc, mean = self._centred(be, Y, b0, b1, None)
            y_means[b0:b1] = mean
            if _operators is not None:
                Z, outside = Yc, None
            else:
                Z = Q.T @ Yc
                outside = None if complete else Yc - Q @ Z
            sst = be.to_numpy(be.col_dot(Yc, Yc)).astype(np.float64)
            e = be.empty((n, b1 - b0), dt)
            best_e = be.empty((n, b1 - b0), dt) if self.alpha_per_target else None
            best_cmp = None
            for a in range(n_alphas):
                target = best_e if (a == 0 and best_e is not None) else e
                residuals(a, Z, outside, target)
                score, cmp = self._score(be, target, Yc, sst, n)
                cv[a, b0:b1] = score
                if best_e is None:
                    continue
                if a == 0:
                    best_cmp = cmp
                    continue
                better = cmp < best_cmp
                if better.any():
                    be.copy_columns_where(best_e, e, better)
                    best_cmp = np.where(better, cmp, best_cmp)
                    chosen[b0:b1][better] = a
            if best_e is not None:
                self._finish_batch(be, Yb, Yc, sst, best_e, b0, b1, predictions, scores, r2)

        if not self.alpha_per_target:
            overall = cv.mean(axis=1) if self.scoring == "mse" else -np.nanmean(cv, axis=1)
            a = int(np.argmin(overall))
            chosen[:] = a
            for b0 in range(0, v, self.target_batch):
                b1 = min(v, b0 + self.target_batch)
                if _centred_blocks is not None:
                    Yb, Yc, _ = _centred_blocks[b0]
                else:
                    Yb, Yc, _ = self._centred(be, Y, b0, b1, y_means[b0:b1])
                if _operators is not None:
                    Z, outside = Yc, None
                else:
                    Z = Q.T @ Yc
                    outside = None if complete else Yc - Q @ Z
                e = residuals(a, Z, outside, be.empty((n, b1 - b0), dt))
                sst = be.to_numpy(be.col_dot(Yc, Yc)).astype(np.float64)
                self._finish_batch(be, Yb, Yc, sst, e, b0, b1, predictions, scores, r2)

        n_constant = int(constant.sum())
        if n_constant:
            scores[constant] = np.nan
            r2[constant] = np.nan
            warnings.warn(
                f"{n_constant} of {v} targets are constant across stimuli; their scores are NaN.",
                RuntimeWarning,
                stacklevel=2,
            )
        self.decomposition_ = dec
        self._y_means = y_means
        self._X, self._Y = X, Y  # references (no copies), for predict()
        self.alpha_index_ = chosen
        self.alpha_ = grid[chosen]
        self.result_ = RidgeLOOResult(
            predictions=predictions,
            alphas=grid[chosen],
            alpha_index=chosen,
            scores=scores,
            r2=r2,
            cv_scores=cv,
            alpha_grid=grid,
            scoring=self.scoring,
            n_constant=n_constant,
            info={
                "method": dec.method,
                "rank": int(dec.eigenvalues.size),
                "backend": be.name,
                "device": str(be.device),
            },
        )
        return self

    def residual_operators(self, decomposition: Decomposition) -> list | None:
        """Per alpha, the n x n matrix ``M`` whose product with the centred targets gives
        their leave-one-out residuals, ``e = M Yc``: ``M = D (I - Q diag(d / (d + alpha))
        Q^T)`` with ``D = diag(1 / (1 - h_ii))`` (``D Q diag(alpha / (d + alpha)) Q^T`` when
        ``Q`` spans every direction), formed in float64 and kept in the working dtype.
        ``None`` when they would take more than 512 MiB, or cost more per target than the
        two thin products of :meth:`fit` (a basis of rank below n / 2)."""
        dec = decomposition
        n, r = dec.basis.shape
        grid = self.alphas
        if grid.size * n * n * np.dtype(self.dtype).itemsize > 2**29 or 2 * r < n:
            return None
        inv_den = 1.0 / (1.0 - dec.leverages(grid, self.fit_intercept))  # (n, A)
        operators = []
        for a, alpha in enumerate(grid):
            if r == n:
                keep = alpha / (dec.eigenvalues + alpha)
                M = (dec.basis * keep) @ dec.basis.T
            else:
                shrink = dec.eigenvalues / (dec.eigenvalues + alpha)
                M = np.eye(n) - (dec.basis * shrink) @ dec.basis.T
            M *= inv_den[:, a, None]
            operators.append(self.backend.asarray(M, self.dtype))
        return operators

    def fit_relabelled(
        self, X: Any, Y: Any, orders: list[Any], *, decomposition: Decomposition | None = None
    ) -> list[RidgeLOOResult]:
        """For each row permutation ``order``, the result of ``fit(X[order], Y)`` (up to
        floating-point rounding): the targets regressed on the features with their rows
        relabelled, as a chance level does. Leave-one-out ridge is equivariant under a
        relabelling of the rows, so the fit of ``X`` on ``Y[argsort(order)]`` is that fit
        with its rows permuted back; ``X`` is factorised once (or ``decomposition`` is
        used), and with the n x n residual operators of :meth:`residual_operators` each
        relabelling costs one product per alpha with the targets instead of two."""
        X, Y = _check_inputs(X, Y)
        dec = decomposition or Decomposition.of(X, self.fit_intercept, backend=self.backend)
        operators = self.residual_operators(dec)
        be, v = self.backend, Y.shape[1]
        # the targets are centred once: a relabelling permutes the rows of the centred
        # batches (the column means do not depend on the order of the rows)
        base = {
            b0: self._centred(be, Y, b0, min(v, b0 + self.target_batch), None)
            for b0 in range(0, v, self.target_batch)
        }
        results = []
        for order in orders:
            order = np.asarray(order)
            if order.shape != (X.shape[0],) or not np.array_equal(
                np.sort(order), np.arange(X.shape[0])
            ):
                raise InputError(
                    f"every order must be a permutation of range({X.shape[0]}); got one of "
                    f"shape {order.shape}."
                )
            inverse = np.argsort(order)
            rows = inverse if be.name != "torch" else be.torch.as_tensor(inverse, device=be.device)
            blocks = {b0: (Yb[rows], Yc[rows], mean) for b0, (Yb, Yc, mean) in base.items()}
            result = self.fit(
                X,
                Y[inverse],
                decomposition=dec,
                _operators=operators,
                _centred_blocks=blocks,
            ).result_
            if result.predictions is not None:
                result.predictions = result.predictions[order]
            results.append(result)
        return results

    def _centred(self, be, Y, b0, b1, mean):
        """Targets ``b0:b1`` as given and centred; centring happens in float64 so that large
        offsets do not cost the centred values their precision (on the device when it has
        float64)."""
        if _exact_on_device(be):
            block = be.asarray(Y[:, b0:b1], "float64")
            if mean is None:
                on = block.mean(dim=0) if self.fit_intercept else be.zeros((b1 - b0,), "float64")
                mean = be.to_numpy(on)
            else:
                on = be.asarray(mean, "float64")
            return be.astype(block, self.dtype), be.astype(block - on, self.dtype), mean
        block = np.asarray(Y[:, b0:b1], dtype=np.float64)
        if mean is None:
            mean = block.mean(axis=0) if self.fit_intercept else np.zeros(b1 - b0)
        return be.asarray(block, self.dtype), be.asarray(block - mean, self.dtype), mean

    def _score(self, be, e, Yc, sst: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The LOO score of every column for one alpha, and the key to minimise."""
        see = be.to_numpy(be.col_dot(e, e)).astype(np.float64)
        if self.scoring == "mse":
            score = see / n
            return score, score
        r = _pearson_from_sums(be, e, Yc, sst, see, n)
        return r, -np.nan_to_num(r, nan=-np.inf)

    def _finish_batch(self, be, Yb, Yc, sst, e, b0, b1, predictions, scores, r2) -> None:
        see = be.to_numpy(be.col_dot(e, e)).astype(np.float64)
        if predictions is not None:
            predictions[:, b0:b1] = be.to_numpy(Yb - e)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores[b0:b1] = _pearson_from_sums(be, e, Yc, sst, see, Yc.shape[0])
            r2[b0:b1] = 1.0 - see / sst

    # ------------------------------------------------------------------ predict

    def predict(self, X_new: Any) -> np.ndarray:
        """Predict new stimuli with the alphas chosen by LOO on the training stimuli."""
        if not hasattr(self, "result_"):
            raise InputError("call fit() before predict().")
        X_new = np.asarray(X_new)
        k = self._X.shape[1]
        if X_new.ndim != 2 or X_new.shape[1] != k:
            raise InputError(f"X_new has shape {X_new.shape}; expected (n_new, {k}).")
        _check_finite(X_new, "X_new")
        if _exact_on_device(self.backend):
            return self._predict_on(self.backend, X_new)
        dec = self.decomposition_
        x_mean = dec.x_mean if dec.x_mean is not None else 0.0
        train_c = self._X.astype(np.float64) - x_mean
        # (X_new - mean) Xc^T Q = X_new_c V S: the new stimuli in the basis of Q.
        coords = ((X_new.astype(np.float64) - x_mean) @ train_c.T) @ dec.basis
        out = np.empty((X_new.shape[0], self.alpha_.size))
        for b0 in range(0, self.alpha_.size, self.target_batch):
            b1 = min(self.alpha_.size, b0 + self.target_batch)
            Z = dec.basis.T @ (self._Y[:, b0:b1].astype(np.float64) - self._y_means[b0:b1])
            index = self.alpha_index_[b0:b1]
            for a in np.unique(index):
                cols = np.flatnonzero(index == a)
                weights = 1.0 / (dec.eigenvalues + self.alphas[a])
                out[:, b0 + cols] = coords @ (weights[:, None] * Z[:, cols])
        return out + self._y_means

    def _predict_on(self, be: Any, X_new: np.ndarray) -> np.ndarray:
        """:meth:`predict` on the torch backend's device, in float64."""
        dec = self.decomposition_
        k = self._X.shape[1]
        basis = be.asarray(dec.basis, "float64")
        eigenvalues = be.asarray(dec.eigenvalues, "float64")
        x_mean = be.asarray(dec.x_mean if dec.x_mean is not None else np.zeros(k), "float64")
        coords = be.zeros((X_new.shape[0], self._X.shape[0]), "float64")
        chunk = 8192
        for a in range(0, k, chunk):  # (X_new - mean) Xc^T, a column chunk at a time
            train = be.asarray(self._X[:, a : a + chunk], "float64") - x_mean[a : a + chunk]
            new = be.asarray(X_new[:, a : a + chunk], "float64") - x_mean[a : a + chunk]
            coords += new @ train.T
        coords = coords @ basis
        out = np.empty((X_new.shape[0], self.alpha_.size))
        for b0 in range(0, self.alpha_.size, self.target_batch):
            b1 = min(self.alpha_.size, b0 + self.target_batch)
            Yc = be.asarray(self._Y[:, b0:b1], "float64") - be.asarray(
                self._y_means[b0:b1], "float64"
            )
            Z = basis.T @ Yc
            index = self.alpha_index_[b0:b1]
            block = be.empty((X_new.shape[0], b1 - b0), "float64")
            for a in np.unique(index):
                cols = be.torch.as_tensor(np.flatnonzero(index == a), device=be.device)
                weights = 1.0 / (eigenvalues + float(self.alphas[a]))
                block[:, cols] = coords @ (weights[:, None] * Z[:, cols])
            out[:, b0:b1] = be.to_numpy(block)
        return out + self._y_means


def _pearson_from_sums(be, e, Yc, sst, see, n) -> np.ndarray:
    """Pearson r between the LOO predictions ``Y - e`` and ``Y``, per column.

    Computed from centred vectors (``p - mean(p)`` and ``y - mean(y)``), never from the
    raw-moment identity ``var(p) = sum(y^2) - 2 sum(e y) + sum(e^2) - sum(e)^2 / n``: that
    identity cancels catastrophically in float32 when the predictions are almost constant
    (it gave r = -1.042). With centred vectors Cauchy-Schwarz bounds the result by 1 up to
    rounding, and the result is clipped to [-1, 1]. ``sst`` and ``see`` are accepted for
    backward compatibility and not used.
    """
    del sst, see
    P = Yc - e
    P = P - be.col_sum(P)[None, :] / n
    Ym = Yc - be.col_sum(Yc)[None, :] / n
    num = be.to_numpy(be.col_dot(P, Ym)).astype(np.float64)
    pp = be.to_numpy(be.col_dot(P, P)).astype(np.float64)
    yy = be.to_numpy(be.col_dot(Ym, Ym)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / np.sqrt(pp * yy)
    return np.clip(r, -1.0, 1.0)


def column_pearson(a: Any, b: Any, backend: Any = None) -> np.ndarray:
    """Pearson r of matching columns of ``a`` and ``b``, in float64, clipped to [-1, 1]
    (NaN for a constant column); on the device of a torch ``backend`` when given (float64
    there; MPS, which has none, computes on the CPU)."""
    if backend is not None and _exact_on_device(backend):
        a = backend.asarray(a, "float64")
        b = backend.asarray(b, "float64")
        if a.ndim == 1:
            a, b = a[:, None], b[:, None]
        ac, bc = a - a.mean(dim=0), b - b.mean(dim=0)
        num = backend.to_numpy(backend.col_dot(ac, bc))
        den = backend.to_numpy(backend.col_dot(ac, ac) * backend.col_dot(bc, bc))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.clip(num / np.sqrt(den), -1.0, 1.0)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    ac, bc = a - a.mean(0), b - b.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (ac * bc).sum(0) / np.sqrt((ac * ac).sum(0) * (bc * bc).sum(0))
    return np.clip(r, -1.0, 1.0)


STANDARDIZE = ("none", "all", "train")


def zscore_columns(X: Any, reference: Any | None = None) -> np.ndarray:
    """``X`` with every column z-scored by the mean and standard deviation (``ddof=0``) of
    ``reference`` (default: ``X`` itself), in float64; a column without variance in the
    reference keeps scale 1 (it is only centred), as scikit-learn's ``StandardScaler`` and
    ``preprocessing.scale`` do."""
    X = np.asarray(X, dtype=np.float64)
    ref = X if reference is None else np.asarray(reference, dtype=np.float64)
    mean = ref.mean(axis=0)
    sd = ref.std(axis=0)
    tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
    sd = np.where(sd < tiny, 1.0, sd)
    return (X - mean) / sd


@dataclass
class RidgeKFoldResult:
    """Nested cross-validated ridge: per fold, every target's alpha is chosen by exact LOO
    on the training folds only, and the fold is predicted with it.

    - ``fold_scores`` (n_folds, v): Pearson r between predictions and targets *within* each
      test fold (the intercept, a constant within the fold, cannot move it)
    - ``scores`` (v,): the mean of ``fold_scores`` over folds (NaN folds ignored)
    - ``predictions`` (n, v): out-of-fold predictions, float64
    - ``alphas`` (n_folds, v): the alpha chosen for each fold
    - ``folds``: the test indices of each fold
    """

    fold_scores: np.ndarray
    scores: np.ndarray
    predictions: np.ndarray
    alphas: np.ndarray
    folds: list[np.ndarray]


def ridge_kfold(
    X: Any,
    Y: Any,
    folds: list[np.ndarray],
    alphas: Any = DEFAULT_ALPHAS,
    *,
    standardize: str = "train",
    **options: Any,
) -> RidgeKFoldResult:
    """Ridge scored on held-out folds, with the alpha of every target chosen by exact LOO on
    the training folds only (nested cross-validation; ``options`` go to :class:`RidgeCV`).

    ``folds`` are disjoint index arrays covering the stimuli to score. ``standardize``:
    ``"train"`` z-scores the features with the training folds' mean and standard deviation
    (the test fold is transformed with them, never looked at), ``"all"`` with every
    stimulus', ``"none"`` leaves them as given.
    """
    X, Y = _check_inputs(X, Y)
    if standardize not in STANDARDIZE:
        raise InputError(f"standardize must be one of {STANDARDIZE}, got {standardize!r}.")
    n, v = Y.shape
    folds = [np.asarray(f, dtype=np.int64) for f in folds]
    if len(folds) < 2:
        raise InputError(f"nested cross-validation needs at least 2 folds, got {len(folds)}.")
    everything = np.concatenate(folds)
    if (
        np.unique(everything).size != everything.size
        or everything.min() < 0
        or everything.max() >= n
    ):
        raise InputError("folds must be disjoint arrays of row indices of X.")
    for f in folds:
        if f.size < 3 or n - f.size < 3:
            raise InputError(
                f"every fold needs at least 3 test and 3 training stimuli; a fold has {f.size} "
                f"test and {n - f.size} training stimuli. Use fewer folds or more stimuli."
            )
    ridge = RidgeCV(alphas, **options)
    Xa = zscore_columns(X) if standardize == "all" else X
    predictions = np.full((n, v), np.nan)
    fold_scores = np.full((len(folds), v), np.nan)
    chosen = np.full((len(folds), v), np.nan)
    for j, test in enumerate(folds):
        train = np.setdiff1d(np.arange(n), test)
        if standardize == "train":
            X_train = zscore_columns(X[train])
            X_test = zscore_columns(X[test], X[train])
        else:
            X_train, X_test = Xa[train], Xa[test]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant targets within a fold
            ridge.fit(X_train, Y[train], return_predictions=False)
        predicted = ridge.predict(X_test)
        predictions[test] = predicted
        fold_scores[j] = column_pearson(predicted, Y[test], ridge.backend)
        chosen[j] = ridge.alpha_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        scores = np.nanmean(fold_scores, axis=0)
    return RidgeKFoldResult(fold_scores, scores, predictions, chosen, folds)


def ridge_loo(X: Any, Y: Any, alphas: Any = DEFAULT_ALPHAS, **options: Any) -> RidgeLOOResult:
    """Leave-one-out ridge of every column of ``Y`` on ``X``; see :class:`RidgeCV`.

    >>> result = ridge_loo(X, Y, alphas=[0.1, 1, 10])
    >>> result.predictions   # (n, v) LOO predictions at each target's chosen alpha
    >>> result.alphas        # (v,) chosen alphas
    >>> result.scores        # (v,) Pearson r of the LOO predictions
    """
    fit_options = {
        k: options.pop(k) for k in ("decomposition", "return_predictions") if k in options
    }
    return RidgeCV(alphas, **options).fit(X, Y, **fit_options).result_
