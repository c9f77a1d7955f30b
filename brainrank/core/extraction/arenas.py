"""Where a pass's activations are held: one float32 allocation reused by every pass (numpy
on the CPU, a torch tensor on another device), cut into feature-major buffers."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

#: Tests set this to run the device code path (torch tensors throughout) on the CPU.
_FORCE_DEVICE_PATH = False


def _on_device(device: str) -> bool:
    """Whether activations are held as torch tensors on ``device`` (any device but the CPU,
    where a numpy arena is faster to allocate and fill)."""
    return device != "cpu" or _FORCE_DEVICE_PATH


class _Arena:
    """One float32 allocation reused by every pass, its pages mapped up front.

    Faulting fresh pages in one by one as the hooks first write them costs more than the
    copies themselves (measured on a 2-core VM: 3-6 s for 4.4 GB, against 1.9 s mapped with
    ``MAP_POPULATE`` and 0.3 s to write touched memory). Transparent huge pages were slower
    still there (15 s, the kernel compacting memory to find them), so they are not asked for.
    """

    def __init__(self, n_floats: int):
        import mmap

        size = max(4, 4 * n_floats)
        populate = getattr(mmap, "MAP_POPULATE", 0)
        if populate and hasattr(mmap, "MAP_ANONYMOUS"):
            flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate
            self._map = mmap.mmap(-1, size, flags=flags)
        else:
            self._map = mmap.mmap(-1, size)
        self.data = np.frombuffer(self._map, dtype=np.float32)

    def views(self, n: int, widths: list[int]) -> list[Any]:
        """Feature-major buffers, ``(width, n)`` each: a layer's columns are its rows, so the
        sparse projection reads them as they are (its kernel wants ``X^T`` contiguous; a
        transposed copy of a whole layer after the pass cost 0.6 s per 200 x 800k layer,
        writing each batch transposed in the hook 0.01 s more than a plain copy)."""
        out, offset = [], 0
        for width in widths:
            out.append(self.data[offset : offset + n * width].reshape(width, n))
            offset += n * width
        return out

    def close(self) -> None:
        self.data = None  # type: ignore[assignment]
        with contextlib.suppress(BufferError):
            self._map.close()


class _DeviceArena(_Arena):
    """The pass buffers as one float32 torch tensor on the extraction device (its views are
    :class:`_Arena`'s: a reshape of a contiguous slice is a view in torch as in numpy)."""

    def __init__(self, n_floats: int, device: str):
        import torch

        self.data = torch.empty(max(1, n_floats), dtype=torch.float32, device=device)

    def close(self) -> None:
        self.data = None
