"""``srp-ridge``: sparse random projection + leave-one-out ridge (Conwell et al. 2021).

Per layer, the features are projected to k dimensions with a very sparse random
projection (the Johnson-Lindenstrauss dimension for the number of stimuli at eps = 0.1 by
default; 4096 in the mouse protocol; layers with at most k features are used as they are).
A ridge regression from those features to every neuroid is fitted with exact
leave-one-out cross-validation; the score of a neuroid is the Pearson r between its LOO
predictions and its trial-averaged responses, and the score of a (subject, region) is the
mean over its neuroids, stored raw and divided by the dataset's encoding ceiling.

Summary rows: ``max`` (the best layer, "SRP-Ridge Max" of the seed papers) and
``heldout`` (the layer chosen on one half of the stimuli, scored on the other, both ways),
so that the optimism of the max is visible.

Parameters: ``n_components`` ("jl" or an integer), ``eps``, ``alphas`` (one value for a
fixed penalty or a grid; default 10^-2 .. 10^8), ``alpha_scoring``: how each neuroid's
alpha is chosen from the grid, ``"pearson"`` (default: the highest LOO Pearson r) or
``"mse"`` (the lowest LOO error, as scikit-learn's RidgeCV).

Why Pearson by default: with an intercept re-estimated in every fold, a strongly
regularised model predicts each held-out stimulus with the mean of the others, which is
perfectly *anti*-correlated with the response (r -> -1). Choosing alpha by LOO error picks
that model for every neuroid the features cannot predict, and the region's mean r then
reports large negative values that say more about the estimator than about the features.
Choosing by r keeps such neuroids near 0; its own small optimism (a max over correlated
alphas) is the same for every model. A layer whose features are constant across stimuli
(e.g. a zero-initialised batch norm of a random network) predicts nothing: its score is NaN.

Presets: ``srp-ridge:mouse`` (k = 4096, alpha = 1, as Conwell et al. 2021) and
``srp-ridge:nsd`` (k = JL dimension at eps 0.1, alpha = 1e5, as Conwell et al.'s NSD work).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from brainrank.core.registry import hookimpl
from brainrank.core.ridge import RidgeCV
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

DESCRIPTION = "sparse random projection + leave-one-out ridge; mean Pearson r per region"


class SRPRidge(Metric):
    identifier = "srp-ridge"
    version = "2"
    needs = "responses"

    def __init__(
        self,
        n_components: int | str = "jl",
        eps: float = 0.1,
        alphas: Any = None,
        alpha_scoring: str = "pearson",
        backend: str = "numpy",
    ):
        alphas = enc.check_encoding_parameters(n_components, alphas, alpha_scoring)
        super().__init__(
            n_components=n_components, eps=float(eps), alphas=alphas, alpha_scoring=alpha_scoring
        )
        self.backend = backend

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        k = enc.dimension(self.parameters, enc.n_stimuli(dataset))
        return FeatureRequest(projection_dims=frozenset({k}))

    def per_neuroid(self, features: FeatureSet, targets: enc.Targets):
        """Yield ``(layer, r, alphas, predictions)`` per layer (None for constant layers)."""
        rows = enc.rows_for(features, targets)
        k = enc.dimension(self.parameters, len(targets.stimulus_ids))
        ridge = RidgeCV(
            self.parameters["alphas"],
            scoring=self.parameters["alpha_scoring"],
            backend=self.backend,
        )
        for layer in features:
            X = enc.design(layer, k, rows)
            if X is None:
                yield layer, None, None, None
                continue
            result = ridge.fit(X, targets.values).result_
            yield layer, result.scores, result.alphas, result.predictions

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        targets = enc.Targets.of(dataset)
        ceilings = dataset.ceiling("encoding")
        half_a, half_b = split_halves(len(targets.stimulus_ids), enc.SPLIT_SEED)
        rows: list[Score] = []
        for layer, r, alphas, predictions in self.per_neuroid(features, targets):
            if r is None:
                r = np.full(targets.values.shape[1], np.nan)
                r_a = r_b = r
                alphas = r
            else:
                r_a = enc.column_r(predictions[half_a], targets.values[half_a])
                r_b = enc.column_r(predictions[half_b], targets.values[half_b])
            for (subject, region), index in targets.groups:
                value, n = enc.group_mean(r, index)
                rows.append(
                    Score(
                        subject=subject,
                        region=region,
                        layer=layer.name,
                        value=value,
                        n_neuroids=n,
                        layer_index=layer.index,
                        relative_depth=layer.relative_depth,
                        ceiling=ceilings.get((subject, region)),
                        per_neuroid=r[index].astype(np.float32),
                        neuroid_ids=tuple(targets.neuroid_ids[index]),
                        halves=(enc.group_mean(r_a, index)[0], enc.group_mean(r_b, index)[0]),
                        extra={"median_alpha": _median(alphas[index])},
                    )
                )
        return rows + heldout_layer_scores(rows)


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


PRESETS = {
    "srp-ridge": {},
    "srp-ridge:mouse": {"n_components": 4096, "alphas": [1.0]},
    "srp-ridge:nsd": {"n_components": "jl", "eps": 0.1, "alphas": [1e5]},
}


def _build(identifier: str, preset: dict[str, Any], **parameters: Any) -> SRPRidge:
    metric = SRPRidge(**{**preset, **parameters})
    metric.identifier = identifier  # a preset is its own metric on the leaderboard
    return metric


@hookimpl
def brainrank_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            identifier,
            partial(_build, identifier, preset),
            MetricMetadata(
                DESCRIPTION + (f" (preset: {preset})" if preset else ""),
                needs="responses",
                citation="Conwell et al. 2021, NeurIPS",
            ),
        )
        for identifier, preset in PRESETS.items()
    ]
