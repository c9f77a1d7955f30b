"""The plan of a run, as a value: the (model, dataset, metric configuration) combinations it
scores, the plan hash of each (the resume key) and the run's configuration.

:func:`plan` is the only place where plan hashes and the run configuration are made. Both
doors call it (``brainrank run`` and ``brainrank.score``, each then
:func:`~brainrank.grid.execute.execute`), so one combination has one plan hash and one
run configuration whichever door it comes through, and a score stored by one is reused by
the other.

**Sources.** A model is a :class:`ModelSource`: a plugin's spec with its options, or a
user's :class:`~brainrank.core.specs.Model` object (any torch module). Both answer the same
three questions: the identifier, the *content options* (the options with the sha256 of any
weights file they name; for an object, the content hash of its weights) and the *code
version* (the sha256 of the module that defines a spec's factory, or of the source file of
an object's module class). Datasets and metrics come by identifier (loaded from the
registry) or as objects; a dataset is a :class:`DatasetSource` with its content hashes.

**Checking.** Before any work starts, what the user asked for is checked: the device
exists, every ``--param`` names a metric of the run and a parameter that metric takes (the
metric is built with it), every weights file exists and belongs to a model that takes one.
Errors raise :class:`~brainrank.core.errors.InputError`; nothing is recorded.

**Planning.** Metrics and datasets are loaded once; a metric that does not apply to a
dataset is skipped with its reason, and each applicable metric's feature request is made
(a metric that fails it is a failure of the plan). Every (model, dataset, metric
configuration) gets a plan hash over what is known before a model is built: the model's
identifier, content options and code version, the content of the stimuli and of the data,
the metric's configuration hash and the extraction settings. A plugin, metric or dataset
that fails to load is kept in the plan as a failure, recorded when the run starts; the rest
of the grid goes on.

**Combinations of feature spaces.** A metric configuration with ``spaces`` (metrics that
take feature spaces of several models: ``stacking``, ``variance-partitioning``) is not paired
with each model of the run: its spaces make one *combination* (model ``stack/<hash>``), planned
once per dataset, whose plan hash covers every member model's identifier, content options
and code (:mod:`brainrank.grid.combination`). Its spaces are checked before any work: an
unknown model is an error, and so is a layer its model does not have on the dataset's stimuli
(found in the feature cache's record, or by building the model and probing it on the first
images, as extraction starts: measured on a 2-core CPU, AlexNet 0.7 s + 0.6 s, ResNet-50
0.5 s + 6 s, ViT-B/16 2-4 s + 15 s, for a member whose features are not cached). A member that
fails to build is a failure of the combination, recorded when the run starts. ``--weights``
may name a member model.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from brainrank.core.backend import resolve_device
from brainrank.core.cache import FeatureCache
from brainrank.core.dataset import Dataset
from brainrank.core.dataset_options import check_dataset_options, load_dataset, option_identifier
from brainrank.core.errors import InputError, NotApplicableError
from brainrank.core.extraction import ExtractionConfig
from brainrank.core.hashing import (
    code_version,
    dataset_hash,
    file_sha256,
    plan_hash,
    weights_hash,
)
from brainrank.core.metric import Metric
from brainrank.core.registry import PluginLoadError, Registry
from brainrank.core.spaces import Space
from brainrank.core.specs import DatasetMetadata, Model, ModelSpec
from brainrank.grid.combination import (
    CombinationSource,
    MemberUnavailable,
    check_layers,
    combination_of,
    resolve_spaces,
)
from brainrank.grid.jobs import Combo
from brainrank.grid.progress import PlanningProgress
from brainrank.results import ComboKey

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class ModelSource:
    """A model a plan scores: a plugin's spec with options, or a user's model object.

    ``options`` are the options as given (a worker builds the model with them);
    ``content`` are what the plan hash covers of them (:func:`content_options`; for an
    object, the content hash of its weights); ``code`` is the version of the code that
    builds the model (:func:`~brainrank.core.hashing.code_version`).
    """

    identifier: str
    plugin: str
    options: dict[str, Any]
    content: dict[str, Any]
    code: str | None
    spec: ModelSpec | None = None
    model: Model | None = None

    @classmethod
    def from_spec(cls, spec: ModelSpec, options: dict[str, Any] | None = None) -> ModelSource:
        """A plugin's model: its code version is the module that defines its factory."""
        options = dict(options or {})
        return cls(spec.identifier, spec.plugin, options, content_options(options),
                   code_version(spec.factory), spec=spec)  # fmt: skip

    @classmethod
    def from_model(cls, model: Model) -> ModelSource:
        """A model built in the caller's code: its code version is the source file of its
        module's class, its content the hash of its weights."""
        code = code_version(type(model.module)) if model.module is not None else None
        return cls(model.identifier, "", {}, {"weights": weights_hash(model)}, code, model=model)

    @property
    def in_process_only(self) -> bool:
        """An object built in this process cannot be rebuilt by a Dask worker."""
        return self.model is not None

    @property
    def family(self) -> str | None:
        """The model's architecture family (part of the plan hash where the layer policy
        depends on it: attention sub-layers)."""
        holder = self.spec if self.spec is not None else self.model
        return getattr(getattr(holder, "metadata", None), "family", None)


