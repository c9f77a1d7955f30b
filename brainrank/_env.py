"""Process settings that must be in place before torch (and its OpenMP runtime) loads.

Imported first by ``brainrank/__init__.py``.

Idle OpenMP threads (torch's) sleep instead of spinning, so that between forward passes they
do not hold the cores that the BLAS threads of the ridge and RSA kernels, or the other
workers of a parallel run, need. libgomp reads ``OMP_WAIT_POLICY`` once, when torch loads,
so it is set here, before anything in brainrank imports torch. A value already in the
environment is kept, and when torch was imported before brainrank the setting has no
effect (set it in the shell then).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


#: glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

#: Freed memory at the top of the heap kept for reuse before it is returned to the system.
KEEP_FREED_BYTES = 2**30

_allocator_tuned: bool | None = None
_libc = None  # glibc, once keep_freed_memory has tuned it


def keep_freed_memory() -> bool:
    """Let glibc's malloc reuse freed memory instead of mapping fresh pages each time.

    A forward pass allocates its large activations anew for every batch (tens to hundreds
    of MB each). glibc serves every allocation above 32 MB with its own ``mmap`` and returns
    it with ``munmap`` when freed, so the kernel zeroes and faults in those pages again for
    the next batch. Serving them from the heap instead, and keeping up to
    :data:`KEEP_FREED_BYTES` of freed memory at its top, removes that: extracting every
    layer of ``timm/resnet18:random`` for 200 images with RDMs took 13.5-15.7 s of system
    time and 33.5-34.4 s wall by default, 2.4-2.6 s and 28.7-29.1 s so (2-core VM, peak
    memory within 0.15 GB).

    Called by every grid job (CLI, Python API and Dask workers alike), which hands what it
    freed back with :func:`release_freed_memory` when it ends. It changes the whole
    process's allocator, so ``BRAINRANK_MALLOC=system`` in the environment turns it off.
    Linux with glibc only; elsewhere (and when turned off) it does nothing and returns
    False. Idempotent.
    """
    global _allocator_tuned, _libc
    if _allocator_tuned is not None:
        return _allocator_tuned
    _allocator_tuned = False
    if os.environ.get("BRAINRANK_MALLOC", "").lower() == "system" or sys.platform != "linux":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _allocator_tuned = bool(
        mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES) and mallopt(_M_MMAP_MAX, 0)
    )
    _libc = libc if _allocator_tuned else None
    return _allocator_tuned


def release_freed_memory() -> None:
    """Hand the freed memory that :func:`keep_freed_memory` keeps back to the system
    (glibc ``malloc_trim``), between jobs: reuse within a job, nothing held after it. Does
    nothing unless :func:`keep_freed_memory` took effect."""
    if _libc is not None:
        _libc.malloc_trim(0)
