"""``srp-ridge``: sparse random projection + ridge regression, scored by Pearson r per
neuroid and averaged per (subject, region) (Conwell et al.).

Per layer, the features are projected to k dimensions with a very sparse random projection
(Li, Hastie & Church 2006; layers with at most k features are used as they are), optionally
z-scored per column, and regressed on every neuroid's trial-averaged response with ridge
(an unpenalised intercept is always fitted). A neuroid's score is the Pearson r between its
cross-validated predictions and its responses; a (subject, region) score is the mean over
its neuroids (neuroids with an undefined r, e.g. constant ones, are left out and counted in
``n_neuroids``), stored raw and divided by the dataset's encoding ceiling. A layer whose
features are constant across stimuli predicts nothing: its score is NaN.

Three configurations are registered. Each is its own metric on the leaderboard.

``srp-ridge`` (default): brainrank's own variant, NOT a seed protocol
---------------------------------------------------------------------
- k: the Johnson-Lindenstrauss dimension for the number of stimuli at eps 0.1
  (scikit-learn's ``johnson_lindenstrauss_min_dim`` convention: 5920 for 1000 stimuli).
- Cross-validation: 4 folds (``cv=4``), nested in the seeded halves used for the
  ``heldout`` rows. For each fold the features are z-scored with the *training* folds'
  mean and standard deviation (``standardize="train"``), each neuroid's alpha is chosen
  from the grid 10^-2 .. 10^8 by the lowest exact leave-one-out error *on the training
  folds only* (``alpha_scoring="mse"``, as scikit-learn's ``RidgeCV``), and the test fold is
  predicted with it. A neuroid's r is computed within each test fold and averaged over the
  folds.
- Why not the seeds' LOO: a LOO prediction re-estimates the intercept without the held-out
  stimulus, so it contains ``-(y_i - mean(y)) / (n - 1)``, which is anti-correlated with the
  response; the more the ridge shrinks, the closer r gets to -1 (issue 10, measurement 1),
  and choosing each neuroid's alpha by the same LOO predictions that are then scored is
  optimistic by an amount that depends on the features (measurement 3: mean null r from
  -0.022 to +0.040). Within one test fold the intercept is a constant, which Pearson r
  ignores, and the alpha was chosen without the fold's responses: on pure-noise targets the
  expected r is 0 for any features (the calibration tests check this within 3 standard
  errors for Gaussian, low-rank pixel-like and almost-constant features).
- ``heldout`` rows: the layer is chosen on one half's *within-half* r (``halves``: a
  2-fold cross-validation inside that half, which uses that half's responses only) and
  scored with the other half's r from the full k-fold (``extra["scored_halves"]``), both
  ways, averaged. Choosing on halves read off the full k-fold would be optimistic: a half
  predicted by models trained on the other half shares the cross products of the two
  halves' responses with the other half's score (+0.04 mean r on pure noise with 8
  layers; 0.000 +- 0.006 with the within-half choice).
- Needs at least 12 stimuli (and 3 per fold): ``check_applicable`` says so up front.
- Why z-score: a fixed grid of alphas means the same shrinkage for every layer only when
  the features have the same scale; the training-fold statistics keep the test fold unseen.

``srp-ridge:mouse``: Conwell et al. 2021 (NeurIPS), mouse visual cortex (Allen)
-----------------------------------------------------------------------------
Paper (``/work/shared/papers/conwell2021-mouse-model-zoology.txt``, "Neural regression"):
4096 sparse random projections per layer, ridge with lambda 1.0, generalized
cross-validation (leave-one-out) predictions for every image, Pearson r per neuron, mean
over the neurons of a cortical area; "SRP-Ridge Max" = the best layer. Authors' code
(github.com/ColinConwell/DeepMouseTrap, ``regression/get_srp_ridge_scores.py`` with
``regression/neural_regression.py``): ``X = sklearn.preprocessing.scale(srp_features)``,
i.e. every projected column z-scored with the mean and standard deviation (ddof 0) of *all*
stimuli, then ``RidgeCV(alphas=[1.0], store_cv_values=True)`` (``fit_intercept=True``,
exact LOO in its gcv mode), and ``pearsonr`` between each neuron's LOO predictions and its
responses; the projection dimension is ``johnson_lindenstrauss_min_dim(n, eps=0.1)``, which
is 4096 for the 119 Allen stimuli, the number the paper states. brainrank: k = 4096,
``standardize="all"``, ``alphas=[1.0]``, ``cv="loo"``, intercept, Pearson r, mean over
neuroids. Known property of this protocol (kept, since it is the paper's): LOO predictions
with a re-estimated intercept bias r slightly negative on uninformative targets (about
-1 / (n * sd(prediction) / sd(response))); the calibration tests bound it.

``srp-ridge:nsd``: Conwell, Prince, Alvarez & Konkle, "What can 5.17 billion regression fits
tell us ..." (NSD shared 1000 images)
----------------------------------------------------------------------------------------
Paper (``/work/shared/papers/conwell-5.17-billion-fits.txt``, A.4): sparse random
projection to the JL dimension at eps 0.1 (scikit-learn default; the paper prints 5960,
scikit-learn's ``johnson_lindenstrauss_min_dim(1000, eps=0.1)`` is 5920, which is what the
authors' code calls and what brainrank uses), LOOCV ridge "in a single matrix operation"
(generalized cross-validation, numerically equal to iterative LOO) with a fixed lambda of
1e5 for every layer ("no hyperparameter selection"), Pearson r per voxel. Authors' code
(github.com/ColinConwell/DeepNSD, ``source_code/pressures/main_analysis.py`` and
``ridge_gcv_mod.py``): the projected features are z-scored with scikit-learn's
``StandardScaler`` fitted on the stimuli the ridge is fitted on, then a scikit-learn
``RidgeCV`` derivative (``fit_intercept=True``, exact LOO in gcv mode) gives the LOO
predictions and ``pearsonr`` scores them; voxel scores are averaged per ROI and subject.
In the LOO protocol every stimulus is a training stimulus, so the scaler's statistics are
those of all stimuli. brainrank: k = "jl" (eps 0.1), ``standardize="all"``,
``alphas=[1e5]``, ``cv="loo"``, intercept, Pearson r, mean over voxels. (The later
DeepNSD analysis, Conwell et al. 2024, fits on even and scores on odd images with a
per-voxel alpha from 10^-1 .. 10^5: not this preset.)

Calibration on pure-noise targets (mean r over 400 noise neuroids, n = 96 stimuli, SE
about 0.007; ``tests/plugins/metrics/test_encoding_protocols.py``), for Gaussian / pixel-like
low-rank / almost-constant features: default ``srp-ridge`` +0.015 / +0.015 / +0.013 (0
within 3 SE, by construction); the previous default (LOO, alpha by highest LOO r, raw
features) +0.012 / -0.002 / -0.613; ``srp-ridge:mouse`` +0.003 / -0.017 / +0.015;
``srp-ridge:nsd`` -0.987 / -0.233 / -0.992. The seeds' LOO protocols are biased
negative on uninformative targets, the more so the stronger the fixed penalty relative to
the data: alpha 1e5 was set for 1000 stimuli, where the same check gives -0.045 (Gaussian)
and -0.023 (low-rank) with 5920 projections. Compare models within one configuration; use
the default for datasets unlike the seeds'.

Summary rows: ``max`` (the best layer, "SRP-Ridge Max" of the seed papers) and
``heldout`` (the layer chosen on one half of the stimuli, scored on the other, both ways),
so that the optimism of the max is visible.

Parameters: ``n_components`` ("jl" or an integer), ``eps``, ``alphas`` (one value for a
fixed penalty or a grid), ``alpha_scoring`` (``"mse"``: lowest LOO error, or
``"pearson"``: highest LOO r; on the training folds only when ``cv`` is a number of
folds), ``cv`` (``"loo"`` or an even number of folds >= 2), ``standardize`` (``"none"``,
``"all"``, or with folds ``"train"``), ``backend`` (``"numpy"`` or ``"torch"``: the array
backend on the CPU; part of the configuration since version 2, kept so that stored hashes
do not change).

Device: ``--device`` (the run setting ``device``, see ``_encoding``) runs the ridge on a
GPU with torch whatever ``backend`` says, and is *not* part of the configuration: a score
computed on cuda has the same metric hash as one computed on the CPU, and the run's
configuration (the ``runs`` table) records the device. Float32 products on another device
may flip a neuroid between two alphas whose leave-one-out errors are tied to float32
precision (0.1-0.4% of pure-noise neuroids); the scores agree within float32 tolerance
(``tests/core/test_backend.py``), which is why a device is provenance, not identity.
"""

