"""Where brainrank keeps its files, from one place.

Everything lives under the brainrank home folder: ``$BRAINRANK_HOME`` if set, else
``~/.brainrank``. In it:

- ``config.toml`` (optional): ``data_dir``, ``db`` (a database URL), ``cache_dir``,
  ``memory_budget_gb``, ``batch_size``, and a ``[dataset_dirs]`` table that points single
  datasets elsewhere (``nsd = "/mnt/nsd"``: an existing NSD mirror is read where it is);
- ``leaderboard.db``: the default SQLite leaderboard;
- ``cache/``: cached features; ``data/``: datasets, unless ``data_dir`` says otherwise.

Command-line options (``--db``, ``--data-dir``) override the file; ``BRAINRANK_DATA`` and
``BRAINRANK_DB`` override it for one shell.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainrank.core.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def home() -> Path:
    return Path(os.environ.get("BRAINRANK_HOME", "~/.brainrank")).expanduser()


@dataclass(frozen=True)
class Settings:
    home: Path
    data_dir: Path
    db: str
    cache_dir: Path
    memory_budget_gb: float = 4.0
    batch_size: int = 32
    #: dataset folder name (e.g. ``nsd``) -> its folder, when not ``<data_dir>/<name>``
    dataset_dirs: dict[str, Path] = field(default_factory=dict)


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read the configuration file {path}: {exc}") from exc


def settings() -> Settings:
    root = home()
    values = _read_file(root / "config.toml")
    known = {"data_dir", "db", "cache_dir", "memory_budget_gb", "batch_size", "dataset_dirs"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(
            f"unknown keys {unknown} in {root / 'config.toml'}; known keys: {sorted(known)}."
        )
    data_dir = os.environ.get("BRAINRANK_DATA") or values.get("data_dir") or root / "data"
    db = os.environ.get("BRAINRANK_DB") or values.get("db") or sqlite_url(root / "leaderboard.db")
    cache_dir = values.get("cache_dir") or root / "cache"
    dataset_dirs = values.get("dataset_dirs", {})
    if not isinstance(dataset_dirs, dict) or not all(
        isinstance(v, str) for v in dataset_dirs.values()
    ):
        raise InputError(
            f"dataset_dirs in {root / 'config.toml'} must be a table of folder paths, e.g.\n"
            '[dataset_dirs]\nnsd = "/mnt/nsd"'
        )
    return Settings(
        home=root,
        data_dir=Path(data_dir).expanduser(),
        db=str(db),
        cache_dir=Path(cache_dir).expanduser(),
        memory_budget_gb=float(values.get("memory_budget_gb", 4.0)),
        batch_size=int(values.get("batch_size", 32)),
        dataset_dirs={k: Path(v).expanduser() for k, v in dataset_dirs.items()},
    )


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).expanduser().resolve()}"


def database_url(value: str | None) -> str:
    """A database URL from ``--db``: a URL as is, a plain path as an SQLite file."""
    if not value:
        return settings().db
    if "://" in value:
        return value
    return sqlite_url(value)
