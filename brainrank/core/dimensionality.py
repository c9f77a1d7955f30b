"""Effective dimensionality of a layer's features: the participation ratio of the eigenvalues
of their covariance over stimuli.

For features ``X`` (n stimuli x p features) with covariance eigenvalues ``lambda_i``, the
effective dimensionality is

    ED = (sum_i lambda_i)^2 / sum_i lambda_i^2

(the participation ratio; Gao et al. 2017, Del Giudice 2021, used for network layers by
Elmoznino & Bonner, "High-performing neural network models of visual cortex benefit from
high latent dimensionality"). It is 1 when one direction carries all the variance and ``d``
when ``d`` directions carry equal variance; it does not depend on the scale of the features.

The covariance's non-zero eigenvalues are those of the stimulus x stimulus Gram matrix of the
column-centred features, ``K = H X X^T H`` (H the centring matrix) divided by ``n - 1``, so
the spectrum of a layer of any width comes from an (n, n) matrix that feature extraction
accumulates exactly (:class:`brainrank.core.rsa.GramAccumulator`). The ratio needs no
eigendecomposition: ``ED = trace(K)^2 / ||K||_F^2``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainrank.core.errors import InputError


def participation_ratio(eigenvalues: Any) -> float:
    """``(sum lambda)^2 / sum lambda^2`` of a covariance spectrum (negative rounding residue
    clipped to 0); NaN when every eigenvalue is 0 (constant features)."""
    values = np.asarray(eigenvalues, dtype=np.float64).ravel()
    if values.size == 0:
        raise InputError("the participation ratio needs at least one eigenvalue.")
    if not np.all(np.isfinite(values)):
        raise InputError("eigenvalues must be finite numbers.")
    values = np.clip(values, 0.0, None)
    square = float(np.dot(values, values))
    if square == 0.0:
        return float("nan")
    return float(values.sum() ** 2 / square)


def centred_gram(gram: Any) -> np.ndarray:
    """``H G H``: the Gram matrix of the column-centred features from the uncentred Gram
    ``G = X X^T`` (n, n), in float64."""
    g = np.asarray(gram, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise InputError(f"a Gram matrix must be square (n, n); got {g.shape}.")
    row = g.mean(axis=1, keepdims=True)
    return g - row - row.T + g.mean()


def covariance_spectrum(gram: Any) -> np.ndarray:
    """The non-negative eigenvalues, largest first, of the features' covariance over stimuli
    (``ddof=1``) from their uncentred Gram matrix ``X X^T`` (n, n): n values, of which at most
    ``min(n - 1, p)`` are non-zero. Equal to ``numpy.linalg.eigvalsh(numpy.cov(X.T))``'s
    non-zero eigenvalues."""
    k = centred_gram(gram)
    n = k.shape[0]
    if n < 2:
        raise InputError("a covariance spectrum needs at least 2 stimuli.")
    values = np.linalg.eigvalsh((k + k.T) / 2)[::-1] / (n - 1)
    return np.clip(values, 0.0, None)


def effective_dimensionality(features: Any) -> float:
    """The participation ratio of the covariance spectrum of ``features`` (n stimuli, p
    features), from its (n, n) Gram matrix (no p x p matrix is formed)."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise InputError(f"features must be (n_stimuli >= 2, n_features); got {x.shape}.")
    return effective_dimensionality_from_gram(x @ x.T)


def effective_dimensionality_from_gram(gram: Any) -> float:
    """``trace(K)^2 / ||K||_F^2`` with ``K`` the centred Gram matrix (see the module
    docstring): the participation ratio without an eigendecomposition."""
    k = centred_gram(gram)
    square = float(np.sum(k * k))
    if square <= 0.0:
        return float("nan")
    return float(np.trace(k) ** 2 / square)
