"""Readers for the file formats of neural datasets, with errors that name the file.

Each reader turns the many ways a file can be unreadable (missing, truncated download,
wrong format) into a :class:`~brainrank.core.errors.DataUnavailableError` (missing) or an
:class:`~brainrank.core.errors.InputError` (present but unreadable) whose message names the
file and says what to do. h5py, nibabel and scipy are imported only when a file is read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.core.errors import DataUnavailableError, InputError

REDOWNLOAD = (
    "the file is corrupt or truncated: delete it and download it again (`brainrank data "
    "download DATASET`; `brainrank data check DATASET --verify` compares every file's checksum)"
)


def _exists(path: Path, what: str) -> None:
    if not path.is_file():
        raise DataUnavailableError(f"{what} {path.name} is missing: expected at {path}.")


def load_mat(path: Path, what: str = "MATLAB file", **options: Any) -> dict[str, Any]:
    """``scipy.io.loadmat`` without the ``__header__``/``__version__``/``__globals__`` keys."""
    import scipy.io

    _exists(path, what)
    try:
        content = scipy.io.loadmat(path, **options)
    except NotImplementedError as exc:  # MATLAB v7.3 files are HDF5
        raise InputError(
            f"{path} is a MATLAB v7.3 (HDF5) file, but this dataset was released as MATLAB v5; "
            f"use the file as released ({exc})."
        ) from exc
    except Exception as exc:
        raise InputError(
            f"cannot read {what} {path}: {type(exc).__name__}: {exc}; {REDOWNLOAD}."
        ) from exc
    return {k: v for k, v in content.items() if not k.startswith("__")}


@contextlib.contextmanager
def open_hdf5(path: Path, what: str = "HDF5 file") -> Iterator[Any]:
    """An open read-only ``h5py.File``."""
    import h5py

    _exists(path, what)
    try:
        handle = h5py.File(path, "r")
    except Exception as exc:
        raise InputError(f"cannot open {what} {path} as HDF5 ({exc}); {REDOWNLOAD}.") from exc
    with handle:
        yield handle


def hdf5_dataset(handle: Any, key: str, path: Path) -> Any:
    """``handle[key]``, or an error listing the keys the file has."""
    if key not in handle:
        keys = sorted(handle.keys())
        raise InputError(
            f"{path} has no dataset {key!r} (it has {keys[:10]}); is it the right file?"
        )
    return handle[key]


def read_hdf5(dataset: Any, selection: Any, path: Path) -> np.ndarray:
    """Read ``dataset[selection]``; read errors (truncated files) name the file."""
    try:
        return np.asarray(dataset[selection])
    except Exception as exc:
        raise InputError(f"cannot read {dataset.name} from {path} ({exc}); {REDOWNLOAD}.") from exc


def numeric_array(value: Any, name: str, path: Path, expected: str = "float64") -> np.ndarray:
    """``value`` as an ``expected`` array, or an InputError naming the file, the array, the
    dtype found and the one expected (for arrays stored as text, cells, structs, complex)."""
    array = np.asarray(value) if not isinstance(value, np.ndarray) else value
    if array.dtype.kind not in "biuf":  # bool, int, unsigned, float convert exactly enough
        raise InputError(
            f"{name} in {path} has dtype {array.dtype} ({_kind_name(array.dtype)}), expected "
            f"real numbers ({expected}): the file is not as released; delete it and download "
            "it again (`brainrank data check DATASET --verify` compares checksums)."
        )
    return array.astype(expected, copy=False)


def _kind_name(dtype: np.dtype) -> str:
    return {
        "c": "complex numbers",
        "U": "text",
        "S": "bytes",
        "O": "MATLAB cells or objects",
        "V": "a MATLAB struct or record",
        "M": "dates",
        "m": "time spans",
    }.get(dtype.kind, dtype.kind)


class Nifti:
    """A NIfTI image read lazily: ``shape`` from the header, ``data()`` when needed."""

    def __init__(self, path: Path, what: str = "NIfTI file"):
        import nibabel

        _exists(path, what)
        self.path = path
        self.what = what
        try:
            self.image = nibabel.load(str(path))
            self.shape = tuple(int(n) for n in self.image.shape)
        except Exception as exc:
            raise InputError(
                f"cannot open {what} {path} ({type(exc).__name__}: {exc}); {REDOWNLOAD}."
            ) from exc

    def data(self, dtype: Any = None) -> np.ndarray:
        """The array as stored (scaling from the header, if any, applied by nibabel)."""
        try:
            array = np.asanyarray(self.image.dataobj)
        except Exception as exc:
            raise InputError(
                f"cannot read the data of {self.what} {self.path} ({type(exc).__name__}: {exc}); "
                f"{REDOWNLOAD}."
            ) from exc
        return array if dtype is None else array.astype(dtype, copy=False)


def read_lines(path: Path, what: str = "list") -> list[str]:
    """Non-empty, stripped lines of a text file."""
    _exists(path, what)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc}") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]
