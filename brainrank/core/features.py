"""Features of one model on one stimulus set: from the feature cache when it covers the
request, else extracted (and cached); and the scores a metric computes from them.

A model from a plugin comes as a :class:`ModelHandle`: when an earlier build with the same
inputs is remembered in the feature cache, its identity (weights hash, preprocessing,
layers) is known without building it, and a run whose features are cached never builds it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.core.cache import FeatureCache
from brainrank.core.dataset import Dataset
from brainrank.core.errors import ResultError
from brainrank.core.extraction import ExtractionConfig, extract_features
from brainrank.core.hashing import (
    ModelFacts,
    build_key,
    features_key,
    file_identity,
    files_unchanged,
    plugin_code_version,
    read_files,
    recording_reads,
)
from brainrank.core.metric import Metric
from brainrank.core.scores import FeatureRequest, FeatureSet, Score, best_layer_scores
from brainrank.core.spaces import FeatureSpace
from brainrank.core.specs import Model, ModelMetadata, ModelSpec
from brainrank.core.stimuli import StimulusSet

log = logging.getLogger(__name__)


class ModelHandle:
    """A model a plugin's factory builds, built only when it is needed.

    Its :attr:`facts` (weights hash, preprocessing, layers, metadata: what the feature
    cache key and the leaderboard need) come from the record of an earlier build with the
    same *build key* when the feature cache holds one whose files are unchanged, else from
    building it. The build key covers the identifier, the options, the plugin's code and the
    installed packages' versions (:func:`~brainrank.core.hashing.build_key`); the record
    lists every file the build read from Python and any file an option names, each with its
    size, times and inode, and is used only while all of them are unchanged.

    Only builds whose weights are determined by those inputs are remembered: untrained
    models (a seeded initialisation) and models given a weights file as an option. Trained
    weights found implicitly (a torch-hub or Hugging Face cache, possibly read from native
    code that Python does not see) are always built and hashed, as before.
    """

    def __init__(
        self,
        identifier: str,
        build: Callable[[], Model],
        *,
        cache: FeatureCache | None = None,
        key: str | None = None,
        option_files: list[list[Any]] | None = None,
        explicit_weights: bool = False,
    ):
        self.identifier = identifier
        self._build = build
        self._cache = cache if key else None
        self._key = key
        self._option_files = option_files or []
        self._explicit_weights = explicit_weights
        self._model: Model | None = None
        self._facts: ModelFacts | None = self._recall()
        #: the model was built by this handle (its factory called)
        self.built = False

    @property
    def remembered(self) -> bool:
        """The facts came from an earlier build's record (the model is not built yet)."""
        return self._facts is not None and self._model is None

    @property
    def facts(self) -> ModelFacts:
        if self._facts is None:
            self.build()
        assert self._facts is not None
        return self._facts

    @property
    def weights(self) -> str:
        return self.facts.weights

    @property
    def metadata(self) -> ModelMetadata:
        return self.facts.metadata

    def build(self) -> Model:
        """The model, built now if it is not yet (and its build remembered when that is
        safe)."""
        if self._model is not None:
            return self._model
        with recording_reads() as reads:
            model = self._build()
        facts = ModelFacts.of(model)
        remembered, self._model, self._facts, self.built = self._facts, model, facts, True
        if self._cache is None or self._key is None:
            return model
        if remembered is not None and remembered != facts:
            log.warning(
                "%s: building it gave other weights or settings than an earlier build with "
                "the same inputs (a build that is not reproducible?); its features are "
                "recomputed and the build is not remembered",
                self.identifier,
            )
            self._cache.forget_model_record(self._key)
            return model
        self._remember(facts, read_files(reads))
        return model

    def _remember(self, facts: ModelFacts, files: list[list[Any]]) -> None:
        assert self._cache is not None and self._key is not None
        metadata = facts.metadata.to_dict()
        try:
            same = ModelMetadata(**_json_roundtrip(metadata)) == facts.metadata
        except (TypeError, ValueError):
            same = False
        if not same or (facts.metadata.trained and not self._explicit_weights):
            self._cache.forget_model_record(self._key)
            return
        known = {entry[0] for entry in files}
        files += [entry for entry in self._option_files if entry[0] not in known]
        record = {
            "identifier": facts.identifier,
            "weights": facts.weights,
            "preprocess_id": facts.preprocess_id,
            "layers": list(facts.layers) if facts.layers is not None else None,
            "attention": facts.attention,
            "metadata": metadata,
            "files": files,
        }
        try:
            self._cache.store_model_record(self._key, record)
        except OSError as exc:
            log.warning("could not write the model record in %s: %s", self._cache.root, exc)

    def _recall(self) -> ModelFacts | None:
        if self._cache is None or self._key is None:
            return None
        record = self._cache.model_record(self._key)
        if record is None:
            return None
        try:
            if not files_unchanged(record["files"]):  # option files included
                return None
            layers = record["layers"]
            return ModelFacts(
                identifier=str(record["identifier"]),
                weights=str(record["weights"]),
                preprocess_id=str(record["preprocess_id"]),
                layers=tuple(layers) if layers is not None else None,
                metadata=ModelMetadata(**record["metadata"]),
                attention=bool(record["attention"]),  # records from before: rebuilt
            )
        except (KeyError, TypeError, ValueError, IndexError):
            return None


