"""Plans and runs the model x dataset x metric grid, in this process or on a Dask cluster.

**Planning.** Metrics and datasets are loaded once; every (model, dataset, metric
configuration) gets a *plan hash* over what is known before a model is built: the model
identifier and its options, the content of the stimuli and of the data, the metric's
configuration hash and the extraction settings. A combination whose completion record in
the leaderboard has the same plan hash is already scored and is skipped (``recompute=True``
scores it again). The rest is grouped by (model, stimulus set): one *job* builds the model
once, extracts its features once per stimulus set (or reads them from the feature cache)
and scores every dataset and metric that uses those stimuli.

**Content.** A job hashes the model's weights. Combinations skipped as stored whose record
names other weights are scored again in the same job (the weights changed under the same
identifier). Every score row carries its weights, stimuli, data and feature hashes.

**Writes.** The scores of one (model, dataset, metric), their per-neuroid values and the
completion record are written in one transaction as soon as that combination is done, so a
run killed at any moment (even by SIGKILL) loses at most the combinations in flight; run it
again and it finishes the grid without recomputing what is stored.

**Execution.** ``workers=1`` (the default) runs the jobs in this process, without Dask.
``workers=N`` starts a local Dask cluster of N single-threaded worker processes (the
extraction memory budget is split between them); ``scheduler=ADDRESS`` submits the jobs to
an existing Dask scheduler (for example one started by dask-jobqueue on a SLURM cluster;
the workers need brainrank, the plugins and the data at the same paths). Workers write to
the leaderboard themselves (SQLite in WAL mode for workers on one machine, PostgreSQL for a
cluster).

**Failures.** A failure at any stage (a plugin that does not import, weights that are
missing, a metric that raises, a worker that dies) is recorded in the leaderboard with its
traceback and the rest of the grid goes on.

This module knows no model, dataset or metric by name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.core.cache import FeatureCache, feature_key
from brainrank.core.errors import BrainrankError, InputError, NotApplicableError
from brainrank.core.extraction import (
    EXTRACTION_VERSION,
    ExtractionConfig,
    extract_features,
    state_dict_hash,
)
from brainrank.core.projection import SCHEME
from brainrank.core.registry import Registry
from brainrank.core.types import (
    Dataset,
    FeatureRequest,
    FeatureSet,
    Metric,
    Model,
    Score,
    StimulusSet,
    best_layer_scores,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- results


@dataclass
class Failure:
    stage: str
    error: str
    model: str | None = None
    dataset: str | None = None
    metric: str | None = None


@dataclass
class RunSummary:
    run_id: int | None
    n_scores: int = 0
    failures: list[Failure] = field(default_factory=list)
    #: reasons why a metric does not apply to a dataset
    skipped: list[str] = field(default_factory=list)
    #: (model, dataset, metric) combinations already stored and not recomputed
    n_stored: int = 0
    #: combinations scored by this run
    n_scored: int = 0
    seconds: float = 0.0
    executor: str = "local"


# --------------------------------------------------------------------------- hashes


def features_key(model: Model, stimuli: StimulusSet, config: ExtractionConfig) -> str:
    """The content hash that determines a model's features on a stimulus set."""
    from brainrank import __version__

    return feature_key(
        {
            "model": model.identifier,
            "weights": weights_hash(model),
            "preprocess": model.preprocess_id,
            "layers": list(model.layers) if model.layers is not None else None,
            "stimuli": stimuli.content_hash(),
            "projection_seed": config.projection_seed,
            "projection_scheme": SCHEME,
            "extraction": EXTRACTION_VERSION,
            "brainrank": __version__,
        }
    )


def weights_hash(model: Model) -> str:
    """The content of a model's weights: its ``weights_id`` or a hash of its state dict."""
    if not model.weights_id:
        model.weights_id = state_dict_hash(model.module)
    return model.weights_id


