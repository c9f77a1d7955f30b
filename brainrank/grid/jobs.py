"""One job of the grid: build one model, get its features on one stimulus set once, score
every pending (dataset, metric) on them and write each result as soon as it is done.

:func:`run_job` is the only path from a model to a stored score: every run is
``execute(plan(...))`` (``brainrank run``, and ``brainrank.score`` for one combination),
which runs it in this process or on Dask workers, so every stored row carries its run, its
content hashes and its completion record whichever door it came through. A job's units are
here: :class:`Combo` (a dataset and metric configuration with its plan hash), :class:`Job`
(the combinations of one model on one stimulus set) and :class:`JobResult`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from brainrank._env import keep_freed_memory, release_freed_memory
from brainrank.core.features import compute_features, score_features
from brainrank.core.hashing import weights_hash
from brainrank.core.runsettings import using_run_settings
from brainrank.core.scores import FeatureRequest, FeatureSet
from brainrank.grid.context import Context, GridConfig, worker_context
from brainrank.grid.failures import Failure, record_failure
from brainrank.grid.leasing import JobLeases
from brainrank.grid.progress import JobProgress
from brainrank.results import StageStats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Combo:
    """One (dataset, metric configuration) a job scores for its model."""

    dataset: str
    metric: str
    metric_hash: str
    plan_hash: str
    #: weights recorded when this combination was stored (None: not stored yet)
    stored_weights: str | None = None
    #: the run of the completion record seen when planning: a record of that run does not
    #: make the combination done (--recompute, other weights); one of another run does
    stored_run: int | None = None


@dataclass
class Job:
    """The work on one (model, stimulus set): ``pending`` combinations to score and
    ``stored`` ones to score only if the model's weights turn out to differ."""

    model: str
    stimuli_hash: str
    pending: list[Combo]
    stored: list[Combo] = field(default_factory=list)
    #: the feature spaces when ``model`` is a combination of models (``stack/<hash>``,
    #: :mod:`brainrank.grid.combination`); empty for one model
    spaces: tuple = ()

    @property
    def label(self) -> str:
        return f"{self.model} on stimuli {self.stimuli_hash[:8]}"


@dataclass
class JobResult:
    model: str
    n_scores: int = 0
    n_scored: int = 0
    n_combos: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    #: seconds per stage and regression fits (also added to the run's row in the store)
    stats: StageStats = field(default_factory=StageStats)
    #: (combination, run) another live run is computing: this job skipped them
    held: list[tuple[Combo, int | None]] = field(default_factory=list)
    #: (combination, run) another run stored since this run planned: not computed again
    elsewhere: list[tuple[Combo, int | None]] = field(default_factory=list)


def _run_job(
    job: Job,
    config: GridConfig,
    ctx: Context,
    progress: JobProgress,
    lease: Callable[[list[Combo]], list[Combo]],
) -> JobResult:
    """:func:`run_job` once the job's pending combinations are leased; ``lease`` leases
    more (stored ones found stale) and returns those this job may compute."""
    started = time.time()
    store = ctx.store
    result = JobResult(model=job.model, n_combos=len(job.pending))
    lap = _Laps(result.stats)

    def fail(stage: str, exc: BaseException, **where: str | None) -> None:
        exc = record_failure(store, config.run_id, result.failures, stage, exc, **where)
        if config.raise_errors:
            raise exc

    def done(combos: list[Combo], failed: bool = True) -> None:
        for combo in combos:
            progress.combo_done(job.model, combo, "failed" if failed else "scored")

    try:
        progress.building(job.model)
        model, plugin = ctx.model(job.model)
        weights = weights_hash(model)
        store.register_model(job.model, model.metadata, plugin, weights_hash=weights)
    except (Exception, SystemExit) as exc:
        done(job.pending)
        result.seconds = time.time() - started
        fail("model", exc, model=job.model)
        return result

    lap("model")
    stale = [c for c in job.stored if c.stored_weights != weights]
    stale = lease(stale) if stale else stale
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
        if weights_hash(model) != weights:  # built now, with other weights than remembered
            weights = weights_hash(model)
            store.register_model(job.model, model.metadata, plugin, weights_hash=weights)
        progress.features(job.model, features)
    except (Exception, SystemExit) as exc:
        done(pending)
        result.seconds = time.time() - started
        fail("features", exc, model=job.model,
             dataset=",".join(sorted({c.dataset for c in pending})))  # fmt: skip
        return result

    lap("extraction")

    def score(metric: Any, dataset: Any, combo: Combo, features: FeatureSet = features) -> list:
        shown = progress.scoring(job.model, combo, features)  # says the layer it is at
        return score_features(metric, shown, dataset)

    score_pending(job, config, ctx, pending, datasets, metrics, score, result, lap, done, fail,
                  feature_key=features.key or None, weights=weights)  # fmt: skip
    del model, features, score
    result.seconds = time.time() - started
    return result


