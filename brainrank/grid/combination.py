"""Combinations of feature spaces from several models, in the grid: planned, hashed, checked
and executed like a model, stored as the leaderboard model ``stack/<hash>``.

A metric that takes feature spaces (:attr:`~brainrank.core.metric.Metric.takes_spaces`, e.g.
``stacking`` or ``variance-partitioning`` with ``spaces``) scores a *combination* of models,
not one model. The grid's unit of work stays (model, stimulus set): the combination is the
"model" of its jobs.

- **Planned** (:func:`resolve_spaces`, :class:`CombinationSource`): each space text is
  parsed against the run's models and the registry (an unknown model is an
  :class:`~brainrank.core.errors.InputError` naming the closest ones, before any work); the
  combination's identifier is ``stack/<hash>`` of its sorted space labels
  (:func:`~brainrank.core.spaces.combination_identifier`).
- **Hashed**: the plan hash of each (combination, dataset, metric) covers, for every member
  model, its identifier, its content options (the sha256 of a ``--weights`` file) and the
  version of the plugin code that builds it, as one model's plan hash does; and the spaces.
- **Checked before work starts** (:func:`check_layers`): every space's layer (or layer
  pattern) is looked up among the layers its model has on the dataset's stimuli: from the
  feature cache's record when the features are cached and the model's identity is
  remembered, else by building the model and probing it on the first images (what
  extraction does first). A missing layer is an ``InputError`` naming the closest layers
  (or the layer it duplicates, or that it is constant). Cost, per member whose features are
  not cached: one build and the probe extraction starts with (measured on a 2-core CPU:
  AlexNet 0.7 s + 0.6 s, ResNet-50 0.5 s + 6 s, ViT-B/16 2-4 s + 15 s); a member whose
  features are cached costs its build where its weights are found implicitly (a trained
  model's cache of weights) and nothing where its identity is remembered.
- **Executed** (:func:`run_combination_job`): one job per (combination, stimulus set). The
  members' identities come first (their weights hashes, remembered or built), so a
  combination stored with other weights is scored again; then each member's features come
  from the feature cache or extraction, **one model at a time** within the run's memory
  budget (the model is dropped before the next is built), and only the layers the spaces
  use are kept (no RDMs). Every pending metric of the combination is then scored on them
  (:func:`~brainrank.core.features.score_space_features`) and written as the job's model.
- **Stored**: model ``stack/<hash>``, registered with metadata of source ``stack`` whose
  ``extra`` (the models table's ``details``) lists the spaces and every member's identity
  and weights hash (:func:`~brainrank.core.spaces.combination_metadata`); its weights hash
  combines the members', its feature key their feature keys.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from brainrank.core.cache import FeatureCache
from brainrank.core.errors import InputError, UnknownIdentifierError
from brainrank.core.extraction import PROBE_IMAGES, ExtractionConfig, probe_layers
from brainrank.core.features import ModelHandle, compute_features, score_space_features
from brainrank.core.hashing import features_key, weights_hash
from brainrank.core.registry import Registry
from brainrank.core.scores import FeatureRequest, FeatureSet
from brainrank.core.spaces import (
    LayerCatalogue,
    Space,
    combination_identifier,
    combination_metadata,
    combined_hash,
    expand_all,
    feature_spaces,
    members,
    parse_spaces,
)
from brainrank.core.specs import ModelMetadata
from brainrank.core.stimuli import StimulusSet

if TYPE_CHECKING:
    from brainrank.grid.context import Context, GridConfig
    from brainrank.grid.jobs import Combo, Job, JobResult
    from brainrank.grid.plan import ModelSource
    from brainrank.grid.progress import JobProgress

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class CombinationSource:
    """A combination of feature spaces a plan scores: its identifier (``stack/<hash>``), its
    spaces and the :class:`~brainrank.grid.plan.ModelSource` of every member model."""

    identifier: str
    spaces: tuple[Space, ...]
    members: tuple[ModelSource, ...]

    @property
    def content(self) -> dict[str, Any]:
        """What the plan hash covers of the members: the spaces and each member's
        identifier and content options (a weights file's sha256; an object's weights)."""
        return {
            "spaces": sorted(s.label for s in self.spaces),
            "members": {m.identifier: m.content for m in self.members},
        }

    @property
    def code(self) -> str | None:
        """One version of the code that builds the members: a hash of each member's."""
        parts = [f"{m.identifier}={m.code}" for m in sorted(self.members, key=_identifier)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    @property
    def in_process_only(self) -> bool:
        return any(m.in_process_only for m in self.members)


def _identifier(source: Any) -> str:
    return source.identifier


def is_known_model(registry: Registry, identifier: str, known: set[str]) -> bool:
    """Whether ``identifier`` names a model of the run (``known``) or of the registry."""
    if identifier in known:
        return True
    try:
        registry.get("model", identifier)
    except (UnknownIdentifierError, InputError):
        return False
    return True


def resolve_spaces(
    registry: Registry, texts: Sequence[str], known: set[str], metric: str
) -> tuple[Space, ...]:
    """The spaces of a metric's ``spaces`` texts, parsed against the run's models ``known``
    and the registry; an unknown model is an :class:`InputError` with the closest known
    models."""
    try:
        return parse_spaces(texts, lambda text: is_known_model(registry, text, known))
    except InputError as exc:
        unknown = next(
            (t for t in texts if not _parses(registry, t, known)), texts[0] if texts else ""
        )
        close = registry.suggest("model", unknown.split(":")[0])
        hint = f" Closest known models: {', '.join(close)}." if close else ""
        raise InputError(f"metric {metric!r}: {exc}{hint}") from None


def _parses(registry: Registry, text: str, known: set[str]) -> bool:
    try:
        parse_spaces([text], lambda t: is_known_model(registry, t, known))
    except InputError:
        return False
    return True


def combination_of(
    spaces: tuple[Space, ...], source_of: Callable[[str], ModelSource]
) -> CombinationSource:
    """The :class:`CombinationSource` of ``spaces`` (``source_of`` gives a member's model
    source)."""
    return CombinationSource(
        combination_identifier(spaces), spaces, tuple(source_of(m) for m in members(spaces))
    )


class MemberUnavailable(Exception):
    """A member model of a combination could not be built or probed while its layers were
    checked (``error``: why); the plan records it as a failure of the combination."""

    def __init__(self, model: str, error: BaseException):
        super().__init__(f"{model}: {error}")
        self.model, self.error = model, error


def check_layers(
    combination: CombinationSource,
    stimuli: StimulusSet,
    extraction: ExtractionConfig,
    cache: FeatureCache | None,
    model_handle: Callable[[ModelSource], Any],
) -> None:
    """Every space of ``combination`` names layers its model has on ``stimuli`` (raises
    :class:`InputError` otherwise; see the module docstring). ``model_handle`` gives a
    member's model (a handle or an object). A member that cannot be built or probed raises
    :class:`MemberUnavailable` (the plan records it as a failure of the combination)."""
    catalogues = {}
    for member in combination.members:
        wanted = [s for s in combination.spaces if s.model == member.identifier]
        if all(s.layer is None for s in wanted):
            continue  # best-layer spaces: any layer will do
        try:
            catalogues[member.identifier] = layer_catalogue(
                model_handle(member), stimuli, extraction, cache
            )
        except (Exception, SystemExit) as exc:
            raise MemberUnavailable(member.identifier, exc) from exc
    expand_all([s for s in combination.spaces if s.model in catalogues], catalogues)


def layer_catalogue(
    model: Any, stimuli: StimulusSet, extraction: ExtractionConfig, cache: FeatureCache | None
) -> LayerCatalogue:
    """The layers ``model`` (a built model or a :class:`ModelHandle`) has on ``stimuli``:
    from the cached features' record when they are cached (a handle whose identity is
    remembered is not even built), else by probing the built model on the first images as
    extraction does."""
    if isinstance(model, ModelHandle) and model.remembered:
        found = _cached_catalogue(model.facts, stimuli, extraction, cache)
        if found is not None:
            return found
    built = model.build() if isinstance(model, ModelHandle) else model
    found = _cached_catalogue(built, stimuli, extraction, cache)
    if found is not None:
        return found
    n_probe = min(len(stimuli), extraction.batch_size, PROBE_IMAGES)
    first = [stimuli.image(s) for s in stimuli.stimulus_ids[:n_probe]]
    infos = probe_layers(built, first, "cpu")
    return LayerCatalogue(
        names=tuple(i.name for i in infos if i.duplicate_of is None and not i.constant),
        duplicates={i.name: i.duplicate_of for i in infos if i.duplicate_of},
        constant=tuple(i.name for i in infos if i.constant and i.duplicate_of is None),
    )


def _cached_catalogue(
    identity: Any, stimuli: StimulusSet, extraction: ExtractionConfig, cache: FeatureCache | None
) -> LayerCatalogue | None:
    if cache is None:
        return None
    described = cache.describe(features_key(identity, stimuli, extraction))
    if described is None:
        return None
    names, info = described
    return LayerCatalogue(tuple(names), dict(info.get("duplicates") or {}),
                          tuple(info.get("constant_layers") or ()))  # fmt: skip


# --------------------------------------------------------------------------- execution


def _needed(features: FeatureSet, spaces: Sequence[Space], request: FeatureRequest) -> FeatureSet:
    """``features`` reduced to the layers ``spaces`` use (every layer for a best-layer space),
    without RDMs, and only the projection sizes of ``request``: what a combination's metrics
    read, the rest freed before the next member is extracted."""
    keep_all = any(s.layer is None for s in spaces)
    wanted = None if keep_all else {s.layer for s in spaces}
    layers = []
    for layer in features.layers:
        if wanted is not None and layer.name not in wanted:
            continue
        layer.rdm = None
        layer.projections = {
            k: v for k, v in layer.projections.items() if k in request.projection_dims
        }
        layers.append(layer)
    features.layers = layers
    return features


def run_combination_job(
    job: Job,
    config: GridConfig,
    ctx: Context,
    progress: JobProgress,
    lease: Callable[[list[Combo]], list[Combo]],
) -> JobResult:
    """The job of a combination on one stimulus set (see the module docstring): the
    combination's counterpart of :func:`brainrank.grid.jobs._run_job`."""
    from brainrank.grid.failures import record_failure
    from brainrank.grid.jobs import JobResult, _Laps, score_pending

    started = time.time()
    store = ctx.store
    result = JobResult(model=job.model, n_combos=len(job.pending))
    lap = _Laps(result.stats)

    def fail(stage: str, exc: BaseException, **where: str | None) -> None:
        exc = record_failure(store, config.run_id, result.failures, stage, exc, **where)
        if config.raise_errors:
            raise exc

    def done(combos: list[Combo], failed: bool = True) -> None:
        for combo in combos:
            suffix = ": failed" if failed else ""
            progress.scored(f"{job.model} x {combo.dataset} x {combo.metric}{suffix}")

    names = members(job.spaces)
    try:  # the members' identities: remembered, or built and hashed
        handles: dict[str, Any] = {m: ctx.model(m)[0] for m in names}
        weights = {m: weights_hash(h) for m, h in handles.items()}
        metadata = {m: h.metadata for m, h in handles.items()}
        combined = combined_hash(weights)
        _register(store, job, metadata, weights)
    except (Exception, SystemExit) as exc:
        done(job.pending)
        result.seconds = time.time() - started
        fail("model", exc, model=job.model)
        return result
    lap("model")
    stale = [c for c in job.stored if c.stored_weights != combined]
    stale = lease(stale) if stale else stale
    if stale:
        log.warning("%s: the members' weights differ from those of %d stored scores; scoring "
                    "again", job.model, len(stale))  # fmt: skip
    pending = job.pending + stale
    result.n_combos = len(pending)
    if not pending:
        result.seconds = time.time() - started
        return result

    try:
        datasets = {c.dataset: ctx.dataset(c.dataset) for c in pending}
        metrics = {(c.metric, c.metric_hash): ctx.metric(c.metric, c.metric_hash)
                   for c in pending}  # fmt: skip
        request = FeatureRequest()
        for combo in pending:
            request = request | metrics[(combo.metric, combo.metric_hash)].feature_request(
                datasets[combo.dataset]
            )
        request = FeatureRequest(request.projection_dims)  # no RDMs: the spaces use none
        stimuli = next(iter(datasets.values())).stimuli
        features: dict[str, FeatureSet] = {}
        concrete: list[Space] = []
        for m in names:  # one model at a time: each is dropped before the next is built
            mine = [s for s in job.spaces if s.model == m]
            bar, callback = progress.images(f"{m} on {stimuli.identifier}", len(stimuli))
            try:
                found = compute_features(handles[m], stimuli, request, config.extraction,
                                         ctx.cache, callback)  # fmt: skip
            finally:
                if bar is not None:
                    bar.close()
            weights[m] = weights_hash(handles[m])  # built now: its weights as built
            handles[m] = None
            concrete += expand_all(mine, {m: LayerCatalogue.of(found)})
            features[m] = _needed(found, [s for s in concrete if s.model == m], request)
            del found
        if combined_hash(weights) != combined:  # built with other weights than remembered
            combined = combined_hash(weights)
            _register(store, job, metadata, weights)
        order = {s: i for i, s in enumerate(job.spaces)}
        spaces = feature_spaces(_in_order(concrete, job.spaces, order), features)
        feature_key = combined_hash({m: f.key for m, f in features.items()})
    except (Exception, SystemExit) as exc:
        done(pending)
        result.seconds = time.time() - started
        fail("features", exc, model=job.model,
             dataset=",".join(sorted({c.dataset for c in pending})))  # fmt: skip
        return result

    lap("extraction")
    score_pending(job, config, ctx, pending, datasets, metrics,
                  lambda metric, dataset, _combo, spaces=spaces: score_space_features(
                      metric, spaces, dataset),
                  result, lap, done, fail, feature_key=feature_key, weights=combined)  # fmt: skip
    del features, spaces
    result.seconds = time.time() - started
    return result


def _in_order(
    concrete: list[Space], given: Sequence[Space], order: Mapping[Space, int]
) -> list[Space]:
    """The expanded spaces in the order of the spaces they came from (the combination's
    order), each pattern's layers in layer order."""

    def rank(space: Space) -> int:
        if space in order:
            return order[space]
        for origin in given:  # a layer a pattern matched
            if origin.model == space.model and origin.is_pattern:
                import fnmatch

                if fnmatch.fnmatchcase(space.layer or "", origin.layer or ""):
                    return order[origin]
        return len(order)

    return sorted(concrete, key=rank)


def _register(store: Any, job: Job, metadata: Mapping[str, Any], weights: dict[str, str]) -> None:
    """The combination in the models table: source ``stack``, its spaces and members."""
    fields = combination_metadata(job.model, job.spaces, metadata, weights)
    store.register_model(
        job.model, ModelMetadata(**fields), "", weights_hash=combined_hash(weights)
    )
