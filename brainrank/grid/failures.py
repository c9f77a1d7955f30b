"""Failures of a run: what failed at which stage, recorded in the store with its traceback
(none for errors a user caused) and reported to the caller; a plugin's ``sys.exit()`` is a
:class:`~brainrank.core.errors.PluginError`, never the end of the run."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass

from brainrank.core.errors import BrainrankError, PluginError
from brainrank.results import ResultStore

log = logging.getLogger(__name__)


@dataclass
class Failure:
    stage: str
    error: str
    model: str | None = None
    dataset: str | None = None
    metric: str | None = None


def plugin_exit(exc: BaseException, stage: str) -> BaseException:
    """A plugin's ``sys.exit()`` as the plugin error it is (it must not end the run)."""
    if isinstance(exc, SystemExit):
        return PluginError(
            f"a plugin called sys.exit({exc.code!r}) while brainrank was at stage {stage!r}; "
            "plugins must raise an exception instead (the run goes on without it)."
        )
    return exc


def record_failure(
    store: ResultStore,
    run_id: int | None,
    failures: list[Failure],
    stage: str,
    exc: BaseException | str,
    **where: str | None,
) -> BaseException | str:
    """Note a failure in ``failures``, record it in the store (with its traceback unless a
    user caused it) and log it; returns the error as recorded (a plugin's ``sys.exit`` as a
    :class:`PluginError`). A store that cannot record it is logged, never raised over it."""
    if not isinstance(exc, str):
        exc = plugin_exit(exc, stage)
    message = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    failures.append(Failure(stage, message, **where))
    trace = (
        None if isinstance(exc, (str, BrainrankError)) else "".join(traceback.format_exception(exc))
    )
    try:
        store.record_failure(run_id, stage, exc, traceback=trace, **where)
    except Exception as store_exc:  # the failure is still reported to the caller
        log.error("could not record a failure in the leaderboard: %s", store_exc)
    log.warning("%s failed (%s): %s", stage,
                ", ".join(f"{k}={v}" for k, v in where.items() if v), message)  # fmt: skip
    return exc
