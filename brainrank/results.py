"""The contracts between the grid and the places that keep results, below both.

The grid writes through these protocols and the leaderboard implements them; neither
imports the other. Two roles, kept apart:

- :class:`ResultSink`: what a run records: the run itself (start, end, stage statistics),
  the models, datasets and metrics it used, the scores of each (model, dataset, metric
  configuration) with their completion record, the failures, and the reads a run needs
  (what is already complete, and its stored scores);
- :class:`LeaseBoard`: the coordination of runs that share a leaderboard: before a job
  extracts and scores a combination it takes a lease on it (:meth:`LeaseBoard.acquire_leases`),
  so two runs never compute the same combination.

:class:`ResultStore` is both: the leaderboard's
:class:`~brainrank.leaderboard.store.Store` (SQLite or PostgreSQL) and :class:`MemoryStore`
(in memory, what ``brainrank.score(...)`` keeps its result in without a database).

It also defines what a run measures (:class:`StageStats`: seconds per stage and regression
fits, :data:`STAGES`) and the lease vocabulary (:class:`LeaseOutcome`,
:data:`LEASE_TIMEOUT`). This module imports the core only.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import DatasetMetadata, ModelMetadata

#: the stages of a job whose seconds a run records
STAGES = ("model", "extraction", "scoring", "writing")

#: a (model, dataset, metric, metric_hash) combination
ComboKey = tuple[str, str, str, str]

#: seconds without a heartbeat after which a lease is taken over (its holder is presumed
#: dead); holders renew their leases every LEASE_TIMEOUT / 6 seconds
LEASE_TIMEOUT = 300.0


class LeaseOutcome(enum.Enum):
    """What :meth:`LeaseBoard.acquire_leases` answers for one combination."""

    #: this job holds the lease and computes the combination
    ACQUIRED = "acquired"
    #: another live run holds it and is computing the combination
    HELD = "held"
    #: already stored with the same plan hash (by another run since this one planned); no
    #: lease is kept
    DONE = "done"


@dataclass
class StageStats:
    """Seconds per stage (:data:`STAGES`) and regression fits, of one job or summed over a
    run's jobs. A fit is one target (neuroid) regressed on one layer with one penalty."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    fits: int = 0

    def add(self, other: StageStats) -> None:
        for stage, value in other.seconds.items():
            self.seconds[stage] = self.seconds.get(stage, 0.0) + value
        self.fits += other.fits

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the time spent in the ``with`` block to ``stage`` (also when it raises)."""
        begun = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - begun

    @property
    def empty(self) -> bool:
        return not self.fits and not any(self.seconds.values())


class DatasetEntry(Protocol):
    """What :meth:`ResultSink.register_dataset` records of a dataset: a
    :class:`~brainrank.core.specs.DatasetSpec`, or a plan's dataset source."""

    identifier: str
    metadata: DatasetMetadata
    plugin: str


