"""Variance partitioning between feature spaces: how much of each target's explainable
variance is unique to one space and how much several share.

For m feature spaces S = {1..m} and every non-empty subset T of S, a joint encoding model
on the spaces of T (ridge on their concatenated features) is fitted on the training stimuli
and predicts the test stimuli; ``E(T)`` is the variance it explains there (the unit below).
The spaces' explained variance is then split into the regions of their Venn diagram, the
*atoms* ``a(U)``: the variance explained by exactly the spaces in U and by no other, which
is what every definition of unique and shared variance in the literature (Lescroart et al.
2015; de Heer et al. 2017; Net2Brain's ``VPA``; the himalaya tutorials) computes for two or
three spaces:

    E(T) = sum of a(U) over the U that meet T

inverted by inclusion-exclusion (Moebius inversion over the subsets). With
``F(T) = E(S) - E(S minus T)`` (the variance only the spaces of T explain),

    a(U) = sum over non-empty T within U of (-1)^(|U| - |T|) F(T)

so the *unique* variance of space i is ``a({i}) = E(S) - E(S minus {i})`` and for two spaces
the shared variance is ``a({1, 2}) = E({1}) + E({2}) - E({1, 2})``. The atoms sum to E(S).

**Unit: signed squared correlation on held-out stimuli.** ``E(T) = sign(r) r^2`` with r the
Pearson correlation between the joint model's test-set predictions and the measured test
responses. Why this and not the coefficient of determination ``1 - SSE / SST``:

- *0 means no signal, exactly.* The predictions never saw the test responses, so for a
  target without signal r is symmetric around 0 (exchangeable noise, any features) and so is
  ``sign(r) r^2``: every E(T), and every atom as a signed sum of them, has expectation 0 on
  pure noise. The test R^2 of a noise target is negative, by an amount that depends on the
  features and the penalty (the fit's variance and the training mean missing the test
  mean): its differences would not be 0 on noise, and no tolerance could be stated once for
  all features.
- *It does not depend on the ridge's shrinkage.* r^2 is the variance the best affine
  rescaling of the prediction explains; a penalised prediction is shrunk towards the mean,
  which lowers R^2 (and lowers it more for larger joint models) but leaves r^2 unchanged.
- *It is the stacking metric's unit squared* (its score is the test r).

The sign is kept so that averaging over neuroids stays unbiased (clipping negative values at
0, as some tools do, makes every noise neuroid count as a small positive share). Atoms of
single neuroids can be negative (estimation noise, or suppression between correlated
spaces); region means are their mean.

**Joint models.** Each space's features are z-scored with the training stimuli's means and
standard deviations (constant columns dropped) and divided by the square root of their
number of columns, so every space has the same total variance (trace) in the concatenation
and no space dominates a joint model by its width. A joint model of several spaces weights
them (each space's block multiplied by the square root of its weight, the weights on a grid
of the simplex that includes its corners, :func:`simplex_grid`), so that it can give a space
that adds nothing no weight: a banded ridge (one penalty per space, as himalaya's
``MultipleKernelRidgeCV``) searched on a grid. Per target, the weighting and the penalty are
chosen together by exact leave-one-out error on the training stimuli
(:class:`brainrank.core.ridge.RidgeCV`). Without the weighting (one penalty for the
concatenation), a space that carries nothing for a target still costs the joint model
variance: on ``simulated`` it gave the model that does not drive a region a unique variance
of -0.03 instead of 0. The test stimuli play no part in any choice, so the unit's null stays
0.

Cost: one fit per weighting of every subset: 7 fits for 2 spaces, 33 for 3, 114 for 4
(:func:`simplex_grid`'s resolution falls with the number of spaces); :data:`MAX_SPACES`
bounds m.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainrank.core.errors import InputError
from brainrank.core.ridge import DEFAULT_ALPHAS, RidgeCV, column_pearson

#: the most spaces partitioned at once: 2^m - 1 joint fits and 2^m - 1 atoms (63 for 6)
MAX_SPACES = 6

Subset = tuple[int, ...]


def subsets(m: int) -> list[Subset]:
    """Every non-empty subset of ``range(m)``, by size then lexicographically."""
    return [c for size in range(1, m + 1) for c in itertools.combinations(range(m), size)]


def signed_r2(predicted: np.ndarray, measured: np.ndarray, backend: Any = None) -> np.ndarray:
    """Per column, ``sign(r) r^2`` of the Pearson r between ``predicted`` and ``measured``
    (NaN where either is constant)."""
    r = column_pearson(predicted, measured, backend)
    return np.sign(r) * r * r


def atoms(explained: Mapping[Subset, np.ndarray], m: int) -> dict[Subset, np.ndarray]:
    """The Venn-diagram atoms ``a(U)`` of every non-empty ``U`` from the explained variance
    ``E(T)`` of every non-empty subset (see the module docstring).

    ``explained`` maps each subset (a sorted tuple of space indices) to an array of values
    per target; every subset of ``range(m)`` must be there.
    """
    wanted = subsets(m)
    missing = [t for t in wanted if t not in explained]
    if missing:
        raise InputError(f"explained variance is missing for the subsets {missing[:3]}.")
    full = tuple(range(m))
    total = np.asarray(explained[full], dtype=np.float64)

    def only(t: Subset) -> np.ndarray:  # F(T) = E(S) - E(S minus T)
        rest = tuple(i for i in full if i not in t)
        return total - (np.asarray(explained[rest], dtype=np.float64) if rest else 0.0)

    f = {t: only(t) for t in wanted}
    out = {}
    for u in wanted:
        value = np.zeros_like(total)
        for size in range(1, len(u) + 1):
            sign = -1.0 if (len(u) - size) % 2 else 1.0
            for t in itertools.combinations(u, size):
                value = value + sign * f[t]
        out[u] = value
    return out


def simplex_grid(m: int) -> list[tuple[float, ...]]:
    """Weightings of ``m`` spaces: the points of the simplex whose coordinates are multiples
    of ``1 / q`` (its corners included: one space alone), with ``q`` = 4 for up to 3 spaces,
    3 for 4, 2 beyond (5, 15, 20, 15 and 21 points for 2 to 6 spaces); ``[(1.0,)]`` for
    one."""
    if m == 1:
        return [(1.0,)]
    q = 4 if m <= 3 else 3 if m == 4 else 2
    out = []
    for cut in itertools.combinations(range(q + m - 1), m - 1):  # stars and bars
        parts, previous = [], -1
        for c in (*cut, q + m - 1):
            parts.append(c - previous - 1)
            previous = c
        out.append(tuple(p / q for p in parts))
    return out


def standardised_space(X: np.ndarray, train: np.ndarray) -> np.ndarray | None:
    """``X`` z-scored with the training rows' statistics, constant columns dropped, divided
    by the square root of its number of columns (total training variance 1 per row); ``None``
    when every column is constant on the training rows."""
    X = np.asarray(X, dtype=np.float64)
    mean = X[train].mean(axis=0)
    sd = X[train].std(axis=0)
    keep = sd > 0
    if not keep.any():
        return None
    Z = (X[:, keep] - mean[keep]) / sd[keep]
    return (Z / np.sqrt(keep.sum())).astype(np.float32)


@dataclass
class Partition:
    """Explained variance of every joint model and its atoms, per target.

    ``explained[T]`` and ``atoms[U]`` are ``(v,)`` arrays in the unit of the module
    docstring; ``r2[T]`` the test coefficient of determination of joint model T (for
    reference; not partitioned); ``alphas[T]`` the chosen penalties; ``weights[T]`` the
    chosen weighting of T's spaces."""

    m: int
    explained: dict[Subset, np.ndarray]
    atoms: dict[Subset, np.ndarray]
    r2: dict[Subset, np.ndarray]
    alphas: dict[Subset, np.ndarray]
    #: ``weights[T]`` (v, |T|): the weighting of T's spaces each target's joint model chose
    weights: dict[Subset, np.ndarray] = field(default_factory=dict)

    def unique(self, i: int) -> np.ndarray:
        return self.atoms[(i,)]

    @property
    def joint(self) -> np.ndarray:
        return self.explained[tuple(range(self.m))]

    @property
    def shared(self) -> np.ndarray:
        """Everything explained by more than one space: the joint model's explained variance
        minus the unique parts."""
        return self.joint - sum(self.unique(i) for i in range(self.m))


