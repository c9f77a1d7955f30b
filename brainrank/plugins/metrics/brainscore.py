"""``pls`` and ``ridge-cv``: Brain-Score's neural predictivity protocol.

What Brain-Score does (brainscore-vision 2.4.2, read from its code; written here from that
definition, not copied):

- **Splits** (``metric_helpers/transformations.py``, ``Split`` defaults): 10 splits of the
  stimuli, 90% training / 10% test (scikit-learn ``StratifiedShuffleSplit`` with
  ``random_state=1``, stratified by the ``object_name`` coordinate; a benchmark without
  object labels passes ``stratification_coord=None``: ``ShuffleSplit``). The splits are
  drawn over the stimuli in the order of the trial-averaged assembly, which its averaging
  (``multi_groupby``) sorts by the presentation coordinates, ``stimulus_id`` first.
- **Regression** (``metrics/regression_correlation``): ``pls``: scikit-learn
  ``PLSRegression(n_components=25, scale=False)``; ``ridge``: ``Ridge(alpha=1)``;
  ``ridgecv_split``: ``RidgeCV`` over ``ALPHA_LIST`` (99 values from 0.01 to 1e7:
  0.01, 0.1, 0.5, 1, then 4, 18, 18, 18, 18 and 19 linearly spaced values per decade
  from 10 to 1e7), scikit-learn's generalised cross-validation (exact leave-one-out) on the
  training stimuli, ONE alpha for all neuroids (``alpha_per_target=False``) by the mean
  squared leave-one-out error. Each fitted on the training stimuli of a split, predicting
  its test stimuli.
- **Score**: Pearson r per neuroid between predicted and measured test responses
  (``scipy.stats.pearsonr``), the median over the region's neuroids, the mean over the 10
  splits (``error``: the standard deviation over splits / sqrt(10)).
- **Features** (``model_helpers/activations/pca.py``, ``LayerPCA``): a layer with more than
  1000 features is reduced to 1000 principal components fitted (scikit-learn ``PCA``) on
  the activations of 1000 ImageNet validation images (the first image of each class:
  indices 0, 50, ..., 49950 of its ``imagenet2012-val.hdf5``).
- **Ceiling** (``metrics/internal_consistency``): the repetitions are split in halves 10
  times (``ShuffleSplit(train_size=0.5, random_state=1)`` over the unique repetition
  values), each half averaged per stimulus, Pearson r per neuroid between the halves,
  Spearman-Brown corrected (``2r / (1 + r)``), the median over neuroids, the mean over
  splits. A benchmark (``benchmark_helpers/neural_common.py``, ``explained_variance``,
  version 2.4) reports ``score^2 / ceiling``.

What brainrank does
-------------------
The same splits (the same scikit-learn splitters and seed, over the stimuli sorted by id,
stratified by ``object_name`` where the dataset has it: ``stratify_by="auto"``), the same
regressions (``pls``: :class:`brainrank.core.pls.PLSRegression`, exact where scikit-learn
iterates, see below; ``ridge-cv``: :class:`brainrank.core.ridge.RidgeCV` with Brain-Score's
``ALPHA_LIST`` and one alpha for all neuroids of a region; ``alphas=[1]`` is Brain-Score's
``ridge`` metric), the same Pearson r, median and mean, per (subject, region). Its own
choices, and why:

- **Features: principal components of the layer's projection, fitted on the dataset's own
  stimuli** (``pca=1000``, ``pca_fit="stimuli"``). Brain-Score's ImageNet images are not
  available offline and belong to no dataset, so its basis cannot be reproduced by
  default. Fitting the components on the scored stimuli uses their *features* only (never
  a response), so nothing leaks (pure noise scores 0, ``tests/calibration``). With 1000
  stimuli or fewer nothing is discarded: PLS and ridge depend on the features only
  through their Gram matrix, which all components keep, so the score equals that of the
  untransformed features (and the reduction makes them cheaper). The layer is first
  projected like ``srp-ridge``'s (a sparse random projection to the Johnson-Lindenstrauss
  dimension of the stimuli, eps 0.1; layers with fewer features are used as they are), so
  one streaming extraction serves ``srp-ridge``, ``pls``, ``ridge-cv`` and ``cka``: full
  activations are never held for all stimuli. The projection preserves the Gram matrix to
  within the Johnson-Lindenstrauss distortion, relative to the layer's *total* variance:
  measured on real layers of ``simulated`` against their full activations, ``pls`` moves
  by up to 0.029 (``torchvision/alexnet:random`` ``features.11``) and ``cka`` by up to
  0.005 (docs/validation.md); a signal in a small share of a layer's variance is distorted
  more. ``features="exact"`` takes the principal components from the exact Gram matrix of
  the full activations instead (``FeatureRequest(gram=True)``: the memory-budgeted passes of
  exact RDMs, free when ``rsa`` runs too), equal to the untransformed layer
  (``tests/plugins/metrics/test_brainscore.py``).
- **Brain-Score's basis, offline**: give the metric the same reference images.
  :func:`with_pca_reference` adds a folder of images (e.g. those 1000 ImageNet validation
  images) to a dataset's stimuli, marked ``pca_reference``; with ``pca_fit="reference"``
  the components are fitted on their features and applied to the dataset's, as
  ``LayerPCA`` does (with ``features="exact"``, exactly; with the projection, exactly for
  layers of at most the projection dimension and within its distortion for larger ones).
  Python API: ``brainrank.score(model, with_pca_reference(dataset, folder),
  brainrank.load_metric("pls", pca_fit="reference", features="exact"))``. Brain-Score's
  1000 components of 1000 images include a null direction (centred rank 999); brainrank
  drops null directions.
- **PLS is computed exactly**: scikit-learn's power iterations stop when the weights change
  by less than 1e-3, which moves PLS predictions by up to a few 1e-2 on features whose
  leading singular values are close (measured in ``tests/core/test_pls.py``); brainrank
  takes the exact singular vectors (equal to scikit-learn run to convergence, 1e-10).
  Brain-Score's own numbers carry that iteration error; the oracle prints the difference.
  A layer with fewer than 25 features or too few stimuli gets fewer components
  (``extra["n_components"]``), where scikit-learn would fail.
- **Ceiling**: ``Score.ceiling`` is sqrt(internal consistency): brainrank's ceilings are
  the r a perfect model reaches (``normalized = value / ceiling``), and
  ``normalized ** 2`` is Brain-Score's ceiled score ``score^2 / ceiling`` (kept in
  ``extra["brainscore_ceiled"]`` with the internal consistency in
  ``extra["internal_consistency"]``). It is the dataset's ``ceiling("internal-consistency")``
  where it has one (``majajhong2015``), else computed from the trials the same way; a
  dataset without repetitions falls back to its ``"encoding"`` ceiling
  (``extra["ceiling_kind"]`` says which).
- **Layer choice**: Brain-Score commits one layer per region chosen on other data. Here the
  ``max`` row is the best layer on the scored data (optimistic); the ``heldout`` row
  chooses the layer with the protocol run inside one half of the stimuli (its own 10
  splits) and scores it with the protocol run inside the other half, both ways: no
  response is used both to choose and to score. Its value is that of a model trained on
  45% of the stimuli, lower than the per-layer rows; it is meant for ranking, not for a
  side-by-side with Brain-Score.

Refused before any work (``check_applicable``): RDM-only datasets, fewer stimuli than 10
splits with 3 test stimuli each need (21), a stratification the labels cannot support
(``stratify_by`` naming a label the dataset does not have, a label with a single stimulus,
more labels than test stimuli), and ``pca_fit="reference"`` without reference stimuli.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.core import splits as cv
from brainrank.core.blas import one_blas_thread
from brainrank.core.pls import N_COMPONENTS, PLSRegression, pls_fit_batch
from brainrank.core.ridge import RidgeCV
from brainrank.core.stats import internal_consistency, internal_consistency_ceiling
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
    StimulusSet,
    heldout_layer_scores,
    hookimpl,
    split_halves,
)
from brainrank.plugins.metrics import _encoding as enc
from brainrank.plugins.metrics import _reduction as reduction

#: Brain-Score's ``ALPHA_LIST`` (``metrics/regression_correlation/metric.py``): 99 penalties
ALPHA_LIST = (
    0.01,
    0.1,
    0.5,
    1.0,
    *np.linspace(1e1, 1e2, 4, endpoint=False).tolist(),
    *np.linspace(1e2, 1e3, 18, endpoint=False).tolist(),
    *np.linspace(1e3, 1e4, 18, endpoint=False).tolist(),
    *np.linspace(1e4, 1e5, 18, endpoint=False).tolist(),
    *np.linspace(1e5, 1e6, 18, endpoint=False).tolist(),
    *np.linspace(1e6, 1e7, 19).tolist(),
)
#: below this many training-feature entries (stimuli x features), the splits' many small
#: products run on one BLAS thread: on two shared cores a second thread only contends (a
#: 180 x 199 ridge over 99 alphas ran 3-10 times faster on one)
SMALL_PROBLEM = 1_000_000
#: Brain-Score's stratification coordinate
OBJECT_LABEL = "object_name"
#: LayerPCA's number of components
PCA_COMPONENTS = 1000
#: the stimulus-metadata column that marks reference stimuli (see :func:`with_pca_reference`)
REFERENCE_COLUMN = "pca_reference"
REFERENCE_PREFIX = "pca-reference/"
PCA_FITS = ("stimuli", "reference")


class BrainScoreRegression(Metric):
    """Brain-Score's cross-validated regression protocol (module docstring); subclasses set
    the regression."""

    headline = "heldout"  # the layer chosen on one half of the stimuli, scored on the other

    needs = "responses"
    #: pure noise scores 0 in expectation (tests/calibration)
    calibrated: bool = True

    def _common(
        self,
        stratify_by: str | None,
        n_splits: int,
        train_size: float,
        seed: int,
        pca: int | None,
        pca_fit: str,
        eps: float,
        features: str,
    ) -> dict[str, Any]:
        if stratify_by is not None and (not isinstance(stratify_by, str) or not stratify_by):
            raise InputError(
                f"stratify_by must be 'auto', a label name or null, got {stratify_by!r}."
            )
        if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 1:
            raise InputError(f"n_splits must be a positive integer, got {n_splits!r}.")
        if not 0 < float(train_size) < 1:
            raise InputError(f"train_size must be in (0, 1), got {train_size!r}.")
        reduction.check(features, pca)
        if pca_fit not in PCA_FITS:
            raise InputError(f"pca_fit must be one of {PCA_FITS}, got {pca_fit!r}.")
        if pca_fit == "reference" and pca is None:
            raise InputError("pca_fit='reference' needs a number of components (pca).")
        return {
            "stratify_by": stratify_by,
            "n_splits": int(n_splits),
            "train_size": float(train_size),
            "seed": int(seed),
            "pca": pca,
            "pca_fit": pca_fit,
            "features": features,
            "eps": float(eps),
        }

    # ------------------------------------------------------------------ checks

    def labels(self, dataset: Dataset, stimulus_ids: list[str]) -> tuple[str | None, Any]:
        """``(label name, labels of stimulus_ids)`` for the stratification, ``(None, None)``
        for unstratified splits; raises NotApplicableError for a label the dataset lacks."""
        wanted = self.parameters["stratify_by"]
        if wanted is None:
            return None, None
        name = OBJECT_LABEL if wanted == "auto" else wanted
        found = stimulus_labels(dataset, stimulus_ids, name)
        if found is None:
            if wanted == "auto":
                return None, None
            raise NotApplicableError(
                f"metric {self.identifier!r} is asked to stratify its splits by {name!r}, but "
                f"dataset {dataset.identifier!r} has no such label (its labels: "
                f"{sorted(label_names(dataset)) or 'none'}); use stratify_by='auto' "
                "(object_name where present, else unstratified), null, or one of its labels."
            )
        return name, found

    def check_applicable(self, dataset: Dataset) -> None:
        super().check_applicable(dataset)
        ids = sorted(enc.Targets.of(dataset).stimulus_ids)
        _, labels = self.labels(dataset, ids)
        try:
            cv.check_shuffle_splits(
                len(ids),
                labels,
                train_size=self.parameters["train_size"],
                what=f"metric {self.identifier!r} on dataset {dataset.identifier!r}",
            )
        except InputError as exc:
            raise NotApplicableError(str(exc)) from exc
        if self.parameters["pca_fit"] == "reference" and len(reference_ids(dataset)) < 2:
            raise NotApplicableError(
                f"metric {self.identifier!r} fits its principal components on reference "
                f"stimuli (pca_fit='reference'), but dataset {dataset.identifier!r} has none; "
                "add them with brainrank.plugins.metrics.brainscore.with_pca_reference(dataset, "
                "folder), or use pca_fit='stimuli'."
            )

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        self.check_applicable(dataset)
        return reduction.request(self.parameters, enc.n_stimuli(dataset))

    # ------------------------------------------------------------------ scoring

    def fit_predict(
        self, X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray, groups: list[np.ndarray]
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Fit on the training stimuli, one model per group of target columns (a region's
        neuroids), and predict the test stimuli: ``(n_test, v)`` and each group's record."""
        raise NotImplementedError

    def design(self, layer, rows: np.ndarray, reference: np.ndarray) -> np.ndarray | None:
        """The layer's features for ``rows`` after the reduction (None for a constant layer):
        its leading ``pca`` principal components fitted on the same stimuli, or on the
        reference stimuli ``reference`` (:mod:`._reduction`)."""
        fit = reference if self.parameters["pca_fit"] == "reference" else None
        return reduction.principal_features(layer, self.parameters, rows, fit)

    def protocol(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        labels: Any,
        groups: list[np.ndarray],
        positions: np.ndarray | None = None,
    ) -> tuple[np.ndarray, list[list[dict[str, Any]]]]:
        """Run the splits on stimuli ``positions`` (all by default), each group of columns of
        ``Y`` fitted on its own: per-split, per-neuroid test r ``(n_splits, v)`` and per
        split the groups' records."""
        p = self.parameters
        if positions is None:
            positions = np.arange(X.shape[0])
        sub_labels = None if labels is None else np.asarray(labels)[positions]
        drawn = cv.shuffle_splits(
            positions.size,
            sub_labels,
            n_splits=p["n_splits"],
            train_size=p["train_size"],
            seed=p["seed"],
        )
        trains = np.stack([positions[train] for train, _ in drawn])
        tests = np.stack([positions[test] for _, test in drawn])
        small = trains.shape[1] * X.shape[1] <= SMALL_PROBLEM
        with one_blas_thread() if small else contextlib.nullcontext():
            predicted, records = self.fit_predict_splits(X, Y, trains, tests, groups)
        r = np.full((len(drawn), Y.shape[1]), np.nan)
        for s in range(len(drawn)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                r[s] = enc.column_r(predicted[s], Y[tests[s]])
        return r, records

    def fit_predict_splits(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        trains: np.ndarray,
        tests: np.ndarray,
        groups: list[np.ndarray],
    ) -> tuple[np.ndarray, list[list[dict[str, Any]]]]:
        """Predictions ``(n_splits, n_test, v)`` of every split's test stimuli, fitted on its
        training stimuli (rows ``trains[s]``, ``tests[s]``), and per split the groups'
        records. By default one :meth:`fit_predict` per split."""
        predicted = np.empty((len(trains), tests.shape[1], Y.shape[1]))
        records = []
        for s, (train, test) in enumerate(zip(trains, tests, strict=True)):
            predicted[s], record = self.fit_predict(X[train], Y[train], X[test], groups)
            records.append(record)
        return predicted, records

    def ceilings(self, dataset: Dataset, groups) -> tuple[dict, dict, str]:
        """``({group: sqrt(IC)}, {group: IC}, kind)`` (see the module docstring)."""
        kinds = getattr(dataset, "ceiling_kinds", [])
        if "internal-consistency" in kinds:
            ic = dataset.ceiling("internal-consistency")
            return (
                {k: float(np.sqrt(max(v, 0.0))) for k, v in ic.items()},
                ic,
                "internal-consistency",
            )
        responses = dataset.responses()
        if "repetition" in responses.coords and np.unique(responses["repetition"].values).size >= 2:
            per = internal_consistency(
                np.asarray(responses.values, dtype=np.float64),
                np.asarray(responses["stimulus_id"].values).astype(str),
                np.asarray(responses["repetition"].values),
            )
            ic = {key: internal_consistency_ceiling(per, index) for key, index in groups}
            return (
                {k: float(np.sqrt(max(v, 0.0))) for k, v in ic.items()},
                ic,
                "internal-consistency",
            )
        return dataset.ceiling("encoding"), {}, "encoding"

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        self.check_applicable(dataset)
        targets = enc.Targets.of(dataset)
        order = np.argsort(np.asarray(targets.stimulus_ids))  # Brain-Score's sorted order
        ids = [targets.stimulus_ids[i] for i in order]
        Y = targets.values[order].astype(np.float64)
        label_name, labels = self.labels(dataset, ids)
        rows = features.rows_for(ids)
        reference = (
            features.rows_for(reference_ids(dataset))
            if self.parameters["pca_fit"] == "reference"
            else np.zeros(0, dtype=np.int64)
        )
        ceilings, consistency, ceiling_kind = self.ceilings(dataset, targets.groups)
        groups = [index for _, index in targets.groups]
        n_test = cv.split_sizes(len(ids), self.parameters["train_size"])[1]
        half_a, half_b = split_halves(len(ids), enc.SPLIT_SEED)
        out: list[Score] = []
        for layer in features:
            X = self.design(layer, rows, reference)
            if X is not None:
                r, records = self.protocol(X, Y, labels, groups)
                on_halves = [self.half_scores(X, Y, labels, groups, h) for h in (half_a, half_b)]
            for g, ((subject, region), index) in enumerate(targets.groups):
                extra: dict[str, Any] = {
                    "splits": self.parameters["n_splits"],
                    "n_test": n_test,
                    "n_test_half": cv.split_sizes(half_a.size, self.parameters["train_size"])[1],
                    "stratified_by": label_name,
                    "ceiling_kind": ceiling_kind,
                }
                halves = (float("nan"), float("nan"))
                if X is None:
                    value, per_neuroid = float("nan"), np.full(index.size, np.nan)
                    extra["reason"] = "the layer's features are constant across the stimuli"
                else:
                    value, per_neuroid, error = summarise(r[:, index])
                    extra.update(
                        self.summarise_records([split[g] for split in records]),
                        error=error,
                        n_features=int(X.shape[1]),
                    )
                    halves = (on_halves[0][g], on_halves[1][g])
                ic = consistency.get((subject, region))
                if ic is not None:
                    extra["internal_consistency"] = ic
                    if np.isfinite(value) and ic > 0:
                        extra["brainscore_ceiled"] = value**2 / ic
                out.append(
                    Score(
                        subject=subject,
                        region=region,
                        layer=layer.name,
                        value=value,
                        n_neuroids=int(np.isfinite(per_neuroid).sum()),
                        layer_index=layer.index,
                        relative_depth=layer.relative_depth,
                        ceiling=ceilings.get((subject, region)),
                        extra=extra,
                        per_neuroid=per_neuroid.astype(np.float32),
                        neuroid_ids=tuple(targets.neuroid_ids[index]),
                        halves=halves,
                    )
                )
        return out + heldout_layer_scores(out)

    def half_scores(
        self, X: np.ndarray, Y: np.ndarray, labels: Any, groups: list[np.ndarray], half: np.ndarray
    ) -> list[float]:
        """Each group's score from the protocol run inside one half of the stimuli (NaN when
        the half cannot be split so)."""
        sub = None if labels is None else np.asarray(labels)[half]
        try:
            cv.check_shuffle_splits(half.size, sub, train_size=self.parameters["train_size"])
        except InputError:
            return [float("nan")] * len(groups)
        r, _ = self.protocol(X, Y, labels, groups, positions=half)
        return [summarise(r[:, index])[0] for index in groups]

    def summarise_records(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return {}

    def count_fits(self, scores: list[Score]) -> int:
        """One fit per neuroid, layer and split (and penalty, for a grid of alphas)."""
        per = len(self.parameters.get("alphas") or [1]) * self.parameters["n_splits"]
        return per * sum(
            int(s.n_neuroids) for s in scores if s.selection == "layer" and np.isfinite(s.value)
        )


def summarise(r: np.ndarray) -> tuple[float, np.ndarray, float]:
    """Brain-Score's reduction of per-split, per-neuroid r ``(n_splits, v)``: ``(mean over
    splits of the median over neuroids, per-neuroid mean over splits, standard error over
    splits)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nanmedian(r, axis=1)
        per_neuroid = np.nanmean(r, axis=0)
    finite = medians[np.isfinite(medians)]
    if finite.size == 0:
        return float("nan"), per_neuroid, float("nan")
    # xarray's std over splits (ddof 0) / sqrt(n splits), as Brain-Score's ``error``
    return float(finite.mean()), per_neuroid, float(finite.std() / np.sqrt(finite.size))


class PLS(BrainScoreRegression):
    """``pls``: Brain-Score's PLS regression protocol (module docstring)."""

    identifier = "pls"
    version = "1"

    def __init__(
        self,
        n_components: int = N_COMPONENTS,
        stratify_by: str | None = "auto",
        n_splits: int = cv.N_SPLITS,
        train_size: float = cv.TRAIN_SIZE,
        seed: int = cv.SEED,
        pca: int | None = PCA_COMPONENTS,
        pca_fit: str = "stimuli",
        features: str = "projection",
        eps: float = 0.1,
    ):
        PLSRegression(n_components)  # validates
        common = self._common(stratify_by, n_splits, train_size, seed, pca, pca_fit, eps, features)
        super().__init__(n_components=int(n_components), **common)

    def fit_predict_splits(self, X, Y, trains, tests, groups):
        """Every split and region at once (:func:`brainrank.core.pls.pls_fit_batch`): PLS2
        depends on the targets fitted together, so each region is its own model, as each
        Brain-Score benchmark is one region."""
        width = max(index.size for index in groups)
        Y_train = np.zeros((len(trains), len(groups), trains.shape[1], width))
        for g, index in enumerate(groups):
            Y_train[:, g, :, : index.size] = Y[trains][:, :, index]
        fit = pls_fit_batch(X[trains], Y_train, self.parameters["n_components"])
        out = fit.predict(X[tests])  # (splits, groups, n_test, width)
        predicted = np.empty((len(trains), tests.shape[1], Y.shape[1]))
        for g, index in enumerate(groups):
            predicted[:, :, index] = out[:, g, :, : index.size]
        records = [
            [{"n_components": int(fit.n_components[s, g])} for g in range(len(groups))]
            for s in range(len(trains))
        ]
        return predicted, records

    def summarise_records(self, records):
        used = sorted({r["n_components"] for r in records})
        return {"n_components": used[0] if len(used) == 1 else used}


class RidgeCVProtocol(BrainScoreRegression):
    """``ridge-cv``: ridge with one leave-one-out alpha per region from Brain-Score's
    ``ALPHA_LIST``, in Brain-Score's cross-validation (module docstring); ``alphas=[1]`` is
    Brain-Score's ``ridge`` metric."""

    identifier = "ridge-cv"
    version = "1"

    def __init__(
        self,
        alphas: Any = None,
        alpha_per_target: bool = False,
        stratify_by: str | None = "auto",
        n_splits: int = cv.N_SPLITS,
        train_size: float = cv.TRAIN_SIZE,
        seed: int = cv.SEED,
        pca: int | None = PCA_COMPONENTS,
        pca_fit: str = "stimuli",
        features: str = "projection",
        eps: float = 0.1,
    ):
        grid = [float(a) for a in np.atleast_1d(ALPHA_LIST if alphas is None else alphas)]
        RidgeCV(grid)  # validates
        if not isinstance(alpha_per_target, bool):
            raise InputError(f"alpha_per_target must be true or false, got {alpha_per_target!r}.")
        common = self._common(stratify_by, n_splits, train_size, seed, pca, pca_fit, eps, features)
        super().__init__(alphas=grid, alpha_per_target=alpha_per_target, **common)

    def fit_predict(self, X_train, Y_train, X_test, groups):
        """One factorisation of the training features and one pass over the alphas for
        every group's neuroids; each group (region) then takes the alpha with its lowest mean
        leave-one-out squared error (scikit-learn's ``RidgeCV`` with
        ``alpha_per_target=False``, fitted on that group alone, chooses the same)."""
        grid = np.asarray(self.parameters["alphas"])
        ridge = RidgeCV(grid, alpha_per_target=True, dtype="float64")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant targets: NaN r
            ridge.fit(X_train, Y_train, return_predictions=False)
        records = []
        if not self.parameters["alpha_per_target"]:
            chosen = np.array(ridge.alpha_index_)
            mse = ridge.result_.cv_scores  # (n_alphas, v) mean squared LOO error
            for index in groups:
                a = int(np.argmin(mse[:, index].mean(axis=1)))  # ties: the first, as sklearn
                chosen[index] = a
                records.append({"alpha": float(grid[a])})
            ridge.alpha_index_ = chosen
            ridge.alpha_ = grid[chosen]
        else:
            records = [{"alpha": float(np.median(ridge.alpha_[index]))} for index in groups]
        return ridge.predict(X_test), records

    def summarise_records(self, records):
        return {"alphas": [r["alpha"] for r in records]}


# --------------------------------------------------------------------------- labels


def label_names(dataset: Dataset) -> set[str]:
    """Per-stimulus labels a dataset has: presentation coordinates of its responses and
    columns of its stimulus metadata."""
    names: set[str] = set()
    responses = dataset.responses()
    if responses is not None:
        names |= {
            str(c)
            for c, coord in responses.coords.items()
            if coord.dims == ("presentation",) and c not in ("stimulus_id", "repetition")
        }
    meta = dataset.stimuli.metadata
    if meta is not None and hasattr(meta, "columns"):
        names |= {str(c) for c in meta.columns}
    return names - {REFERENCE_COLUMN}


def stimulus_labels(dataset: Dataset, stimulus_ids: list[str], name: str) -> np.ndarray | None:
    """The label ``name`` of each of ``stimulus_ids`` (a presentation coordinate of the
    responses, else a stimulus-metadata column), or None when the dataset has no such label.
    A label must be the same on every presentation of a stimulus."""
    responses = dataset.responses()
    if responses is not None and name in responses.coords:
        coord = responses[name]
        if coord.dims == ("presentation",):
            stimulus = np.asarray(responses["stimulus_id"].values).astype(str)
            values = np.asarray(coord.values).astype(str)
            first: dict[str, str] = {}
            for s, value in zip(stimulus, values, strict=True):
                if first.setdefault(s, value) != value:
                    raise InputError(
                        f"label {name!r} of dataset {dataset.identifier!r} differs between "
                        f"presentations of stimulus {s!r} ({first[s]!r}, {value!r}); it cannot "
                        "stratify splits of stimuli."
                    )
            return np.array([first[s] for s in stimulus_ids])
    meta = dataset.stimuli.metadata
    if meta is not None and hasattr(meta, "columns") and name in meta.columns:
        return np.asarray(meta.loc[list(stimulus_ids), name]).astype(str)
    return None


# --------------------------------------------------------------------------- reference PCA


def reference_ids(dataset: Dataset) -> list[str]:
    """The stimuli of ``dataset`` marked as PCA reference stimuli (see
    :func:`with_pca_reference`)."""
    meta = dataset.stimuli.metadata
    if meta is None or not hasattr(meta, "columns") or REFERENCE_COLUMN not in meta.columns:
        return []
    marked = np.asarray(meta[REFERENCE_COLUMN].fillna(False)).astype(bool)
    return [str(s) for s in np.asarray(meta.index)[marked]]


def with_pca_reference(dataset: Dataset, images: str | Path | StimulusSet) -> Dataset:
    """``dataset`` with reference stimuli added to its stimulus set, for
    ``pca_fit="reference"`` (Brain-Score's ``LayerPCA`` fits its components on 1000 ImageNet
    validation images: give those to reproduce its basis).

    Parameters
    ----------
    dataset : Dataset
        Any dataset with responses; its responses, ceilings and splits are unchanged.
    images : str, Path or StimulusSet
        A folder of image files (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.tif``), read in
        the order of their sorted file names, or a :class:`StimulusSet`.

    Returns
    -------
    Dataset
        A shallow copy whose stimuli are the dataset's followed by the reference images
        (ids ``pca-reference/<name>``, metadata column ``pca_reference`` True). Feature
        extraction covers them; metrics score only stimuli with responses.
    """
    import pandas as pd

    if isinstance(images, StimulusSet):
        ref_ids = [f"{REFERENCE_PREFIX}{s}" for s in images.stimulus_ids]
        by_id = dict(zip(ref_ids, images.stimulus_ids, strict=True))

        def load_reference(stimulus_id: str) -> Any:
            return images.image(by_id[stimulus_id])

        content = f"stimulus-set:{images.content_hash()}"
    else:
        folder = Path(images).expanduser()
        suffixes = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
        files = (
            sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in suffixes)
            if folder.is_dir()
            else []
        )
        if len(files) < 2:
            raise InputError(
                f"{folder} holds {len(files)} images; the reference PCA needs a folder of at "
                f"least 2 image files ({', '.join(sorted(suffixes))})."
            )
        ref_ids = [f"{REFERENCE_PREFIX}{f.name}" for f in files]
        by_path = dict(zip(ref_ids, files, strict=True))

        def load_reference(stimulus_id: str) -> Any:
            from PIL import Image

            with Image.open(by_path[stimulus_id]) as image:
                return np.asarray(image.convert("RGB"))

        digest = hashlib.sha256()
        for f in files:
            digest.update(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}\n".encode())
        content = f"folder:{digest.hexdigest()}"
    own = dataset.stimuli
    clash = set(ref_ids) & set(own.stimulus_ids)
    if clash:
        raise InputError(f"reference ids {sorted(clash)[:3]} are already stimuli of the dataset.")
    own_meta = (
        own.metadata if own.metadata is not None else pd.DataFrame(index=list(own.stimulus_ids))
    )
    meta = pd.concat(
        [
            own_meta.assign(**{REFERENCE_COLUMN: False}),
            pd.DataFrame(
                {REFERENCE_COLUMN: True}, index=pd.Index(ref_ids, name=own_meta.index.name)
            ),
        ]
    )
    own_ids = set(own.stimulus_ids)

    def load(stimulus_id: str) -> Any:
        return own.image(stimulus_id) if stimulus_id in own_ids else load_reference(stimulus_id)

    stimuli = StimulusSet(
        f"{own.identifier}+pca-reference",
        [*own.stimulus_ids, *ref_ids],
        load,
        meta,
        content_id=f"{own.content_hash()}|{content}",
    )
    out = copy.copy(dataset)
    out.stimuli = stimuli
    return out


# --------------------------------------------------------------------------- registration

DESCRIPTIONS = {
    "pls": "Brain-Score's PLS protocol: 25-component PLS, 10 stratified 90/10 splits, "
    "median test r over neuroids, mean over splits; ceiling: internal consistency",
    "ridge-cv": "Brain-Score's splits with ridge (one leave-one-out alpha per region from "
    "Brain-Score's ALPHA_LIST): median test r over neuroids, mean over splits",
}
CITATION = (
    "Schrimpf et al. 2018 (Brain-Score); Yamins et al. 2014 (PLS); brainscore-vision 2.4.2 "
    "metrics regression_correlation / internal_consistency"
)


@hookimpl
def brainrank_metrics() -> list[MetricSpec]:
    return [
        MetricSpec("pls", PLS, MetricMetadata(DESCRIPTIONS["pls"], "responses", CITATION)),
        MetricSpec(
            "ridge-cv",
            RidgeCVProtocol,
            MetricMetadata(DESCRIPTIONS["ridge-cv"], "responses", CITATION),
        ),
    ]


__all__ = [
    "ALPHA_LIST",
    "PLS",
    "BrainScoreRegression",
    "RidgeCVProtocol",
    "reference_ids",
    "stimulus_labels",
    "with_pca_reference",
]
