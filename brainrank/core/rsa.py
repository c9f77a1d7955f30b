"""Representational dissimilarity matrices and their comparison.

- :func:`rdm`: correlation distance (default), cosine distance or euclidean distance between
  the rows (stimuli) of a pattern matrix, or of each matrix in a stack.
- :func:`compare`: compare RDMs by their upper triangles with Pearson (default), Spearman
  or Kendall's tau-a; stacks on either side give a matrix of comparisons.
- :class:`GramAccumulator`: builds an exact RDM from column chunks of a pattern matrix
  (used by feature extraction, which never holds a whole layer when memory is short).

Correlation distances come from one product of the patterns with themselves (in torch: on
the patterns' device, and on the CPU several times faster than scipy's BLAS ``syrk`` was);
when the row means are large compared with the spread, the rows are centred first so that
no precision is lost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainrank.core.errors import InputError

DISTANCES = ("correlation", "cosine", "euclidean")
COMPARISONS = ("pearson", "spearman", "kendall_tau_a")

#: When p * mean^2 / (sum of squares - p * mean^2) exceeds this for some row, the
#: uncentred float32 product would lose too many digits (its relative error grows like
#: eps * (1 + ratio): about 1e-5 at 100): the rows are centred before the product.
_CENTRE_FIRST = 100.0


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

    Chunks are numpy arrays or torch tensors. The products run in torch (in ``dtype``, on the
    chunk's device: a GPU's chunks never leave it) and are summed in float64 on ``device``
    (default: the first chunk's device; Apple's ``mps`` has no float64, so its sums are kept
    on the CPU). Only the ``(n, n)`` sums come back to numpy, in :meth:`rdm`.
    """

    def __init__(self, n_samples: int, dtype: str = "float32", device: Any = None):
        self.n = int(n_samples)
        self.dtype = np.dtype(dtype)
        self.device = device
        self._centred: Any = None  # sum over chunks of centred Grams (torch float64)
        self._raw: Any = None  # sum over chunks of uncentred Grams
        self._means: list[Any] = []
        self._widths: list[int] = []

    @property
    def n_features(self) -> int:
        return int(sum(self._widths))

    @property
    def centred(self) -> np.ndarray:
        """Sum over chunks of the centred Grams ``(n, n)`` float64."""
        return self._sums()[0]

    @property
    def raw(self) -> np.ndarray:
        """Sum over chunks of the uncentred Grams ``(n, n)`` float64."""
        return self._sums()[1]

    def _sums(self) -> tuple[np.ndarray, np.ndarray]:
        if self._raw is None:
            zero = np.zeros((self.n, self.n))
            return zero, zero.copy()
        return self._centred.cpu().numpy(), self._raw.cpu().numpy()

    def _tensor(self, chunk: Any) -> Any:
        import torch

        if isinstance(chunk, torch.Tensor):
            x = chunk.detach()
            dtype = getattr(torch, self.dtype.name)
            return x if x.dtype == dtype else x.to(dtype)
        return torch.from_numpy(np.ascontiguousarray(chunk, dtype=self.dtype))

    def add(self, chunk: Any) -> None:
        import torch

        x = self._tensor(chunk)
        if x.ndim != 2 or x.shape[0] != self.n:
            raise InputError(f"chunk has shape {tuple(x.shape)}; expected ({self.n}, n_columns).")
        p = int(x.shape[1])
        if p == 0:
            return
        if self._raw is None:
            where = torch.device(self.device) if self.device is not None else x.device
            if where.type == "mps":
                where = torch.device("cpu")
            self._centred = torch.zeros((self.n, self.n), dtype=torch.float64, device=where)
            self._raw = torch.zeros_like(self._centred)
        where = self._raw.device

        def f64(t: Any) -> Any:  # moved first: a device without float64 (mps) converts nothing
            return t.to(where).to(torch.float64)

        # Row sums in the working dtype (far faster than a float64 reduction); the sums of
        # squares are the Gram's diagonal. They decide whether centring first is needed.
        g = x @ x.T
        mean = f64(x.sum(dim=1)) / p
        sumsq = f64(torch.diagonal(g))
        bad = ~(torch.isfinite(mean) & torch.isfinite(sumsq))  # NaN / inf propagate
        if bool(bad.any()):
            raise InputError(
                f"patterns contain NaN or infinite values (or values too large to square) in "
                f"{int(bad.sum())} of {self.n} rows (first: row "
                f"{int(torch.nonzero(bad)[0, 0])}); remove or impute them first."
            )
        var = sumsq - p * mean**2
        # constant rows: ratio huge (or inf), centred below
        ratio = p * mean**2 / var.clamp(min=np.finfo(np.float64).tiny)
        if self.dtype == np.float64 or float(ratio.max()) <= _CENTRE_FIRST:
            g = _symmetric(f64(g))
            self._raw += g
            self._centred += g - p * torch.outer(mean, mean)
        else:
            # large means: centre first; the small residual mean delta is removed exactly
            del g
            xc = x - mean.to(x.dtype).to(x.device)[:, None]
            delta = f64(xc.sum(dim=1)) / p
            g = _symmetric(f64(xc @ xc.T))
            del xc
            self._centred += g - p * torch.outer(delta, delta)
            self._raw += g + p * (
                torch.outer(mean, delta) + torch.outer(delta, mean) + torch.outer(mean, mean)
            )
            mean = mean + delta
        self._means.append(mean)
        self._widths.append(p)

    def column_centred(self) -> np.ndarray:
        """The Gram matrix of the columns centred over the rows, ``H G H`` with ``G`` the
        raw Gram matrix and ``H = I - 11'/n`` ``(n, n)`` float64: the linear kernel of
        centred features (CKA, principal components)."""
        if not self._widths:
            raise InputError("no columns were added to the accumulator.")
        raw = self._sums()[1]
        row = raw.mean(axis=1)
        out = raw - row[:, None] - row[None, :] + raw.mean()
        return (out + out.T) * 0.5

    def rdm(self, method: str = "correlation") -> np.ndarray:
        if not self._widths:
            raise InputError("no columns were added to the accumulator.")
        centred, raw = self._sums()
        if method == "correlation":
            widths = np.asarray(self._widths, dtype=np.float64)
            means = np.stack([m.cpu().numpy() for m in self._means], axis=1)  # (n, chunks)
            overall = means @ widths / widths.sum()
            dev = means - overall[:, None]
            cov = centred + (dev * widths) @ dev.T
            g = cov
        elif method == "cosine":
            g = raw
        elif method == "euclidean":
            diag = np.diag(raw)
            sq = diag[:, None] + diag[None, :] - 2 * raw
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


