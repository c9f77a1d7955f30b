"""Representational dissimilarity matrices and their comparison.

- :func:`rdm`: correlation distance (default), cosine distance or euclidean distance between
  the rows (stimuli) of a pattern matrix, or of each matrix in a stack.
- :func:`compare`: compare RDMs by their upper triangles with Pearson (default), Spearman
  or Kendall's tau-a; stacks on either side give a matrix of comparisons.
- :class:`GramAccumulator`: builds an exact RDM from column chunks of a pattern matrix
  (used by feature extraction, which never holds a whole layer when memory is short).

Correlation distances come from one symmetric rank-k product (BLAS ``syrk``) of the
patterns; when the row means are large compared with the spread, the rows are centred
first so that no precision is lost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg.blas as blas
import scipy.stats

from brainrank.core.errors import InputError

DISTANCES = ("correlation", "cosine", "euclidean")
COMPARISONS = ("pearson", "spearman", "kendall_tau_a")

#: When p * mean^2 / (sum of squares - p * mean^2) exceeds this for some row, the
#: uncentred float32 product would lose too many digits (its relative error grows like
#: eps * (1 + ratio): about 1e-5 at 100): the rows are centred before the product.
_CENTRE_FIRST = 100.0


def _gram(a: np.ndarray) -> np.ndarray:
    """``a @ a.T`` for a float32/float64 C-contiguous ``(n, p)`` array, full symmetric."""
    syrk = blas.ssyrk if a.dtype == np.float32 else blas.dsyrk
    # a.T is a Fortran-ordered (p, n) view: syrk(trans=1) forms (a.T)^T a.T = a a^T with no copy.
    upper = syrk(1.0, a.T, trans=1, lower=0)
    return np.triu(upper) + np.triu(upper, 1).T


def rdm(patterns: Any, method: str = "correlation", dtype: str = "float32") -> np.ndarray:
    """RDM(s) of ``patterns``: ``(n, p)`` -> ``(n, n)`` or ``(m, n, p)`` -> ``(m, n, n)``.

    Rows are stimuli, columns features (voxels, units). The products run in ``dtype``
    (float32 by default); the result is float64 with an exact zero diagonal.
    """
    if method not in DISTANCES:
        raise InputError(f"unknown RDM method {method!r}; choose one of {DISTANCES}.")
    x = np.asarray(patterns)
    if x.ndim == 3:
        return np.stack([rdm(p, method, dtype) for p in x])
    if x.ndim != 2:
        raise InputError(f"patterns must be (n_stimuli, n_features) or a stack; got {x.shape}.")
    n, p = x.shape
    if n < 2 or p < 1:
        raise InputError(f"an RDM needs at least 2 stimuli and 1 feature; got shape {x.shape}.")
    acc = GramAccumulator(n, dtype=dtype)
    acc.add(x)
    return acc.rdm(method)


class GramAccumulator:
    """Exact RDMs from column chunks of a pattern matrix ``(n, p)``.

    Each chunk's centred Gram matrix and row means are accumulated; the between-chunk part
    of the row variance is added at the end (the parallel-variance identity), so the result
    equals the RDM of the whole matrix however it was chunked.
    """

    def __init__(self, n_samples: int, dtype: str = "float32"):
        self.n = int(n_samples)
        self.dtype = np.dtype(dtype)
        self.centred = np.zeros((self.n, self.n))  # sum over chunks of centred Grams
        self.raw = np.zeros((self.n, self.n))  # sum over chunks of uncentred Grams
        self._means: list[np.ndarray] = []
        self._widths: list[int] = []

    @property
    def n_features(self) -> int:
        return int(sum(self._widths))

    def add(self, chunk: Any) -> None:
        x = np.asarray(chunk)
        if x.ndim != 2 or x.shape[0] != self.n:
            raise InputError(f"chunk has shape {x.shape}; expected ({self.n}, n_columns).")
        p = x.shape[1]
        if p == 0:
            return
        x = np.ascontiguousarray(x, dtype=self.dtype)
        # Row sums and sums of squares in the working dtype (BLAS / SIMD, far faster than a
        # float64 reduction); they only decide whether centring first is needed.
        mean = (x @ np.ones(p, dtype=x.dtype)).astype(np.float64) / p
        sumsq = np.einsum("ij,ij->i", x, x).astype(np.float64)
        bad = ~(np.isfinite(mean) & np.isfinite(sumsq))  # NaN / inf propagate to the sums
        if bad.any():
            raise InputError(
                f"patterns contain NaN or infinite values (or values too large to square) in "
                f"{int(bad.sum())} of {self.n} rows (first: row {int(np.flatnonzero(bad)[0])}); "
                "remove or impute them first."
            )
        var = sumsq - p * mean**2
        with np.errstate(over="ignore"):  # constant rows: ratio inf, centred below
            ratio = p * mean**2 / np.maximum(var, np.finfo(np.float64).tiny)
        if self.dtype == np.float64 or np.max(ratio, initial=0.0) <= _CENTRE_FIRST:
            g = _gram(x).astype(np.float64)
            self.raw += g
            self.centred += g - p * np.outer(mean, mean)
        else:
            # large means: centre first; the small residual mean delta is removed exactly
            xc = x - mean[:, None].astype(self.dtype)
            delta = (xc @ np.ones(p, dtype=xc.dtype)).astype(np.float64) / p
            g = _gram(xc).astype(np.float64)
            self.centred += g - p * np.outer(delta, delta)
            self.raw += g + p * (
                np.outer(mean, delta) + np.outer(delta, mean) + np.outer(mean, mean)
            )
            mean = mean + delta
        self._means.append(mean)
        self._widths.append(p)

    def rdm(self, method: str = "correlation") -> np.ndarray:
        if not self._widths:
            raise InputError("no columns were added to the accumulator.")
        if method == "correlation":
            widths = np.asarray(self._widths, dtype=np.float64)
            means = np.stack(self._means, axis=1)  # (n, chunks)
            overall = means @ widths / widths.sum()
            dev = means - overall[:, None]
            cov = self.centred + (dev * widths) @ dev.T
            g = cov
        elif method == "cosine":
            g = self.raw
        elif method == "euclidean":
            diag = np.diag(self.raw)
            sq = diag[:, None] + diag[None, :] - 2 * self.raw
            out = np.sqrt(np.clip(sq, 0.0, None))
            np.fill_diagonal(out, 0.0)
            return out
        else:
            raise InputError(f"unknown RDM method {method!r}; choose one of {DISTANCES}.")
        norms = np.sqrt(np.clip(np.diag(g), 0.0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            out = 1.0 - g / np.outer(norms, norms)
        # a constant pattern has no correlation with anything: distance NaN, like numpy
        np.clip(out, 0.0, 2.0, out=out)
        np.fill_diagonal(out, 0.0)
        zero = norms == 0
        if zero.any():
            out[zero, :] = np.nan
            out[:, zero] = np.nan
        return out


# --------------------------------------------------------------------------- comparison


def upper_triangle(rdms: Any) -> np.ndarray:
    """Vectorise RDM(s) ``(n, n)``/``(m, n, n)`` into their upper triangles (k = 1).

    1-D (and 2-D non-square) input is taken as already vectorised.
    """
    a = np.asarray(rdms, dtype=np.float64)
    if a.ndim == 2 and a.shape[0] == a.shape[1]:
        i, j = np.triu_indices(a.shape[0], 1)
        return a[i, j][None]
    if a.ndim == 3 and a.shape[1] == a.shape[2]:
        i, j = np.triu_indices(a.shape[1], 1)
        return a[:, i, j]
    if a.ndim == 1:
        return a[None]
    if a.ndim == 2:
        return a
    raise InputError(f"cannot read RDMs of shape {a.shape}; give (n, n), (m, n, n) or vectors.")


def _standardise(v: np.ndarray) -> np.ndarray:
    v = v - v.mean(axis=1, keepdims=True)
    norm = np.sqrt((v * v).sum(axis=1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / norm


def _kendall_tau_a(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-a, in O(N log N): scipy's tau-b rescaled by the tie counts."""
    n = x.size
    pairs = n * (n - 1) / 2

    def tied_pairs(v: np.ndarray) -> float:
        _, counts = np.unique(v, return_counts=True)
        return float((counts * (counts - 1) / 2).sum())

    tx, ty = tied_pairs(x), tied_pairs(y)
    if tx == pairs or ty == pairs:
        return 0.0 if pairs else float("nan")
    tau_b = scipy.stats.kendalltau(x, y, variant="b").statistic
    return float(tau_b * np.sqrt((pairs - tx) * (pairs - ty)) / pairs)