from __future__ import annotations

import dataclasses
import warnings
from functools import partial
from typing import Any

import numpy as np

from brainrank.core.ridge import (
    STANDARDIZE,
    Decomposition,
    RidgeCV,
    ridge_kfold,
    zscore_columns,
)
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

DESCRIPTION = "sparse random projection + leave-one-out ridge; mean Pearson r per region"


class SRPRidge(enc.OnDevice, Metric):
    identifier = "srp-ridge"
    version = "3"
    headline = "heldout"  # the layer chosen on one half of the stimuli, scored on the other
    #: dtype of the leave-one-out ridge's products with the targets: not a parameter (float32
    #: is what every stored score used); "float64" for exact comparisons in tests
    ridge_dtype = "float32"

    @property
    def calibrated(self) -> bool:  # type: ignore[override]
        """Not with ``cv="loo"`` (the seed papers' protocols): a leave-one-out prediction
        at a fixed penalty re-estimates the intercept without the held-out stimulus, which
        pulls pure noise below 0 (module docstring, docs/validation.md)."""
        return self.parameters["cv"] != "loo"

    needs = "responses"

    def __init__(
        self,
        n_components: int | str = "jl",
        eps: float = 0.1,
        alphas: Any = None,
        alpha_scoring: str = "mse",
        cv: int | str = 4,
        standardize: str = "train",
        backend: str = "numpy",
    ):
        alphas = enc.check_encoding_parameters(n_components, alphas, alpha_scoring)
        cv, standardize = check_cv(cv, standardize)
        if backend not in ("numpy", "torch"):
            raise InputError(f"backend must be 'numpy' or 'torch', got {backend!r}.")
        super().__init__(
            n_components=n_components,
            eps=float(eps),
            alphas=alphas,
            alpha_scoring=alpha_scoring,
            cv=cv,
            standardize=standardize,
            backend=backend,
        )
        self.backend = backend

    @property
    def min_stimuli(self) -> int:
        cv = self.parameters["cv"]
        # LOO needs 3 stimuli; k folds need 3 test stimuli per fold (and >= 3 to train on)
        # and the within-half CV behind the halves: 2 folds of >= 3 in each half
        return 3 if cv == "loo" else max(12, 3 * cv)

    def check_applicable(self, dataset: Dataset) -> None:
        super().check_applicable(dataset)
        cv = self.parameters["cv"]
        why = "leave-one-out ridge" if cv == "loo" else f"{cv} folds of at least 3 stimuli"
        enc.require_stimuli(self.identifier, dataset, self.min_stimuli, why)

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        self.check_applicable(dataset)
        k = enc.dimension(self.parameters, enc.n_stimuli(dataset))
        return FeatureRequest(projection_dims=frozenset({k}))

    def per_neuroid(self, features: FeatureSet, targets: enc.Targets):
        """Yield ``(layer, r, alphas, predictions)`` per layer (None for constant layers):
        LOO predictions with ``cv="loo"``, out-of-fold predictions otherwise."""
        for layer, fitted, _ in self._fits(features, targets):
            if fitted is None:
                yield layer, None, None, None
            else:
                yield layer, fitted.scores, fitted.alphas, fitted.predictions

    def _fits(self, features: FeatureSet, targets: enc.Targets, halves: bool = False):
        """Per layer ``(layer, fitted, within_halves)``: the LOO result or the nested k-fold
        result (None for a constant layer), and with ``halves`` in k-fold mode each half's
        own cross-validated r (see :meth:`_within_halves`)."""
        p = self.parameters
        rows = enc.rows_for(features, targets)
        n = len(targets.stimulus_ids)
        k = enc.dimension(p, n)
        folds = None if p["cv"] == "loo" else enc.folds(n, p["cv"])
        for layer in features:
            X = enc.design(layer, k, rows)
            if X is None:
                yield layer, None, None
            elif folds is None:
                if p["standardize"] == "all":
                    X = zscore_columns(X)
                yield layer, self._ridge().fit(X, targets.values).result_, None
            else:
                fitted = self._kfold(X, targets.values, folds)
                within = self._within_halves(X, targets.values, folds) if halves else None
                yield layer, fitted, within

    def _ridge(self) -> RidgeCV:
        p = self.parameters
        return RidgeCV(
            p["alphas"], scoring=p["alpha_scoring"], dtype=self.ridge_dtype, **self.ridge_options()
        )

    def _kfold(self, X: np.ndarray, Y: np.ndarray, folds: list[np.ndarray]):
        p = self.parameters
        return ridge_kfold(
            X,
            Y,
            folds,
            p["alphas"],
            standardize=p["standardize"],
            scoring=p["alpha_scoring"],
            **self.ridge_options(),
        )

    def _within_halves(self, X, Y, folds) -> tuple[np.ndarray, np.ndarray]:
        """Each half's r from a cross-validation *inside* that half (its own folds, or two
        when it has one): a layer chosen on one half's value has seen nothing of the other
        half. (Scores of one half from models trained on the other share the cross products
        of the two halves' responses, and choosing on them is optimistic: +0.04 on pure
        noise with 8 layers.)"""
        m = len(folds) // 2
        out = []
        for own in (folds[:m], folds[m:]):
            half = np.sort(np.concatenate(own))
            inner = own if len(own) >= 2 else np.array_split(half, 2)
            positions = [np.searchsorted(half, f) for f in inner]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out.append(self._kfold(X[half], Y[half], positions).scores)
        return out[0], out[1]

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        self.check_applicable(dataset)
        targets = enc.Targets.of(dataset)
        ceilings = dataset.ceiling_with_interval("encoding")
        rows: list[Score] = []
        for layer, fitted, within in self._fits(features, targets, halves=True):
            rows += self._layer_rows(layer, fitted, within, targets, ceilings)
        return self._with_heldout(rows)

    def score_with_permutations(
        self, features: FeatureSet, datasets: list[Dataset]
    ) -> list[list[Score]]:
        """With ``cv="loo"``: each layer's features are z-scored and factorised once for all
        of ``datasets`` (relabellings of one dataset: the same stimuli and responses, so
        each one's design matrix is the first one's with its rows permuted:
        :meth:`RidgeCV.fit_relabelled`, one product with the targets per alpha and
        relabelling). The first dataset is scored exactly as :meth:`score` scores it; the
        others equal scoring each on its own up to floating-point rounding. With folds, or
        datasets that are not relabellings of one another, the default."""
        if self.parameters["cv"] != "loo" or len(datasets) < 2:
            return super().score_with_permutations(features, datasets)
        for dataset in datasets:
            self.check_applicable(dataset)
        all_targets = [enc.Targets.of(d) for d in datasets]
        all_rows = [enc.rows_for(features, t) for t in all_targets]
        orders = _row_orders(all_rows)
        if orders is None or any(
            not np.array_equal(t.values, all_targets[0].values) for t in all_targets[1:]
        ):
            return super().score_with_permutations(features, datasets)
        ceilings = [d.ceiling_with_interval("encoding") for d in datasets]
        p = self.parameters
        k = enc.dimension(p, len(all_targets[0].stimulus_ids))
        ridge = self._ridge()
        results: list[list[Score]] = [[] for _ in datasets]
        for layer in features:
            X = enc.design(layer, k, all_rows[0])
            if X is not None and p["standardize"] == "all":
                X = zscore_columns(X)
            fits: list = [None] * len(datasets)
            if X is not None:
                dec = Decomposition.of(X, ridge.fit_intercept, backend=ridge.backend)
                # the first dataset exactly as score() fits it; the others relabelled
                fits[0] = ridge.fit(X, all_targets[0].values, decomposition=dec).result_
                fits[1:] = ridge.fit_relabelled(
                    X, all_targets[0].values, orders[1:], decomposition=dec
                )
            for j, targets in enumerate(all_targets):
                results[j] += self._layer_rows(layer, fits[j], None, targets, ceilings[j])
        return [self._with_heldout(rows) for rows in results]

    def _layer_rows(
        self,
        layer,
        fitted,
        within,
        targets: enc.Targets,
        ceilings,
    ) -> list[Score]:
        """One layer's per-region rows from its fit (``None``: a constant layer)."""
        n, v = targets.values.shape
        loo = self.parameters["cv"] == "loo"
        scored = None  # k-fold: each half's r from the full k-fold (used to score)
        if fitted is None:
            r = np.full(v, np.nan)
            r_a = r_b = alphas = r
        elif loo:
            half_a, half_b = split_halves(n, enc.SPLIT_SEED)
            r, alphas = fitted.scores, fitted.alphas
            r_a = enc.column_r(fitted.predictions[half_a], targets.values[half_a])
            r_b = enc.column_r(fitted.predictions[half_b], targets.values[half_b])
        else:
            r, alphas = fitted.scores, fitted.alphas  # (n_folds, v)
            r_a, r_b = within
            m = len(fitted.folds) // 2  # the first m folds make up half A exactly
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                scored = (
                    np.nanmean(fitted.fold_scores[:m], axis=0),
                    np.nanmean(fitted.fold_scores[m:], axis=0),
                )
        rows = []
        for (subject, region), index in targets.groups:
            value, count = enc.group_mean(r, index)
            chosen = alphas[index] if alphas.ndim == 1 else alphas[:, index]
            extra: dict[str, Any] = {"median_alpha": _median(np.ravel(chosen))}
            if not loo:
                halves = scored if scored is not None else (r, r)  # r: all NaN
                means = [enc.group_mean(h, index)[0] for h in halves]
                # JSON-safe: NaN stored as None (np.array(..., float) reads it as NaN)
                extra["scored_halves"] = [m if np.isfinite(m) else None for m in means]
            rows.append(
                Score(
                    subject=subject,
                    region=region,
                    layer=layer.name,
                    value=value,
                    n_neuroids=count,
                    layer_index=layer.index,
                    relative_depth=layer.relative_depth,
                    **ceiling_fields(ceilings, (subject, region)),
                    per_neuroid=r[index].astype(np.float32),
                    neuroid_ids=tuple(targets.neuroid_ids[index]),
                    halves=(enc.group_mean(r_a, index)[0], enc.group_mean(r_b, index)[0]),
                    extra=extra,
                )
            )
        return rows

    def _with_heldout(self, rows: list[Score]) -> list[Score]:
        loo = self.parameters["cv"] == "loo"
        return rows + (heldout_layer_scores(rows) if loo else _heldout_rows(rows))


