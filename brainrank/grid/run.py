"""Plans and runs the model x dataset x metric grid, in this process or on a Dask cluster.

**Checking.** Before any work starts, what the user asked for is checked: every
``--param`` names a metric of the run and a parameter that metric takes (the metric is
built with it), every weights file exists and belongs to a model that takes one. Errors
raise :class:`~brainrank.core.errors.InputError` and nothing is recorded.

**Planning.** Metrics and datasets are loaded once; every (model, dataset, metric
configuration) gets a *plan hash* over what is known before a model is built: the model
identifier and its options (with the sha256 of any weights file they name), the version of
the code that builds the model (the sha256 of the plugin module that defines its factory),
the content of the stimuli and of the data, the metric's configuration hash and the
extraction settings. A combination whose completion record has the same plan hash is
already scored and is skipped (``recompute=True`` scores it again). The rest is grouped by
(model, stimulus set): one *job* (:func:`brainrank.grid.jobs.run_job`) builds the model once,
extracts its features once (or reads them from the feature cache) and scores every dataset
and metric on those stimuli.

**Content.** A job hashes the model's weights. Combinations skipped as stored whose record
names other weights are scored again in the same job. Every score row carries its weights,
stimuli, data and feature hashes.

**Writes.** The scores of one combination, their per-neuroid values and the completion
record are written in one transaction as soon as that combination is done, so a run killed
at any moment loses at most the combinations in flight.

**Execution.** ``workers=1`` runs the jobs in this process, without Dask. ``workers=N``
starts a local Dask cluster of N single-threaded worker processes (the extraction memory
budget is split between them); ``scheduler=ADDRESS`` submits the jobs to an existing Dask
scheduler (the workers need brainrank, the plugins and the data at the same paths, and a
store URL they can reach: PostgreSQL for a cluster).

**Failures.** A failure at any stage is recorded with its traceback and the rest of the
grid goes on; :attr:`RunSummary.status` is ``ok`` only when every planned combination is
stored.

This module knows no model, dataset or metric by name, and no database: it writes through
the :class:`~brainrank.results.ResultStore` it is given.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from brainrank.core.backend import resolve_device
from brainrank.core.cache import FeatureCache
from brainrank.core.dataset import Dataset
from brainrank.core.errors import InputError, NotApplicableError
from brainrank.core.extraction import ExtractionConfig
from brainrank.core.hashing import code_version, dataset_hash, file_sha256, plan_hash
from brainrank.core.metric import Metric
from brainrank.core.registry import Registry
from brainrank.core.scores import Score
from brainrank.core.specs import Model
from brainrank.grid.context import Context, GridConfig
from brainrank.grid.failures import Failure, record_failure
from brainrank.grid.jobs import Combo, Job, JobResult, combo_key, run_job
from brainrank.grid.progress import Bars, InProcessProgress
from brainrank.results import ResultStore, StageStats

log = logging.getLogger(__name__)

#: seconds between two looks at combinations another run is computing
WAIT_POLL = 2.0


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
    #: combinations this run had to score
    n_planned: int = 0
    #: of those, combinations another run (running at the same time) stored
    n_elsewhere: int = 0
    #: seconds per stage and regression fits, summed over the jobs
    stats: StageStats = field(default_factory=StageStats)
    seconds: float = 0.0
    executor: str = "local"
    status: str = "running"

    @property
    def complete(self) -> bool:
        """Every requested combination is stored (scored now or before). A plugin that
        failed to load but provides nothing the run asked for does not count against it
        (it is still reported)."""
        grid_failures = [f for f in self.failures if f.stage != "plugin"]
        return not grid_failures and self.n_scored + self.n_elsewhere >= self.n_planned


# --------------------------------------------------------------------------- checks


def check_metric_params(
    registry: Registry, metrics: Sequence[str], metric_params: dict[str, dict[str, Any]]
) -> dict[str, Metric]:
    """Every ``metric_params`` entry names a metric of the run and parameters it takes;
    returns the metrics built with their parameters (raises :class:`InputError`)."""
    unknown = sorted(set(metric_params) - set(metrics))
    if unknown:
        raise InputError(
            f"--param names {', '.join(map(repr, unknown))}, which "
            f"{'is' if len(unknown) == 1 else 'are'} not among the metrics of this run "
            f"({', '.join(metrics) or 'none'}); write METRIC.KEY=VALUE with a metric "
            "identifier of the run (see `brainrank metrics`)."
        )
    built: dict[str, Metric] = {}
    for identifier in metrics:
        params = metric_params.get(identifier, {})
        spec = registry.get("metric", identifier)
        if not params:
            continue
        try:
            built[identifier] = spec.load(**params)
        except TypeError as exc:
            accepted = _parameter_names(spec)
            unknown = sorted(set(params) - set(accepted)) if accepted else sorted(params)
            raise InputError(
                f"metric {identifier!r} does not take the parameter(s) "
                f"{', '.join(unknown or sorted(params))} ({exc})."
                + (f" Its parameters: {', '.join(accepted)}." if accepted else "")
                + " See `brainrank metrics`."
            ) from exc
        except InputError as exc:
            raise InputError(f"--param for metric {identifier!r}: {exc}") from exc
        except ValueError as exc:
            raise InputError(
                f"--param for metric {identifier!r} has a value it cannot use: {exc}."
            ) from exc
    return built


def _parameter_names(spec: Any) -> list[str]:
    """The keyword parameters of a metric's class (built once with its defaults)."""
    try:
        metric = spec.load()
        signature = inspect.signature(type(metric).__init__)
    except Exception:  # a metric that cannot be built with its defaults: no list to give
        return []
    return [
        name
        for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self"
    ]


