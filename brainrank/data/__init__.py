"""Finding, checking and fetching dataset files.

- :mod:`brainrank.data.files`: :class:`RemoteFile` (a file, its URLs, size and checksum),
  :class:`DataSource` (a dataset's folder and file list), :class:`DatasetFactory` (a dataset
  factory that carries its data source), :func:`dataset_root` (where a dataset lives).
- :mod:`brainrank.data.fetch`: resumable, verified downloads and archive extraction.
- :mod:`brainrank.data.readers`: file readers (MATLAB, HDF5, NIfTI) whose errors name the file.

Importing this package reads nothing and imports no heavy library.
"""

from brainrank.data.files import (
    DatasetFactory,
    DataSource,
    FileStatus,
    RemoteFile,
    check_file,
    data_source_of,
    dataset_root,
    is_offline,
    require,
)

__all__ = [
    "DataSource",
    "DatasetFactory",
    "FileStatus",
    "RemoteFile",
    "check_file",
    "data_source_of",
    "dataset_root",
    "is_offline",
    "require",
]
