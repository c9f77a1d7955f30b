"""brainrank: compare artificial vision models with brains.

The public API::

    import brainrank
    brainrank.list_models("torchvision/*")          # identifiers (lazy: nothing is built)
    model = brainrank.load_model("torchvision/alexnet:random")
    dataset = brainrank.load_dataset("simulated")
    metric = brainrank.load_metric("srp-ridge", alphas=[1.0])
    frame = brainrank.score(model, dataset, metric)  # per-layer and best-layer scores

    from brainrank import leaderboard
    leaderboard.ranking()                            # the stored leaderboard

Plugins implement the hooks of :mod:`brainrank.core.registry` with :data:`hookimpl`.
"""

from __future__ import annotations

from typing import Any

from brainrank import _env  # noqa: F401  (first: sets the OpenMP policy before torch loads)
from brainrank.core.errors import (
    BrainrankError,
    DataUnavailableError,
    DuplicateIdentifierError,
    InputError,
    NotApplicableError,
    PluginError,
    StoreError,
    UnknownIdentifierError,
    WeightsUnavailableError,
)
from brainrank.core.registry import Registry, get_registry, hookimpl
from brainrank.core.types import (
    Dataset,
    DatasetMetadata,
    DatasetSpec,
    FeatureRequest,
    FeatureSet,
    Metric,
    MetricMetadata,
    MetricSpec,
    Model,
    ModelMetadata,
    ModelSpec,
    RDMSet,
    Score,
    StimulusSet,
    make_responses,
)

__version__ = "0.1.0"

__all__ = [
    "BrainrankError",
    "DataUnavailableError",
    "Dataset",
    "DatasetMetadata",
    "DatasetSpec",
    "DuplicateIdentifierError",
    "FeatureRequest",
    "FeatureSet",
    "InputError",
    "Metric",
    "MetricMetadata",
    "MetricSpec",
    "Model",
    "ModelMetadata",
    "ModelSpec",
    "NotApplicableError",
    "PluginError",
    "RDMSet",
    "Registry",
    "Score",
    "StimulusSet",
    "StoreError",
    "UnknownIdentifierError",
    "WeightsUnavailableError",
    "__version__",
    "get_registry",
    "hookimpl",
    "list_datasets",
    "list_metrics",
    "list_models",
    "load_dataset",
    "load_metric",
    "load_model",
    "make_responses",
    "score",
]


def list_models(pattern: str | None = None) -> list[str]:
    """Identifiers of the registered models matching a shell-style pattern."""
    return get_registry().select("model", pattern or "*")


def list_datasets(pattern: str | None = None) -> list[str]:
    return get_registry().select("dataset", pattern or "*")


def list_metrics(pattern: str | None = None) -> list[str]:
    return get_registry().select("metric", pattern or "*")


def load_model(identifier: str, **options: Any) -> Model:
    """Build a model (``weights=PATH`` loads trained weights from a file)."""
    return get_registry().get("model", identifier).load(**options)


def load_dataset(identifier: str, data_dir: Any = None) -> Dataset:
    """Read a dataset (``data_dir`` overrides the configured data folder)."""
    from brainrank.config import settings

    return get_registry().get("dataset", identifier).load(data_dir=data_dir or settings().data_dir)


def load_metric(identifier: str, **parameters: Any) -> Metric:
    return get_registry().get("metric", identifier).load(**parameters)


def score(
    model: str | Model,
    dataset: str | Dataset,
    metric: str | Metric = "srp-ridge",
    *,
    db: str | None = None,
    extraction: Any = None,
    cache: bool = True,
):
    """Score one model on one dataset with one metric, locally, and return a DataFrame of
    the per-layer and best-layer scores. ``model`` may be a :class:`Model` built in your own
    code (any torch module with its preprocessing). With ``db`` the scores are also stored in
    that leaderboard."""
    import dataclasses

    import pandas as pd

    from brainrank.config import settings
    from brainrank.core.cache import FeatureCache
    from brainrank.core.extraction import ExtractionConfig
    from brainrank.core.runner import compute_features, score_features

    model = load_model(model) if isinstance(model, str) else model
    dataset = load_dataset(dataset) if isinstance(dataset, str) else dataset
    metric = load_metric(metric) if isinstance(metric, str) else metric
    metric.check_applicable(dataset)
    conf = settings()
    extraction = extraction or ExtractionConfig(
        batch_size=conf.batch_size, memory_budget=int(conf.memory_budget_gb * 2**30)
    )
    feature_cache = FeatureCache(conf.cache_dir / "features") if cache else None
    features = compute_features(
        model, dataset.stimuli, metric.feature_request(dataset), extraction, feature_cache
    )
    rows = score_features(metric, features, dataset)
    if db is not None:
        from brainrank.leaderboard import open_store

        store = open_store(db)
        store.register_model(model.identifier, model.metadata)
        store.register_metric(metric)
        store.write_scores(
            run_id=None,
            model=model.identifier,
            dataset=dataset.identifier,
            metric=metric,
            scores=rows,
            feature_key=features.key,
        )
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    frame.insert(0, "metric", metric.identifier)
    frame.insert(0, "dataset", dataset.identifier)
    frame.insert(0, "model", model.identifier)
    return frame.rename(columns={"value": "score"})
