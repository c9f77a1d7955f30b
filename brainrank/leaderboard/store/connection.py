"""The connection to one leaderboard database: opening it (SQLite file or PostgreSQL URL),
write transactions and their retries, and the schema (created, or migrated from an older
version after a backup of an SQLite file).

SQLite runs in WAL mode (one writer and many readers at once); write transactions start
with ``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead of
failing. On PostgreSQL, rows are written in key order (no deadlocks between processes
writing overlapping rows) and a transaction that still meets a deadlock or a serialisation
failure is retried.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import logging
import os
import platform
import random
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import Connection, and_, create_engine, event, inspect, or_, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from brainrank.core.errors import StoreError
from brainrank.leaderboard.engine import (
    BUSY_TIMEOUT_S,
    check_sqlite_path,
    dialect_insert,
    engine_url,
    is_transient,
    sqlite_begin,
    sqlite_connect,
)
from brainrank.leaderboard.migrations import migrate
from brainrank.leaderboard.schema import (
    COMPLETION_KEY,
    SCHEMA_VERSION,
    Base,
    CompletionRow,
    MetaRow,
)

log = logging.getLogger(__name__)

#: a constant key for PostgreSQL's advisory lock around schema creation and migration
_PG_SCHEMA_LOCK = 0x6272616E  # "bran"
_CHUNK = 500
T = TypeVar("T")


def _readonly_url(database: str, immutable: bool = False) -> str:
    """An SQLite URL that opens ``database`` read-only (``mode=ro``; ``immutable``: without
    the WAL's shared memory, for a file in a folder this process cannot write)."""
    from urllib.parse import quote

    path = quote(os.path.abspath(database))
    options = "mode=ro&immutable=1" if immutable else "mode=ro"
    return f"sqlite:///file:{path}?{options}&uri=true"


def _sqlite_connect_readonly(dbapi_connection: Any, _record: Any) -> None:
    """As :func:`~brainrank.leaderboard.engine.sqlite_connect`, without the switch into WAL
    mode (a write)."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    finally:
        cursor.close()


def this_host() -> str:
    """The host as runs and leases record it (``user@node``)."""
    return f"{getpass.getuser()}@{platform.node()}"


class Database:
    """A connection to one leaderboard database: transactions, retries and the schema.
    :class:`~brainrank.leaderboard.store.Store` adds the writes, leases and reads."""

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
        #: opened read-only (the reading commands, on an SQLite file that is current)
        self.readonly = False
        database = parsed.database if backend == "sqlite" else None
        if backend == "sqlite" and not create:
            if database and database != ":memory:" and not os.path.isfile(database):
                raise StoreError(
                    f"there is no leaderboard at {database}: the file does not exist. Check "
                    "the path given with --db (or the db setting), or create a leaderboard "
                    f"there with `brainrank run --db {database} ...`."
                )
            self.readonly = bool(database and database != ":memory:")
        if backend == "sqlite" and not self.readonly:
            check_sqlite_path(url)
        try:
            kwargs: dict[str, Any] = {}
            if backend == "postgresql":
                kwargs["pool_pre_ping"] = True
            target = _readonly_url(database) if self.readonly else engine_url(url)
            self.engine = create_engine(target, **kwargs)
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
            connect = _sqlite_connect_readonly if self.readonly else sqlite_connect
            event.listen(self.engine, "connect", connect)
            event.listen(self.engine, "begin", sqlite_begin)
        if self.readonly:
            self.migrated_from = self._open_readonly(database)
            return
        try:
            self.migrated_from = self._prepare_schema()
        except (OperationalError, DBAPIError) as exc:
            reason = " ".join(str(exc.orig).split())
            raise StoreError(
                f"cannot open the leaderboard at {self.display_url}: {reason}. Check the path "
                "or server, or choose another with --db."
            ) from exc

    def _open_readonly(self, database: str) -> list[int]:
        """Check the schema of an SQLite leaderboard opened read-only. A leaderboard in
        WAL mode whose folder is not writable is read as an immutable snapshot. One written
        by an older brainrank is migrated first when the file is writable (reopened
        read-write); otherwise it cannot be read, and the error says why."""
        try:
            version = self.schema_version()
        except (OperationalError, DBAPIError):  # no -shm can be made beside a WAL file
            self.engine.dispose()
            self.engine = create_engine(_readonly_url(database, immutable=True))
            event.listen(self.engine, "connect", _sqlite_connect_readonly)
            event.listen(self.engine, "begin", sqlite_begin)
            try:
                version = self.schema_version()
            except (OperationalError, DBAPIError) as exc:
                reason = " ".join(str(exc.orig).split())
                raise StoreError(f"cannot read the leaderboard at {database}: {reason}.") from exc
        if version == SCHEMA_VERSION:
            return []
        writable = os.access(database, os.W_OK) and os.access(
            os.path.dirname(os.path.abspath(database)), os.W_OK
        )
        if version is not None and version > SCHEMA_VERSION:
            raise StoreError(
                f"the leaderboard at {database} has schema version {version}, newer than this "
                f"brainrank's {SCHEMA_VERSION}; upgrade brainrank (pip install -U brainrank) "
                "to read it."
            )
        if not writable:
            raise StoreError(
                f"the leaderboard at {database} has schema version {version}, older than this "
                f"brainrank's {SCHEMA_VERSION}, and is read-only here, so it cannot be migrated "
                "for reading. Open it once where it is writable (any brainrank command that "
                "reads it migrates it, keeping a backup), or ask its owner to."
            )
        self.engine.dispose()  # migrate with a read-write connection, then read through it
        self.readonly = False
        self.engine = create_engine(engine_url(self.url))
        event.listen(self.engine, "connect", sqlite_connect)
        event.listen(self.engine, "begin", sqlite_begin)
        return self._prepare_schema()

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

    def opener(self) -> Callable[[], Database]:
        """A picklable callable that opens this leaderboard again (in a Dask worker)."""
        return functools.partial(type(self), self.url)

    def _frame(self, stmt: Any) -> pd.DataFrame:
        with self.engine.connect() as conn:
            result = conn.execute(stmt)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

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