def compare(a: Any, b: Any, method: str = "pearson") -> Any:
    """Compare RDMs by their upper triangles.

    ``a`` and ``b`` are single RDMs ``(n, n)``, stacks ``(m, n, n)`` or upper-triangle
    vectors. Returns a float for two single RDMs, else an ``(m_a, m_b)`` array. NaN
    dissimilarities are not allowed (a constant pattern has none).
    """
    if method not in COMPARISONS:
        raise InputError(f"unknown comparison {method!r}; choose one of {COMPARISONS}.")
    single = np.ndim(a) in (1, 2) and np.ndim(b) in (1, 2)
    if np.ndim(a) == 2 and np.shape(a)[0] != np.shape(a)[1]:
        single = False
    if np.ndim(b) == 2 and np.shape(b)[0] != np.shape(b)[1]:
        single = False
    va, vb = upper_triangle(a), upper_triangle(b)
    if va.shape[1] != vb.shape[1]:
        raise InputError(
            f"the RDMs have {va.shape[1]} and {vb.shape[1]} pairs; they must cover the same "
            "stimuli."
        )
    if va.shape[1] < 3:
        raise InputError("comparing RDMs needs at least 3 stimuli.")
    for v, name in ((va, "first"), (vb, "second")):
        if not np.all(np.isfinite(v)):
            raise InputError(f"the {name} RDM contains NaN or infinite dissimilarities.")
    if method == "kendall_tau_a":
        out = np.array([[_kendall_tau_a(x, y) for y in vb] for x in va])
    else:
        if method == "spearman":
            va = scipy.stats.rankdata(va, axis=1)
            vb = scipy.stats.rankdata(vb, axis=1)
        out = _standardise(va) @ _standardise(vb).T
    return float(out[0, 0]) if single else out