@runtime_checkable
class ResultSink(Protocol):
    """The writes a run makes, and the reads its plan needs."""

    #: a URL that worker processes can open again (``None``: in-process only)
    url: str | None

    def opener(self) -> Callable[[], ResultSink] | None:
        """A picklable callable that opens this sink again in another process (Dask
        workers), or ``None`` when it cannot be shared."""

    def start_run(
        self, config: dict[str, Any], *, seeds: dict[str, Any] | None = None,
        executor: str | None = None,
    ) -> int:  # fmt: skip
        """Record the start of a run; returns its id."""

    def finish_run(
        self, run_id: int, status: str, n_scores: int, n_failures: int,
        n_skipped: int | None = None,
    ) -> None:  # fmt: skip
        """Record the end of a run (``status``: ok, partial, failed, interrupted)."""

    def add_run_stats(self, run_id: int | None, stats: StageStats) -> None:
        """Add one job's stage seconds and fits to its run's totals (atomically: several
        workers of one run add theirs concurrently)."""

    def register_model(
        self, identifier: str, metadata: ModelMetadata, plugin: str = "",
        weights_hash: str | None = None,
    ) -> None:  # fmt: skip
        """Record a model's metadata (and the content hash of its weights)."""

    def register_dataset(
        self, spec: DatasetEntry, n_stimuli: int | None = None, *,
        stimuli_hash: str | None = None, data_hash: str | None = None,
    ) -> None:  # fmt: skip
        """Record a dataset's metadata and content hashes."""

    def register_metric(
        self, metric: Metric, plugin: str = "", defaults: dict[str, Any] | None = None
    ) -> None:
        """Record a metric configuration (identifier, configuration hash, parameters, the
        parameters of the preset it was built from, headline row, calibration)."""

    def write_scores(
        self, *, run_id: int | None, model: str, dataset: str, metric: Metric,
        scores: Iterable[Score], feature_key: str | None = None,
        weights_hash: str | None = None, stimuli_hash: str | None = None,
        data_hash: str | None = None, plan_hash: str | None = None,
        seconds: float | None = None,
    ) -> int:  # fmt: skip
        """Store one (model, dataset, metric configuration) result atomically, with its
        completion record when ``plan_hash`` is given; returns the number of rows."""

    def record_failure(
        self, run_id: int | None, stage: str, error: Any, *, traceback: str | None = None,
        model: str | None = None, dataset: str | None = None, metric: str | None = None,
    ) -> None:  # fmt: skip
        """Record a failure with its traceback (``None`` for errors a user caused)."""

    def completed(self, keys: Iterable[ComboKey]) -> dict[ComboKey, dict[str, Any]]:
        """Completion records of (model, dataset, metric, metric_hash) keys: each a dict
        with at least ``plan_hash``, ``weights_hash`` and ``run_id``."""

    def stored_scores(self, key: ComboKey) -> list[Score]:
        """The stored scores of one (model, dataset, metric, metric_hash) combination, with
        their per-neuroid values (``[]`` when none are stored)."""


@runtime_checkable
class LeaseBoard(Protocol):
    """Leases on combinations, so runs that share a leaderboard never compute one twice."""

    def acquire_leases(
        self, run_id: int | None, token: str, wanted: Sequence[tuple],
        timeout: float = LEASE_TIMEOUT,
    ) -> dict[ComboKey, tuple[LeaseOutcome, int | None]]:  # fmt: skip
        """Take a lease on each ``(key, plan hash[, replaced run])`` in ``wanted`` for the
        holder ``token``, in one transaction. Returns ``{key: (outcome, run)}``:
        :attr:`LeaseOutcome.ACQUIRED` (``run`` is ``run_id``), :attr:`LeaseOutcome.HELD`
        by the live ``run``, or :attr:`LeaseOutcome.DONE` (stored with that plan hash by
        ``run``, not the replaced run whose record this run means to overwrite; no lease is
        kept). A lease whose holder is dead (its run ended, its process is gone from this
        host, or no heartbeat for ``timeout`` seconds) is taken over; one held by the same
        ``run_id`` too (a job of this run that was retried)."""

    def renew_leases(self, token: str) -> int:
        """The heartbeat of every lease held by ``token``; returns how many it holds."""

    def release_leases(self, token: str, keys: Iterable[ComboKey] | None = None) -> None:
        """Drop leases held by ``token`` (all of them, or ``keys``). Writing a combination's
        scores also drops its lease, in the same transaction."""

    def lease_holders(
        self, keys: Iterable[ComboKey], timeout: float = LEASE_TIMEOUT
    ) -> dict[ComboKey, int | None]:
        """The run holding a live lease on each of ``keys`` (keys without one are left
        out)."""


@runtime_checkable
class ResultStore(ResultSink, LeaseBoard, Protocol):
    """A result sink that is also a lease board: what a leaderboard is."""


# --------------------------------------------------------------------------- in memory


@dataclass
class StoredResult:
    """One result kept by :class:`MemoryStore`."""

    run_id: int | None
    model: str
    dataset: str
    metric: str
    metric_hash: str
    scores: list[Score]
    hashes: dict[str, str | None]
    plan_hash: str | None
    seconds: float | None


