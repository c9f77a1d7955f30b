"""One job of the grid: build one model, get its features on one stimulus set once, score
every pending (dataset, metric) on them and write each result as soon as it is done.

:func:`run_job` is the only path from a model to a stored score: the grid runs it in this
process or on Dask workers, and ``brainrank.score`` runs it for one combination, so every
stored row carries its run, its content hashes and its completion record whichever door it
came through.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from brainrank.core.cache import FeatureCache
from brainrank.core.dataset import Dataset
from brainrank.core.errors import BrainrankError, InputError, PluginError
from brainrank.core.extraction import ExtractionConfig
from brainrank.core.features import compute_features, score_features
from brainrank.core.hashing import dataset_hash, weights_hash
from brainrank.core.metric import Metric
from brainrank.core.registry import Registry
from brainrank.core.scores import FeatureRequest
from brainrank.core.specs import Model
from brainrank.grid.progress import JobProgress
from brainrank.grid.protocol import ResultStore

log = logging.getLogger(__name__)


@dataclass
class Failure:
    stage: str
    error: str
    model: str | None = None
    dataset: str | None = None
    metric: str | None = None


@dataclass(frozen=True)
class Combo:
    """One (dataset, metric configuration) a job scores for its model."""

    dataset: str
    metric: str
    metric_hash: str
    plan_hash: str
    #: weights recorded when this combination was stored (None: not stored yet)
    stored_weights: str | None = None


@dataclass
class Job:
    """The work on one (model, stimulus set): ``pending`` combinations to score and
    ``stored`` ones to score only if the model's weights turn out to differ."""

    model: str
    stimuli_hash: str
    pending: list[Combo]
    stored: list[Combo] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.model} on stimuli {self.stimuli_hash[:8]}"


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
    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)
    cache_root: str | None = None
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    threads: int | None = None
    #: raise the first error instead of recording it and going on (the Python API)
    raise_errors: bool = False


@dataclass
class JobResult:
    model: str
    n_scores: int = 0
    n_scored: int = 0
    n_combos: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0


class Context:
    """Loaded plugins for running jobs: shared with the planner in-process, rebuilt once per
    worker process on Dask. Objects given here (a model built in the caller's code, loaded
    datasets and metrics) are used instead of loading them from the registry."""

    def __init__(
        self,
        config: GridConfig,
        registry: Registry | None = None,
        store: ResultStore | None = None,
        datasets: dict[str, Dataset] | None = None,
        metrics: dict[tuple[str, str], Metric] | None = None,
        models: dict[str, Model] | None = None,
    ):
        self.config = config
        self._registry = registry
        self._store = store
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
    def store(self) -> ResultStore:
        if self._store is None:
            if self.config.store is None:
                raise InputError("this grid has no result store that a worker can open.")
            self._store = self.config.store()
        return self._store

    def model(self, identifier: str) -> tuple[Model, str]:
        """The model and the plugin that provides it ("" for a model given as an object)."""
        if identifier in self.models:
            return self.models[identifier], ""
        spec = self.registry.get("model", identifier)
        return spec.load(**self.config.model_options.get(identifier, {})), spec.plugin

    def dataset(self, identifier: str) -> Dataset:
        if identifier not in self.datasets:
            spec = self.registry.get("dataset", identifier)
            self.datasets[identifier] = spec.load(data_dir=self.config.data_dir)
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


def plugin_exit(exc: BaseException, stage: str) -> BaseException:
    """A plugin's ``sys.exit()`` as the plugin error it is (it must not end the run)."""
    if isinstance(exc, SystemExit):
        return PluginError(
            f"a plugin called sys.exit({exc.code!r}) while brainrank was at stage {stage!r}; "
            "plugins must raise an exception instead (the run goes on without it)."
        )
    return exc


