"""What counts as a layer, and the forward hooks that see every layer's output.

**Layers.** Every call of a leaf module (a module without children) during the forward pass
is a layer, in the order the calls happen; a module called twice gives two layers (the
second named ``name:2``); the model's own output is a layer too. Attention adds its
sub-operations, which no leaf module outputs (the NSD paper counts "the key - query - value
computation" among a transformer's layers): for every ``nn.MultiheadAttention`` (torchvision's
and open_clip's ViTs), timm's ``Attention`` (timm's ViTs, DeiT, DINO, SLIP) and open_clip's own
``Attention``, the query, key and value projections are layers ``ATTN.q``, ``ATTN.k``,
``ATTN.v`` (``(tokens, width)`` per image, heads side by side, before any scaling), and the
attention output is a layer (``ATTN`` for ``nn.MultiheadAttention``, whose output projection
is not a module call; the output projection ``ATTN.proj`` / ``ATTN.out_proj`` for the
others). They are computed from the module's own inputs and weights beside the forward pass
(by a pre-hook with ``torch.nn.functional.linear``, or by slicing timm's fused ``qkv``
output), so the module's numbers do not change (tests hold its outputs bit for bit); a
pass computes them only when it keeps them. timm's ``q_norm`` / ``k_norm`` are layers only
when they normalise (as identities they would repeat ``q`` and ``k`` in another layout).

**Which layers** (:class:`LayerSelection`, ``--layers`` / ``ExtractionConfig.layers``):

- ``all`` (default): every layer above.
- ``blocks``: the outputs of the architecture's blocks, and the model's output. The generic
  rule: a block is a module with sub-modules that is an item of an ``nn.Sequential`` or
  ``nn.ModuleList`` holding at least two such items (a ResNet stage's ``BasicBlock`` /
  ``Bottleneck``, a ViT's encoder blocks, timm's ``blocks.N``, open_clip's ``resblocks.N``,
  a DenseNet's dense blocks and transitions, an MLP-Mixer's blocks); where such modules
  nest, the innermost (a stage of blocks gives its blocks, so ConvNeXt, Swin and
  EfficientNet give their blocks, not their stages). Per-family overrides
  (:data:`BLOCK_CLASSES`): torchvision's inverted residuals (MobileNet v2/v3, MNASNet,
  ShuffleNet v2), EfficientNet's MBConv / FusedMBConv, RegNet's bottlenecks and the
  Inception modules of GoogLeNet and Inception v3 are blocks wherever they sit, and nothing
  inside them is (their insides hold sequences of convolution units that the generic rule
  would take for blocks). Stems and downsampling stages that are sequence items count as
  blocks too (MobileNet's first and last convolutions, ConvNeXt's downsampling). A
  network with no blocks by these rules (AlexNet, VGG: plain sequences of layers) gives the
  outputs of its activation functions and poolings, the end of each stage.
- ``PATTERN``: shell patterns, comma-separated, over layer names (``fnmatch``; ``*``
  crosses dots): every layer of ``all`` and the output of any module with sub-modules whose
  name matches (``layer4.*`` selects everything under ``layer4``; ``layer?.?`` a ResNet's
  block outputs; ``*.q,*.k,*.v`` the queries, keys and values). A pattern that matches no
  layer is an error that lists some names.

**Repeated layers** (``ExtractionConfig.aliases``), checked on the probe images:

- ``exact`` (default): a layer whose activations equal an earlier selected layer's (dropout
  at eval time, a flatten, an identity, a block's output after its last ReLU) is kept once,
  under the earlier name (listed in ``info["duplicates"]``). This is how the NSD paper's
  code counts layers (DeepNSD ``model_opts/feature_extraction.py``,
  ``remove_duplicate_feature_maps``): a convolution and the batch norm after it are two
  layers. (That code also takes the output of every module with sub-modules other than a
  ``Sequential`` or ``ModuleList``, such as a ViT block's residual sum, which no leaf
  outputs; ``all`` does not, a pattern naming those modules does.)
- ``affine``: also a layer whose every feature is an affine map of the same feature of one
  of the :data:`AFFINE_WINDOW` previous kept layers (``y_f = a_f x_f + b_f``, ``a_f != 0``:
  eval-mode batch norm after a convolution, a LayerScale) is kept once, the alias listed in
  ``info["affine_aliases"]``. Only scores that standardise every raw feature before a linear
  read-out are invariant to such a map (a ridge or PLS on z-scored full activations). The
  correlation-distance RDM is not (a per-channel scale re-weights the features each
  image pattern correlates over), nor are scores on sparse random projections of the raw
  features (srp-ridge, veRSA) or linear CKA: with those, an ``affine`` run keeps one of two
  layers that score differently. It needs at least :data:`AFFINE_MIN_IMAGES` probe images.

Layers whose output is one value everywhere on the probe images carry no information and
are left out (``info["constant_layers"]``).

:func:`probe_layers` runs the first images once to list the selected layers, their shapes
and batch axes, and marks repeats and constant layers (:func:`kept_layers` splits them
off); :func:`hooked_modules` lists what the hooks attach to; :func:`layer_activations`
returns full activations of a few named layers (small inputs).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainrank.core.errors import InputError
from brainrank.core.extraction.arenas import _on_device
from brainrank.core.specs import Model

# --------------------------------------------------------------------------- the selection

#: the ``layers`` choices that are not patterns
LAYER_CHOICES: tuple[str, ...] = ("all", "blocks")
#: the ``aliases`` choices (see the module docstring)
ALIAS_CHOICES: tuple[str, ...] = ("exact", "affine")
#: previous kept layers an ``affine`` alias is looked for among
AFFINE_WINDOW = 3
#: fewest probe images on which an affine relation between two layers is looked for (on 2,
#: any two varying features are affinely related)
AFFINE_MIN_IMAGES = 4
#: version of the attention sub-layers (q, k, v, attention output). Part of the plan hash
#: and feature key of the families that have attention (:data:`ATTENTION_FAMILIES`), so
#: their stored rows (made before these layers existed) are scored again once, and no
#: other model's key changes.
ATTENTION_LAYERS_VERSION = "1"
#: model families (:data:`brainrank.core.taxonomy.FAMILIES`) whose networks have attention
ATTENTION_FAMILIES: tuple[str, ...] = ("transformer", "hybrid")


@dataclass(frozen=True)
class LayerSelection:
    """Which layers an extraction keeps: ``all``, ``blocks`` or shell ``patterns`` (see
    the module docstring). ``name in selection`` says whether a layer name is selected."""

    kind: str = "all"
    patterns: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str | LayerSelection | None) -> LayerSelection:
        """``"all"``, ``"blocks"`` or comma-separated shell patterns; raises
        :class:`~brainrank.core.errors.InputError` for an empty or malformed value."""
        if isinstance(value, LayerSelection):
            return value
        text = "all" if value is None else str(value).strip()
        if text in LAYER_CHOICES:
            return cls(text)
        patterns = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
        if not patterns:
            raise InputError(
                f"layers {value!r} selects nothing: give 'all' (every layer), 'blocks' (the "
                "architecture's blocks) or shell patterns over layer names, comma-separated "
                "(e.g. 'layer4.*,avgpool')."
            )
        bad = [p for p in patterns if any(ch.isspace() for ch in p)]
        if bad:
            raise InputError(
                f"layer patterns cannot hold spaces: {bad}; separate patterns with commas."
            )
        if set(patterns) & set(LAYER_CHOICES):
            raise InputError(
                f"layers {value!r} mixes {sorted(set(patterns) & set(LAYER_CHOICES))} with "
                "patterns; give 'all', 'blocks' or patterns alone."
            )
        return cls("patterns", patterns)

    @property
    def key(self) -> str:
        """The canonical text of the selection (patterns sorted: their order selects the
        same layers): what plan hashes and feature keys record of it."""
        if self.kind != "patterns":
            return self.kind
        return ",".join(sorted(self.patterns))

    def __contains__(self, name: object) -> bool:
        if self.kind != "patterns":
            return True
        return any(fnmatch.fnmatchcase(str(name), p) for p in self.patterns)

    def unmatched(self, names: Sequence[str]) -> list[str]:
        """The patterns that select none of ``names``."""
        return [p for p in self.patterns if not any(fnmatch.fnmatchcase(n, p) for n in names)]


def check_aliases(aliases: str) -> str:
    """``aliases`` checked against :data:`ALIAS_CHOICES`."""
    if aliases not in ALIAS_CHOICES:
        raise InputError(
            f"aliases must be one of {list(ALIAS_CHOICES)}, got {aliases!r}: 'exact' keeps "
            "a layer that repeats an earlier one once; 'affine' also one that is a per-feature "
            "affine map of an earlier one (see brainrank.core.extraction.layers)."
        )
    return aliases


def layer_policy_key(
    layers: str | LayerSelection, aliases: str, family: str | None, attention: bool = False
) -> dict:
    """What the layer policy adds to a plan hash and a feature key: the selection and the
    alias rule where they are not the defaults, and the version of the attention sub-layers
    for the families that have attention (a plan hash knows the family only; a feature key
    also whether the built network has such modules: ``attention``). Nothing for the default
    on other networks, so their keys are what they were before the policy existed."""
    parts: dict[str, str] = {}
    selection = LayerSelection.parse(layers)
    if selection.kind != "all":
        parts["layers"] = selection.key
    if aliases != "exact":
        parts["aliases"] = check_aliases(aliases)
    if family in ATTENTION_FAMILIES or attention:
        parts["attention_layers"] = ATTENTION_LAYERS_VERSION
    return parts


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
    #: an earlier kept layer this one is a per-feature affine map of (``aliases="affine"``)
    affine_of: str | None = None


def kept_layers(infos: Sequence[LayerInfo]) -> tuple[list[LayerInfo], dict[str, Any]]:
    """The probed layers to extract, and what a feature set's ``info`` records of the
    others: ``duplicates`` (exact repeats -> the earlier layer), ``affine_aliases``
    (affine maps -> the earlier layer) and ``constant_layers``."""
    kept = [i for i in infos if i.duplicate_of is None and i.affine_of is None and not i.constant]
    return kept, {
        "duplicates": {i.name: i.duplicate_of for i in infos if i.duplicate_of},
        "affine_aliases": {i.name: i.affine_of for i in infos if i.affine_of},
        "constant_layers": [i.name for i in infos if i.constant and i.duplicate_of is None],
    }


class _StopForward(Exception):
    """Raised from a hook once a pass has captured its last layer."""


# --------------------------------------------------------------------------- modules


def _has_children(module: Any) -> bool:
    return any(True for _ in module.children())


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
    leaves = [(name, m) for name, m in named.items() if not _has_children(m)]
    out = [(name or "output", m) for name, m in leaves]
    if _has_children(module):
        # The model's own output is a layer too: it is not always the output of a leaf
        # module (CLIP's attention pooling and projections use their parameters directly).
        # Where it is, it repeats the last layer and is dropped as a duplicate.
        out.append((_output_name(named), module))
    return out


def _output_name(named: dict[str, Any]) -> str:
    return "output" if "output" not in named else "model_output"


def _qualname(module: Any) -> str:
    kind = type(module)
    return f"{kind.__module__}.{kind.__qualname__}"


#: Attention modules whose fused ``qkv`` linear layer is called as a module and laid out
#: ``[q | k | v]`` along its last dimension (timm's ViT attention, also DeiT, DINO, SLIP).
FUSED_QKV_CLASSES: frozenset[str] = frozenset({"timm.layers.attention.Attention"})
#: Attention modules that project their one input with ``in_proj_weight`` / ``in_proj_bias``
#: (``[q | k | v]`` rows) by ``F.linear`` (open_clip's own attention)
IN_PROJ_CLASSES: frozenset[str] = frozenset({"open_clip.transformer.Attention"})
#: Per-family overrides of the generic block rule: instances of these classes are blocks
#: wherever they sit, and nothing inside them is.
BLOCK_CLASSES: frozenset[str] = frozenset(
    {
        "torchvision.models.mobilenetv2.InvertedResidual",
        "torchvision.models.mobilenetv3.InvertedResidual",
        "torchvision.models.shufflenetv2.InvertedResidual",
        "torchvision.models.mnasnet._InvertedResidual",
        "torchvision.models.efficientnet.MBConv",
        "torchvision.models.efficientnet.FusedMBConv",
        "torchvision.models.regnet.ResBottleneckBlock",
        "torchvision.models.googlenet.Inception",
        *(f"torchvision.models.inception.Inception{x}" for x in "ABCDE"),
    }
)


def block_modules(root: Any) -> list[tuple[str, Any]]:
    """``[(name, module)]`` of the architecture's blocks in module order (the generic rule
    and :data:`BLOCK_CLASSES`; see the module docstring); empty when it has none."""
    import torch

    named = list(root.named_modules())
    overridden = [name for name, m in named if name and _qualname(m) in BLOCK_CLASSES]

    def inside_override(name: str) -> bool:
        return any(name.startswith(o + ".") for o in overridden)

    candidates: set[str] = set(overridden)
    for name, module in named:
        if not isinstance(module, (torch.nn.Sequential, torch.nn.ModuleList)):
            continue
        items = [
            f"{name}.{key}" if name else key
            for key, child in module.named_children()
            if _has_children(child)
        ]
        if len(items) >= 2:
            candidates.update(i for i in items if not inside_override(i))
    innermost = {
        c
        for c in candidates
        if c in overridden or not any(o.startswith(c + ".") for o in candidates)
    }
    return [(name, m) for name, m in named if name in innermost]


def _stage_ends(root: Any) -> list[tuple[str, Any]]:
    """The activation functions and poolings of a network without blocks (the end of each
    stage of a plain sequence of layers)."""
    import torch.nn.modules.activation as activation
    import torch.nn.modules.pooling as pooling

    kinds = {m.__name__ for m in (activation, pooling)}
    return [
        (name, m)
        for name, m in root.named_modules()
        if name and not _has_children(m) and type(m).__module__ in kinds
    ]


@dataclass
class _Hooked:
    """A module the hooks attach to, and what they take from it: ``output`` (its output,
    as ``name``), ``mha`` (an ``nn.MultiheadAttention``: q, k, v from its inputs, and its
    output), ``qkv`` (timm's fused projection: its output and its q, k, v thirds, named
    after ``parent``) or ``in_proj`` (open_clip's attention: q, k, v from its input)."""

    name: str
    module: Any
    kind: str = "output"
    parent: str = ""
    virtual: tuple[str, ...] = field(default_factory=tuple)  # the q, k, v layer names


def hooked_modules(
    root: Any, only: Sequence[str] | None = None, layers: str | LayerSelection = "all"
) -> list[_Hooked]:
    """What the hooks attach to for a layer selection (see the module docstring). A model
    that names its modules (``only``, :attr:`Model.layers`) is hooked at those modules
    alone (their outputs; the selection then picks among them)."""
    import torch

    selection = LayerSelection.parse(layers)
    if only is not None:
        return [_Hooked(name, m) for name, m in leaf_modules(root, only)]
    named = dict(root.named_modules())
    if not _has_children(root):  # a network that is one leaf module: its output, the layer
        return [_Hooked("output", root)]
    output = [_Hooked(_output_name(named), root)]
    if selection.kind == "blocks":
        blocks = block_modules(root) or _stage_ends(root)
        return [*(_Hooked(name, m) for name, m in blocks), *output]
    hooked: list[_Hooked] = []
    skip: set[str] = set()
    fused: dict[str, str] = {}  # qkv module name -> its attention module's name
    for name, module in named.items():
        if not name:
            continue
        qualname = _qualname(module)
        if isinstance(module, torch.nn.MultiheadAttention):
            hooked.append(_Hooked(name, module, "mha", name, _qkv_names(name)))
            skip.add(f"{name}.out_proj")  # not called as a module: never a layer
        elif qualname in IN_PROJ_CLASSES and isinstance(
            getattr(module, "in_proj_weight", None), torch.Tensor
        ):
            hooked.append(_Hooked(name, module, "in_proj", name, _qkv_names(name)))
            skip.update(_identity_children(module, name, ("ln_q", "ln_k")))
        elif (
            qualname in FUSED_QKV_CLASSES
            and isinstance(getattr(module, "qkv", None), torch.nn.Linear)
            and module.qkv.out_features % 3 == 0
        ):
            fused[f"{name}.qkv"] = name
            skip.update(_identity_children(module, name, ("q_norm", "k_norm")))
    for name, module in named.items():
        if not name or name in skip:
            continue
        leaf = not _has_children(module)
        if name in fused:
            hooked.append(_Hooked(name, module, "qkv", fused[name], _qkv_names(fused[name])))
        elif leaf:
            hooked.append(_Hooked(name, module))
        elif (
            selection.kind == "patterns"
            and name in selection
            and not any(h.name == name and h.kind == "mha" for h in hooked)
        ):
            hooked.append(_Hooked(name, module))  # a module with children, named by a pattern
    return [*hooked, *output]


def _qkv_names(parent: str) -> tuple[str, ...]:
    return (f"{parent}.q", f"{parent}.k", f"{parent}.v")


def _identity_children(module: Any, name: str, children: Sequence[str]) -> list[str]:
    """The named children of ``module`` that are identities (a query or key 'norm' that
    does nothing repeats the query or key in another layout)."""
    import torch

    return [
        f"{name}.{child}"
        for child in children
        if isinstance(getattr(module, child, None), torch.nn.Identity)
    ]


# --------------------------------------------------------------------------- hooks


def _first_tensor(output: Any):
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    return None


def _mha_qkv(mha: Any, args: tuple, kwargs: dict) -> tuple[Any, Any, Any] | None:
    """The query, key and value projections of an ``nn.MultiheadAttention`` call, batch
    first ``(batch, tokens, width)``, computed from its inputs and weights as its forward
    computes them (before the scaling of the query); None for unbatched inputs."""
    import torch.nn.functional as F

    names = ("query", "key", "value")
    inputs = [args[i] if i < len(args) else kwargs.get(n) for i, n in enumerate(names)]
    if any(x is None or x.dim() != 3 for x in inputs):
        return None
    width = mha.embed_dim
    if mha._qkv_same_embed_dim:
        w = mha.in_proj_weight
        weights = (w[:width], w[width : 2 * width], w[2 * width :])
    else:
        weights = (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight)
    b = mha.in_proj_bias
    biases = (None,) * 3 if b is None else (b[:width], b[width : 2 * width], b[2 * width :])
    out = []
    for x, w, bias in zip(inputs, weights, biases, strict=True):
        y = F.linear(x, w, bias)
        out.append(y if mha.batch_first else y.transpose(0, 1))
    return out[0], out[1], out[2]


class _Hooks:
    """Forward hooks on the hooked modules that name each call and hand its output on.

    ``modules``: :class:`_Hooked` items or ``(name, module)`` pairs (module outputs). The
    attention sub-layers (q, k, v) are computed only when the handler keeps them: a handler
    with a ``wanted`` attribute (a container of layer names) gets only those; one without
    gets all."""

    def __init__(self, modules: Sequence[_Hooked | tuple[str, Any]]):
        self.modules = [m if isinstance(m, _Hooked) else _Hooked(m[0], m[1]) for m in modules]
        self.handler: Callable[[str, str, Any], None] | None = None
        self.batch = 0  # images in the batch being run
        self._calls: dict[str, int] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> _Hooks:
        for item in self.modules:
            if item.kind in ("mha", "in_proj"):
                self._handles.append(
                    item.module.register_forward_pre_hook(
                        self._make_pre_hook(item), with_kwargs=True
                    )
                )
            if item.kind != "in_proj":
                self._handles.append(item.module.register_forward_hook(self._make_hook(item)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def reset(self) -> None:
        self._calls.clear()

    def _count(self, name: str) -> int:
        count = self._calls.get(name, 0) + 1
        self._calls[name] = count
        return count

    def _emit(self, name: str, module_name: str, tensor: Any) -> None:
        if tensor is None or not tensor.is_floating_point() or self.handler is None:
            return
        if tensor.ndim == 0 or self.batch not in tensor.shape[:2]:
            return  # not one row per image (e.g. a weight-like or pooled-over-batch value)
        self.handler(name, module_name, tensor)

    def _wanted(self, names: Sequence[str]) -> bool:
        wanted = getattr(self.handler, "wanted", None)
        return self.handler is not None and (wanted is None or any(n in wanted for n in names))

    def _emit_qkv(self, item: _Hooked, count: int, q: Any, k: Any, v: Any) -> None:
        suffix = "" if count == 1 else f":{count}"
        for name, tensor in zip(item.virtual, (q, k, v), strict=True):
            self._emit(name + suffix, item.parent, tensor)

    def _make_pre_hook(self, item: _Hooked):
        def pre_hook(module: Any, args: tuple, kwargs: dict) -> None:
            count = self._count(item.name)
            suffix = "" if count == 1 else f":{count}"
            if not self._wanted([n + suffix for n in item.virtual]):
                return None
            if item.kind == "mha":
                qkv = _mha_qkv(module, args, kwargs)
            else:
                import torch.nn.functional as F

                x = args[0] if args else kwargs.get("x")
                qkv = F.linear(x, module.in_proj_weight, module.in_proj_bias).chunk(3, dim=-1)
            if qkv is not None:
                self._emit_qkv(item, count, *qkv)
            return None

        return pre_hook

    def _make_hook(self, item: _Hooked):
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            # a pre-hooked module's call was counted by its pre-hook
            count = self._calls[item.name] if item.kind == "mha" else self._count(item.name)
            name = item.name if count == 1 else f"{item.name}:{count}"
            self._emit(name, item.name, _first_tensor(output))
            if item.kind == "qkv" and isinstance(output, _torch_tensor()):
                suffix = "" if count == 1 else f":{count}"
                if self._wanted([n + suffix for n in item.virtual]):
                    self._emit_qkv(item, count, *output.chunk(3, dim=-1))

        return hook


def _torch_tensor() -> type:
    import torch

    return torch.Tensor


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


class _Selected:
    """The probe's view of a selection: the names it keeps (``in``)."""

    def __init__(self, selection: LayerSelection):
        self.selection = selection

    def __contains__(self, name: object) -> bool:
        return name in self.selection


def probe_layers(
    model: Model,
    images: list[np.ndarray],
    device: str = "cpu",
    layers: str | LayerSelection = "all",
    aliases: str = "exact",
) -> list[LayerInfo]:
    """Run one batch and list the selected layers in call order, marking repeated (and,
    with ``aliases="affine"``, affinely mapped) activations and constant layers."""
    on_device = _on_device(device)
    selection = LayerSelection.parse(layers)
    affine = check_aliases(aliases) == "affine" and len(images) >= AFFINE_MIN_IMAGES
    modules = hooked_modules(model.module, model.layers, selection)
    found: list[LayerInfo] = []
    seen: list[str] = []  # every layer name the forward pass gave, selected or not
    digests: dict[tuple[int, str], str] = {}
    recent: deque[tuple[str, Any, Any]] = deque(maxlen=AFFINE_WINDOW)  # (name, z, constant)

    batch = len(images)

    def handler(name: str, module_name: str, tensor: Any) -> None:
        seen.append(name)
        if name not in selection:
            return
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
        if affine and info.duplicate_of is None and not info.constant:
            z, constant = _standardised(flat)
            info.affine_of = next(
                (old for old, z_old, c_old in recent if _affine_image(z, constant, z_old, c_old)),
                None,
            )
            if info.affine_of is None:
                recent.append((name, z, constant))
        found.append(info)

    handler.wanted = _Selected(selection)  # type: ignore[attr-defined]
    model.module.eval().to(device)
    with _Hooks(modules) as hooks:
        hooks.handler = handler
        _forward(model, _batch_tensor(model, images, device), hooks)
    unmatched = selection.unmatched(seen) if selection.kind == "patterns" else []
    if unmatched:
        raise InputError(
            f"the layer pattern(s) {unmatched} match no layer of model {model.identifier!r}; "
            f"its layers include {_some(seen)} (patterns are shell patterns over these names, "
            "comma-separated; '*' crosses dots)."
        )
    if not found:
        raise InputError(
            f"model {model.identifier!r} produced no floating-point layer outputs; check its "
            "module and its `layers` list."
        )
    return found


def _some(names: Sequence[str], most: int = 12) -> str:
    shown = list(dict.fromkeys(names))
    head = ", ".join(shown[:most])
    return head + (f", ... ({len(shown)} in all)" if len(shown) > most else "")


def _standardised(flat: Any) -> tuple[Any, Any]:
    """Per feature, the probe values centred and scaled to unit norm (float32, computed in
    float64 where the device has it), and which features are constant."""
    import torch

    dtype = torch.float32 if flat.device.type == "mps" else torch.float64
    x = flat.to(dtype)
    centred = x - x.mean(dim=0)
    norm = centred.norm(dim=0)
    scale = x.abs().amax(dim=0)
    constant = norm <= 1e-6 * scale.clamp_min(torch.finfo(torch.float32).tiny)
    z = centred / torch.where(constant, torch.ones_like(norm), norm)
    z[:, constant] = 0
    return z.float(), constant


def _affine_image(z: Any, constant: Any, z_old: Any, c_old: Any, tol: float = 1e-5) -> bool:
    """Whether every feature of one layer is an affine map (nonzero slope) of the same
    feature of another, on the probe images: the same constant features, and a correlation
    of +-1 (within ``tol``) for every other."""
    import torch

    if z.shape != z_old.shape or not torch.equal(constant, c_old):
        return False
    varying = ~constant
    if not bool(varying.any()):
        return False
    r = (z[:, varying].double() * z_old[:, varying].double()).sum(dim=0)
    return bool((r.abs() >= 1 - tol).all())


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
    model: Model,
    images: list[np.ndarray],
    layers: Sequence[str],
    device: str = "cpu",
    selection: str | LayerSelection = "all",
) -> dict[str, np.ndarray]:
    """Full flattened activations ``(n_images, p)`` of the named layers (small inputs only;
    the simulated dataset uses it to build its ground truth). ``selection`` says which
    modules are hooked (``blocks`` or patterns reach modules with sub-modules)."""
    wanted = set(layers)
    captured: dict[str, list[np.ndarray]] = {name: [] for name in layers}

    def handler(name: str, _module: str, tensor: Any) -> None:
        if name in wanted:
            axis = 0 if tensor.shape[0] == hooks.batch else 1
            captured[name].append(_rows_first(tensor.detach(), axis).float().cpu().numpy().copy())

    handler.wanted = wanted  # type: ignore[attr-defined]
    model.module.eval().to(device)
    with _Hooks(hooked_modules(model.module, model.layers, selection)) as hooks:
        hooks.handler = handler
        for start in range(0, len(images), 32):
            _forward(model, _batch_tensor(model, images[start : start + 32], device), hooks)
    missing = [name for name in layers if not captured[name]]
    if missing:
        raise InputError(f"model {model.identifier!r} has no layers named {missing}.")
    return {name: np.concatenate(parts) for name, parts in captured.items()}