def takes_option(factory: Any, name: str) -> bool:
    """Whether a model factory accepts the keyword option ``name`` (or ``**options``)."""
    while isinstance(factory, partial):
        if name in factory.keywords:
            return True
        factory = factory.func
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return True  # cannot tell: let the factory decide
    return any(p.kind is p.VAR_KEYWORD or p.name == name for p in parameters)


def check_model_options(
    registry: Registry, models: Sequence[str], model_options: dict[str, dict[str, Any]]
) -> None:
    """Options name models of the run that take them; weights files exist."""
    for model_id, options in model_options.items():
        if model_id not in models:
            raise InputError(
                f"options are given for model {model_id!r}, which is not among the models of "
                f"this run; add it to --models or drop its --weights."
            )
        spec = registry.get("model", model_id)
        for key, value in options.items():
            untrained = key == "weights" and not spec.metadata.trained
            if untrained or not takes_option(spec.factory, key):
                what = "a weights file" if key == "weights" else f"the option {key!r}"
                raise InputError(
                    f"model {model_id!r} takes no {what}: it is built without one (a baseline "
                    "or a fixed initialisation). Drop --weights for it, or give the file to a "
                    "model that loads trained weights (e.g. the identifier without ':random')."
                )
            if key == "weights" and not Path(str(value)).expanduser().is_file():
                raise InputError(
                    f"the weights file {value} for model {model_id!r} does not exist; give "
                    "the path of a checkpoint file (--weights MODEL=PATH)."
                )


def content_options(options: dict[str, Any]) -> dict[str, Any]:
    """Model options with the sha256 of the weights file they name, so a file overwritten
    in place is a different plan (its path alone would not change)."""
    out = dict(options)
    path = options.get("weights")
    if path is not None and Path(str(path)).expanduser().is_file():
        out["weights_sha256"] = file_sha256(str(path))
    return out


# --------------------------------------------------------------------------- the grid