def dataset_hash(dataset: Dataset) -> str:
    """A sha256 over a dataset's stimuli and its data (responses with their ids, or RDMs)."""
    h = hashlib.sha256()
    h.update(dataset.identifier.encode())
    h.update(dataset.stimuli.content_hash().encode())
    responses = dataset.responses()
    if responses is not None:
        values = np.ascontiguousarray(np.asarray(responses.values))
        h.update(f"{values.dtype.str}{values.shape}".encode())
        h.update(values)  # the array's buffer, hashed in place (no copy of the data)
        for name in ("stimulus_id", "repetition", "neuroid_id", "subject", "region"):
            if name in responses.coords:
                h.update(name.encode())
                h.update("\x1f".join(map(str, responses[name].values.tolist())).encode())
    rdms = dataset.rdms()
    if rdms is not None:
        h.update(np.ascontiguousarray(rdms.dissimilarities))
        h.update(json.dumps([rdms.stimulus_ids, rdms.descriptors], default=str).encode())
    return h.hexdigest()


def plan_hash(
    model: str,
    model_options: dict[str, Any],
    dataset: str,
    stimuli_hash: str,
    data_hash: str,
    metric_hash: str,
    extraction: ExtractionConfig,
) -> str:
    """What determines a (model, dataset, metric) result before the model is built."""
    return feature_key(
        {
            "model": model,
            "options": model_options,
            "dataset": dataset,
            "stimuli": stimuli_hash,
            "data": data_hash,
            "metric": metric_hash,
            "projection_seed": extraction.projection_seed,
            "projection_scheme": SCHEME,
            "extraction": EXTRACTION_VERSION,
        }
    )


# --------------------------------------------------------------------------- features, scores


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
    rows when the metric does not give them itself."""
    rows = list(metric.score(features, dataset))
    if not any(row.selection == "max" for row in rows):
        rows += best_layer_scores(rows, "max")
    return rows


# --------------------------------------------------------------------------- plan


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
    """Everything a worker needs to run jobs (picklable)."""

    store_url: str
    run_id: int | None
    plugin_files: tuple[str, ...] = ()
    data_dir: str | None = None
    extraction: ExtractionConfig = field(default_factory=ExtractionConfig)
    cache_root: str | None = None
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    threads: int | None = None


@dataclass
class JobResult:
    model: str
    n_scores: int = 0
    n_scored: int = 0
    n_combos: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0


class _Context:
    """Loaded plugins for running jobs: shared with the planner in-process, rebuilt once per
    worker process on Dask."""

    def __init__(
        self,
        config: GridConfig,
        registry: Registry | None = None,
        store: Any = None,
        datasets: dict[str, Dataset] | None = None,
        metrics: dict[tuple[str, str], Metric] | None = None,
    ):
        self.config = config
        self._registry = registry
        self._store = store
        self.datasets = dict(datasets or {})
        self.metrics = dict(metrics or {})
        self.cache = FeatureCache(config.cache_root) if config.cache_root else None
        self.data_hashes: dict[str, str] = {}

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(plugin_files=self.config.plugin_files)
        return self._registry

    @property
    def store(self) -> Any:
        if self._store is None:
            from brainrank.leaderboard.store import Store

            self._store = Store(self.config.store_url)
        return self._store

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


_WORKER_CONTEXTS: dict[str, _Context] = {}


def _worker_context(config: GridConfig) -> _Context:
    """One context per worker process and grid configuration."""
    key = repr(dataclasses.replace(config, run_id=None))
    context = _WORKER_CONTEXTS.get(key)
    if context is None:
        _WORKER_CONTEXTS.clear()  # another grid: drop the previous one's data
        if config.threads:
            _limit_threads(config.threads)
        context = _WORKER_CONTEXTS[key] = _Context(config)
    return context


def _limit_threads(n: int) -> None:
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


# --------------------------------------------------------------------------- one job


class _JobProgress:
    """Callbacks a job reports through (in-process only; Dask jobs report on completion)."""

    def images(self, description: str, total: int) -> tuple[Any, Callable[[int], None] | None]:
        return None, None

    def scored(self, text: str) -> None:
        pass


def run_job(
    job: Job,
    config: GridConfig,
    context: _Context | None = None,
    progress: _JobProgress | None = None,
) -> JobResult:
    """Build one model, extract its features on one stimulus set, score every pending
    (dataset, metric) and write each to the leaderboard as soon as it is done."""
    started = time.time()
    ctx = context or _worker_context(config)
    progress = progress or _JobProgress()
    store = ctx.store
    result = JobResult(model=job.model, n_combos=len(job.pending))

    def fail(stage: str, exc: BaseException, **where: str | None) -> None:
        message = f"{type(exc).__name__}: {exc}"
        result.failures.append(Failure(stage, message, **where))
        trace = (
            None if isinstance(exc, BrainrankError) else "".join(traceback.format_exception(exc))
        )
        try:
            store.record_failure(config.run_id, stage, exc, traceback=trace, **where)
        except Exception as store_exc:  # the failure is still reported to the caller
            log.error("could not record a failure in the leaderboard: %s", store_exc)
        log.warning("%s failed (%s): %s", stage,
                    ", ".join(f"{k}={v}" for k, v in where.items() if v), message)  # fmt: skip

    try:
        spec = ctx.registry.get("model", job.model)
        model = spec.load(**config.model_options.get(job.model, {}))
        weights = weights_hash(model)
        store.register_model(job.model, model.metadata, spec.plugin, weights_hash=weights)
    except Exception as exc:
        fail("model", exc, model=job.model)
        for combo in job.pending:
            progress.scored(f"{job.model} x {combo.dataset} x {combo.metric}: failed")
        result.seconds = time.time() - started
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
    except Exception as exc:
        fail("features", exc, model=job.model,
             dataset=",".join(sorted({c.dataset for c in pending})))  # fmt: skip
        for combo in pending:
            progress.scored(f"{job.model} x {combo.dataset} x {combo.metric}: failed")
        result.seconds = time.time() - started
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
            progress.scored(f"{job.model} x {combo.dataset} x {combo.metric}")
        except Exception as exc:
            fail("score", exc, **where)
            progress.scored(f"{job.model} x {combo.dataset} x {combo.metric}: failed")
    del model, features
    result.seconds = time.time() - started
    return result


# --------------------------------------------------------------------------- progress bars


class _Bars:
    """Progress bars for planning, extraction ((model, stimulus set) jobs) and scoring
    ((model, dataset, metric) combinations). Off when ``enabled`` is false or the output is
    not a terminal."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bars: dict[str, Any] = {}
        if enabled:
            from tqdm.auto import tqdm

            self.tqdm = tqdm

    def open(self, name: str, total: int, unit: str, position: int) -> None:
        if self.enabled:
            self.bars[name] = self.tqdm(total=total, desc=name, unit=unit, position=position,
                                        disable=None, leave=True, dynamic_ncols=True)  # fmt: skip

    def update(self, name: str, n: int = 1, text: str | None = None) -> None:
        bar = self.bars.get(name)
        if bar is not None:
            if text:
                bar.set_postfix_str(text[:60], refresh=False)
            bar.update(n)

    def close(self, name: str | None = None) -> None:
        for key in [name] if name else list(self.bars):
            bar = self.bars.pop(key, None)
            if bar is not None:
                bar.close()


