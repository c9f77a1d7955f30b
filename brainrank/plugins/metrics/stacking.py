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

Per-neuroid weights (``selection="weight"``, ``layer``: the layer or space): one row per
(subject, region) and feature space, its ``value`` the region's mean weight and its
``per_neuroid`` every neuroid's weight (the stacking paper plots them voxel by voxel). They
are stored as every per-neuroid array is, one float32 array per row beside the per-layer
rows' r values, so they cost what those cost: measured on NSD-sized data (40,000 voxels,
30 layers, SQLite) in ``bench/stacking_storage.py``.

**Feature spaces of several models** (``spaces``; on the command line ``--spaces``): the
feature spaces are then layers of several models (``MODEL:LAYER``, ``MODEL:PATTERN`` for every
matching layer, or ``MODEL`` for the model's best layer, chosen per region on the training
stimuli only; :mod:`brainrank.core.spaces`), one ridge model each, stacked per neuroid as
above; the combination is one leaderboard model, ``stack/<hash>``. Its rows name spaces by
their labels (``layer`` rows: each space alone on the test stimuli, ``layer_index`` its
position in the combination; ``weight`` rows; ``stacked`` with the region's mean weights per
space; ``max``: the space with the best training LOO R^2). The stacking paper's contrasts
(AlexNet and ResNet-50 trained on ImageNet vs Places365; Taskonomy 2D vs 3D edges) stack
every layer of both models together: ``--spaces 'torchvision/alexnet:*,torchvision/alexnet@places365:*'``.

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
from brainrank.core.spaces import canonical_texts
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
from brainrank.plugins.metrics import _spaces

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
    # 1: mean signed root of R^2; 2: test Pearson r (R^2 in extra); 3: per-neuroid weight
    # rows, feature spaces of several models
    version = "3"
    needs = "responses"
    takes_spaces = True

    def __init__(
        self,
        n_components: int | str = "jl",
        eps: float = 0.1,
        alphas: Any = None,
        alpha_scoring: str = "mse",
        layers: list[str] | None = None,
        neuroid_batch: int = 2000,
        spaces: Any = None,
    ):
        alphas = enc.check_encoding_parameters(n_components, alphas, alpha_scoring)
        texts = canonical_texts(spaces)
        if texts and layers:
            raise InputError(
                "stacking takes either layers (of each model scored) or spaces (of several "
                "models, MODEL:LAYER), not both."
            )
        super().__init__(
            n_components=n_components,
            eps=float(eps),
            alphas=alphas,
            alpha_scoring=alpha_scoring,
            layers=list(layers) if layers else None,
        )
        self._spaces = texts  # the scored model's identity (stack/<hash>), not a parameter
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
        weights = self._fit_weights(P_train, Y[train] - centre, kernels)
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
            for j, layer in enumerate(used):
                rows.append(self._weight_row(key, layer.name, weights[:, j], targets, index,
                                             (layer.index, layer.relative_depth)))  # fmt: skip
        return rows

    def _fit_weights(self, P_train, Y_train_centred, kernels) -> np.ndarray:
        """Per neuroid, the convex weights of the spaces (v, L), in batches of neuroids."""
        v = Y_train_centred.shape[1]
        weights = np.empty((v, P_train.shape[0]))
        for start in range(0, v, self.neuroid_batch):
            cols = slice(start, min(v, start + self.neuroid_batch))
            weights[cols] = stack_weights(
                P_train[:, :, cols], Y_train_centred[:, cols], backend=kernels
            ).weights
        return weights

    def _weight_row(self, key, name, weights, targets, index, position) -> Score:
        """The per-neuroid weights of one layer or space in one group."""
        values = weights[index]
        return Score(
            subject=key[0],
            region=key[1],
            layer=name,
            value=float(values.mean()) if values.size else float("nan"),
            n_neuroids=int(values.size),
            selection="weight",
            layer_index=position[0],
            relative_depth=position[1],
            per_neuroid=values.astype(np.float32),
            neuroid_ids=tuple(targets.neuroid_ids[index]),
            extra={"kind": "stacking weight (convex: a neuroid's weights sum to 1)"},
        )

    # ------------------------------------------------------------------ several models

    def score_spaces(self, spaces, dataset: Dataset) -> list[Score]:
        """The stacked model of feature spaces of several models (see the module
        docstring), every row with the dataset's encoding ceiling."""
        ceilings = dataset.ceiling_with_interval("encoding")
        return [
            dataclasses.replace(row, **ceiling_fields(ceilings, (row.subject, row.region)))
            for row in self._score_spaces(list(spaces), dataset)
        ]

    def _score_spaces(self, spaces, dataset: Dataset) -> list[Score]:
        if len(spaces) < 2:
            raise InputError(
                f"stacking of feature spaces needs at least 2 of them; the spaces "
                f"{', '.join(self.spaces)} give {len(spaces)}."
            )
        targets = enc.Targets.of(dataset)
        train, test = self.split(dataset, targets.stimulus_ids)
        k = enc.dimension(self.parameters, int(train.size))
        Y = targets.values
        kernels = self.array_backend()

        def ridge() -> RidgeCV:
            return RidgeCV(self.parameters["alphas"], scoring=self.parameters["alpha_scoring"],
                           **self.ridge_options())  # fmt: skip

        rows_of = {s.label: s.features.rows_for(targets.stimulus_ids) for s in spaces}
        plan = _spaces.plan_layers_per_space(spaces, k, rows_of, train, Y, targets.groups, ridge)
        centre = Y[train].astype(np.float64).mean(axis=0)
        v, m = Y.shape[1], len(spaces)
        # every (space, layer) some group uses, fitted on the neuroids of those groups
        users: dict[tuple[int, str], list[np.ndarray]] = {}
        for key, index in targets.groups:
            for i, name in enumerate(plan.layers[key]):
                users.setdefault((i, name), []).append(index)
        loo = {i: np.zeros((train.size, v), np.float32) for i in range(m)}
        held = {i: np.zeros((test.size, v), np.float32) for i in range(m)}
        train_r2 = np.full((m, v), np.nan)
        test_r = np.full((m, v), np.nan)
        test_r2 = np.full((m, v), np.nan)
        for (i, name), parts in users.items():
            cols = np.sort(np.concatenate(parts))
            X = _spaces.design(spaces[i], name, k, rows_of[spaces[i].label])
            fitted = ridge().fit(X[train], Y[train][:, cols])
            loo[i][:, cols] = fitted.result_.predictions - centre[cols]
            train_r2[i, cols] = fitted.result_.r2
            predicted = fitted.predict(X[test])
            held[i][:, cols] = predicted - centre[cols]
            test_r[i, cols] = enc.column_r(predicted, Y[test][:, cols], kernels)
            test_r2[i, cols] = r_squared(predicted, Y[test][:, cols])
        P_train = np.stack([loo[i] for i in range(m)])  # (m, n_train, v), minus the mean
        P_test = np.stack([held[i] for i in range(m)])
        weights = self._fit_weights(P_train, Y[train] - centre, kernels)
        stacked = np.einsum("lnv,vl->nv", P_test, weights) + centre
        r, r2 = enc.column_r(stacked, Y[test], kernels), r_squared(stacked, Y[test])
        labels = [s.label for s in spaces]
        rows: list[Score] = []
        for key, index in targets.groups:
            extra = _spaces.space_extra(plan, key, spaces)
            layer_rows = []
            for i, space in enumerate(spaces):
                name = plan.layers[key][i]
                value, n = enc.group_mean(test_r[i], index)
                position = _spaces.space_position(space, name)
                row = self._row(key, space.label, value, n, test_r[i][index], targets, index,
                                None)  # fmt: skip
                row.layer_index, row.relative_depth = i, position[1]
                row.extra = {**_r2_extra(test_r2[i], index), "space": space.label,
                             "model": space.model, "layer": name,
                             "layer_index_in_model": position[0]}  # fmt: skip
                layer_rows.append(row)
                weight = self._weight_row(key, space.label, weights[:, i], targets, index,
                                          (i, position[1]))  # fmt: skip
                weight.extra = {**weight.extra, "model": space.model, "layer": name}
                rows.append(weight)
            rows += layer_rows
            on_train = [enc.group_mean(train_r2[i], index)[0] for i in range(m)]
            if np.isfinite(on_train).any():
                best = int(np.nanargmax(on_train))
                rows.append(dataclasses.replace(
                    layer_rows[best], selection="max",
                    extra={**layer_rows[best].extra,
                           "chosen_by": "mean leave-one-out R^2 on the training stimuli",
                           "train_r2": float(on_train[best])},
                ))  # fmt: skip
            value, n = enc.group_mean(r, index)
            mean_weights = weights[index].mean(axis=0)
            row = self._row(key, "stacked", value, n, r[index], targets, index, None)
            row.selection = "stacked"
            row.extra = {
                **_r2_extra(r2, index),
                **extra,
                "weights": dict(zip(labels, mean_weights.round(6).tolist(), strict=True)),
                "model_weights": _by_model(spaces, mean_weights),
                "top_layer": labels[int(np.argmax(mean_weights))],
                "spaces": labels,
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


def _by_model(spaces, mean_weights: np.ndarray) -> dict[str, float]:
    """The summed mean weight of every model's spaces (how much the stacked model draws on
    each model's features)."""
    out: dict[str, float] = {}
    for space, w in zip(spaces, mean_weights, strict=True):
        out[space.model] = round(out.get(space.model, 0.0) + float(w), 6)
    return out


@hookimpl
def brainrank_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            "stacking",
            Stacking,
            MetricMetadata(DESCRIPTION, needs="responses", citation="Lin, Wang, Tarr & Wehbe"),
        )
    ]
