"""Timing and memory helpers shared by the benchmarks."""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: the repository root (the folder holding ``bench/``)
ROOT = Path(__file__).resolve().parent.parent

#: the regions of the synthetic NSD-like dataset, assigned to voxels in turn
REGIONS = ("V1", "V4", "IT", "FFA")


def best_time(fn: Callable[[], Any], repeat: int = 3, warmup: int = 1) -> float:
    """The best of ``repeat`` wall-clock timings (the machine is shared: the minimum is the
    least disturbed run)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (VmHWM)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset the peak RSS counter (Linux >= 4.0); False where it cannot be reset."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def max_rss_bytes() -> int:
    """Peak resident set size of this process (``ru_maxrss``, kilobytes on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``) and the number of cores this process sees."""
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def run_worker(
    module: str,
    *args: str,
    timeout: float = 3600,
    python: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``python -m module args`` in a fresh process (from the repository root, with
    ``python``, default this interpreter) and parse the JSON it prints last."""
    out = subprocess.run(
        [python or sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{module} {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def nsd_like_images(n: int, size: int = 224, seed: int = 0) -> Callable[[int], np.ndarray]:
    """Image ``i`` (uint8 ``(size, size, 3)``) of the synthetic NSD-like dataset: one of 64
    noise images, circularly shifted by a per-image offset (cheap to make, all distinct)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (64, size, size, 3), dtype=np.uint8)
    shifts = rng.integers(0, size, (n, 2))

    def load(i: int) -> np.ndarray:
        return np.roll(base[i % len(base)], tuple(shifts[i]), axis=(0, 1))

    return load


def nsd_like_trials(n: int, v: int, load: Callable[[int], np.ndarray], seed: int = 0) -> np.ndarray:
    """Responses ``(2 n, v)`` float32 of the synthetic dataset: two repetitions (rows
    ``0..n-1`` then ``n..2n-1``) of smooth functions of each image's mean colour plus noise."""
    rng = np.random.default_rng(seed + 1)
    stats = np.stack([load(i).reshape(-1, 3).mean(0) for i in range(n)])
    stats = (stats - stats.mean(0)) / (stats.std(0) + 1e-9)
    signal = stats @ rng.standard_normal((3, v))
    trials = np.concatenate([signal + rng.standard_normal(signal.shape) for _ in range(2)])
    return trials.astype(np.float32)


def voxel_regions(v: int) -> np.ndarray:
    """The region of each of ``v`` voxels."""
    return np.array(REGIONS)[np.arange(v) % len(REGIONS)]


def entry(name: str, sizes: dict[str, Any], seconds: dict[str, float], ours: str, **extra: Any):
    """One benchmark entry: sizes, seconds per implementation and the speed-up of ``ours``
    over each peer (peer seconds / our seconds)."""
    ratios = {
        f"{ours}_vs_{peer}": seconds[peer] / seconds[ours] for peer in seconds if peer != ours
    }
    return {"name": name, "sizes": sizes, "seconds": seconds, "speedup": ratios, **extra}
