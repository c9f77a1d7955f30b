"""The data objects shared by the core, the plugins and the leaderboard.

- :class:`StimulusSet`: ordered stimulus ids, a lazy RGB uint8 image loader and metadata.
- Responses: an :class:`xarray.DataArray` with dims ``(presentation, neuroid)``, built and
  checked by :func:`make_responses` / :func:`check_responses`.
- :class:`RDMSet`: brain RDMs for datasets that publish RDMs only.
- :class:`FeatureSet`: per layer, the projected features and the exact RDM of one model on
  one stimulus set.
- :class:`Score`: one number of the leaderboard with everything that identifies it.
- Plugin specs (:class:`ModelSpec`, :class:`DatasetSpec`, :class:`MetricSpec`): an
  identifier, metadata and a lazy factory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainrank.core.errors import InputError

# --------------------------------------------------------------------------- identifiers

_PART = r"[a-z0-9][a-z0-9_.+\-]*"
IDENTIFIER_PATTERN = re.compile(rf"^{_PART}(/{_PART})*(:{_PART})?$")


def check_identifier(identifier: str, kind: str = "plugin") -> str:
    """Return ``identifier`` if it is a valid brainrank identifier, else raise.

    Identifiers are lowercase ``source/name`` strings with an optional ``:variant``,
    e.g. ``torchvision/alexnet:random`` or ``simulated``.
    """
    if not isinstance(identifier, str) or not IDENTIFIER_PATTERN.match(identifier):
        raise InputError(
            f"invalid {kind} identifier {identifier!r}: identifiers are lowercase "
            "'source/name' strings with an optional ':variant', made of a-z, 0-9 and "
            "'_.+-' (for example 'torchvision/alexnet:random')."
        )
    return identifier


def split_variant(identifier: str) -> tuple[str, str | None]:
    """``'timm/resnet18:random'`` -> ``('timm/resnet18', 'random')``."""
    base, sep, variant = identifier.partition(":")
    return base, (variant if sep else None)


# --------------------------------------------------------------------------- metadata

MODEL_FAMILIES = ("convnet", "transformer", "mlp-mixer", "other")


@dataclass(frozen=True)
class ModelMetadata:
    """What the leaderboard filters and the analyses need to know about a model."""

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

    def __post_init__(self) -> None:
        if self.family not in MODEL_FAMILIES:
            raise InputError(
                f"model family {self.family!r} is not one of {', '.join(MODEL_FAMILIES)}."
            )

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
    kind: str = "responses"  # "responses" (neuroid x stimulus data) or "rdms" (RDMs only)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["regions"] = list(self.regions)
        return out


@dataclass(frozen=True)
class MetricMetadata:
    description: str
    needs: str = "responses"  # "responses", "rdms" or "either"
    citation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- plugin specs


@dataclass(frozen=True)
class ModelSpec:
    """A model a plugin offers: identifier, metadata and a lazy factory.

    ``factory(**options)`` builds the network only when called and returns a
    :class:`Model`. Listing specs never calls it.
    """

    identifier: str
    factory: Callable[..., Model]
    metadata: ModelMetadata
    plugin: str = ""

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


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset a plugin offers. ``factory(data_dir)`` reads it; ``available(data_dir)``
    only checks whether its files are present (no data is read)."""

    identifier: str
    factory: Callable[..., Dataset]
    metadata: DatasetMetadata
    available: Callable[..., bool] = lambda data_dir=None: True
    plugin: str = ""

    def __post_init__(self) -> None:
        check_identifier(self.identifier, "dataset")

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
        metric = self.factory(**parameters)
        if not isinstance(metric, Metric):
            raise TypeError(
                f"the factory of metric {self.identifier!r} (plugin {self.plugin!r}) returned "
                f"{type(metric).__name__}, not a brainrank Metric"
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


# --------------------------------------------------------------------------- stimuli


def as_rgb_uint8(image: Any, what: str = "image") -> np.ndarray:
    """Return ``image`` as a contiguous ``(H, W, 3)`` uint8 array.

    Accepts greyscale ``(H, W)``, ``(H, W, 1)``, RGB and RGBA (alpha dropped) uint8 arrays or
    PIL images. Float images are refused because their scale is ambiguous.
    """
    if hasattr(image, "convert") and hasattr(image, "mode"):  # PIL image
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise InputError(
            f"{what} has dtype {array.dtype}; stimuli must be uint8 RGB images (0..255). "
            "Convert float images with (np.clip(x, 0, 1) * 255).astype(np.uint8)."
        )
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
        raise InputError(f"{what} has shape {array.shape}; expected (height, width, 3).")
    return np.ascontiguousarray(array)


class StimulusSet:
    """Ordered stimulus ids with a lazy image loader and per-stimulus metadata.

    ``loader(stimulus_id)`` returns one image (anything :func:`as_rgb_uint8` accepts).
    ``content_id``, when given, is a cheap stable description of the images' content (for
    example the checksums of the files they come from); otherwise :meth:`content_hash`
    hashes the decoded images once.
    """

    def __init__(
        self,
        identifier: str,
        stimulus_ids: Sequence[str],
        loader: Callable[[str], Any],
        metadata: Any = None,
        content_id: str | None = None,
    ):
        ids = tuple(str(s) for s in stimulus_ids)
        if not ids:
            raise InputError(f"stimulus set {identifier!r} is empty.")
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            dupes = sorted({s for s in ids if s in seen or seen.add(s)})
            raise InputError(
                f"stimulus set {identifier!r} has {len(dupes)} duplicated stimulus ids "
                f"(e.g. {dupes[:3]}); ids must be unique."
            )
        self.identifier = identifier
        self.stimulus_ids = ids
        self._loader = loader
        self.metadata = metadata
        self._content_id = content_id
        self._hash: str | None = None
        self._position = {s: i for i, s in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.stimulus_ids)

    def __repr__(self) -> str:
        return f"StimulusSet({self.identifier!r}, n={len(self)})"

    def index(self, stimulus_ids: Sequence[str]) -> np.ndarray:
        """Positions of ``stimulus_ids`` in this set; raises with the missing ids."""
        missing = [str(s) for s in stimulus_ids if s not in self._position]
        if missing:
            raise InputError(
                f"{len(missing)} stimulus ids are not in stimulus set {self.identifier!r} "
                f"(e.g. {missing[:3]}); the responses and the stimuli do not match."
            )
        return np.array([self._position[s] for s in stimulus_ids], dtype=np.int64)

    def image(self, stimulus_id: str) -> np.ndarray:
        return as_rgb_uint8(self._loader(stimulus_id), what=f"stimulus {stimulus_id!r}")

    def batches(self, batch_size: int) -> Iterator[tuple[slice, list[np.ndarray]]]:
        """Yield ``(rows, images)`` in order, ``batch_size`` images at a time."""
        n = len(self)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            yield slice(start, stop), [self.image(s) for s in self.stimulus_ids[start:stop]]

    def content_hash(self) -> str:
        """A sha256 over the ids and the images' content (or the given ``content_id``)."""
        if self._hash is None:
            h = hashlib.sha256()
            h.update("\n".join(self.stimulus_ids).encode())
            if self._content_id is not None:
                h.update(b"content-id:" + self._content_id.encode())
            else:
                for s in self.stimulus_ids:
                    image = self.image(s)
                    h.update(repr(image.shape).encode())
                    h.update(image.tobytes())
            self._hash = h.hexdigest()
        return self._hash

    def subset(self, stimulus_ids: Sequence[str], identifier: str | None = None) -> StimulusSet:
        self.index(stimulus_ids)  # validates
        meta = None
        if self.metadata is not None and hasattr(self.metadata, "loc"):
            meta = self.metadata.loc[list(stimulus_ids)]
        return StimulusSet(
            identifier or f"{self.identifier}[subset]", stimulus_ids, self._loader, meta
        )


# --------------------------------------------------------------------------- responses

PRESENTATION = "presentation"
NEUROID = "neuroid"


def make_responses(
    data: Any,
    *,
    stimulus_id: Sequence[str],
    neuroid_id: Sequence[str],
    subject: Sequence[str] | str,
    region: Sequence[str] | str,
    repetition: Sequence[int] | None = None,
    presentation_coords: Mapping[str, Sequence[Any]] | None = None,
    neuroid_coords: Mapping[str, Sequence[Any]] | None = None,
    name: str = "responses",
):
    """Build a responses DataArray ``(presentation, neuroid)`` with the standard coords."""
    import xarray as xr

    values = np.asarray(data)
    if values.ndim != 2:
        raise InputError(f"responses must be 2-D (presentation, neuroid); got {values.shape}.")
    n_pres, n_neur = values.shape

    def per(value: Any, n: int, what: str) -> np.ndarray:
        if isinstance(value, str):
            return np.full(n, value, dtype=object)
        arr = np.asarray(value)
        if arr.shape != (n,):
            raise InputError(f"{what} has {arr.shape[0] if arr.ndim else 0} entries; need {n}.")
        return arr

    pcoords: dict[str, Any] = {
        "stimulus_id": (
            PRESENTATION,
            per(stimulus_id, n_pres, "stimulus_id").astype(str).astype(object),
        )
    }
    if repetition is not None:
        pcoords["repetition"] = (PRESENTATION, per(repetition, n_pres, "repetition").astype(int))
    for key, value in (presentation_coords or {}).items():
        pcoords[key] = (PRESENTATION, per(value, n_pres, key))
    ncoords: dict[str, Any] = {
        "neuroid_id": (NEUROID, per(neuroid_id, n_neur, "neuroid_id").astype(str).astype(object)),
        "subject": (NEUROID, per(subject, n_neur, "subject").astype(str).astype(object)),
        "region": (NEUROID, per(region, n_neur, "region").astype(str).astype(object)),
    }
    for key, value in (neuroid_coords or {}).items():
        ncoords[key] = (NEUROID, per(value, n_neur, key))
    da = xr.DataArray(
        values, dims=(PRESENTATION, NEUROID), coords={**pcoords, **ncoords}, name=name
    )
    check_responses(da)
    return da


def check_responses(responses: Any, what: str = "responses") -> None:
    """Raise :class:`InputError` unless ``responses`` follows the responses convention."""
    import xarray as xr

    if not isinstance(responses, xr.DataArray):
        raise InputError(f"{what} must be an xarray.DataArray, got {type(responses).__name__}.")
    if tuple(responses.dims) != (PRESENTATION, NEUROID):
        raise InputError(
            f"{what} has dims {tuple(responses.dims)}; expected ('presentation', 'neuroid')."
        )
    for coord, dim in (("stimulus_id", PRESENTATION), ("neuroid_id", NEUROID),
                       ("subject", NEUROID), ("region", NEUROID)):  # fmt: skip
        if coord not in responses.coords or responses.coords[coord].dims != (dim,):
            raise InputError(f"{what} lacks the coordinate {coord!r} along {dim!r}.")
    ids = responses["neuroid_id"].values
    if len(set(ids.tolist())) != len(ids):
        raise InputError(f"{what} has duplicated neuroid_id values; they must be unique.")
    values = np.asarray(responses.values)
    if not np.issubdtype(values.dtype, np.number):
        raise InputError(f"{what} must be numeric; got dtype {values.dtype}.")
    bad = ~np.isfinite(values)
    if bad.any():
        cols = np.flatnonzero(bad.any(axis=0))
        raise InputError(
            f"{what} contain {int(bad.sum())} NaN or infinite values in {cols.size} neuroids "
            f"(e.g. {[str(ids[c]) for c in cols[:3]]}); drop or impute them in the dataset "
            "loader."
        )


def average_repetitions(responses: Any):
    """Mean over presentations of the same stimulus, in order of first appearance.

    Returns a DataArray ``(presentation, neuroid)`` with one presentation per stimulus, the
    ``stimulus_id`` coordinate and an ``n_repetitions`` coordinate.
    """
    import xarray as xr

    check_responses(responses)
    ids = np.asarray(responses["stimulus_id"].values).astype(str)
    unique, first, inverse, counts = np.unique(
        ids, return_index=True, return_inverse=True, return_counts=True
    )
    order = np.argsort(first)
    values = np.asarray(responses.values, dtype=np.float64)
    sums = np.zeros((unique.size, values.shape[1]))
    np.add.at(sums, inverse, values)
    means = (sums / counts[:, None])[order].astype(responses.dtype, copy=False)
    coords = {k: v for k, v in responses.coords.items() if v.dims == (NEUROID,)}
    out = xr.DataArray(
        means,
        dims=(PRESENTATION, NEUROID),
        coords={
            **coords,
            "stimulus_id": (PRESENTATION, unique[order].astype(object)),
            "n_repetitions": (PRESENTATION, counts[order]),
        },
        name=responses.name,
    )
    return out


def neuroid_groups(responses: Any) -> list[tuple[tuple[str, str], np.ndarray]]:
    """``[((subject, region), neuroid positions), ...]`` in order of first appearance."""
    subjects = np.asarray(responses["subject"].values).astype(str)
    regions = np.asarray(responses["region"].values).astype(str)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(subjects, regions, strict=True)):
        groups.setdefault(key, []).append(i)
    return [(key, np.asarray(idx)) for key, idx in groups.items()]


