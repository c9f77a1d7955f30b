"""Linear centred kernel alignment (CKA) and its noise ceiling.

With linear kernels ``K = X X^T`` (features, n x n) and ``L = Y Y^T`` (responses), the
Hilbert-Schmidt independence criterion (HSIC) of the two representations is estimated by

- ``"debiased"`` (default): the unbiased U-statistic of Song et al. (2012, JMLR 13,
  "Feature selection via dependence maximization", eq. 5), the estimator Kornblith et al.
  (2019) recommend for small n: with ``K~``/``L~`` the Gram matrices with their diagonals
  set to 0,
  ``HSIC_u = [tr(K~ L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2 1'K~L~1 / (n-2)] / (n (n-3))``;
- ``"biased"``: ``tr(K H L H) / (n-1)^2`` with the centring matrix ``H = I - 11'/n``
  (Gretton et al. 2005; Kornblith et al. 2019, eq. 3).

``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` (Kornblith et al. 2019, eq. 4).

Calibration on independent representations: the debiased HSIC has expectation 0, so
debiased CKA of pure noise is 0 within its sampling error (about ``sqrt(2) / (n - 1)`` for
one comparison over n stimuli; ``tests/core/test_cka.py`` checks this by simulation). The
biased HSIC has expectation ``tr(K~) tr(L~) / (n-1)^3`` (centred Gram matrices) even when the
two are independent, so biased CKA of pure noise is about
``sqrt(d_K d_L) / (n - 1)`` with ``d`` each representation's participation ratio
``(sum of eigenvalues)^2 / sum of squared eigenvalues``: 0.4 and more for high-dimensional
features and a few dozen noisy neuroids. Biased CKA is therefore NOT calibrated: its value
depends on dimensionality as much as on shared structure.

:func:`cka_ceiling` is the CKA a noise-free model reaches against trial-averaged responses,
estimated from split halves of the repetitions (see its docstring).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from brainrank.core.errors import InputError

ESTIMATORS = ("debiased", "biased")


def check_estimator(estimator: str) -> str:
    if estimator not in ESTIMATORS:
        raise InputError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}.")
    return estimator


def gram(X: Any) -> np.ndarray:
    """The linear-kernel Gram matrix of the column-centred rows of ``X`` (n, p): ``(n, n)``
    float64. (Centring changes neither estimator; it keeps the products precise.)"""
    x = np.asarray(X, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise InputError(f"X must be (n_stimuli, n_features); got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise InputError("the features or responses contain NaN or infinite values.")
    x = x - x.mean(axis=0)
    return x @ x.T


def hsic(K: np.ndarray, L: np.ndarray, estimator: str = "debiased") -> float:
    """HSIC of two Gram matrices ``(n, n)`` with the given estimator (module docstring)."""
    check_estimator(estimator)
    K = np.asarray(K, dtype=np.float64)
    L = np.asarray(L, dtype=np.float64)
    n = K.shape[0]
    if K.shape != (n, n) or L.shape != (n, n):
        raise InputError(f"Gram matrices of shapes {K.shape} and {L.shape}; need (n, n) both.")
    if estimator == "biased":
        if n < 2:
            raise InputError("HSIC needs at least 2 stimuli.")
        Kc = K - K.mean(axis=0) - K.mean(axis=1)[:, None] + K.mean()
        Lc = L - L.mean(axis=0) - L.mean(axis=1)[:, None] + L.mean()
        return float((Kc * Lc).sum() / (n - 1) ** 2)
    if n < 4:
        raise InputError(f"the debiased HSIC needs at least 4 stimuli; got {n}.")
    Kt = K.copy()
    Lt = L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    k1 = Kt.sum(axis=1)
    l1 = Lt.sum(axis=1)
    trace = float((Kt * Lt).sum())
    total = float(k1.sum()) * float(l1.sum()) / ((n - 1) * (n - 2))
    cross = 2.0 * float(k1 @ l1) / (n - 2)
    return (trace + total - cross) / (n * (n - 3))


def cka(K: np.ndarray, L: np.ndarray, estimator: str = "debiased") -> float:
    """CKA of two Gram matrices; NaN when a self-HSIC is not positive (a constant
    representation, or a debiased estimate that fell to or below 0 on very few stimuli)."""
    kl = hsic(K, L, estimator)
    kk = hsic(K, K, estimator)
    ll = hsic(L, L, estimator)
    if not (kk > 0 and ll > 0):
        return float("nan")
    return float(kl / np.sqrt(kk * ll))


def linear_cka(X: Any, Y: Any, estimator: str = "debiased") -> float:
    """Linear CKA between features ``X`` (n, p) and responses ``Y`` (n, v)."""
    return cka(gram(X), gram(Y), estimator)


def cka_ceiling(
    values: Any,
    stimulus: Sequence[Any],
    repetition: Sequence[Any],
    stimulus_ids: Sequence[str] | None = None,
    *,
    n_splits: int = 10,
    seed: int = 1,
) -> float:
    """The debiased linear CKA a noise-free model reaches against trial-averaged responses.

    With trial averages ``Y = S + N`` (S: the stimulus-driven signal, N: noise independent
    of the stimuli and of any model), a model with features F has population CKA
    ``HSIC(F, S) / sqrt(HSIC(F, F) HSIC(Y, Y))`` (the noise does not covary with F), which
    by Cauchy-Schwarz is at most ``sqrt(HSIC(S, S) / HSIC(Y, Y))``, reached by F = S. Two
    averages of disjoint halves of the repetitions share S and have independent noise, so
    the debiased ``HSIC(Y_a, Y_b)`` is an unbiased estimate of ``HSIC(S, S)`` whatever the
    noise level (no Spearman-Brown step). The ceiling is
    ``sqrt(max(0, mean over splits HSIC_u(Y_a, Y_b)) / HSIC_u(Y, Y))``, with Y the average of
    all repetitions, an upper bound of the expected debiased CKA of any model. Where the
    responses are pure noise the shared HSIC is a fluctuation around 0 whose positive values
    the square root magnifies: about 0.1-0.25 for 100 stimuli (the same limit as any
    ceiling that is a square root near 0); read such a region from its raw score.

    Parameters
    ----------
    values : array
        ``(n_trials, n_neuroids)`` trial-level responses of one group of neuroids.
    stimulus, repetition : sequence
        Each trial's stimulus id and repetition number.
    stimulus_ids : sequence of str, optional
        The stimuli the score is computed over (default: every stimulus).
    n_splits, seed
        Random halvings of the repetition values (Brain-Score's internal-consistency
        splits: scikit-learn ``ShuffleSplit(train_size=0.5)``, seed 1).

    Returns
    -------
    float
        The ceiling; NaN when the responses have no variance.
    """
    from brainrank.core.splits import repetition_halves

    values = np.asarray(values, dtype=np.float64)
    stimulus = np.asarray(stimulus).astype(str)
    unique, inverse = np.unique(stimulus, return_inverse=True)
    sums = np.zeros((unique.size, values.shape[1]))
    np.add.at(sums, inverse, values)
    means = sums / np.bincount(inverse, minlength=unique.size)[:, None]
    wanted = unique if stimulus_ids is None else np.asarray(stimulus_ids).astype(str)
    position = {s: i for i, s in enumerate(unique)}
    missing = [s for s in wanted if s not in position]
    if missing:
        raise InputError(f"{len(missing)} stimuli have no trials (e.g. {missing[:3]}).")
    full = hsic(*(2 * [gram(means[[position[s] for s in wanted]])]))
    if not full > 0:
        return float("nan")
    keep = set(wanted.tolist())
    shared = []
    for ids, a, b in repetition_halves(values, stimulus, repetition, n_splits=n_splits, seed=seed):
        rows = np.array([i for i, s in enumerate(ids) if s in keep])
        if rows.size >= 4:
            shared.append(hsic(gram(a[rows]), gram(b[rows])))
    if not shared:
        raise InputError("no split of the repetitions leaves 4 stimuli with trials in both halves.")
    return float(np.sqrt(max(0.0, float(np.mean(shared))) / full))
