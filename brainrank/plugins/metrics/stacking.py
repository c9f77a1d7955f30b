"""``stacking``: stacked voxelwise encoding models (Lin, Wang, Tarr & Wehbe).

One ridge model per feature space (by default every layer of the model; ``layers`` names a
subset), then, per neuroid, a convex combination of their predictions: weights >= 0 that
sum to 1, fitted on the leave-one-out predictions of the training stimuli and evaluated on
test stimuli that neither the ridge models nor the weights saw (a seeded half split, or the
dataset's own ``train_test_split()``).

Score (``value``, ``per_neuroid``): the Pearson r between each neuroid's predicted and
measured responses on the test stimuli ("model performances are reported as correlations
between predicted responses and true responses", the paper's Methods), averaged over a
region's neuroids. The predictions never saw the test responses, so on pure noise its
expectation is 0 for any features.

R^2 is reported too: ``extra["r2"]``, the region's mean test coefficient of determination
``1 - sum((y - yhat)^2) / sum((y - mean_test(y))^2)`` (0: no better than the test mean),
and ``extra["R"]``, the paper's "R, the square root of the coefficient of determination",
defined as ``sqrt(mean R^2)`` when the mean is positive and 0 otherwise (the sign lives in
``r2``). Version 1 scored the mean of per-neuroid signed roots ``sign(R^2) sqrt(|R^2|)``:
a root magnifies values near 0 (R^2 = -0.0025 becomes R = -0.05), so noise neuroids, whose
test R^2 is negative (the training mean misses the test mean: E[R^2] is about
-(1/n_train + 1/n_test) from the intercept alone, more with the fit's variance, which
depends on the features), turned into a large negative R (-0.25 for 40 noise neuroids in
the tests). R^2 is therefore not the headline: its null value is negative and
feature-dependent.

Rows: each layer alone on the test stimuli (``selection="layer"``); the stacked model
(``selection="stacked"``, ``layer="stacked"``, with the region's mean weights in
``extra["weights"]``); and ``selection="max"``: per region, the layer with the highest mean
leave-one-out R^2 *on the training stimuli*, scored on the test stimuli (the layer is never
chosen on the test stimuli it is scored on; ``extra["chosen_by"]`` says so).

Device: the run settings ``device`` and ``backend`` (see ``_encoding``) run the ridge
models, the stacking iterations and the Pearson reductions with torch on that device; they
are not part of the configuration hash.

Needs at least 4 training and 3 test stimuli: with the seeded half split, 8 stimuli
(``check_applicable`` refuses smaller datasets before any feature is extracted).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from brainrank.core.ridge import RidgeCV
from brainrank.core.stacking import stack_weights
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
    ceiling_fields,
    hookimpl,
)
from brainrank.plugins.metrics import _encoding as enc

DESCRIPTION = "stacked encoding: convex per-neuroid combination of the layers' ridge predictions"


MIN_TRAIN, MIN_TEST = 4, 3


def r_squared(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Per column, the coefficient of determination of ``predicted`` for ``measured``:
    ``1 - SSE / SST`` with SST around the mean of ``measured`` (NaN for a constant column)."""
    measured = np.asarray(measured, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    sse = ((measured - predicted) ** 2).sum(0)
    sst = ((measured - measured.mean(0)) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), np.nan)


def signed_root(r2: float) -> float:
    """The paper's R of one (region-mean) R^2: ``sqrt(r2)`` when ``r2 > 0``, else 0 (a
    prediction no better than the test mean explains nothing; the sign is in R^2 itself).
    NaN stays NaN."""
    return float(np.sqrt(r2)) if r2 > 0 else (0.0 if np.isfinite(r2) else float("nan"))


def _r2_extra(r2: np.ndarray, index: np.ndarray) -> dict[str, float | None]:
    """``r2``: the region's mean test R^2; ``R``: :func:`signed_root` of it (JSON-safe)."""
    mean = enc.group_mean(r2, index)[0]
    root = signed_root(mean)
    return {
        "r2": mean if np.isfinite(mean) else None,
        "R": root if np.isfinite(root) else None,
    }


