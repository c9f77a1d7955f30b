"""Looking after the feature cache: what it holds, and making it smaller.

The cache (:class:`brainrank.core.cache.FeatureCache`) keeps one folder per (model, weights,
preprocessing, stimuli, extraction settings): ``root/<key[:2]>/<key>/`` with ``meta.json``
and one file per layer; ``root/models/`` remembers earlier builds of models (small). Left
over by killed runs or found damaged: temporary folders (``.<key>-*``) and folders moved
aside (``<key>.corrupt-*``); they are never read again.

- :func:`entries`: every entry with its model, stimuli, layers, size and last use;
- :func:`prune`: removes the leftovers, then the least recently used entries until the
  cache fits ``max_bytes`` (and entries unused for ``older_than`` seconds);
- :func:`clear`: removes everything.

"Last use" is the newest of the entry's modification time and its files' access times as
the file system records them (many mount with ``relatime``: an access time is updated at
most once a day), so it is a day-resolution guide. Removing an entry never loses a score:
the next run that needs those features extracts them again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from brainrank.core.errors import InputError

_KEY = re.compile(r"^[0-9a-f]{64}$")
_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20,
          "mib": 2**20, "g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40,
          "tib": 2**40}  # fmt: skip


@dataclass
class Entry:
    """One folder of the cache: a feature set, or a leftover (``kind``)."""

    path: Path
    kind: str  # "features", "leftover" (temporary or damaged), "models" (build records)
    key: str
    model: str
    n_stimuli: int
    n_layers: int
    projection_dims: tuple[int, ...]
    rdm: bool
    bytes: int
    last_used: float  # seconds since the epoch


def parse_size(text: str | int | float) -> int:
    """Bytes from ``10G``, ``500M``, ``1.5GB``, ``2GiB`` or a number of bytes (units are
    binary: 1G = 2**30 bytes)."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
        if not found or found.group(2).lower() not in _UNITS:
            raise InputError(
                f"{text!r} is not a size; write a number with an optional unit: 500M, 10G, 1.5T."
            )
        value = float(found.group(1)) * _UNITS[found.group(2).lower()]
    if value < 0:
        raise InputError(f"a size cannot be negative ({text!r}).")
    return int(value)


def human(size: float) -> str:
    """``1.5 GiB`` (binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _folder_stats(folder: Path) -> tuple[int, float]:
    total, newest = 0, 0.0
    for base, _, files in os.walk(folder):
        for name in files:
            try:
                stat = os.stat(os.path.join(base, name))
            except OSError:
                continue
            total += stat.st_size
            newest = max(newest, stat.st_mtime, stat.st_atime)
    with contextlib.suppress(OSError):
        newest = max(newest, folder.stat().st_mtime)
    return total, newest


def entries(root: str | Path) -> list[Entry]:
    """Every entry of the feature cache at ``root`` (none when it does not exist), the
    most recently used first."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for shard in sorted(root.iterdir()):
        if not shard.is_dir():
            continue
        if shard.name == "models":
            size, used = _folder_stats(shard)
            out.append(Entry(shard, "models", "models", "(model build records)", 0, 0, (), False,
                             size, used))  # fmt: skip
            continue
        for folder in sorted(shard.iterdir()):
            if not folder.is_dir():
                continue
            size, used = _folder_stats(folder)
            if not _KEY.match(folder.name):
                out.append(Entry(folder, "leftover", folder.name, "(temporary or damaged)", 0, 0,
                                 (), False, size, used))  # fmt: skip
                continue
            meta = {}
            with contextlib.suppress(OSError, ValueError):
                meta = json.loads((folder / "meta.json").read_text())
            if not isinstance(meta, dict) or "layers" not in meta:
                out.append(Entry(folder, "leftover", folder.name, "(incomplete entry)", 0, 0, (),
                                 False, size, used))  # fmt: skip
                continue
            out.append(
                Entry(folder, "features", folder.name, str(meta.get("model", "?")),
                      len(meta.get("stimulus_ids", [])), len(meta.get("layers", [])),
                      tuple(int(d) for d in meta.get("projection_dims", [])),
                      bool(meta.get("rdm")), size, used)
            )  # fmt: skip
    return sorted(out, key=lambda e: -e.last_used)


def _remove(entry: Entry) -> None:
    shutil.rmtree(entry.path, ignore_errors=True)
    with contextlib.suppress(OSError):  # an emptied shard folder goes too
        entry.path.parent.rmdir()


def prune(
    root: str | Path,
    max_bytes: int | None = None,
    older_than: float | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> tuple[list[Entry], int]:
    """Make the cache at ``root`` smaller: remove leftovers, the feature sets unused for
    ``older_than`` seconds, then the least recently used feature sets until the whole cache
    takes at most ``max_bytes``. Returns (the entries removed, or that would be with
    ``dry_run``; the bytes left)."""
    found = entries(root)
    now = time.time() if now is None else now
    removed = [e for e in found if e.kind == "leftover"]
    features = [e for e in found if e.kind == "features"]
    if older_than is not None:
        removed += [e for e in features if now - e.last_used > older_than]
    kept = [e for e in features if e not in removed]
    total = sum(e.bytes for e in found if e not in removed)
    if max_bytes is not None:
        for entry in sorted(kept, key=lambda e: e.last_used):  # least recently used first
            if total <= max_bytes:
                break
            removed.append(entry)
            total -= entry.bytes
    if not dry_run:
        for entry in removed:
            _remove(entry)
    return removed, total


def clear(root: str | Path) -> int:
    """Remove the whole cache at ``root``; returns the bytes it took."""
    root = Path(root)
    if not root.exists():
        return 0
    size, _ = _folder_stats(root)
    shutil.rmtree(root)
    return size