@dataclass
class MemoryStore:
    """A :class:`ResultStore` in memory: what ``brainrank.score(...)`` writes to when no
    database is given. Not shared between processes (``url`` is ``None``)."""

    url: str | None = None
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    results: dict[ComboKey, StoredResult] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    leases: dict[ComboKey, tuple[int | None, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start_run(self, config, *, seeds=None, executor=None) -> int:
        with self._lock:
            run_id = next(self._ids)
            self.runs[run_id] = {"config": config, "seeds": seeds, "executor": executor,
                                 "status": "running"}  # fmt: skip
        return run_id

    def finish_run(self, run_id, status, n_scores, n_failures, n_skipped=None) -> None:
        self.runs[run_id].update(status=status, n_scores=n_scores, n_failures=n_failures,
                                 n_skipped=n_skipped)  # fmt: skip

    def register_model(self, identifier, metadata, plugin="", weights_hash=None) -> None:
        self.models[identifier] = {"metadata": metadata, "plugin": plugin,
                                   "weights_hash": weights_hash}  # fmt: skip

    def register_dataset(self, spec, n_stimuli=None, *, stimuli_hash=None, data_hash=None):
        self.datasets[spec.identifier] = {"spec": spec, "n_stimuli": n_stimuli,
                                          "stimuli_hash": stimuli_hash, "data_hash": data_hash}  # fmt: skip

    def register_metric(self, metric, plugin="", defaults=None) -> None:
        self.metrics[(metric.identifier, metric.config_hash)] = {
            "parameters": dict(metric.parameters), "plugin": plugin, "defaults": defaults}  # fmt: skip

    def write_scores(self, *, run_id, model, dataset, metric, scores, feature_key=None,
                     weights_hash=None, stimuli_hash=None, data_hash=None, plan_hash=None,
                     seconds=None) -> int:  # fmt: skip
        rows = list(scores)
        key = (model, dataset, metric.identifier, metric.config_hash)
        with self._lock:
            self.results[key] = StoredResult(
                run_id, model, dataset, metric.identifier, metric.config_hash, rows,
                {"feature_key": feature_key, "weights_hash": weights_hash,
                 "stimuli_hash": stimuli_hash, "data_hash": data_hash},
                plan_hash, seconds,
            )  # fmt: skip
            if self.leases.get(key, (None,))[0] == run_id:
                del self.leases[key]
        return len(rows)

    def record_failure(self, run_id, stage, error, *, traceback=None, model=None, dataset=None,
                       metric=None) -> None:  # fmt: skip
        self.failures.append({"run_id": run_id, "stage": stage, "error": error,
                              "traceback": traceback, "model": model, "dataset": dataset,
                              "metric": metric})  # fmt: skip

    def opener(self) -> None:
        return None  # memory is not shared with worker processes

    def add_run_stats(self, run_id, stats) -> None:
        with self._lock:
            run = self.runs.get(run_id)
            if run is not None:
                run.setdefault("stats", StageStats()).add(stats)

    def acquire_leases(self, run_id, token, wanted, timeout=LEASE_TIMEOUT):
        out: dict[ComboKey, tuple[LeaseOutcome, int | None]] = {}
        with self._lock:
            for key, plan, *replaced in wanted:
                key = tuple(key)
                stored = self.results.get(key)
                holder = self.leases.get(key)
                old = replaced[0] if replaced else object()
                if stored is not None and stored.plan_hash == plan and stored.run_id != old:
                    out[key] = (LeaseOutcome.DONE, stored.run_id)
                elif holder is not None and holder[1] != token and holder[0] != run_id:
                    out[key] = (LeaseOutcome.HELD, holder[0])  # one process uses a MemoryStore
                else:
                    self.leases[key] = (run_id, token)
                    out[key] = (LeaseOutcome.ACQUIRED, run_id)
        return out

    def renew_leases(self, token) -> int:
        return sum(1 for _, t in self.leases.values() if t == token)

    def release_leases(self, token, keys=None) -> None:
        with self._lock:
            wanted = None if keys is None else {tuple(k) for k in keys}
            for key, (_, t) in list(self.leases.items()):
                if t == token and (wanted is None or key in wanted):
                    del self.leases[key]

    def lease_holders(self, keys, timeout=LEASE_TIMEOUT):
        return {tuple(k): self.leases[tuple(k)][0] for k in keys if tuple(k) in self.leases}

    def stored_scores(self, key):
        result = self.results.get(tuple(key))
        return list(result.scores) if result is not None else []

    def completed(self, keys):
        out = {}
        for key in keys:
            result = self.results.get(tuple(key))
            if result is not None and result.plan_hash is not None:
                out[tuple(key)] = {"plan_hash": result.plan_hash, "run_id": result.run_id,
                                   **result.hashes}  # fmt: skip
        return out
