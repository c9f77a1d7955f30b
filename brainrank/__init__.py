"""brainrank: compare artificial vision models with brains.

The public API::

    import brainrank
    brainrank.list_models("torchvision/*")          # identifiers (lazy: nothing is built)
    model = brainrank.load_model("torchvision/alexnet:random")
    dataset = brainrank.load_dataset("simulated")
    metric = brainrank.load_metric("srp-ridge", alphas=[1.0])
    frame = brainrank.score(model, dataset, metric)  # rows as leaderboard.scores() gives them
    acts = brainrank.features(model, "photos/", layers=["features.10"])  # {layer: array}

    from brainrank import leaderboard
    leaderboard.ranking()                            # the stored leaderboard
    leaderboard.scores(db="lab.db", model="timm/*")  # the leaderboard is always db=

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
    "features",
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
    model: str | Model | list[str | Model] | None,
    dataset: str | Dataset,
    metric: str | Metric = "srp-ridge",
    *,
    spaces: Any = None,
    db: str | None = None,
    extraction: Any = None,
    cache: bool = True,
    device: str | None = None,
    layers: str | None = None,
    output: str = "frame",
    dataset_options: dict[str, Any] | None = None,
):
    """Score one model on one dataset with one metric, locally, and return its per-layer and
    summary rows (``selection``: ``layer``, ``max``, ``heldout``...) in the schema of
    :func:`brainrank.leaderboard.scores`: the same columns (``score``, ``ceiling``,
    ``normalized``, ``flag``, ``chance``, ``config``, the model's taxonomy...), computed by
    the same code.

    ``model`` may be a :class:`Model` built in your own code (any torch module with its
    preprocessing), ``dataset`` and ``metric`` objects too. This is the grid's path for one
    combination (``execute(plan(...))``, as ``brainrank run``): the same checks, the same
    plan hash and the same run configuration, so with ``db`` (a database URL or SQLite path)
    a score either door stored is reused (returned from the leaderboard, not recomputed),
    and a new one is stored with a run record, its weights, stimuli, data and feature hashes
    and a completion record. Without ``db`` the scores go to a temporary leaderboard that
    is deleted once read (per-neuroid values: give ``db`` and read
    ``leaderboard.per_neuroid(db=...)``). Errors are recorded, then raised.

    ``spaces`` (``["MODEL:LAYER", "MODEL", ...]``, for a metric that takes feature spaces of
    several models: ``stacking``, ``variance-partitioning``) scores those spaces together as
    one model, ``stack/<hash>`` (:mod:`brainrank.core.spaces`); ``model`` is then ``None`` or
    the list of :class:`Model` objects of your own that the spaces name by identifier.

    ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``; default: the
    ``device`` setting, ``BRAINRANK_DEVICE`` or ``cpu``) is where extraction and scoring run.
    It is recorded in the run's configuration and changes no hash: a score computed on a GPU
    replaces none computed on the CPU, and agrees with it within float32 tolerance.

    ``layers`` (``"all"``, ``"blocks"`` or comma-separated shell patterns over layer names;
    default: ``extraction.layers``, else ``"all"``) picks the layers extracted and scored
    (see :mod:`brainrank.core.extraction.layers`); a choice other than ``"all"`` is another
    extraction configuration, with its own plan hash.

    ``dataset_options`` (``{"reliability_threshold": 0.5}``, with ``dataset`` given by
    identifier) builds the dataset with those options of its factory, over those of
    ``[dataset_options."NAME"]`` in ``config.toml``: a dataset entry of its own, named by them
    (``allen/natural-scenes(reliability_threshold=0.5)``; see
    :mod:`brainrank.core.dataset_options`).

    ``output="xarray"`` returns the summary rows as a Brain-Score-style score
    (:func:`brainrank.leaderboard.export.as_xarray`: ``center``, ``error``, ``raw``,
    ``ceiling`` per region).
    """
    import dataclasses
    import shutil
    import tempfile
    from pathlib import Path

    from brainrank.core.cache import FeatureCache
    from brainrank.core.extraction import ExtractionConfig
    from brainrank.grid import InProcess
    from brainrank.grid.execute import execute
    from brainrank.grid.plan import plan
    from brainrank.leaderboard import open_store
    from brainrank.leaderboard.query import scores
    from brainrank.settings import settings

    if output not in ("frame", "xarray"):
        raise InputError(f"output must be 'frame' or 'xarray', not {output!r}.")
    conf = settings(device=device)
    if device is None and extraction is not None and extraction.device != "cpu":
        device = extraction.device  # an ExtractionConfig's own device, unless device= is given
    extraction = extraction or ExtractionConfig(
        batch_size=conf.batch_size, memory_budget=int(conf.memory_budget_gb * 2**30)
    )
    if layers is not None:
        extraction = dataclasses.replace(extraction, layers=layers)
    if spaces is not None:
        if not isinstance(metric, str):
            raise InputError(
                "spaces= goes with a metric given by identifier; a metric object carries its "
                "own spaces (load_metric('stacking', spaces=[...]))."
            )
        metric = get_registry().get("metric", metric).load(spaces=spaces)
    models = [] if model is None else list(model) if isinstance(model, (list, tuple)) else [model]
    if dataset_options and not isinstance(dataset, str):
        raise InputError(
            "dataset_options= goes with a dataset given by identifier; build a dataset object "
            "with its options in your code."
        )
    named = [dataset] if isinstance(dataset, str) else []
    options = conf.options_of_datasets(
        named, {dataset: dict(dataset_options)} if dataset_options else None
    )
    the_plan = plan(
        models,
        [dataset],
        [metric],
        extraction,
        registry=get_registry(),
        cache=FeatureCache(conf.cache_dir / "features") if cache else None,
        device=device if device is not None else conf.device,
        dataset_options=options,
    )
    if not the_plan.combos and not the_plan.failures:  # refused before any run is recorded
        raise NotApplicableError(the_plan.skipped[0] if the_plan.skipped else "nothing to score")
    # without a database, a temporary leaderboard: read back by the leaderboard's own code,
    # so both doors return one schema
    temporary = None if db is not None else tempfile.mkdtemp(prefix="brainrank-score-")
    store = open_store(db if db is not None else str(Path(temporary) / "scores.db"))
    try:
        # a failure of the plan or of the job is recorded in the run, then raised
        execute(the_plan, store, executor=InProcess(), progress=False, raise_errors=True,
                door="brainrank.score")  # fmt: skip
        (planned,) = the_plan.combos
        combo = planned.combo
        frame = scores(db=store, model=planned.model, dataset=combo.dataset, metric=combo.metric,
                       metric_hash=combo.metric_hash)  # fmt: skip
    finally:
        if temporary is not None:
            store.close()
            shutil.rmtree(temporary, ignore_errors=True)
    if output == "xarray":
        from brainrank.leaderboard.export import as_xarray

        return as_xarray(frame)
    return frame.reset_index(drop=True)


def features(model: str | Model, images: Any, layers: Any = None, **options: Any) -> Any:
    """A model's activations on images, as arrays or xarray (thingsvision's
    ``extract_features``): see :func:`brainrank.activations.features`."""
    from brainrank.activations import features as extract

    return extract(model, images, layers, **options)
