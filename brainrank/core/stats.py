"""Statistics: reliability and ceilings, bootstrap, permutation tests, FDR, effect sizes.

Everything is vectorised over neuroids (voxels, neurons) and seeded: the same seed gives
the same numbers. Test statistics are computed here; p-values use scipy's distributions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainrank.core.blas import one_blas_thread
from brainrank.core.errors import InputError


def _sps() -> Any:
    """scipy.stats, imported on first use (it costs about half a second of start-up, and
    listing the plugins imports this module)."""
    import scipy.stats

    return scipy.stats


# --------------------------------------------------------------------------- correlation


def pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns of ``a`` and ``b`` (n, v); NaN where a column is
    constant."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"shapes {a.shape} and {b.shape} differ.")
    ac = a - a.mean(axis=0)
    bc = b - b.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ac * bc).sum(axis=0) / np.sqrt((ac * ac).sum(axis=0) * (bc * bc).sum(axis=0))


def pearson_p_greater(r: Any, n: int) -> np.ndarray:
    """One-sided p-value of Pearson correlations ``r`` over ``n`` pairs (H1: r > 0).

    Under the null of no correlation between two independent Gaussian samples,
    ``t = r * sqrt((n - 2) / (1 - r^2))`` follows Student's t with ``n - 2`` degrees of
    freedom and ``p = P(T >= t)``; r = 1 gives 0, r = -1 gives 1, NaN stays NaN.
    Oracle: ``scipy.stats.pearsonr(..., alternative="greater")`` (the exact null
    distribution of r, a beta distribution on [-1, 1]).
    """
    if int(n) != n or n < 3:
        raise InputError(f"a p-value of Pearson r needs at least 3 pairs, got n = {n}.")
    r = np.asarray(r, dtype=np.float64)
    finite = np.isfinite(r)
    if np.any(np.abs(r[finite]) > 1 + 1e-6):
        raise InputError("Pearson r must lie in [-1, 1] to have a p-value.")
    clipped = np.clip(r, -1.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = clipped * np.sqrt((n - 2) / (1.0 - clipped**2))
    p = _sps().t.sf(t, int(n) - 2)
    return np.where(finite, p, np.nan)


# --------------------------------------------------------------------------- reliability


def spearman_brown(r: Any, factor: float = 2.0) -> Any:
    """Reliability of data ``factor`` times as long: ``factor r / (1 + (factor - 1) r)``."""
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return factor * r / (1 + (factor - 1) * r)


def split_half_reliability(
    trials: np.ndarray,
    *,
    n_splits: int = 10,
    seed: int = 0,
    correct: bool = True,
) -> np.ndarray:
    """Split-half reliability of every neuroid.

    ``trials``: (n_repetitions, n_stimuli, n_neuroids). For each of ``n_splits`` random
    splits of the repetitions into two halves (seeded), the two half-averages are correlated
    over stimuli per neuroid; the mean r over splits is returned, Spearman-Brown corrected
    to the full number of repetitions (``correct=True``: ``2 r / (1 + r)``).

    A split drawn more than once (with 2 repetitions every split is the same one, with 3
    there are 3) is correlated only once; its r is reused wherever it was drawn.
    """
    t = np.asarray(trials, dtype=np.float64)
    if t.ndim != 3:
        raise InputError(f"trials must be (repetitions, stimuli, neuroids); got {t.shape}.")
    reps = t.shape[0]
    if reps < 2:
        raise InputError("split-half reliability needs at least 2 repetitions.")
    if not np.all(np.isfinite(t)):
        raise InputError("trials contain NaN or infinite values.")
    rng = np.random.default_rng(seed)
    # the split as an unordered pair of sorted halves: Pearson r is symmetric in its two
    # arguments, and the order within a half of up to 2 repetitions (up to 4 in all) does
    # not change its mean, so reusing r is exact there (and within rounding beyond)
    splits = []
    for _ in range(n_splits):
        order = rng.permutation(reps)
        halves = sorted(
            tuple(sorted(int(i) for i in h)) for h in (order[: reps // 2], order[reps // 2 :])
        )
        splits.append(tuple(halves))
    computed: dict[tuple, np.ndarray] = {}
    total = np.zeros(t.shape[2])
    for split in splits:
        if split not in computed:
            half_a, half_b = (list(half) for half in split)
            computed[split] = pearson_columns(t[half_a].mean(axis=0), t[half_b].mean(axis=0))
        total += computed[split]
    r = total / n_splits
    return spearman_brown(r) if correct else r


def internal_consistency(
    values: Any,
    stimulus: Sequence[Any],
    repetition: Sequence[Any],
    *,
    n_splits: int = 10,
    seed: int = 1,
) -> np.ndarray:
    """Brain-Score's internal consistency of every neuroid, per split of the repetitions.

    For each of ``n_splits`` random halvings of the unique ``repetition`` values
    (:func:`brainrank.core.splits.repetition_halves`: scikit-learn's ``ShuffleSplit`` with
    ``train_size=0.5`` and ``seed``, Brain-Score's ``InternalConsistency`` defaults), each
    half is averaged per stimulus, the two halves are correlated over stimuli per neuroid
    (Pearson r) and Spearman-Brown corrected to the full data (``2 r / (1 + r)``).

    Parameters
    ----------
    values : array
        ``(n_trials, n_neuroids)`` trial-level responses.
    stimulus, repetition : sequence
        Each trial's stimulus id and repetition number.

    Returns
    -------
    ndarray
        ``(n_splits, n_neuroids)``. Brain-Score's ceiling of a region is the mean over splits
        of the median over its neuroids (:func:`internal_consistency_ceiling`).
    """
    from brainrank.core.splits import repetition_halves

    out = [
        spearman_brown(pearson_columns(a, b))
        for _, a, b in repetition_halves(values, stimulus, repetition, n_splits=n_splits, seed=seed)
    ]
    return np.asarray(out)


def internal_consistency_ceiling(per_split: np.ndarray, index: Any = None) -> float:
    """Brain-Score's ceiling of a group of neuroids from :func:`internal_consistency`: the
    mean over splits of the median over the group's neuroids (``index``: their columns)."""
    r = np.asarray(per_split, dtype=np.float64)
    if index is not None:
        r = r[:, index]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a split whose values are all NaN
        return float(np.mean(np.nanmedian(r, axis=1)))


def error_consistency(correct_a: Any, correct_b: Any) -> float:
    """Error consistency of two observers on the same stimuli (Geirhos et al. 2020, NeurIPS,
    "Beyond accuracy"): Cohen's kappa of their correct/incorrect patterns,
    ``(c_obs - c_exp) / (1 - c_exp)``, with ``c_obs`` the fraction of stimuli both get right
    or both get wrong and ``c_exp = p_a p_b + (1 - p_a)(1 - p_b)`` what two independent
    observers with their accuracies ``p_a``, ``p_b`` would share.

    ``correct_a``, ``correct_b``: per stimulus, 1 (correct) or 0, or a fraction in [0, 1]
    (the share of correct trials of an observer who saw the stimulus several times; the
    agreement is then the probability that a trial of each agrees). Observers that are
    independent have kappa 0 in expectation; NaN when ``c_exp`` is 1 (an observer always
    right or always wrong: no errors to be consistent about)."""
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise InputError(
            f"correct_a and correct_b must be equal-length vectors; got {a.shape}, {b.shape}."
        )
    if (a < 0).any() or (a > 1).any() or (b < 0).any() or (b > 1).any():
        raise InputError("correctness values must lie in [0, 1].")
    p_a, p_b = a.mean(), b.mean()
    observed = float(np.mean(a * b + (1 - a) * (1 - b)))
    expected = float(p_a * p_b + (1 - p_a) * (1 - p_b))
    if expected >= 1.0:
        return float("nan")
    return (observed - expected) / (1.0 - expected)


def trials_array(responses: Any) -> tuple[np.ndarray, list[str]]:
    """(repetitions, stimuli, neuroids) from a trial-level responses DataArray, with the
    stimulus ids; every stimulus needs the same number of repetitions."""
    ids = np.asarray(responses["stimulus_id"].values).astype(str)
    unique, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    if counts.min() != counts.max():
        short = unique[counts < counts.max()]
        raise InputError(
            f"{short.size} stimuli have fewer repetitions than the others "
            f"({counts.min()} instead of {counts.max()}, e.g. {short[:3].tolist()}); "
            "reliability needs the same number for every stimulus."
        )
    values = np.asarray(responses.values, dtype=np.float64)
    out = np.empty((counts.max(), unique.size, values.shape[1]))
    seen = np.zeros(unique.size, dtype=int)
    for row, s in enumerate(inverse):
        out[seen[s], s] = values[row]
        seen[s] += 1
    return out, unique.tolist()


def rdm_ceiling(
    trials: np.ndarray,
    *,
    n_boot: int = 30,
    n_levels: int = 3,
    seed: int = 0,
    distance: str = "correlation",
    _fast: bool = False,
) -> float:
    """Noise ceiling of an RSA score (Pearson r between a model RDM and the RDM of the
    trial-averaged patterns): the expected correlation between the measured RDM and its
    noise-free expectation, sqrt(var(E[D]) / var(D)) over RDM entries, i.e. the square root
    of the RDM's reliability in the sense of classical test theory. No model RDM can
    exceed it in expectation (its best is E[D] itself).

    ``trials``: (repetitions, stimuli, neuroids), at least 2 repetitions.

    Why not split halves with Spearman-Brown: the noise of correlation distances is not
    additive (it attenuates the correlations of stimuli whose patterns carry little
    energy), so half-data RDMs are distorted differently from the full-data one and their
    agreement does not extrapolate with Spearman-Brown (measured on ``simulated``: -0.04
    early and -0.07 late against this quantity).

    Method (simulation-extrapolation of the error variance, Cook & Stefanski 1994): the
    residual patterns (trial minus its stimulus mean, scaled by sqrt(R / (R - 1))) are
    resampled to draw new R-trial means around a centre, and the variance of the RDM
    entries over ``n_boot`` draws estimates the error variance of the measured RDM. Around
    the measured mean the centre itself is noisy (level 1); adding 1 and 2 further noise
    draws to it gives levels 2 and 3, and the quadratic through the three error variances,
    evaluated at level 0 (a noise-free centre), is the estimate (common random numbers
    across levels). The ceiling is ``sqrt(1 - error variance / var(measured RDM))``.
    Noise is assumed the same for every stimulus (its covariance across neuroids is kept
    by resampling whole residual patterns). Calibrated within 0.02 of the Monte Carlo truth
    on data with known signals (``tests/calibration``); slightly high (+0.01 to +0.02) where
    stimuli's pattern energies differ a lot. ``n_levels`` 2 / 3 / 4: linear / quadratic
    (default) / cubic extrapolation (less bias, more variance as the degree rises).
    Cost: ``n_levels * n_boot`` RDMs of the group.
    """
    from brainrank.core.rsa import rdm, upper_triangle

    t = np.asarray(trials, dtype=np.float64)
    if t.ndim != 3:
        raise InputError(f"trials must be (repetitions, stimuli, neuroids); got {t.shape}.")
    reps, n, _ = t.shape
    if reps < 2:
        raise InputError("an RDM ceiling needs at least 2 repetitions of every stimulus.")
    if n_levels not in (2, 3, 4):
        raise InputError("n_levels must be 2, 3 or 4 (linear, quadratic, cubic extrapolation).")
    mean = t.mean(axis=0)
    residuals = (t - mean).reshape(reps * n, -1) * np.sqrt(reps / (reps - 1))
    rng = np.random.default_rng(seed)

    def vector(patterns: np.ndarray) -> np.ndarray:
        return upper_triangle(rdm(patterns, distance, dtype="float64"))

    if _fast and distance == "correlation":  # the interval's many small RDMs (numpy, float64)
        rows, cols = np.triu_indices(n, k=1)

        def vector(patterns: np.ndarray) -> np.ndarray:
            centred = patterns - patterns.mean(axis=1, keepdims=True)
            norms = np.sqrt((centred * centred).sum(axis=1))
            with np.errstate(invalid="ignore", divide="ignore"):
                unit = centred / norms[:, None]
            return 1.0 - (unit @ unit.T)[rows, cols]

    measured = vector(mean)
    total = measured.var()
    if not np.isfinite(total) or total <= 0:
        raise InputError("the measured RDM is constant or undefined; no ceiling.")

    def error_variance(pool: np.ndarray) -> float:
        def noise() -> np.ndarray:
            return pool[rng.integers(0, pool.shape[0], size=(reps, n))].mean(axis=0)

        centres = [mean]
        for _ in range(n_levels - 1):
            centres.append(centres[-1] + noise())
        draws = np.empty((n_levels, n_boot, measured.size))
        for b in range(n_boot):
            fresh = noise()
            for level, centre in enumerate(centres):
                draws[level, b] = vector(centre + fresh)
        v = draws.var(axis=1, ddof=1).mean(axis=1)
        # the polynomial through levels 1..L, evaluated at level 0 (no noise in the centre)
        coefficients = [(-1) ** k * math.comb(n_levels, k + 1) for k in range(n_levels)]
        return float(np.dot(coefficients, v))

    error = error_variance(residuals)
    return float(np.sqrt(max(0.0, 1.0 - error / total)))


def mean_sqrt_reliability(
    trials: np.ndarray, *, grid_size: int = 200, n_iterations: int = 500
) -> float:
    """The encoding ceiling of a group of neuroids: the mean over neuroids of
    sqrt(reliability of the trial average), the Pearson r a perfect model reaches on
    average, estimated without the bias of averaging per-neuroid square roots.

    ``trials``: (repetitions, stimuli, neuroids), at least 2 repetitions.

    Averaging sqrt(max(estimated reliability, 0)) is biased wherever reliabilities are near 0
    (a pure-noise neuroid's estimate is as often above 0 as below, and the clipped square
    root of the positive ones is large: +0.14 per neuroid at n = 200), and no per-neuroid
    estimator of sqrt(reliability) is unbiased there. Instead, the distribution of the
    reliabilities over the group is estimated (nonparametric maximum likelihood on a grid,
    by EM; Laird 1978) from each neuroid's one-way ANOVA F statistic, whose distribution is
    exact for Gaussian noise: with reliability rho of the R-trial mean,
    ``F (1 - rho) ~ F(n - 1, n (R - 1))``. The ceiling is the mean of sqrt(rho) under that
    distribution. Calibrated against the true mean sqrt(reliability) in
    ``tests/calibration``.
    """
    like, rho, n_kept, n_total = _reliability_likelihood(trials, grid_size)
    weights = np.full(grid_size, 1.0 / grid_size)
    # EM: the posterior of neuroid i is like[i] * weights / (like[i] @ weights) and the new
    # weights its mean over neuroids, i.e. weights * (like.T @ (1 / (like @ weights))) / v,
    # two matrix-vector products without forming the (v, k) posterior
    # (one BLAS thread: these small products ran 5x slower on two shared cores with two)
    with one_blas_thread():
        for _ in range(n_iterations):
            weights = weights * (like.T @ (1.0 / (like @ weights))) / n_kept
    value = float(np.dot(weights, np.sqrt(rho)))
    # constant neuroids (no trial-to-trial variation, no signal) count as reliability 0
    return value * n_kept / n_total


def _reliability_likelihood(
    trials: np.ndarray, grid_size: int
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The likelihood of each non-constant neuroid's F statistic on the reliability grid
    (rows scaled to a maximum of 1), the grid, and the numbers of non-constant and of all
    neuroids (see :func:`mean_sqrt_reliability`)."""
    t = np.asarray(trials, dtype=np.float64)
    if t.ndim != 3:
        raise InputError(f"trials must be (repetitions, stimuli, neuroids); got {t.shape}.")
    reps, n, _ = t.shape
    if reps < 2 or n < 3:
        raise InputError("the encoding ceiling needs at least 2 repetitions of 3 stimuli.")
    means = t.mean(axis=0)
    between = reps * means.var(axis=0, ddof=1)  # mean square between stimuli
    within = ((t - means) ** 2).sum(axis=(0, 1)) / (n * (reps - 1))
    keep = within > 0
    if not keep.any():
        raise InputError("every neuroid is constant across trials; no ceiling.")
    F = between[keep] / within[keep]
    df1, df2 = n - 1, n * (reps - 1)
    rho = np.linspace(0.0, 0.999, grid_size)
    scale = 1.0 - rho
    # likelihood of each neuroid's F under each grid value (v, k), in logs for stability
    log_like = _sps().f.logpdf(F[:, None] * scale[None, :], df1, df2) + np.log(scale)[None]
    log_like -= log_like.max(axis=1, keepdims=True)
    return np.exp(log_like), rho, int(keep.sum()), int(keep.size)


def mean_sqrt_reliability_interval(
    trials: np.ndarray,
    *,
    ci: float = 0.95,
    n_boot: int = 200,
    seed: int = 0,
    grid_size: int = 200,
    n_iterations: int = 500,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of :func:`mean_sqrt_reliability` over the group's
    neuroids: the group is resampled with replacement ``n_boot`` times and the estimator
    run on each resample (the EM of all resamples at once, each started from the full
    group's solution). It covers the sampling of neuroids and, through each neuroid's F
    statistic, the trial noise of their reliabilities; it is the interval the ranking's
    ceiling floor is checked against (a group of pure-noise neuroids has an estimate of
    about +0.05 and an upper bound below 0.1; see docs/validation.md)."""
    if not 0 < ci < 1:
        raise InputError(f"ci must be in (0, 1), got {ci}.")
    like, rho, n_kept, n_total = _reliability_likelihood(trials, grid_size)
    weights = np.full(grid_size, 1.0 / grid_size)
    with one_blas_thread():
        for _ in range(n_iterations):
            weights = weights * (like.T @ (1.0 / (like @ weights))) / n_kept
    rng = np.random.default_rng(seed)
    # neuroids drawn from all n_total; the constant ones (index >= n_kept here) count as 0
    draws = rng.integers(0, n_total, size=(n_boot, n_total))
    counts = np.stack([np.bincount(d, minlength=n_total)[:n_kept] for d in draws], axis=1)
    kept = counts.sum(axis=0).astype(np.float64)  # non-constant neuroids per resample
    usable = kept > 0
    counts, kept = counts[:, usable], kept[usable]
    w = np.repeat(weights[:, None], counts.shape[1], axis=1)
    with one_blas_thread():
        for _ in range(n_iterations):
            w = w * (like.T @ (counts / (like @ w))) / kept
    values = np.zeros(n_boot)
    values[usable] = (np.sqrt(rho) @ w) * kept / n_total
    estimate = float(np.dot(weights, np.sqrt(rho))) * n_kept / n_total
    alpha = (1 - ci) / 2
    # the interval holds the estimate (at the boundary 0 the resamples can all fall below it)
    low = min(float(np.quantile(values, alpha)), estimate)
    return low, max(float(np.quantile(values, 1 - alpha)), estimate)


def rdm_ceiling_interval(
    trials: np.ndarray,
    *,
    ci: float = 0.95,
    n_boot: int = 30,
    inner_boot: int = 10,
    seed: int = 0,
    distance: str = "correlation",
) -> tuple[float, float]:
    """Percentile-bootstrap interval of :func:`rdm_ceiling` over the group's neuroids:
    ``n_boot`` resamples of the neuroids (with replacement), each ceiling estimated with
    ``inner_boot`` draws per noise level (fewer than the point estimate's 30: the interval
    then also carries that Monte Carlo error, which widens it a little), the correlation
    distances computed in float64 numpy (the same values as :func:`brainrank.core.rsa.rdm`
    to rounding). A resample repeats some neuroids, which weights them twice in the
    correlation distances, adds noise to its RDMs and lowers its ceiling (by about 0.09 on
    ``simulated``'s early region, whose percentile interval then missed the estimate), so
    the percentile interval is shifted by the estimate minus the resamples' median (clipped
    to [0, 1]): its width is the bootstrap's, its centre the estimate's. Cost: ``n_boot * 3
    * inner_boot`` RDMs of the group and one ceiling."""
    if not 0 < ci < 1:
        raise InputError(f"ci must be in (0, 1), got {ci}.")
    t = np.asarray(trials, dtype=np.float64)
    if t.ndim != 3:
        raise InputError(f"trials must be (repetitions, stimuli, neuroids); got {t.shape}.")
    rng = np.random.default_rng(seed)
    values = []
    for b in range(n_boot):
        index = rng.integers(0, t.shape[2], size=t.shape[2])
        try:
            value = rdm_ceiling(
                t[:, :, index], n_boot=inner_boot, seed=seed + 1 + b, distance=distance, _fast=True
            )
            values.append(value)
        except InputError:  # a resample of constant patterns: its ceiling is 0
            values.append(0.0)
    try:
        estimate = rdm_ceiling(t, seed=seed, distance=distance)
    except InputError:
        estimate = 0.0
    shift = estimate - float(np.median(values))
    alpha = (1 - ci) / 2
    low = float(np.quantile(values, alpha)) + shift
    high = float(np.quantile(values, 1 - alpha)) + shift
    return float(np.clip(low, 0.0, 1.0)), float(np.clip(high, 0.0, 1.0))


def mean_interval(
    values: Any, *, ci: float = 0.95, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval (:func:`bootstrap_ci`) of the mean of ``values`` (NaN
    left out) over its entries: the interval of a ceiling that is a mean of per-neuroid
    ceilings; NaN with fewer than 2 finite values."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("nan"), float("nan")
    low, high = bootstrap_ci(x, np.mean, n_boot=n_boot, ci=ci, seed=seed)
    return float(low), float(high)


def ncsnr_noise_ceiling(ncsnr: Any, n_trials: int = 3) -> np.ndarray:
    """NSD's noise ceiling (fraction of variance) of the mean of ``n_trials`` trials:
    ``ncsnr^2 / (ncsnr^2 + 1 / n)``."""
    s2 = np.asarray(ncsnr, dtype=np.float64) ** 2
    return s2 / (s2 + 1.0 / n_trials)


# --------------------------------------------------------------------------- bootstrap


def bootstrap_ci(
    values: Any,
    statistic: Callable[..., np.ndarray] = np.mean,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    axis: int = 0,
    strata: Sequence[Any] | None = None,
    omit_nan: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of ``statistic`` over the units along ``axis``: brainrank's one
    bootstrap (the rankings, the aggregations of ``brainrank query``, the analyses and the
    rank agreement of two metrics all draw through it).

    The units are resampled with replacement ``n_boot`` times (one
    ``default_rng(seed).integers(0, n, size=(n_boot, n))`` draw); with ``strata`` (one label
    per unit) each stratum's units are resampled within that stratum, stratum by stratum in
    sorted order, so every stratum keeps its number of units in every resample.
    ``statistic(resamples, axis=1)`` gets the resamples stacked, ``(draws, units, ...)``, and
    returns one value (or array) per draw: numpy reductions do (``np.mean``,
    ``np.nanmean``, ``np.median``). ``omit_nan`` leaves draws whose statistic is NaN out of
    the percentiles. Returns ``(low, high)`` with the statistic's shape.
    """
    x = np.moveaxis(np.asarray(values, dtype=np.float64), axis, 0)
    n = x.shape[0]
    if n < 2:
        raise InputError("a bootstrap needs at least 2 values.")
    if not 0 < ci < 1:
        raise InputError(f"ci must be in (0, 1), got {ci}.")
    rng = np.random.default_rng(seed)
    if strata is None:
        index = rng.integers(0, n, size=(n_boot, n))
    else:
        labels = np.asarray(strata)
        if labels.shape != (n,):
            raise InputError(f"strata must give one label per unit ({n}), got {labels.shape}.")
        parts = []
        for label in sorted(set(labels.tolist())):
            members = np.flatnonzero(labels == label)
            parts.append(members[rng.integers(0, members.size, size=(n_boot, members.size))])
        index = np.concatenate(parts, axis=1)
    per_draw = max(1, x[0].size * n)
    block = max(1, 2**24 // per_draw)  # resamples held at once: at most 128 MB of float64
    stats = np.concatenate(
        [
            np.asarray(statistic(x[index[start : start + block]], axis=1))
            for start in range(0, n_boot, block)
        ]
    )
    alpha = (1 - ci) / 2
    quantile = np.nanquantile if omit_nan else np.quantile
    return quantile(stats, alpha, axis=0), quantile(stats, 1 - alpha, axis=0)


# --------------------------------------------------------------------------- permutation


def permutation_test(
    predictions: np.ndarray,
    targets: np.ndarray,
    *,
    n_permutations: int = 5000,
    seed: int = 0,
    max_elements: int = 2**26,
    alternative: str = "greater",
) -> tuple[np.ndarray, np.ndarray]:
    """Permutation test of the Pearson r between matching columns (no refits).

    The stimuli of the targets are shuffled (the same permutation for every column, which
    keeps the dependence between voxels) and r recomputed from the standardised columns:
    one gather and one reduction per permutation, as many permutations at a time as fit in
    ``max_elements`` float32 numbers (256 MiB by default), so 5000 permutations of 10,000
    voxels never need more than that at once. Returns
    ``(r, p)`` with ``p = (1 + #{r_perm >= r}) / (1 + n_permutations)`` (``"greater"``) or the
    two-sided version on ``|r|``; r and p are NaN for a column whose r is undefined (constant
    predictions or responses).

    The test is exact only when the predictions did not see the responses they are tested
    against (held-out predictions). Leave-one-out predictions of a refitted model depend on
    the other stimuli's responses, and permuting them without refitting is
    anti-conservative (7.6-16.4% of null voxels below p < .05 was measured).
    """
    if alternative not in ("greater", "two-sided"):
        raise InputError("alternative must be 'greater' or 'two-sided'.")
    P = np.asarray(predictions, dtype=np.float64)
    Y = np.asarray(targets, dtype=np.float64)
    if P.shape != Y.shape or P.ndim != 2:
        raise InputError(f"predictions {P.shape} and targets {Y.shape} must be the same (n, v).")
    n = P.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        zp = (P - P.mean(0)) / P.std(0)
        zy = (Y - Y.mean(0)) / Y.std(0)
    undefined = ~(np.isfinite(zp).all(0) & np.isfinite(zy).all(0))
    zp[:, undefined] = 0.0
    zy[:, undefined] = 0.0
    observed = (zp * zy).mean(0)
    rng = np.random.default_rng(seed)
    exceed = np.zeros(P.shape[1])
    zp32, zy32 = zp.astype(np.float32), zy.astype(np.float32)
    reference = np.abs(observed) if alternative == "two-sided" else observed
    batch = max(1, max_elements // max(1, P.size))
    for start in range(0, n_permutations, batch):
        b = min(batch, n_permutations - start)
        perms = np.stack([rng.permutation(n) for _ in range(b)])
        null = np.einsum("bnv,nv->bv", zy32[perms], zp32, dtype=np.float64) / n
        if alternative == "two-sided":
            null = np.abs(null)
        exceed += (null >= reference - 1e-12).sum(axis=0)
    p = (1 + exceed) / (1 + n_permutations)
    observed[undefined] = np.nan
    p[undefined] = np.nan
    return observed, p


# --------------------------------------------------------------------------- multiple tests


def _family(p_values: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tests of a multiple-testing family: ``(p, positions of the finite p-values in
    p.ravel(), those p-values, a flat NaN array for the adjusted values)``. NaN p-values
    (tests that could not be done) are left out of the family."""
    p = np.asarray(p_values, dtype=np.float64)
    finite = np.isfinite(p)
    if np.any(np.isinf(p)) or np.any((p[finite] < 0) | (p[finite] > 1)):
        raise InputError("p-values must be numbers in [0, 1] (or NaN for tests not done).")
    flat = p.ravel()
    keep = np.flatnonzero(np.isfinite(flat))
    return p, keep, flat[keep], np.full(flat.size, np.nan)


def fdr_bh(p_values: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg adjusted p-values and the rejections at ``alpha``.

    NaN p-values (tests that could not be done) are left out of the family: their adjusted
    value is NaN and they are never rejected. Oracle: ``_sps().false_discovery_control``.
    """
    p, keep, values, adjusted = _family(p_values)
    m = values.size
    if m:
        order = np.argsort(values)
        ranked = values[order] * m / np.arange(1, m + 1)
        adjusted_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
        inner = np.empty(m)
        inner[order] = np.minimum(adjusted_sorted, 1.0)
        adjusted[keep] = inner
    adjusted = adjusted.reshape(p.shape)
    with np.errstate(invalid="ignore"):
        return adjusted, np.nan_to_num(adjusted, nan=np.inf) <= alpha


def holm(p_values: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm-Bonferroni adjusted p-values (family-wise error) and the rejections at ``alpha``.

    Adjusted ``p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))`` over the sorted p-values
    (Holm 1979); NaN p-values are left out of the family. Tested against the step-down
    definition written out in the tests.
    """
    p, keep, values, adjusted = _family(p_values)
    m = values.size
    if m:
        order = np.argsort(values)
        scaled = np.minimum(1.0, values[order] * (m - np.arange(m)))
        inner = np.empty(m)
        inner[order] = np.maximum.accumulate(scaled)
        adjusted[keep] = inner
    adjusted = adjusted.reshape(p.shape)
    with np.errstate(invalid="ignore"):
        return adjusted, np.nan_to_num(adjusted, nan=np.inf) <= alpha


# --------------------------------------------------------------------------- group tests


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float
    df: float | None = None


def paired_ttest(a: Any, b: Any) -> TestResult:
    """Two-sided paired t-test of ``a - b`` (pairs with a NaN are dropped)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError("a paired test needs two samples of the same length.")
    d = a - b
    d = d[np.isfinite(d)]
    n = d.size
    if n < 2:
        raise InputError("a paired t-test needs at least 2 complete pairs.")
    sd = d.std(ddof=1)
    t = (
        d.mean() / (sd / np.sqrt(n))
        if sd > 0
        else np.copysign(np.inf, d.mean())
        if d.mean()
        else np.nan
    )
    p = 2 * _sps().t.sf(abs(t), n - 1) if np.isfinite(t) else (0.0 if np.isinf(t) else np.nan)
    return TestResult(float(t), float(p), float(n - 1))


def two_sample_ttest(a: Any, b: Any, equal_var: bool = False) -> TestResult:
    """Two-sided t test of two independent samples (NaN dropped): Welch's, with the
    Welch-Satterthwaite degrees of freedom (``equal_var=False``), or Student's with the pooled
    variance. Oracle: ``scipy.stats.ttest_ind``."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    nx, ny = x.size, y.size
    if nx < 2 or ny < 2:
        raise InputError("a two-sample t test needs at least 2 values in each sample.")
    vx, vy = x.var(ddof=1), y.var(ddof=1)
    if equal_var:
        df = nx + ny - 2.0
        se = np.sqrt(((nx - 1) * vx + (ny - 1) * vy) / df * (1 / nx + 1 / ny))
    else:
        se = np.sqrt(vx / nx + vy / ny)
        denominator = (vx / nx) ** 2 / (nx - 1) + (vy / ny) ** 2 / (ny - 1)
        df = (vx / nx + vy / ny) ** 2 / denominator if denominator > 0 else nx + ny - 2.0
    diff = x.mean() - y.mean()
    if se == 0:
        t = np.copysign(np.inf, diff) if diff else np.nan
        return TestResult(float(t), 0.0 if diff else float("nan"), float(df))
    t = diff / se
    return TestResult(float(t), float(2 * _sps().t.sf(abs(t), df)), float(df))


def cohens_d_paired(a: Any, b: Any) -> float:
    """Cohen's d for paired samples (d_z): mean difference over the SD of the differences."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    d = d[np.isfinite(d)]
    return float(d.mean() / d.std(ddof=1))


def cohens_d(a: Any, b: Any) -> float:
    """Cohen's d for independent samples with the pooled standard deviation."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    na, nb = a.size, b.size
    pooled = np.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    return float((a.mean() - b.mean()) / pooled)


def hedges_g(a: Any, b: Any, paired: bool = False) -> float:
    """Hedges' g: Cohen's d times the small-sample correction ``J = 1 - 3 / (4 df - 1)``
    (Hedges 1981; df = n - 1 for paired d_z, na + nb - 2 for independent samples)."""
    if paired:
        d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
        df = int(np.isfinite(d).sum()) - 1
        value = cohens_d_paired(a, b)
    else:
        x = np.asarray(a, dtype=np.float64)
        y = np.asarray(b, dtype=np.float64)
        df = int(np.isfinite(x).sum() + np.isfinite(y).sum()) - 2
        value = cohens_d(a, b)
    if df < 1:
        raise InputError("Hedges' g needs at least 2 values (paired) or 3 (independent).")
    return float(value * (1 - 3 / (4 * df - 1)))


#: Fewest units (pairs, regions, models...) for which a p-value, CI or effect size is shown.
MIN_UNITS = 5


def too_few(n: int, what: str = "units", minimum: int = MIN_UNITS) -> str | None:
    """The reason not to report a test or CI on ``n`` units, or None when there are enough."""
    if n < minimum:
        return (
            f"only {n} {what} (fewer than {minimum}): a p-value, confidence interval or effect "
            "size from so few is not reported"
        )
    return None


def spearman_rank_agreement(a: Any, b: Any, *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95):
    """Spearman rho between two score vectors (e.g. two metrics' model scores) with a
    percentile bootstrap CI over items. Returns ``(rho, low, high)``."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 3:
        raise InputError("rank agreement needs at least 3 items with both scores.")

    def rho(a: np.ndarray, b: np.ndarray) -> float:
        rx, ry = _sps().rankdata(a), _sps().rankdata(b)
        return float(pearson_columns(rx[:, None], ry[:, None])[0])

    def per_draw(pairs: np.ndarray, axis: int) -> np.ndarray:  # (draws, items, 2)
        return np.array([rho(draw[:, 0], draw[:, 1]) for draw in pairs])

    low, high = bootstrap_ci(np.column_stack([x, y]), per_draw, n_boot=n_boot, ci=ci,
                             seed=seed, omit_nan=True)  # fmt: skip
    return rho(x, y), float(low), float(high)


def kruskal_wallis(groups: Sequence[Any]) -> TestResult:
    """Kruskal-Wallis H test across groups (ties corrected), p from chi-square(k - 1)."""
    samples = [np.asarray(g, dtype=np.float64) for g in groups]
    samples = [g[np.isfinite(g)] for g in samples]
    if len(samples) < 2 or any(g.size == 0 for g in samples):
        raise InputError("Kruskal-Wallis needs at least 2 non-empty groups.")
    values = np.concatenate(samples)
    n = values.size
    ranks = _sps().rankdata(values)
    h, start = 0.0, 0
    for g in samples:
        r = ranks[start : start + g.size]
        h += r.sum() ** 2 / g.size
        start += g.size
    h = 12.0 / (n * (n + 1)) * h - 3 * (n + 1)
    _, counts = np.unique(values, return_counts=True)
    correction = 1 - (counts**3 - counts).sum() / (n**3 - n)
    h = h / correction if correction > 0 else np.nan
    df = len(samples) - 1
    return TestResult(float(h), float(_sps().chi2.sf(h, df)), float(df))


def epsilon_squared(h: float, n: int) -> float:
    """Effect size of a Kruskal-Wallis test: ``epsilon^2 = H / ((n^2 - 1) / (n + 1))``
    ``= H / (n - 1)`` (Tomczak & Tomczak 2014), n the total number of observations."""
    if n < 2:
        raise InputError("epsilon squared needs at least 2 observations.")
    return float(h / ((n**2 - 1) / (n + 1)))
