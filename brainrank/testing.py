"""The checks every brainrank plugin must pass, usable from a plugin's own tests.

>>> import brainrank.testing as bt
>>> import mylab_brainrank                      # your plugin module
>>> bt.check_plugin(mylab_brainrank)            # every check on every spec it registers

or one at a time (each raises :class:`PluginCheckError`, an ``AssertionError``, with what
is wrong and what to do):

- :func:`check_identifiers`: lowercase ``source/name[:variant]`` identifiers;
- :func:`check_lazy_listing`: importing the plugin and listing its specs imports no
  deep-learning library and opens no data file (run in a fresh interpreter);
- :func:`check_metadata`: the metadata the leaderboard filters on is there;
- :func:`check_model`: the model builds, its preprocessing accepts images of any size, it
  yields its layers in call order with finite activations on sample stimuli, twice the same;
- :func:`check_dataset`: the responses (or RDMs) and the stimuli agree, images load as RGB
  uint8, the metadata matches the data;
- :func:`check_metric`: the metric returns one score per layer x subject x region with the
  right fields, on an example dataset (or yours).

:func:`example_stimuli`, :func:`example_dataset` and :func:`example_features` make small
inputs for a plugin's own tests.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.core.dataset import Dataset
from brainrank.core.errors import BrainrankError, RemovedAPIWarning
from brainrank.core.metric import Metric
from brainrank.core.responses import check_responses, check_trials, make_responses
from brainrank.core.scores import FeatureRequest, FeatureSet, LayerFeatures, Score
from brainrank.core.specs import (
    MODEL_FAMILIES,
    DatasetMetadata,
    DatasetSpec,
    MetricSpec,
    Model,
    ModelSpec,
    check_identifier,
)
from brainrank.core.stimuli import StimulusSet

#: modules a plugin must not import just to list its specs
HEAVY_MODULES = (
    "torch",
    "torchvision",
    "timm",
    "open_clip",
    "visualpriors",
    "tensorflow",
    "jax",
    "h5py",
    "nibabel",
    "xarray",
    "transformers",
    "allensdk",
)
#: files that importing Python code opens; anything else opened while listing is data
_CODE_SUFFIXES = (
    ".py",
    ".pyc",
    ".so",
    ".pth",
    ".pyd",
    ".txt",
    ".json",
    ".cfg",
    ".toml",
    "METADATA",
    "RECORD",
    "WHEEL",
    "INSTALLER",
    "REQUESTED",
)


class PluginCheckError(AssertionError):
    """A plugin breaks the contract; the message says what and how to fix it."""


def _fail(message: str) -> None:
    raise PluginCheckError(message)


# --------------------------------------------------------------------------- example inputs


def example_stimuli(
    n: int = 8, sizes: Sequence[tuple[int, int]] = ((48, 64), (80, 80)), seed: int = 0
) -> StimulusSet:
    """``n`` structured RGB uint8 images (gratings and blobs of several sizes and aspect
    ratios), so a model's preprocessing meets more than one input shape."""
    rng = np.random.default_rng(seed)
    images = {}
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        y, x = np.mgrid[0:h, 0:w] / max(h, w)
        angle = rng.uniform(0, np.pi)
        grating = np.sin(2 * np.pi * rng.uniform(2, 8) * (x * np.cos(angle) + y * np.sin(angle)))
        blob = np.exp(-((x - rng.uniform(0.2, 0.8)) ** 2 + (y - rng.uniform(0.2, 0.8)) ** 2) / 0.02)
        channels = [grating * rng.uniform(0.2, 1) + blob * rng.uniform(0, 1) for _ in range(3)]
        image = np.stack(channels, axis=-1)
        image = (image - image.min()) / (np.ptp(image) + 1e-9)
        images[f"example-{i:03d}"] = (image * 255).astype(np.uint8)
    return StimulusSet("example", list(images), images.__getitem__)


