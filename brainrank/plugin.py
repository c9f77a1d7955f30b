"""Everything a brainrank plugin may import: the public plugin API.

A plugin is a module that implements some of the three hooks (``brainrank_models``,
``brainrank_datasets``, ``brainrank_metrics``) with :data:`hookimpl` and returns specs::

    from brainrank.plugin import ModelMetadata, ModelSpec, hookimpl

    @hookimpl
    def brainrank_models():
        return [ModelSpec("mylab/mynet", factory=build, metadata=ModelMetadata(...))]

Announce it in your package's ``pyproject.toml`` under ``[project.entry-points.brainrank]``
(the built-in plugins use the same group) or load a file with ``--plugin FILE``.

What is here, by plugin kind:

- **every plugin**: :data:`hookimpl`; the errors a user can cause (:class:`InputError`,
  :class:`DataUnavailableError`, :class:`WeightsUnavailableError`,
  :class:`NotApplicableError`), each raised with a message that says what to do.
- **models**: :class:`ModelSpec`, :class:`ModelMetadata` (its vocabularies in
  :mod:`brainrank.core.taxonomy`), :class:`Model`, :func:`seeded` for reproducible random
  initialisations, and :class:`ModelSet` / :class:`SetMember` for named selections of models
  (the ``brainrank_model_sets`` hook: ``--models @name``).
- **datasets**: :class:`DatasetSpec`, :class:`DatasetMetadata`, :class:`Dataset` (override
  :meth:`Dataset.responses`, :meth:`Dataset.rdms`, :meth:`Dataset.ceiling`,
  :meth:`Dataset.train_test_split` as needed), :class:`StimulusSet`, :class:`RDMSet` and the
  response helpers :func:`make_responses`, :func:`check_responses`,
  :func:`average_repetitions`, :func:`neuroid_groups`; behavioural data (choices per
  stimulus) as a trial table made with :func:`make_trials` (checked by
  :func:`check_trials`) and passed as ``Dataset(..., trials=table)``: one row per trial with
  ``stimulus_id``, ``subject``, ``choice`` (the label chosen), ``truth`` (the correct label)
  and ``condition`` (the task; a score's region), scored by behavioural metrics
  (``error-consistency``); file handling for datasets that are
  downloaded lives in :mod:`brainrank.data` (:class:`~brainrank.data.DataSource`,
  :class:`~brainrank.data.RemoteFile`, :class:`~brainrank.data.DatasetFactory`).
- **metrics**: :class:`MetricSpec`, :class:`MetricMetadata`, :class:`Metric` (implement
  :meth:`Metric.feature_request` and :meth:`Metric.score`), :class:`FeatureRequest`,
  :class:`FeatureSet`, :class:`LayerFeatures`, :class:`Score`, and the layer-selection
  helpers :func:`best_layer_scores`, :func:`heldout_layer_scores`, :func:`split_halves`.
  The run's settings (device, batch size, memory budget, threads) are read inside
  :meth:`Metric.score` with :func:`run_settings` (:class:`RunSettings`; ``self.device`` is
  the run's device): the runner never sets anything on a plugin's objects.
  The numerical kernels a metric builds on are in :mod:`brainrank.core.ridge`,
  :mod:`brainrank.core.rsa`, :mod:`brainrank.core.stats`, :mod:`brainrank.core.stacking` and
  :mod:`brainrank.core.projection`.

Nothing else in brainrank (the grid runner, the leaderboard, the command line) is part of
the plugin contract; a plugin that imports it may break with any release.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from brainrank.core.dataset import Dataset
from brainrank.core.errors import (
    BrainrankError,
    DataUnavailableError,
    InputError,
    NotApplicableError,
    PluginError,
    WeightsUnavailableError,
)
from brainrank.core.identifiers import check_identifier, split_variant
from brainrank.core.metric import Metric
from brainrank.core.model_sets import ModelSet, SetMember
from brainrank.core.registry import hookimpl
from brainrank.core.responses import (
    NEUROID,
    PRESENTATION,
    RDMSet,
    average_repetitions,
    check_responses,
    check_trials,
    make_responses,
    make_trials,
    neuroid_groups,
)
from brainrank.core.runsettings import RunSettings, run_settings
from brainrank.core.scores import (
    FeatureRequest,
    FeatureSet,
    LayerFeatures,
    Score,
    best_layer_scores,
    ceiling_fields,
    ceiling_usable,
    heldout_layer_scores,
    split_halves,
)
from brainrank.core.specs import (
    MODEL_FAMILIES,
    DatasetMetadata,
    DatasetSpec,
    MetricMetadata,
    MetricSpec,
    Model,
    ModelMetadata,
    ModelSpec,
)
from brainrank.core.stimuli import StimulusSet, as_rgb_uint8

#: Seed of every ``:random`` model variant: the same identifier always means the same network.
RANDOM_SEED = 0

__all__ = [
    "MODEL_FAMILIES",
    "NEUROID",
    "PRESENTATION",
    "RANDOM_SEED",
    "BrainrankError",
    "DataUnavailableError",
    "Dataset",
    "DatasetMetadata",
    "DatasetSpec",
    "FeatureRequest",
    "FeatureSet",
    "InputError",
    "LayerFeatures",
    "Metric",
    "MetricMetadata",
    "MetricSpec",
    "Model",
    "ModelMetadata",
    "ModelSet",
    "ModelSpec",
    "NotApplicableError",
    "PluginError",
    "RDMSet",
    "RunSettings",
    "Score",
    "SetMember",
    "StimulusSet",
    "WeightsUnavailableError",
    "as_rgb_uint8",
    "average_repetitions",
    "best_layer_scores",
    "cache_dir",
    "ceiling_fields",
    "ceiling_usable",
    "check_identifier",
    "check_responses",
    "check_trials",
    "dataset_folder",
    "heldout_layer_scores",
    "hookimpl",
    "make_responses",
    "make_trials",
    "neuroid_groups",
    "offline",
    "run_settings",
    "seeded",
    "split_halves",
    "split_variant",
]


def dataset_folder(folder: str, data_dir: str | Path | None = None) -> Path:
    """The folder a dataset plugin reads its files from: ``<data_dir>/<folder>`` for a
    ``data_dir`` given by the caller (``--data-dir``), else as the settings say
    (``BRAINRANK_DATA``, ``[dataset_dirs]`` and ``data_dir`` of ``config.toml``, default
    ``~/.brainrank/data/<folder>``).

    Parameters
    ----------
    folder : str
        The dataset's folder name, e.g. ``"nsd"``.
    data_dir : str or Path, optional
        The data folder passed to the dataset's factory (``None``: from the settings).
    """
    from brainrank.data.files import dataset_root

    return dataset_root(folder, data_dir)


def cache_dir() -> Path:
    """brainrank's cache folder (``cache_dir`` of the settings; ``~/.brainrank/cache`` by
    default), where a plugin may keep files it derives and can derive again (decoded or
    generated data), for example under ``cache_dir() / "datasets"``."""
    from brainrank.settings import settings

    return settings().cache_dir


def offline() -> bool:
    """Whether downloads are forbidden (``BRAINRANK_OFFLINE`` or ``offline`` in
    ``config.toml``): a plugin that downloads anything must ask this first."""
    from brainrank.settings import offline as _offline

    return _offline()


@contextlib.contextmanager
def seeded(seed: int = RANDOM_SEED) -> Iterator[None]:
    """Run a block with torch's global random number generator seeded.

    Use it around the construction of a randomly initialised network so that the same
    identifier always gives the same weights; the caller's RNG state is restored after.

    Parameters
    ----------
    seed : int
        The seed given to ``torch.manual_seed`` (default :data:`RANDOM_SEED`, 0).
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
