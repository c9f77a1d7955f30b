"""What counts as a layer, and the forward hooks that see every layer's output.

Every call of a leaf module (a module without children) during the forward pass is a layer,
in the order the calls happen; a module called twice gives two layers (the second named
``name:2``); the model's own output is a layer too. :func:`probe_layers` runs the first
images once to list the layers, their shapes and batch axes, and marks layers whose
activations repeat an earlier layer's or are one value everywhere.
:func:`layer_activations` returns full activations of a few named layers (small inputs).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainrank.core.errors import InputError
from brainrank.core.extraction.arenas import _on_device
from brainrank.core.specs import Model


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