@dataclass(frozen=True)
class DatasetSource:
    """A dataset of a plan, loaded, with its content hashes (what
    :meth:`~brainrank.results.ResultSink.register_dataset` records of it)."""

    identifier: str
    metadata: DatasetMetadata
    plugin: str
    dataset: Dataset
    stimuli_hash: str
    data_hash: str

    @classmethod
    def of(cls, dataset: Dataset, plugin: str = "") -> DatasetSource:
        return cls(dataset.identifier, dataset.metadata, plugin, dataset,
                   dataset.stimuli.content_hash(), dataset_hash(dataset))  # fmt: skip

    @property
    def n_stimuli(self) -> int:
        return len(self.dataset.stimuli)


@dataclass(frozen=True)
class PlannedMetric:
    """A metric configuration of a plan and the plugin that provides it ("" for an
    object)."""

    metric: Metric
    plugin: str
    #: the parameters of the preset the configuration was built from (the metric identifier
    #: built without parameters): its name is what differs from them; None when unknown
    defaults: dict[str, Any] | None = None


@dataclass(frozen=True)
class PlanFailure:
    """A failure found while planning (a metric or dataset that does not load, a feature
    request that fails): recorded in the run when it starts."""

    stage: str
    error: BaseException
    where: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedCombo:
    """One combination of a plan: the model, its stimuli's content hash and the
    (dataset, metric configuration, plan hash)."""

    model: str
    stimuli_hash: str
    combo: Combo
    #: the feature spaces of a combination of models (``model`` is ``stack/<hash>``)
    spaces: tuple[Space, ...] = ()

    @property
    def key(self) -> ComboKey:
        return (self.model, self.combo.dataset, self.combo.metric, self.combo.metric_hash)


# --------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    """What a run will do, computed before it starts (see the module docstring).

    ``config`` is the run configuration (recorded with the run) and ``seeds`` its seeds;
    ``combos`` the planned combinations with their plan hashes; ``failures``, ``skipped``
    and ``load_errors`` what planning found (recorded when the run starts).
    """

    models: list[ModelSource]
    datasets: dict[str, DatasetSource]
    metrics: dict[tuple[str, str], PlannedMetric]
    combos: list[PlannedCombo]
    extraction: ExtractionConfig
    config: dict[str, Any]
    seeds: dict[str, Any]
    plugin_files: tuple[str, ...] = ()
    cache: FeatureCache | None = None
    data_dir: str | None = None
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the options each dataset of the run is built with, by the registered identifier it
    #: is built from (the options that differ from its defaults; the dataset's identifier
    #: names them: :func:`~brainrank.core.dataset_options.option_identifier`)
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    recompute: bool = False
    failures: list[PlanFailure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    load_errors: list[PluginLoadError] = field(default_factory=list)
    registry: Registry | None = None
    #: the combinations of feature spaces planned, by identifier (``stack/<hash>``)
    combinations: dict[str, CombinationSource] = field(default_factory=dict)

    @property
    def sources(self) -> list[ModelSource]:
        """Every model source of the plan: its models and the combinations' members."""
        out = {s.identifier: s for s in self.models}
        for combination in self.combinations.values():
            for member in combination.members:
                out.setdefault(member.identifier, member)
        return list(out.values())

    @property
    def device(self) -> str:
        """The device the run computes on (resolved when planned)."""
        return self.extraction.device

    @property
    def hashes(self) -> dict[ComboKey, str]:
        """The plan hash of every planned combination."""
        return {c.key: c.combo.plan_hash for c in self.combos}

    @property
    def in_process_only(self) -> bool:
        """Some of its models (or combinations' members) are objects of this process (no
        Dask)."""
        return any(source.in_process_only for source in self.sources)


