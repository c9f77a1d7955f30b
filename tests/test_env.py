"""Process settings applied when brainrank is imported."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

PROBE = (
    "import os, sys; import brainrank; "
    "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
)


def _probe(**env_changes: str | None) -> list[str]:
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_openmp_threads_sleep_when_idle_unless_the_user_chose():
    # set before torch can load (importing brainrank does not import torch at all)
    assert _probe(OMP_WAIT_POLICY=None) == ["PASSIVE", "False"]
    assert _probe(OMP_WAIT_POLICY="ACTIVE") == ["ACTIVE", "False"]


REUSE = """
import resource
import numpy as np
from brainrank._env import keep_freed_memory
tuned = keep_freed_memory()
np.ones(25_000_000, dtype=np.float32)  # the first 100 MB allocation faults its pages in
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    block = np.ones(25_000_000, dtype=np.float32)
    del block
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _reuse(**env: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", REUSE], env={**os.environ, **env},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    tuned, faults = out.stdout.split()
    return tuned, int(faults)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the allocator setting applies to Linux with glibc only",
)
def test_jobs_reuse_freed_memory_instead_of_faulting_fresh_pages_unless_turned_off():
    """keep_freed_memory (called by every grid job): a large block allocated again after
    being freed reuses the heap's pages; with BRAINRANK_MALLOC=system glibc unmaps and
    faults them in again every time."""
    tuned, faults = _reuse(BRAINRANK_MALLOC="")
    default_tuned, default_faults = _reuse(BRAINRANK_MALLOC="system")
    assert (tuned, default_tuned) == ("True", "False")
    assert default_faults > 200  # 5 x 100 MB faulted in again (in 2 MB or 4 kB pages)
    assert faults < default_faults / 10


RELEASE = """
import os
import numpy as np
from brainrank._env import keep_freed_memory, release_freed_memory
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
print(keep_freed_memory())
block = np.ones(50_000_000, dtype=np.float32)  # 200 MB from the heap
pins = [np.ones(1000) for _ in range(100)]  # allocated after it: the heap cannot shrink
before = rss()
del block
kept = rss()
release_freed_memory()
print(before - kept, kept - rss())
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the allocator setting applies to Linux with glibc only",
)
def test_freed_memory_kept_for_reuse_goes_back_to_the_system_between_jobs():
    out = subprocess.run(
        [sys.executable, "-c", RELEASE], env={**os.environ, "BRAINRANK_MALLOC": ""},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    tuned, line = out.stdout.splitlines()
    freed_by_del, released = (int(x) for x in line.split())
    assert tuned == "True"
    assert freed_by_del < 50e6  # kept for reuse ...
    assert released > 150e6  # ... until released


def test_every_grid_job_keeps_freed_memory_and_releases_it_at_its_end(
    monkeypatch, tmp_path, tiny_plugin_path
):
    from brainrank.core.registry import Registry
    from brainrank.grid import jobs, run_grid
    from brainrank.leaderboard import open_store

    calls = []
    monkeypatch.setattr(jobs, "keep_freed_memory", lambda: calls.append("keep") or True)
    monkeypatch.setattr(jobs, "release_freed_memory", lambda: calls.append("release"))
    summary = run_grid(
        registry=Registry(plugin_files=[tiny_plugin_path]),
        store=open_store(str(tmp_path / "lb.db")),
        models=["tiny/net"], datasets=["tiny/data"], metrics=["rsa"], progress=False,
    )  # fmt: skip
    assert summary.status == "ok", summary.failures
    assert calls == ["keep", "release"]  # one job: kept while it works, released after