def signed_r(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Per column, sign(R^2) sqrt(|R^2|). Kept for callers of version 1; the metric itself
    reports R^2 (see the module docstring for why)."""
    r2 = r_squared(predicted, measured)
    return np.sign(r2) * np.sqrt(np.abs(r2))


class Stacking(enc.OnDevice, Metric):
    identifier = "stacking"
    headline = "stacked"  # the stacked model, weights fitted on the training stimuli
    version = "2"  # 1: mean signed root of R^2; 2: test Pearson r (R^2 in extra)
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

    def check_applicable(self, dataset: Dataset) -> None:
        super().check_applicable(dataset)
        n = enc.n_stimuli(dataset)
        # the dataset's own split, else the seeded half split (n // 2 training stimuli)
        train, test = self.split(dataset, enc.Targets.of(dataset).stimulus_ids)
        n_train, n_test = int(train.size), int(test.size)
        if n_train < MIN_TRAIN or n_test < MIN_TEST:
            raise NotApplicableError(
                f"metric {self.identifier!r} needs at least {MIN_TRAIN} training and {MIN_TEST} "
                f"test stimuli (with the half split: at least {2 * MIN_TRAIN} stimuli); dataset "
                f"{dataset.identifier!r} has {n} stimuli ({n_train} training, {n_test} test). "
                "Use a dataset with more stimuli."
            )

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        self.check_applicable(dataset)
        train, _ = self.split(dataset, enc.Targets.of(dataset).stimulus_ids)
        return FeatureRequest(
            projection_dims=frozenset({enc.dimension(self.parameters, int(train.size))})
        )

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        """Every row with the dataset's encoding ceiling (a per-neuroid test-set Pearson r
        averaged over the group, the unit of ``srp-ridge``)."""
        ceilings = dataset.ceiling_with_interval("encoding")
        return [
            dataclasses.replace(row, **ceiling_fields(ceilings, (row.subject, row.region)))
            for row in self._score(features, dataset)
        ]

    def _score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        targets = enc.Targets.of(dataset)
        train, test = self.split(dataset, targets.stimulus_ids)
        if train.size < MIN_TRAIN or test.size < MIN_TEST:
            raise NotApplicableError(
                f"stacking needs at least {MIN_TRAIN} training and {MIN_TEST} test stimuli; "
                f"got {train.size} and {test.size}."
            )
        rows_all = enc.rows_for(features, targets)
        k = enc.dimension(self.parameters, int(train.size))
        Y = targets.values
        wanted = self.parameters["layers"]
        layers = [layer for layer in features if wanted is None or layer.name in wanted]
        if wanted is not None and len(layers) != len(set(wanted)):
            missing = sorted(set(wanted) - {layer.name for layer in layers})
            raise InputError(f"model {features.model!r} has no layers {missing}.")
        kernels = self.array_backend()
        # Predictions are kept (float32, for memory) as deviations from the training mean:
        # a layer that barely varies predicts almost that mean everywhere, and in float32 its
        # spread would be rounding noise. The weights sum to 1, so the mean adds back exactly.
        centre = Y[train].astype(np.float64).mean(axis=0)
        loo_train, test_pred, used, train_r2 = [], [], [], []
        rows: list[Score] = []
        for layer in layers:
            X = enc.design(layer, k, rows_all)
            if X is None or np.ptp(X[train], axis=0).max() == 0:
                continue  # a constant feature space predicts nothing and gets no weight
            ridge = RidgeCV(
                self.parameters["alphas"],
                scoring=self.parameters["alpha_scoring"],
                **self.ridge_options(),
            )
            fitted = ridge.fit(X[train], Y[train])
            loo_train.append((fitted.result_.predictions - centre).astype(np.float32))
            train_r2.append(fitted.result_.r2)
            predicted = fitted.predict(X[test])  # float64: r and R^2 from these
            test_pred.append((predicted - centre).astype(np.float32))
            used.append(layer)
            r, r2 = enc.column_r(predicted, Y[test], kernels), r_squared(predicted, Y[test])
            for key, index in targets.groups:
                value, n = enc.group_mean(r, index)
                row = self._row(key, layer.name, value, n, r[index], targets, index, layer)
                row.extra = _r2_extra(r2, index)
                rows.append(row)
        if not used:
            return rows
        rows += self._max_rows(rows, np.stack(train_r2), used, targets)
        P_train = np.stack(loo_train)  # (L, n_train, v), minus the training mean
        P_test = np.stack(test_pred)  # (L, n_test, v), minus the training mean
        v = Y.shape[1]
        weights = np.empty((v, len(used)))
        for start in range(0, v, self.neuroid_batch):
            cols = slice(start, min(v, start + self.neuroid_batch))
            weights[cols] = stack_weights(
                P_train[:, :, cols], Y[train][:, cols] - centre[cols], backend=kernels
            ).weights
        stacked = np.einsum("lnv,vl->nv", P_test, weights) + centre
        r, r2 = enc.column_r(stacked, Y[test], kernels), r_squared(stacked, Y[test])
        names = [layer.name for layer in used]
        for key, index in targets.groups:
            value, n = enc.group_mean(r, index)
            mean_weights = weights[index].mean(axis=0)
            row = self._row(key, "stacked", value, n, r[index], targets, index, None)
            row.selection = "stacked"
            row.extra = {
                **_r2_extra(r2, index),
                "weights": dict(zip(names, mean_weights.round(6).tolist(), strict=True)),
                "top_layer": names[int(np.argmax(mean_weights))],
                "n_train": int(train.size),
                "n_test": int(test.size),
            }
            rows.append(row)
        return rows

    def _max_rows(self, rows, train_r2, used, targets) -> list[Score]:
        """Per region, the layer whose mean LOO R^2 on the training stimuli is highest,
        with its test score (the test stimuli play no part in the choice)."""
        out = []
        names = [layer.name for layer in used]
        for key, index in targets.groups:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                on_train = np.nanmean(train_r2[:, index], axis=1)
            if not np.isfinite(on_train).any():
                continue
            pick = names[int(np.nanargmax(on_train))]
            row = next(
                r for r in rows if r.selection == "layer" and r.layer == pick
                and (r.subject, r.region) == key
            )  # fmt: skip
            out.append(
                dataclasses.replace(
                    row,
                    selection="max",
                    extra={
                        **row.extra,
                        "chosen_by": "mean leave-one-out R^2 on the training stimuli",
                        "train_r2": float(np.nanmax(on_train)),
                    },
                )
            )
        return out

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