def plan(
    models: Sequence[str | Model],
    datasets: Sequence[str | Dataset],
    metrics: Sequence[str | Metric],
    extraction: ExtractionConfig | None = None,
    *,
    registry: Registry | None = None,
    cache: FeatureCache | None = None,
    data_dir: Any = None,
    model_options: dict[str, dict[str, Any]] | None = None,
    metric_params: dict[str, dict[str, Any]] | None = None,
    dataset_options: dict[str, dict[str, Any]] | None = None,
    plugin_files: Sequence[str | Path] | None = None,
    recompute: bool = False,
    device: str | None = None,
    device_origin: str | None = None,
    progress: bool = False,
) -> Plan:
    """Plan a run: every model on every dataset with every metric.

    ``models``, ``datasets`` and ``metrics`` are identifiers of ``registry`` (default: the
    process-wide one) or objects. ``model_options`` (``{"model": {"weights": PATH}}``) and
    ``metric_params`` (``{"metric": {"key": value}}``) apply to models and metrics given by
    identifier; ``dataset_options`` (``{"allen/natural-scenes": {"reliability_threshold":
    0.5}}``) to datasets given by identifier, each then built with them and named by them
    (``allen/natural-scenes(reliability_threshold=0.5)``, a dataset entry of its own). ``plugin_files`` are the ``--plugin`` files workers must load (default: the
    files registered in ``registry``). ``device`` (``"auto"``, ``"cpu"``, ``"cuda[:N]"``,
    ``"mps"``; default: ``extraction.device``) is where extraction and scoring run: resolved
    and checked here, once, and carried as ``extraction.device``; ``device_origin`` names
    where the value came from, for the error message. ``data_dir`` overrides the datasets'
    data folder. Raises :class:`~brainrank.core.errors.InputError` for what the user asked
    wrongly (before any work); see the module docstring.
    """
    if registry is None:
        from brainrank.core.registry import get_registry

        registry = get_registry()
    extraction = extraction or ExtractionConfig()
    wanted_device = device if device is not None else extraction.device
    try:
        resolved = resolve_device(wanted_device)
    except InputError as exc:
        origin = f" (The device {wanted_device!r} came from {device_origin}.)"
        raise InputError(f"{exc}{origin if device_origin else ''}") from None
    extraction = dataclasses.replace(extraction, device=resolved)
    model_options = dict(model_options or {})
    metric_params = dict(metric_params or {})

    # ------------------------------------------------------------------ checks, up front
    model_ids = [m if isinstance(m, str) else m.identifier for m in models]
    _check_unique("model", model_ids)
    named_models = [m for m in models if isinstance(m, str)]
    named_metrics = [m for m in metrics if isinstance(m, str)]
    prebuilt = check_metric_params(registry, named_metrics, metric_params)
    options_of = check_options_of_datasets(
        registry, [d for d in datasets if isinstance(d, str)], dict(dataset_options or {})
    )
    files = tuple(str(Path(f).expanduser().resolve()) for f in plugin_files or ()) or tuple(
        name for name in registry.plugin_names if name.endswith(".py") and Path(name).is_file()
    )
    sources = [
        ModelSource.from_spec(registry.get("model", m), model_options.get(m))
        if isinstance(m, str)
        else ModelSource.from_model(m)
        for m in models
    ]

    failures: list[PlanFailure] = []
    skipped: list[str] = []
    shown = PlanningProgress(progress, len(metrics) + len(datasets))
    try:
        planned_metrics = _load_metrics(registry, metrics, prebuilt, failures, shown)
        # the spaces of metrics that score several models, checked now: a --weights may
        # name one of their models
        spaces_of = _metric_spaces(registry, planned_metrics, set(model_ids))
        space_models = [s.model for spaces in spaces_of.values() for s in spaces]
        check_model_options(registry, [*named_models, *space_models], model_options)
        planned_datasets = _load_datasets(registry, datasets, data_dir, failures, shown,
                                          options_of)  # fmt: skip
    finally:
        shown.close()
    applicable: dict[str, list[tuple[str, str]]] = {}
    for identifier, source in planned_datasets.items():
        applicable[identifier] = []
        for key, planned in planned_metrics.items():
            try:
                planned.metric.check_applicable(source.dataset)
                planned.metric.feature_request(source.dataset)
                applicable[identifier].append(key)
            except NotApplicableError as exc:
                skipped.append(str(exc))
            except (Exception, SystemExit) as exc:
                failures.append(PlanFailure("plan", _as_exception(exc),
                                            {"dataset": identifier,
                                             "metric": planned.metric.identifier}))  # fmt: skip

    combos = []
    for source in sources:
        for identifier, keys in applicable.items():
            dataset = planned_datasets[identifier]
            for metric_id, metric_hash in keys:
                if (metric_id, metric_hash) in spaces_of:
                    continue  # scored once per combination of models, below
                digest = plan_hash(source.identifier, source.content, identifier,
                                   dataset.stimuli_hash, dataset.data_hash, metric_hash,
                                   extraction, code=source.code,
                                   family=source.family)  # fmt: skip
                combos.append(PlannedCombo(source.identifier, dataset.stimuli_hash,
                                           Combo(identifier, metric_id, metric_hash, digest)))  # fmt: skip
    by_id = {source.identifier: source for source in sources}

    def source_of(model: str) -> ModelSource:
        if model not in by_id:
            by_id[model] = ModelSource.from_spec(registry.get("model", model),
                                                 model_options.get(model))  # fmt: skip
        return by_id[model]

    combinations: dict[str, CombinationSource] = {}
    combination_for: dict[tuple[str, str], CombinationSource] = {}
    for key, spaces in spaces_of.items():
        combination = combination_of(spaces, source_of)
        combination_for[key] = combinations.setdefault(combination.identifier, combination)
    checked: set[tuple[str, str]] = set()
    unusable: set[tuple[str, str]] = set()  # (combination, stimuli): a member did not build
    for identifier, keys in applicable.items():
        dataset = planned_datasets[identifier]
        for metric_id, metric_hash in keys:
            combination = combination_for.get((metric_id, metric_hash))
            if combination is None:
                continue
            place = (combination.identifier, dataset.stimuli_hash)
            if place not in checked:
                checked.add(place)
                try:  # a layer a model does not have: an InputError, raised before any work
                    check_layers(combination, dataset.dataset.stimuli, extraction, cache,
                                 partial(_member_model, cache=cache))  # fmt: skip
                except MemberUnavailable as exc:
                    failures.append(PlanFailure("model", _as_exception(exc.error),
                                                {"model": combination.identifier}))  # fmt: skip
                    unusable.add(place)
            if place in unusable:
                continue
            digest = plan_hash(combination.identifier, combination.content, identifier,
                               dataset.stimuli_hash, dataset.data_hash, metric_hash,
                               extraction, code=combination.code)  # fmt: skip
            combos.append(PlannedCombo(combination.identifier, dataset.stimuli_hash,
                                       Combo(identifier, metric_id, metric_hash, digest),
                                       spaces=combination.spaces))  # fmt: skip

    config = {
        "models": model_ids,
        "datasets": [d if isinstance(d, str) else d.identifier for d in datasets],
        "metrics": [m if isinstance(m, str) else m.identifier for m in metrics],
        "extraction": dataclasses.asdict(extraction),
        "metric_params": metric_params,
        "model_options": model_options,
        "dataset_options": options_of,
        "plugin_files": list(files),
        "cache": str(cache.root) if cache is not None else None,
        "data_dir": str(data_dir) if data_dir is not None else None,
        "recompute": recompute,
        "device": extraction.device,
    }
    if combinations:
        config["combinations"] = {
            c.identifier: [s.label for s in c.spaces] for c in combinations.values()
        }
    seeds: dict[str, Any] = {"projection_seed": extraction.projection_seed}
    for metric_id, params in metric_params.items():
        for key, value in params.items():
            if "seed" in key:
                seeds[f"{metric_id}.{key}"] = value
    log.info("plan: %d combinations of %d models, %d datasets, %d metric configurations",
             len(combos), len(sources), len(planned_datasets), len(planned_metrics))  # fmt: skip
    return Plan(
        models=sources,
        datasets=planned_datasets,
        metrics=planned_metrics,
        combos=combos,
        extraction=extraction,
        config=config,
        seeds=seeds,
        plugin_files=files,
        cache=cache,
        data_dir=str(data_dir) if data_dir is not None else None,
        model_options=model_options,
        metric_params=metric_params,
        dataset_options=options_of,
        recompute=recompute,
        failures=failures,
        skipped=skipped,
        load_errors=list(registry.load_errors),
        registry=registry,
        combinations=combinations,
    )