def run_grid(
    *,
    registry: Registry,
    store: ResultStore,
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
    store_opener: Callable[[], ResultStore] | None = None,
    device: str | None = None,
) -> RunSummary:
    """Score every model on every dataset with every metric; write to ``store``.

    See the module docstring for checking, planning, resuming and execution.
    ``plugin_files`` are the ``--plugin`` files the workers must load (default: the files
    registered in ``registry``); ``store_opener`` opens ``store`` again in a worker process
    (needed with ``workers > 1`` or ``scheduler``). ``device`` (``"auto"``, ``"cpu"``,
    ``"cuda[:N]"``, ``"mps"``; default: ``extraction.device``) is where extraction and scoring
    run: a run setting recorded in the run's configuration, never part of a hash.
    """
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}.")
    extraction = extraction or ExtractionConfig()
    device = resolve_device(device if device is not None else extraction.device)
    extraction = dataclasses.replace(extraction, device=device)
    model_options = model_options or {}
    metric_params = metric_params or {}
    use_dask = scheduler is not None or workers > 1
    store_opener = store_opener or store.opener()
    if use_dask and store_opener is None:
        raise InputError(
            "running on Dask needs a result store that worker processes can open again (a "
            "leaderboard database URL)."
        )
    # ------------------------------------------------------------------ checks, up front
    check_model_options(registry, models, model_options)
    prebuilt = check_metric_params(registry, metrics, metric_params)
    files = tuple(str(Path(f).expanduser().resolve()) for f in plugin_files or ()) or tuple(
        name for name in registry.plugin_names if name.endswith(".py") and Path(name).is_file()
    )
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
        "device": device,
    }
    seeds: dict[str, Any] = {"projection_seed": extraction.projection_seed}
    for metric_id, params in metric_params.items():
        for key, value in params.items():
            if "seed" in key:
                seeds[f"{metric_id}.{key}"] = value
    started = time.time()
    run_id = store.start_run(config, seeds=seeds, executor=executor)
    summary = RunSummary(run_id=run_id, executor=executor)
    bars = Bars(progress)

    def fail(stage: str, exc: BaseException | str, **where: str | None) -> None:
        record_failure(store, run_id, summary.failures, stage, exc, **where)

    #: (model, combination, run): combinations another live run is computing
    held: list[tuple[str, Combo, int | None]] = []

    def collect(result: JobResult) -> None:
        summary.n_scores += result.n_scores
        summary.n_scored += result.n_scored
        summary.failures.extend(result.failures)
        summary.n_elsewhere += len(result.elsewhere)
        summary.stats.add(result.stats)
        held.extend((result.model, combo, run) for combo, run in result.held)
        stop_if_requested()  # a stop whose KeyboardInterrupt was dropped (see STOP_REQUESTED)

    def wait_for_others(execute: Callable[[list[Job]], None]) -> None:
        """Wait for the combinations other live runs hold: each is then stored (counted in
        ``n_elsewhere``) or, when its holder stopped without storing it, computed here."""
        told: set[tuple] = set()
        while held:
            waiting = list(held)
            held.clear()
            news = {(m, c, r) for m, c, r in waiting} - told
            if news:
                runs = ", ".join(sorted({str(r) for _, _, r in news}))
                log.warning("waiting for %d combination(s) that run(s) %s are computing",
                            len(news), runs)  # fmt: skip
                told |= news
            time.sleep(WAIT_POLL)
            stop_if_requested()
            keys = [combo_key(m, c) for m, c, _ in waiting]
            stored = store.completed(keys)
            holders = store.lease_holders(keys, grid.lease_timeout)
            free: dict[tuple[str, str], Job] = {}
            for model_id, combo, _ in waiting:
                key = combo_key(model_id, combo)
                record = stored.get(key)
                if record is not None and record["plan_hash"] == combo.plan_hash:
                    summary.n_elsewhere += 1
                    bars.update("scoring", 1, f"{model_id} x {combo.dataset} x "
                                f"{combo.metric}: by run {record.get('run_id')}")  # fmt: skip
                elif key in holders:
                    held.append((model_id, combo, holders[key]))
                else:  # its holder stopped without storing it: compute it here
                    stimuli = hashes[combo.dataset][0]
                    job = free.setdefault((model_id, stimuli), Job(model_id, stimuli, []))
                    job.pending.append(combo)
            if free:
                execute(list(free.values()))

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
                metric = prebuilt.get(identifier) or spec.load()
                store.register_metric(metric, spec.plugin)
                loaded_metrics[(identifier, metric.config_hash)] = metric
            except (Exception, SystemExit) as exc:
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
            except (Exception, SystemExit) as exc:
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
                except (Exception, SystemExit) as exc:
                    fail("plan", exc, dataset=identifier, metric=metric.identifier)

        combos: list[tuple[str, str, Combo]] = []  # (model, stimuli hash, combo)
        for model_id in models:
            options = content_options(model_options.get(model_id, {}))
            code = code_version(registry.get("model", model_id).factory)
            for identifier, keys in applicable.items():
                stimuli_hash, data_hash = hashes[identifier]
                for metric_id, metric_hash in keys:
                    digest = plan_hash(model_id, options, identifier, stimuli_hash, data_hash,
                                       metric_hash, extraction, code=code)  # fmt: skip
                    combos.append((model_id, stimuli_hash,
                                   Combo(identifier, metric_id, metric_hash, digest)))  # fmt: skip
        done = store.completed((m, c.dataset, c.metric, c.metric_hash) for m, _, c in combos)
        jobs: dict[tuple[str, str], Job] = {}
        for model_id, stimuli_hash, combo in combos:
            job = jobs.setdefault((model_id, stimuli_hash), Job(model_id, stimuli_hash, []))
            record = done.get((model_id, combo.dataset, combo.metric, combo.metric_hash))
            if record is not None:  # the run of a record this run may replace (see leases)
                combo = dataclasses.replace(combo, stored_run=record.get("run_id"))
            if not recompute and record is not None and record["plan_hash"] == combo.plan_hash:
                job.stored.append(dataclasses.replace(combo,
                                                      stored_weights=record["weights_hash"]))  # fmt: skip
            else:
                job.pending.append(combo)
        work = [job for job in jobs.values() if job.pending]
        summary.n_stored = sum(len(job.stored) for job in jobs.values())
        summary.n_planned = sum(len(job.pending) for job in work)
        # a model whose every combination is stored is not built: the plan hash already
        # covers its options, its weights file's content and its plugin's code
        for job in jobs.values():
            if not job.pending:
                job.stored = []
        bars.update("planning", 1, f"{len(work)} jobs, {summary.n_stored} combinations stored")
        bars.close("planning")
        log.info("plan: %d jobs; %d combinations to score, %d already stored", len(work),
                 summary.n_planned, summary.n_stored)  # fmt: skip

        # ---------------------------------------------------------------- execution
        grid = GridConfig(
            store=store_opener,
            run_id=run_id,
            plugin_files=files,
            data_dir=str(data_dir) if data_dir is not None else None,
            extraction=extraction,
            cache_root=str(cache.root) if cache is not None else None,
            model_options=model_options,
            metric_params=metric_params,
        )
        bars.open("extraction", len(work), "job", 1)
        bars.open("scoring", summary.n_planned, "combo", 2)
        if use_dask:
            run_dask(work, grid, workers, scheduler, bars, fail, collect, wait_for_others)
        else:
            context = Context(grid, registry=registry, store=store,
                              datasets=loaded_datasets, metrics=loaded_metrics)  # fmt: skip
            context.data_hashes = {k: v[1] for k, v in hashes.items()}
            job_progress = InProcessProgress(bars)

            def execute(jobs: list[Job]) -> None:
                for job in jobs:
                    collect(run_job(job, grid, context, job_progress))
                    bars.update("extraction", 1, job.model)

            execute(work)
            wait_for_others(execute)
        summary.status = "ok" if summary.complete else "partial"
    except BaseException:
        summary.status = "interrupted"
        raise
    finally:
        bars.close()
        summary.seconds = time.time() - started
        try:
            store.finish_run(run_id, summary.status, summary.n_scores, len(summary.failures),
                             n_skipped=summary.n_stored + summary.n_elsewhere)  # fmt: skip
        except Exception as exc:  # never hide the original error behind this one
            log.error("could not record the end of run %s: %s", run_id, exc)
    return summary


