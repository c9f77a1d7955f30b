"""``versa``: voxelwise-encoding RSA (Conwell, Prince, Alvarez, Konkle).

Per layer, a ridge regression from the sparse random projection of the features (the
Johnson-Lindenstrauss dimension at eps 0.1 by default) predicts every neuroid of a region;
the RDM of the region's *predicted* responses is compared with the RDM of its measured,
trial-averaged responses (Pearson r of the upper triangles by default). The encoding step
re-weights the features towards what the region encodes before the geometry is compared.

Two modes:

- ``mode="loo"`` (default): the predictions are the exact leave-one-out predictions on all
  stimuli. Summary rows: ``max`` (best layer) and ``heldout`` (layer chosen on one half of
  the stimuli, scored on the other, both ways).
- ``mode="generalisation"``: the stimuli are split into training and test stimuli (the
  dataset's own split when it defines ``train_test_split()``, otherwise a seeded half
  split); the ridge is fitted
  on the training stimuli (alpha per neuroid by LOO) and predicts the test stimuli. Each
  layer row holds the test score with the training (LOO) score in ``extra["train"]``; the
  ``generalisation`` summary row is the layer chosen on the training stimuli, scored on the
  test stimuli. (The paper's own generalisation test chooses the layer on NSD's shared
  images and scores it on each subject's other images, which are separate datasets here,
  ``nsd/shared1000`` and ``nsd/generalisation:subjXX``: score both with ``versa`` and use
  ``brainrank.leaderboard.analyses.generalisation``.)

Parameters: ``n_components``, ``eps``, ``alphas`` (default grid; ``[1e5]`` reproduces the
paper's fixed penalty), ``alpha_scoring``, ``comparison`` (``pearson``, ``spearman``,
``kendall_tau_a``), ``mode``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from brainrank.core.errors import InputError
from brainrank.core.registry import hookimpl
from brainrank.core.ridge import RidgeCV
from brainrank.core.rsa import COMPARISONS, compare, rdm
from brainrank.core.types import (
    Dataset,
    FeatureRequest,
    FeatureSet,
    Metric,
    MetricMetadata,
    MetricSpec,
    Score,
    heldout_layer_scores,
    split_halves,
)
from brainrank.plugins.metrics import _encoding as enc

DESCRIPTION = "voxelwise-encoding RSA: RDM of ridge-predicted responses vs the brain RDM"
MODES = ("loo", "generalisation")


def _rdm_or_nan(values: np.ndarray) -> np.ndarray | None:
    """Correlation-distance RDM, or None when a stimulus' pattern is constant."""
    out = rdm(values, dtype="float64")
    return None if np.isnan(out).any() else out


