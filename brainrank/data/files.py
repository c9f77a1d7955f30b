"""What files a dataset needs, where they come from, and whether they are present.

A dataset plugin that reads files describes each of them as a :class:`RemoteFile`: its
path relative to the dataset's folder, the URLs it can be fetched from, and, where known, its
size and checksum. Files that only exist inside an archive name that archive
(:attr:`RemoteFile.archive`); fetching them fetches and unpacks the archive.

:class:`DataSource` bundles what a dataset says about its files (the folder name under the
data folder, the file list, the terms of use); :class:`DatasetFactory` is a dataset factory
that carries one, so ``brainrank data check/download`` can find it through the registry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainrank.core.errors import DataUnavailableError

CHECKSUM_ALGORITHMS = ("sha256", "sha1", "md5")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset.

    - ``path``: relative to the dataset's folder, with ``/`` separators.
    - ``urls``: where it can be downloaded, tried in order (mirrors); empty when the file
      cannot be downloaded (``note`` then says how to get it).
    - ``checksum``: ``(algorithm, hex digest)`` when known (``sha256``, ``sha1`` or ``md5``).
    - ``size``: bytes, when known.
    - ``archive``: the archive that contains this file (then ``urls`` is empty); it is
      found inside the archive under ``path``, possibly below one extra top-level folder.
    - ``optional``: the dataset works without it (for example extra metadata).
    """

    path: str
    urls: tuple[str, ...] = ()
    checksum: tuple[str, str] | None = None
    size: int | None = None
    description: str = ""
    note: str = ""
    optional: bool = False
    archive: RemoteFile | None = None

    def __post_init__(self) -> None:
        if self.checksum is not None and self.checksum[0] not in CHECKSUM_ALGORITHMS:
            raise ValueError(f"unknown checksum algorithm {self.checksum[0]!r}")
        if isinstance(self.urls, str):  # a single URL given as a string
            object.__setattr__(self, "urls", (self.urls,))

    @property
    def source(self) -> str:
        """Where the file comes from, for messages."""
        if self.archive is not None:
            return f"archive {self.archive.path} ({self.archive.source})"
        if self.urls:
            return self.urls[0]
        return self.note or "no public download"


@dataclass
class FileStatus:
    file: RemoteFile
    local: Path
    present: bool
    problem: str = ""  # "" when the file is present and (as far as checked) intact

    @property
    def ok(self) -> bool:
        return self.present and not self.problem


def file_digest(path: Path, algorithm: str, chunk: int = 1 << 20) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_file(file: RemoteFile, root: Path, verify: bool = False) -> FileStatus:
    """Is ``file`` present under ``root``? Sizes are always compared when known; checksums
    only with ``verify=True`` (hashing large files takes a while)."""
    local = root / file.path
    if not local.is_file():
        return FileStatus(file, local, False)
    if file.size is not None:
        size = local.stat().st_size
        if size != file.size:
            return FileStatus(file, local, True, f"size {size} bytes, expected {file.size}")
    if verify and file.checksum is not None:
        algorithm, expected = file.checksum
        actual = file_digest(local, algorithm)
        if actual.lower() != expected.lower():
            return FileStatus(file, local, True, f"{algorithm} {actual}, expected {expected}")
    return FileStatus(file, local, True)


def missing_files_error(
    dataset: str, root: Path, missing: Sequence[RemoteFile], hint: str = ""
) -> DataUnavailableError:
    """An error that lists the missing files, where they are expected and where they come
    from."""
    lines = [
        f"dataset {dataset!r} needs {len(missing)} file(s) that are not in {root}:",
    ]
    for file in missing[:12]:
        lines.append(f"  {file.path}  (from {file.source})")
    if len(missing) > 12:
        lines.append(f"  ... and {len(missing) - 12} more")
    lines.append(
        f"Run `brainrank data download {dataset}` to fetch them, or point brainrank at the "
        "folder that holds them (--data-dir, BRAINRANK_DATA or data_dir in config.toml)."
    )
    if hint:
        lines.append(hint)
    return DataUnavailableError("\n".join(lines))


def require(dataset: str, root: Path, files: Iterable[RemoteFile], hint: str = "") -> None:
    """Raise :class:`DataUnavailableError` naming every required file that is missing."""
    missing = [f for f in files if not f.optional and not (root / f.path).is_file()]
    if missing:
        raise missing_files_error(dataset, root, missing, hint)


# --------------------------------------------------------------------------- data sources


@dataclass
class DataSource:
    """What a dataset says about its files.

    - ``folder``: the dataset's folder under the data folder (``<data_dir>/<folder>``),
      unless ``dataset_dirs`` in ``config.toml`` points it elsewhere.
    - ``files(root, subjects)``: the files the dataset reads (``subjects`` narrows the list
      for datasets with per-subject files; ``None`` means the defaults).
    - ``download_files(root, subjects)``: the files to fetch; defaults to ``files``. Datasets
      whose file list comes from a web API (the Allen Brain Observatory) query it here.
    - ``terms``: terms of use printed before a download.
    - ``subjects_help``: what ``--subjects`` means for this dataset.
    """

    folder: str
    files: Callable[[Path, Sequence[str] | None], list[RemoteFile]]
    terms: str = ""
    subjects_help: str = ""
    download_files: Callable[[Path, Sequence[str] | None], list[RemoteFile]] | None = None
    after_download: Callable[[Path], None] | None = None

    def root(self, data_dir: Any = None) -> Path:
        return dataset_root(self.folder, data_dir)

    def to_download(self, root: Path, subjects: Sequence[str] | None) -> list[RemoteFile]:
        if self.download_files is not None:
            return self.download_files(root, subjects)
        return self.files(root, subjects)


def dataset_root(folder: str, data_dir: Any = None) -> Path:
    """The folder of one dataset: ``<data_dir>/<folder>`` for a ``data_dir`` given by the
    caller (the command line's ``--data-dir``), else as the settings resolve it
    (:meth:`brainrank.settings.Settings.dataset_dir`: ``BRAINRANK_DATA``, then
    ``[dataset_dirs]`` and ``data_dir`` of ``config.toml``)."""
    from brainrank.settings import settings

    if data_dir is not None:
        return Path(data_dir).expanduser() / folder
    return settings().dataset_dir(folder)


@dataclass
class DatasetFactory:
    """A dataset factory (``factory(data_dir=None, **options)``) that also describes the
    dataset's files, so the command line can check and fetch them.

    ``build(root, **options)`` reads the dataset from its folder. Use an instance as the
    ``factory`` of a :class:`~brainrank.core.specs.DatasetSpec` and :meth:`available` as its
    ``available``.
    """

    build: Callable[..., Any]
    source: DataSource
    options: dict[str, Any] = field(default_factory=dict)

    def __call__(self, data_dir: Any = None, **options: Any) -> Any:
        root = self.source.root(data_dir)
        return self.build(root, **{**self.options, **options})

    def available(self, data_dir: Any = None) -> bool:
        """True when every required file of the default selection is present (no data is
        read; only file existence is checked)."""
        root = self.source.root(data_dir)
        if not root.is_dir():
            return False
        try:
            files = self.source.files(root, None)
        except Exception:  # a malformed index file: not available rather than a crash
            return False
        return all(f.optional or (root / f.path).is_file() for f in files)


def data_source_of(spec: Any) -> DataSource | None:
    """The :class:`DataSource` of a dataset spec, if its factory describes its files."""
    return getattr(spec, "data_source", None)


def is_offline() -> bool:
    """Whether downloads are forbidden (the one setting, :func:`brainrank.settings.offline`)."""
    from brainrank.settings import offline

    return offline()
