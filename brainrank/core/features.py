"""Features of one model on one stimulus set: from the feature cache when it covers the
request, else extracted (and cached); and the scores a metric computes from them."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from brainrank.core.cache import FeatureCache
from brainrank.core.dataset import Dataset
from brainrank.core.errors import ResultError
from brainrank.core.extraction import ExtractionConfig, extract_features
from brainrank.core.hashing import features_key
from brainrank.core.metric import Metric
from brainrank.core.scores import FeatureRequest, FeatureSet, Score, best_layer_scores
from brainrank.core.specs import Model
from brainrank.core.stimuli import StimulusSet

log = logging.getLogger(__name__)


def compute_features(
    model: Model,
    stimuli: StimulusSet,
    request: FeatureRequest,
    config: ExtractionConfig,
    cache: FeatureCache | None = None,
    progress: Callable[[int], None] | None = None,
) -> FeatureSet:
    """Features from the cache when it covers ``request``, else extracted (and cached)."""
    key = features_key(model, stimuli, config)
    if cache is not None:
        if cache.covers(key, request):
            cached = cache.load(key)
            if cached is not None:
                return cached
        stored = cache.stored_request(key)
        if stored is not None:  # extend what is cached rather than replace it
            request = request | stored
    features = extract_features(model, stimuli, request, config, progress=progress)
    features.key = key
    if cache is not None:
        try:
            cache.store(key, features)
        except OSError as exc:
            log.warning("could not write the feature cache at %s: %s", cache.root, exc)
    return features


def score_features(metric: Metric, features: FeatureSet, dataset: Dataset) -> list[Score]:
    """The metric's per-layer scores and its own summary rows, plus the best-layer ("max")
    rows when the metric does not give them itself.

    Raises :class:`~brainrank.core.errors.ResultError` when the metric's result is not a
    list of :class:`Score` with real-number values, is empty, or has no finite value: such
    a result is never stored as if it were a score (the grid records it as a failure, so the
    next run tries again)."""
    result = metric.score(features, dataset)
    name = f"metric {metric.identifier!r} on dataset {dataset.identifier!r}"
    if not isinstance(result, (list, tuple)):
        raise ResultError(
            f"{name} returned {type(result).__name__}, not a list of brainrank Score objects; "
            "Metric.score must return list[Score]."
        )
    rows = list(result)
    for row in rows:
        if not isinstance(row, Score):
            raise ResultError(
                f"{name} returned a {type(row).__name__} among its scores; every item must be "
                "a brainrank Score."
            )
        if isinstance(row.value, (bool, np.bool_)) or not isinstance(
            row.value, (int, float, np.integer, np.floating)
        ):
            raise ResultError(
                f"{name} gave layer {row.layer!r} ({row.subject}, {row.region}) the value "
                f"{_short(row.value)} of type {type(row.value).__name__}; a score's value must "
                "be one real number (per-neuroid values go in Score.per_neuroid)."
            )
    if not rows:
        raise ResultError(
            f"{name} returned no scores; nothing is stored and the combination is tried again "
            "on the next run."
        )
    if not any(np.isfinite(float(row.value)) for row in rows):
        raise ResultError(
            f"every one of the {len(rows)} scores of {name} is NaN or infinite (for example "
            "too few stimuli or constant responses); nothing is stored and the combination "
            "is tried again on the next run."
        )
    if not any(row.selection == "max" for row in rows):
        rows += best_layer_scores(rows, "max")
    return rows


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
