"""brainrank's settings, resolved in one place.

Every setting has one precedence: **command line > environment > config file > default**.

| setting | command line | environment | ``config.toml`` key | default |
|---|---|---|---|---|
| home folder | | ``BRAINRANK_HOME`` | | ``~/.brainrank`` |
| data folder | ``--data-dir`` | ``BRAINRANK_DATA`` | ``data_dir`` | ``<home>/data`` |
| leaderboard | ``--db`` | ``BRAINRANK_DB`` | ``db`` | ``<home>/leaderboard.db`` |
| feature cache | | ``BRAINRANK_CACHE`` | ``cache_dir`` | ``<home>/cache`` |
| memory budget (GiB) | ``--memory-budget`` | | ``memory_budget_gb`` | 4 |
| images per batch | ``--batch-size`` | | ``batch_size`` | 32 |
| device | ``--device`` | ``BRAINRANK_DEVICE`` | ``device`` | ``cpu`` |
| no downloads | | ``BRAINRANK_OFFLINE`` | ``offline`` | off |
| one dataset's folder | | | ``[dataset_dirs]`` | ``<data folder>/<name>`` |
| a dataset's options | ``--dataset-option`` | | ``[dataset_options."NAME"]`` | the factory's |

``config.toml`` lives in the home folder. A ``[dataset_dirs]`` entry (``nsd = "/mnt/nsd"``:
an existing mirror read where it is) applies while the data folder itself comes from the
config file or the default; a data folder given on the command line or in the environment
is used for every dataset.

A ``[dataset_options."allen/natural-scenes"]`` table (``reliability_threshold = 0.5``) builds
that dataset with those options whenever a run (``brainrank run``, ``brainrank.score``)
includes it; ``--dataset-option NAME.KEY=VALUE`` sets one key over it
(:meth:`Settings.options_of_datasets`). Options are checked when the run is planned
(:mod:`brainrank.core.dataset_options`).

Reading settings never changes the process environment.
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

KNOWN_KEYS = {
    "data_dir",
    "db",
    "cache_dir",
    "memory_budget_gb",
    "batch_size",
    "dataset_dirs",
    "offline",
    "device",
    "dataset_options",
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


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
    offline: bool = False
    #: torch device for extraction and scoring: "auto", "cpu", "cuda", "cuda:N" or "mps"
    #: (as given; ``brainrank.core.backend.resolve_device`` checks and resolves it)
    device: str = "cpu"
    #: where ``data_dir`` came from: "command line", "environment", "config file", "default"
    data_dir_from: str = "default"
    #: dataset identifier -> the options it is built with (``[dataset_options."NAME"]``)
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def options_of_datasets(
        self, datasets: list[str], given: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The options of each of ``datasets`` (those with some): the config file's, with
        ``given`` (the command line's, which may also name datasets not in ``datasets``:
        the plan refuses those) key by key on top."""
        out = {d: dict(self.dataset_options[d]) for d in datasets if d in self.dataset_options}
        for dataset, options in (given or {}).items():
            out.setdefault(dataset, {}).update(options)
        return {d: o for d, o in out.items() if o}

    def dataset_dir(self, folder: str) -> Path:
        """The folder of one dataset (see the module docstring for ``[dataset_dirs]``)."""
        if self.data_dir_from in ("config file", "default"):
            override = self.dataset_dirs.get(folder)
            if override is not None:
                return override
        return self.data_dir / folder


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"cannot read the configuration file {path}: {exc}") from exc


def parse_flag(value: Any, what: str) -> bool:
    """A yes/no setting from a string (``1``/``true``/``yes``/``on`` or their opposites) or
    a TOML boolean."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputError(f"{what} must be one of 1/true/yes/on or 0/false/no/off, got {value!r}.")


def _positive(value: Any, what: str, kind: type) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not number > 0 or number == float("inf"):
        raise InputError(f"{what} must be a positive, finite {kind.__name__}, got {value!r}.")
    return number


def settings(
    *,
    data_dir: str | Path | None = None,
    db: str | None = None,
    memory_budget_gb: float | None = None,
    batch_size: int | None = None,
    device: str | None = None,
) -> Settings:
    """The settings, with the command line's values (``None``: not given) on top."""
    root = home()
    config_path = root / "config.toml"
    values = _read_file(config_path)
    unknown = sorted(set(values) - KNOWN_KEYS)
    if unknown:
        raise InputError(
            f"unknown keys {unknown} in {config_path}; known keys: {sorted(KNOWN_KEYS)}."
        )
    env = os.environ
    if data_dir is not None:
        data, data_from = data_dir, "command line"
    elif env.get("BRAINRANK_DATA"):
        data, data_from = env["BRAINRANK_DATA"], "environment"
    elif values.get("data_dir"):
        data, data_from = values["data_dir"], "config file"
    else:
        data, data_from = root / "data", "default"
    database = (
        db or env.get("BRAINRANK_DB") or values.get("db") or sqlite_url(root / "leaderboard.db")
    )
    cache_dir = env.get("BRAINRANK_CACHE") or values.get("cache_dir") or root / "cache"
    dataset_dirs = values.get("dataset_dirs", {})
    if not isinstance(dataset_dirs, dict) or not all(
        isinstance(v, str) for v in dataset_dirs.values()
    ):
        raise InputError(
            f"dataset_dirs in {config_path} must be a table of folder paths, e.g.\n"
            '[dataset_dirs]\nnsd = "/mnt/nsd"'
        )
    dataset_options = values.get("dataset_options", {})
    if not isinstance(dataset_options, dict) or not all(
        isinstance(v, dict) for v in dataset_options.values()
    ):
        raise InputError(
            f"dataset_options in {config_path} must be a table of tables, one per dataset, "
            'e.g.\n[dataset_options."allen/natural-scenes"]\nreliability_threshold = 0.5'
        )
    offline = parse_flag(values.get("offline", False), f"offline in {config_path}")
    if "BRAINRANK_OFFLINE" in env:
        offline = parse_flag(env["BRAINRANK_OFFLINE"], "BRAINRANK_OFFLINE")
    budget = (
        memory_budget_gb if memory_budget_gb is not None else values.get("memory_budget_gb", 4.0)
    )
    batch = batch_size if batch_size is not None else values.get("batch_size", 32)
    chosen_device = device or env.get("BRAINRANK_DEVICE") or values.get("device") or "cpu"
    return Settings(
        home=root,
        data_dir=Path(data).expanduser(),
        db=str(database),
        cache_dir=Path(cache_dir).expanduser(),
        memory_budget_gb=float(_positive(budget, "the memory budget (GiB)", float)),
        batch_size=int(_positive(batch, "the batch size", int)),
        dataset_dirs={k: Path(v).expanduser() for k, v in dataset_dirs.items()},
        offline=offline,
        device=str(chosen_device).strip().lower(),
        data_dir_from=data_from,
        dataset_options={k: dict(v) for k, v in dataset_options.items()},
    )


def offline() -> bool:
    """True when brainrank must not download anything (``BRAINRANK_OFFLINE`` or
    ``offline = true`` in ``config.toml``): every download path asks this."""
    return settings().offline


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).expanduser().resolve()}"


def database_url(value: str | None) -> str:
    """A database URL from ``--db``: a URL as is, a plain path as an SQLite file."""
    if not value:
        return settings().db
    if "://" in value:
        return value
    return sqlite_url(value)
