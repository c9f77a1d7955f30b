"""``encoding:taskonomy``: the held-out encoding protocol of Neural Taskonomy
(Wang, Tarr & Wehbe 2019, NeurIPS; code: github.com/ariaaay/NeuralTaskonomy,
``code/encodingmodel/encoding_model.py`` (``ridge_cv``, ``permutation_test``),
``code/encodingmodel/ridge.py`` (``RidgeCVEstimator``) and ``code/run_significance_test.py``
(FDR)).

Per layer and per neuroid (voxel):

1. **Split.** The stimuli are split into training and test stimuli: the dataset's own
   :meth:`~brainrank.plugin.Dataset.train_test_split` when it returns one, else a seeded
   random split with ``test_fraction`` of the stimuli held out (0.15, as the authors'
   ``train_test_split(test_size=0.15)``; seed ``split_seed``).
2. **Penalty on the training stimuli only.** For every alpha of the grid a ridge
   regression (with intercept, features not standardised: the authors' ``scale_X=False``)
   is fitted on ``n_folds - 1`` folds of the training stimuli and scored on the remaining
   fold; each neuroid gets the alpha with the best mean validation score over the
   ``n_folds`` folds (7 in the paper; ``alpha_scoring="mse"``, the authors' negative mean
   squared error, or ``"pearson"``). The test stimuli are never seen here.
3. **Held-out score.** The ridge is refitted on all training stimuli with each neuroid's
   alpha and predicts the test stimuli; the neuroid's score is the Pearson r between its
   held-out predictions and its (trial-averaged) held-out responses.
4. **Significance.** The test stimuli's labels are shuffled ``n_permutations`` times (the
   same permutations for every neuroid) and r recomputed against the *fixed* held-out
   predictions (no refit: the predictions never saw the test responses, so the null is
   exact); ``p = (1 + #{r_perm >= r}) / (1 + n_permutations)``, one-sided. The paper uses
   5000 permutations; the default here is 1000 (smallest p 1e-3; enough for
   Benjamini-Hochberg at q = 0.05 over up to a few thousand voxels; pass
   ``n_permutations=5000`` for the paper's number).
5. **FDR.** Benjamini-Hochberg adjusted p-values over all neuroids of a subject
   (``fdr_scope="subject"``, the paper's whole-brain maps) or within each (subject, region)
   (``"region"``, its ROI results); a neuroid is significant when its adjusted p <= ``q``.

Rows stored per layer and (subject, region):

- ``selection="layer"``: the mean held-out r over the group's neuroids (``per_neuroid``:
  each neuroid's held-out r), with the encoding ceiling, and ``halves`` (the mean r on
  each half of the test stimuli) so that the runner's ``heldout`` row chooses the layer on
  one half of the test stimuli and scores it on the other;
- ``selection="significance"``: value = the fraction of the group's neuroids that are
  FDR-significant; ``per_neuroid`` = their FDR-adjusted p-values (NaN where r is undefined,
  e.g. constant predictions); ``extra`` has q, the permutation count, the FDR scope and the
  number of significant neuroids. :func:`brainrank.leaderboard.analyses.voxel_significance`
  reads these rows back, and the report's task maps keep only the significant voxels.

Projection: features are projected as for ``srp-ridge`` (``n_components``, default the
Johnson-Lindenstrauss dimension at ``eps``); layers with at most that many features, such
as the 16 x 16 x 8 Taskonomy latent the paper uses, enter the regression as they are.
The alpha grid defaults to brainrank's (10^-2 .. 10^8, 11 values); ``alphas="taskonomy"``
gives the authors' grid, 100 values from 10^-8 to 10^(log10(p) / 2 + 8) for p features.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from brainrank.core import stats
from brainrank.core.ridge import Decomposition
from brainrank.plugin import (
    Dataset,
    FeatureRequest,
    FeatureSet,
    InputError,
    Metric,
    MetricMetadata,
    MetricSpec,
    Score,
    ceiling_fields,
    heldout_layer_scores,
    hookimpl,
    split_halves,
)
from brainrank.plugins.metrics import _encoding as enc

IDENTIFIER = "encoding:taskonomy"
DESCRIPTION = (
    "Neural Taskonomy held-out encoding: ridge (alpha per neuroid by K-fold CV on training "
    "stimuli), Pearson r on test stimuli, permutation p-values with Benjamini-Hochberg FDR"
)
CITATION = "Wang, Tarr & Wehbe 2019, NeurIPS (Neural Taskonomy)"
SCORINGS = ("mse", "pearson")
FDR_SCOPES = ("subject", "region")


# --------------------------------------------------------------------------- kernels


def _predictions(X_train: np.ndarray, Y_train: np.ndarray, X_new: np.ndarray, alphas):
    """Yield, for every alpha, the ridge (with intercept) predictions of ``X_new`` from a
    fit on ``(X_train, Y_train)``; one factorisation of the training features for all."""
    dec = Decomposition.of(np.asarray(X_train))
    mean = dec.x_mean
    train_c = np.asarray(X_train, dtype=np.float64) - mean
    coords = ((np.asarray(X_new, dtype=np.float64) - mean) @ train_c.T) @ dec.basis
    y_mean = Y_train.mean(axis=0)
    Z = dec.basis.T @ (Y_train - y_mean)
    for alpha in alphas:
        yield coords @ (Z / (dec.eigenvalues + alpha)[:, None]) + y_mean


def kfold_alphas(
    X: np.ndarray,
    Y: np.ndarray,
    alphas: Any,
    *,
    n_folds: int = 7,
    scoring: str = "mse",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-target alpha chosen by ``n_folds``-fold cross-validation on ``(X, Y)``.

    The rows are shuffled with ``seed`` and cut into folds; every alpha is scored on each
    validation fold (mean squared error, or Pearson r with ``scoring="pearson"``) and the
    scores averaged over folds. Returns ``(chosen alpha index (v,), mean scores
    (n_alphas, v))``; for ``"mse"`` lower is better, for ``"pearson"`` higher.
    """
    if scoring not in SCORINGS:
        raise InputError(f"alpha_scoring must be one of {SCORINGS}, got {scoring!r}.")
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    n = X.shape[0]
    if not 2 <= n_folds <= n // 2:
        raise InputError(
            f"n_folds must be between 2 and half the number of training stimuli ({n // 2}); "
            f"got {n_folds}."
        )
    alphas = np.asarray(alphas, dtype=np.float64)
    folds = np.array_split(np.random.default_rng(seed).permutation(n), n_folds)
    total = np.zeros((alphas.size, Y.shape[1]))
    for held in folds:
        train = np.setdiff1d(np.arange(n), held)
        for a, predicted in enumerate(_predictions(X[train], Y[train], X[held], alphas)):
            if scoring == "mse":
                total[a] += ((predicted - Y[held]) ** 2).mean(axis=0)
            else:
                total[a] += np.nan_to_num(stats.pearson_columns(predicted, Y[held]), nan=-1.0)
    mean = total / n_folds
    chosen = np.argmin(mean, axis=0) if scoring == "mse" else np.argmax(mean, axis=0)
    return chosen, mean


