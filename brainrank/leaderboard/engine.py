"""The leaderboard's database plumbing: URLs, drivers, SQLite settings, transient errors.

Nothing here knows the schema; :mod:`brainrank.leaderboard.store` builds on it.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
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


def sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # brainrank emits BEGIN itself (_sqlite_begin)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")
