"""Noise-ceiling bounds of RDM comparisons across subjects (Nili et al. 2014), as rsatoolbox
computes them (``rsatoolbox.inference.boot_noise_ceiling``; its ``noise_ceiling`` on a
whole set of RDMs).

For the RDMs of m subjects (m >= 2) over the same stimuli and a comparison (Pearson r,
Spearman's rho, Kendall's tau-a):

- the **upper bound** is the mean over subjects of the comparison of each subject's RDM
  with the pooled RDM of *all* subjects (its own included): no model can do better on
  average, since the pooled RDM is the best estimate of the group's shared RDM and still
  overfits each subject;
- the **lower bound** is the mean over subjects of the comparison with the pooled RDM of
  the *other* subjects (leave one subject out): what a model that captures the shared RDM
  exactly, but nothing of the held-out subject's idiosyncrasies, reaches at least.

The pooled RDM is the one that maximises the comparison on average: the mean of z-scored
dissimilarity vectors for Pearson r (rsatoolbox's ``pool_rdm(method="corr")``), the mean of
ranks for Spearman and Kendall's tau-a (rsatoolbox warns that this is an approximation for
tau). :func:`rdm_noise_ceiling` returns the per-subject terms too: their means are the
bounds, so a score averaged over subjects is compared with the same average.
"""

from __future__ import annotations

import numpy as np

from brainrank.core.errors import InputError


def _vectors(rdms: np.ndarray) -> np.ndarray:
    from brainrank.core.rsa import upper_triangle

    return upper_triangle(np.asarray(rdms, dtype=np.float64))


def pool_rdms(vectors: np.ndarray, method: str = "pearson") -> np.ndarray:
    """The RDM (upper-triangle vector) that best represents a group under a comparison:
    the mean of standardised vectors for Pearson r, the mean of ranks for Spearman's rho and
    Kendall's tau-a (the usual choice of noise-ceiling estimates)."""
    import scipy.stats

    v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    if method == "pearson":
        centred = v - v.mean(axis=1, keepdims=True)
        scale = centred.std(axis=1, keepdims=True)
        if np.any(scale == 0):
            raise InputError("cannot pool a constant RDM (all dissimilarities equal).")
        return (centred / scale).mean(axis=0)
    if method in ("spearman", "kendall_tau_a"):
        return scipy.stats.rankdata(v, axis=1).mean(axis=0)
    raise InputError(f"unknown RDM comparison {method!r}; use pearson, spearman or kendall_tau_a.")


def subject_bounds(rdms: np.ndarray, method: str = "pearson") -> tuple[np.ndarray, np.ndarray]:
    """Per RDM (subject), its lower-bound term (the comparison with the pooled RDM of the
    others) and its upper-bound term (with the pooled RDM of all); ``rdms``: ``(m, n, n)``
    or ``(m, n_pairs)`` upper triangles, m >= 2, no NaN."""
    from brainrank.core.rsa import compare

    v = _vectors(rdms)
    m = v.shape[0]
    if m < 2:
        raise InputError("a noise ceiling over RDMs needs at least 2 RDMs.")
    if not np.all(np.isfinite(v)):
        raise InputError("a noise ceiling needs RDMs without NaN or infinite dissimilarities.")
    everyone = pool_rdms(v, method)
    lower = np.empty(m)
    upper = np.empty(m)
    for i in range(m):
        others = pool_rdms(np.delete(v, i, axis=0), method)
        lower[i] = compare(others, v[i], method)
        upper[i] = compare(everyone, v[i], method)
    return lower, upper


def rdm_noise_ceiling(rdms: np.ndarray, method: str = "pearson") -> tuple[float, float, np.ndarray]:
    """Noise ceiling of a group of RDMs (one per subject or session).

    Returns ``(lower, upper, per_rdm_lower)``: the lower bound is the mean over RDMs of the
    comparison of each RDM with the pooled RDM of the *others* (leave one out), the upper
    bound the mean comparison with the pooled RDM of *all* (Nili et al. 2014); equal to
    rsatoolbox's ``boot_noise_ceiling`` on the same RDMs.
    """
    lower, upper = subject_bounds(rdms, method)
    return float(lower.mean()), float(upper.mean()), lower