def _json_roundtrip(value: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(value))


def model_handle(
    spec: ModelSpec, options: dict[str, Any], cache: FeatureCache | None = None
) -> ModelHandle:
    """A handle on the model ``spec`` builds with ``options``; with a feature ``cache``, its
    identity is remembered across runs where that is safe (see :class:`ModelHandle`)."""
    build = partial(spec.load, **options)
    explicit = options.get("weights") is not None
    if cache is None or (spec.metadata.trained and not explicit):
        return ModelHandle(spec.identifier, build)
    code = plugin_code_version(spec.factory)
    if code is None:  # a factory defined interactively: no version of its code
        return ModelHandle(spec.identifier, build)
    option_files = []
    for value in options.values():
        if isinstance(value, (str, Path)):
            path = os.path.realpath(os.path.expanduser(str(value)))
            identity = file_identity(path) if os.path.isfile(path) else None
            if identity is not None:
                option_files.append(identity)
    key = build_key(spec.identifier, {k: str(v) for k, v in options.items()}, code)
    return ModelHandle(spec.identifier, build, cache=cache, key=key,
                       option_files=option_files, explicit_weights=explicit)  # fmt: skip


def compute_features(
    model: Model | ModelHandle,
    stimuli: StimulusSet,
    request: FeatureRequest,
    config: ExtractionConfig,
    cache: FeatureCache | None = None,
    progress: Callable[[int], None] | None = None,
) -> FeatureSet:
    """Features from the cache when it covers ``request``, else extracted (and cached).

    A :class:`ModelHandle` whose identity is remembered is built only when the cache does
    not cover the request."""
    while True:
        key = features_key(model.facts if isinstance(model, ModelHandle) else model,
                           stimuli, config)  # fmt: skip
        if cache is not None:
            if cache.covers(key, request):
                cached = cache.load(key)
                if cached is not None:
                    return cached
            stored = cache.stored_request(key)
            if stored is not None:  # extend what is cached rather than replace it
                request = request | stored
        if not isinstance(model, ModelHandle):
            built = model
            break
        remembered = model.remembered
        built = model.build()
        if not remembered or features_key(model.facts, stimuli, config) == key:
            break
        # the build does not match its record: look up the built model's own features
    features = extract_features(built, stimuli, request, config, progress=progress)
    features.key = key
    if cache is not None:
        try:
            cache.store(key, features)
        except OSError as exc:
            log.warning("could not write the feature cache at %s: %s", cache.root, exc)
    return features


