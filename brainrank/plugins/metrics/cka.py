"""``cka``: linear centred kernel alignment between a layer and a region's responses.

Per layer and (subject, region): linear CKA (Kornblith et al. 2019) between the layer's
features and the region's trial-averaged responses over all the dataset's stimuli, with the
debiased HSIC estimator (Song et al. 2012) by default, :mod:`brainrank.core.cka`. No
regression, no cross-validation: Brain-Score's ``cka`` metric computes the same quantity
(its ``unbiased_linear_CKA``; ``cka_biased``: :data:`"cka:biased"`), and the oracle
(``tests/oracles/brainscore_oracle.py``) compares the two on the same features.

Features: as ``pls`` and ``ridge-cv`` (see ``brainscore.py``), the layer's projection to the
Johnson-Lindenstrauss dimension of the stimuli (eps 0.1; smaller layers unprojected), shared
with ``srp-ridge``, reduced to ``pca`` principal components fitted on the same stimuli
(default 1000, Brain-Score's ``LayerPCA`` count; with 1000 stimuli or fewer all components
are kept, which leaves the centred Gram matrix, hence CKA, unchanged). Linear CKA depends on
the features only through their Gram matrix, which the projection preserves up to its
distortion (measured in ``tests/plugins/metrics/test_brainscore.py`` and docs/validation.md:
at most 0.005 on the layers of ``simulated``).

Estimators (``estimator``):

- ``"debiased"`` (default, **calibrated**): the expected HSIC of independent representations
  is 0, so pure-noise responses score 0 within the sampling error ``sqrt(2) / (n - 1)`` per
  (subject, region) (n stimuli; derived under a random-rotation null and checked by
  simulation, ``tests/core/test_cka.py``).
- ``"biased"`` (**not calibrated**; preset ``cka:biased``): the biased HSIC of independent
  representations is ``tr(K) tr(L) / (n - 1)^3``, so pure noise scores about
  ``sqrt(d_X d_Y) / (n - 1)`` (d: participation ratios of the two spectra): 0.45 for 300
  white-noise features against 36 noise neuroids over 100 stimuli. Its scores mix
  dimensionality with shared structure; :attr:`CKA.calibrated` is False for it.

Ceiling (``Score.ceiling``, debiased only): the CKA a noise-free model reaches,
``sqrt(HSIC_u(Y_a, Y_b) / HSIC_u(Y, Y))`` with Y_a, Y_b the averages of disjoint halves of
the repetitions (mean over 10 random halvings; :func:`brainrank.core.cka.cka_ceiling`).
Split halves share the signal and have independent noise, so their debiased HSIC estimates
the signal's HSIC without bias and without a Spearman-Brown step; by Cauchy-Schwarz no model
exceeds this in expectation (a simulated model whose features are the true signal scores
it within 0.015 on average: ``tests/core/test_cka.py``; within 0.03 in one draw:
``tests/plugins/metrics/test_cka_metric.py``). Chosen over an inter-subject ceiling
because CKA compares representations of the same neuroids (subjects' neuroids differ), and
over a split-half CKA with Spearman-Brown because CKA is not a correlation of two noisy
measurements that Spearman-Brown could extrapolate. Datasets without repetitions get no
ceiling.

Rows: per layer (``halves``: CKA on each half of the stimuli) and ``heldout`` (the layer
chosen on one half, scored on the other, both ways); the runner adds ``max``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from brainrank.core.cka import check_estimator, cka, cka_ceiling, gram
from brainrank.plugin import (
    Dataset,
    FeatureRequest,
    FeatureSet,
    InputError,
    Metric,
    MetricMetadata,
    MetricSpec,
    Score,
    heldout_layer_scores,
    hookimpl,
    split_halves,
)
from brainrank.plugins.metrics import _encoding as enc
from brainrank.plugins.metrics import _reduction as reduction

#: CKA on each half of the stimuli (for the heldout rows) needs 4 stimuli per half
MIN_STIMULI = 8
PCA_COMPONENTS = 1000


class CKA(Metric):
    """Linear CKA of each layer with each (subject, region) (module docstring)."""

    headline = "heldout"  # the layer chosen on one half of the stimuli, scored on the other

    identifier = "cka"
    version = "1"
    needs = "responses"
    #: the debiased estimator scores pure noise at 0; the biased one does not (an instance
    #: built with estimator="biased" sets this to False)
    calibrated: bool = True

    def __init__(
        self,
        estimator: str = "debiased",
        pca: int | None = PCA_COMPONENTS,
        features: str = "projection",
        eps: float = 0.1,
    ):
        check_estimator(estimator)
        reduction.check(features, pca)
        super().__init__(estimator=estimator, pca=pca, features=features, eps=float(eps))
        self.calibrated = estimator == "debiased"

    def check_applicable(self, dataset: Dataset) -> None:
        super().check_applicable(dataset)
        enc.require_stimuli(
            self.identifier, dataset, MIN_STIMULI, "the debiased HSIC on each half of the stimuli"
        )

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        self.check_applicable(dataset)
        return reduction.request(self.parameters, enc.n_stimuli(dataset))

    def ceilings(self, dataset: Dataset, groups, stimulus_ids) -> dict[tuple[str, str], float]:
        if self.parameters["estimator"] != "debiased":
            return {}
        responses = dataset.responses()
        if "repetition" not in responses.coords:
            return {}
        repetition = np.asarray(responses["repetition"].values)
        if np.unique(repetition).size < 2:
            return {}
        values = np.asarray(responses.values, dtype=np.float64)
        stimulus = np.asarray(responses["stimulus_id"].values).astype(str)
        out = {}
        for key, index in groups:
            try:
                value = cka_ceiling(values[:, index], stimulus, repetition, stimulus_ids)
            except InputError:
                continue
            if np.isfinite(value):
                out[key] = value
        return out

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        self.check_applicable(dataset)
        estimator = self.parameters["estimator"]
        targets = enc.Targets.of(dataset)
        ids = targets.stimulus_ids
        rows = features.rows_for(ids)
        halves = split_halves(len(ids), enc.SPLIT_SEED)
        Y_all = targets.values.astype(np.float64)
        response_grams = {
            key: [gram(Y_all[np.ix_(part, index)]) for part in (np.arange(len(ids)), *halves)]
            for key, index in targets.groups
        }
        ceilings = self.ceilings(dataset, targets.groups, ids)
        out: list[Score] = []
        for layer in features:
            X = reduction.principal_features(layer, self.parameters, rows)
            layer_grams = (
                None if X is None else [gram(X[part]) for part in (np.arange(len(ids)), *halves)]
            )
            for (subject, region), index in targets.groups:
                extra: dict[str, Any] = {"estimator": estimator, "calibrated": self.calibrated}
                if layer_grams is None:
                    value, on_halves = float("nan"), (float("nan"), float("nan"))
                    extra["reason"] = "the layer's features are constant across the stimuli"
                else:
                    grams = response_grams[(subject, region)]
                    value = cka(layer_grams[0], grams[0], estimator)
                    on_halves = tuple(cka(layer_grams[h], grams[h], estimator) for h in (1, 2))
                    extra["n_features"] = int(X.shape[1])
                out.append(
                    Score(
                        subject=subject,
                        region=region,
                        layer=layer.name,
                        value=value,
                        n_neuroids=int(index.size),
                        layer_index=layer.index,
                        relative_depth=layer.relative_depth,
                        ceiling=ceilings.get((subject, region)),
                        extra=extra,
                        halves=on_halves,
                    )
                )
        return out + heldout_layer_scores(out)

    def count_fits(self, scores: list[Score]) -> int:
        return 0  # no regression


PRESETS = {"cka": {}, "cka:biased": {"estimator": "biased"}}
DESCRIPTIONS = {
    "cka": "linear CKA (debiased HSIC, Song et al. 2012) between a layer and a region's "
    "trial-averaged responses; ceiling from split halves of the repetitions",
    "cka:biased": "linear CKA with the biased HSIC (Kornblith et al. 2019); NOT calibrated: "
    "pure noise scores about sqrt(d_X d_Y) / (n - 1)",
}
CITATION = "Kornblith et al. 2019 (ICML); Song et al. 2012 (JMLR) for the debiased HSIC"


def _build(identifier: str, preset: dict[str, Any], **parameters: Any) -> CKA:
    metric = CKA(**{**preset, **parameters})
    metric.identifier = identifier
    return metric


@hookimpl
def brainrank_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            identifier,
            partial(_build, identifier, preset),
            MetricMetadata(DESCRIPTIONS[identifier], "responses", CITATION),
        )
        for identifier, preset in PRESETS.items()
    ]
