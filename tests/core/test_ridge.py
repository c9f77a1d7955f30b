"""Leave-one-out ridge against scikit-learn's RidgeCV (exact LOO in its gcv mode)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.linear_model import RidgeCV as SkRidgeCV

from brainrank.core.errors import InputError
from brainrank.core.ridge import RidgeCV, ridge_loo

ALPHAS = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]


def make_data(n, k, v, seed=0, noise=2.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k)) * rng.uniform(0.5, 3, size=k) + rng.uniform(-2, 2, size=k)
    W = rng.standard_normal((k, v)) / np.sqrt(k)
    Y = X @ W * 3 + noise * rng.standard_normal((n, v)) + rng.uniform(-5, 5, size=v)
    return X, Y


def sklearn_loo_predictions(X, Y, alphas, alpha_per_target):
    """scikit-learn's LOO predictions at its chosen alpha(s), and its chosen alphas."""
    # with a scoring, cv_results_ holds the LOO predictions: (n, v, n_alphas)
    sk = SkRidgeCV(
        alphas=alphas,
        store_cv_results=True,
        alpha_per_target=alpha_per_target,
        scoring="neg_mean_squared_error",
    ).fit(X, Y)
    chosen = np.broadcast_to(np.atleast_1d(sk.alpha_), (Y.shape[1],))
    index = [list(alphas).index(a) for a in chosen]
    preds = np.stack([sk.cv_results_[:, j, index[j]] for j in range(Y.shape[1])], axis=1)
    return preds, chosen


@pytest.mark.parametrize("shape", [(60, 200), (80, 20), (50, 50), (40, 39)])
@pytest.mark.parametrize("alpha_per_target", [True, False])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_loo_predictions_equal_sklearn_float64(shape, alpha_per_target, backend):
    n, k = shape
    X, Y = make_data(n, k, 9)
    expected, alphas = sklearn_loo_predictions(X, Y, ALPHAS, alpha_per_target)
    result = ridge_loo(
        X, Y, ALPHAS, alpha_per_target=alpha_per_target, dtype="float64", backend=backend
    )
    np.testing.assert_allclose(result.alphas, alphas)
    scale = np.abs(expected).max()
    assert np.abs(result.predictions - expected).max() <= 1e-6 * scale
    assert result.info["method"] == ("gram" if k >= n else "svd")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("shape", [(200, 300), (150, 80)])
def test_loo_predictions_equal_sklearn_float32(backend, shape):
    X, Y = make_data(*shape, 40, seed=3, noise=2.0)
    X, Y = X.astype(np.float32), Y.astype(np.float32)
    expected, alphas = sklearn_loo_predictions(X, Y, ALPHAS, True)
    result = ridge_loo(X, Y, ALPHAS, backend=backend)
    assert result.predictions.dtype == np.float32
    # Where two alphas' LOO errors differ by less than float32 can resolve (relative gap
    # < 1e-4), either choice is right; everywhere else the choice and the predictions match.
    errors = sklearn_squared_loo_errors(X, Y, ALPHAS)  # (v, n_alphas)
    ordered = np.sort(errors, axis=1)
    tied = (ordered[:, 1] - ordered[:, 0]) / ordered[:, 0] < 1e-4
    assert tied.mean() < 0.1
    np.testing.assert_allclose(result.alphas[~tied], alphas[~tied])
    chosen_error = errors[np.arange(Y.shape[1]), result.alpha_index]
    assert np.all(chosen_error <= ordered[:, 0] * (1 + 1e-4))
    scale = np.abs(expected).max()
    assert np.abs(result.predictions[:, ~tied] - expected[:, ~tied]).max() <= 1e-3 * scale
    # LOO errors of every alpha agree with scikit-learn's to float32 precision
    np.testing.assert_allclose(result.cv_scores.T, errors, rtol=1e-3)


def sklearn_squared_loo_errors(X, Y, alphas):
    sk = SkRidgeCV(alphas=alphas, store_cv_results=True, alpha_per_target=True).fit(X, Y)
    return sk.cv_results_.mean(axis=0)


def test_loo_errors_for_every_alpha_equal_sklearn():
    X, Y = make_data(70, 30, 5, seed=4)
    sk = SkRidgeCV(alphas=ALPHAS, store_cv_results=True, alpha_per_target=True).fit(X, Y)
    mse = sk.cv_results_.mean(axis=0)  # squared LOO errors -> (v, n_alphas)
    result = ridge_loo(X, Y, ALPHAS, dtype="float64")
    np.testing.assert_allclose(result.cv_scores, mse.T, rtol=1e-8)


def test_scores_are_pearson_and_r2_of_loo_predictions():
    X, Y = make_data(50, 80, 4, seed=5)
    result = ridge_loo(X, Y, ALPHAS, dtype="float64")
    for j in range(Y.shape[1]):
        r = np.corrcoef(result.predictions[:, j], Y[:, j])[0, 1]
        r2 = (
            1
            - ((Y[:, j] - result.predictions[:, j]) ** 2).sum()
            / ((Y[:, j] - Y[:, j].mean()) ** 2).sum()
        )
        assert result.scores[j] == pytest.approx(r, abs=1e-10)
        assert result.r2[j] == pytest.approx(r2, abs=1e-10)


