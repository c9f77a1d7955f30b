"""``brainrank.features``: a model's activations on your images, as arrays or xarray.

Like thingsvision's ``extract_features``, it returns the full activations of the layers
you name, for images you give, without the leaderboard::

    import brainrank
    acts = brainrank.features("torchvision/alexnet", "photos/", layers=["features.10"])
    acts["features.10"].shape                     # (n_images, 43264)
    assembly = brainrank.features(model, images, layers="layer4*", output="xarray")

Layers are named as the leaderboard names them: every call of a leaf module in call order
(``layer4.1.relu:2`` for a module's second call), the model's own output as ``output``.
Without ``layers`` every layer is returned but those whose activations repeat an earlier
layer's or are one value everywhere (as the leaderboard leaves them out); each needs
``n_images x its size x 4`` bytes, so name the layers you need for large models or many
images. The scoring path never keeps full activations (it projects them layer by layer);
this is for looking at them.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.core.errors import InputError
from brainrank.core.specs import Model
from brainrank.core.stimuli import StimulusSet

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
OUTPUTS = ("numpy", "xarray")


def _as_array(image: Any) -> np.ndarray:
    """An image (array or PIL image) as RGB uint8 ``(H, W, 3)``."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InputError(
            f"an image must be (height, width, 3) RGB (or a PIL image), not shape {array.shape}."
        )
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and array.size and float(array.max()) <= 1.0:
            array = array * 255.0
        array = np.clip(np.round(array), 0, 255).astype(np.uint8)
    return array[..., :3]


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the image {path}: {exc}.") from exc


def images_of(images: Any, data_dir: Any = None) -> tuple[list[str], list[np.ndarray]]:
    """(ids, RGB uint8 images) from: a :class:`StimulusSet`, a dataset (its stimuli) or a
    dataset identifier, a folder of image files (sorted by name), a list of image files, or
    a list of arrays / PIL images (ids ``0``, ``1``...)."""
    from brainrank.core.dataset import Dataset

    if isinstance(images, str) and not os.path.exists(images):
        from brainrank.core.errors import BrainrankError
        from brainrank.core.registry import get_registry

        try:
            spec = get_registry().get("dataset", images)
        except BrainrankError as exc:
            raise InputError(
                f"{images!r} is neither a folder or file of images nor a dataset identifier ({exc})"
            ) from exc
        images = spec.load(data_dir=data_dir)
    if isinstance(images, Dataset):
        images = images.stimuli
    if isinstance(images, StimulusSet):
        ids = list(images.stimulus_ids)
        return [str(i) for i in ids], [images.image(i) for i in ids]
    if isinstance(images, (str, os.PathLike)):
        path = Path(images)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputError(
                    f"the folder {path} holds no image files ({', '.join(IMAGE_SUFFIXES)})."
                )
            return [p.name for p in files], [_read(p) for p in files]
        if path.is_file():
            return [path.name], [_read(path)]
        raise InputError(f"no folder or image file {path}.")
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    if not isinstance(images, Sequence) or isinstance(images, (bytes, str)):
        raise InputError(
            "images must be a folder, image files, a list of arrays or PIL images, a "
            f"StimulusSet or a dataset, not {type(images).__name__}."
        )
    if not images:
        raise InputError("no images were given.")
    ids, arrays = [], []
    for i, item in enumerate(images):
        if isinstance(item, (str, os.PathLike)):
            ids.append(Path(item).name)
            arrays.append(_read(Path(item)))
        else:
            ids.append(str(i))
            arrays.append(_as_array(item))
    return ids, arrays


