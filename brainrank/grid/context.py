"""What a worker needs to run jobs: the grid's configuration (:class:`GridConfig`,
picklable) and the plugins loaded from it (:class:`Context`: one per worker process on
Dask, shared with the planner in this process)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from brainrank.core.cache import FeatureCache
from brainrank.core.dataset import Dataset
from brainrank.core.dataset_options import load_dataset, option_identifier
from brainrank.core.errors import InputError
from brainrank.core.extraction import ExtractionConfig
from brainrank.core.features import ModelHandle, model_handle
from brainrank.core.hashing import dataset_hash
from brainrank.core.metric import Metric
from brainrank.core.registry import Registry
from brainrank.core.runsettings import RunSettings
from brainrank.core.specs import Model
from brainrank.results import LEASE_TIMEOUT, LeaseBoard, ResultSink, ResultStore


@dataclass(frozen=True)
class GridConfig:
    """Everything a worker needs to run jobs (picklable).

    ``store`` opens the result store in a worker process (for example
    ``functools.partial(Store, url)``); it is called once per worker.
    """

    store: Callable[[], ResultStore] | None
    run_id: int | None
    plugin_files: tuple[str, ...] = ()
    data_dir: str | None = None
    #: how features are extracted, with the run's device (resolved when the run was planned)
    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)
    cache_root: str | None = None
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: options of the datasets built with some, by registered identifier (see
    #: :mod:`brainrank.core.dataset_options`; the jobs name them by their option identifier)
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: threads a worker process may use (a local Dask cluster); None: not limited
    threads: int | None = None
    #: raise the first error instead of recording it and going on (the Python API)
    raise_errors: bool = False
    #: seconds without a heartbeat after which another run takes a lease over
    lease_timeout: float = LEASE_TIMEOUT

    @property
    def settings(self) -> RunSettings:
        """The run settings plugins see (the device is the extraction's: one value)."""
        extraction = self.extraction
        return RunSettings(device=extraction.device, batch_size=extraction.batch_size,
                           memory_budget=extraction.memory_budget, threads=self.threads)  # fmt: skip


class Context:
    """Loaded plugins for running jobs: shared with the planner in-process, rebuilt once per
    worker process on Dask. Objects given here (a model built in the caller's code, loaded
    datasets and metrics) are used instead of loading them from the registry. ``store`` is
    the result sink and ``leases`` the lease board (default: the store, which a worker
    opens with ``config.store``)."""

    def __init__(
        self,
        config: GridConfig,
        registry: Registry | None = None,
        store: ResultSink | None = None,
        datasets: dict[str, Dataset] | None = None,
        metrics: dict[tuple[str, str], Metric] | None = None,
        models: dict[str, Model] | None = None,
        leases: LeaseBoard | None = None,
    ):
        self.config = config
        self._registry = registry
        self._store = store
        self._leases = leases
        self.datasets = dict(datasets or {})
        self.metrics = dict(metrics or {})
        self.models = dict(models or {})
        self.cache = FeatureCache(config.cache_root) if config.cache_root else None
        self.data_hashes: dict[str, str] = {}

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(plugin_files=self.config.plugin_files)
        return self._registry

    @property
    def store(self) -> ResultSink:
        if self._store is None:
            if self.config.store is None:
                raise InputError("this grid has no result store that a worker can open.")
            self._store = self.config.store()
        return self._store

    @property
    def leases(self) -> LeaseBoard:
        if self._leases is None:
            store = self.store
            if not isinstance(store, LeaseBoard):
                raise InputError("this grid's result store is no lease board.")
            self._leases = store
        return self._leases

    def model(self, identifier: str) -> tuple[Model | ModelHandle, str]:
        """The model and the plugin that provides it ("" for a model given as an object); a
        plugin's model comes as a handle, built only when its identity is not remembered or
        its features are not cached."""
        if identifier in self.models:
            return self.models[identifier], ""
        spec = self.registry.get("model", identifier)
        options = self.config.model_options.get(identifier, {})
        return model_handle(spec, options, self.cache), spec.plugin

    def dataset(self, identifier: str) -> Dataset:
        if identifier not in self.datasets:
            base, options = identifier, {}
            for name, given in self.config.dataset_options.items():
                if option_identifier(name, given) == identifier:
                    base, options = name, given
            spec = self.registry.get("dataset", base)
            self.datasets[identifier] = load_dataset(spec, options, self.config.data_dir)
        return self.datasets[identifier]

    def data_hash(self, identifier: str) -> str:
        if identifier not in self.data_hashes:
            self.data_hashes[identifier] = dataset_hash(self.dataset(identifier))
        return self.data_hashes[identifier]

    def metric(self, identifier: str, config_hash: str) -> Metric:
        key = (identifier, config_hash)
        if key not in self.metrics:
            spec = self.registry.get("metric", identifier)
            metric = spec.load(**self.config.metric_params.get(identifier, {}))
            if metric.config_hash != config_hash:
                raise InputError(
                    f"metric {identifier!r} has configuration {metric.config_hash} on this "
                    f"worker but {config_hash} where the run was planned; install the same "
                    "brainrank and plugin versions on every worker."
                )
            self.metrics[key] = metric
        return self.metrics[key]


_WORKER_CONTEXTS: dict[str, Context] = {}


def worker_context(config: GridConfig) -> Context:
    """One context per worker process and grid configuration."""
    key = repr(dataclasses.replace(config, run_id=None))
    context = _WORKER_CONTEXTS.get(key)
    if context is None:
        _WORKER_CONTEXTS.clear()  # another grid: drop the previous one's data
        if config.threads:
            limit_threads(config.threads)
        context = _WORKER_CONTEXTS[key] = Context(config)
    return context


def limit_threads(n: int) -> None:
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # pragma: no cover
        pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # pragma: no cover
        pass
