"""``versa``: voxelwise-encoding RSA (veRSA; Conwell, Prince, Alvarez & Konkle).

Per layer, a ridge regression from the sparse random projection of the features (the
Johnson-Lindenstrauss dimension at eps 0.1 by default) predicts every neuroid of a region;
the RDM (1 - Pearson r between stimuli) of the region's *predicted* responses is compared
with the RDM of its measured, trial-averaged responses (Pearson r of the upper triangles by
default). The encoding step re-weights the features towards what the region encodes before
the geometry is compared.

No leak: a prediction never comes from a model that saw the stimulus' response
---------------------------------------------------------------------------------------
The paper's own procedure (Conwell et al., "What can 5.17 billion regression fits tell us
about artificial models of the human visual system?", SVRHM 2021, appendix A.4) takes the
*leave-one-out* ridge predictions of all 1000 stimuli and compares their RDM with the brain
RDM. That leaks: the LOO prediction of stimulus i is fitted on every other stimulus, and
with a strong penalty it tends to (sum(y) - y_i) / (n - 1), a mirror image of y_i, so the
RDM of the predictions mirrors the brain RDM whatever the features. Measured on
``simulated`` with features that carry nothing (constant plus 1e-6 noise), alpha 1e5: 0.242
(early) and 0.613 (late, 1.34x that region's RSA ceiling); the leak-free modes below give
about 0 on the same features (see ``tests/plugins/metrics/test_versa.py``). ``mode="loo"`` keeps
the paper's procedure for reproduction only.

Modes (``mode``):

- ``"crossfit"`` (default, brainrank's own variant): the stimuli are split into two halves
  (``split``: seeded random halves, or even/odd positions); a ridge fitted on one half
  (alpha per neuroid chosen by leave-one-out *within* that half) predicts the other half,
  and both ways. The predicted RDM of a half is compared with the brain RDM of that half
  only, so every compared pair of stimuli was predicted by a model that saw neither. The
  per-layer value is the mean of the two halves' scores (``halves`` holds both); summary
  rows: ``heldout`` (layer chosen on one half's score, scored on the other, both ways) and
  the runner's ``max``. Why two halves and not K folds with the full RDM: a pair of
  stimuli in different folds is compared through a model that saw one of the two
  responses, which is again a (diluted) leak; pairs within a fold are clean, and halves
  keep the most clean pairs for a given training size.
- ``"generalisation"``: fit on training stimuli, score on test stimuli. The split is the
  dataset's own :meth:`~brainrank.core.dataset.Dataset.train_test_split` when it defines
  one and ``dataset_split`` is true (NSD's ``nsd/generalisation:subjXX``: the shared 1000
  images for training, 1000 of that subject's other images for testing, as the paper's
  generalisation test), else ``split`` over the dataset's stimuli. The ridge (weights,
  intercept, per-neuroid alpha by leave-one-out) is fitted on the training stimuli only and
  applied to the test stimuli; each layer row holds the test score, with the training score
  in ``extra["train"]``: a cross-fitted score (as ``"crossfit"``) within the training
  stimuli, so that the layer choice is itself leak-free. The ``generalisation`` summary row
  is the layer with the best training score, scored on the test stimuli.
- ``"loo"``: the paper's leave-one-out veRSA on all stimuli. **It leaks** (see above): the
  numbers reproduce the paper's procedure and are not comparable with the other modes.

Parameters: ``n_components`` ("jl" or an integer), ``eps``, ``alphas`` (a grid, default
10^-2 .. 10^8, or one value), ``alpha_scoring`` (``"pearson"``: each neuroid's alpha by its
highest leave-one-out Pearson r within the training stimuli, or ``"mse"``), ``comparison``
(``pearson``, ``spearman``, ``kendall_tau_a``), ``mode``, ``split`` (``"halves"`` or
``"even-odd"``), ``dataset_split`` (use the dataset's own split in ``"generalisation"``
mode), ``standardize`` (z-score every projected feature with the mean and SD of the
training stimuli before the ridge, as scikit-learn's ``StandardScaler`` fitted on them).
The JL dimension is computed for all the dataset's stimuli, or for its training stimuli
when the dataset's own split is used (the paper: 1000 training images).

Device: the run settings ``device`` and ``backend`` (see ``_encoding``; not part of the
configuration hash) run the ridge (factorisation, leave-one-out alpha choice and the
predictions) with torch on that device; the RDMs of the predictions are computed on the
host.

Presets
-------
``versa:nsd``: the protocol of the NSD authors' code, repository ``ColinConwell/DeepNSD``,
file ``source_code/pressures/main_analysis.py`` (``run_benchmarking``, ``get_splithalf_xy``,
``get_results_max``), with ``ridge_gcv_mod.py`` (``RidgeCVMod``),
``model_opts/feature_reduction.py`` (``srp_extraction``) and
``model_opts/mapping_methods.py`` (``compare_rdms``):

- projection: sparse random projection to the JL dimension of all the stimuli at eps 0.1
  (5920 for 1000 images; the 2021 paper states 5960), seed fixed;
- split: even stimulus positions train, odd positions test (500/500 on shared1000);
- standardisation: each projected feature z-scored with the training images' mean and SD
  (``StandardScaler`` fitted on the training rows, applied to the test rows);
- ridge with intercept; alpha per voxel from 0.1, 1, ..., 1e5 (``np.logspace(-1, 5, 7)``),
  chosen by the leave-one-out Pearson r on the training images;
- test predictions from the training fit; RDMs 1 - Pearson r, compared by Pearson r of the
  upper triangles, per subject and ROI;
- layer: the one with the best training score, reported with its test score
  (``get_results_max``).

Not followed: DeepNSD's ``main_analysis.py`` scores only the deeper half of each model's
layers (``layer_subset = model_layer_names[int(len(model_layer_names) / 2):]``) because its
target there is occipitotemporal cortex; ``versa:nsd`` scores every layer, since the NSD
ROIs here include early visual cortex (the 2021 paper's Figure 1 finds early layers best
there).

Where DeepNSD leaks and brainrank does not: its training score is the RDM of the
*leave-one-out* predictions of the training images (the leak above), used to choose the
layer. ``versa:nsd`` computes the training score cross-fitted within the training images
instead (each half of them predicted by a model fitted on the other half); the test score
is DeepNSD's, which is leak-free. The 2021 paper's own settings (LOO over all 1000 images,
alpha fixed at 1e5, 5960 projections) leak and are available only as
``mode="loo", alphas=[1e5]``.

``versa:generalisation``: ``mode="generalisation"`` with the defaults above; on
``nsd/generalisation:subjXX`` it is the paper's generalisation test (weights fitted on the
shared images, applied to the subject's new images, layer chosen on the shared images).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import numpy as np

from brainrank.core.ridge import RidgeCV
from brainrank.core.rsa import COMPARISONS, compare, rdm
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

DESCRIPTION = "voxelwise-encoding RSA: RDM of ridge-predicted responses vs the brain RDM"
MODES = ("crossfit", "generalisation", "loo")
SPLITS = ("halves", "even-odd")
#: DeepNSD's alpha grid, ``np.logspace(-1, 5, 7)``
NSD_ALPHAS = [0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5]


def _rdm_or_nan(values: np.ndarray) -> np.ndarray | None:
    """Correlation-distance RDM, or None when a stimulus' pattern is constant."""
    out = rdm(values, dtype="float64")
    return None if np.isnan(out).any() else out


