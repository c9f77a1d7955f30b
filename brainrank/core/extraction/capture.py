"""The extraction itself: the hooks copy each layer's output into the arena, and the
captured activations go to the projections and RDM accumulators, in memory-budgeted passes
(with exact RDMs, :func:`_passes`) or in one pass streamed chunk of images by chunk
(without, :func:`_stream`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainrank.core.dimensionality import covariance_spectrum
from brainrank.core.errors import InputError
from brainrank.core.extraction.arenas import _Arena, _DeviceArena, _on_device
from brainrank.core.extraction.config import EXTRACTION_VERSION, ExtractionConfig
from brainrank.core.extraction.layers import (
    PROBE_IMAGES,
    LayerInfo,
    _batch_tensor,
    _channels_last_pooling,
    _forward,
    _Hooks,
    _rows_first,
    _StopForward,
    hooked_modules,
    kept_layers,
    probe_layers,
)
from brainrank.core.extraction.planning import (
    _largest,
    _Slice,
    pass_budget,
    plan_by_need,
    stream_chunk,
)
from brainrank.core.projection import SCHEME, SparseRandomProjection
from brainrank.core.rsa import GramAccumulator
from brainrank.core.scores import FeatureRequest, FeatureSet, LayerFeatures
from brainrank.core.specs import Model
from brainrank.core.stimuli import StimulusSet

log = logging.getLogger(__name__)


def _check_finite(model: str, slices: list[_Slice], buffers: dict[str, Any]) -> None:
    """Refuse NaN or infinite activations, naming the model and every layer that has them.
    ``buffers``: feature-major ``(features, n)`` blocks. A feature with a NaN or inf has a
    non-finite sum; the few features whose sum is not finite are checked element by element
    (a float32 sum of large finite values may overflow)."""
    import torch

    bad: dict[str, int] = {}
    for part in slices:
        block = torch.as_tensor(buffers[part.layer])  # (features, n); no copy
        suspect = torch.nonzero(~torch.isfinite(block.sum(dim=1))).flatten()
        n_bad = int((~torch.isfinite(block[suspect]).all(dim=1)).sum()) if suspect.numel() else 0
        if n_bad:
            bad[part.layer] = bad.get(part.layer, 0) + n_bad
    if bad:
        which = ", ".join(f"{name!r} ({n} features)" for name, n in bad.items())
        raise InputError(
            f"model {model!r} gives NaN or infinite activations in layer(s) {which}. Its "
            "weights may be damaged or diverged (check the weights file), or the layer "
            "overflows on these inputs; nothing was scored with these features."
        )


class _PassCapture:
    """Hook handler of one pass: copies the pass's column slices into its feature-major
    buffers (one transposing copy, straight from the layer output into the arena)."""

    def __init__(
        self, slices: list[_Slice], n: int, arena: _Arena | _DeviceArena, axes: dict[str, int]
    ):
        import torch

        self.wanted = {part.layer: part for part in slices}
        views = arena.views(n, [part.stop - part.start for part in slices])
        self.buffers = {part.layer: view for part, view in zip(slices, views, strict=True)}
        self.targets = {name: torch.as_tensor(view) for name, view in self.buffers.items()}
        self.axes = axes
        self.last = slices[-1].layer
        self.rows = slice(0, 0)

    def __call__(self, name: str, _module: str, tensor: Any) -> None:
        part = self.wanted.get(name)
        if part is not None:
            flat = _rows_first(tensor.detach(), self.axes.get(name, 0))
            self.targets[name][:, self.rows].copy_(flat[:, part.start : part.stop].T)
        if name == self.last:
            raise _StopForward


class _Inputs:
    """The preprocessed batches of a stimulus set, in order. With ``keep`` (several passes
    to run) the batches are kept after the first pass when they take at most a quarter of the
    pass budget, so images are decoded and preprocessed once; otherwise every pass
    preprocesses again."""

    def __init__(
        self, model: Model, stimuli: StimulusSet, config: ExtractionConfig, keep: bool, budget: int
    ):
        self.model, self.stimuli, self.config, self.budget = model, stimuli, config, budget
        self.kept: list[tuple[slice, Any]] | None = [] if keep else None
        self.complete = False

    def __iter__(self):
        if self.complete and self.kept is not None:
            yield from self.kept
            return
        limit = self.budget // 4
        for rows, images in self.stimuli.batches(self.config.batch_size):
            batch = _batch_tensor(self.model, images, self.config.device)
            if self.kept is not None:
                per_image = batch[0].numel() * batch.element_size()
                if per_image * len(self.stimuli) <= limit:
                    self.kept.append((rows, batch))
                else:
                    self.kept = None
            yield rows, batch
        self.complete = True


@dataclass
class _LayerState:
    info: LayerInfo
    gram: GramAccumulator | None
    # one accumulator, for the largest requested k below the layer's size; every k in
    # ``projected`` is read from it (projections are nested)
    projection: Any = None
    projected: list[int] = field(default_factory=list)
    raw: dict[int, list[Any]] = field(default_factory=dict)  # k >= p: raw columns
    done: int = 0


@dataclass
class _Extraction:
    """What :func:`_passes` and :func:`_stream` work on: the model and stimuli, the
    per-layer accumulators (``states``), each layer's batch axis, the layers, the hooked
    modules and the progress callback."""

    model: Model
    stimuli: StimulusSet
    config: ExtractionConfig
    states: dict[str, _LayerState]
    axes: dict[str, int]
    layers: list[LayerInfo]
    modules: list[tuple[str, Any]]
    progress: Callable[[int], None] | None


def extract_features(
    model: Model,
    stimuli: StimulusSet,
    request: FeatureRequest,
    config: ExtractionConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> FeatureSet:
    """Features of every layer of ``model`` on ``stimuli`` (see the module docstring).

    ``request.projection_dims`` lists the projection sizes k wanted; a layer with at most k
    features keeps its raw features for that k. ``request.rdm`` asks for exact RDMs,
    ``request.gram`` for exact column-centred Gram matrices (both from the same
    accumulator, in the same passes). ``progress(n_images)`` is called after every batch of
    the first pass; a ``progress`` with a ``plan`` method is told ``plan(layers=, passes=,
    images=)`` before the first batch, and one with ``again`` gets ``again(n_images,
    pass_number)`` for the batches of later passes (progress display only: nothing computed
    depends on them).

    Without RDMs the layers are projected chunk of images by chunk in one pass (see
    :func:`_stream`); with them, layers are held for all images in memory-budgeted passes.
    """
    config = config or ExtractionConfig()
    n = len(stimuli)
    if n < 2:
        raise InputError("feature extraction needs at least 2 stimuli.")
    n_probe = min(n, config.batch_size, PROBE_IMAGES)
    first = [stimuli.image(s) for s in stimuli.stimulus_ids[:n_probe]]
    infos = probe_layers(model, first, config.device, config.layers, config.aliases)
    layers, dropped = kept_layers(infos)
    if not layers:
        raise InputError(
            f"every layer of model {model.identifier!r} is constant on the first images "
            f"({[i.name for i in infos][:5]}...); there are no features to compare."
        )
    axes = {info.name: info.batch_axis for info in layers}
    on_device = _on_device(config.device)
    where = config.device if on_device else None  # accumulators' device
    states: dict[str, _LayerState] = {}
    for info in layers:
        exact = request.rdm or request.gram or request.spectrum  # all from the exact Gram
        state = _LayerState(info, GramAccumulator(n, device=where) if exact else None)
        state.projected = sorted(k for k in request.projection_dims if info.size > k)
        if state.projected:
            state.projection = SparseRandomProjection(
                info.size, state.projected[-1], seed=config.projection_seed
            ).accumulator(n, device=where)
        for k in request.projection_dims:
            if info.size <= k:
                state.raw[k] = []
        states[info.name] = state

    modules = hooked_modules(model.module, model.layers, config.layers)
    run = _Extraction(model, stimuli, config, states, axes, layers, modules, progress)
    if not (request.rdm or request.gram or request.spectrum):
        chunk = _stream(run)
        n_passes = 1
    else:
        n_passes = len(_passes(run))
        chunk = n
    out_layers: list[LayerFeatures] = []
    depth_den = max(1, len(layers) - 1)
    for index, info in enumerate(layers):
        state = states[info.name]
        if state.done != info.size:
            raise RuntimeError(f"layer {info.name}: {state.done} of {info.size} columns captured")
        projections = {k: state.projection.result(k) for k in state.projected}
        for k, parts in state.raw.items():
            projections[k] = _host_columns(parts)
        out_layers.append(
            LayerFeatures(
                name=info.name,
                index=index,
                relative_depth=index / depth_den if len(layers) > 1 else 0.0,
                n_features=info.size,
                shape=info.shape,
                projections=projections,
                rdm=state.gram.rdm("correlation") if request.rdm else None,
                gram=state.gram.column_centred() if request.gram else None,
                spectrum=covariance_spectrum(state.gram.raw) if request.spectrum else None,
            )
        )
        states[info.name] = None  # type: ignore[assignment]  # free the accumulators
    return FeatureSet(
        model=model.identifier,
        stimulus_ids=stimuli.stimulus_ids,
        layers=out_layers,
        info={
            **dropped,
            "layers": config.layers,
            "aliases": config.aliases,
            "passes": n_passes,
            "images_per_chunk": chunk,
            "projection_seed": config.projection_seed,
            "projection_scheme": SCHEME,
            "projection_dims": sorted(request.projection_dims),
            "rdm": request.rdm,
            "gram": request.gram,
            "spectrum": request.spectrum,
            "extraction_version": EXTRACTION_VERSION,
        },
    )


def _announce(progress: Callable[[int], None] | None, **plan: int) -> None:
    """Tell a progress callback that asks (one with a ``plan`` method) the layer count and
    passes of the extraction, before its first image."""
    told = getattr(progress, "plan", None)
    if callable(told):
        told(**plan)


def _passes(run: _Extraction) -> list[list[_Slice]]:
    """Run the memory-budgeted passes (needed for exact RDMs): each pass holds its layers'
    activations for every image, then adds them to the Grams and projections."""
    import torch

    model, stimuli, config, states, axes = run.model, run.stimuli, run.config, run.states, run.axes
    layers, modules, progress = run.layers, run.modules, run.progress

    n = len(stimuli)
    on_device = _on_device(config.device)
    budget = pass_budget(config)
    passes = plan_by_need(layers, n, budget)
    largest = _largest(passes, n)  # bytes
    log.info(
        "%s: %d layers in %d passes of at most %.2f GiB",
        model.identifier, len(layers), len(passes), largest / 2**30,
    )  # fmt: skip
    _announce(progress, layers=len(layers), passes=len(passes), images=n)
    later = getattr(progress, "again", None)  # told the images of later passes, if it asks
    inputs = _Inputs(model, stimuli, config, keep=len(passes) > 1, budget=budget)
    floats = largest // 4
    arena = _DeviceArena(floats, config.device) if on_device else _Arena(floats)
    with _channels_last_pooling(model.module, config.device), _Hooks(modules) as hooks:
        for number, slices in enumerate(passes):
            capture = _PassCapture(slices, n, arena, axes)
            hooks.handler = capture
            for rows, batch in inputs:
                capture.rows = rows
                _forward(model, batch, hooks)
                if progress is not None and number == 0:
                    progress(rows.stop - rows.start)
                elif later is not None:
                    later(rows.stop - rows.start, number)
            _check_finite(model.identifier, slices, capture.buffers)
            for part in slices:
                state = states[part.layer]
                # (n, columns) as a transposed view of the feature-major buffer: the Gram's
                # BLAS product and the projection's sparse kernel take it without a copy
                block = torch.as_tensor(capture.buffers.pop(part.layer)).T
                if state.gram is not None:
                    state.gram.add(block)
                if state.projection is not None:
                    state.projection.add(block, part.start)
                for k in state.raw:
                    state.raw[k].append(
                        block.clone(memory_format=torch.contiguous_format)
                        if on_device
                        else block.numpy().copy()
                    )
                state.done += part.stop - part.start
                del block
            del capture
    del inputs
    arena.close()
    return passes


def _stream(run: _Extraction) -> int:
    """One forward pass over the stimuli when no RDM is asked for: every layer is held for a
    chunk of images at a time (as many as the memory budget allows, up to
    :data:`STREAM_IMAGES`, a multiple of the batch size) and projected chunk by chunk into
    the output's rows, so a smaller budget costs more, narrower sparse products instead of
    more forward passes. Returns the chunk size."""
    import torch

    model, stimuli, config, states, axes = run.model, run.stimuli, run.config, run.states, run.axes
    layers, modules, progress = run.layers, run.modules, run.progress

    n = len(stimuli)
    on_device = _on_device(config.device)
    total = sum(info.size for info in layers)
    chunk = stream_chunk(n, 4 * total, pass_budget(config), config.batch_size)
    for state in states.values():
        for parts in state.raw.values():
            shape = (n, state.info.size)
            if on_device:
                parts.append(torch.empty(shape, dtype=torch.float32, device=config.device))
            else:
                parts.append(np.empty(shape, dtype=np.float32))
    slices = [_Slice(info.name, 0, info.size) for info in layers]
    arena = _DeviceArena(chunk * total, config.device) if on_device else _Arena(chunk * total)
    capture = _PassCapture(slices, chunk, arena, axes)
    log.info("%s: %d layers, one pass in chunks of %d images", model.identifier, len(layers), chunk)
    _announce(progress, layers=len(layers), passes=1, images=n)

    def flush(start: int, stop: int) -> None:
        width = stop - start
        views = {name: buffer[:, :width] for name, buffer in capture.buffers.items()}
        _check_finite(model.identifier, slices, views)
        for name, view in views.items():
            state = states[name]
            block = torch.as_tensor(view).T  # (images, features), no copy
            if state.projection is not None:
                state.projection.add(block, 0, rows=slice(start, stop))
            for parts in state.raw.values():
                parts[0][start:stop] = block if on_device else block.numpy()

    start = 0
    with _channels_last_pooling(model.module, config.device), _Hooks(modules) as hooks:
        hooks.handler = capture
        for rows, batch in _Inputs(model, stimuli, config, keep=False, budget=0):
            if rows.stop - start > chunk:
                flush(start, rows.start)
                start = rows.start
            capture.rows = slice(rows.start - start, rows.stop - start)
            _forward(model, batch, hooks)
            if progress is not None:
                progress(rows.stop - rows.start)
        flush(start, n)
    arena.close()
    for state in states.values():
        state.done = state.info.size
    return chunk


def _host_columns(parts: list[Any]) -> np.ndarray:
    """Column blocks (numpy, or torch on a device) joined into one C-contiguous numpy array
    (a single host block, as a streamed extraction leaves it, is returned without a copy)."""
    if len(parts) == 1 and isinstance(parts[0], np.ndarray):
        return np.ascontiguousarray(parts[0])
    if parts and not isinstance(parts[0], np.ndarray):
        import torch

        return np.ascontiguousarray(torch.cat(parts, dim=1).cpu().numpy())
    return np.ascontiguousarray(np.concatenate(parts, axis=1))