class _InProcessProgress(_JobProgress):
    def __init__(self, bars: _Bars):
        self.bars = bars

    def images(self, description: str, total: int):
        if not self.bars.enabled:
            return None, None
        bar = self.bars.tqdm(desc=description[:50], total=total, unit="img", leave=False,
                             position=3, disable=None)  # fmt: skip
        return bar, bar.update

    def scored(self, text: str) -> None:
        self.bars.update("scoring", 1, text)


# --------------------------------------------------------------------------- the grid


def run_grid(
    *,
    registry: Registry,
    store: Any,
    models: list[str],
    datasets: list[str],
    metrics: list[str],
    extraction: ExtractionConfig | None = None,
    cache: FeatureCache | None = None,
    data_dir: Any = None,
    model_options: dict[str, dict[str, Any]] | None = None,
    metric_params: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    workers: int = 1,
    scheduler: str | None = None,
    plugin_files: Sequence[str | Path] | None = None,
    recompute: bool = False,
) -> RunSummary:
    """Score every model on every dataset with every metric; write to ``store``.

    See the module docstring for planning, resuming and execution. ``plugin_files`` are
    the ``--plugin`` files the workers must load (default: the files registered in
    ``registry``).
    """
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}.")
    extraction = extraction or ExtractionConfig()
    model_options = model_options or {}
    metric_params = metric_params or {}
    files = tuple(str(Path(f).expanduser().resolve()) for f in plugin_files or ()) or tuple(
        name for name in registry.plugin_names if name.endswith(".py") and Path(name).is_file()
    )
    use_dask = scheduler is not None or workers > 1
    executor = (
        f"dask scheduler {scheduler}" if scheduler
        else f"dask local cluster, {workers} workers" if use_dask
        else "local"
    )  # fmt: skip
    config = {
        "models": models,
        "datasets": datasets,
        "metrics": metrics,
        "extraction": dataclasses.asdict(extraction),
        "metric_params": metric_params,
        "model_options": model_options,
        "plugin_files": list(files),
        "cache": str(cache.root) if cache is not None else None,
        "data_dir": str(data_dir) if data_dir is not None else None,
        "recompute": recompute,
    }
    seeds: dict[str, Any] = {"projection_seed": extraction.projection_seed}
    for metric_id, params in metric_params.items():
        for key, value in params.items():
            if "seed" in key:
                seeds[f"{metric_id}.{key}"] = value
    started = time.time()
    run_id = store.start_run(config, seeds=seeds, executor=executor)
    summary = RunSummary(run_id=run_id, executor=executor)
    bars = _Bars(progress)

    def fail(stage: str, exc: BaseException, **where: str | None) -> None:
        message = f"{type(exc).__name__}: {exc}"
        summary.failures.append(Failure(stage, message, **where))
        trace = (
            None if isinstance(exc, BrainrankError) else "".join(traceback.format_exception(exc))
        )
        store.record_failure(run_id, stage, exc, traceback=trace, **where)
        log.warning("%s failed (%s): %s", stage,
                    ", ".join(f"{k}={v}" for k, v in where.items() if v), message)  # fmt: skip

    status = "interrupted"
    try:
        for error in registry.load_errors:
            summary.failures.append(Failure("plugin", f"{error.name}: {error.error}"))
            store.record_failure(run_id, "plugin", f"{error.name} ({error.source}): {error.error}",
                                 traceback=error.traceback)  # fmt: skip

        # ---------------------------------------------------------------- planning
        bars.open("planning", len(metrics) + len(datasets) + 1, "step", 0)
        loaded_metrics: dict[tuple[str, str], Metric] = {}
        for identifier in metrics:
            try:
                spec = registry.get("metric", identifier)
                metric = spec.load(**metric_params.get(identifier, {}))
                store.register_metric(metric, spec.plugin)
                loaded_metrics[(identifier, metric.config_hash)] = metric
            except Exception as exc:
                fail("metric", exc, metric=identifier)
            bars.update("planning", 1, f"metric {identifier}")

        loaded_datasets: dict[str, Dataset] = {}
        hashes: dict[str, tuple[str, str]] = {}
        for identifier in datasets:
            try:
                spec = registry.get("dataset", identifier)
                dataset = spec.load(data_dir=data_dir)
                stimuli_hash = dataset.stimuli.content_hash()
                data_hash = dataset_hash(dataset)
                store.register_dataset(spec, n_stimuli=len(dataset.stimuli),
                                       stimuli_hash=stimuli_hash, data_hash=data_hash)  # fmt: skip
                loaded_datasets[identifier] = dataset
                hashes[identifier] = (stimuli_hash, data_hash)
            except Exception as exc:
                fail("dataset", exc, dataset=identifier)
            bars.update("planning", 1, f"dataset {identifier}")

        applicable: dict[str, list[tuple[str, str]]] = {}
        for identifier, dataset in loaded_datasets.items():
            applicable[identifier] = []
            for key, metric in loaded_metrics.items():
                try:
                    metric.check_applicable(dataset)
                    metric.feature_request(dataset)
                    applicable[identifier].append(key)
                except NotApplicableError as exc:
                    summary.skipped.append(str(exc))
                except Exception as exc:
                    fail("plan", exc, dataset=identifier, metric=metric.identifier)

        combos: list[tuple[str, str, Combo]] = []  # (model, stimuli hash, combo)
        for model_id in models:
            options = model_options.get(model_id, {})
            for identifier, keys in applicable.items():
                stimuli_hash, data_hash = hashes[identifier]
                for metric_id, metric_hash in keys:
                    digest = plan_hash(model_id, options, identifier, stimuli_hash, data_hash,
                                       metric_hash, extraction)  # fmt: skip
                    combos.append((model_id, stimuli_hash,
                                   Combo(identifier, metric_id, metric_hash, digest)))  # fmt: skip
        done = (
            {}
            if recompute
            else store.completed((m, c.dataset, c.metric, c.metric_hash) for m, _, c in combos)
        )
        jobs: dict[tuple[str, str], Job] = {}
        for model_id, stimuli_hash, combo in combos:
            job = jobs.setdefault((model_id, stimuli_hash), Job(model_id, stimuli_hash, []))
            record = done.get((model_id, combo.dataset, combo.metric, combo.metric_hash))
            if record is not None and record["plan_hash"] == combo.plan_hash:
                job.stored.append(dataclasses.replace(combo,
                                                      stored_weights=record["weights_hash"]))  # fmt: skip
            else:
                job.pending.append(combo)
        work = [job for job in jobs.values() if job.pending]
        summary.n_stored = sum(len(job.stored) for job in jobs.values())
        # a model whose every combination is stored is not built (not even to re-check its
        # weights); one that is built anyway re-checks its stored combinations
        for job in jobs.values():
            if not job.pending:
                job.stored = []
        bars.update("planning", 1, f"{len(work)} jobs, {summary.n_stored} combinations stored")
        bars.close("planning")
        # models with no dataset to score (none applicable) are still registered when built
        log.info("plan: %d jobs; %d combinations to score, %d already stored", len(work),
                 sum(len(j.pending) for j in work), summary.n_stored)  # fmt: skip

        # ---------------------------------------------------------------- execution
        grid = GridConfig(
            store_url=store.url,
            run_id=run_id,
            plugin_files=files,
            data_dir=str(data_dir) if data_dir is not None else None,
            extraction=extraction,
            cache_root=str(cache.root) if cache is not None else None,
            model_options=model_options,
            metric_params=metric_params,
        )
        bars.open("extraction", len(work), "job", 1)
        bars.open("scoring", sum(len(j.pending) for j in work), "combo", 2)
        if use_dask:
            results = _run_dask(work, grid, workers, scheduler, bars, fail)
        else:
            context = _Context(grid, registry=registry, store=store,
                               datasets=loaded_datasets, metrics=loaded_metrics)  # fmt: skip
            context.data_hashes = {k: v[1] for k, v in hashes.items()}
            results = []
            job_progress = _InProcessProgress(bars)
            for job in work:
                results.append(run_job(job, grid, context, job_progress))
                bars.update("extraction", 1, job.model)
        for result in results:
            summary.n_scores += result.n_scores
            summary.n_scored += result.n_scored
            summary.failures.extend(result.failures)
        status = "ok" if not summary.failures else "partial"
    finally:
        bars.close()
        summary.seconds = time.time() - started
        try:
            store.finish_run(run_id, status, summary.n_scores, len(summary.failures),
                             n_skipped=summary.n_stored)  # fmt: skip
        except Exception as exc:  # never hide the original error behind this one
            log.error("could not record the end of run %s: %s", run_id, exc)
    return summary


