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

Plugins import what they need from :mod:`brainrank.plugin` (the public plugin API).
"""

from __future__ import annotations

from typing import Any

from brainrank import _env  # noqa: F401  (first: sets the OpenMP policy before torch loads)
from brainrank._version import __version__
from brainrank.core.dataset import Dataset
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
from brainrank.core.metric import Metric
from brainrank.core.registry import Registry, get_registry, hookimpl
from brainrank.core.responses import RDMSet, make_responses
from brainrank.core.scores import FeatureRequest, FeatureSet, Score
from brainrank.core.specs import (
    DatasetMetadata,
    DatasetSpec,
    MetricMetadata,
    MetricSpec,
    Model,
    ModelMetadata,
    ModelSpec,
)
from brainrank.core.stimuli import StimulusSet

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
    return get_registry().get("dataset", identifier).load(data_dir=data_dir)


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
    device: str | None = None,
):
    """Score one model on one dataset with one metric, locally, and return a DataFrame of
    the per-layer and summary scores (``selection``: ``layer``, ``max``, ``heldout``...).

    ``model`` may be a :class:`Model` built in your own code (any torch module with its
    preprocessing). The work goes through the same job function as ``brainrank run``: with
    ``db`` (a database URL or SQLite path) the scores are stored in that leaderboard with a
    run record, the weights, stimuli, data and feature hashes and a completion record;
    without it they are kept in memory only. Errors are raised.

    ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``; default: the
    ``device`` setting, ``BRAINRANK_DEVICE`` or ``cpu``) is where extraction and scoring run.
    It is recorded in the run's configuration and changes no hash: a score computed on a GPU
    replaces none computed on the CPU, and agrees with it within float32 tolerance.
    """
    import dataclasses

    import pandas as pd

    from brainrank.core.backend import resolve_device
    from brainrank.core.cache import FeatureCache
    from brainrank.core.extraction import ExtractionConfig
    from brainrank.grid import MemoryStore, score_one
    from brainrank.settings import settings

    conf = settings(device=device)
    if device is None and extraction is not None and extraction.device != "cpu":
        device = extraction.device  # an ExtractionConfig's own device, unless device= is given
    device = resolve_device(device or conf.device)  # checked before any model is built
    plugin = ""
    if isinstance(model, str):
        plugin = get_registry().get("model", model).plugin
        model = load_model(model)
    dataset = load_dataset(dataset) if isinstance(dataset, str) else dataset
    metric = load_metric(metric) if isinstance(metric, str) else metric
    extraction = extraction or ExtractionConfig(
        batch_size=conf.batch_size, memory_budget=int(conf.memory_budget_gb * 2**30)
    )
    feature_cache = FeatureCache(conf.cache_dir / "features") if cache else None
    if db is not None:
        from brainrank.leaderboard import open_store

        store = open_store(db)
    else:
        store = MemoryStore()
    _, rows = score_one(
        model,
        dataset,
        metric,
        store,
        extraction=extraction,
        cache=feature_cache,
        plugin=plugin,
        device=device,
    )
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    frame.insert(0, "metric", metric.identifier)
    frame.insert(0, "dataset", dataset.identifier)
    frame.insert(0, "model", model.identifier)
    return frame.rename(columns={"value": "score"})
