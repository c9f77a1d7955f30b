"""Every-layer features from a torch model, in memory-budgeted passes.

What counts as a layer: every call of a leaf module (a module without children) during the
forward pass, in the order the calls happen. A convolution and the ReLU after it are two
layers; a module called twice (torchvision's ResNet blocks call their ReLU twice) gives two
layers, the second named ``name:2``. Outputs are copied inside the forward hook, before any
later in-place operation (``ReLU(inplace=True)``, ``out += identity``) can change them.
Layers whose activations equal an earlier layer's (dropout at eval time, a flatten, a
pooling that changes nothing) are kept once, under the earlier name; layers whose output is
one value everywhere (a zero-initialised head of a random network) carry no information and
are left out (listed in ``info["constant_layers"]``). Both checks run on the first images.
The model's own output is a layer too (it may come from parameters used directly, not from a
leaf module). Outputs whose batch dimension comes second (sequence-first transformer layouts)
are read with the batch first; outputs without one row per image are not layers.

Per layer the extractor returns the sparse random projections the metrics asked for and,
when asked, the exact correlation-distance RDM. Without RDMs there is one pass: the layers
are held for a chunk of images (as many as ``memory_budget`` allows) and projected chunk by
chunk, so no layer need be held for all images. An exact RDM needs
every image's activations of a layer at once; they are held for one pass only: the layers are
grouped into passes over the stimuli so that a pass's activations fit ``memory_budget``; a
layer larger than the budget is split into column slices over several passes, which the
projection and the RDM accumulate exactly. A pass stops the forward computation after its
last layer. Projections of several sizes cost one product, with the largest: the smaller
ones are its leading components, rescaled (projections of one seed are nested).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainrank.core.errors import InputError
from brainrank.core.projection import SCHEME, SparseRandomProjection
from brainrank.core.rsa import GramAccumulator
from brainrank.core.scores import FeatureRequest, FeatureSet, LayerFeatures
from brainrank.core.specs import Model
from brainrank.core.stimuli import StimulusSet

log = logging.getLogger(__name__)


#: Bump when extraction semantics change (it is part of the feature cache key).
EXTRACTION_VERSION = "2"


@dataclass(frozen=True)
class ExtractionConfig:
    """How features are extracted.

    - ``batch_size``: images per forward pass.
    - ``memory_budget``: most bytes of full float32 activations held at once (default 4 GiB;
      see :func:`plan_by_need` for small stimulus sets).
    - ``projection_seed``: seed of the sparse random projection.
    - ``device``: torch device for the forward pass, the projections and the RDMs ("cpu",
      "cuda", "cuda:N", "mps"; see :func:`brainrank.core.backend.resolve_device`). Off the
      CPU, activations stay on the device: only the projections and RDMs come back, and
      passes are sized to ``memory_budget`` or half the device's free memory if less.
    """

    batch_size: int = 32
    memory_budget: int = 4 * 2**30
    projection_seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size}.")
        if self.memory_budget < 2**20:
            raise InputError(f"memory_budget must be at least 1 MiB, got {self.memory_budget}.")


@dataclass
class LayerInfo:
    """A layer found by the probe: its name, module name, output shape (per stimulus)."""

    name: str
    module: str
    shape: tuple[int, ...]
    size: int
    duplicate_of: str | None = None
    batch_axis: int = 0
    constant: bool = False  # one value everywhere on the probe images (e.g. a zeroed head)


class _StopForward(Exception):
    """Raised from a hook once a pass has captured its last layer."""


@dataclass
class _Slice:
    layer: str
    start: int
    stop: int


def leaf_modules(module: Any, only: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    """``[(name, module)]`` of every leaf module, or of the named modules in ``only``."""
    named = dict(module.named_modules())
    if only is not None:
        missing = [name for name in only if name not in named]
        if missing:
            raise InputError(
                f"the model has no modules named {missing}; some of its modules: "
                f"{[n for n in named if n][:10]}"
            )
        return [(name, named[name]) for name in only]
    leaves = [(name, m) for name, m in named.items() if not any(True for _ in m.children())]
    out = [(name or "output", m) for name, m in leaves]
    if any(True for _ in module.children()):
        # The model's own output is a layer too: it is not always the output of a leaf
        # module (CLIP's attention pooling and projections use their parameters directly).
        # Where it is, it repeats the last layer and is dropped as a duplicate.
        out.append(("output" if "output" not in named else "model_output", module))
    return out


def _first_tensor(output: Any):
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    return None


class _Hooks:
    """Forward hooks on the leaf modules that name each call and hand its output on."""

    def __init__(self, modules: list[tuple[str, Any]]):
        self.modules = modules
        self.handler: Callable[[str, str, Any], None] | None = None
        self.batch = 0  # images in the batch being run
        self._calls: dict[str, int] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> _Hooks:
        for name, module in self.modules:
            self._handles.append(module.register_forward_hook(self._make_hook(name)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def reset(self) -> None:
        self._calls.clear()

    def _make_hook(self, module_name: str):
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            count = self._calls.get(module_name, 0) + 1
            self._calls[module_name] = count
            tensor = _first_tensor(output)
            if tensor is None or not tensor.is_floating_point() or self.handler is None:
                return
            if tensor.ndim == 0 or self.batch not in tensor.shape[:2]:
                return  # not one row per image (e.g. a weight-like or pooled-over-batch value)
            name = module_name if count == 1 else f"{module_name}:{count}"
            self.handler(name, module_name, tensor)

        return hook


@contextlib.contextmanager
def _channels_last_pooling(root: Any, device: str) -> Iterator[None]:
    """On the CPU, 2-d max pooling runs on a channels-last copy of its input and hands back
    its output in the usual layout: the same values (a maximum is exact), and torch's
    channels-last kernel is much faster (measured here: 32 x 64 x 112 x 112, 0.185 s in
    the default layout vs 0.036 s channels-last; 3.6 s of alexnet's 1000-image pass).
    The hooks are put first, so every other hook sees the usual layout."""
    import torch

    if _on_device(device):
        yield
        return

    def before(_module: Any, inputs: Any) -> Any:
        x = inputs[0] if inputs else None
        if isinstance(x, torch.Tensor) and x.dim() == 4 and x.is_floating_point():
            return (x.contiguous(memory_format=torch.channels_last), *inputs[1:])
        return None

    def after(_module: Any, _inputs: Any, output: Any) -> Any:
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            return output.contiguous()
        return None

    handles = []
    try:
        for module in root.modules():
            if isinstance(module, torch.nn.MaxPool2d) and not module.return_indices:
                handles.append(module.register_forward_pre_hook(before, prepend=True))
                handles.append(module.register_forward_hook(after, prepend=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _batch_tensor(model: Model, images: list[np.ndarray], device: str):
    import torch

    tensors = [model.preprocess(image) for image in images]
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise InputError(
            f"the preprocessing of model {model.identifier!r} gave tensors of different shapes "
            f"{sorted(shapes)}; it must resize every image to the same size."
        )
    return torch.stack(tensors).to(device)


def _forward(model: Model, batch: Any, hooks: _Hooks) -> None:
    import torch

    hooks.reset()
    hooks.batch = int(batch.shape[0])
    with torch.inference_mode(), contextlib.suppress(_StopForward):
        model.module(batch)


def _rows_first(tensor: Any, axis: int):
    """``(batch, ...)`` view of a layer output whose batch dimension is ``axis`` (sequence-first
    transformer layouts put it second); flattened to ``(batch, features)``."""
    if axis:
        tensor = tensor.movedim(axis, 0)
    return tensor.reshape(tensor.shape[0], -1)


#: Images the probe runs to find the layers (and duplicated activations).
PROBE_IMAGES = 8


def probe_layers(model: Model, images: list[np.ndarray], device: str = "cpu") -> list[LayerInfo]:
    """Run one batch and list the layers in call order, marking duplicated activations."""
    on_device = _on_device(device)
    modules = leaf_modules(model.module, model.layers)
    found: list[LayerInfo] = []
    digests: dict[tuple[int, str], str] = {}

    batch = len(images)

    def handler(name: str, module_name: str, tensor: Any) -> None:
        axis = 0 if tensor.shape[0] == batch else 1
        flat = _rows_first(tensor.detach(), axis).float()
        if on_device:
            digest = _fingerprint(flat)
        else:
            flat = flat.contiguous()
            digest = hashlib.sha1(flat.numpy().tobytes()).hexdigest()
        shape = tuple(s for i, s in enumerate(tensor.shape) if i != axis)
        info = LayerInfo(name, module_name, shape, int(flat.shape[1]), batch_axis=axis)
        info.constant = bool(flat.numel()) and bool((flat == flat.reshape(-1)[0]).all())
        info.duplicate_of = digests.get((info.size, digest))
        if info.duplicate_of is None:
            digests[(info.size, digest)] = name
        found.append(info)

    model.module.eval().to(device)
    with _Hooks(modules) as hooks:
        hooks.handler = handler
        _forward(model, _batch_tensor(model, images, device), hooks)
    if not found:
        raise InputError(
            f"model {model.identifier!r} produced no floating-point layer outputs; check its "
            "module and its `layers` list."
        )
    return found


def _fingerprint(flat: Any) -> str:
    """A digest of a layer's probe activations computed where they are (no copy to the host):
    per image, the float64 sum and a position-weighted float64 sum. Different activations of
    one size agree on all of these only by construction, never by chance in practice."""
    import torch

    dtype = torch.float32 if flat.device.type == "mps" else torch.float64  # mps: no float64
    x = flat.to(dtype)
    weights = torch.arange(x.shape[1], device=x.device, dtype=dtype) % 997 + 1
    sums = torch.cat([x.sum(dim=1), x @ weights]).cpu().numpy()
    return hashlib.sha1(sums.tobytes()).hexdigest()


#: Tests set this to run the device code path (torch tensors throughout) on the CPU.
_FORCE_DEVICE_PATH = False


def _on_device(device: str) -> bool:
    """Whether activations are held as torch tensors on ``device`` (any device but the CPU,
    where a numpy arena is faster to allocate and fill)."""
    return device != "cpu" or _FORCE_DEVICE_PATH


#: Share of a GPU's free memory that one pass's activations may take.
DEVICE_MEMORY_SHARE = 0.5


def pass_budget(config: ExtractionConfig) -> int:
    """Bytes of activations one pass may hold: ``memory_budget``, and on a CUDA device at
    most :data:`DEVICE_MEMORY_SHARE` of its free memory."""
    budget = config.memory_budget
    if config.device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(config.device))
        budget = min(budget, max(2**20, int(free * DEVICE_MEMORY_SHARE)))
    return budget


def plan_passes(layers: list[LayerInfo], n: int, budget: int) -> list[list[_Slice]]:
    """Group layers (in order) into passes whose float32 activations fit ``budget`` bytes."""
    passes: list[list[_Slice]] = []
    current: list[_Slice] = []
    used = 0
    columns_per_budget = max(1, budget // (4 * n))
    for layer in layers:
        need = 4 * n * layer.size
        if need <= budget:
            if used + need > budget and current:
                passes.append(current)
                current, used = [], 0
            current.append(_Slice(layer.name, 0, layer.size))
            used += need
            continue
        if current:
            passes.append(current)
            current, used = [], 0
        for start in range(0, layer.size, columns_per_budget):
            passes.append([_Slice(layer.name, start, min(layer.size, start + columns_per_budget))])
    if current:
        passes.append(current)
    return passes


def plan_balanced(layers: list[LayerInfo], n: int, budget: int) -> list[list[_Slice]]:
    """:func:`plan_passes` with the fewest passes ``budget`` allows, each as small as that
    number allows: memory by need (two passes over 4.5 GiB hold ~2.3 GiB each, not 4 + 0.5)."""
    passes = plan_passes(layers, n, budget)
    if len(passes) < 2:
        return passes
    low = -(-4 * n * sum(layer.size for layer in layers) // len(passes))
    balanced = plan_passes(layers, n, _smallest_budget(layers, n, low, budget, len(passes)))
    return balanced if len(balanced) <= len(passes) else passes


def _smallest_budget(layers: list[LayerInfo], n: int, low: int, high: int, most: int) -> int:
    """The smallest budget above ``low``, to within ``high / 64`` (a few percent above the
    smallest is enough), whose plan needs at most ``most`` passes (``high``'s does)."""
    while high - low > high // 64:
        middle = (low + high) // 2
        if len(plan_passes(layers, n, middle)) <= most:
            high = middle
        else:
            low = middle
    return high


#: Images that a plan chosen by :func:`plan_by_need` may run through the model beyond those of
#: the budget's fewest passes, to hold less memory at once.
SPARE_IMAGES = 400

#: Pass buffers below this size are not worth more passes: every pass also pays a fixed cost
#: per layer (4 images through the 698 layers of inception_resnet_v2 with RDMs: 14.0 s in
#: one pass of 0.8 GB, 15.9 s in four).
SMALLEST_PASS_BYTES = 2**30


def plan_by_need(layers: list[LayerInfo], n: int, budget: int) -> list[list[_Slice]]:
    """The passes of the smallest buffer (at least :data:`SMALLEST_PASS_BYTES`) that needs at
    most ``SPARE_IMAGES // n`` passes more than the fewest ``budget`` allows: memory by need,
    ``budget`` being the most a pass may hold.

    A brainrank choice, measured on a 2-core VM: extra passes over few images cost little
    (the early ones stop at the large early layers), over many they cost a lot. resnet18
    with RDMs on 200 images took 15-17 s wall / 26-28 s CPU in 2 passes of 2.3 GiB, 17-19 s
    / 29-32 s in 4 of 1.2 GiB, 19 s / 33 s in 6 of 0.9 GiB (peak RSS 4.1-4.2, 3.0-3.1 and
    2.8 GB); ``make run`` from cold, A/B: 95-103 s CPU and 4.5 GB with 2 passes, 105-107 s
    and 3.3-3.4 GB with 4. On 1000 images, 27 passes of 1 GiB instead of 7 at 4 GiB cost
    587 s of CPU instead of 305 s. So the extra passes are bounded by the images they run
    again: 2 more on 200 images, 1 on 400, none above. Plans of whole layers give the same
    values whatever their grouping; column slices of a layer larger than the buffer sum in
    another order (within float32 rounding).
    """
    passes = plan_balanced(layers, n, budget)
    extra = SPARE_IMAGES // max(1, n)
    if not extra or budget <= SMALLEST_PASS_BYTES:
        return passes
    allowed = len(passes) + extra
    if len(plan_passes(layers, n, SMALLEST_PASS_BYTES)) <= allowed:
        high = SMALLEST_PASS_BYTES
    else:
        high = _smallest_budget(layers, n, SMALLEST_PASS_BYTES, budget, allowed)
    smaller = plan_balanced(layers, n, high)
    return smaller if _largest(smaller, n) < _largest(passes, n) else passes


def _largest(passes: list[list[_Slice]], n: int) -> int:
    """Bytes of the largest pass of a plan."""
    return max(4 * n * sum(p.stop - p.start for p in slices) for slices in passes)


class _Arena:
    """One float32 allocation reused by every pass, its pages mapped up front.

    Faulting fresh pages in one by one as the hooks first write them costs more than the
    copies themselves (measured on a 2-core VM: 3-6 s for 4.4 GB, against 1.9 s mapped with
    ``MAP_POPULATE`` and 0.3 s to write touched memory). Transparent huge pages were slower
    still there (15 s, the kernel compacting memory to find them), so they are not asked for.
    """

    def __init__(self, n_floats: int):
        import mmap

        size = max(4, 4 * n_floats)
        populate = getattr(mmap, "MAP_POPULATE", 0)
        if populate and hasattr(mmap, "MAP_ANONYMOUS"):
            flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate
            self._map = mmap.mmap(-1, size, flags=flags)
        else:
            self._map = mmap.mmap(-1, size)
        self.data = np.frombuffer(self._map, dtype=np.float32)

    def views(self, n: int, widths: list[int]) -> list[Any]:
        """Feature-major buffers, ``(width, n)`` each: a layer's columns are its rows, so the
        sparse projection reads them as they are (its kernel wants ``X^T`` contiguous; a
        transposed copy of a whole layer after the pass cost 0.6 s per 200 x 800k layer,
        writing each batch transposed in the hook 0.01 s more than a plain copy)."""
        out, offset = [], 0
        for width in widths:
            out.append(self.data[offset : offset + n * width].reshape(width, n))
            offset += n * width
        return out

    def close(self) -> None:
        self.data = None  # type: ignore[assignment]
        with contextlib.suppress(BufferError):
            self._map.close()


class _DeviceArena(_Arena):
    """The pass buffers as one float32 torch tensor on the extraction device (its views are
    :class:`_Arena`'s: a reshape of a contiguous slice is a view in torch as in numpy)."""

    def __init__(self, n_floats: int, device: str):
        import torch

        self.data = torch.empty(max(1, n_floats), dtype=torch.float32, device=device)

    def close(self) -> None:
        self.data = None


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
    accumulator, in the same passes).
    ``progress(n_images)`` is called after every batch.

    Without RDMs the layers are projected chunk of images by chunk in one pass (see
    :func:`_stream`); with them, layers are held for all images in memory-budgeted passes.
    """
    config = config or ExtractionConfig()
    n = len(stimuli)
    if n < 2:
        raise InputError("feature extraction needs at least 2 stimuli.")
    n_probe = min(n, config.batch_size, PROBE_IMAGES)
    first = [stimuli.image(s) for s in stimuli.stimulus_ids[:n_probe]]
    infos = probe_layers(model, first, config.device)
    layers = [info for info in infos if info.duplicate_of is None and not info.constant]
    duplicates = {info.name: info.duplicate_of for info in infos if info.duplicate_of}
    constant = [info.name for info in infos if info.constant and info.duplicate_of is None]
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
        exact = request.rdm or request.gram
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

    modules = leaf_modules(model.module, model.layers)
    run = _Extraction(model, stimuli, config, states, axes, layers, modules, progress)
    if not (request.rdm or request.gram):
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
            )
        )
        states[info.name] = None  # type: ignore[assignment]  # free the accumulators
    return FeatureSet(
        model=model.identifier,
        stimulus_ids=stimuli.stimulus_ids,
        layers=out_layers,
        info={
            "duplicates": duplicates,
            "constant_layers": constant,
            "passes": n_passes,
            "images_per_chunk": chunk,
            "projection_seed": config.projection_seed,
            "projection_scheme": SCHEME,
            "projection_dims": sorted(request.projection_dims),
            "rdm": request.rdm,
            "gram": request.gram,
            "extraction_version": EXTRACTION_VERSION,
        },
    )


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


#: Most images per chunk of a streamed extraction. Wider chunks only cost memory: the
#: sparse products' time is per image (alexnet, 1000 images, whole run of `srp-ridge:nsd`:
#: 52-55 s and 2.85 GB in chunks of 200, 49-57 s and 4.1 GB in chunks of 500).
STREAM_IMAGES = 256


def stream_chunk(
    n: int, bytes_per_image: int, budget: int, batch_size: int, most: int = STREAM_IMAGES
) -> int:
    """Images per chunk of a streamed extraction: all ``n`` when they fit ``budget`` and
    ``most``, else the fewest chunks that fit both (each a multiple of the batch size, at
    least one batch), made as equal as that allows (so 1000 images that need 1.1 budgets
    go in 2 chunks of 500, not 950 + 50)."""
    fit = max(1, min(budget // max(1, bytes_per_image), most))
    if fit >= n:
        return n
    fit = max(batch_size, fit // batch_size * batch_size)
    chunks = math.ceil(n / fit)
    return min(fit, math.ceil(math.ceil(n / chunks) / batch_size) * batch_size)


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


def layer_activations(
    model: Model, images: list[np.ndarray], layers: Sequence[str], device: str = "cpu"
) -> dict[str, np.ndarray]:
    """Full flattened activations ``(n_images, p)`` of the named layers (small inputs only;
    the simulated dataset uses it to build its ground truth)."""
    wanted = set(layers)
    captured: dict[str, list[np.ndarray]] = {name: [] for name in layers}

    def handler(name: str, _module: str, tensor: Any) -> None:
        if name in wanted:
            axis = 0 if tensor.shape[0] == hooks.batch else 1
            captured[name].append(_rows_first(tensor.detach(), axis).float().cpu().numpy().copy())

    model.module.eval().to(device)
    with _Hooks(leaf_modules(model.module, model.layers)) as hooks:
        hooks.handler = handler
        for start in range(0, len(images), 32):
            _forward(model, _batch_tensor(model, images[start : start + 32], device), hooks)
    missing = [name for name in layers if not captured[name]]
    if missing:
        raise InputError(f"model {model.identifier!r} has no layers named {missing}.")
    return {name: np.concatenate(parts) for name, parts in captured.items()}


def state_dict_hash(module: Any) -> str:
    """sha256 over a module's state dict (names, shapes, dtypes and values)."""
    import torch

    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        # the tensor's bytes hashed in place: no copy of the weights
        h.update(t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b"")
    return h.hexdigest()
