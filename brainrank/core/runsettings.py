"""Run settings: where and how a run computes (device, batch size, memory budget, threads).

They change no result beyond float32 rounding, so they are part of no hash: they are
provenance, recorded in the run's configuration. The grid hands them to plugins without
touching the plugins' objects: the extraction gets them as arguments
(:class:`~brainrank.core.extraction.ExtractionConfig`), and a metric's
:meth:`~brainrank.core.metric.Metric.score` runs inside :func:`using_run_settings`, where
:func:`run_settings` (exported by :mod:`brainrank.plugin`) and :attr:`Metric.device` read
them. The settings live in a :mod:`contextvars` variable, so concurrent runs in one process
(threads) each see their own.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class RunSettings:
    """The settings of the run a plugin is called from.

    - ``device``: the torch device the run computes on (``"cpu"``, ``"cuda"``,
      ``"cuda:N"``, ``"mps"``), resolved and checked once, when the run is planned;
    - ``batch_size``: images per forward pass;
    - ``memory_budget``: most bytes of activations the extraction holds at once;
    - ``threads``: the threads a worker process may use (``None``: not limited).
    """

    device: str = "cpu"
    batch_size: int = 32
    memory_budget: int = 4 * 2**30
    threads: int | None = None


_CURRENT: contextvars.ContextVar[RunSettings | None] = contextvars.ContextVar(
    "brainrank_run_settings", default=None
)


def current_run_settings() -> RunSettings | None:
    """The settings of the run this code is called from, or ``None`` outside a run."""
    return _CURRENT.get()


def run_settings() -> RunSettings:
    """The settings of the run this code is called from (the defaults outside a run)."""
    return _CURRENT.get() or RunSettings()


@contextlib.contextmanager
def using_run_settings(settings: RunSettings) -> Iterator[RunSettings]:
    """Make ``settings`` the current run settings inside the ``with`` block."""
    token = _CURRENT.set(settings)
    try:
        yield settings
    finally:
        _CURRENT.reset(token)