def _row_orders(all_rows: list[np.ndarray]) -> list[np.ndarray] | None:
    """For row selections that are permutations of the first one, ``order`` per selection
    with ``all_rows[0][order] == rows``; ``None`` when one is not."""
    first = np.asarray(all_rows[0])
    position = {int(r): i for i, r in enumerate(first)}
    if len(position) != first.size:
        return None
    orders = []
    for rows in all_rows:
        rows = np.asarray(rows)
        if rows.shape != first.shape or any(int(r) not in position for r in rows):
            return None
        orders.append(np.array([position[int(r)] for r in rows], dtype=np.int64))
    return orders


def _heldout_rows(rows: list[Score]) -> list[Score]:
    """The ``heldout`` rows of the k-fold mode: per (subject, region), the layer chosen on
    one half's within-half score (``halves``, which uses that half's responses only) is
    scored with the other half's full k-fold r (``extra["scored_halves"]``: its folds
    predicted by models trained on all other folds), both ways, and the two are averaged.
    The choice never sees the responses it is scored on, and the score comes from models
    trained on 3/4 of the stimuli like the per-layer rows."""
    groups: dict[tuple[str, str], list[Score]] = {}
    for row in rows:
        if row.selection == "layer" and row.halves is not None:
            groups.setdefault((row.subject, row.region), []).append(row)
    out = []
    for group in groups.values():
        choose = np.array([g.halves for g in group], dtype=np.float64)  # (layers, 2)
        score = np.array([g.extra["scored_halves"] for g in group], dtype=np.float64)
        if not (np.isfinite(choose[:, 0]).any() and np.isfinite(choose[:, 1]).any()):
            continue
        pick_a = int(np.nanargmax(choose[:, 0]))  # chosen on half A, scored on half B
        pick_b = int(np.nanargmax(choose[:, 1]))
        chosen = group[pick_a]
        extra = {
            **chosen.extra,
            "layers": [group[pick_a].layer, group[pick_b].layer],
            "chosen_by": "within-half cross-validated r of the other half",
        }
        out.append(
            dataclasses.replace(
                chosen,
                selection="heldout",
                value=float(np.nanmean([score[pick_a, 1], score[pick_b, 0]])),
                extra=extra,
                per_neuroid=None,
                neuroid_ids=None,
            )
        )
    return out


