"""The leaderboard store: an SQLite file by default, PostgreSQL by URL.

Every write is an idempotent upsert keyed on what determines the result, so a rerun, a
resumed run or two processes writing the same grid update rows instead of adding them.
The scores of one (model, dataset, metric) are written in one transaction together with
their per-neuroid values and a completion record, so a run killed at any moment leaves
either all of them or none.

SQLite runs in WAL mode (one writer and many readers at once); write transactions start
with ``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead of
failing. On PostgreSQL, rows are written in key order (no deadlocks between processes
writing overlapping rows) and a transaction that still meets a deadlock or a serialisation
failure is retried.

**Leases.** Before a job extracts and scores a combination it takes a lease on it (a row
of ``leases``, see :meth:`Store.acquire_leases`); another run that wants the same
combination meanwhile skips it and waits for it. The lease goes in the transaction that
writes the combination's scores; a job that stops without writing drops its leases, and
the lease of a holder that died is taken over (its run has ended, its process is gone from
this host, or it sent no heartbeat for the lease timeout).

**Run statistics.** Each job adds its seconds per stage and its regression fits to its
run's row (:meth:`Store.add_run_stats`, an atomic increment), so the totals of a run on a
Dask cluster include every worker's.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import hashlib
import logging
import math
import os
import platform
import random
import shutil
import sqlite3
import time
import traceback as tb
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    and_,
    create_engine,
    event,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, SQLAlchemyError

from brainrank.core.errors import StoreError
from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import DatasetSpec, ModelMetadata
from brainrank.leaderboard.engine import (
    check_sqlite_path,
    dialect_insert,
    engine_url,
    is_transient,
    sqlite_begin,
    sqlite_connect,
)
from brainrank.leaderboard.migrations import migrate
from brainrank.leaderboard.provenance import git_revision, jsonable, package_versions
from brainrank.leaderboard.schema import (
    COMPLETION_KEY,
    SCHEMA_VERSION,
    SCORE_KEY,
    Base,
    CompletionRow,
    DatasetRow,
    FailureRow,
    LeaseRow,
    MetaRow,
    MetricRow,
    ModelRow,
    NeuroidSetRow,
    NeuroidValuesRow,
    RunRow,
    ScoreRow,
    utcnow,
)

log = logging.getLogger(__name__)

#: a constant key for PostgreSQL's advisory lock around schema creation and migration
_PG_SCHEMA_LOCK = 0x6272616E  # "bran"
_CHUNK = 500
T = TypeVar("T")


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def this_host() -> str:
    """The host as runs and leases record it (``user@node``)."""
    return f"{getpass.getuser()}@{platform.node()}"


def neuroid_set_hash(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


class Store:
    """A connection to one leaderboard database."""

    def __init__(self, url: str, create: bool = True):
        self.url = url
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StoreError(f"{url!r} is not a database URL ({exc}).") from exc
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise StoreError(
                f"the leaderboard supports only SQLite and PostgreSQL databases, not "
                f"{backend!r} ({self.display_url}); give --db a file path, a sqlite:///PATH "
                "or a postgresql://USER@HOST/DATABASE URL."
            )
        if backend == "sqlite" and not create:
            database = parsed.database
            if database and database != ":memory:" and not os.path.isfile(database):
                raise StoreError(
                    f"there is no leaderboard at {database}: the file does not exist. Check "
                    "the path given with --db (or the db setting), or create a leaderboard "
                    f"there with `brainrank run --db {database} ...`."
                )
        if backend == "sqlite":
            check_sqlite_path(url)
        try:
            kwargs: dict[str, Any] = {}
            if backend == "postgresql":
                kwargs["pool_pre_ping"] = True
            self.engine = create_engine(engine_url(url), **kwargs)
        except (ArgumentError, ImportError) as exc:
            hint = (
                " Install the PostgreSQL driver with `pip install psycopg2-binary` (or "
                "`pip install brainrank[postgres]`)."
                if isinstance(exc, ImportError) and backend == "postgresql"
                else ""
            )
            raise StoreError(f"cannot open the leaderboard at {url}: {exc}.{hint}") from exc
        self._insert = dialect_insert(self.engine)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", sqlite_connect)
            event.listen(self.engine, "begin", sqlite_begin)
        try:
            self.migrated_from = self._prepare_schema()
        except (OperationalError, DBAPIError) as exc:
            reason = " ".join(str(exc.orig).split())
            raise StoreError(
                f"cannot open the leaderboard at {self.display_url}: {reason}. Check the path "
                "or server, or choose another with --db."
            ) from exc

    @property
    def display_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def path(self) -> str | None:
        parsed = make_url(self.url)
        return parsed.database if parsed.get_backend_name() == "sqlite" else None

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction: ``BEGIN IMMEDIATE`` on SQLite (writers queue on the busy
        timeout rather than failing halfway)."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def _retrying(self, work: Callable[[Connection], T], attempts: int = 8) -> T:
        """Run ``work(conn)`` in a write transaction, again if it meets a transient error."""
        for attempt in range(attempts):
            try:
                with self._write() as conn:
                    return work(conn)
            except DBAPIError as exc:
                if attempt + 1 == attempts or not is_transient(exc):
                    raise
                delay = min(2.0, 0.05 * 2**attempt) * (0.5 + random.random())
                log.info("transient database error (%s); retrying in %.2f s", exc.orig, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ schema

    def schema_version(self) -> int | None:
        with self.engine.connect() as conn:
            return _read_version(conn)

    def _prepare_schema(self) -> list[int]:
        """Create the tables of a new leaderboard or migrate an older one; returns the
        versions migrated through."""
        with self.engine.connect() as conn:  # fast path: already current
            version = _read_version(conn)
        if version == SCHEMA_VERSION:
            return []
        if version is not None and version > SCHEMA_VERSION:
            raise StoreError(
                f"the leaderboard at {self.display_url} has schema version {version}, newer "
                f"than this brainrank's {SCHEMA_VERSION}; upgrade brainrank (pip install -U "
                "brainrank) to use it."
            )
        if version is not None and self.path and os.path.exists(self.path):
            self._backup(version)
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SCHEMA_LOCK})
            version = _read_version(conn)  # again, under the lock
            passed: list[int] = []
            if version is None:
                Base.metadata.create_all(conn, checkfirst=True)
            elif version < SCHEMA_VERSION:
                passed = migrate(conn, version, SCHEMA_VERSION)
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"the leaderboard at {self.display_url} has schema version {version}; "
                    f"this brainrank knows up to {SCHEMA_VERSION}. Upgrade brainrank."
                )
            if version != SCHEMA_VERSION:
                self._upsert(conn, MetaRow, [{"key": "schema_version",
                                              "value": str(SCHEMA_VERSION)}], ["key"])  # fmt: skip
            return passed

    def _backup(self, version: int) -> None:
        """Copy an SQLite leaderboard before migrating it (consistent, via the backup API)."""
        target = f"{self.path}.schema-v{version}.bak"
        if os.path.exists(target):
            return
        try:
            source = sqlite3.connect(self.path)
            dest = sqlite3.connect(target + ".tmp")
            with dest:
                source.backup(dest)
            source.close()
            dest.close()
            shutil.move(target + ".tmp", target)
            log.warning("kept a copy of the schema-%d leaderboard at %s", version, target)
        except (OSError, sqlite3.Error) as exc:
            log.warning("could not back up %s before migrating it: %s", self.path, exc)

    # ------------------------------------------------------------------ writes

    def _upsert(
        self,
        conn: Connection,
        table: Any,
        rows: Sequence[dict[str, Any]],
        key: Sequence[str],
        update_columns: Sequence[str] | None = None,
    ) -> None:
        if not rows:
            return
        for start in range(0, len(rows), _CHUNK):
            chunk = list(rows[start : start + _CHUNK])
            stmt = self._insert(table).values(chunk)
            names = update_columns if update_columns is not None else list(chunk[0])
            columns = {c: stmt.excluded[c] for c in names if c not in key}
            if columns:
                stmt = stmt.on_conflict_do_update(index_elements=list(key), set_=columns)
            else:
                stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
            conn.execute(stmt)

    def opener(self) -> Callable[[], Store]:
        """A picklable callable that opens this leaderboard again (in a Dask worker)."""
        return functools.partial(Store, self.url)

    def start_run(
        self,
        config: dict[str, Any],
        *,
        seeds: dict[str, Any] | None = None,
        executor: str | None = None,
    ) -> int:
        """Record a new run; first mark runs of this host whose process is gone (killed,
        for example by SIGKILL or a power cut) as ``killed`` instead of ``running``."""
        from brainrank._version import __version__

        host = this_host()
        self.mark_dead_runs(host)

        def work(conn: Connection) -> int:
            result = conn.execute(
                RunRow.__table__.insert()
                .values(
                    started_at=utcnow(),
                    status="running",
                    code_version=__version__,
                    git_revision=git_revision(),
                    host=host,
                    packages=package_versions(),
                    config=jsonable({**config, "pid": os.getpid()}),
                    seeds=jsonable(seeds) if seeds is not None else None,
                    executor=executor,
                    n_scores=0,
                    n_failures=0,
                )
                .returning(RunRow.id)
            )
            return int(result.scalar_one())

        return self._retrying(work)

    def mark_dead_runs(self, host: str) -> int:
        """Runs recorded as ``running`` on ``host`` whose process no longer exists become
        ``killed`` (with the number of score rows they committed); returns how many."""
        with self.engine.connect() as conn:
            running = conn.execute(
                select(RunRow.id, RunRow.config).where(
                    RunRow.status == "running", RunRow.host == host
                )
            ).all()
        dead = [
            run_id
            for run_id, config in running
            if isinstance(config, dict)
            and isinstance(config.get("pid"), int)
            and not _process_alive(config["pid"])
        ]
        for run_id in dead:
            n = self._run_rows(run_id)
            self._retrying(
                lambda conn, run_id=run_id, n=n: conn.execute(
                    update(RunRow)
                    .where(RunRow.id == run_id, RunRow.status == "running")
                    .values(status="killed", n_scores=n)
                )
            )
        return len(dead)

    def _run_rows(self, run_id: int) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(ScoreRow).where(ScoreRow.run_id == run_id)
                ).scalar_one()
            )

    def finish_run(
        self,
        run_id: int,
        status: str,
        n_scores: int,
        n_failures: int,
        n_skipped: int | None = None,
    ) -> None:
        """Record the end of a run. ``n_scores`` is what the caller counted; the rows the
        run committed are counted too and the larger is kept (a run interrupted inside a
        job has committed rows its caller never heard of)."""
        n_scores = max(int(n_scores), self._run_rows(run_id))
        values = {"finished_at": utcnow(), "status": status, "n_scores": n_scores,
                  "n_failures": n_failures}  # fmt: skip
        if n_skipped is not None:
            values["n_skipped"] = n_skipped
        self._retrying(
            lambda conn: conn.execute(update(RunRow).where(RunRow.id == run_id).values(**values))
        )

    def register_model(
        self,
        identifier: str,
        metadata: ModelMetadata,
        plugin: str = "",
        weights_hash: str | None = None,
    ) -> None:
        meta = metadata.to_dict()
        row = {
            "identifier": identifier,
            "source": meta["source"],
            "architecture": meta["architecture"],
            "family": meta["family"],
            "task": meta["task"],
            "training_data": meta["training_data"],
            "trained": meta["trained"],
            "n_params": meta["n_params"],
            "input_size": meta["input_size"],
            "training_method": meta.get("training_method"),
            "task_cluster": meta.get("task_cluster"),
            "imagenet_top1": meta.get("imagenet_top1"),
            "plugin": plugin,
            "details": jsonable(
                {
                    "description": meta["description"],
                    "top1_source": meta.get("top1_source"),
                    **meta["extra"],
                }
            ),
            "updated_at": utcnow(),
        }
        if weights_hash is not None:
            row["weights_hash"] = weights_hash
        self._retrying(lambda conn: self._upsert(conn, ModelRow, [row], ["identifier"]))

    def register_dataset(
        self,
        spec: DatasetSpec,
        n_stimuli: int | None = None,
        *,
        stimuli_hash: str | None = None,
        data_hash: str | None = None,
    ) -> None:
        meta = spec.metadata.to_dict()
        row = {
            "identifier": spec.identifier,
            "species": meta["species"],
            "modality": meta["modality"],
            "kind": meta["kind"],
            "n_stimuli": n_stimuli if n_stimuli is not None else meta["n_stimuli"],
            "plugin": spec.plugin,
            "details": jsonable(meta),
            "updated_at": utcnow(),
        }
        if stimuli_hash is not None:
            row["stimuli_hash"] = stimuli_hash
        if data_hash is not None:
            row["data_hash"] = data_hash
        self._retrying(lambda conn: self._upsert(conn, DatasetRow, [row], ["identifier"]))

    def register_metric(self, metric: Metric, plugin: str = "") -> None:
        row = {
            "identifier": metric.identifier,
            "config_hash": metric.config_hash,
            "version": metric.version,
            "parameters": jsonable(metric.parameters),
            "plugin": plugin,
        }
        self._retrying(
            lambda conn: self._upsert(conn, MetricRow, [row], ["identifier", "config_hash"])
        )

    def write_scores(
        self,
        *,
        run_id: int | None,
        model: str,
        dataset: str,
        metric: Metric,
        scores: Iterable[Score],
        feature_key: str | None = None,
        weights_hash: str | None = None,
        stimuli_hash: str | None = None,
        data_hash: str | None = None,
        plan_hash: str | None = None,
        seconds: float | None = None,
    ) -> int:
        """Store the result of one (model, dataset, metric configuration) in one transaction:
        its score rows (upserts), their per-neuroid values and, with ``plan_hash``, the
        completion record. Rows of an earlier result of the same combination that this one
        does not have are removed. Returns how many score rows were written."""
        scores = list(scores)
        now = utcnow()
        hashes = {"feature_key": feature_key, "weights_hash": weights_hash,
                  "stimuli_hash": stimuli_hash, "data_hash": data_hash}  # fmt: skip
        rows = []
        for s in scores:
            rows.append(
                {
                    "model": model,
                    "dataset": dataset,
                    "metric": metric.identifier,
                    "metric_hash": metric.config_hash,
                    "subject": str(s.subject),
                    "region": str(s.region),
                    "layer": str(s.layer),
                    "selection": str(s.selection),
                    "value": _finite(s.value),
                    "ceiling": _finite(s.ceiling),
                    "normalized": _finite(s.normalized),
                    "ci_low": _finite(s.ci_low),
                    "ci_high": _finite(s.ci_high),
                    "n_neuroids": int(s.n_neuroids) if s.n_neuroids is not None else None,
                    "layer_index": int(s.layer_index) if s.layer_index is not None else None,
                    "relative_depth": _finite(s.relative_depth),
                    "details": jsonable(s.extra) or None,
                    "run_id": run_id,
                    "updated_at": now,
                    **hashes,
                }
            )
        keys = [tuple(r[k] for k in SCORE_KEY) for r in rows]
        if len(set(keys)) != len(keys):
            raise StoreError(
                f"metric {metric.identifier!r} returned several scores for the same "
                "(subject, region, layer, selection); each must be unique."
            )
        order = sorted(range(len(rows)), key=keys.__getitem__)  # key order: no deadlocks
        rows = [rows[i] for i in order]
        arrays = _neuroid_arrays([scores[i] for i in order], [keys[i] for i in order])
        completion = None
        if plan_hash is not None:
            completion = {
                "model": model,
                "dataset": dataset,
                "metric": metric.identifier,
                "metric_hash": metric.config_hash,
                "plan_hash": plan_hash,
                "n_scores": len(rows),
                "seconds": seconds,
                "run_id": run_id,
                "updated_at": now,
                **hashes,
            }

        def work(conn: Connection) -> int:
            self._remove_superseded(conn, model, dataset, metric, set(keys))
            self._upsert(conn, ScoreRow, rows, SCORE_KEY)
            if arrays:
                self._write_arrays(conn, model, dataset, metric, arrays)
            if completion is not None:
                self._upsert(conn, CompletionRow, [completion], COMPLETION_KEY)
                lease = LeaseRow
                conn.execute(
                    lease.__table__.delete().where(
                        lease.model == model, lease.dataset == dataset,
                        lease.metric == metric.identifier,
                        lease.metric_hash == metric.config_hash, lease.run_id == run_id,
                    )
                )  # fmt: skip
            return len(rows)

        return self._retrying(work)

    @staticmethod
    def _stored_ids(conn: Connection, model: str, dataset: str, metric: Metric) -> dict[tuple, int]:
        """The score rows stored for one combination: their key (``SCORE_KEY``) -> row id."""
        t = ScoreRow
        found = conn.execute(
            select(t.id, *(getattr(t, k) for k in SCORE_KEY)).where(
                t.model == model,
                t.dataset == dataset,
                t.metric == metric.identifier,
                t.metric_hash == metric.config_hash,
            )
        ).all()
        return {tuple(row[1:]): row[0] for row in found}

    def _remove_superseded(
        self, conn: Connection, model: str, dataset: str, metric: Metric, keep: set[tuple]
    ) -> None:
        """Delete rows of an earlier result of this combination that the new one does not
        have (a best layer that moved, a layer the model no longer has): a combination's
        rows are always one result, never a mix of two."""
        t = ScoreRow
        ids = self._stored_ids(conn, model, dataset, metric)
        stale = sorted(score_id for key, score_id in ids.items() if key not in keep)
        for start in range(0, len(stale), _CHUNK):
            chunk = stale[start : start + _CHUNK]
            conn.execute(
                NeuroidValuesRow.__table__.delete().where(NeuroidValuesRow.score_id.in_(chunk))
            )
            conn.execute(t.__table__.delete().where(t.id.in_(chunk)))

    def _write_arrays(
        self,
        conn: Connection,
        model: str,
        dataset: str,
        metric: Metric,
        arrays: dict[tuple, tuple[tuple[str, ...], bytes]],
    ) -> None:
        ids = self._stored_ids(conn, model, dataset, metric)
        sets: dict[str, dict[str, Any]] = {}
        values = []
        for key, (neuroid_ids, data) in arrays.items():
            digest = neuroid_set_hash(neuroid_ids)
            sets.setdefault(digest, {"hash": digest, "n": len(neuroid_ids),
                                     "ids": list(neuroid_ids)})  # fmt: skip
            values.append({"score_id": ids[key], "neuroid_set": digest, "data": data})
        self._upsert(conn, NeuroidSetRow, sorted(sets.values(), key=lambda r: r["hash"]),
                     ["hash"], update_columns=[])  # fmt: skip
        values.sort(key=lambda r: r["score_id"])
        self._upsert(conn, NeuroidValuesRow, values, ["score_id"])

    def record_failure(
        self,
        run_id: int | None,
        stage: str,
        error: BaseException | str,
        *,
        model: str | None = None,
        dataset: str | None = None,
        metric: str | None = None,
        traceback: str | None = None,
    ) -> None:
        if isinstance(error, BaseException):
            error_type, message = type(error).__name__, str(error)
            traceback = traceback or "".join(tb.format_exception(error))
        else:
            error_type, message = "Error", error
        row = {"run_id": run_id, "stage": stage, "model": model, "dataset": dataset,
               "metric": metric, "error_type": error_type, "message": message,
               "traceback": traceback, "created_at": utcnow()}  # fmt: skip
        self._retrying(lambda conn: conn.execute(FailureRow.__table__.insert().values(**row)))

    # ------------------------------------------------------------------ run statistics

    def add_run_stats(self, run_id: int | None, stats: Any) -> None:
        """Add a job's seconds per stage and fits (a :class:`StageStats`) to its run's row,
        as one atomic increment."""
        if run_id is None:
            return
        t = RunRow
        values: dict[str, Any] = {"fits": func.coalesce(t.fits, 0) + int(stats.fits)}
        for stage, seconds in stats.seconds.items():
            column = getattr(t, f"seconds_{stage}", None)
            if column is not None:
                values[f"seconds_{stage}"] = func.coalesce(column, 0.0) + float(seconds)
        self._retrying(lambda conn: conn.execute(update(t).where(t.id == run_id).values(**values)))

    # ------------------------------------------------------------------ leases

    @staticmethod
    def _key_clause(keys: Sequence[tuple]) -> Any:
        t = LeaseRow
        return or_(*(and_(t.model == m, t.dataset == d, t.metric == x, t.metric_hash == h)
                     for m, d, x, h in keys))  # fmt: skip

    @staticmethod
    def _running_runs(conn: Connection, run_ids: Iterable[int | None]) -> set[int]:
        ids = sorted({int(r) for r in run_ids if r is not None})
        if not ids:
            return set()
        found = conn.execute(
            select(RunRow.id).where(RunRow.id.in_(ids), RunRow.status == "running")
        ).scalars()
        return {int(r) for r in found}

    @staticmethod
    def _lease_live(row: Any, running: set[int], now: float, timeout: float) -> bool:
        """A lease's holder is alive: its run is still running, it sent a heartbeat in the
        last ``timeout`` seconds, and (on this host) its process exists."""
        if row.run_id is not None and int(row.run_id) not in running:
            return False
        if now - float(row.heartbeat) > timeout:
            return False
        return not (row.host == this_host() and not _process_alive(int(row.pid)))

    def acquire_leases(
        self,
        run_id: int | None,
        token: str,
        wanted: Sequence[tuple],
        timeout: float = 300.0,
    ) -> dict[tuple, tuple[str, int | None]]:
        """Take a lease on each (key, plan hash) of ``wanted``; see
        :meth:`brainrank.grid.protocol.ResultStore.acquire_leases`. One transaction: on
        SQLite the write lock serialises it, on PostgreSQL the rows are locked (``FOR
        UPDATE``) in key order, and a combination is checked for a completion record only
        after its lease is held, so a run that finished it in between is always seen."""
        plans = {tuple(key): plan for key, plan, *_ in wanted}
        #: a completion of this run is the record being replaced, not a new one
        replaced = {tuple(key): rest[0] for key, _, *rest in wanted if rest}
        keys = sorted(plans)
        if not keys:
            return {}
        host, pid = this_host(), os.getpid()
        t = LeaseRow

        def work(conn: Connection) -> dict[tuple, tuple[str, int | None]]:
            now = time.time()
            mine = {"run_id": run_id, "host": host, "pid": pid, "token": token,
                    "acquired_at": utcnow(), "heartbeat": now}  # fmt: skip
            new = [dict(zip(COMPLETION_KEY, key, strict=True), **mine) for key in keys]
            self._upsert(conn, LeaseRow, new, COMPLETION_KEY, update_columns=[])
            out: dict[tuple, tuple[str, int | None]] = {}
            for start in range(0, len(keys), 200):
                chunk = keys[start : start + 200]
                rows = conn.execute(
                    select(t).where(self._key_clause(chunk)).order_by(t.id).with_for_update()
                ).all()
                running = self._running_runs(conn, [r.run_id for r in rows])
                for row in rows:
                    key = tuple(getattr(row, k) for k in COMPLETION_KEY)
                    if row.token == token:
                        out[key] = ("acquired", run_id)
                    elif (run_id is not None and row.run_id == run_id) or not self._lease_live(
                        row, running, now, timeout
                    ):
                        log.info("taking over the lease of %s from run %s (%s, pid %s)",
                                 "/".join(key), row.run_id, row.host, row.pid)  # fmt: skip
                        conn.execute(update(t).where(t.id == row.id).values(**mine))
                        out[key] = ("acquired", run_id)
                    else:
                        out[key] = ("held", row.run_id)
            ours = [k for k, (outcome, _) in out.items() if outcome == "acquired"]
            done = self._completed_in(conn, ours)
            finished = [
                k for k in ours
                if k in done and done[k]["plan_hash"] == plans[k]
                and (k not in replaced or done[k]["run_id"] != replaced[k])
            ]  # fmt: skip
            for key in finished:
                out[key] = ("done", done[key]["run_id"])
            if finished:
                conn.execute(t.__table__.delete().where(self._key_clause(finished),
                                                        t.token == token))  # fmt: skip
            return out

        return self._retrying(work)

    def renew_leases(self, token: str) -> int:
        """Renew the heartbeat of the leases held by ``token``; returns how many."""
        t = LeaseRow
        return int(
            self._retrying(
                lambda conn: (
                    conn.execute(
                        update(t).where(t.token == token).values(heartbeat=time.time())
                    ).rowcount
                )
            )
        )

    def release_leases(self, token: str, keys: Iterable[tuple] | None = None) -> None:
        """Drop the leases held by ``token`` (all of them, or only ``keys``)."""
        t = LeaseRow
        chosen = None if keys is None else sorted({tuple(k) for k in keys})
        if chosen is not None and not chosen:
            return

        def work(conn: Connection) -> None:
            if chosen is None:
                conn.execute(t.__table__.delete().where(t.token == token))
                return
            for start in range(0, len(chosen), 200):
                clause = self._key_clause(chosen[start : start + 200])
                conn.execute(t.__table__.delete().where(clause, t.token == token))

        self._retrying(work)

    def lease_holders(
        self, keys: Iterable[tuple], timeout: float = 300.0
    ) -> dict[tuple, int | None]:
        """The run holding a live lease on each of ``keys`` (keys without one are left
        out)."""
        wanted = sorted({tuple(k) for k in keys})
        out: dict[tuple, int | None] = {}
        now = time.time()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 200):
                rows = conn.execute(
                    select(LeaseRow).where(self._key_clause(wanted[start : start + 200]))
                ).all()
                running = self._running_runs(conn, [r.run_id for r in rows])
                for row in rows:
                    if self._lease_live(row, running, now, timeout):
                        out[tuple(getattr(row, k) for k in COMPLETION_KEY)] = row.run_id
        return out

    def leases_frame(self) -> pd.DataFrame:
        return self._frame(select(LeaseRow).order_by(LeaseRow.id))

    @staticmethod
    def _completed_in(conn: Connection, keys: Sequence[tuple]) -> dict[tuple, dict[str, Any]]:
        t = CompletionRow
        out: dict[tuple, dict[str, Any]] = {}
        for start in range(0, len(keys), 200):
            chunk = keys[start : start + 200]
            clause = or_(*(and_(t.model == m, t.dataset == d, t.metric == x, t.metric_hash == h)
                           for m, d, x, h in chunk))  # fmt: skip
            for row in conn.execute(select(t).where(clause)).mappings():
                out[tuple(row[k] for k in COMPLETION_KEY)] = dict(row)
        return out

    # ------------------------------------------------------------------ reads

    def _frame(self, stmt: Any) -> pd.DataFrame:
        with self.engine.connect() as conn:
            result = conn.execute(stmt)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def scores_frame(self, **patterns: Any) -> pd.DataFrame:
        """Every score joined with its model's metadata. ``patterns`` (column -> shell
        patterns) narrow the rows in SQL; callers still apply the exact match (SQL ``LIKE``
        is case-insensitive on SQLite and has no character classes)."""
        stmt = select(
            ScoreRow.id.label("score_id"),
            ScoreRow.model,
            ScoreRow.dataset,
            ScoreRow.metric,
            ScoreRow.metric_hash,
            ScoreRow.subject,
            ScoreRow.region,
            ScoreRow.layer,
            ScoreRow.selection,
            ScoreRow.value.label("score"),
            ScoreRow.ceiling,
            ScoreRow.normalized,
            ScoreRow.ci_low,
            ScoreRow.ci_high,
            ScoreRow.n_neuroids,
            ScoreRow.layer_index,
            ScoreRow.relative_depth,
            ScoreRow.details,
            ScoreRow.weights_hash,
            ScoreRow.stimuli_hash,
            ScoreRow.data_hash,
            ScoreRow.feature_key,
            ScoreRow.run_id,
            ScoreRow.updated_at,
            ModelRow.family,
            ModelRow.trained,
            ModelRow.source,
            ModelRow.architecture,
            ModelRow.task,
            ModelRow.training_data,
            ModelRow.training_method,
            ModelRow.task_cluster,
        ).join(ModelRow, ModelRow.identifier == ScoreRow.model, isouter=True)
        for column, value in patterns.items():
            if value is None:
                continue
            target = ModelRow.family if column == "family" else getattr(ScoreRow, column)
            clause = _like_clause(target, value)
            if clause is not None:
                stmt = stmt.where(clause)
        return self._frame(stmt.order_by(ScoreRow.id))

    def neuroid_values(self, score_ids: Sequence[int]) -> dict[int, tuple[list[str], np.ndarray]]:
        """``{score_id: (neuroid_ids, float32 values)}`` for the rows that have them."""
        out: dict[int, tuple[list[str], np.ndarray]] = {}
        ids = [int(i) for i in score_ids]
        for start in range(0, len(ids), _CHUNK):
            stmt = (
                select(NeuroidValuesRow.score_id, NeuroidValuesRow.data, NeuroidSetRow.ids)
                .join(NeuroidSetRow, NeuroidSetRow.hash == NeuroidValuesRow.neuroid_set)
                .where(NeuroidValuesRow.score_id.in_(ids[start : start + _CHUNK]))
            )
            with self.engine.connect() as conn:
                for score_id, data, neuroid_ids in conn.execute(stmt):
                    out[int(score_id)] = (list(neuroid_ids), np.frombuffer(data, dtype="<f4"))
        return out

    def completions_frame(self, models: Sequence[str] | None = None) -> pd.DataFrame:
        stmt = select(CompletionRow).order_by(CompletionRow.id)
        if models is not None:
            stmt = stmt.where(CompletionRow.model.in_(list(models)))
        return self._frame(stmt)

    def completed(self, keys: Iterable[tuple[str, str, str, str]]) -> dict[tuple, dict[str, Any]]:
        """Completion records of the given (model, dataset, metric, metric_hash) keys."""
        wanted = [tuple(k) for k in dict.fromkeys(keys)]
        with self.engine.connect() as conn:
            return self._completed_in(conn, wanted)

    def models_frame(self) -> pd.DataFrame:
        return self._frame(select(ModelRow).order_by(ModelRow.identifier))

    def datasets_frame(self) -> pd.DataFrame:
        return self._frame(select(DatasetRow).order_by(DatasetRow.identifier))

    def metrics_frame(self) -> pd.DataFrame:
        return self._frame(select(MetricRow).order_by(MetricRow.identifier, MetricRow.id))

    def runs_frame(self) -> pd.DataFrame:
        return self._frame(select(RunRow).order_by(RunRow.id))

    def failures_frame(self, run_id: int | None = None) -> pd.DataFrame:
        stmt = select(FailureRow).order_by(FailureRow.id)
        if run_id is not None:
            stmt = stmt.where(FailureRow.run_id == run_id)
        return self._frame(stmt)

    def distinct_values(self) -> dict[str, list[str]]:
        """The values each filter column takes among stored scores (SELECT DISTINCT, so it
        stays fast on large leaderboards)."""
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for name in ("dataset", "metric", "region", "subject", "selection"):
                column = getattr(ScoreRow, name)
                out[name] = sorted(
                    str(v) for v in conn.execute(select(column).distinct()).scalars()
                )
            families = (
                select(ModelRow.family)
                .distinct()
                .where(ModelRow.identifier.in_(select(ScoreRow.model).distinct()))
            )
            out["family"] = sorted(str(v) for v in conn.execute(families).scalars() if v)
            out["model"] = sorted(
                str(v) for v in conn.execute(select(ScoreRow.model).distinct()).scalars()
            )
        return out

    def count(self, table: str = "scores") -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())

    def table_names(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())


def _read_version(conn: Connection) -> int | None:
    tables = set(inspect(conn).get_table_names())
    if "meta" not in tables:
        return 1 if "scores" in tables else None
    value = conn.execute(select(MetaRow.value).where(MetaRow.key == "schema_version")).scalar()
    if value is None:
        return 1 if "scores" in tables else None
    try:
        version = int(str(value).strip())
    except ValueError:
        version = 0
    if version < 1:
        where = conn.engine.url.render_as_string(hide_password=True)
        raise StoreError(
            f"the schema version of the leaderboard at {where} (the 'schema_version' row of "
            f"its 'meta' table) is {value!r}, not a version number >= 1: the database is damaged or was edited "
            f"by hand. Restore it from a backup, or set that row to the schema version it has "
            f"(this brainrank writes {SCHEMA_VERSION})."
        )
    return version


#: more patterns than this for one column are matched in Python only, not in SQL
_MAX_SQL_PATTERNS = 100


def _like_clause(column: Any, patterns: Any) -> Any:
    """An SQL prefilter for shell patterns, or None when one cannot be expressed."""
    if isinstance(patterns, str):
        patterns = [p.strip() for p in patterns.split(",") if p.strip()]
    patterns = [str(p) for p in patterns]
    if not patterns or any("[" in p for p in patterns):
        return None
    if len(patterns) > _MAX_SQL_PATTERNS:
        # one OR term per pattern: SQLite refuses a tree deeper than 1000 ("Expression tree
        # is too large"); past this size the caller's exact match in Python does it all
        return None
    clauses = []
    for p in patterns:
        if "*" in p or "?" in p:
            like = p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            like = like.replace("*", "%").replace("?", "_")
            clauses.append(column.like(like, escape="\\"))
        else:
            clauses.append(column == p)
    return or_(*clauses)


def _neuroid_arrays(
    scores: Sequence[Score], keys: Sequence[tuple]
) -> dict[tuple, tuple[tuple[str, ...], bytes]]:
    """Per-neuroid values to store, keyed like the score rows. A summary row whose values are
    those of its layer's row is not stored twice (queries follow it to that row)."""
    out: dict[tuple, tuple[tuple[str, ...], bytes]] = {}
    layer_data: dict[tuple[str, str, str], bytes] = {}
    for score, key in zip(scores, keys, strict=True):
        if score.per_neuroid is None:
            continue
        values = np.asarray(score.per_neuroid, dtype="<f4").reshape(-1)
        ids = tuple(str(i) for i in score.neuroid_ids) if score.neuroid_ids is not None else None
        if ids is None:
            ids = tuple(str(i) for i in range(values.size))
        if len(ids) != values.size:
            raise StoreError(
                f"a score of layer {score.layer!r} has {values.size} per-neuroid values but "
                f"{len(ids)} neuroid ids; the metric must give one id per value."
            )
        data = values.tobytes()
        if score.selection == "layer":
            layer_data[(score.subject, score.region, score.layer)] = data
        out[key] = (ids, data)
    for score, key in zip(scores, keys, strict=True):
        same = key in out and layer_data.get((score.subject, score.region, score.layer))
        if score.selection != "layer" and same == out.get(key, (None, None))[1]:
            del out[key]
    return out


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return True
    return True


def open_store(url: str | None = None, create: bool = True) -> Store:
    """The leaderboard at ``url`` (a database URL or an SQLite path; default from config).
    ``create=False`` (the read-only commands) refuses an SQLite file that does not exist
    rather than creating an empty leaderboard there."""
    from brainrank.settings import database_url

    resolved = database_url(url)
    try:
        return Store(resolved, create=create)
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        raise StoreError(f"cannot open the leaderboard at {resolved}: {reason}") from exc
