"""How features are extracted: :class:`ExtractionConfig` and the version of the extraction's
semantics (part of the feature cache key)."""

from __future__ import annotations

from dataclasses import dataclass

from brainrank.core.errors import InputError
from brainrank.core.extraction.layers import LayerSelection, check_aliases

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
    - ``layers``: which layers are kept: ``"all"`` (every layer, the default), ``"blocks"``
      (the architecture's block outputs) or comma-separated shell patterns over layer names
      (see :mod:`brainrank.core.extraction.layers`). Not the default: part of the feature
      cache key and the plan hash (another configuration of the extraction).
    - ``aliases``: ``"exact"`` (default: a layer repeating an earlier one is kept once) or
      ``"affine"`` (also a per-feature affine map of an earlier one; see
      :mod:`brainrank.core.extraction.layers` for which scores that leaves unchanged).
    """

    batch_size: int = 32
    memory_budget: int = 4 * 2**30
    projection_seed: int = 0
    device: str = "cpu"
    layers: str = "all"
    aliases: str = "exact"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size}.")
        if self.memory_budget < 2**20:
            raise InputError(f"memory_budget must be at least 1 MiB, got {self.memory_budget}.")
        LayerSelection.parse(self.layers)  # refused here, before any work, when malformed
        check_aliases(self.aliases)