def check_cv(cv: Any, standardize: Any) -> tuple[int | str, str]:
    """Validate ``cv`` ("loo" or an even number of folds >= 2) and ``standardize``."""
    if isinstance(cv, str) and cv.isdigit():
        cv = int(cv)
    if cv != "loo" and (isinstance(cv, bool) or not isinstance(cv, int) or cv < 2 or cv % 2):
        raise InputError(
            f"cv must be 'loo' or an even number of folds >= 2 (the folds are nested in the "
            f"two halves behind the heldout rows), got {cv!r}."
        )
    if standardize not in STANDARDIZE:
        raise InputError(f"standardize must be one of {STANDARDIZE}, got {standardize!r}.")
    if cv == "loo" and standardize == "train":
        raise InputError(
            "standardize='train' needs folds (cv = number of folds); with cv='loo' use 'all' "
            "(the seeds' protocol) or 'none'."
        )
    return cv, standardize


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


#: Every choice of the seed protocols is spelled out (see the module docstring), so that a
#: change of a default can never change a preset.
PRESETS = {
    "srp-ridge": {},
    "srp-ridge:mouse": {
        "n_components": 4096,
        "eps": 0.1,
        "alphas": [1.0],
        "alpha_scoring": "mse",
        "cv": "loo",
        "standardize": "all",
    },
    "srp-ridge:nsd": {
        "n_components": "jl",
        "eps": 0.1,
        "alphas": [1e5],
        "alpha_scoring": "mse",
        "cv": "loo",
        "standardize": "all",
    },
}

CITATIONS = {
    "srp-ridge": "brainrank's nested-CV variant of Conwell et al. 2021 (see the docstring)",
    "srp-ridge:mouse": "Conwell et al. 2021, NeurIPS; github.com/ColinConwell/DeepMouseTrap",
    "srp-ridge:nsd": "Conwell, Prince, Alvarez & Konkle (5.17 billion regression fits); "
    "github.com/ColinConwell/DeepNSD",
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
                citation=CITATIONS[identifier],
            ),
        )
        for identifier, preset in PRESETS.items()
    ]