def score_features(metric: Metric, features: FeatureSet, dataset: Dataset) -> list[Score]:
    """The metric's per-layer scores and its own summary rows, plus the best-layer ("max")
    rows when the metric does not give them itself; for a configuration that is not
    calibrated (:attr:`Metric.calibrated`), every row with its chance level
    (:func:`brainrank.core.chance.attach_chance_levels`).

    Raises :class:`~brainrank.core.errors.ResultError` when the metric's result is not a
    list of :class:`Score` with real-number values, is empty, or has no finite value: such
    a result is never stored as if it were a score (the grid records it as a failure, so the
    next run tries again)."""
    if metric.calibrated:
        return _checked_scores(metric, dataset, metric.score(features, dataset), None)
    # the real dataset and its relabellings in one call, so that a metric shares work
    # across all of them (Metric.score_with_permutations)
    from brainrank.core.chance import permuted_datasets

    permuted = permuted_datasets(dataset)
    results = metric.score_with_permutations(features, [dataset, *permuted])
    if not isinstance(results, (list, tuple)) or len(results) != 1 + len(permuted):
        raise ResultError(
            f"metric {metric.identifier!r} on dataset {dataset.identifier!r}: "
            f"score_with_permutations of {1 + len(permuted)} datasets must return one list of "
            f"scores per dataset, got {_short(results)}."
        )
    return _checked_scores(metric, dataset, results[0], None, list(results[1:]))


def score_space_features(
    metric: Metric, spaces: Sequence[FeatureSpace], dataset: Dataset
) -> list[Score]:
    """:func:`score_features` for a combination of feature spaces of several models
    (:meth:`Metric.score_spaces`): the same checks, ``max`` rows and chance levels."""
    return _checked_scores(
        metric, dataset, metric.score_spaces(spaces, dataset),
        lambda permuted: metric.score_spaces(spaces, permuted),
    )  # fmt: skip


def _checked_scores(
    metric: Metric,
    dataset: Dataset,
    result: Any,
    rescore: Callable[[Dataset], list[Score]] | None,
    permuted_results: list[list[Score]] | None = None,
) -> list[Score]:
    name = f"metric {metric.identifier!r} on dataset {dataset.identifier!r}"
    if not isinstance(result, (list, tuple)):
        raise ResultError(
            f"{name} returned {type(result).__name__}, not a list of brainrank Score objects; "
            "Metric.score must return list[Score]."
        )
    rows = list(result)
    for row in rows:
        if not isinstance(row, Score):
            raise ResultError(
                f"{name} returned a {type(row).__name__} among its scores; every item must be "
                "a brainrank Score."
            )
        if isinstance(row.value, (bool, np.bool_)) or not isinstance(
            row.value, (int, float, np.integer, np.floating)
        ):
            raise ResultError(
                f"{name} gave layer {row.layer!r} ({row.subject}, {row.region}) the value "
                f"{_short(row.value)} of type {type(row.value).__name__}; a score's value must "
                "be one real number (per-neuroid values go in Score.per_neuroid)."
            )
    if not rows:
        raise ResultError(
            f"{name} returned no scores; nothing is stored and the combination is tried again "
            "on the next run."
        )
    if not any(np.isfinite(float(row.value)) for row in rows):
        raise ResultError(
            f"every one of the {len(rows)} scores of {name} is NaN or infinite (for example "
            "too few stimuli or constant responses); nothing is stored and the combination "
            "is tried again on the next run."
        )
    if not any(row.selection == "max" for row in rows):
        rows += best_layer_scores(rows, "max")
    if not metric.calibrated:  # its null is not 0: store the chance level beside each score
        from brainrank.core.chance import attach_chance_levels, with_chance_levels

        if permuted_results is not None:
            rows = with_chance_levels(rows, permuted_results)
        else:
            rows = attach_chance_levels(rows, rescore, dataset)
    return rows


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