def example_dataset(
    n_stimuli: int = 24,
    subjects: Sequence[str] = ("s1", "s2"),
    regions: Sequence[str] = ("early", "late"),
    n_neuroids: int = 5,
    n_repetitions: int = 2,
    seed: int = 0,
) -> Dataset:
    """A small dataset with trial-level responses (every stimulus repeated), driven by the
    images' pixel statistics plus noise, for testing metrics."""
    stimuli = example_stimuli(n_stimuli, sizes=((16, 16),), seed=seed)
    rng = np.random.default_rng(seed + 1)
    pixels = np.stack([stimuli.image(s).reshape(-1) for s in stimuli.stimulus_ids]).astype(float)
    pixels = (pixels - pixels.mean(0)) / (pixels.std(0) + 1e-9)
    groups = [(s, r) for s in subjects for r in regions]
    n_total = len(groups) * n_neuroids
    signal = pixels @ rng.standard_normal((pixels.shape[1], n_total)) / np.sqrt(pixels.shape[1])
    trials = np.concatenate(
        [signal + 0.5 * rng.standard_normal(signal.shape) for _ in range(n_repetitions)]
    )
    responses = make_responses(
        trials.astype(np.float32),
        stimulus_id=list(stimuli.stimulus_ids) * n_repetitions,
        repetition=np.repeat(np.arange(n_repetitions), n_stimuli),
        neuroid_id=[f"{s}-{r}-{i}" for s, r in groups for i in range(n_neuroids)],
        subject=[s for s, _ in groups for _ in range(n_neuroids)],
        region=[r for _, r in groups for _ in range(n_neuroids)],
    )
    metadata = DatasetMetadata(
        species="none",
        modality="synthetic",
        regions=tuple(regions),
        n_stimuli=n_stimuli,
        description="brainrank.testing example",
    )
    return Dataset("example/data", stimuli, metadata, responses=responses)


def example_trials_dataset(
    n_stimuli: int = 24, subjects: Sequence[str] = ("s1", "s2"), seed: int = 0
) -> Dataset:
    """A small dataset of behavioural trials (each subject sees every stimulus once and
    picks one of 3 labels, right more often where the image is brighter), for testing
    behavioural metrics."""
    from brainrank.core.responses import make_trials
    from brainrank.core.specs import DatasetMetadata

    stimuli = example_stimuli(n_stimuli, sizes=((16, 16),), seed=seed)
    rng = np.random.default_rng(seed + 1)
    ids = list(stimuli.stimulus_ids)
    labels = [f"label{i % 3}" for i in range(n_stimuli)]
    brightness = np.array([stimuli.image(s).mean() for s in ids]) / 255.0
    rows: dict[str, list[str]] = {"stimulus_id": [], "subject": [], "choice": [], "truth": []}
    for subject in subjects:
        right = rng.random(n_stimuli) < 0.4 + 0.5 * brightness
        for s, label, ok in zip(ids, labels, right, strict=True):
            rows["stimulus_id"].append(s)
            rows["subject"].append(subject)
            rows["truth"].append(label)
            rows["choice"].append(label if ok else f"label{(int(label[-1]) + 1) % 3}")
    meta = DatasetMetadata("none", "behaviour (example)", kind="trials")
    return Dataset("example/trials", stimuli, meta, trials=make_trials(**rows))


def example_features(
    dataset: Dataset,
    request: FeatureRequest,
    n_layers: int = 3,
    widths: Sequence[int] = (40, 300, 20),
    seed: int = 0,
) -> FeatureSet:
    """Features of a made-up model for ``dataset``'s stimuli, with every projection size, the
    RDMs, the Gram matrices and the covariance spectra ``request`` asks for (computed exactly
    as extraction does)."""
    from brainrank.core.dimensionality import covariance_spectrum
    from brainrank.core.projection import SparseRandomProjection
    from brainrank.core.rsa import rdm

    rng = np.random.default_rng(seed)
    ids = dataset.stimuli.stimulus_ids
    layers = []
    for index in range(n_layers):
        width = widths[index % len(widths)]
        X = rng.standard_normal((len(ids), width)).astype(np.float32)
        projections = {}
        for k in sorted(request.projection_dims):
            if width <= k:
                projections[k] = X
            else:
                projections[k] = SparseRandomProjection(width, k, seed=0).transform(X)
        layers.append(
            LayerFeatures(
                name=f"layer{index}",
                index=index,
                relative_depth=index / max(1, n_layers - 1),
                n_features=width,
                shape=(width,),
                projections=projections,
                rdm=rdm(X) if request.rdm else None,
                gram=_centred_gram(X) if request.gram else None,
                spectrum=covariance_spectrum(X.astype(np.float64) @ X.T.astype(np.float64))
                if request.spectrum
                else None,
            )
        )
    info = {
        "projection_dims": sorted(request.projection_dims),
        "rdm": request.rdm,
        "gram": request.gram,
        "spectrum": request.spectrum,
    }
    return FeatureSet("example/model", ids, layers, key="example", info=info)


def _centred_gram(X: np.ndarray) -> np.ndarray:
    centred = X.astype(np.float64) - X.astype(np.float64).mean(axis=0)
    return centred @ centred.T


# --------------------------------------------------------------------------- specs