def _symmetric(g: Any) -> Any:
    """``g`` made exactly symmetric (a general matrix product need not be)."""
    return (g + g.T) * 0.5


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
    import scipy.stats

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
            import scipy.stats

            va = scipy.stats.rankdata(va, axis=1)
            vb = scipy.stats.rankdata(vb, axis=1)
        out = _standardise(va) @ _standardise(vb).T
    return float(out[0, 0]) if single else out


# --------------------------------------------------------------------------- other distances

#: the dissimilarities the RSA metric computes: correlation distance (1 - Pearson r),
#: ``euclidean`` (rsatoolbox's: the squared Euclidean distance divided by the number of
#: channels, its ``dissimilarity_measure`` "squared euclidean") and ``crossnobis`` (the
#: cross-validated squared Mahalanobis distance over repetitions, per channel, rsatoolbox's
#: ``calc_rdm_crossnobis``)
RSA_DISTANCES = ("correlation", "euclidean", "crossnobis")
#: the noise precisions of a crossnobis RDM: ``identity`` (a cross-validated squared
#: Euclidean distance, rsatoolbox's default) or ``diagonal`` (each channel divided by its
#: residual variance, univariate noise normalisation)
CROSSNOBIS_NOISE = ("identity", "diagonal")


def squared_euclidean(patterns: Any) -> np.ndarray:
    """``(n, p)`` -> ``(n, n)``: the squared Euclidean distance between rows divided by the
    number of columns ``p`` (rsatoolbox's ``euclidean``), in float64 with a zero diagonal."""
    x = np.asarray(patterns, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise InputError(f"an RDM needs (n_stimuli >= 2, n_features >= 1); got {x.shape}.")
    x = x - x.mean(axis=0)  # distances do not change; the products lose less precision
    return squared_euclidean_from_gram(x @ x.T, x.shape[1])


def squared_euclidean_from_gram(gram: Any, n_features: int) -> np.ndarray:
    """The :func:`squared_euclidean` RDM of patterns whose Gram matrix (raw, or centred over
    the stimuli: differences of rows do not change) is ``gram``, over ``n_features``."""
    g = np.asarray(gram, dtype=np.float64)
    diag = np.diag(g)
    out = (diag[:, None] + diag[None, :] - 2 * g) / float(n_features)
    out = np.clip((out + out.T) * 0.5, 0.0, None)
    np.fill_diagonal(out, 0.0)
    return out


def crossnobis(trials: Any, noise: str = "identity") -> np.ndarray:
    """Cross-validated squared Mahalanobis distances ``(n, n)`` from ``trials``
    ``(repetitions, n, p)`` (every stimulus repeated, at least twice), as rsatoolbox's
    ``calc_rdm_crossnobis`` with the repetitions as folds: for each repetition, the pattern
    differences of the mean of the other repetitions times those of this repetition, through
    the noise precision, divided by ``p``; the mean over repetitions. Unbiased: its expected
    value is 0 where two stimuli do not differ (it can be negative).

    ``noise``: ``identity`` or ``diagonal`` (the precision ``diag(1 / variance)`` of every
    channel's residuals about its stimulus means, ``n (repetitions - 1)`` degrees of
    freedom).
    """
    t = np.asarray(trials, dtype=np.float64)
    if t.ndim != 3 or t.shape[0] < 2:
        raise InputError(
            f"a crossnobis RDM needs trials (repetitions >= 2, stimuli, channels); got {t.shape}."
        )
    if noise not in CROSSNOBIS_NOISE:
        raise InputError(f"noise must be one of {CROSSNOBIS_NOISE}, got {noise!r}.")
    reps, n, p = t.shape
    if noise == "diagonal":
        residuals = t - t.mean(axis=0)
        variance = (residuals**2).sum(axis=(0, 1)) / (n * (reps - 1))
        if np.any(variance <= 0):
            raise InputError(
                "a channel has no trial-to-trial variance; diagonal noise normalisation needs "
                "every channel to vary over repetitions."
            )
        t = t / np.sqrt(variance)
    total = t.sum(axis=0)
    out = np.zeros((n, n))
    for r in range(reps):
        test = t[r]
        train = (total - test) / (reps - 1)
        kernel = train @ test.T
        diag = np.diag(kernel)
        out += diag[None, :] + diag[:, None] - kernel - kernel.T
    out /= reps * p
    out = (out + out.T) * 0.5
    np.fill_diagonal(out, 0.0)
    return out