def fold_positions(n: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of ``range(n)``: seeded random halves or even/odd positions."""
    if split == "even-odd":
        return np.arange(0, n, 2), np.arange(1, n, 2)
    return split_halves(n, enc.SPLIT_SEED)


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-score columns with the mean and SD of ``train`` (SD 0 -> 1, as StandardScaler)."""
    mean = train.mean(axis=0, dtype=np.float64)
    sd = train.std(axis=0, dtype=np.float64)
    sd[~(sd > 0)] = 1.0
    return (train - mean) / sd, (test - mean) / sd


class VERSA(enc.OnDevice, Metric):
    identifier = "versa"
    version = "2"
    needs = "responses"

    @property
    def headline(self) -> str:  # type: ignore[override]
        """``generalisation`` (layer chosen on the training stimuli, scored on the test
        stimuli) in that mode, else ``heldout``."""
        return "generalisation" if self.parameters["mode"] == "generalisation" else "heldout"

    @property
    def calibrated(self) -> bool:  # type: ignore[override]
        """Not in the paper's ``loo`` mode, whose predictions carry the held-out response
        (+0.55 on pure noise at alpha 1e5; module docstring)."""
        return self.parameters["mode"] != "loo"

    def __init__(
        self,
        n_components: int | str = "jl",
        eps: float = 0.1,
        alphas: Any = None,
        alpha_scoring: str = "pearson",
        comparison: str = "pearson",
        mode: str = "crossfit",
        split: str = "halves",
        dataset_split: bool = True,
        standardize: bool = False,
    ):
        alphas = enc.check_encoding_parameters(n_components, alphas, alpha_scoring)
        if comparison not in COMPARISONS:
            raise InputError(f"comparison must be one of {COMPARISONS}, got {comparison!r}.")
        if mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {mode!r}.")
        if split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}, got {split!r}.")
        super().__init__(
            n_components=n_components,
            eps=float(eps),
            alphas=alphas,
            alpha_scoring=alpha_scoring,
            comparison=comparison,
            mode=mode,
            split=split,
            dataset_split=bool(dataset_split),
            standardize=bool(standardize),
        )

    # ------------------------------------------------------------------ splits

    def own_split(
        self, dataset: Dataset, stimulus_ids: list[str]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Positions of the dataset's own training and test stimuli within
        ``stimulus_ids``, or None when it has no split (or ``dataset_split`` is off)."""
        if not self.parameters["dataset_split"]:
            return None
        return enc.dataset_split(dataset, stimulus_ids)

    def train_test(self, dataset: Dataset, stimulus_ids: list[str]):
        """``(train, test, source)``: positions and where the split came from."""
        own = self.own_split(dataset, stimulus_ids)
        if own is not None:
            return own[0], own[1], "dataset"
        train, test = fold_positions(len(stimulus_ids), self.parameters["split"])
        return train, test, self.parameters["split"]

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        n = enc.n_stimuli(dataset)
        if self.parameters["mode"] == "generalisation":
            own = self.own_split(dataset, enc.Targets.of(dataset).stimulus_ids)
            if own is not None:
                n = int(own[0].size)
        return FeatureRequest(projection_dims=frozenset({enc.dimension(self.parameters, n)}))

    # ------------------------------------------------------------------ fitting

    def _ridge(self) -> RidgeCV:
        return RidgeCV(
            self.parameters["alphas"],
            scoring=self.parameters["alpha_scoring"],
            **self.ridge_options(),
        )

    def fit_predict(
        self, X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray
    ) -> np.ndarray | None:
        """Ridge fitted on the training rows only (alpha per neuroid by LOO within them),
        predictions for the test rows; None when the training features are constant."""
        if X_train.shape[0] < 3:
            raise InputError(
                f"veRSA needs at least 3 training stimuli per fit; got {X_train.shape[0]}."
            )
        if np.ptp(X_train, axis=0).max() == 0:
            return None
        if self.parameters["standardize"]:
            X_train, X_test = standardise(X_train, X_test)
        return self._ridge().fit(X_train, Y_train, return_predictions=False).predict(X_test)

    def heldout_predictions(
        self, X: np.ndarray, Y: np.ndarray, folds: tuple[np.ndarray, ...]
    ) -> np.ndarray | None:
        """Predictions of every row, each fold's from a ridge fitted on the other folds."""
        out = np.empty(Y.shape, dtype=np.float64)
        everything = np.arange(X.shape[0])
        for fold in folds:
            rest = np.setdiff1d(everything, fold)
            predicted = self.fit_predict(X[rest], Y[rest], X[fold])
            if predicted is None:
                return None
            out[fold] = predicted
        return out

    def _compare(self, predicted: np.ndarray, brain_rdm: np.ndarray | None) -> float:
        if brain_rdm is None:
            return float("nan")
        model_rdm = _rdm_or_nan(predicted)
        if model_rdm is None:
            return float("nan")
        return float(compare(model_rdm, brain_rdm, self.parameters["comparison"]))

    def _brain_rdms(self, Y: np.ndarray, targets: enc.Targets, subsets: dict[str, Any]):
        return {
            key: {
                part: _rdm_or_nan(Y[subset][:, index]) if index.size > 1 else None
                for part, subset in subsets.items()
            }
            for key, index in targets.groups
        }

    # ------------------------------------------------------------------ scoring

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        targets = enc.Targets.of(dataset)
        mode = self.parameters["mode"]
        if mode == "generalisation":
            return self._generalisation(features, dataset, targets)
        if mode == "loo":
            return self._loo(features, dataset, targets)
        return self._crossfit(features, dataset, targets)

    def _crossfit(self, features: FeatureSet, dataset: Dataset, targets: enc.Targets):
        n = len(targets.stimulus_ids)
        if n < 6:
            raise InputError(f"veRSA needs at least 6 stimuli (two halves of 3); got {n}.")
        rows_all = enc.rows_for(features, targets)
        k = enc.dimension(self.parameters, n)
        half_a, half_b = fold_positions(n, self.parameters["split"])
        Y = targets.values
        brain = self._brain_rdms(Y, targets, {"a": half_a, "b": half_b})
        pearson = self.parameters["comparison"] == "pearson"
        ceilings = dataset.ceiling_with_interval("rsa") if pearson else {}
        rows: list[Score] = []
        for layer in features:
            X = enc.design(layer, k, rows_all)
            P = None if X is None else self.heldout_predictions(X, Y, (half_a, half_b))
            for key, index in targets.groups:
                if P is None:
                    a = b = float("nan")
                else:
                    a = self._compare(P[half_a][:, index], brain[key]["a"])
                    b = self._compare(P[half_b][:, index], brain[key]["b"])
                value = float(np.mean([a, b]))
                extra = {"split": self.parameters["split"], "n_folds": 2}
                rows.append(self._row(key, layer, value, index.size, ceilings, (a, b), extra))
        return rows + heldout_layer_scores(rows)

    def _loo(self, features: FeatureSet, dataset: Dataset, targets: enc.Targets):
        """The paper's leave-one-out veRSA: leaks (see the module docstring)."""
        rows_all = enc.rows_for(features, targets)
        k = enc.dimension(self.parameters, len(targets.stimulus_ids))
        half_a, half_b = split_halves(len(targets.stimulus_ids), enc.SPLIT_SEED)
        Y = targets.values
        brain = self._brain_rdms(Y, targets, {"all": slice(None), "a": half_a, "b": half_b})
        pearson = self.parameters["comparison"] == "pearson"
        ceilings = dataset.ceiling_with_interval("rsa") if pearson else {}
        ridge = self._ridge()
        rows: list[Score] = []
        for layer in features:
            X = enc.design(layer, k, rows_all)
            if X is not None and self.parameters["standardize"]:
                X = standardise(X, X[:1])[0]
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
                    self._row(
                        key, layer, values[0], index.size, ceilings, values[1:], {"leaks": True}
                    )
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
            **ceiling_fields(ceilings, key),
            halves=None if halves is None else tuple(halves),
            extra=extra or {},
        )

    def _generalisation(
        self, features: FeatureSet, dataset: Dataset, targets: enc.Targets
    ) -> list[Score]:
        train, test, source = self.train_test(dataset, targets.stimulus_ids)
        if train.size < 6 or test.size < 3:
            raise InputError(
                f"the generalisation mode needs at least 6 training and 3 test stimuli; the "
                f"split of {dataset.identifier!r} has {train.size} and {test.size}."
            )
        rows_all = enc.rows_for(features, targets)
        n_dim = int(train.size) if source == "dataset" else len(targets.stimulus_ids)
        k = enc.dimension(self.parameters, n_dim)
        Y = targets.values
        inner_a, inner_b = fold_positions(int(train.size), self.parameters["split"])
        Y_train = Y[train]
        brain_train = self._brain_rdms(Y_train, targets, {"a": inner_a, "b": inner_b})
        brain_test = self._brain_rdms(Y, targets, {"test": test})
        rows: list[Score] = []
        for layer in features:
            X = enc.design(layer, k, rows_all)
            if X is None:
                P_test = P_inner = None
            else:
                P_test = self.fit_predict(X[train], Y_train, X[test])
                P_inner = self.heldout_predictions(X[train], Y_train, (inner_a, inner_b))
            for key, index in targets.groups:
                if P_inner is None:
                    train_value = float("nan")
                else:
                    train_value = float(
                        np.mean(
                            [
                                self._compare(P_inner[inner_a][:, index], brain_train[key]["a"]),
                                self._compare(P_inner[inner_b][:, index], brain_train[key]["b"]),
                            ]
                        )
                    )
                test_value = (
                    float("nan")
                    if P_test is None
                    else self._compare(P_test[:, index], brain_test[key]["test"])
                )
                extra = {
                    "train": train_value,
                    "n_train": int(train.size),
                    "n_test": int(test.size),
                    "split": source,
                }
                rows.append(self._row(key, layer, test_value, index.size, {}, extra=extra))
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


PRESETS: dict[str, dict[str, Any]] = {
    "versa": {},
    "versa:generalisation": {"mode": "generalisation"},
    "versa:nsd": {
        "n_components": "jl",
        "eps": 0.1,
        "alphas": NSD_ALPHAS,
        "alpha_scoring": "pearson",
        "comparison": "pearson",
        "mode": "generalisation",
        "split": "even-odd",
        "dataset_split": True,
        "standardize": True,
    },
}


def _build(identifier: str, preset: dict[str, Any], **parameters: Any) -> VERSA:
    metric = VERSA(**{**preset, **parameters})
    metric.identifier = identifier  # a preset is its own metric on the leaderboard
    return metric


@hookimpl
def brainrank_metrics() -> list[MetricSpec]:
    citation = "Conwell, Prince, Alvarez & Konkle (SVRHM 2021); code: ColinConwell/DeepNSD"
    return [
        MetricSpec(
            identifier,
            partial(_build, identifier, preset),
            MetricMetadata(
                DESCRIPTION + (f" (preset: {preset})" if preset else ""),
                needs="responses",
                citation=citation,
            ),
        )
        for identifier, preset in PRESETS.items()
    ]