def _choose(
    names: list[str], wanted: str | Sequence[str] | None, available: list[str]
) -> list[str]:
    """Layers named in ``wanted`` (names or shell patterns; comma-separated text allowed),
    in call order; an unknown name is refused with the layers there are."""
    if wanted is None:
        return names
    patterns = [w.strip() for w in wanted.split(",")] if isinstance(wanted, str) else list(wanted)
    chosen = []
    for pattern in patterns:
        hits = [n for n in available if n == pattern or fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            shown = ", ".join(available[:12]) + (" ..." if len(available) > 12 else "")
            raise InputError(f"the model has no layer {pattern!r}; its layers: {shown}.")
        chosen += [h for h in hits if h not in chosen]
    order = {n: i for i, n in enumerate(available)}
    return sorted(chosen, key=order.__getitem__)


def features(
    model: str | Model,
    images: Any,
    layers: str | Sequence[str] | None = None,
    *,
    flatten: bool = True,
    output: str = "numpy",
    batch_size: int = 32,
    device: str | None = None,
    weights: str | None = None,
    data_dir: Any = None,
) -> Any:
    """Activations of ``model`` (an identifier or a :class:`Model`) on ``images`` (see
    :func:`images_of`) at ``layers`` (names or shell patterns; default: every layer the
    leaderboard scores).

    ``output="numpy"``: a dict ``{layer: array}`` in call order, each ``(n_images,
    n_features)`` float32 (``flatten=False``: ``(n_images, *shape)``, the layer's own
    shape). ``output="xarray"``: one ``xarray.DataArray`` ``(presentation, neuroid)`` with
    ``stimulus_id`` on presentations and ``layer``, ``neuroid_num`` on neuroids, as
    Brain-Score's activation models give them. ``weights``: a trained weights file for a
    model given by identifier; ``device``: where the forward pass runs (default: the
    ``device`` setting)."""
    from brainrank.core.backend import resolve_device
    from brainrank.core.extraction import layer_activations, probe_layers
    from brainrank.core.registry import get_registry

    if output not in OUTPUTS:
        raise InputError(f"output must be one of {', '.join(OUTPUTS)}, not {output!r}.")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, not {batch_size}.")
    if device is None:
        from brainrank.settings import settings

        device = settings().device
    device = resolve_device(device)
    if isinstance(model, str):
        options = {"weights": weights} if weights else {}
        model = get_registry().get("model", model).load(**options)
    elif weights:
        raise InputError("weights= is for a model given by identifier; load your own into it.")
    if not isinstance(model, Model):
        raise InputError(
            f"model must be a model identifier or a brainrank Model, not {type(model).__name__}."
        )
    ids, arrays = images_of(images, data_dir=data_dir)
    if len(set(ids)) != len(ids):
        ids = [f"{i}:{name}" for i, name in enumerate(ids)]
    infos = probe_layers(model, arrays[: min(len(arrays), 8)], device)
    available = [i.name for i in infos]
    default = [i.name for i in infos if i.duplicate_of is None and not i.constant]
    chosen = _choose(default, layers, available)
    found: dict[str, list[np.ndarray]] = {name: [] for name in chosen}
    for start in range(0, len(arrays), batch_size):
        part = layer_activations(model, arrays[start : start + batch_size], chosen, device)
        for name in chosen:
            found[name].append(part[name])
    shapes = {i.name: i.shape for i in infos}
    out = {}
    for name in chosen:
        values = np.concatenate(found[name]).astype(np.float32, copy=False)
        out[name] = values if flatten else values.reshape(len(ids), *shapes[name])
    if output == "numpy":
        return out
    import xarray as xr

    flat = {name: v.reshape(len(ids), -1) for name, v in out.items()}
    layer = np.concatenate([[name] * v.shape[1] for name, v in flat.items()])
    number = np.concatenate([np.arange(v.shape[1]) for v in flat.values()])
    return xr.DataArray(
        np.concatenate(list(flat.values()), axis=1),
        dims=("presentation", "neuroid"),
        coords={
            "stimulus_id": ("presentation", ids),
            "layer": ("neuroid", layer),
            "neuroid_num": ("neuroid", number),
        },
        name=model.identifier,
        attrs={"model": model.identifier, "layers": list(chosen)},
    )
