"""PLS regression and principal components against scikit-learn (independent
implementations), and the numbers the docstrings state."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression as SklearnPLS
from sklearn.decomposition import PCA

from brainrank.core.errors import InputError
from brainrank.core.pls import PLSRegression, pca_scores, pls_fit_batch


def data(seed: int = 0, n: int = 120, p: int = 300, v: int = 20, slow: bool = False):
    """Features with geometrically decaying singular values (0.9^k), or, with ``slow``,
    slowly decaying ones (close leading values: where scikit-learn's power iterations stop
    early), and targets driven by 10 of them."""
    rng = np.random.default_rng(seed)
    scale = np.linspace(3.0, 0.1, p) if slow else 0.9 ** np.arange(p)
    X = rng.standard_normal((n, p)) * scale
    Y = X[:, :10] @ rng.standard_normal((10, v)) + rng.standard_normal((n, v))
    return X, Y, rng.standard_normal((30, p))


def converged_sklearn(k: int) -> SklearnPLS:
    """scikit-learn's PLS with its power iterations run to convergence (tol 0; 500
    iterations reach machine precision on :func:`data`)."""
    return SklearnPLS(n_components=k, scale=False, tol=0.0, max_iter=500)


@pytest.mark.parametrize("k", [1, 5, 25])
def test_pls_equals_scikit_learn_run_to_convergence(k):
    X, Y, X_new = data()
    ours = PLSRegression(k).fit(X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached: what tol=0 asks for
        theirs = converged_sklearn(k).fit(X, Y)
    np.testing.assert_allclose(ours.predict(X_new), theirs.predict(X_new), atol=1e-10)
    # the scores and weights are the same up to each component's sign
    np.testing.assert_allclose(np.abs(ours.x_scores_), np.abs(theirs.x_scores_), atol=1e-9)
    np.testing.assert_allclose(np.abs(ours.x_weights_), np.abs(theirs.x_weights_), atol=1e-9)


def test_scikit_learns_default_tolerance_moves_predictions():
    """The figure the module docstring states: with its default tol (1e-6 on the squared
    change of the weights) scikit-learn's predictions differ from the exact ones by up to a
    few 1e-2 on these features (4.9e-2 for 1 component); the exact solution is ours."""
    X, Y, X_new = data(slow=True)
    ours = PLSRegression(1).fit(X, Y).predict(X_new)
    default = SklearnPLS(n_components=1, scale=False).fit(X, Y).predict(X_new)
    scale = np.abs(ours).max()
    assert 1e-3 < np.abs(ours - default).max() / scale < 0.05


def test_one_target_and_the_batch_are_the_same_models():
    X, Y, X_new = data(1, n=60, p=40, v=7)
    single = [PLSRegression(6).fit(X, Y[:, :4]), PLSRegression(6).fit(X, Y[:, 4:])]
    padded = np.zeros((1, 2, 60, 4))
    padded[0, 0] = Y[:, :4]
    padded[0, 1, :, :3] = Y[:, 4:]  # a smaller set padded with a zero column
    fit = pls_fit_batch(X[None], padded, 6)
    out = fit.predict(X_new[None])[0]
    np.testing.assert_allclose(out[0], single[0].predict(X_new), atol=1e-10)
    np.testing.assert_allclose(out[1, :, :3], single[1].predict(X_new), atol=1e-10)
    np.testing.assert_allclose(out[1, :, 3], 0.0, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = converged_sklearn(3).fit(X, Y[:, 0]).predict(X_new)
    np.testing.assert_allclose(
        PLSRegression(3).fit(X, Y[:, 0]).predict(X_new)[:, 0], np.ravel(one), atol=1e-10
    )


def test_components_stop_when_the_features_run_out():
    """Fewer features than components: the fit stops at the rank (scikit-learn refuses) and
    equals ordinary least squares there."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 3))
    Y = rng.standard_normal((50, 4))
    model = PLSRegression(25).fit(X, Y)
    assert model.n_components_ == 3
    X_new = rng.standard_normal((5, 3))
    Xc = np.column_stack([np.ones(50), X])
    beta = np.linalg.lstsq(Xc, Y, rcond=None)[0]
    np.testing.assert_allclose(
        model.predict(X_new), np.column_stack([np.ones(5), X_new]) @ beta, atol=1e-10
    )


def test_bad_input_says_what_is_wrong():
    with pytest.raises(InputError, match=">= 1"):
        PLSRegression(0)
    with pytest.raises(InputError, match="positive integer"):
        PLSRegression(2.5)
    with pytest.raises(InputError, match="rows"):
        PLSRegression(2).fit(np.zeros((5, 3)), np.zeros((4, 1)))
    with pytest.raises(InputError, match="NaN"):
        PLSRegression(2).fit(np.full((5, 3), np.nan), np.zeros((5, 1)))
    with pytest.raises(InputError, match="fit"):
        PLSRegression(2).predict(np.zeros((2, 3)))


@pytest.mark.parametrize("shape", [(80, 300), (80, 20)])  # Gram and covariance paths
def test_pca_scores_equal_scikit_learn_up_to_sign(shape):
    rng = np.random.default_rng(3)
    X = rng.standard_normal(shape) * np.linspace(2, 0.2, shape[1])
    for rows, k in ((None, 10), (np.arange(0, 80, 2), 10), (None, None)):
        ours = pca_scores(X, rows, k)
        fitted = X if rows is None else X[rows]
        theirs = PCA(n_components=k if k else min(fitted.shape) - 1).fit(fitted).transform(X)
        c = min(ours.shape[1], theirs.shape[1])
        assert c >= (k or 19)
        np.testing.assert_allclose(np.abs(ours[:, :c]), np.abs(theirs[:, :c]), atol=1e-9)


def test_pca_with_every_component_keeps_the_gram_matrix():
    """All components of the fitted stimuli: the centred Gram matrix is unchanged, so PLS,
    ridge and CKA give what the features themselves give."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 500))
    Z = pca_scores(X)
    Xc = X - X.mean(0)
    np.testing.assert_allclose(Z @ Z.T, Xc @ Xc.T, atol=1e-9)
    assert Z.shape[1] == 39  # centred rank, no null directions
