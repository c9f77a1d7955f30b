"""``stacking``: stacked voxelwise encoding models (Lin, Wang, Tarr & Wehbe).

One ridge model per feature space (by default every layer of the model; ``layers`` names a
subset), then, per neuroid, a convex combination of their predictions: weights >= 0 that
sum to 1, fitted on the leave-one-out predictions of the training stimuli and evaluated on
test stimuli that neither the ridge models nor the weights saw (a seeded half split, or the
dataset's own ``train_test_split()``).

Scores: each layer alone on the test stimuli (``selection="layer"``, so ``max`` is the best
single layer) and the stacked model (``selection="stacked"``, ``layer="stacked"``). A
neuroid's score is the stacked R, the signed square root of the test R^2
(``sign(R^2) sqrt(|R^2|)``); a region's score is the mean over its neuroids. The stacked row
carries the weights averaged over the region's neuroids in ``extra["weights"]`` (layer ->
mean weight) and the per-neuroid stacked R.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainrank.core.errors import InputError
from brainrank.core.registry import hookimpl
from brainrank.core.ridge import RidgeCV
from brainrank.core.stacking import stack_weights
from brainrank.core.types import (
    Dataset,
    FeatureRequest,
    FeatureSet,
    Metric,
    MetricMetadata,
    MetricSpec,
    Score,
)
from brainrank.plugins.metrics import _encoding as enc

DESCRIPTION = "stacked encoding: convex per-neuroid combination of the layers' ridge predictions"


def signed_r(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Per column, sign(R^2) sqrt(|R^2|) of ``predicted`` for ``measured``."""
    measured = np.asarray(measured, dtype=np.float64)
    sse = ((measured - predicted) ** 2).sum(0)
    sst = ((measured - measured.mean(0)) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - sse / sst
    return np.sign(r2) * np.sqrt(np.abs(r2))


class Stacking(Metric):
    identifier = "stacking"
    version = "1"
    needs = "responses"

    def __init__(
        self,
        n_components: int | str = "jl",
        eps: float = 0.1,
        alphas: Any = None,
        alpha_scoring: str = "mse",
        layers: list[str] | None = None,
        neuroid_batch: int = 2000,
    ):
        alphas = enc.check_encoding_parameters(n_components, alphas, alpha_scoring)
        super().__init__(
            n_components=n_components,
            eps=float(eps),
            alphas=alphas,
            alpha_scoring=alpha_scoring,
            layers=list(layers) if layers else None,
        )
        self.neuroid_batch = int(neuroid_batch)

    def split(self, dataset: Dataset, stimulus_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return enc.train_test_split(dataset, stimulus_ids)

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        train, _ = self.split(dataset, enc.Targets.of(dataset).stimulus_ids)
        return FeatureRequest(
            projection_dims=frozenset({enc.dimension(self.parameters, int(train.size))})
        )

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        targets = enc.Targets.of(dataset)
        train, test = self.split(dataset, targets.stimulus_ids)
        if train.size < 4 or test.size < 3:
            raise InputError("stacking needs at least 4 training and 3 test stimuli.")
        rows_all = enc.rows_for(features, targets)
        k = enc.dimension(self.parameters, int(train.size))
        Y = targets.values
        wanted = self.parameters["layers"]
        layers = [layer for layer in features if wanted is None or layer.name in wanted]
        if wanted is not None and len(layers) != len(set(wanted)):
            missing = sorted(set(wanted) - {layer.name for layer in layers})
            raise InputError(f"model {features.model!r} has no layers {missing}.")
        loo_train, test_pred, used = [], [], []
        rows: list[Score] = []
        for layer in layers:
            X = enc.design(layer, k, rows_all)
            if X is None or np.ptp(X[train], axis=0).max() == 0:
                continue  # a constant feature space predicts nothing and gets no weight
            ridge = RidgeCV(self.parameters["alphas"], scoring=self.parameters["alpha_scoring"])
            fitted = ridge.fit(X[train], Y[train])
            loo_train.append(fitted.result_.predictions.astype(np.float32))
            predicted = fitted.predict(X[test]).astype(np.float32)
            test_pred.append(predicted)
            used.append(layer)
            r = signed_r(predicted, Y[test])
            for key, index in targets.groups:
                value, n = enc.group_mean(r, index)
                rows.append(self._row(key, layer.name, value, n, r[index], targets, index, layer))
        if not used:
            return rows
        P_train = np.stack(loo_train)  # (L, n_train, v)
        P_test = np.stack(test_pred)  # (L, n_test, v)
        v = Y.shape[1]
        weights = np.empty((v, len(used)))
        for start in range(0, v, self.neuroid_batch):
            cols = slice(start, min(v, start + self.neuroid_batch))
            weights[cols] = stack_weights(P_train[:, :, cols], Y[train][:, cols]).weights
        stacked = np.einsum("lnv,vl->nv", P_test, weights)
        r = signed_r(stacked, Y[test])
        names = [layer.name for layer in used]
        for key, index in targets.groups:
            value, n = enc.group_mean(r, index)
            mean_weights = weights[index].mean(axis=0)
            row = self._row(key, "stacked", value, n, r[index], targets, index, None)
            row.selection = "stacked"
            row.extra = {
                "weights": dict(zip(names, mean_weights.round(6).tolist(), strict=True)),
                "top_layer": names[int(np.argmax(mean_weights))],
                "n_train": int(train.size),
                "n_test": int(test.size),
            }
            rows.append(row)
        return rows

    def _row(self, key, layer_name, value, n, per_neuroid, targets, index, layer) -> Score:
        subject, region = key
        return Score(
            subject=subject,
            region=region,
            layer=layer_name,
            value=value,
            n_neuroids=n,
            layer_index=layer.index if layer is not None else None,
            relative_depth=layer.relative_depth if layer is not None else None,
            per_neuroid=per_neuroid.astype(np.float32),
            neuroid_ids=tuple(targets.neuroid_ids[index]),
        )


@hookimpl
def brainrank_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            "stacking",
            Stacking,
            MetricMetadata(DESCRIPTION, needs="responses", citation="Lin, Wang, Tarr & Wehbe"),
        )
    ]