def score_pending(
    job: Job,
    config: GridConfig,
    ctx: Context,
    pending: list[Combo],
    datasets: dict[str, Any],
    metrics: dict[tuple[str, str], Any],
    score: Callable[[Any, Any, Combo], list],
    result: JobResult,
    lap: _Laps,
    done: Callable[..., None],
    fail: Callable[..., None],
    *,
    feature_key: str | None,
    weights: str | None,
) -> None:
    """Score each pending combination of a job whose features are there and write its rows
    as soon as it is done: ``score(metric, dataset, combo)`` gives the rows (under the run's
    settings, which the metric reads); a failure is recorded and the next combination goes
    on. Shared by :func:`_run_job` and the job of a combination
    (:func:`brainrank.grid.combination.run_combination_job`)."""
    settings = config.settings
    for combo in pending:
        where = {"model": job.model, "dataset": combo.dataset, "metric": combo.metric}
        begun = time.time()
        try:
            dataset = datasets[combo.dataset]
            metric = metrics[(combo.metric, combo.metric_hash)]
            with using_run_settings(settings):  # the metric reads them; nothing is set on it
                rows = score(metric, dataset, combo)
            lap("scoring")
            result.stats.fits += metric.count_fits(rows)
            result.n_scores += ctx.store.write_scores(
                run_id=config.run_id,
                model=job.model,
                dataset=combo.dataset,
                metric=metric,
                scores=rows,
                feature_key=feature_key,
                weights_hash=weights,
                stimuli_hash=job.stimuli_hash,
                data_hash=ctx.data_hash(combo.dataset),
                plan_hash=combo.plan_hash,
                seconds=time.time() - begun,
            )
            lap("writing")
            result.n_scored += 1
            done([combo], failed=False)
        except (Exception, SystemExit) as exc:
            lap("scoring")
            done([combo])
            fail("score", exc, **where)


class _Laps:
    """Charges the time since the previous lap to a stage: ``lap("model")`` once the model
    is built, ``lap("extraction")`` once the features are there... (the time of a failed
    stage goes to the next stage that completes, or nowhere when the job stops there)."""

    def __init__(self, stats: StageStats):
        self.stats = stats
        self.last = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.stats.seconds[stage] = self.stats.seconds.get(stage, 0.0) + now - self.last
        self.last = now


def combo_key(model: str, combo: Combo) -> tuple[str, str, str, str]:
    """The (model, dataset, metric, metric_hash) key of a job's combination."""
    return (model, combo.dataset, combo.metric, combo.metric_hash)


def run_job(
    job: Job,
    config: GridConfig,
    context: Context | None = None,
    progress: JobProgress | None = None,
) -> JobResult:
    """Build one model, extract its features on one stimulus set, score every pending
    (dataset, metric) and write each to the result store as soon as it is done.

    First the job leases its combinations (:meth:`~brainrank.results.LeaseBoard.acquire_leases`): those
    another live run is computing are skipped (``JobResult.held``; the planner waits for
    them) and those another run stored meanwhile are not computed again
    (``JobResult.elsewhere``); a job left with nothing to do builds no model. The leases
    are renewed while the job works and dropped when it ends. Its seconds per stage and
    fits are added to its run's row.

    A failure at any stage is recorded in the store with its traceback and the job goes on
    with what it can still do (``config.raise_errors``: raised after it is recorded).
    """
    keep_freed_memory()  # large activations reuse freed heap pages (BRAINRANK_MALLOC=system)
    ctx = context or worker_context(config)
    progress = progress or JobProgress()
    store = ctx.store
    leases = JobLeases(ctx.leases, store, config.run_id, job.model, config.lease_timeout,
                       progress, config.raise_errors)  # fmt: skip
    started = time.time()
    pending = leases.take(job.pending)
    try:
        with leases:
            if pending:
                job = dataclasses.replace(job, pending=pending)
                if job.spaces:  # a combination of feature spaces of several models
                    from brainrank.grid.combination import run_combination_job

                    result = run_combination_job(job, config, ctx, progress, leases.take)
                else:
                    result = _run_job(job, config, ctx, progress, leases.take)
            else:  # nothing left for this job: build no model
                result = JobResult(model=job.model, seconds=time.time() - started)
    finally:
        release_freed_memory()  # what the job freed goes back to the system between jobs
        leases.release()
    result.failures[:0] = leases.failures
    result.held, result.elsewhere = leases.held, leases.elsewhere
    result.n_combos += len(leases.elsewhere)
    try:
        store.add_run_stats(config.run_id, result.stats)
    except Exception as exc:
        log.warning("could not record the job's stage times in the leaderboard: %s", exc)
    return result