def record_failure(
    store: ResultStore,
    run_id: int | None,
    failures: list[Failure],
    stage: str,
    exc: BaseException | str,
    **where: str | None,
) -> BaseException | str:
    """Note a failure in ``failures``, record it in the store (with its traceback unless a
    user caused it) and log it; returns the error as recorded (a plugin's ``sys.exit`` as a
    :class:`PluginError`). A store that cannot record it is logged, never raised over it."""
    if not isinstance(exc, str):
        exc = plugin_exit(exc, stage)
    message = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    failures.append(Failure(stage, message, **where))
    trace = (
        None if isinstance(exc, (str, BrainrankError)) else "".join(traceback.format_exception(exc))
    )
    try:
        store.record_failure(run_id, stage, exc, traceback=trace, **where)
    except Exception as store_exc:  # the failure is still reported to the caller
        log.error("could not record a failure in the leaderboard: %s", store_exc)
    log.warning("%s failed (%s): %s", stage,
                ", ".join(f"{k}={v}" for k, v in where.items() if v), message)  # fmt: skip
    return exc


def run_job(
    job: Job,
    config: GridConfig,
    context: Context | None = None,
    progress: JobProgress | None = None,
) -> JobResult:
    """Build one model, extract its features on one stimulus set, score every pending
    (dataset, metric) and write each to the result store as soon as it is done.

    A failure at any stage is recorded in the store with its traceback and the job goes on
    with what it can still do (``config.raise_errors``: raised after it is recorded).
    """
    started = time.time()
    ctx = context or worker_context(config)
    progress = progress or JobProgress()
    store = ctx.store
    result = JobResult(model=job.model, n_combos=len(job.pending))

    def fail(stage: str, exc: BaseException, **where: str | None) -> None:
        exc = record_failure(store, config.run_id, result.failures, stage, exc, **where)
        if config.raise_errors:
            raise exc

    def done(combos: list[Combo], failed: bool = True) -> None:
        for combo in combos:
            suffix = ": failed" if failed else ""
            progress.scored(f"{job.model} x {combo.dataset} x {combo.metric}{suffix}")

    try:
        model, plugin = ctx.model(job.model)
        weights = weights_hash(model)
        store.register_model(job.model, model.metadata, plugin, weights_hash=weights)
    except (Exception, SystemExit) as exc:
        done(job.pending)
        result.seconds = time.time() - started
        fail("model", exc, model=job.model)
        return result

    stale = [c for c in job.stored if c.stored_weights != weights]
    if stale:
        log.warning("%s: the weights differ from those of %d stored scores; scoring again",
                    job.model, len(stale))  # fmt: skip
    pending = job.pending + stale
    result.n_combos = len(pending)
    if not pending:
        result.seconds = time.time() - started
        return result

    try:
        datasets = {c.dataset: ctx.dataset(c.dataset) for c in pending}
        metrics = {(c.metric, c.metric_hash): ctx.metric(c.metric, c.metric_hash)
                   for c in pending}  # fmt: skip
        request = FeatureRequest()
        for combo in pending:
            metric = metrics[(combo.metric, combo.metric_hash)]
            request = request | metric.feature_request(datasets[combo.dataset])
        stimuli = next(iter(datasets.values())).stimuli
        bar, callback = progress.images(f"{job.model} on {stimuli.identifier}", len(stimuli))
        try:
            features = compute_features(
                model, stimuli, request, config.extraction, ctx.cache, callback
            )
        finally:
            if bar is not None:
                bar.close()
    except (Exception, SystemExit) as exc:
        done(pending)
        result.seconds = time.time() - started
        fail("features", exc, model=job.model,
             dataset=",".join(sorted({c.dataset for c in pending})))  # fmt: skip
        return result

    for combo in pending:
        where = {"model": job.model, "dataset": combo.dataset, "metric": combo.metric}
        begun = time.time()
        try:
            dataset = datasets[combo.dataset]
            metric = metrics[(combo.metric, combo.metric_hash)]
            rows = score_features(metric, features, dataset)
            result.n_scores += store.write_scores(
                run_id=config.run_id,
                model=job.model,
                dataset=combo.dataset,
                metric=metric,
                scores=rows,
                feature_key=features.key or None,
                weights_hash=weights,
                stimuli_hash=job.stimuli_hash,
                data_hash=ctx.data_hash(combo.dataset),
                plan_hash=combo.plan_hash,
                seconds=time.time() - begun,
            )
            result.n_scored += 1
            done([combo], failed=False)
        except (Exception, SystemExit) as exc:
            done([combo])
            fail("score", exc, **where)
    del model, features
    result.seconds = time.time() - started
    return result
