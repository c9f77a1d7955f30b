"""The BLAS's thread count: one thread inside a block, and a map over independent problems
that runs them side by side on the cores, each on one BLAS thread.

threadpoolctl (installed with scikit-learn) finds the loaded BLAS libraries by walking the
process's shared objects; ``threadpool_limits`` does that walk on every call, which cost 4.1 s
of a cold ``make run`` (766 calls, one per ridge factorisation). The controller is made once,
after numpy's and scipy's BLAS are loaded (the only ones brainrank's numerical code calls),
and reused. Without threadpoolctl the BLAS keeps its own thread count.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_controller: Any = None
_held = threading.local()  # depth > 0: this thread runs inside a one_blas_thread block


def _blas_controller() -> Any:
    """threadpoolctl's controller of the BLAS libraries (``None`` without threadpoolctl)."""
    global _controller
    with _lock:
        if _controller is None:
            try:
                import scipy.linalg  # noqa: F401  (loads scipy's BLAS before the walk)
                from threadpoolctl import ThreadpoolController
            except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
                _controller = False
            else:
                _controller = ThreadpoolController().select(user_api="blas")
        return _controller or None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit the BLAS to one thread inside the block (on shared or oversubscribed cores,
    multithreaded OpenBLAS on small products and eigensolvers ran 5-13 times slower).

    The limit is process-wide, and OpenBLAS only honours raising it again from the thread
    that lowered it (measured: a count lowered in one thread and raised in another stays
    lowered), so the thread that enters the outermost block restores it; blocks nested in
    it, and the workers of :func:`map_one_blas_thread`, which run inside their caller's
    block, leave it alone."""
    controller = _blas_controller()
    if controller is None or getattr(_held, "depth", 0):
        yield
        return
    _held.depth = 1
    try:
        with controller.limit(limits=1):
            yield
    finally:
        _held.depth = 0


def blas_threads() -> int:
    """The BLAS's current thread count (the largest over the loaded BLAS libraries; 1
    without threadpoolctl): what a run's ``--threads`` or ``OMP_NUM_THREADS`` allows."""
    controller = _blas_controller()
    if controller is None:  # pragma: no cover
        return 1
    return max((lib.get_num_threads() or 1 for lib in controller.lib_controllers), default=1)


def map_one_blas_thread(
    fn: Callable[[Any], T], items: Iterable[Any], max_workers: int | None = None
) -> list[T]:
    """``[fn(item) for item in items]``, the items run side by side on as many threads as
    the BLAS may use (:func:`blas_threads`, at most ``max_workers``), each with one BLAS
    thread. Each call is the same computation on the same arrays as in a loop under
    :func:`one_blas_thread`, so the results are bit for bit the loop's (numpy releases the
    GIL in its products and element-wise passes). The first exception is raised."""
    items = list(items)
    workers = min(len(items), blas_threads(), max_workers or len(items))
    with one_blas_thread():
        if workers <= 1:
            return [fn(item) for item in items]

        def work(item: Any) -> T:
            _held.depth = 1  # inside the caller's block, which restores the limit
            try:
                return fn(item)
            finally:
                _held.depth = 0

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="brainrank-blas") as pool:
            return list(pool.map(work, items))