def heldout_predictions(
    X_train: np.ndarray,
    Y_train: np.ndarray,
    X_test: np.ndarray,
    alphas: Any,
    *,
    n_folds: int = 7,
    scoring: str = "mse",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out ridge predictions ``(n_test, v)`` and each target's alpha: alphas chosen by
    :func:`kfold_alphas` on the training rows only, then one fit on all training rows."""
    alphas = np.asarray(alphas, dtype=np.float64)
    Y_train = np.asarray(Y_train, dtype=np.float64)
    chosen, _ = kfold_alphas(X_train, Y_train, alphas, n_folds=n_folds, scoring=scoring, seed=seed)
    out = np.empty((np.asarray(X_test).shape[0], Y_train.shape[1]))
    used = np.unique(chosen)
    for a, predicted in zip(
        used, _predictions(X_train, Y_train, X_test, alphas[used]), strict=True
    ):
        columns = chosen == a
        out[:, columns] = predicted[:, columns]
    return out, alphas[chosen]


def significance(
    predictions: np.ndarray,
    responses: np.ndarray,
    groups: list[np.ndarray],
    *,
    n_permutations: int = 1000,
    q: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(r, p, p_fdr)`` per neuroid: Pearson r of held-out predictions and responses,
    one-sided permutation p (stimulus labels shuffled, same permutations for all neuroids),
    and Benjamini-Hochberg adjusted p within each index array of ``groups``."""
    r, p = stats.permutation_test(predictions, responses, n_permutations=n_permutations, seed=seed)
    adjusted = np.full(p.shape, np.nan)
    for index in groups:
        adjusted[index], _ = stats.fdr_bh(p[index], alpha=q)
    return r, p, adjusted


def authors_alpha_grid(n_features: int, n_alphas: int = 100) -> np.ndarray:
    """The NeuralTaskonomy grid: ``logspace(-8, log10(p) / 2 + 8, 100)``."""
    return np.logspace(-8, 0.5 * np.log10(max(n_features, 1)) + 8, n_alphas)


# --------------------------------------------------------------------------- metric


class TaskonomyEncoding(Metric):
    """Held-out encoding with per-neuroid permutation significance (see module docs)."""

    identifier = IDENTIFIER
    headline = "heldout"  # the layer chosen on one half of the stimuli, scored on the other
    version = "1"
    needs = "responses"

    def __init__(
        self,
        n_components: int | str = "jl",
        eps: float = 0.1,
        alphas: Any = None,
        alpha_scoring: str = "mse",
        n_folds: int = 7,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        n_permutations: int = 1000,
        q: float = 0.05,
        fdr_scope: str = "subject",
        seed: int = 0,
    ):
        if alphas == "taskonomy":
            grid: Any = "taskonomy"
        else:
            grid = enc.check_encoding_parameters(n_components, alphas, "mse")
        if n_components != "jl" and (not isinstance(n_components, int) or n_components < 1):
            raise InputError(
                f"n_components must be 'jl' or a positive integer, got {n_components!r}."
            )
        if alpha_scoring not in SCORINGS:
            raise InputError(f"alpha_scoring must be one of {SCORINGS}, got {alpha_scoring!r}.")
        if not isinstance(n_folds, int) or n_folds < 2:
            raise InputError(f"n_folds must be an integer >= 2, got {n_folds!r}.")
        if not 0 < float(test_fraction) < 1:
            raise InputError(f"test_fraction must be in (0, 1), got {test_fraction!r}.")
        if not isinstance(n_permutations, int) or n_permutations < 1:
            raise InputError(f"n_permutations must be a positive integer, got {n_permutations!r}.")
        if not 0 < float(q) < 1:
            raise InputError(f"q (the FDR level) must be in (0, 1), got {q!r}.")
        if fdr_scope not in FDR_SCOPES:
            raise InputError(f"fdr_scope must be one of {FDR_SCOPES}, got {fdr_scope!r}.")
        super().__init__(
            n_components=n_components,
            eps=float(eps),
            alphas=grid,
            alpha_scoring=alpha_scoring,
            n_folds=int(n_folds),
            test_fraction=float(test_fraction),
            split_seed=int(split_seed),
            n_permutations=int(n_permutations),
            q=float(q),
            fdr_scope=fdr_scope,
            seed=int(seed),
        )

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        k = enc.dimension(self.parameters, enc.n_stimuli(dataset))
        return FeatureRequest(projection_dims=frozenset({k}))

    def split(self, dataset: Dataset, stimulus_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the training and test stimuli within ``stimulus_ids``."""
        own = enc.dataset_split(dataset, stimulus_ids)
        if own is not None:
            return own
        n = len(stimulus_ids)
        n_test = round(self.parameters["test_fraction"] * n)
        if n_test < 4 or n - n_test < 2 * self.parameters["n_folds"]:
            raise InputError(
                f"{n} stimuli are too few for a held-out split with test_fraction "
                f"{self.parameters['test_fraction']} and {self.parameters['n_folds']} folds "
                "(need at least 4 test stimuli and 2 training stimuli per fold); raise "
                "test_fraction or lower n_folds."
            )
        order = np.random.default_rng(self.parameters["split_seed"]).permutation(n)
        return np.sort(order[n_test:]), np.sort(order[:n_test])

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        p = self.parameters
        targets = enc.Targets.of(dataset)
        ceilings = dataset.ceiling_with_interval("encoding")
        rows_all = enc.rows_for(features, targets)
        train, test = self.split(dataset, targets.stimulus_ids)
        Y = targets.values.astype(np.float64)
        k = enc.dimension(p, len(targets.stimulus_ids))
        half_a, half_b = split_halves(test.size, p["seed"])
        if p["fdr_scope"] == "region":
            fdr_groups = [index for _, index in targets.groups]
        else:
            subjects: dict[str, list[np.ndarray]] = {}
            for (subject, _), index in targets.groups:
                subjects.setdefault(subject, []).append(index)
            fdr_groups = [np.concatenate(parts) for parts in subjects.values()]
        out: list[Score] = []
        for layer in features:
            X = enc.design(layer, k, rows_all)
            v = Y.shape[1]
            if X is None:
                r = p_adj = alphas = np.full(v, np.nan)
                r_a = r_b = r
            else:
                grid = authors_alpha_grid(X.shape[1]) if p["alphas"] == "taskonomy" else p["alphas"]
                predicted, alphas = heldout_predictions(
                    X[train], Y[train], X[test], grid,
                    n_folds=p["n_folds"], scoring=p["alpha_scoring"], seed=p["seed"],
                )  # fmt: skip
                r, _, p_adj = significance(
                    predicted, Y[test], fdr_groups,
                    n_permutations=p["n_permutations"], q=p["q"], seed=p["seed"],
                )  # fmt: skip
                r_a = stats.pearson_columns(predicted[half_a], Y[test][half_a])
                r_b = stats.pearson_columns(predicted[half_b], Y[test][half_b])
            significant = np.nan_to_num(p_adj, nan=1.0) <= p["q"]
            for (subject, region), index in targets.groups:
                value, n = enc.group_mean(r, index)
                common = dict(
                    subject=subject,
                    region=region,
                    layer=layer.name,
                    layer_index=layer.index,
                    relative_depth=layer.relative_depth,
                    neuroid_ids=tuple(targets.neuroid_ids[index]),
                )
                out.append(
                    Score(
                        value=value,
                        n_neuroids=n,
                        **ceiling_fields(ceilings, (subject, region)),
                        per_neuroid=r[index].astype(np.float32),
                        halves=(enc.group_mean(r_a, index)[0], enc.group_mean(r_b, index)[0]),
                        extra={
                            "n_train": int(train.size),
                            "n_test": int(test.size),
                            "median_alpha": _median(alphas[index]),
                        },
                        **common,
                    )
                )
                out.append(
                    Score(
                        value=float(significant[index].mean()) if X is not None else np.nan,
                        n_neuroids=int(index.size),
                        selection="significance",
                        per_neuroid=p_adj[index].astype(np.float32),
                        extra={
                            "q": p["q"],
                            "n_significant": int(significant[index].sum()),
                            "n_permutations": p["n_permutations"],
                            "fdr_scope": p["fdr_scope"],
                            "n_test": int(test.size),
                        },
                        **common,
                    )
                )
        return out + heldout_layer_scores(out)


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


PRESETS: dict[str, dict[str, Any]] = {
    IDENTIFIER: {},
}


def _build(identifier: str, preset: dict[str, Any], **parameters: Any) -> TaskonomyEncoding:
    metric = TaskonomyEncoding(**{**preset, **parameters})
    metric.identifier = identifier
    return metric


@hookimpl
def brainrank_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            identifier,
            partial(_build, identifier, preset),
            MetricMetadata(DESCRIPTION, needs="responses", citation=CITATION),
        )
        for identifier, preset in PRESETS.items()
    ]