# --------------------------------------------------------------------------- RDMs


@dataclass
class RDMSet:
    """A stack of RDMs ``(m, n, n)`` over the same ``n`` stimuli with per-RDM descriptors.

    ``descriptors`` has one dict per RDM with at least ``subject`` and ``region``.
    """

    dissimilarities: np.ndarray
    stimulus_ids: tuple[str, ...]
    descriptors: list[dict[str, Any]]

    def __post_init__(self) -> None:
        d = np.asarray(self.dissimilarities, dtype=np.float64)
        if d.ndim == 2:
            d = d[None]
        n = len(self.stimulus_ids)
        if d.ndim != 3 or d.shape[1:] != (n, n):
            raise InputError(f"RDMs have shape {d.shape}; expected (m, {n}, {n}).")
        if len(self.descriptors) != d.shape[0]:
            raise InputError(
                f"{len(self.descriptors)} descriptors for {d.shape[0]} RDMs; give one per RDM."
            )
        for desc in self.descriptors:
            if "subject" not in desc or "region" not in desc:
                raise InputError("every RDM descriptor needs 'subject' and 'region'.")
        self.dissimilarities = d
        self.stimulus_ids = tuple(str(s) for s in self.stimulus_ids)

    def __len__(self) -> int:
        return self.dissimilarities.shape[0]