#: Set when a signal asked the run to stop (``brainrank run`` sets it for SIGINT and SIGTERM,
#: and its handler also raises KeyboardInterrupt). Python drops an exception raised while a
#: weakref or ``__del__`` callback runs (it prints "Exception ignored in ..." and goes on):
#: a SIGTERM that landed in SQLAlchemy's garbage-collection callback let a run finish every
#: job and exit 0. The grid checks this flag after every job and every wait, so a stop
#: request is never lost.
STOP_REQUESTED = threading.Event()


def stop_if_requested() -> None:
    """Raise KeyboardInterrupt when :data:`STOP_REQUESTED` is set."""
    if STOP_REQUESTED.is_set():
        raise KeyboardInterrupt("stop requested")


def run_dask(
    work: list[Job],
    grid: GridConfig,
    workers: int,
    scheduler: str | None,
    bars: Bars,
    fail: Callable[..., None],
    collect: Callable[[JobResult], None],
    wait: Callable[[Callable[[list[Job]], None]], None] | None = None,
) -> None:
    """Run ``work`` on a Dask cluster (a local one of ``workers`` processes, or the one at
    ``scheduler``), then ``wait(execute)``: ``execute`` submits more jobs to the same
    cluster (combinations another run held and gave up)."""
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
    futures: dict[Any, Job] = {}
    numbers = itertools.count()

    def execute(jobs: list[Job]) -> None:
        submitted = {}
        for job in jobs:
            key = f"brainrank-job-{grid.run_id}-{next(numbers)}"
            submitted[client.submit(run_job, job, grid, key=key, pure=False)] = job
        futures.update(submitted)
        for future in as_completed(list(submitted)):
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
            collect(result)
            bars.update("scoring", result.n_combos, job.model)
            bars.update("extraction", 1, job.model)

    try:
        execute(work)
        if wait is not None:
            wait(execute)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------- one combination


