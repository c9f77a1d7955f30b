"""``error-consistency``: trial-level behavioural consistency of a model's errors with each
subject's (Geirhos, Meding & Wichmann 2020, "Beyond accuracy: quantifying trial-by-trial
behaviour of CNNs and humans by measuring error consistency", NeurIPS).

Data: a dataset's behavioural trials (:meth:`Dataset.trials`, a table made with
:func:`brainrank.plugin.make_trials`): per trial the stimulus, the subject, the label chosen
and the correct label, and a condition (task). Scores: per (subject, condition) row: the
subject is the subject, the region is the condition.

The model's choices: per layer and condition, a linear read-out of the layer's features to
the correct labels, fitted with cross-validation so that every stimulus is classified by a
read-out that never saw it (scikit-learn ``StratifiedKFold``, ``n_folds`` folds stratified
by label, seed 0; per fold, ridge regression of one-hot labels, one penalty for all labels
chosen from ``alphas`` by exact leave-one-out error on the training stimuli,
:class:`brainrank.core.ridge.RidgeCV`; the label with the highest output is the choice).
The read-out is trained on the correct labels only, never on the subjects' choices, as a
model's "own" decisions are in Geirhos et al. (where the networks are ImageNet classifiers)
and in Brain-Score's behavioural benchmarks (a read-out fitted to labels). Features: as
``pls`` and ``cka``, the layer's Johnson-Lindenstrauss projection (shared with
``srp-ridge``), reduced to at most ``pca`` principal components of the condition's stimuli.

Score: Cohen's kappa between the model's and the subject's correct/incorrect patterns over
the stimuli the subject saw (:func:`brainrank.core.stats.error_consistency`; a stimulus seen
several times counts with the subject's fraction of correct trials). Ceiling: the subject's
mean kappa with each other subject over the stimuli both saw (Geirhos et al.'s human-human
consistency, Brain-Score's ``ErrorConsistency.ceiling``): the consistency between two
observers of the same kind. It is a reference, not a bound: a model that errs where the
subjects *on average* err can exceed it, as a pooled RDM exceeds one subject's.

Calibration: a subject whose choices do not depend on the stimuli, or a model whose errors
do not, has kappa 0 in expectation (kappa subtracts the agreement that the two accuracies
alone produce). Standard error for one subject over n stimuli, from the binomial variance of
the agreement: ``sqrt(p (1 - p) / n) / (1 - c_exp)``, p the subject's accuracy;
``tests/plugins/metrics/test_behaviour.py`` checks pure-noise choices and a noise model
against it. Brain-Score reports ``|mean kappa|``; brainrank keeps the sign (the absolute
value turns a chance-level model's negative sampling error into a positive score).

Why error consistency and not i1n/i2n (Rajalingham et al. 2018): it needs only what any
trial-level behavioural dataset has (a choice and the correct label per trial), not the
image-by-distractor two-alternative design i2n's d' patterns need; its null is 0 by
construction for any accuracy; and it compares trial-level decisions directly, without
normalising by a split-half consistency that is noisy for few trials.

Rows: per layer (``halves``: kappa on each half of the stimuli; the read-out's choices do
not depend on the subjects, so choosing a layer on one half's subjects' data and scoring it
on the other half leaks nothing) and ``heldout`` rows; the runner adds ``max``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from brainrank.core.ridge import DEFAULT_ALPHAS, RidgeCV
from brainrank.core.stats import error_consistency
from brainrank.plugin import (
    Dataset,
    FeatureRequest,
    FeatureSet,
    InputError,
    Metric,
    MetricMetadata,
    MetricSpec,
    NotApplicableError,
    Score,
    heldout_layer_scores,
    hookimpl,
    split_halves,
)
from brainrank.plugins.metrics import _encoding as enc
from brainrank.plugins.metrics import _reduction as reduction

MIN_STIMULI = 8


class ErrorConsistency(Metric):
    """Error consistency of a cross-validated linear read-out with each subject (module
    docstring)."""

    headline = "heldout"  # the layer chosen on one half of the stimuli, scored on the other

    identifier = "error-consistency"
    version = "1"
    needs = "trials"
    #: kappa of independent observers is 0 in expectation
    calibrated: bool = True

    def __init__(
        self,
        n_folds: int = 10,
        alphas: Any = None,
        pca: int | None = 1000,
        features: str = "projection",
        eps: float = 0.1,
        seed: int = 0,
    ):
        if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
            raise InputError(f"n_folds must be an integer >= 2, got {n_folds!r}.")
        reduction.check(features, pca)
        grid = [float(a) for a in np.atleast_1d(DEFAULT_ALPHAS if alphas is None else alphas)]
        RidgeCV(grid)  # validates
        super().__init__(
            n_folds=int(n_folds), alphas=grid, pca=pca, features=features, eps=float(eps),
            seed=int(seed),
        )  # fmt: skip

    # ------------------------------------------------------------------ data

    def _conditions(self, dataset: Dataset) -> list[tuple[str, list[str], np.ndarray, Any]]:
        """Per condition: ``(condition, sorted stimulus ids, their labels, trials)``."""
        trials = dataset.trials()
        out = []
        for condition, table in trials.groupby("condition", sort=True):
            truth = table.groupby("stimulus_id")["truth"].first()
            ids = sorted(truth.index.astype(str))
            out.append((str(condition), ids, np.asarray(truth.loc[ids]).astype(str), table))
        return out

    def _stimuli(self, dataset: Dataset) -> int:
        return int(dataset.trials()["stimulus_id"].nunique())

    def check_applicable(self, dataset: Dataset) -> None:
        super().check_applicable(dataset)
        for condition, ids, labels, table in self._conditions(dataset):
            where = f"condition {condition!r} of dataset {dataset.identifier!r}"
            values, counts = np.unique(labels, return_counts=True)
            if len(ids) < MIN_STIMULI:
                raise NotApplicableError(
                    f"metric {self.identifier!r} needs at least {MIN_STIMULI} stimuli per "
                    f"condition (a cross-validated read-out and two halves); {where} has "
                    f"{len(ids)}."
                )
            if values.size < 2 or counts.min() < 2:
                raise NotApplicableError(
                    f"metric {self.identifier!r} trains a read-out to the correct labels, which "
                    f"needs at least 2 labels with 2 stimuli each; {where} has labels "
                    f"{dict(zip(values.tolist(), counts.tolist(), strict=True))}."
                )
            if table["subject"].nunique() < 1:
                raise NotApplicableError(f"{where} has no subject.")

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        self.check_applicable(dataset)
        return reduction.request(self.parameters, self._stimuli(dataset))

    # ------------------------------------------------------------------ the read-out

    def model_choices(self, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Each stimulus's label as chosen by a read-out trained on the other folds."""
        from sklearn.model_selection import StratifiedKFold

        classes, y = np.unique(labels, return_inverse=True)
        n_folds = int(min(self.parameters["n_folds"], np.bincount(y).min()))
        onehot = np.eye(classes.size)[y]
        chosen = np.empty(labels.size, dtype=object)
        folds = StratifiedKFold(
            n_splits=n_folds, shuffle=True, random_state=self.parameters["seed"]
        )
        for train, test in folds.split(X, y):
            ridge = RidgeCV(self.parameters["alphas"], alpha_per_target=False, dtype="float64")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a class absent from a fold
                ridge.fit(X[train], onehot[train], return_predictions=False)
            chosen[test] = classes[np.argmax(ridge.predict(X[test]), axis=1)]
        return chosen.astype(str)

    # ------------------------------------------------------------------ scoring

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        self.check_applicable(dataset)
        out: list[Score] = []
        for condition, ids, labels, table in self._conditions(dataset):
            rows = features.rows_for(ids)
            position = {s: i for i, s in enumerate(ids)}
            table = table.assign(correct=(table["choice"] == table["truth"]).astype(float))
            per_subject = {
                str(subject): part.groupby("stimulus_id")["correct"].mean()
                for subject, part in table.groupby("subject", sort=True)
            }
            ceilings = subject_ceilings(per_subject)
            half_a, half_b = split_halves(len(ids), enc.SPLIT_SEED)
            in_half = [set(np.asarray(ids)[h].tolist()) for h in (half_a, half_b)]
            for layer in features:
                X = reduction.principal_features(layer, self.parameters, rows)
                model_correct = None
                if X is not None:
                    model_correct = (self.model_choices(X, labels) == labels).astype(float)
                for subject, correct in per_subject.items():
                    extra: dict[str, Any] = {"n_stimuli": int(correct.size)}
                    if model_correct is None:
                        value, halves = float("nan"), (float("nan"), float("nan"))
                        extra["reason"] = "the layer's features are constant across the stimuli"
                    else:
                        model = model_correct[[position[s] for s in correct.index]]
                        value = error_consistency(model, correct.to_numpy())
                        halves = tuple(_kappa_on(model, correct, half) for half in in_half)
                        extra.update(
                            model_accuracy=float(model.mean()),
                            subject_accuracy=float(correct.mean()),
                        )
                    out.append(
                        Score(
                            subject=subject,
                            region=condition,
                            layer=layer.name,
                            value=value,
                            n_neuroids=0,
                            layer_index=layer.index,
                            relative_depth=layer.relative_depth,
                            ceiling=ceilings.get(subject),
                            extra=extra,
                            halves=halves,
                        )
                    )
        return out + heldout_layer_scores(out)

    def count_fits(self, scores: list[Score]) -> int:
        return 0


