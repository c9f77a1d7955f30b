"""The BLAS thread limit (counted across threads) and the side-by-side map of independent
problems, whose results must be a plain loop's, bit for bit."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from brainrank.core import blas, stats

threadpoolctl = pytest.importorskip("threadpoolctl")


def _current() -> int:
    return blas.blas_threads()


def _two_threads_honoured() -> bool:
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        return _current() == 2


# the tests set the BLAS to 2 threads and watch it drop to 1 (a one-core BLAS cannot)
pytestmark = pytest.mark.skipif(
    not _two_threads_honoured(), reason="this BLAS does not run 2 threads here"
)


def test_one_blas_thread_limits_and_restores():
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        assert _current() == 2
        with blas.one_blas_thread():
            assert _current() == 1
            with blas.one_blas_thread():
                assert _current() == 1
            assert _current() == 1  # the inner block does not lift the outer one's limit
        assert _current() == 2


def test_the_workers_run_on_one_thread_and_the_caller_restores():
    seen: list[int] = []
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        blas.map_one_blas_thread(lambda _: seen.append(_current()), range(4))
        assert _current() == 2
    assert seen == [1, 1, 1, 1]


def _groups(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for v in (300, 257, 410):
        signal = rng.standard_normal((1, 40, v)) * rng.uniform(0.0, 1.0, size=v)
        out.append(signal + rng.standard_normal((2, 40, v)))
    return out


def test_map_is_the_loop_bit_for_bit_and_runs_side_by_side():
    groups = _groups()

    def interval(trials: np.ndarray) -> tuple[float, float, str]:
        low, high = stats.mean_sqrt_reliability_interval(trials, n_boot=40, n_iterations=60)
        return low, high, threading.current_thread().name

    with blas.one_blas_thread():
        expected = [interval(t)[:2] for t in groups]
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        found = blas.map_one_blas_thread(interval, groups)
        assert _current() == 2  # restored
    assert [f[:2] for f in found] == expected  # exact, not approximate
    assert all(name.startswith("brainrank-blas") for *_, name in found)


def test_map_runs_in_the_caller_under_one_thread_and_raises():
    with blas.one_blas_thread():
        names = blas.map_one_blas_thread(lambda _: threading.current_thread().name, [1, 2, 3])
    assert set(names) == {threading.current_thread().name}

    def fail(i: int) -> int:
        if i == 2:
            raise ValueError("two")
        return i

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"), pytest.raises(ValueError):
        blas.map_one_blas_thread(fail, [1, 2, 3])


def test_dataset_ceilings_equal_the_per_group_loop(monkeypatch):
    """The encoding ceiling and its interval, computed for the groups side by side, are the
    values of each group computed alone."""
    import brainrank

    dataset = brainrank.load_dataset("simulated")
    trials, _ = stats.trials_array(dataset.responses())
    from brainrank.core.responses import neuroid_groups

    groups = neuroid_groups(dataset.responses())
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        intervals = dataset.ceiling_interval("encoding")
        ceilings = dataset.ceiling("encoding")
    for key, index in groups[:3]:
        assert intervals[key] == stats.mean_sqrt_reliability_interval(trials[:, :, index])
        assert ceilings[key] == stats.mean_sqrt_reliability(trials[:, :, index])
    assert set(intervals) == {key for key, _ in groups}


def test_large_groups_run_one_at_a_time(monkeypatch):
    """Each thread holds a copy of its group's trials: above SIDE_BY_SIDE_BYTES per group
    the groups run one at a time (same values)."""
    from brainrank.core import dataset as dataset_module

    trials = np.zeros((2, 10, 30))
    indices = [np.arange(10), np.arange(10, 30)]
    assert dataset_module._side_by_side(trials, indices) is None
    monkeypatch.setattr(dataset_module, "SIDE_BY_SIDE_BYTES", 2 * 10 * 20 * 8 - 1)
    assert dataset_module._side_by_side(trials, indices) == 1
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        names = blas.map_one_blas_thread(
            lambda _: threading.current_thread().name, [1, 2, 3], max_workers=1
        )
    assert set(names) == {threading.current_thread().name}
