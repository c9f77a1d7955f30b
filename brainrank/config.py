"""Removed: ``brainrank.config``, the settings module of brainrank before its layers were
separated. What it offered lives on:

- a dataset plugin's folder: :func:`brainrank.plugin.dataset_folder` (``FOLDER`` under the
  data folder, honouring ``--data-dir``, ``BRAINRANK_DATA`` and ``[dataset_dirs]``);
- brainrank's cache folder: :func:`brainrank.plugin.cache_dir`;
- the resolved settings: :func:`brainrank.settings.settings` (``data_dir``, ``db``,
  ``cache_dir``, ``memory_budget_gb``, ``batch_size``, ``dataset_dirs``...).

Importing a name from here still works, with a :class:`~brainrank.core.errors.RemovedAPIWarning`
that names its replacement; ``brainrank plugin check`` fails on it, so a plugin is updated
before the shim goes.
"""

from __future__ import annotations

import warnings
from typing import Any

from brainrank.core.errors import RemovedAPIWarning

_PLUGIN_HINT = (
    "a dataset plugin finds its folder with brainrank.plugin.dataset_folder(FOLDER, data_dir) "
    "(and its cache with brainrank.plugin.cache_dir())"
)

#: name -> its replacement
REPLACEMENTS = {
    "settings": "brainrank.settings.settings()",
    "Settings": "brainrank.settings.Settings",
    "home": "brainrank.settings.home()",
    "sqlite_url": "brainrank.settings.sqlite_url()",
    "database_url": "brainrank.settings.database_url()",
}


def removal_message(name: str) -> str:
    return (
        f"brainrank.config.{name} was removed; use {REPLACEMENTS[name]} instead ({_PLUGIN_HINT})."
    )


def __getattr__(name: str) -> Any:
    if name not in REPLACEMENTS:
        raise AttributeError(
            f"brainrank.config was removed and never had {name!r}; {_PLUGIN_HINT}, and the "
            "settings are brainrank.settings.settings()."
        )
    warnings.warn(removal_message(name), RemovedAPIWarning, stacklevel=2)
    from brainrank import settings as replacement

    return getattr(replacement, name)