def _metric_spaces(
    registry: Registry, planned: dict[tuple[str, str], PlannedMetric], known: set[str]
) -> dict[tuple[str, str], tuple[Space, ...]]:
    """The resolved feature spaces of every metric configuration that has some (raises
    :class:`InputError` for a space that names no known model)."""
    out = {}
    for key, item in planned.items():
        texts = item.metric.spaces
        if texts:
            out[key] = resolve_spaces(registry, list(texts), known, item.metric.identifier)
    return out


def _member_model(source: ModelSource, cache: FeatureCache | None) -> Any:
    """A member model for the layer check: the object, or a handle on the plugin's model
    (built only when its layers are not known from the feature cache)."""
    from brainrank.core.features import model_handle

    if source.model is not None:
        return source.model
    assert source.spec is not None
    return model_handle(source.spec, source.options, cache)


def _load_metrics(
    registry: Registry,
    metrics: Sequence[str | Metric],
    prebuilt: dict[str, Metric],
    failures: list[PlanFailure],
    shown: PlanningProgress,
) -> dict[tuple[str, str], PlannedMetric]:
    out: dict[tuple[str, str], PlannedMetric] = {}
    for item in metrics:
        identifier = item if isinstance(item, str) else item.identifier
        shown.step(f"loading metric {identifier}")
        try:
            if isinstance(item, str):
                spec = registry.get("metric", item)
                metric, plugin = prebuilt.get(item) or spec.load(), spec.plugin
                defaults = spec.load().parameters if item in prebuilt else metric.parameters
            else:
                metric, plugin = item, ""
                defaults = _preset_parameters(registry, identifier)
        except (Exception, SystemExit) as exc:
            failures.append(PlanFailure("metric", _as_exception(exc), {"metric": identifier}))
            continue
        key = (identifier, metric.config_hash)
        if key in out and out[key].metric.spaces != metric.spaces:
            raise InputError(
                f"two configurations of metric {identifier!r} in this run differ only in their "
                "feature spaces (which are the scored model, not the configuration); score "
                "each set of spaces in a run of its own."
            )
        out[key] = PlannedMetric(metric, plugin, defaults)
    return out