def partition_variance(
    spaces: Sequence[np.ndarray],
    targets: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    ridge_options: Mapping[str, Any] | None = None,
    backend: Any = None,
) -> Partition:
    """Variance partitioning of ``targets`` (n, v) between ``spaces`` (each (n, k_i)), fitted
    on the rows ``train`` and scored on the rows ``test`` (see the module docstring).

    ``ridge_options`` go to :class:`~brainrank.core.ridge.RidgeCV` (``backend``, ``device``);
    ``backend`` is the array backend of the Pearson reductions."""
    m = len(spaces)
    if not 1 <= m <= MAX_SPACES:
        raise InputError(
            f"variance partitioning takes 1 to {MAX_SPACES} feature spaces ({2**MAX_SPACES - 1} "
            f"joint models); got {m}."
        )
    Y = np.asarray(targets, dtype=np.float32)
    if Y.ndim != 2:
        raise InputError(f"targets must be (n_stimuli, n_targets); got shape {Y.shape}.")
    train = np.asarray(train, dtype=np.int64)
    test = np.asarray(test, dtype=np.int64)
    blocks = []
    for i, X in enumerate(spaces):
        if np.shape(X)[0] != Y.shape[0]:
            raise InputError(
                f"feature space {i} has {np.shape(X)[0]} rows; the targets have {Y.shape[0]}."
            )
        block = standardised_space(X, train)
        if block is None:
            raise InputError(
                f"feature space {i} is constant on the training stimuli; it explains nothing "
                "and cannot be partitioned."
            )
        blocks.append(block)
    explained, r2, chosen, weighting = {}, {}, {}, {}
    measured = Y[test].astype(np.float64)
    sst = ((measured - measured.mean(axis=0)) ** 2).sum(axis=0)
    v = Y.shape[1]
    for subset in subsets(m):
        grid = simplex_grid(len(subset))
        best = np.full(v, np.inf)
        predicted = np.zeros((test.size, v))
        alpha = np.full(v, np.nan)
        which = np.zeros((v, len(subset)))
        for weights in grid:
            kept = [(i, w) for i, w in zip(subset, weights, strict=True) if w > 0]
            X = np.hstack([blocks[i] * np.float32(np.sqrt(w)) for i, w in kept])
            ridge = RidgeCV(list(alphas), **dict(ridge_options or {}))
            fitted = ridge.fit(X[train], Y[train], return_predictions=False)
            loo = np.asarray(fitted.result_.cv_scores).min(axis=0)  # LOO MSE at its alpha
            better = loo < best
            if not better.any():
                continue
            best[better] = loo[better]
            predicted[:, better] = fitted.predict(X[test])[:, better]
            alpha[better] = np.asarray(fitted.result_.alphas)[better]
            which[better] = weights
        explained[subset] = signed_r2(predicted, measured, backend)
        with np.errstate(invalid="ignore", divide="ignore"):
            sse = ((measured - predicted) ** 2).sum(axis=0)
            r2[subset] = np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), np.nan)
        chosen[subset] = alpha
        weighting[subset] = which
    return Partition(m, explained, atoms(explained, m), r2, chosen, weighting)


def atom_label(subset: Subset, labels: Sequence[str]) -> str:
    """``a & b`` for the atom shared by exactly the spaces ``a`` and ``b``."""
    return " & ".join(labels[i] for i in subset)