@dataclass
class PluginSpecs:
    models: list[ModelSpec] = field(default_factory=list)
    datasets: list[DatasetSpec] = field(default_factory=list)
    metrics: list[MetricSpec] = field(default_factory=list)
    #: named model selections (``ModelSet``) the plugin registers
    model_sets: list[Any] = field(default_factory=list)

    def all(self) -> list[Any]:
        return [*self.models, *self.datasets, *self.metrics]


def collect_specs(plugin: Any) -> PluginSpecs:
    """The specs a plugin (a module or object with ``@hookimpl`` functions) registers."""
    from brainrank.core.registry import Registry

    registry = Registry(plugins=[plugin], entry_points=False)
    specs = PluginSpecs(
        models=list(registry.specs("model").values()),
        datasets=list(registry.specs("dataset").values()),
        metrics=list(registry.specs("metric").values()),
    )
    specs.model_sets = list(registry.model_sets().values())
    if registry.load_errors:
        _fail("the plugin's hooks failed: " + "; ".join(e.error for e in registry.load_errors))
    if not specs.all() and not specs.model_sets:
        _fail(
            f"{getattr(plugin, '__name__', plugin)!r} registers nothing: implement "
            "brainrank_models, brainrank_datasets, brainrank_metrics (or brainrank_model_sets) "
            "with @hookimpl and return a list of specs."
        )
    return specs


def check_identifiers(specs: Iterable[Any]) -> None:
    """Identifiers are valid (lowercase ``source/name[:variant]``) and unique."""
    seen: dict[str, str] = {}
    for spec in specs:
        kind = type(spec).__name__.replace("Spec", "").lower()
        try:
            check_identifier(spec.identifier, kind)
        except BrainrankError as exc:
            _fail(str(exc))
        key = f"{kind}:{spec.identifier}"
        if key in seen:
            _fail(f"{kind} {spec.identifier!r} is registered twice; identifiers must be unique.")
        seen[key] = spec.identifier


def check_metadata(spec: Any) -> None:
    """The metadata the leaderboard filters and the analyses need is present."""
    meta = spec.metadata
    where = f"{type(spec).__name__} {spec.identifier!r}"
    if isinstance(spec, ModelSpec):
        for name in ("source", "architecture"):
            if not getattr(meta, name):
                _fail(
                    f"{where}: ModelMetadata.{name} is empty; say where the model comes "
                    "from and what architecture it has."
                )
        if meta.family not in MODEL_FAMILIES:
            _fail(f"{where}: family {meta.family!r} is not one of {MODEL_FAMILIES}.")
        if not isinstance(meta.trained, bool):
            _fail(f"{where}: ModelMetadata.trained must be True or False.")
        if meta.trained and not (meta.task or meta.training_data):
            _fail(
                f"{where}: a trained model needs its task or training data in its metadata "
                "(ModelMetadata.task / training_data); the analyses compare them."
            )
    elif isinstance(spec, DatasetSpec):
        for name in ("species", "modality"):
            if not getattr(meta, name):
                _fail(f"{where}: DatasetMetadata.{name} is empty.")
        if meta.kind not in ("responses", "rdms", "trials"):
            _fail(f"{where}: DatasetMetadata.kind must be 'responses', 'rdms' or 'trials'.")
    elif isinstance(spec, MetricSpec):
        if not meta.description:
            _fail(f"{where}: MetricMetadata.description is empty; say what the metric computes.")
        if meta.needs is not None and meta.needs not in ("responses", "rdms", "either", "trials"):
            _fail(
                f"{where}: MetricMetadata.needs must be 'responses', 'rdms', 'either', "
                "'trials' or None (as the metric class declares)."
            )
    else:
        _fail(f"{spec!r} is not a ModelSpec, DatasetSpec or MetricSpec.")
    try:
        json.dumps(meta.to_dict(), default=str)
    except (TypeError, ValueError) as exc:
        _fail(f"{where}: its metadata cannot be stored ({exc}).")


_LISTING_SCRIPT = textwrap.dedent(
    """
    import importlib, importlib.util, json, sys, time
    import brainrank  # what brainrank itself imports is not the plugin's doing
    from brainrank.core.registry import Registry

    target = sys.argv[1]
    before = set(sys.modules)
    opened = []
    listing = [False]

    def audit(event, args):
        if event == "open" and listing[0] and args and isinstance(args[0], str):
            if args[0] not in sys.path:  # the import system opening a zip on sys.path
                opened.append(args[0])

    sys.addaudithook(audit)
    listing[0] = True
    start = time.perf_counter()
    if target.endswith(".py"):
        spec = importlib.util.spec_from_file_location("_plugin_under_test", target)
        module = importlib.util.module_from_spec(spec)
        sys.modules["_plugin_under_test"] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    registry = Registry(plugins=[module], entry_points=False)
    counts = {kind: len(registry.specs(kind)) for kind in ("model", "dataset", "metric")}
    counts["model_set"] = len(registry.model_sets())
    seconds = time.perf_counter() - start
    listing[0] = False
    new = sorted(m for m in set(sys.modules) - before)
    errors = [e.error for e in registry.load_errors]
    print(json.dumps({"new": new, "opened": opened, "seconds": seconds, "counts": counts,
                      "errors": errors}))
    """
)