def _preset_parameters(registry: Registry, identifier: str) -> dict[str, Any] | None:
    """The parameters of the registered metric ``identifier`` built with its defaults (what
    a metric object of that identifier is named relative to), or None."""
    try:
        return dict(registry.get("metric", identifier).load().parameters)
    except Exception:  # not registered, or not buildable with its defaults: name unknown
        return None


def _load_datasets(
    registry: Registry,
    datasets: Sequence[str | Dataset],
    data_dir: Any,
    failures: list[PlanFailure],
    shown: PlanningProgress,
    options_of: dict[str, dict[str, Any]],
) -> dict[str, DatasetSource]:
    out: dict[str, DatasetSource] = {}
    for item in datasets:
        identifier = item if isinstance(item, str) else item.identifier
        options = options_of.get(identifier, {}) if isinstance(item, str) else {}
        identifier = option_identifier(identifier, options)
        shown.step(f"building dataset {identifier} (loading its data, hashing its content)")
        try:
            if isinstance(item, str):
                spec = registry.get("dataset", item)
                out[identifier] = DatasetSource.of(
                    load_dataset(spec, options, data_dir), spec.plugin
                )
            else:
                out[identifier] = DatasetSource.of(item)
        except InputError as exc:
            if options:  # a value the factory refuses: the user's error, before any work
                raise InputError(f"--dataset-option: {exc}") from exc
            failures.append(PlanFailure("dataset", exc, {"dataset": identifier}))
        except (Exception, SystemExit) as exc:
            failures.append(PlanFailure("dataset", _as_exception(exc), {"dataset": identifier}))
    return out


def _as_exception(exc: BaseException) -> BaseException:
    """A plugin's ``sys.exit()`` as the plugin error it is (it must not end the run)."""
    from brainrank.grid.failures import plugin_exit

    return plugin_exit(exc, "plan")


def _check_unique(kind: str, identifiers: Sequence[str]) -> None:
    twice = sorted(i for i, n in Counter(identifiers).items() if n > 1)
    if twice:
        raise InputError(
            f"the {kind} identifier(s) {', '.join(map(repr, twice))} appear more than once in "
            f"this run; give each {kind} once (a {kind} built in your code needs an identifier "
            "of its own)."
        )


# --------------------------------------------------------------------------- checks


