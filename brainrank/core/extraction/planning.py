"""How the layers are grouped into passes over the stimuli so that a pass's activations fit
the memory budget (:func:`plan_by_need`, used with exact RDMs), and how many images a
streamed extraction holds at once (:func:`stream_chunk`, without RDMs)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from brainrank.core.extraction.config import ExtractionConfig
from brainrank.core.extraction.layers import LayerInfo


@dataclass
class _Slice:
    layer: str
    start: int
    stop: int


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