def _run_dask(
    work: list[Job],
    grid: GridConfig,
    workers: int,
    scheduler: str | None,
    bars: _Bars,
    fail: Callable[..., None],
) -> list[JobResult]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover
        raise InputError(
            "--workers and --scheduler need Dask: pip install 'dask[distributed]'."
        ) from exc
    cluster = None
    if scheduler is None:
        threads = max(1, (os.cpu_count() or 1) // workers)
        budget = max(2**20, grid.extraction.memory_budget // workers)
        grid = dataclasses.replace(
            grid,
            threads=threads,
            extraction=dataclasses.replace(grid.extraction, memory_budget=budget),
        )
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, memory_limit=0)  # fmt: skip
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=30)
        except OSError as exc:
            raise InputError(
                f"cannot reach the Dask scheduler at {scheduler}: {exc}. Check the address "
                "(for example tcp://host:8786) and that the scheduler is running."
            ) from exc
    results: list[JobResult] = []
    try:
        futures = {}
        for index, job in enumerate(work):
            future = client.submit(run_job, job, grid, key=f"brainrank-job-{grid.run_id}-{index}",
                                   pure=False)  # fmt: skip
            futures[future] = job
        for future in as_completed(list(futures)):
            job = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the worker died or the job could not run
                for combo in job.pending:
                    fail("worker", exc, model=job.model, dataset=combo.dataset,
                         metric=combo.metric)  # fmt: skip
                bars.update("scoring", len(job.pending), f"{job.model}: failed")
                bars.update("extraction", 1, job.model)
                continue
            results.append(result)
            bars.update("scoring", result.n_combos, job.model)
            bars.update("extraction", 1, job.model)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results