def check_metric_params(
    registry: Registry, metrics: Sequence[str], metric_params: dict[str, dict[str, Any]]
) -> dict[str, Metric]:
    """Every ``metric_params`` entry names a metric of the run and parameters it takes;
    returns the metrics built with their parameters (raises :class:`InputError`)."""
    unknown = sorted(set(metric_params) - set(metrics))
    if unknown:
        raise InputError(
            f"--param names {', '.join(map(repr, unknown))}, which "
            f"{'is' if len(unknown) == 1 else 'are'} not among the metrics of this run "
            f"({', '.join(metrics) or 'none'}); write METRIC.KEY=VALUE with a metric "
            "identifier of the run (see `brainrank metrics`)."
        )
    built: dict[str, Metric] = {}
    for identifier in metrics:
        params = metric_params.get(identifier, {})
        spec = registry.get("metric", identifier)
        if not params:
            continue
        try:
            built[identifier] = spec.load(**params)
        except TypeError as exc:
            accepted = _parameter_names(spec)
            unknown = sorted(set(params) - set(accepted)) if accepted else sorted(params)
            raise InputError(
                f"metric {identifier!r} does not take the parameter(s) "
                f"{', '.join(unknown or sorted(params))} ({exc})."
                + (f" Its parameters: {', '.join(accepted)}." if accepted else "")
                + " See `brainrank metrics`."
            ) from exc
        except InputError as exc:
            raise InputError(f"--param for metric {identifier!r}: {exc}") from exc
        except ValueError as exc:
            raise InputError(
                f"--param for metric {identifier!r} has a value it cannot use: {exc}."
            ) from exc
    return built


def check_options_of_datasets(
    registry: Registry, datasets: Sequence[str], dataset_options: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Every ``dataset_options`` entry names a dataset of the run and options its factory
    takes, with values of their types; returns each dataset's options that differ from its
    defaults (raises :class:`InputError`)."""
    unknown = sorted(set(dataset_options) - set(datasets))
    if unknown:
        raise InputError(
            f"--dataset-option names {', '.join(map(repr, unknown))}, which "
            f"{'is' if len(unknown) == 1 else 'are'} not among the datasets of this run "
            f"({', '.join(datasets) or 'none'}); write NAME.KEY=VALUE with a dataset "
            "identifier of the run (see `brainrank datasets`)."
        )
    out = {}
    for identifier, options in dataset_options.items():
        checked = check_dataset_options(
            registry.get("dataset", identifier), options, "--dataset-option"
        )
        if checked:
            out[identifier] = checked
    return out


def _parameter_names(spec: Any) -> list[str]:
    """The keyword parameters of a metric's class (built once with its defaults)."""
    try:
        metric = spec.load()
        signature = inspect.signature(type(metric).__init__)
    except Exception:  # a metric that cannot be built with its defaults: no list to give
        return []
    return [
        name
        for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self"
    ]


def takes_option(factory: Any, name: str) -> bool:
    """Whether a model factory accepts the keyword option ``name`` (or ``**options``)."""
    while isinstance(factory, partial):
        if name in factory.keywords:
            return True
        factory = factory.func
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return True  # cannot tell: let the factory decide
    return any(p.kind is p.VAR_KEYWORD or p.name == name for p in parameters)


def check_model_options(
    registry: Registry, models: Sequence[str], model_options: dict[str, dict[str, Any]]
) -> None:
    """Options name models of the run that take them; weights files exist."""
    for model_id, options in model_options.items():
        if model_id not in models:
            raise InputError(
                f"options are given for model {model_id!r}, which is not among the models of "
                f"this run; add it to --models or drop its --weights."
            )
        spec = registry.get("model", model_id)
        for key, value in options.items():
            untrained = key == "weights" and not spec.metadata.trained
            if untrained or not takes_option(spec.factory, key):
                what = "a weights file" if key == "weights" else f"the option {key!r}"
                raise InputError(
                    f"model {model_id!r} takes no {what}: it is built without one (a baseline "
                    "or a fixed initialisation). Drop --weights for it, or give the file to a "
                    "model that loads trained weights (e.g. the identifier without ':random')."
                )
            if key == "weights" and not Path(str(value)).expanduser().is_file():
                raise InputError(
                    f"the weights file {value} for model {model_id!r} does not exist; give "
                    "the path of a checkpoint file (--weights MODEL=PATH)."
                )


def content_options(options: dict[str, Any]) -> dict[str, Any]:
    """Model options with the sha256 of the weights file they name, so a file overwritten
    in place is a different plan (its path alone would not change)."""
    out = dict(options)
    path = options.get("weights")
    if path is not None and Path(str(path)).expanduser().is_file():
        out["weights_sha256"] = file_sha256(str(path))
    return out
