"""The heartbeat that keeps a job's leases alive while it works."""

from __future__ import annotations

import logging
import threading

from brainrank.results import ResultStore

log = logging.getLogger(__name__)


class _Heartbeat:
    """Renews a job's leases every ``timeout / 6`` seconds in a daemon thread, so another
    run never takes over a lease whose holder is working (however long one stage takes)."""

    def __init__(self, store: ResultStore, token: str, timeout: float):
        self.store, self.token, self.interval = store, token, max(0.05, timeout / 6)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="brainrank-lease", daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.store.renew_leases(self.token)
            except Exception as exc:  # the next beat tries again; the job goes on
                log.warning("could not renew the job's leases: %s", exc)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
