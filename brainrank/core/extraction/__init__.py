"""Every-layer features from a torch model, in memory-budgeted passes.

What counts as a layer: every call of a leaf module (a module without children) during the
forward pass, in the order the calls happen. A convolution and the ReLU after it are two
layers; a module called twice (torchvision's ResNet blocks call their ReLU twice) gives two
layers, the second named ``name:2``. Attention adds its query, key and value projections and
its output (``ATTN.q``, ``ATTN.k``, ``ATTN.v``), computed beside the forward pass without
changing it. Outputs are copied inside the forward hook, before any later in-place operation
(``ReLU(inplace=True)``, ``out += identity``) can change them. Layers whose activations equal
an earlier layer's (dropout at eval time, a flatten, a pooling that changes nothing) are kept
once, under the earlier name; layers whose output is one value everywhere (a
zero-initialised head of a random network) carry no information and are left out (listed in
``info["constant_layers"]``). Both checks run on the first images. The model's own output is
a layer too (it may come from parameters used directly, not from a leaf module). Outputs
whose batch dimension comes second (sequence-first transformer layouts) are read with the
batch first; outputs without one row per image are not layers. ``ExtractionConfig.layers``
keeps all layers, the architecture's blocks or the layers matching shell patterns, and
``ExtractionConfig.aliases`` may also keep once a layer that is a per-feature affine map of an
earlier one (see :mod:`~brainrank.core.extraction.layers`).

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

The package, one concept per module: :mod:`~brainrank.core.extraction.config` (the
settings), :mod:`~brainrank.core.extraction.layers` (layer discovery and hooks),
:mod:`~brainrank.core.extraction.planning` (passes and chunks within the memory budget),
:mod:`~brainrank.core.extraction.arenas` (the buffers a pass fills) and
:mod:`~brainrank.core.extraction.capture` (capture, projection and RDMs:
:func:`extract_features`).
"""

from __future__ import annotations

from brainrank.core.extraction.capture import extract_features
from brainrank.core.extraction.config import EXTRACTION_VERSION, ExtractionConfig
from brainrank.core.extraction.layers import (
    ALIAS_CHOICES,
    LAYER_CHOICES,
    PROBE_IMAGES,
    LayerInfo,
    LayerSelection,
    block_modules,
    hooked_modules,
    kept_layers,
    layer_activations,
    leaf_modules,
    probe_layers,
)
from brainrank.core.extraction.planning import (
    DEVICE_MEMORY_SHARE,
    SMALLEST_PASS_BYTES,
    SPARE_IMAGES,
    STREAM_IMAGES,
    pass_budget,
    plan_balanced,
    plan_by_need,
    plan_passes,
    stream_chunk,
)

__all__ = [
    "ALIAS_CHOICES",
    "DEVICE_MEMORY_SHARE",
    "EXTRACTION_VERSION",
    "LAYER_CHOICES",
    "PROBE_IMAGES",
    "SMALLEST_PASS_BYTES",
    "SPARE_IMAGES",
    "STREAM_IMAGES",
    "ExtractionConfig",
    "LayerInfo",
    "LayerSelection",
    "block_modules",
    "extract_features",
    "hooked_modules",
    "kept_layers",
    "layer_activations",
    "leaf_modules",
    "pass_budget",
    "plan_balanced",
    "plan_by_need",
    "plan_passes",
    "probe_layers",
    "stream_chunk",
]
