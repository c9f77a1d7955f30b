"""Provenance recorded with every run: brainrank's version, its git revision when it runs
from a checkout, the versions of the packages that shape the numbers, the host."""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

PACKAGES = ("brainrank", "torch", "torchvision", "timm", "open_clip_torch", "visualpriors",
            "numpy", "scipy", "scikit-learn", "sqlalchemy", "pandas", "xarray", "dask",
            "distributed")  # fmt: skip


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


def package_root() -> Path:
    """The folder that holds the ``brainrank`` package (a checkout's root, or site-packages)."""
    return Path(__file__).resolve().parents[2]


def git_revision(root: Path | None = None) -> str | None:
    """The git revision of brainrank's own checkout (``+dirty`` with uncommitted changes to
    tracked files), or ``None`` when brainrank is not installed from a checkout of itself.

    The revision is recorded only when ``root`` (default: the folder holding the package) is
    the top of a git work tree whose ``pyproject.toml`` names the project ``brainrank``: an
    installed package that merely sits inside some other repository (a venv in a user's
    project) records no revision rather than that repository's.
    """
    root = (root or package_root()).resolve()
    pyproject = root / "pyproject.toml"
    try:
        if 'name = "brainrank"' not in pyproject.read_text():
            return None
    except OSError:
        return None

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                 timeout=5)  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() != root:
        return None
    revision = git("rev-parse", "HEAD")
    if not revision:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return revision + "+dirty" if dirty else revision