def check_lazy_listing(plugin: str | Path | Any, max_seconds: float = 10.0) -> dict[str, Any]:
    """Importing ``plugin`` (a module name, a file, or a module) and listing its specs
    imports none of :data:`HEAVY_MODULES` and opens no data file. Runs in a fresh interpreter
    so nothing imported earlier hides a problem. Returns what it observed."""
    if hasattr(plugin, "__file__") and getattr(plugin, "__name__", "") not in ("", "__main__"):
        target = plugin.__name__
        if target.startswith("brainrank_local_plugin_") or target == "_plugin_under_test":
            target = str(plugin.__file__)
    else:
        target = str(plugin)
    out = subprocess.run(
        [sys.executable, "-c", _LISTING_SCRIPT, target],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode != 0:
        _fail(f"importing the plugin {target} failed:\n{out.stderr[-3000:]}")
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    if seen["errors"]:
        _fail(f"listing the specs of {target} failed: {'; '.join(seen['errors'])}")
    heavy = sorted({m.split(".")[0] for m in seen["new"]} & set(HEAVY_MODULES))
    if heavy:
        _fail(
            f"importing {target} and listing its specs imported {', '.join(heavy)}: listing must "
            "be lazy. Import heavy libraries inside the factory functions, not at the top of "
            "the module."
        )
    data = [
        path
        for path in seen["opened"]
        if not path.endswith(_CODE_SUFFIXES)
        and "/__pycache__/" not in path
        and not path.startswith(("/proc/", "/dev/", "/sys/"))
        and not Path(path).is_dir()
    ]
    if data:
        _fail(
            f"listing the specs of {target} opened {data[:3]}: specs must not read data. Read "
            "files in the dataset's factory (and check their presence in `available`)."
        )
    if seen["seconds"] > max_seconds:
        _fail(
            f"importing {target} and listing its specs took {seen['seconds']:.1f} s; keep "
            f"it under {max_seconds:.0f} s (build nothing while listing)."
        )
    return seen


# --------------------------------------------------------------------------- models


def check_model(
    model: ModelSpec | Model, stimuli: StimulusSet | None = None, **options: Any
) -> FeatureSet:
    """Build the model and extract every layer on sample stimuli (two image sizes): the
    preprocessing returns a (C, H, W) float tensor for any input size, the layers come in
    call order with finite activations and the same ones on a second pass. Returns the
    features."""
    import torch

    from brainrank.core.extraction import ExtractionConfig, extract_features, probe_layers

    if isinstance(model, ModelSpec):
        spec = model
        model = spec.load(**options)
        if model.identifier != spec.identifier:
            _fail(
                f"the factory of {spec.identifier!r} returned a model named "
                f"{model.identifier!r}; use the same identifier."
            )
    if not isinstance(model, Model):
        _fail(f"expected a brainrank Model, got {type(model).__name__}.")
    name = model.identifier
    if not model.preprocess_id:
        _fail(
            f"model {name!r} has no preprocess_id; describe its preprocessing in a short "
            "string (it is part of the feature cache key)."
        )
    if not isinstance(model.module, torch.nn.Module):
        _fail(f"model {name!r}: module is a {type(model.module).__name__}, not a torch.nn.Module.")
    stimuli = stimuli or example_stimuli(6)
    shapes = set()
    for stimulus_id in stimuli.stimulus_ids:
        tensor = model.preprocess(stimuli.image(stimulus_id))
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 3:
            _fail(
                f"model {name!r}: preprocess must return a (C, H, W) tensor, got "
                f"{type(tensor).__name__} {tuple(getattr(tensor, 'shape', ()))}."
            )
        if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
            _fail(f"model {name!r}: preprocess must return finite floating-point values.")
        shapes.add(tuple(tensor.shape))
    if len(shapes) != 1:
        _fail(
            f"model {name!r}: preprocess returns tensors of different shapes {sorted(shapes)} "
            "for images of different sizes; resize (and crop) to one input size."
        )
    images = [stimuli.image(s) for s in stimuli.stimulus_ids]
    config = ExtractionConfig(batch_size=4)
    infos = probe_layers(model, images[: config.batch_size])  # the batch extraction probes
    request = FeatureRequest(projection_dims=frozenset({16}), rdm=True)
    try:
        first = extract_features(model, stimuli, request, config)
        second = extract_features(model, stimuli, request, config)
    except BrainrankError as exc:
        _fail(
            f"model {name!r}: extracting its layers on sample stimuli failed: {exc} Every layer "
            "must give finite activations."
        )
    names = [layer.name for layer in first]
    if len(set(names)) != len(names):
        _fail(f"model {name!r}: layer names repeat: {names}.")
    # extraction keeps each distinct, non-constant layer (see brainrank.core.extraction)
    probe_order = [
        info.name
        for info in infos
        if info.duplicate_of is None and not getattr(info, "constant", False)
    ]
    if names != probe_order:
        _fail(f"model {name!r}: layers are not in call order: {names} vs {probe_order}.")
    depths = [layer.relative_depth for layer in first]
    if [layer.index for layer in first] != list(range(len(first))) or depths != sorted(depths):
        _fail(f"model {name!r}: layer indices or relative depths are out of order.")
    if model.layers is not None:
        missing = sorted(set(model.layers) - {info.module for info in infos})
        if missing:
            _fail(f"model {name!r}: `layers` names modules that never run: {missing}.")
    for a, b in zip(first, second, strict=True):
        for k, values in a.projections.items():
            if not np.isfinite(values).all():
                _fail(
                    f"model {name!r}: layer {a.name!r} has NaN or infinite activations on the "
                    "sample stimuli."
                )
            if not np.allclose(values, b.projections[k], rtol=1e-4, atol=1e-5):
                _fail(
                    f"model {name!r}: layer {a.name!r} gives different activations on a "
                    "second pass; seed any randomness (brainrank runs modules in eval mode)."
                )
    return first


# --------------------------------------------------------------------------- datasets


def check_dataset(
    dataset: DatasetSpec | Dataset, data_dir: Any = None, n_images: int = 8
) -> Dataset:
    """Load the dataset: its responses (or RDMs) and stimuli agree, sample images load as RGB
    uint8, its metadata matches the data. Returns the dataset."""
    metadata: DatasetMetadata | None = None
    if isinstance(dataset, DatasetSpec):
        spec = dataset
        if not _available(spec, data_dir):
            _fail(
                f"dataset {spec.identifier!r} says its files are not in {data_dir}; pass the "
                "folder that holds them (or fix `available`)."
            )
        dataset = spec.load(data_dir=data_dir)
        metadata = spec.metadata
        if dataset.identifier != spec.identifier:
            _fail(f"the factory of {spec.identifier!r} returned dataset {dataset.identifier!r}.")
    if not isinstance(dataset, Dataset):
        _fail(f"expected a brainrank Dataset, got {type(dataset).__name__}.")
    name = dataset.identifier
    metadata = metadata or dataset.metadata
    stimuli = dataset.stimuli
    ids = stimuli.stimulus_ids
    picks = sorted({0, len(ids) - 1, *np.linspace(0, len(ids) - 1, n_images).astype(int)})
    for i in picks:
        try:
            image = stimuli.image(ids[i])
        except BrainrankError as exc:
            _fail(f"dataset {name!r}: {exc}")
        except Exception as exc:
            _fail(
                f"dataset {name!r}: stimulus {ids[i]!r} does not load: {type(exc).__name__}: {exc}"
            )
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            _fail(f"dataset {name!r}: stimulus {ids[i]!r} is not an RGB uint8 image.")
    responses = dataset.responses()
    rdms = dataset.rdms()
    used: set[str] = set()
    regions: set[str] = set()
    if responses is not None:
        try:
            check_responses(responses, f"responses of {name!r}")
        except BrainrankError as exc:
            _fail(str(exc))
        used = set(map(str, np.asarray(responses["stimulus_id"].values)))
        regions = set(map(str, np.asarray(responses["region"].values)))
        if metadata.kind != "responses":
            _fail(f"dataset {name!r} has responses but its metadata says kind={metadata.kind!r}.")
    if rdms is not None:
        used |= set(rdms.stimulus_ids)
        regions |= {str(d["region"]) for d in rdms.descriptors}
        if not np.isfinite(rdms.dissimilarities).all():
            _fail(f"dataset {name!r}: its RDMs contain NaN or infinite values.")
    trials = dataset.trials() if hasattr(dataset, "trials") else None
    if trials is not None:
        try:
            check_trials(trials, f"trials of {name!r}")
        except BrainrankError as exc:
            _fail(str(exc))
        used |= set(trials["stimulus_id"].astype(str))
        regions |= set(trials["condition"].astype(str))
    unused = [s for s in ids if s not in used]
    if unused:
        _fail(
            f"dataset {name!r}: {len(unused)} stimuli have no responses (e.g. {unused[:3]}); "
            "drop them from the stimulus set or add their responses."
        )
    if metadata.regions and not regions <= set(metadata.regions):
        _fail(
            f"dataset {name!r}: regions {sorted(regions - set(metadata.regions))} are in the "
            f"data but not in its metadata regions {list(metadata.regions)}."
        )
    if metadata.n_stimuli is not None and metadata.n_stimuli != len(ids):
        _fail(
            f"dataset {name!r}: metadata n_stimuli is {metadata.n_stimuli} but it has "
            f"{len(ids)} stimuli."
        )
    if stimuli.content_hash() != stimuli.content_hash():
        _fail(f"dataset {name!r}: the stimuli's content hash is not stable.")
    reason = ceiling_warning(dataset)
    if reason is not None:
        warnings.warn(reason, CeilingWarning, stacklevel=2)
    return dataset


class CeilingWarning(UserWarning):
    """A dataset has neither a reliability nor a ceiling: its scores cannot be normalised."""


def ceiling_warning(dataset: Dataset) -> str | None:
    """Why ``dataset``'s scores will have no noise ceiling, or None when it has one.

    A dataset has a ceiling when it declares a per-neuroid reliability (or one can be
    computed from repeated presentations), or when :meth:`Dataset.ceiling` gives a finite,
    positive value for some kind (a published ceiling, an inter-subject RDM ceiling). A
    dataset whose responses are already repeat-averaged has neither unless its plugin gives
    one; its scores are then stored without a ceiling and rankings use its raw scores.
    """
    if getattr(dataset, "trials", lambda: None)() is not None and dataset.responses() is None:
        return None  # behavioural metrics compute the subjects' own consistency as ceiling
    try:
        if dataset.neuroid_reliability() is not None:
            return None
    except Exception:  # a reliability that cannot be computed is no reliability
        pass
    kinds = list(dict.fromkeys(["encoding", "rsa", *dataset.ceiling_kinds]))
    for kind in dict.fromkeys(kinds):
        try:
            values = dataset.ceiling(kind)
        except Exception:
            continue
        if any(np.isfinite(v) and v > 0 for v in (values or {}).values()):
            return None
    return (
        f"dataset {dataset.identifier!r} has no reliability and no noise ceiling (its "
        "responses have no repeated presentations to compute one from, and it declares "
        "none): its scores are stored without a ceiling and rankings use them raw. If the "
        "responses are already repeat-averaged, give each neuroid's reliability as a "
        "'reliability' neuroid coordinate (make_responses(..., neuroid_coords="
        "{'reliability': values})), or a published ceiling by overriding "
        "Dataset.ceiling(kind) to return {(subject, region): value} (built-in plugins: "
        "RealDataset(..., reliability=..., ceilings=...)); see the README's plugin section."
    )


# --------------------------------------------------------------------------- metrics


def check_metric(
    metric: MetricSpec | Metric, dataset: Dataset | None = None, **parameters: Any
) -> list[Score]:
    """Score example features on ``dataset`` (default :func:`example_dataset`, or
    :func:`example_trials_dataset` for a metric that needs behavioural trials): one per-layer
    score per layer x subject x region, with finite or NaN values and consistent fields; a
    stable configuration hash over JSON-storable parameters. Returns the scores."""
    spec = None
    if isinstance(metric, MetricSpec):
        spec = metric
        metric = spec.load(**parameters)
        if metric.identifier != spec.identifier:
            _fail(f"the factory of {spec.identifier!r} returned metric {metric.identifier!r}.")
    if not isinstance(metric, Metric):
        _fail(f"expected a brainrank Metric, got {type(metric).__name__}.")
    name = metric.identifier
    try:
        json.dumps(metric.parameters, allow_nan=False)
    except (TypeError, ValueError) as exc:
        _fail(
            f"metric {name!r}: its parameters must be JSON values so runs can record them ({exc})."
        )
    if spec is not None and spec.load(**parameters).config_hash != metric.config_hash:
        _fail(
            f"metric {name!r}: loading it twice with the same parameters gives two "
            "configuration hashes; keep only JSON values in Metric.parameters."
        )
    if dataset is None:
        dataset = example_trials_dataset() if metric.needs == "trials" else example_dataset()
    if metric.takes_spaces:
        spaced = _check_spaces(spec, metric, dataset, parameters)
        if not metric.spaces and not _applies(metric, dataset):
            return spaced  # a metric of several models only (variance partitioning)
    try:
        metric.check_applicable(dataset)
    except BrainrankError as exc:
        _fail(
            f"metric {name!r} does not apply to {dataset.identifier!r} ({exc}); pass a "
            "dataset it applies to: check_metric(metric, dataset=...)."
        )
    request = metric.feature_request(dataset)
    if not isinstance(request, FeatureRequest):
        _fail(f"metric {name!r}: feature_request must return a FeatureRequest.")
    features = example_features(dataset, request)
    scores = list(metric.score(features, dataset))
    if not scores or not all(isinstance(s, Score) for s in scores):
        _fail(f"metric {name!r}: score() must return a non-empty list of Score.")
    groups = _groups(dataset)
    layer_rows = [s for s in scores if s.selection == "layer"]
    got = {(s.layer, s.subject, s.region) for s in layer_rows}
    want = {(layer.name, s, r) for layer in features for s, r in groups}
    if len(layer_rows) != len(got):
        _fail(f"metric {name!r}: several per-layer scores for the same layer, subject and region.")
    if got != want:
        missing, extra = sorted(want - got)[:3], sorted(got - want)[:3]
        _fail(
            f"metric {name!r}: expected one per-layer score per layer x (subject, region); "
            f"missing {missing}, unexpected {extra}."
        )
    index = {layer.name: layer for layer in features}
    for s in scores:
        if not isinstance(s.value, (float, int)) or math.isinf(s.value):
            _fail(f"metric {name!r}: score values must be finite numbers or NaN, got {s.value!r}.")
        expected = index[s.layer].index if s.selection == "layer" else None
        if expected is not None and s.layer_index is not None and s.layer_index != expected:
            _fail(
                f"metric {name!r}: layer_index of {s.layer!r} is {s.layer_index}, not {expected}."
            )
        if s.per_neuroid is not None:
            n = np.asarray(s.per_neuroid).size
            if s.neuroid_ids is None or len(s.neuroid_ids) != n:
                _fail(
                    f"metric {name!r}: per_neuroid has {n} values but neuroid_ids does not "
                    "give one id for each."
                )
        try:
            json.dumps(s.extra, default=float)
        except (TypeError, ValueError) as exc:
            _fail(f"metric {name!r}: Score.extra must hold JSON values ({exc}).")
    return scores


def _applies(metric: Metric, dataset: Dataset) -> bool:
    try:
        metric.check_applicable(dataset)
    except BrainrankError:
        return False
    return True


#: the spaces :func:`check_metric` gives a metric that takes feature spaces of several
#: models: one layer of a made-up model and the best layer of another
EXAMPLE_SPACES = ("example/a:layer0", "example/b")


def _check_spaces(
    spec: MetricSpec | None, metric: Metric, dataset: Dataset, parameters: dict[str, Any]
) -> list[Score]:
    """A metric that takes feature spaces (:attr:`Metric.takes_spaces`) scores two made-up
    models' spaces (:data:`EXAMPLE_SPACES`): non-empty rows of real numbers whose per-neuroid
    values have their ids, each space named by some row, JSON-storable extras, and the spaces
    in its parameters (so in its configuration hash)."""
    from brainrank.core.spaces import Space, feature_spaces

    name = metric.identifier
    if metric.spaces:
        texts = list(metric.spaces)
    else:
        texts = list(EXAMPLE_SPACES)
        if spec is None:
            _fail(
                f"metric {name!r} takes feature spaces: pass its spec, or a metric built with "
                "spaces, to check_metric."
            )
        metric = spec.load(**{**parameters, "spaces": texts})
        if tuple(metric.spaces) != tuple(sorted(texts)):
            _fail(
                f"metric {name!r}: its spaces parameter must keep the spaces it was given "
                f"(sorted, as Metric.spaces reads them); got {metric.spaces!r}."
            )
    spaces = []
    for text in texts:
        model, _, layer = text.partition(":")
        spaces.append(Space(model, layer or None))
    try:
        metric.check_applicable(dataset)
    except BrainrankError as exc:
        _fail(f"metric {name!r} with spaces does not apply to {dataset.identifier!r} ({exc}).")
    request = metric.feature_request(dataset)
    features = {}
    for seed, model in enumerate(dict.fromkeys(s.model for s in spaces)):
        found = example_features(dataset, request, seed=seed)
        found.model = model
        features[model] = found
    scores = list(metric.score_spaces(feature_spaces(spaces, features), dataset))
    if not scores or not all(isinstance(s, Score) for s in scores):
        _fail(f"metric {name!r}: score_spaces() must return a non-empty list of Score.")
    named = {s.layer for s in scores}
    missing = [s.label for s in spaces if s.label not in named]
    if missing:
        _fail(f"metric {name!r}: no row names the space(s) {missing} (by its label).")
    for s in scores:
        if not isinstance(s.value, (float, int)) or math.isinf(s.value):
            _fail(f"metric {name!r}: score values must be finite numbers or NaN, got {s.value!r}.")
        if s.per_neuroid is not None and (
            s.neuroid_ids is None or len(s.neuroid_ids) != np.asarray(s.per_neuroid).size
        ):
            _fail(f"metric {name!r}: per_neuroid values need one neuroid id each.")
        try:
            json.dumps(s.extra, default=float)
        except (TypeError, ValueError) as exc:
            _fail(f"metric {name!r}: Score.extra must hold JSON values ({exc}).")
    return scores


def _groups(dataset: Dataset) -> list[tuple[str, str]]:
    responses = dataset.responses()
    if responses is not None:
        pairs = zip(
            map(str, responses["subject"].values), map(str, responses["region"].values), strict=True
        )
        return list(dict.fromkeys(pairs))
    rdms = dataset.rdms()
    if rdms is None and dataset.trials() is not None:
        trials = dataset.trials()
        pairs = zip(trials["subject"].astype(str), trials["condition"].astype(str), strict=True)
        return sorted(dict.fromkeys(pairs))
    return list(dict.fromkeys((str(d["subject"]), str(d["region"])) for d in rdms.descriptors))


# --------------------------------------------------------------------------- everything


@dataclass
class PluginReport:
    models: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: what passed but deserves attention (e.g. a dataset without any noise ceiling)
    warnings: list[str] = field(default_factory=list)


def check_plugin(
    plugin: Any,
    *,
    data_dir: Any = None,
    models: Sequence[str] | None = None,
    lazy: bool = True,
) -> PluginReport:
    """Every check on every spec ``plugin`` registers (``models`` limits which models are
    built; a dataset whose files are not in ``data_dir`` is skipped and reported)."""
    with warnings.catch_warnings(record=True) as removed:
        warnings.simplefilter("always", RemovedAPIWarning)
        report = _check_plugin(plugin, data_dir=data_dir, models=models, lazy=lazy)
    _fail_on_removed(removed)
    return report


def _fail_on_removed(caught: Sequence[warnings.WarningMessage]) -> None:
    """A removed import (``brainrank.config``...) is a failed check naming its replacement."""
    messages = sorted({str(w.message) for w in caught if issubclass(w.category, RemovedAPIWarning)})
    if messages:
        _fail("the plugin uses imports brainrank removed: " + " ".join(messages))


def _available(spec: DatasetSpec, data_dir: Any) -> bool:
    """``spec.available(data_dir)``, with an error it raises as a failed check."""
    try:
        return bool(spec.available(data_dir=data_dir))
    except PluginCheckError:
        raise
    except Exception as exc:
        hint = ""
        if isinstance(exc, ImportError) and "brainrank.config" in str(exc):
            hint = " " + " ".join(_config_hint())
        _fail(
            f"dataset {spec.identifier!r}: its `available` raised {type(exc).__name__}: {exc}."
            + hint
        )
        raise AssertionError("unreachable") from exc


def _config_hint() -> list[str]:
    from brainrank.config import REPLACEMENTS, removal_message

    return [removal_message(name) for name in ("settings",) if name in REPLACEMENTS]


def _check_plugin(
    plugin: Any, *, data_dir: Any, models: Sequence[str] | None, lazy: bool
) -> PluginReport:
    specs = collect_specs(plugin)
    check_identifiers(specs.all())
    for model_set in specs.model_sets:
        for member in model_set.members:
            if member.identifier is not None:
                try:
                    check_identifier(member.identifier, "model")
                except BrainrankError as exc:
                    _fail(f"model set @{model_set.name}, member {member.paper_name!r}: {exc}")
    for spec in specs.all():
        check_metadata(spec)
    if lazy:
        check_lazy_listing(plugin)
    report = PluginReport()
    for spec in specs.models:
        if models is not None and spec.identifier not in models:
            continue
        check_model(spec)
        report.models.append(spec.identifier)
    for spec in specs.datasets:
        if not _available(spec, data_dir):
            where = data_dir if data_dir is not None else "the configured data folder"
            report.skipped.append(f"dataset {spec.identifier}: its files are not in {where}")
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CeilingWarning)
            check_dataset(spec, data_dir)
        for warning in caught:
            if issubclass(warning.category, CeilingWarning):
                report.warnings.append(str(warning.message))
            else:
                warnings.warn_explicit(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
        report.datasets.append(spec.identifier)
    for spec in specs.metrics:
        check_metric(spec)
        report.metrics.append(spec.identifier)
    return report
