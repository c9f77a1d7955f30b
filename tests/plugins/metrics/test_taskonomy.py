"""``encoding:taskonomy``: the held-out Neural Taskonomy protocol, against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from brainrank.core.errors import InputError
from brainrank.plugins.metrics import taskonomy as tk


def sklearn_heldout(X_train, Y_train, X_test, alphas, n_folds, seed):
    """Per-target alpha by K-fold MSE with scikit-learn's Ridge, then a refit."""
    from sklearn.linear_model import Ridge

    n = X_train.shape[0]
    folds = np.array_split(np.random.default_rng(seed).permutation(n), n_folds)
    errors = np.zeros((len(alphas), Y_train.shape[1]))
    for held in folds:
        train = np.setdiff1d(np.arange(n), held)
        for a, alpha in enumerate(alphas):
            model = Ridge(alpha=alpha).fit(X_train[train], Y_train[train])
            errors[a] += ((model.predict(X_train[held]) - Y_train[held]) ** 2).mean(0)
    chosen = errors.argmin(0)
    out = np.empty((X_test.shape[0], Y_train.shape[1]))
    for a in np.unique(chosen):
        model = Ridge(alpha=alphas[a]).fit(X_train, Y_train)
        out[:, chosen == a] = model.predict(X_test)[:, chosen == a]
    return out, np.asarray(alphas)[chosen]


@pytest.mark.parametrize("p", [15, 90])  # fewer and more features than training stimuli
def test_heldout_predictions_equal_scikit_learn(p):
    rng = np.random.default_rng(p)
    X = rng.standard_normal((70, p))
    Y = X[:, :5] @ rng.standard_normal((5, 12)) + rng.standard_normal((70, 12)) * np.linspace(
        0.2, 5, 12
    )
    alphas = [0.1, 1.0, 10.0, 100.0, 1e4]
    ours, chosen = tk.heldout_predictions(X[:56], Y[:56], X[56:], alphas, n_folds=7, seed=3)
    ref, ref_chosen = sklearn_heldout(X[:56], Y[:56], X[56:], alphas, 7, 3)
    np.testing.assert_array_equal(chosen, ref_chosen)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-8)


def test_the_test_stimuli_never_influence_the_fit():
    """Mutation guard: changing held-out responses changes nothing but the scores."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 10))
    Y = rng.standard_normal((60, 4))
    a, _ = tk.heldout_predictions(X[:45], Y[:45], X[45:], [1.0, 10.0], n_folds=5)
    Y2 = Y.copy()
    Y2[45:] = 100 * rng.standard_normal((15, 4))
    b, _ = tk.heldout_predictions(X[:45], Y2[:45], X[45:], [1.0, 10.0], n_folds=5)
    np.testing.assert_array_equal(a, b)


def test_metric_rows_on_the_tiny_dataset(tiny_plugin_path):
    import brainrank
    from brainrank.core.registry import get_registry

    get_registry([tiny_plugin_path])
    metric = tk.TaskonomyEncoding(test_fraction=0.5, n_folds=3, n_permutations=100)
    frame = brainrank.score("tiny/net", "tiny/data", metric)
    layer = frame[frame["selection"] == "layer"]
    significance = frame[frame["selection"] == "significance"]
    assert len(layer) > 0 and len(significance) == len(layer)
    assert significance["score"].between(0, 1).all()
    assert {"max", "heldout"} <= set(frame["selection"])


def test_parameters_are_checked_with_clear_messages():
    with pytest.raises(InputError, match="fdr_scope"):
        tk.TaskonomyEncoding(fdr_scope="voxel")
    with pytest.raises(InputError, match="test_fraction"):
        tk.TaskonomyEncoding(test_fraction=1.5)
    with pytest.raises(InputError, match="n_folds"):
        tk.kfold_alphas(np.zeros((10, 2)), np.zeros((10, 1)), [1.0], n_folds=8)
    assert tk.authors_alpha_grid(2048).size == 100
    assert tk.TaskonomyEncoding(alphas="taskonomy").parameters["alphas"] == "taskonomy"
