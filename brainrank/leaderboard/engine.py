"""The leaderboard's database plumbing: URLs, drivers, SQLite settings, transient errors.

Nothing here knows the schema; :mod:`brainrank.leaderboard.store` builds on it.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Engine, make_url

from brainrank.core.errors import StoreError


def dialect_insert(engine: Engine):
    name = engine.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise StoreError(
            f"the leaderboard supports SQLite and PostgreSQL, not {name!r}; use a "
            "sqlite:/// or postgresql:// URL."
        )
    return insert


def check_sqlite_path(url: str) -> None:
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    path = Path(database)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the folder {folder} for the leaderboard database: {exc.strerror}. "
            "Choose a writable path with --db PATH (or set db in the config file)."
        ) from exc
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK):
        raise StoreError(
            f"the leaderboard database {path} is not writable (no write permission on "
            f"{target}). Choose a writable path with --db PATH."
        )


def is_transient(exc: BaseException) -> bool:
    """Deadlocks and serialisation failures (PostgreSQL), a busy database (SQLite)."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "pgcode", None)
    if code in ("40P01", "40001"):
        return True
    return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)


def engine_url(url: str) -> str:
    """``url`` with a PostgreSQL driver that is installed: a plain ``postgresql://`` URL
    means psycopg 3 to SQLAlchemy 2.1, but psycopg2 is the common one (and brainrank's
    ``postgres`` extra)."""
    parsed = make_url(url)
    if parsed.drivername != "postgresql":
        return url
    for module, driver in (("psycopg2", "postgresql+psycopg2"), ("psycopg", "postgresql+psycopg")):
        if importlib.util.find_spec(module) is not None:
            return parsed.set(drivername=driver).render_as_string(hide_password=False)
    return url


BUSY_TIMEOUT_S = 60.0


def set_wal(cursor: Any, timeout: float = BUSY_TIMEOUT_S) -> None:
    """Put the database in WAL mode (persistent: once per file).

    SQLite does not apply the busy timeout to the switch into WAL mode: two processes
    that create the same new leaderboard at once race for it, and the loser gets
    "database is locked" at once (about one time in five with six processes). So read the
    mode first and retry the switch, with jittered backoff, for as long as the busy
    timeout would have waited."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(0.5, delay * 2)


def sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # brainrank emits BEGIN itself (_sqlite_begin)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        set_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")
