"""Array backends for the numerical kernels: one small API over numpy and torch.

A backend converts inputs, runs the few linear-algebra calls the kernels need and hands
results back as numpy arrays. ``get_backend("torch", device="cuda")`` runs the same kernel
code on a GPU when one is present.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainrank.core.errors import InputError


class NumpyBackend:
    name = "numpy"

    def __init__(self, device: str | None = None):
        if device not in (None, "cpu"):
            raise InputError(f"the numpy backend runs on the CPU only, not on {device!r}.")
        self.device = "cpu"

    def asarray(self, x: Any, dtype: str) -> np.ndarray:
        return np.asarray(x, dtype=np.dtype(dtype))

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def eigh(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.linalg.eigh(a)

    def svd(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, s, _ = np.linalg.svd(a, full_matrices=False)
        return u, s

    def zeros(self, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        return np.zeros(shape, dtype=np.dtype(dtype))

    def empty(self, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        return np.empty(shape, dtype=np.dtype(dtype))

    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.matmul(a, b, out=out)

    def col_dot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per-column dot products, without a temporary the size of the inputs."""
        return np.einsum("ij,ij->j", a, b)

    def col_sum(self, a: np.ndarray) -> np.ndarray:
        return a.sum(axis=0)

    def copy_columns_where(self, dst: np.ndarray, src: np.ndarray, columns: np.ndarray) -> None:
        np.copyto(dst, src, where=columns[None, :])

    def full(self, shape: tuple[int, ...], value: float, dtype: str) -> np.ndarray:
        return np.full(shape, value, dtype=np.dtype(dtype))

    def astype(self, x: np.ndarray, dtype: str) -> np.ndarray:
        return x.astype(np.dtype(dtype), copy=False)

    def where(self, cond: Any, a: Any, b: Any) -> np.ndarray:
        return np.where(cond, a, b)

    def sqrt(self, x: Any) -> Any:
        return np.sqrt(x)


class TorchBackend:
    name = "torch"

    def __init__(self, device: str | None = None):
        import torch

        self.torch = torch
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)

    def _dtype(self, dtype: str):
        return getattr(self.torch, np.dtype(dtype).name)

    def asarray(self, x: Any, dtype: str):
        torch = self.torch
        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=self._dtype(dtype))
        return torch.as_tensor(np.asarray(x), dtype=self._dtype(dtype), device=self.device)

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, self.torch.Tensor):
            return x.detach().cpu().numpy()
        return np.asarray(x)

    def eigh(self, a):
        return self.torch.linalg.eigh(a)

    def svd(self, a):
        u, s, _ = self.torch.linalg.svd(a, full_matrices=False)
        return u, s

    def zeros(self, shape: tuple[int, ...], dtype: str):
        return self.torch.zeros(shape, dtype=self._dtype(dtype), device=self.device)

    def empty(self, shape: tuple[int, ...], dtype: str):
        return self.torch.empty(shape, dtype=self._dtype(dtype), device=self.device)

    def matmul(self, a, b, out):
        return self.torch.matmul(a, b, out=out)

    def col_dot(self, a, b):
        return self.torch.einsum("ij,ij->j", a, b)

    def col_sum(self, a):
        return a.sum(dim=0)

    def copy_columns_where(self, dst, src, columns: np.ndarray) -> None:
        mask = self.torch.as_tensor(columns, device=self.device)[None, :]
        self.torch.where(mask, src, dst, out=dst)

    def full(self, shape: tuple[int, ...], value: float, dtype: str):
        return self.torch.full(shape, value, dtype=self._dtype(dtype), device=self.device)

    def astype(self, x, dtype: str):
        return x.to(self._dtype(dtype))

    def where(self, cond, a, b):
        return self.torch.where(cond, a, b)

    def sqrt(self, x):
        return self.torch.sqrt(x)


def get_backend(name: str = "numpy", device: str | None = None) -> NumpyBackend | TorchBackend:
    """``"numpy"`` (default) or ``"torch"`` (CPU, or CUDA when ``device`` says so or a GPU is
    present)."""
    if name == "numpy":
        return NumpyBackend(device)
    if name == "torch":
        return TorchBackend(device)
    raise InputError(f"unknown backend {name!r}; choose 'numpy' or 'torch'.")


#: Device names :func:`resolve_device` accepts.
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def _mps_available(torch: Any) -> bool:
    mps = getattr(getattr(torch, "backends", None), "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(spec: str | None = None) -> str:
    """The torch device to run on: ``"auto"`` (or None) picks ``"cuda"`` when a GPU is
    present, else ``"mps"`` (Apple) when present, else ``"cpu"``; ``"cpu"``, ``"cuda"``,
    ``"cuda:N"`` and ``"mps"`` are checked to exist. Raises :class:`InputError` otherwise."""
    value = "auto" if spec is None else str(spec).strip().lower()
    if value == "cpu":
        return "cpu"
    import torch

    cuda = torch.cuda.is_available()
    count = torch.cuda.device_count() if cuda else 0
    mps = _mps_available(torch)
    present = ["cpu"] + [f"cuda:{i}" for i in range(count)] + (["mps"] if mps else [])
    if value == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    hint = (
        f"The devices present here are: {', '.join(present)}. Choose one of them, or 'auto' "
        "(the GPU when there is one, else the CPU)."
    )
    if value == "mps":
        if not mps:
            raise InputError(f"device 'mps' (Apple GPU) was asked for but is not available. {hint}")
        return "mps"
    if value == "cuda" or value.startswith("cuda:"):
        index = value.partition(":")[2]
        if index and not index.isdigit():
            raise InputError(f"device {spec!r} is not a device name: write 'cuda' or 'cuda:N'.")
        if not cuda:
            raise InputError(
                f"device {spec!r} was asked for but no CUDA GPU is available (torch "
                f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}). {hint}"
            )
        if index and int(index) >= count:
            raise InputError(
                f"device {spec!r} was asked for but only {count} CUDA device(s) exist. {hint}"
            )
        return value
    raise InputError(f"unknown device {spec!r}; choose one of {', '.join(DEVICES)}. {hint}")
