"""Runs a plan (:mod:`brainrank.grid.plan`) and records it once, in this process or on Dask.

:func:`execute` records the start of the run with the plan's configuration, then what
planning found (plugins that failed to load, metrics or datasets that failed, feature
requests that failed), registers the metrics and datasets, and looks up what the result
sink already holds: a combination whose completion record has the same plan hash is
already scored and is skipped (the plan's ``recompute`` scores it again). The rest is
grouped by (model, stimulus set): one *job* (:func:`brainrank.grid.jobs.run_job`) builds the
model once, extracts its features once (or reads them from the feature cache) and scores
every dataset and metric on those stimuli. It records the end of the run whatever happens.

**Content.** A job hashes the model's weights. Combinations skipped as stored whose record
names other weights are scored again in the same job. Every score row carries its weights,
stimuli, data and feature hashes.

**Writes.** The scores of one combination, their per-neuroid values and the completion
record are written in one transaction as soon as that combination is done, so a run killed
at any moment loses at most the combinations in flight.

**Leases.** Each job leases its combinations on the lease board first; combinations another
live run is computing are waited for at the end (counted as stored by that run, or computed
here when it stopped without storing them).

**Executors.** :class:`InProcess` runs the jobs in this process, without Dask.
``Dask(workers=N)`` starts a local Dask cluster of N single-threaded worker processes (the
extraction memory budget is split between them); ``Dask(scheduler=ADDRESS)`` submits the
jobs to an existing Dask scheduler (the workers need brainrank, the plugins and the data at
the same paths, and a store URL they can reach: PostgreSQL for a cluster).

**Failures.** A failure at any stage is recorded with its traceback and the rest of the
grid goes on (``raise_errors``: raised once recorded, as the Python API does);
:attr:`RunSummary.status` is ``ok`` only when every planned combination is stored.

This module knows no model, dataset or metric by name, and no database: it writes through
the :class:`~brainrank.results.ResultSink` and :class:`~brainrank.results.LeaseBoard` it is
given.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from brainrank.core.errors import InputError
from brainrank.grid.context import Context, GridConfig
from brainrank.grid.failures import Failure, record_failure
from brainrank.grid.jobs import Combo, Job, JobResult, combo_key, run_job
from brainrank.grid.plan import Plan
from brainrank.grid.progress import CostModel, Estimate, InProcessProgress, RunProgress, scoring_key
from brainrank.results import LEASE_TIMEOUT, LeaseBoard, ResultSink, ResultStore, StageStats

log = logging.getLogger(__name__)

#: seconds between two looks at combinations another run is computing
WAIT_POLL = 2.0

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


# --------------------------------------------------------------------------- executors


@dataclass(frozen=True)
class InProcess:
    """Run the jobs one after another in this process (no Dask)."""

    def describe(self) -> str:
        return "local"

    def check_sink(self, opener: Callable[[], ResultStore] | None) -> None:
        """Any result sink will do in this process."""

    def check(self, plan: Plan, opener: Callable[[], ResultStore] | None) -> None:
        """Any plan runs in this process."""

    def run(self, run: _Run, work: list[Job], grid: GridConfig) -> None:
        plan = run.plan
        context = Context(
            grid,
            registry=plan.registry,
            store=run.sink,
            leases=run.leases,
            datasets={i: source.dataset for i, source in plan.datasets.items()},
            metrics={key: planned.metric for key, planned in plan.metrics.items()},
            models={s.identifier: s.model for s in plan.sources if s.model is not None},
        )
        context.data_hashes = {i: source.data_hash for i, source in plan.datasets.items()}
        progress = InProcessProgress(run.progress)

        def submit(jobs: list[Job]) -> None:
            planned = {id(job): run.add_job(job) for job in jobs}  # the ETA counts them all
            for job in jobs:
                keys = planned[id(job)]
                progress.start_job(job.model, job.stimuli_hash, run.n_images(job), keys)
                result = run_job(job, grid, context, progress)
                progress.end_job(result, run.label(job))
                run.collect(result)

        submit(work)
        run.wait_for_others(submit)


@dataclass(frozen=True)
class Dask:
    """Run the jobs on Dask: a local cluster of ``workers`` single-threaded processes, or
    the existing scheduler at ``scheduler`` (e.g. ``tcp://host:8786``)."""

    workers: int = 2
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise InputError(f"--workers must be at least 1, got {self.workers}.")

    def describe(self) -> str:
        if self.scheduler:
            return f"dask scheduler {self.scheduler}"
        return f"dask local cluster, {self.workers} workers"

    def check_sink(self, opener: Callable[[], ResultStore] | None) -> None:
        """Workers must be able to open the result store again."""
        if opener is None:
            raise InputError(
                "running on Dask needs a result store that worker processes can open again (a "
                "leaderboard database URL)."
            )

    def check(self, plan: Plan, opener: Callable[[], ResultStore] | None) -> None:
        """The store can be opened again by workers and every model rebuilt there."""
        self.check_sink(opener)
        if plan.in_process_only:
            objects = [s.identifier for s in plan.sources if s.in_process_only]
            raise InputError(
                f"the model(s) {', '.join(objects)} were built in this process and cannot be "
                "sent to Dask workers; score them in this process, or register them in a "
                "plugin so that workers can build them."
            )

    def run(self, run: _Run, work: list[Job], grid: GridConfig) -> None:
        try:
            from distributed import Client, LocalCluster, as_completed
        except ImportError as exc:  # pragma: no cover
            raise InputError(
                "--workers and --scheduler need Dask: pip install 'dask[distributed]'."
            ) from exc
        cluster = None
        if self.scheduler is None:
            threads = max(1, (os.cpu_count() or 1) // self.workers)
            budget = max(2**20, grid.extraction.memory_budget // self.workers)
            grid = dataclasses.replace(
                grid,
                threads=threads,
                extraction=dataclasses.replace(grid.extraction, memory_budget=budget),
            )
            cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, memory_limit=0)  # fmt: skip
            client = Client(cluster)
        else:
            try:
                client = Client(self.scheduler, timeout=30)
            except OSError as exc:
                raise InputError(
                    f"cannot reach the Dask scheduler at {self.scheduler}: {exc}. Check the "
                    "address (for example tcp://host:8786) and that the scheduler is running."
                ) from exc
        futures: dict[Any, Job] = {}
        numbers = itertools.count()
        shown = run.progress

        def submit(jobs: list[Job]) -> None:
            submitted = {}
            for job in jobs:
                key = f"brainrank-job-{grid.run_id}-{next(numbers)}"
                submitted[client.submit(run_job, job, grid, key=key, pure=False)] = job
                run.add_job(job)
            futures.update(submitted)
            shown.status(f"{len(futures)} jobs sent to {self.describe()}; waiting for the first")
            for future in as_completed(list(submitted)):
                job = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # the worker died or the job could not run
                    for combo in job.pending:
                        run.fail("worker", exc, model=job.model, dataset=combo.dataset,
                                 metric=combo.metric)  # fmt: skip
                    run.job_ended(job, None)
                    shown.status(f"{run.label(job)} failed on its worker")
                    continue
                run.collect(result)
                run.job_ended(job, result)
                shown.status(f"{run.label(job)} done on a worker; waiting for the others")

        try:
            submit(work)
            run.wait_for_others(submit)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


Executor = InProcess | Dask


# --------------------------------------------------------------------------- one run


class _Run:
    """The state of one run while :func:`execute` runs it: its summary, the combinations
    other runs hold, its progress."""

    def __init__(self, plan: Plan, sink: ResultSink, leases: LeaseBoard, summary: RunSummary,
                 progress: RunProgress, raise_errors: bool):  # fmt: skip
        self.plan, self.sink, self.leases, self.summary = plan, sink, leases, summary
        self.progress, self.raise_errors = progress, raise_errors
        #: (model, combination, run): combinations another live run is computing
        self.held: list[tuple[str, Combo, int | None]] = []
        #: stimuli hash -> (stimulus set identifier, images), for what progress shows
        self.stimuli = {source.stimuli_hash: (source.dataset.stimuli.identifier,
                                              source.n_stimuli)
                        for source in plan.datasets.values()}  # fmt: skip

    def n_images(self, job: Job) -> int:
        return self.stimuli.get(job.stimuli_hash, ("", 0))[1]

    def label(self, job: Job) -> str:
        name = self.stimuli.get(job.stimuli_hash, (job.stimuli_hash[:8], 0))[0]
        return f"{job.model} on {name}"

    def add_job(self, job: Job) -> list[tuple]:
        """Count a job's work in the progress estimate; returns its pieces' keys."""
        return self.progress.estimate.add_job(job.model, job.stimuli_hash, self.n_images(job),
                                              job.pending)  # fmt: skip

    def job_ended(self, job: Job, result: JobResult | None) -> None:
        """A job run elsewhere (a Dask worker) is over: its pieces are done, with the
        seconds its stages took (``None``: it failed)."""
        estimate = self.progress.estimate
        seconds = result.stats.seconds if result is not None else {}
        extraction = seconds.get("model", 0.0) + seconds.get("extraction", 0.0)
        estimate.finish(("x", job.model, job.stimuli_hash), extraction)
        scoring = seconds.get("scoring", 0.0) + seconds.get("writing", 0.0)
        for combo in job.pending:
            estimate.finish(scoring_key(job.model, combo), scoring / max(1, len(job.pending)))
        self.progress.redraw()

    def fail(self, stage: str, exc: BaseException | str, **where: str | None) -> None:
        """Record a failure (and raise it with ``raise_errors``)."""
        error = record_failure(self.sink, self.summary.run_id, self.summary.failures, stage,
                               exc, **where)  # fmt: skip
        if self.raise_errors and isinstance(error, BaseException):
            raise error

    def collect(self, result: JobResult) -> None:
        summary = self.summary
        summary.n_scores += result.n_scores
        summary.n_scored += result.n_scored
        summary.failures.extend(result.failures)
        summary.n_elsewhere += len(result.elsewhere)
        summary.stats.add(result.stats)
        self.held.extend((result.model, combo, run) for combo, run in result.held)
        stop_if_requested()  # a stop whose KeyboardInterrupt was dropped (see STOP_REQUESTED)

    def wait_for_others(self, submit: Callable[[list[Job]], None]) -> None:
        """Wait for the combinations other live runs hold: each is then stored (counted in
        ``n_elsewhere``) or, when its holder stopped without storing it, computed here
        (``submit`` runs jobs)."""
        told: set[tuple] = set()
        while self.held:
            waiting = list(self.held)
            self.held.clear()
            news = {(m, c, r) for m, c, r in waiting} - told
            if news:
                runs = ", ".join(sorted({str(r) for _, _, r in news}))
                log.warning("waiting for %d combination(s) that run(s) %s are computing",
                            len(news), runs)  # fmt: skip
                self.progress.status(f"waiting for {len(waiting)} combination(s) that run(s) "
                                     f"{runs} are computing")  # fmt: skip
                told |= news
            time.sleep(WAIT_POLL)
            stop_if_requested()
            keys = [combo_key(m, c) for m, c, _ in waiting]
            stored = self.sink.completed(keys)
            holders = self.leases.lease_holders(keys, LEASE_TIMEOUT)
            free: dict[tuple[str, str], Job] = {}
            for model_id, combo, _ in waiting:
                key = combo_key(model_id, combo)
                record = stored.get(key)
                if record is not None and record["plan_hash"] == combo.plan_hash:
                    self.summary.n_elsewhere += 1
                    self.progress.estimate.drop(scoring_key(model_id, combo))
                    self.progress.status(f"{model_id} × {combo.dataset} × {combo.metric}: "
                                         f"stored by run {record.get('run_id')}")  # fmt: skip
                elif key in holders:
                    self.held.append((model_id, combo, holders[key]))
                else:  # its holder stopped without storing it: compute it here
                    stimuli = self.plan.datasets[combo.dataset].stimuli_hash
                    combination = self.plan.combinations.get(model_id)
                    spaces = combination.spaces if combination is not None else ()
                    job = free.setdefault((model_id, stimuli),
                                          Job(model_id, stimuli, [], spaces=spaces))  # fmt: skip
                    job.pending.append(combo)
            if free:
                submit(list(free.values()))

    def record_plan(self) -> None:
        """Record what planning found and register the plan's metrics and datasets."""
        plan, sink, run_id = self.plan, self.sink, self.summary.run_id
        for error in plan.load_errors:
            self.summary.failures.append(Failure("plugin", f"{error.name}: {error.error}"))
            sink.record_failure(run_id, "plugin", f"{error.name} ({error.source}): {error.error}",
                                traceback=error.traceback)  # fmt: skip
        for failure in plan.failures:
            self.fail(failure.stage, failure.error, **failure.where)
        for (identifier, _), planned in plan.metrics.items():
            try:
                sink.register_metric(planned.metric, planned.plugin, defaults=planned.defaults)
            except (Exception, SystemExit) as exc:
                self.fail("metric", exc, metric=identifier)
        for identifier, source in plan.datasets.items():
            try:
                sink.register_dataset(source, n_stimuli=source.n_stimuli,
                                      stimuli_hash=source.stimuli_hash,
                                      data_hash=source.data_hash)  # fmt: skip
            except (Exception, SystemExit) as exc:
                self.fail("dataset", exc, dataset=identifier)

    def resume(self) -> list[Job]:
        """The jobs of the plan's combinations the sink does not hold with the same plan
        hash (all of them with ``recompute``)."""
        plan = self.plan
        done = self.sink.completed(c.key for c in plan.combos)
        jobs: dict[tuple[str, str], Job] = {}
        for planned in plan.combos:
            job = jobs.setdefault((planned.model, planned.stimuli_hash),
                                  Job(planned.model, planned.stimuli_hash, [],
                                      spaces=planned.spaces))  # fmt: skip
            combo, record = planned.combo, done.get(planned.key)
            if record is not None:  # the run of a record this run may replace (see leases)
                combo = dataclasses.replace(combo, stored_run=record.get("run_id"))
            if not plan.recompute and record is not None and record["plan_hash"] == combo.plan_hash:
                job.stored.append(dataclasses.replace(combo,
                                                      stored_weights=record["weights_hash"]))  # fmt: skip
            else:
                job.pending.append(combo)
        work = [job for job in jobs.values() if job.pending]
        self.summary.n_stored = sum(len(job.stored) for job in jobs.values())
        self.summary.n_planned = sum(len(job.pending) for job in work)
        # a model whose every combination is stored is not built: the plan hash already
        # covers its options, its weights file's content and its plugin's code
        for job in jobs.values():
            if not job.pending:
                job.stored = []
        log.info("plan: %d jobs; %d combinations to score, %d already stored", len(work),
                 self.summary.n_planned, self.summary.n_stored)  # fmt: skip
        return work


def execute(
    plan: Plan,
    sink: ResultSink,
    leases: LeaseBoard | None = None,
    *,
    executor: Executor | None = None,
    progress: bool = True,
    raise_errors: bool = False,
    door: str | None = None,
    sink_opener: Callable[[], ResultStore] | None = None,
) -> RunSummary:
    """Run ``plan``, writing to ``sink`` and leasing on ``leases`` (default: ``sink``,
    which then must be a :class:`~brainrank.results.LeaseBoard` too); see the module
    docstring.

    ``executor``: :class:`InProcess` (default) or :class:`Dask`. ``raise_errors``: raise the
    first failure once it is recorded (the Python API) instead of going on. ``door`` names
    the door the run came through in its ``executor`` record (``"local (brainrank.score)"``):
    the run's configuration is the plan's, the same whichever door. ``sink_opener`` opens
    ``sink`` again in a worker process (default: ``sink.opener()``; needed on Dask).
    """
    executor = executor or InProcess()
    if leases is None:
        if not isinstance(sink, LeaseBoard):
            raise InputError("this result sink is no lease board; pass the lease board too.")
        leases = sink
    opener = sink_opener or sink.opener()
    executor.check(plan, opener)
    described = executor.describe() + (f" ({door})" if door else "")
    started = time.time()
    run_id = sink.start_run(plan.config, seeds=plan.seeds, executor=described)
    summary = RunSummary(run_id=run_id, executor=described, skipped=list(plan.skipped))
    history = getattr(sink, "combination_seconds", None)
    try:  # the seconds earlier runs took per (metric, dataset): the first estimates
        costs = CostModel(history=dict(history()) if callable(history) else {})
    except Exception as exc:  # a progress estimate never stops a run
        log.debug("no earlier combination seconds: %s", exc)
        costs = CostModel()
    shown = RunProgress(progress, Estimate(costs))
    run = _Run(plan, sink, leases, summary, shown, raise_errors)
    try:
        run.record_plan()
        work = run.resume()
        grid = GridConfig(
            store=opener,
            run_id=run_id,
            plugin_files=plan.plugin_files,
            data_dir=plan.data_dir,
            extraction=plan.extraction,
            cache_root=str(plan.cache.root) if plan.cache is not None else None,
            model_options=plan.model_options,
            metric_params=plan.metric_params,
            dataset_options=plan.dataset_options,
            raise_errors=raise_errors,
        )
        shown.start(executor.describe())
        executor.run(run, work, grid)
        summary.status = "ok" if summary.complete else "partial"
    except Exception:
        summary.status = "failed" if raise_errors else "interrupted"
        raise
    except BaseException:
        summary.status = "interrupted"
        raise
    finally:
        shown.close()
        summary.seconds = time.time() - started
        try:
            sink.finish_run(run_id, summary.status, summary.n_scores, len(summary.failures),
                            n_skipped=summary.n_stored + summary.n_elsewhere)  # fmt: skip
        except Exception as exc:  # never hide the original error behind this one
            log.error("could not record the end of run %s: %s", run_id, exc)
    return summary