# --------------------------------------------------------------------------- datasets


class Dataset:
    """A neural dataset: stimuli plus responses (or RDMs), ceilings and ground truth.

    Subclasses (or instances) provide ``responses()`` (trial-level or averaged, dims
    ``(presentation, neuroid)``) and/or ``rdms()``. ``ground_truth`` is only set by
    simulated datasets.
    """

    def __init__(
        self,
        identifier: str,
        stimuli: StimulusSet,
        metadata: DatasetMetadata,
        responses: Any = None,
        rdms: RDMSet | None = None,
        ground_truth: Mapping[str, Any] | None = None,
    ):
        self.identifier = check_identifier(identifier, "dataset")
        self.stimuli = stimuli
        self.metadata = metadata
        self._responses = responses
        self._rdms = rdms
        self.ground_truth = ground_truth
        if responses is not None:
            check_responses(responses, f"responses of dataset {identifier!r}")
            stimuli.index(np.unique(np.asarray(responses["stimulus_id"].values).astype(str)))
        if rdms is not None:
            stimuli.index(rdms.stimulus_ids)
        if responses is None and rdms is None:
            raise InputError(f"dataset {identifier!r} has neither responses nor RDMs.")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identifier!r}, stimuli={len(self.stimuli)})"

    def responses(self):
        """The responses DataArray, or ``None`` for RDM-only datasets."""
        return self._responses

    def rdms(self) -> RDMSet | None:
        """Brain RDMs published with the dataset, or ``None``."""
        return self._rdms

    # ------------------------------------------------------------------ ceilings

    def neuroid_reliability(self) -> np.ndarray | None:
        """Reliability of every neuroid's trial-averaged response, in neuroid order.

        A ``reliability`` neuroid coordinate is used when the dataset provides one;
        otherwise the split-half reliability over repetitions, Spearman-Brown corrected to
        the full number of repetitions (10 seeded random splits). ``None`` without responses
        or without at least 2 repetitions of every stimulus.
        """
        if getattr(self, "_reliability", None) is not None:
            return self._reliability
        responses = self.responses()
        if responses is None:
            return None
        if "reliability" in responses.coords:
            out = np.asarray(responses["reliability"].values, dtype=np.float64)
        else:
            from brainrank.core import stats

            try:
                trials, _ = stats.trials_array(responses)
            except InputError:
                return None
            if trials.shape[0] < 2:
                return None
            out = stats.split_half_reliability(trials, n_splits=10, seed=0)
        self._reliability = out
        return out

    def ceiling(self, kind: str) -> dict[tuple[str, str], float]:
        """Noise ceiling per (subject, region) for a kind of metric; ``{}`` when unknown.

        - ``"encoding"``: the ceiling of a per-neuroid Pearson r averaged over the group: the
          mean over neuroids of sqrt(reliability), the correlation a perfect model reaches
          with noisy trial averages.
        - ``"rsa"``: the same for RDMs: sqrt of the split-half reliability of the group's RDM
          (RDMs of two halves of the repetitions compared by Pearson r, Spearman-Brown
          corrected to all repetitions), the correlation a perfect model's RDM reaches with
          the measured one.

        Datasets with published ceilings (NSD's ncsnr, an inter-subject RDM ceiling)
        override this method.
        """
        responses = self.responses()
        if responses is None:
            return {}
        if kind == "encoding":
            reliability = self.neuroid_reliability()
            if reliability is None:
                return {}
            root = np.sqrt(np.clip(reliability, 0.0, None))
            groups = neuroid_groups(responses)
            return {key: float(np.nanmean(root[index])) for key, index in groups}
        if kind == "rsa":
            return _split_half_rdm_ceiling(responses)
        return {}


