"""What the grid needs from a place that keeps results: the :class:`ResultStore` protocol.

The leaderboard's :class:`~brainrank.leaderboard.store.Store` implements it (SQLite or
PostgreSQL); :class:`MemoryStore` implements it in memory, for scoring in Python without a
database. The grid only ever talks to this protocol, so it never depends on how or where
the results are kept.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import DatasetSpec, ModelMetadata


@runtime_checkable
class ResultStore(Protocol):
    """The writes and the one read (what is already complete) the grid makes."""

    #: a URL that worker processes can open again (``None``: in-process only)
    url: str | None

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

    def register_model(
        self, identifier: str, metadata: ModelMetadata, plugin: str = "",
        weights_hash: str | None = None,
    ) -> None:  # fmt: skip
        """Record a model's metadata (and the content hash of its weights)."""

    def register_dataset(
        self, spec: DatasetSpec, n_stimuli: int | None = None, *,
        stimuli_hash: str | None = None, data_hash: str | None = None,
    ) -> None:  # fmt: skip
        """Record a dataset's metadata and content hashes."""

    def register_metric(self, metric: Metric, plugin: str = "") -> None:
        """Record a metric configuration (identifier, configuration hash, parameters)."""

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

    def completed(self, keys: Iterable[tuple[str, str, str, str]]) -> dict[tuple, dict[str, Any]]:
        """Completion records of (model, dataset, metric, metric_hash) keys: each a dict
        with at least ``plan_hash`` and ``weights_hash``."""

    def opener(self) -> Callable[[], ResultStore] | None:
        """A picklable callable that opens this store again in another process (Dask
        workers), or ``None`` when it cannot be shared."""


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
    results: dict[tuple[str, str, str, str], StoredResult] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)

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

    def register_metric(self, metric, plugin="") -> None:
        self.metrics[(metric.identifier, metric.config_hash)] = {
            "parameters": dict(metric.parameters), "plugin": plugin}  # fmt: skip

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
        return len(rows)

    def record_failure(self, run_id, stage, error, *, traceback=None, model=None, dataset=None,
                       metric=None) -> None:  # fmt: skip
        self.failures.append({"run_id": run_id, "stage": stage, "error": error,
                              "traceback": traceback, "model": model, "dataset": dataset,
                              "metric": metric})  # fmt: skip

    def opener(self) -> None:
        return None  # memory is not shared with worker processes

    def completed(self, keys):
        out = {}
        for key in keys:
            result = self.results.get(tuple(key))
            if result is not None and result.plan_hash is not None:
                out[tuple(key)] = {"plan_hash": result.plan_hash, **result.hashes}
        return out
