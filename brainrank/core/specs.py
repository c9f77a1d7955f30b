"""Plugin specs and model metadata: what a plugin announces before anything is built.

- metadata (:class:`ModelMetadata`, :class:`DatasetMetadata`, :class:`MetricMetadata`);
- specs (:class:`ModelSpec`, :class:`DatasetSpec`, :class:`MetricSpec`): an identifier,
  metadata and a lazy factory;
- :class:`Model`: a loaded network with its preprocessing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from brainrank.core import taxonomy
from brainrank.core.dataset import Dataset
from brainrank.core.errors import PluginError
from brainrank.core.identifiers import check_identifier
from brainrank.core.metric import Metric

# --------------------------------------------------------------------------- metadata

MODEL_FAMILIES = taxonomy.FAMILIES


@dataclass(frozen=True)
class ModelMetadata:
    """What the leaderboard filters and the analyses need to know about a model.

    ``family``, ``task``, ``training_method`` and ``training_data`` take values from the
    fixed vocabularies of :mod:`brainrank.core.taxonomy` (checked here, matched without
    regard to case; brainrank's older free-text values such as ``task="object
    classification"`` are mapped to them); ``task_cluster`` is derived from a Taskonomy task.
    An untrained model has task, data and method ``"none"`` (method ``"handcrafted"`` for a
    baseline). ``imagenet_top1`` is the published ImageNet-1k top-1 accuracy in percent, with
    where it was published in ``top1_source``.
    """

    source: str
    architecture: str
    family: str = "other"
    task: str | None = None
    training_data: str | None = None
    trained: bool = True
    n_params: int | None = None
    input_size: int | None = None
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    training_method: str | None = None
    task_cluster: str | None = None
    imagenet_top1: float | None = None
    top1_source: str | None = None

    def __post_init__(self) -> None:
        names = ("family", "task", "task_cluster", "training_method", "training_data",
                 "trained", "imagenet_top1", "n_params", "input_size")  # fmt: skip
        checked = taxonomy.normalise({name: getattr(self, name) for name in names})
        for name in names:
            if checked[name] != getattr(self, name):
                object.__setattr__(self, name, checked[name])

    @property
    def baseline(self) -> bool:
        """A hand-made baseline (no network), kept apart from random networks."""
        return self.training_method == "handcrafted"

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["extra"] = dict(self.extra)
        return out


@dataclass(frozen=True)
class DatasetMetadata:
    species: str
    modality: str
    regions: tuple[str, ...] = ()
    n_stimuli: int | None = None
    citation: str = ""
    licence: str = ""
    description: str = ""
    #: "responses" (neuroid x stimulus data), "rdms" (RDMs only) or "trials" (behavioural
    #: choices only)
    kind: str = "responses"

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["regions"] = list(self.regions)
        return out


@dataclass(frozen=True)
class MetricMetadata:
    description: str
    #: what the metric needs from a dataset ("responses", "rdms" or "either"), repeated for
    #: listings that build nothing; ``None``: as the metric class declares
    #: (:attr:`Metric.needs`, the one source of truth, checked against this when given)
    needs: str | None = None
    citation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- plugin specs


@dataclass(frozen=True)
class ModelSpec:
    """A model a plugin offers: identifier, metadata and a lazy factory.

    ``factory(**options)`` builds the network only when called and returns a
    :class:`Model`. Listing specs never calls it. ``weights_missing()``, when the plugin
    gives one, says without building anything why the trained weights are not available
    here (the file, the folder it belongs in, the URL it comes from), or returns ``None``
    when they are; it may import the model library but must not download or read weights.
    """

    identifier: str
    factory: Callable[..., Model]
    metadata: ModelMetadata
    plugin: str = ""
    weights_missing: Callable[[], str | None] | None = None

    def __post_init__(self) -> None:
        check_identifier(self.identifier, "model")

    def load(self, **options: Any) -> Model:
        model = self.factory(**options)
        if not isinstance(model, Model):
            raise TypeError(
                f"the factory of model {self.identifier!r} (plugin {self.plugin!r}) returned "
                f"{type(model).__name__}, not a brainrank Model"
            )
        return model


@runtime_checkable
class DescribesItsFiles(Protocol):
    """A dataset factory that describes the files it reads (as
    :class:`brainrank.data.DatasetFactory` does): its ``source`` (a
    :class:`brainrank.data.DataSource`) is what ``brainrank data check|download`` use. A
    factory without one is a dataset built in code."""

    source: Any


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset a plugin offers.

    ``factory(data_dir=None, **options)`` reads it and returns a :class:`Dataset`;
    ``available(data_dir=None)`` only checks whether its files are present (no data is
    read). A factory that also describes its files (a
    :class:`brainrank.data.DatasetFactory`) exposes them as :attr:`data_source`, which
    ``brainrank data check|download`` use.
    """

    identifier: str
    factory: Callable[..., Dataset]
    metadata: DatasetMetadata
    available: Callable[..., bool] = lambda data_dir=None: True
    plugin: str = ""

    def __post_init__(self) -> None:
        check_identifier(self.identifier, "dataset")

    @property
    def data_source(self) -> Any:
        """The factory's description of the dataset's files (:class:`DescribesItsFiles`), or
        ``None`` for a dataset built in code."""
        return self.factory.source if isinstance(self.factory, DescribesItsFiles) else None

    def load(self, **options: Any) -> Dataset:
        dataset = self.factory(**options)
        if not isinstance(dataset, Dataset):
            raise TypeError(
                f"the factory of dataset {self.identifier!r} (plugin {self.plugin!r}) returned "
                f"{type(dataset).__name__}, not a brainrank Dataset"
            )
        return dataset


@dataclass(frozen=True)
class MetricSpec:
    identifier: str
    factory: Callable[..., Metric]
    metadata: MetricMetadata
    plugin: str = ""

    def __post_init__(self) -> None:
        check_identifier(self.identifier, "metric")

    def load(self, **parameters: Any) -> Metric:
        """Build the metric with ``parameters``.

        What a metric needs from a dataset is declared once, by the metric class
        (:attr:`Metric.needs`, which :meth:`Metric.check_applicable` uses);
        ``metadata.needs`` repeats it for listings that build nothing and must agree: a
        spec whose metadata says otherwise is refused here.
        """
        metric = self.factory(**parameters)
        if not isinstance(metric, Metric):
            raise TypeError(
                f"the factory of metric {self.identifier!r} (plugin {self.plugin!r}) returned "
                f"{type(metric).__name__}, not a brainrank Metric"
            )
        if self.metadata.needs is not None and metric.needs != self.metadata.needs:
            raise PluginError(
                f"metric {self.identifier!r} (plugin {self.plugin!r}) needs "
                f"{metric.needs!r} but its MetricMetadata says {self.metadata.needs!r}; make "
                "them the same (MetricMetadata(needs=...) as the class's `needs`)."
            )
        return metric


# --------------------------------------------------------------------------- models


@dataclass
class Model:
    """A loaded vision model, ready for feature extraction.

    ``module`` is a ``torch.nn.Module`` in eval mode. ``preprocess`` turns one RGB uint8
    image ``(H, W, 3)`` into the float tensor ``(C, H', W')`` the module expects.
    ``preprocess_id`` describes that preprocessing (it is part of the feature cache key).
    ``layers`` optionally restricts extraction to these module names (default: every leaf
    module). ``weights_id`` identifies the weights' content (for example the sha256 of the
    weight file, or ``random:seed=0``); when empty, the extractor hashes the state dict.
    """

    identifier: str
    module: Any
    preprocess: Callable[[np.ndarray], Any]
    preprocess_id: str
    metadata: ModelMetadata
    layers: Sequence[str] | None = None
    weights_id: str = ""