class VERSA(Metric):
    identifier = "versa"
    version = "1"
    needs = "responses"

    def __init__(
        self,
        n_components: int | str = "jl",
        eps: float = 0.1,
        alphas: Any = None,
        alpha_scoring: str = "pearson",
        comparison: str = "pearson",
        mode: str = "loo",
    ):
        alphas = enc.check_encoding_parameters(n_components, alphas, alpha_scoring)
        if comparison not in COMPARISONS:
            raise InputError(f"comparison must be one of {COMPARISONS}, got {comparison!r}.")
        if mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {mode!r}.")
        super().__init__(
            n_components=n_components,
            eps=float(eps),
            alphas=alphas,
            alpha_scoring=alpha_scoring,
            comparison=comparison,
            mode=mode,
        )

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        n = enc.n_stimuli(dataset)
        if self.parameters["mode"] == "generalisation":
            train, _ = self.split(dataset, enc.Targets.of(dataset).stimulus_ids)
            n = int(train.size)
        return FeatureRequest(projection_dims=frozenset({enc.dimension(self.parameters, n)}))

    def split(self, dataset: Dataset, stimulus_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return enc.train_test_split(dataset, stimulus_ids)

    def _ridge(self) -> RidgeCV:
        return RidgeCV(self.parameters["alphas"], scoring=self.parameters["alpha_scoring"])

    def _compare(self, predicted: np.ndarray, brain_rdm: np.ndarray | None) -> float:
        if brain_rdm is None:
            return float("nan")
        model_rdm = _rdm_or_nan(predicted)
        if model_rdm is None:
            return float("nan")
        return float(compare(model_rdm, brain_rdm, self.parameters["comparison"]))

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        targets = enc.Targets.of(dataset)
        if self.parameters["mode"] == "generalisation":
            return self._generalisation(features, dataset, targets)
        rows_all = enc.rows_for(features, targets)
        k = enc.dimension(self.parameters, len(targets.stimulus_ids))
        half_a, half_b = split_halves(len(targets.stimulus_ids), enc.SPLIT_SEED)
        Y = targets.values
        brain = {}
        for key, index in targets.groups:
            brain[key] = {
                part: _rdm_or_nan(Y[subset][:, index]) if index.size > 1 else None
                for part, subset in (("all", slice(None)), ("a", half_a), ("b", half_b))
            }
        ceilings = dataset.ceiling("rsa") if self.parameters["comparison"] == "pearson" else {}
        ridge = self._ridge()
        rows: list[Score] = []
        for layer in features:
            X = enc.design(layer, k, rows_all)
            predictions = None if X is None else ridge.fit(X, Y).result_.predictions
            for key, index in targets.groups:
                if predictions is None:
                    values = (float("nan"),) * 3
                else:
                    P = predictions[:, index]
                    values = (
                        self._compare(P, brain[key]["all"]),
                        self._compare(P[half_a], brain[key]["a"]),
                        self._compare(P[half_b], brain[key]["b"]),
                    )
                rows.append(
                    self._row(key, layer, values[0], index.size, ceilings, (values[1], values[2]))
                )
        return rows + heldout_layer_scores(rows)

    def _row(self, key, layer, value, n, ceilings, halves=None, extra=None) -> Score:
        subject, region = key
        return Score(
            subject=subject,
            region=region,
            layer=layer.name,
            value=value,
            n_neuroids=int(n),
            layer_index=layer.index,
            relative_depth=layer.relative_depth,
            ceiling=ceilings.get(key),
            halves=halves,
            extra=extra or {},
        )

    def _generalisation(
        self, features: FeatureSet, dataset: Dataset, targets: enc.Targets
    ) -> list[Score]:
        train, test = self.split(dataset, targets.stimulus_ids)
        if train.size < 3 or test.size < 3:
            raise InputError(
                "the generalisation mode needs at least 3 training and 3 test stimuli."
            )
        rows_all = enc.rows_for(features, targets)
        k = enc.dimension(self.parameters, int(train.size))
        Y = targets.values
        brain_train = {key: _rdm_or_nan(Y[train][:, index]) for key, index in targets.groups}
        brain_test = {key: _rdm_or_nan(Y[test][:, index]) for key, index in targets.groups}
        rows: list[Score] = []
        for layer in features:
            X = enc.design(layer, k, rows_all)
            if X is not None and np.ptp(X[train], axis=0).max() == 0:
                X = None
            if X is None:
                fitted = None
            else:
                fitted = self._ridge().fit(X[train], Y[train])
                predicted_test = fitted.predict(X[test])
            for key, index in targets.groups:
                if fitted is None:
                    train_value = test_value = float("nan")
                else:
                    train_value = self._compare(
                        fitted.result_.predictions[:, index], brain_train[key]
                    )
                    test_value = self._compare(predicted_test[:, index], brain_test[key])
                rows.append(
                    self._row(
                        key,
                        layer,
                        test_value,
                        index.size,
                        {},
                        extra={
                            "train": train_value,
                            "n_train": int(train.size),
                            "n_test": int(test.size),
                        },
                    )
                )
        return rows + generalisation_rows(rows)


def generalisation_rows(rows: list[Score], selection: str = "generalisation") -> list[Score]:
    """Per (subject, region): the layer with the best training score, with its test score."""
    best: dict[tuple[str, str], Score] = {}
    for row in rows:
        train = row.extra.get("train")
        if row.selection != "layer" or train is None or not np.isfinite(train):
            continue
        key = (row.subject, row.region)
        if key not in best or train > best[key].extra["train"]:
            best[key] = row
    return [dataclasses.replace(r, selection=selection, extra=dict(r.extra)) for r in best.values()]


@hookimpl
def brainrank_metrics() -> list[MetricSpec]:
    meta = MetricMetadata(
        DESCRIPTION, needs="responses", citation="Conwell, Prince, Alvarez & Konkle"
    )
    return [
        MetricSpec("versa", VERSA, meta),
        MetricSpec(
            "versa:generalisation",
            lambda **p: _named(VERSA(**{"mode": "generalisation", **p}), "versa:generalisation"),
            meta,
        ),
    ]


def _named(metric: VERSA, identifier: str) -> VERSA:
    metric.identifier = identifier
    return metric
