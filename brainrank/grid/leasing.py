"""A job's leases: taken on the lease board before the job computes its combinations,
renewed by a heartbeat while it works, dropped when it ends (see
:class:`~brainrank.results.LeaseBoard`)."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING

from brainrank.grid.failures import Failure, record_failure
from brainrank.grid.progress import JobProgress
from brainrank.results import LeaseBoard, LeaseOutcome, ResultSink

if TYPE_CHECKING:
    from brainrank.grid.jobs import Combo

log = logging.getLogger(__name__)


class JobLeases:
    """The leases of one job (one model): :meth:`take` leases combinations and sorts out
    those another live run is computing (:attr:`held`) or stored since this run planned
    (:attr:`elsewhere`); ``with`` renews the leases while the job works; :meth:`release`
    drops them. A lease that cannot be taken is a failure recorded in ``sink``
    (:attr:`failures`; raised with ``raise_errors``)."""

    def __init__(self, board: LeaseBoard, sink: ResultSink, run_id: int | None, model: str,
                 timeout: float, progress: JobProgress, raise_errors: bool = False):  # fmt: skip
        self.board, self.sink, self.run_id, self.model = board, sink, run_id, model
        self.timeout, self.progress, self.raise_errors = timeout, progress, raise_errors
        self.token = uuid.uuid4().hex
        self.held: list[tuple[Combo, int | None]] = []
        self.elsewhere: list[tuple[Combo, int | None]] = []
        self.failures: list[Failure] = []
        self._heartbeat: _Heartbeat | None = None

    def _key(self, combo: Combo) -> tuple[str, str, str, str]:
        return (self.model, combo.dataset, combo.metric, combo.metric_hash)

    def take(self, combos: list[Combo]) -> list[Combo]:
        """Lease ``combos``; returns those this job may compute."""
        wanted = [(self._key(c), c.plan_hash, c.stored_run) for c in combos]
        try:
            outcomes = self.board.acquire_leases(self.run_id, self.token, wanted, self.timeout)
        except Exception as exc:
            exc = record_failure(self.sink, self.run_id, self.failures, "lease", exc,
                                 model=self.model)  # fmt: skip
            if self.raise_errors:
                raise exc from None
            for combo in combos:
                self.progress.combo_done(self.model, combo, "failed")
            return []
        mine = []
        for combo in combos:
            outcome, run = outcomes[self._key(combo)]
            if outcome is LeaseOutcome.ACQUIRED:
                mine.append(combo)
            elif outcome is LeaseOutcome.DONE:
                self.elsewhere.append((combo, run))
                self.progress.combo_done(self.model, combo, "elsewhere")
            else:
                assert outcome is LeaseOutcome.HELD, outcome
                self.held.append((combo, run))
                log.info("%s x %s x %s: run %s is computing it; this run waits for it",
                         self.model, combo.dataset, combo.metric, run)  # fmt: skip
        return mine

    def __enter__(self) -> JobLeases:
        self._heartbeat = _Heartbeat(self.board, self.token, self.timeout).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._heartbeat is not None:
            self._heartbeat.__exit__()
            self._heartbeat = None

    def release(self) -> None:
        """Drop every lease this job holds (they expire if this fails)."""
        try:
            self.board.release_leases(self.token)
        except Exception as exc:  # they expire; never hide the job's own error
            log.warning("could not release the job's leases: %s", exc)


class _Heartbeat:
    """Renews a job's leases every ``timeout / 6`` seconds in a daemon thread, so another
    run never takes over a lease whose holder is working (however long one stage takes)."""

    def __init__(self, board: LeaseBoard, token: str, timeout: float):
        self.board, self.token, self.interval = board, token, max(0.05, timeout / 6)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="brainrank-lease", daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.board.renew_leases(self.token)
            except Exception as exc:  # the next beat tries again; the job goes on
                log.warning("could not renew the job's leases: %s", exc)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
