"""The features ``pls``, ``ridge-cv``, ``cka`` and ``error-consistency`` work on: a layer's
principal components, from its random projection (default) or from its exact Gram matrix.

- ``features="projection"`` (default): the layer's sparse random projection to the
  Johnson-Lindenstrauss dimension of the scored stimuli (eps 0.1, as ``srp-ridge``, so one
  streamed extraction serves them all; layers with fewer features unprojected), then its
  leading ``pca`` principal components.
- ``features="exact"``: the exact column-centred Gram matrix of the layer's full
  activations (:attr:`FeatureRequest.gram`, extracted in memory-budgeted passes like exact
  RDMs), whose eigendecomposition gives the layer's exact principal component scores.

Principal components are fitted on the scored stimuli (or on reference stimuli, for
Brain-Score's ``LayerPCA``). Kept whole (``pca`` at least the number of stimuli, or None)
they leave the centred Gram matrix unchanged, so PLS, ridge and linear CKA equal what the
untransformed features give; the reduction only makes them cheaper.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainrank.core.pls import pca_scores
from brainrank.plugin import FeatureRequest, InputError, LayerFeatures
from brainrank.plugins.metrics import _encoding as enc

FEATURES = ("projection", "exact")


def check(features: Any, pca: Any) -> None:
    if features not in FEATURES:
        raise InputError(f"features must be one of {FEATURES}, got {features!r}.")
    if pca is not None and (isinstance(pca, bool) or not isinstance(pca, int) or pca < 1):
        raise InputError(f"pca must be a positive number of components or null, got {pca!r}.")


def request(parameters: dict[str, Any], n_stimuli: int) -> FeatureRequest:
    """What to extract: the projection to the JL dimension of ``n_stimuli``, or Gram matrices."""
    if parameters["features"] == "exact":
        return FeatureRequest(gram=True)
    return FeatureRequest(projection_dims=frozenset({projection_dimension(parameters, n_stimuli)}))


def projection_dimension(parameters: dict[str, Any], n_stimuli: int) -> int:
    """The JL dimension of ``n_stimuli`` at ``parameters["eps"]`` (``srp-ridge``'s default)."""
    return enc.dimension({"n_components": "jl", "eps": parameters["eps"]}, n_stimuli)


def principal_features(
    layer: LayerFeatures,
    parameters: dict[str, Any],
    rows: np.ndarray,
    fit_rows: np.ndarray | None = None,
) -> np.ndarray | None:
    """The scores ``(len(rows), c)`` float64 of the stimuli ``rows`` (positions in the
    feature set) on the leading ``parameters["pca"]`` principal components (all when None)
    of the stimuli ``fit_rows`` (default: ``rows`` themselves); None for a layer that is
    constant on ``rows``."""
    pca = parameters["pca"]
    fit = rows if fit_rows is None else fit_rows
    if parameters["features"] == "exact":
        if layer.gram is None:
            raise InputError(
                f"layer {layer.name!r} has no Gram matrix; features='exact' needs features "
                "extracted with FeatureRequest(gram=True)."
            )
        return gram_scores(layer.gram, rows, fit, pca)
    k = projection_dimension(parameters, rows.size)
    X = layer.projections[k]
    if np.ptp(X[rows], axis=0).max() == 0:
        return None
    if fit_rows is None:
        return pca_scores(X[rows], None, pca) if pca is not None else X[rows].astype(np.float64)
    every = np.concatenate([rows, fit_rows])
    return pca_scores(X[every], np.arange(rows.size, every.size), pca)[: rows.size]


def gram_scores(
    gram: np.ndarray, rows: np.ndarray, fit_rows: np.ndarray, n_components: int | None
) -> np.ndarray | None:
    """Principal component scores from an exact Gram matrix (centred at any point): the
    stimuli ``rows`` on the leading components of the stimuli ``fit_rows``, which equal
    :func:`brainrank.core.pls.pca_scores` of the features themselves up to signs."""
    import scipy.linalg

    G = np.asarray(gram, dtype=np.float64)
    fit = np.asarray(fit_rows)
    m = fit.size
    block = G[np.ix_(fit, fit)]
    col = block.mean(axis=0)
    centred = block - col[:, None] - col[None, :] + block.mean()
    c = m if n_components is None else min(int(n_components), m)
    subset = None if c >= m else [m - c, m - 1]
    values, vectors = scipy.linalg.eigh((centred + centred.T) / 2, subset_by_index=subset)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    if values.size == 0 or values[0] <= 0:
        return None
    keep = values > 1e-10 * values[0]
    values, vectors = values[keep], vectors[:, keep]
    same = np.array_equal(np.asarray(rows), fit)
    if same:
        scores = vectors * np.sqrt(values)
    else:
        # (a_r - mean_fit) . (a_f - mean_fit) from the Gram matrix, then onto the components
        cross = G[np.ix_(np.asarray(rows), fit)]
        cross = cross - cross.mean(axis=1, keepdims=True) - col[None, :] + block.mean()
        scores = cross @ (vectors / np.sqrt(values))
    fitted = vectors * np.sqrt(values)
    sign = np.sign(fitted[np.argmax(np.abs(fitted), axis=0), np.arange(fitted.shape[1])])
    return scores * np.where(sign == 0, 1.0, sign)