def score_one(
    model: Model,
    dataset: Dataset,
    metric: Metric,
    store: ResultStore,
    *,
    extraction: ExtractionConfig | None = None,
    cache: FeatureCache | None = None,
    plugin: str = "",
    device: str | None = None,
) -> tuple[int, list[Score]]:
    """Score one model object on one dataset with one metric through the grid's job function
    (the Python API's door): a run is recorded, the dataset and metric are registered, the
    rows carry their run and content hashes and a completion record is written. Errors are
    recorded, then raised. Returns ``(run_id, scores)``. ``device``: as for
    :func:`run_grid`."""
    extraction = extraction or ExtractionConfig()
    device = resolve_device(device if device is not None else extraction.device)
    extraction = dataclasses.replace(extraction, device=device)
    metric.check_applicable(dataset)
    stimuli_hash = dataset.stimuli.content_hash()
    data_hash = dataset_hash(dataset)
    code = code_version(type(model.module)) if model.module is not None else None
    digest = plan_hash(model.identifier, {"weights_id": model.weights_id}, dataset.identifier,
                       stimuli_hash, data_hash, metric.config_hash, extraction,
                       code=code)  # fmt: skip
    combo = Combo(dataset.identifier, metric.identifier, metric.config_hash, digest)
    kept: list[Score] = []

    class _Keeping:
        """The caller's store, keeping the rows written through it for the return value."""

        url = getattr(store, "url", None)

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def write_scores(self, **kwargs: Any) -> int:
            kwargs["scores"] = list(kwargs["scores"])
            kept.extend(kwargs["scores"])
            return store.write_scores(**kwargs)

    keeping: Any = _Keeping()
    config = {"models": [model.identifier], "datasets": [dataset.identifier],
              "metrics": [metric.identifier], "extraction": dataclasses.asdict(extraction),
              "metric_params": {metric.identifier: metric.parameters}, "api": "brainrank.score",
              "device": device}  # fmt: skip
    run_id = store.start_run(config, seeds={"projection_seed": extraction.projection_seed},
                             executor="local (brainrank.score)")  # fmt: skip
    status = "interrupted"
    result = JobResult(model=model.identifier)
    try:
        store.register_metric(metric, plugin)
        store.register_dataset(_DatasetSpecLike(dataset), n_stimuli=len(dataset.stimuli),
                               stimuli_hash=stimuli_hash, data_hash=data_hash)  # fmt: skip
        grid = GridConfig(store=None, run_id=run_id, extraction=extraction,
                          cache_root=str(cache.root) if cache is not None else None,
                          raise_errors=True)  # fmt: skip
        context = Context(grid, store=keeping, datasets={dataset.identifier: dataset},
                          metrics={(metric.identifier, metric.config_hash): metric},
                          models={model.identifier: model})  # fmt: skip
        context.data_hashes[dataset.identifier] = data_hash
        result = run_job(Job(model.identifier, stimuli_hash, [combo]), grid, context)
        status = "ok" if result.n_scored == 1 else "partial"
    except Exception:
        status = "failed"
        raise
    finally:
        store.finish_run(run_id, status, result.n_scores, len(result.failures))
    return run_id, kept


class _DatasetSpecLike:
    """What ``register_dataset`` reads of a spec, for a dataset given as an object."""

    def __init__(self, dataset: Dataset):
        self.identifier = dataset.identifier
        self.metadata = dataset.metadata
        self.plugin = ""