def _split_half_rdm_ceiling(responses: Any) -> dict[tuple[str, str], float]:
    from brainrank.core import rsa, stats

    try:
        trials, _ = stats.trials_array(responses)
    except InputError:
        return {}
    reps = trials.shape[0]
    if reps < 2:
        return {}
    half_a, half_b = trials[: reps // 2].mean(0), trials[reps // 2 :].mean(0)
    out = {}
    for key, index in neuroid_groups(responses):
        if index.size < 2:
            continue
        try:
            r = rsa.compare(
                rsa.rdm(half_a[:, index], dtype="float64"),
                rsa.rdm(half_b[:, index], dtype="float64"),
            )
        except InputError:
            continue
        out[key] = float(np.sqrt(max(float(stats.spearman_brown(r)), 0.0)))
    return out


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class FeatureRequest:
    """What a metric needs from feature extraction: projections of given dimensions and/or
    exact RDMs. Requests of several metrics are merged so features are extracted once."""

    projection_dims: frozenset[int] = frozenset()
    rdm: bool = False

    def __or__(self, other: FeatureRequest) -> FeatureRequest:
        return FeatureRequest(self.projection_dims | other.projection_dims, self.rdm or other.rdm)


@dataclass
class LayerFeatures:
    """Features of one layer: projections ``{k: (n, min(k, p))}`` and the exact RDM."""

    name: str
    index: int
    relative_depth: float
    n_features: int
    shape: tuple[int, ...]
    projections: dict[int, np.ndarray] = field(default_factory=dict)
    rdm: np.ndarray | None = None


@dataclass
class FeatureSet:
    """Every layer's features for one model on one stimulus set, in depth order."""

    model: str
    stimulus_ids: tuple[str, ...]
    layers: list[LayerFeatures]
    key: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[LayerFeatures]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def __getitem__(self, name: str) -> LayerFeatures:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"model {self.model!r} has no layer {name!r}")

    def rows_for(self, stimulus_ids: Sequence[str]) -> np.ndarray:
        """Row positions of ``stimulus_ids`` in this feature set (raises when missing)."""
        position = {s: i for i, s in enumerate(self.stimulus_ids)}
        missing = [str(s) for s in stimulus_ids if s not in position]
        if missing:
            raise InputError(
                f"{len(missing)} stimulus ids have no features for model {self.model!r} "
                f"(e.g. {missing[:3]}); the features were extracted on other stimuli."
            )
        return np.array([position[s] for s in stimulus_ids], dtype=np.int64)