def test_pearson_scoring_picks_the_alpha_with_the_best_loo_r():
    X, Y = make_data(60, 100, 6, seed=6, noise=5.0)
    result = ridge_loo(X, Y, ALPHAS, scoring="pearson", dtype="float64")
    for j in range(Y.shape[1]):
        rs = []
        for alpha in ALPHAS:
            single = ridge_loo(X, Y[:, j], [alpha], dtype="float64")
            rs.append(single.scores[0])
        assert result.alphas[j] == ALPHAS[int(np.argmax(rs))]
        np.testing.assert_allclose(result.cv_scores[:, j], rs, atol=1e-10)


def test_target_batches_do_not_change_results():
    X, Y = make_data(40, 60, 23, seed=7)
    whole = ridge_loo(X, Y, ALPHAS, dtype="float64")
    batched = ridge_loo(X, Y, ALPHAS, dtype="float64", target_batch=5)
    np.testing.assert_array_equal(whole.alphas, batched.alphas)
    np.testing.assert_allclose(whole.predictions, batched.predictions, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shape", [(50, 120), (60, 10)])
def test_predict_new_stimuli_equals_sklearn_ridge_at_the_chosen_alpha(shape):
    X, Y = make_data(*shape, 5, seed=8)
    X_new = np.random.default_rng(9).standard_normal((7, shape[1]))
    model = RidgeCV(ALPHAS, dtype="float64").fit(X, Y)
    expected = np.stack(
        [Ridge(alpha=a).fit(X, Y[:, j]).predict(X_new) for j, a in enumerate(model.alpha_)], axis=1
    )
    np.testing.assert_allclose(model.predict(X_new), expected, rtol=1e-8, atol=1e-8)


def test_without_intercept_equals_sklearn():
    X, Y = make_data(45, 20, 3, seed=10)
    sk = SkRidgeCV(alphas=ALPHAS, fit_intercept=False, store_cv_results=True, alpha_per_target=True,
                   scoring="neg_mean_squared_error").fit(X, Y)  # fmt: skip
    index = [ALPHAS.index(a) for a in sk.alpha_]
    expected = np.stack([sk.cv_results_[:, j, index[j]] for j in range(3)], axis=1)
    result = ridge_loo(X, Y, ALPHAS, fit_intercept=False, dtype="float64")
    np.testing.assert_allclose(result.predictions, expected, rtol=1e-7, atol=1e-9)


def test_nan_in_inputs_is_reported_with_count_and_position():
    X, Y = make_data(20, 5, 2)
    X[3, 2] = np.nan
    X[7, 1] = np.inf
    with pytest.raises(InputError, match=r"X contains 2 NaN or infinite values .*row 3, column 2"):
        ridge_loo(X, Y)
    X, Y = make_data(20, 5, 2)
    Y[4, 1] = np.nan
    with pytest.raises(InputError, match="Y contains 1 NaN"):
        ridge_loo(X, Y)


def test_constant_targets_give_nan_scores_and_one_warning():
    X, Y = make_data(30, 10, 4)
    Y[:, 1] = 3.0
    Y[:, 3] = -1.0
    with pytest.warns(RuntimeWarning, match="2 of 4 targets are constant") as record:
        result = ridge_loo(X, Y, ALPHAS)
    assert len(record) == 1
    assert np.isnan(result.scores[[1, 3]]).all() and np.isfinite(result.scores[[0, 2]]).all()
    assert result.n_constant == 2


@pytest.mark.parametrize(
    ("X", "Y", "alphas", "message"),
    [
        (np.ones((2, 3)), np.ones((2, 1)), [1.0], "at least 3 stimuli"),
        (np.ones((5, 3)), np.ones((4, 1)), [1.0], "X has 5 rows but Y has 4"),
        (np.ones((5, 3)), np.ones((5, 1)), [0.0], "alpha must be a finite number > 0"),
        (np.ones((5, 3)), np.ones((5, 1)), [-1.0, 1.0], "alpha must be a finite number > 0"),
        (np.ones(5), np.ones((5, 1)), [1.0], "X must be 2-D"),
    ],
)
def test_bad_inputs_raise_clear_errors(X, Y, alphas, message):
    with pytest.raises(InputError, match=message):
        ridge_loo(X, Y, alphas)


def test_zscore_columns_equals_standard_scaler():
    from sklearn.preprocessing import StandardScaler

    from brainrank.core.ridge import zscore_columns

    rng = np.random.default_rng(9)
    X = rng.standard_normal((30, 6)) * [1, 10, 1e-3, 5, 1, 1] + [0, 3, 1000, -2, 0, 0]
    X[:, 5] = 7.0  # a constant column: centred, scale kept at 1
    train, test = X[:20], X[20:]
    scaler = StandardScaler().fit(train)
    np.testing.assert_allclose(zscore_columns(train), scaler.transform(train), atol=1e-10)
    np.testing.assert_allclose(zscore_columns(test, train), scaler.transform(test), atol=1e-10)


def test_ridge_kfold_refuses_bad_folds():
    from brainrank.core.ridge import ridge_kfold

    X, Y = make_data(20, 5, 2)
    with pytest.raises(InputError, match="disjoint"):
        ridge_kfold(X, Y, [np.arange(0, 10), np.arange(5, 20)])
    with pytest.raises(InputError, match="at least 3 test"):
        ridge_kfold(X, Y, [np.arange(0, 2), np.arange(2, 20)])
    with pytest.raises(InputError, match="standardize"):
        ridge_kfold(X, Y, [np.arange(0, 10), np.arange(10, 20)], standardize="yes")
