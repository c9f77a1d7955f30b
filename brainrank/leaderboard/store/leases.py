"""Leases: before a job extracts and scores a combination it takes a lease on it (a row of
``leases``, see :meth:`Leases.acquire_leases`); another run that wants the same
combination meanwhile skips it and waits for it. The lease goes in the transaction that
writes the combination's scores; a job that stops without writing drops its leases, and
the lease of a holder that died is taken over (its run has ended, its process is gone from
this host, or it sent no heartbeat for the lease timeout).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, or_, select, update

from brainrank.leaderboard.schema import COMPLETION_KEY, LeaseRow, RunRow, utcnow
from brainrank.leaderboard.store.connection import Database, _process_alive, this_host
from brainrank.results import LEASE_TIMEOUT, ComboKey, LeaseOutcome

log = logging.getLogger(__name__)


class Leases(Database):
    """The lease table (see the module docstring)."""

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
        timeout: float = LEASE_TIMEOUT,
    ) -> dict[ComboKey, tuple[LeaseOutcome, int | None]]:
        """Take a lease on each (key, plan hash) of ``wanted``; see
        :meth:`brainrank.results.LeaseBoard.acquire_leases`. One transaction: on
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

        def work(conn: Connection) -> dict[ComboKey, tuple[LeaseOutcome, int | None]]:
            now = time.time()
            mine = {"run_id": run_id, "host": host, "pid": pid, "token": token,
                    "acquired_at": utcnow(), "heartbeat": now}  # fmt: skip
            new = [dict(zip(COMPLETION_KEY, key, strict=True), **mine) for key in keys]
            self._upsert(conn, LeaseRow, new, COMPLETION_KEY, update_columns=[])
            out: dict[ComboKey, tuple[LeaseOutcome, int | None]] = {}
            for start in range(0, len(keys), 200):
                chunk = keys[start : start + 200]
                rows = conn.execute(
                    select(t).where(self._key_clause(chunk)).order_by(t.id).with_for_update()
                ).all()
                running = self._running_runs(conn, [r.run_id for r in rows])
                for row in rows:
                    key = tuple(getattr(row, k) for k in COMPLETION_KEY)
                    if row.token == token:
                        out[key] = (LeaseOutcome.ACQUIRED, run_id)
                    elif (run_id is not None and row.run_id == run_id) or not self._lease_live(
                        row, running, now, timeout
                    ):
                        log.info("taking over the lease of %s from run %s (%s, pid %s)",
                                 "/".join(key), row.run_id, row.host, row.pid)  # fmt: skip
                        conn.execute(update(t).where(t.id == row.id).values(**mine))
                        out[key] = (LeaseOutcome.ACQUIRED, run_id)
                    else:
                        out[key] = (LeaseOutcome.HELD, row.run_id)
            ours = [k for k, (outcome, _) in out.items() if outcome is LeaseOutcome.ACQUIRED]
            done = self._completed_in(conn, ours)
            finished = [
                k for k in ours
                if k in done and done[k]["plan_hash"] == plans[k]
                and (k not in replaced or done[k]["run_id"] != replaced[k])
            ]  # fmt: skip
            for key in finished:
                out[key] = (LeaseOutcome.DONE, done[key]["run_id"])
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
        self, keys: Iterable[ComboKey], timeout: float = LEASE_TIMEOUT
    ) -> dict[ComboKey, int | None]:
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
