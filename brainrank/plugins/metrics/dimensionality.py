"""``effective-dimensionality``: the effective dimensionality of every layer's features on a
dataset's stimuli, one value per layer (not a comparison with the brain: never ranked).

Value: the participation ratio ``(sum lambda)^2 / sum lambda^2`` of the eigenvalues
``lambda`` of the layer's feature covariance over the dataset's stimuli
(:func:`brainrank.core.dimensionality.participation_ratio`; Elmoznino & Bonner, "High-
performing neural network models of visual cortex benefit from high latent dimensionality";
the 5.17-billion-fit paper's text in /work/shared/papers gives no definition of its own).

Where it is computed, and why here: the spectrum needs the layer's full activations, which
exist only during feature extraction (a layer of a million features is never kept). The
extraction accumulates the exact stimulus x stimulus Gram matrix of every layer for exact
RDMs already (:class:`brainrank.core.rsa.GramAccumulator`); a request with ``spectrum=True``
takes the covariance eigenvalues from that same matrix (centred over stimuli, an (n, n)
eigendecomposition per layer, :func:`brainrank.core.dimensionality.covariance_spectrum`)
and the feature cache keeps them with the layer, so a model scored with ``rsa`` as well
pays one extraction. The sparse random projections the encoding metrics use would not do:
a very sparse projection to k dimensions inflates ``sum lambda^2`` by a term that depends on
the features' fourth moments and that the projection cannot see (about ``sqrt(p) / k`` of
the squared diagonal of the feature covariance), so the ratio would be biased low by an
amount that varies with the layer (measured: 20,000 features of uneven scales on 100
stimuli, effective dimensionality 91.1 exactly, 75.2 after a projection to 500 dimensions,
88.9 after 4096; ``tests/core/test_dimensionality.py``). As a metric plugin the value goes through the ordinary
path (content hashes, the store, ``brainrank.leaderboard.scores``) at no cost to the
leaderboard's design; :data:`brainrank.leaderboard.ranking.DESCRIPTIVE_METRICS` keeps it
out of rankings.

Rows: per layer and (subject, region) group of the dataset (the plugin contract: a metric
gives every group a row), ``value`` = the effective dimensionality of the layer on the
dataset's stimuli (between 1 and ``min(n_stimuli - 1, n_features)``), the same in every
group: it describes the features, not a region, and is repeated so that it sits beside each
cell's scores. ``extra``: the number of stimuli, the total variance (sum of the eigenvalues)
and the first 10 eigenvalues as fractions of it. The runner's ``max`` rows name the most
high-dimensional layer.
"""

from __future__ import annotations

import numpy as np

from brainrank.core.dimensionality import participation_ratio
from brainrank.plugin import (
    Dataset,
    FeatureRequest,
    FeatureSet,
    InputError,
    Metric,
    MetricMetadata,
    MetricSpec,
    Score,
    hookimpl,
)

IDENTIFIER = "effective-dimensionality"
SUBJECT = "all"
REGION = "features"
DESCRIPTION = (
    "effective dimensionality (participation ratio of the covariance eigenvalues) of every "
    "layer's features on the dataset's stimuli; describes the features, never ranked"
)


class EffectiveDimensionality(Metric):
    identifier = IDENTIFIER
    version = "1"
    needs = "either"

    def __init__(self) -> None:
        super().__init__()

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        return FeatureRequest(spectrum=True)

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        rows = []
        n = len(features.stimulus_ids)
        groups = _groups(dataset)
        for layer in features:
            if layer.spectrum is None:
                raise InputError(
                    f"features of layer {layer.name!r} of {features.model!r} have no covariance "
                    "spectrum; extract them with FeatureRequest(spectrum=True)."
                )
            spectrum = np.asarray(layer.spectrum, dtype=np.float64)
            total = float(np.clip(spectrum, 0, None).sum())
            value = participation_ratio(spectrum)
            top = np.sort(np.clip(spectrum, 0, None))[::-1][:10]
            extra = {
                "n_stimuli": n,
                "n_features": int(layer.n_features),
                "total_variance": total,
                "top_fractions": [float(v / total) for v in top] if total > 0 else [],
            }
            for subject, region in groups:
                rows.append(
                    Score(
                        subject=subject,
                        region=region,
                        layer=layer.name,
                        value=value,
                        n_neuroids=0,
                        layer_index=layer.index,
                        relative_depth=layer.relative_depth,
                        extra=dict(extra),
                    )
                )
        return rows


def _groups(dataset: Dataset) -> list[tuple[str, str]]:
    """The dataset's (subject, region) groups, in its order; one ``("all", "features")``
    group for a dataset that has neither responses nor RDMs here."""
    responses = dataset.responses() if dataset is not None else None
    if responses is not None:
        pairs = zip(map(str, responses["subject"].values), map(str, responses["region"].values),
                    strict=True)  # fmt: skip
        return list(dict.fromkeys(pairs))
    rdms = dataset.rdms() if dataset is not None else None
    if rdms is not None:
        return list(dict.fromkeys((str(d["subject"]), str(d["region"])) for d in rdms.descriptors))
    return [(SUBJECT, REGION)]


@hookimpl
def brainrank_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(IDENTIFIER, EffectiveDimensionality, MetricMetadata(DESCRIPTION, needs="either"))
    ]