# --------------------------------------------------------------------------- metrics and scores


@dataclass
class Score:
    """One leaderboard number.

    ``selection`` is ``"layer"`` for a per-layer score and names the layer-choice policy for
    summary rows (``"max"``: the best layer, as in the seed papers).
    """

    subject: str
    region: str
    layer: str
    value: float
    n_neuroids: int = 0
    selection: str = "layer"
    layer_index: int | None = None
    relative_depth: float | None = None
    ceiling: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: per-neuroid values behind ``value`` (e.g. each voxel's r), aligned with neuroid_ids
    per_neuroid: np.ndarray | None = None
    neuroid_ids: tuple[str, ...] | None = None
    #: the same score computed on each half of the stimuli (see :func:`split_halves`), for
    #: the held-out layer choice
    halves: tuple[float, float] | None = None

    @property
    def normalized(self) -> float | None:
        if self.ceiling is None or not np.isfinite(self.ceiling) or self.ceiling <= 0:
            return None
        return self.value / self.ceiling


class Metric:
    """Base class of metrics: turn a FeatureSet and a Dataset into per-layer scores.

    Subclasses set ``identifier``, ``version`` and ``parameters`` and implement
    :meth:`feature_request` and :meth:`score`. :meth:`check_applicable` raises
    :class:`~brainrank.core.errors.NotApplicableError` when the dataset lacks what the
    metric needs.
    """

    identifier: str = ""
    version: str = "1"
    needs: str = "responses"

    def __init__(self, **parameters: Any):
        self.parameters: dict[str, Any] = dict(parameters)

    def check_applicable(self, dataset: Dataset) -> None:
        from brainrank.core.errors import NotApplicableError

        if self.needs == "responses" and dataset.responses() is None:
            raise NotApplicableError(
                f"metric {self.identifier!r} needs neuroid responses, but dataset "
                f"{dataset.identifier!r} publishes RDMs only; use an RSA metric for it."
            )
        if self.needs == "rdms" and dataset.responses() is None and dataset.rdms() is None:
            raise NotApplicableError(
                f"metric {self.identifier!r} needs responses or RDMs from {dataset.identifier!r}."
            )

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        raise NotImplementedError

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        raise NotImplementedError

    @property
    def config_hash(self) -> str:
        """A short hash of identifier, version and parameters: scores are keyed on it."""
        import json

        payload = json.dumps(
            {"id": self.identifier, "version": self.version, "parameters": self.parameters},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def split_halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of ``range(n)`` drawn with ``seed`` (sorted index arrays)."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def heldout_layer_scores(scores: Sequence[Score], selection: str = "heldout") -> list[Score]:
    """Layer choice that does not flatter: per (subject, region), the layer is chosen on one
    half of the stimuli and scored on the other, both ways (cross-fitting); the value is the
    mean of the two held-out scores. Needs ``halves`` on the per-layer rows.

    The row names the layer chosen on the first half; ``extra["layers"]`` has both choices.
    """
    groups: dict[tuple[str, str], list[Score]] = {}
    for score in scores:
        if score.selection == "layer" and score.halves is not None:
            groups.setdefault((score.subject, score.region), []).append(score)
    out = []
    for rows in groups.values():
        a = np.array([r.halves[0] for r in rows], dtype=np.float64)
        b = np.array([r.halves[1] for r in rows], dtype=np.float64)
        if not (np.isfinite(a).any() and np.isfinite(b).any()):
            continue
        pick_a = int(np.nanargmax(a))  # chosen on half A, scored on half B
        pick_b = int(np.nanargmax(b))
        value = float(np.nanmean([b[pick_a], a[pick_b]]))
        chosen = rows[pick_a]
        extra = {**chosen.extra, "layers": [rows[pick_a].layer, rows[pick_b].layer]}
        out.append(
            dataclasses.replace(
                chosen,
                selection=selection,
                value=value,
                extra=extra,
                per_neuroid=None,
                neuroid_ids=None,
            )
        )
    return out


def best_layer_scores(scores: Sequence[Score], selection: str = "max") -> list[Score]:
    """One summary row per (subject, region): the layer with the highest finite score."""
    best: dict[tuple[str, str], Score] = {}
    for score in scores:
        if score.selection != "layer" or not np.isfinite(score.value):
            continue
        key = (score.subject, score.region)
        if key not in best or score.value > best[key].value:
            best[key] = score
    return [dataclasses.replace(s, selection=selection, extra=dict(s.extra)) for s in best.values()]