def _kappa_on(model: np.ndarray, correct: Any, half: set[str]) -> float:
    keep = np.array([s in half for s in correct.index])
    if keep.sum() < 2:
        return float("nan")
    return error_consistency(model[keep], correct.to_numpy()[keep])


def subject_ceilings(per_subject: dict[str, Any]) -> dict[str, float]:
    """Per subject, the mean error consistency with each other subject over the stimuli
    both saw (pairs sharing fewer than 2 stimuli are left out)."""
    names = sorted(per_subject)
    out = {}
    for a in names:
        values = []
        for b in names:
            if a == b:
                continue
            shared = per_subject[a].index.intersection(per_subject[b].index)
            if shared.size < 2:
                continue
            kappa = error_consistency(per_subject[a].loc[shared], per_subject[b].loc[shared])
            if np.isfinite(kappa):
                values.append(kappa)
        if values:
            out[a] = float(np.mean(values))
    return out


@hookimpl
def brainrank_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            "error-consistency",
            ErrorConsistency,
            MetricMetadata(
                "error consistency (Cohen's kappa of correct/incorrect patterns) between a "
                "cross-validated linear read-out of each layer and each subject's trials",
                "trials",
                "Geirhos, Meding & Wichmann 2020 (NeurIPS)",
            ),
        )
    ]
