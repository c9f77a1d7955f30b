"""The leaderboard store: an SQLite file by default, PostgreSQL by URL.

:class:`Store` is one connection to one leaderboard database, in four parts:

- :mod:`~brainrank.leaderboard.store.connection`: opening the database, write transactions
  and their retries, the schema and its migrations;
- :mod:`~brainrank.leaderboard.store.writes`: runs, registrations, scores (one transaction
  per combination, with its per-neuroid values and completion record), failures and run
  statistics;
- :mod:`~brainrank.leaderboard.store.leases`: the leases that keep two runs from computing
  the same combination;
- :mod:`~brainrank.leaderboard.store.reads`: what queries, the report and the web page read.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from brainrank.core.errors import StoreError
from brainrank.leaderboard.schema import SCHEMA_VERSION
from brainrank.leaderboard.store.connection import Database, this_host
from brainrank.leaderboard.store.leases import Leases
from brainrank.leaderboard.store.reads import Reads
from brainrank.leaderboard.store.writes import Writes, neuroid_set_hash

__all__ = [
    "SCHEMA_VERSION",
    "Database",
    "Store",
    "neuroid_set_hash",
    "open_store",
    "this_host",
]


class Store(Writes, Leases, Reads):
    """A connection to one leaderboard database (see the module docstring)."""


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
