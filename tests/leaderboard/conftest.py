"""Leaderboard fixtures: a database URL per backend.

``db_url`` is parametrised over SQLite (a file in the test's folder) and PostgreSQL (the
server at ``$BRAINRANK_TEST_POSTGRES``, default postgresql://127.0.0.1:5432/test). Each
PostgreSQL test gets its own schema (``search_path`` in the URL), dropped afterwards, so
tests never see each other's rows. Without a reachable server the PostgreSQL cases skip
with the reason.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest

POSTGRES = os.environ.get("BRAINRANK_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")


def _admin_engine():
    sqlalchemy = pytest.importorskip("sqlalchemy")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 is not installed (pip install psycopg2-binary)")
    from brainrank.leaderboard.engine import engine_url

    engine = sqlalchemy.create_engine(engine_url(POSTGRES), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        engine.dispose()
        pytest.skip(f"no PostgreSQL server reachable at {POSTGRES}: {str(exc).splitlines()[0]}")
    return engine


@pytest.fixture
def postgres_url():
    """A PostgreSQL URL whose tables live in a fresh schema, dropped after the test."""
    engine = _admin_engine()
    schema = f"brainrank_test_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in POSTGRES else "?"
    url = f"{POSTGRES}{separator}options={quote(f'-csearch_path={schema}')}"
    try:
        yield url
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lb.db'}"
    return request.getfixturevalue("postgres_url")
