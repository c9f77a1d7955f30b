"""Schema versions and the path from each to the next.

A leaderboard records its schema version in the ``meta`` table. Opening an older one
migrates it in place, one version at a time, inside one write transaction (SQLite: ``BEGIN
IMMEDIATE``; PostgreSQL: transactional DDL under an advisory lock), so two processes that
open the same old file at once migrate it once. Before migrating an SQLite file, a copy is
kept next to it (``<file>.schema-v<N>.bak``).

Version history:

1. models, datasets, metrics, runs, scores, failures, meta.
2. content hashes on models (weights), datasets (stimuli, data) and scores (weights,
   stimuli, data); seeds, executor and skipped count on runs; new tables
   ``neuroid_sets``, ``neuroid_values`` (per-neuroid arrays) and ``completions`` (what a
   resumed run may skip). Scores of version 1 have no completion rows, so the first run
   after the migration recomputes them once (their rows are updated in place).
3. per-stage seconds (``seconds_model``, ``seconds_extraction``, ``seconds_scoring``,
   ``seconds_writing``) and regression ``fits`` on runs (empty for older runs); new table
   ``leases`` (the combinations live runs are computing).
4. scores: the ceiling's interval (``ceiling_low``, ``ceiling_high``) and the chance level of
   an uncalibrated configuration (``chance``, ``chance_sd``); metrics: the preset's
   ``defaults``, the ``headline`` row and ``calibrated``. Older rows have none of them: the
   ranking then compares the ceiling itself with the floor, and takes the layer choice
   ``heldout``, else ``max``, for metrics registered before (until a run re-registers them).
   Models: the model taxonomy's training method, Taskonomy task cluster and published ImageNet top-1
   on ``models`` (empty for models registered before; a run that builds a model fills them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection, inspect

from brainrank.leaderboard.schema import Base

log = logging.getLogger(__name__)

#: columns added by each migration: {from_version: [(table, column), ...]}
ADDED_COLUMNS: dict[int, list[tuple[str, str]]] = {
    1: [
        ("models", "weights_hash"),
        ("datasets", "stimuli_hash"),
        ("datasets", "data_hash"),
        ("runs", "seeds"),
        ("runs", "executor"),
        ("runs", "n_skipped"),
        ("scores", "weights_hash"),
        ("scores", "stimuli_hash"),
        ("scores", "data_hash"),
    ],
    2: [
        ("runs", "seconds_model"),
        ("runs", "seconds_extraction"),
        ("runs", "seconds_scoring"),
        ("runs", "seconds_writing"),
        ("runs", "fits"),
    ],
    3: [
        ("scores", "ceiling_low"),
        ("scores", "ceiling_high"),
        ("scores", "chance"),
        ("scores", "chance_sd"),
        ("metrics", "defaults"),
        ("metrics", "headline"),
        ("metrics", "calibrated"),
        ("models", "training_method"),
        ("models", "task_cluster"),
        ("models", "imagenet_top1"),
    ],
}


def _add_columns(conn: Connection, columns: list[tuple[str, str]]) -> None:
    inspector = inspect(conn)
    preparer = conn.dialect.identifier_preparer
    for table_name, column_name in columns:
        existing = {c["name"] for c in inspector.get_columns(table_name)}
        if column_name in existing:
            continue
        column = Base.metadata.tables[table_name].c[column_name]
        ddl_type = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(
            f"ALTER TABLE {preparer.quote(table_name)} "
            f"ADD COLUMN {preparer.quote(column_name)} {ddl_type}"
        )


def _v1_to_v2(conn: Connection) -> None:
    _add_columns(conn, ADDED_COLUMNS[1])
    Base.metadata.create_all(conn, checkfirst=True)  # the new tables


def _v2_to_v3(conn: Connection) -> None:
    _add_columns(conn, ADDED_COLUMNS[2])
    Base.metadata.create_all(conn, checkfirst=True)  # leases


def _v3_to_v4(conn: Connection) -> None:
    _add_columns(conn, ADDED_COLUMNS[3])
    Base.metadata.create_all(conn, checkfirst=True)


#: {from_version: migration}; each takes the schema from_version to from_version + 1
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}


def migrate(conn: Connection, from_version: int, to_version: int) -> list[int]:
    """Run the migrations from ``from_version`` to ``to_version`` on ``conn`` (inside the
    caller's transaction); returns the versions passed through."""
    passed = []
    for version in range(from_version, to_version):
        step = MIGRATIONS.get(version)
        if step is None:
            raise RuntimeError(f"no migration from schema version {version} to {version + 1}")
        log.warning("migrating the leaderboard schema from version %d to %d", version, version + 1)
        step(conn)
        passed.append(version + 1)
    return passed
