"""Stimulus sets: ordered stimulus ids with a lazy RGB uint8 image loader."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from brainrank.core.errors import InputError

# --------------------------------------------------------------------------- stimuli


def as_rgb_uint8(image: Any, what: str = "image") -> np.ndarray:
    """Return ``image`` as a contiguous ``(H, W, 3)`` uint8 array.

    Accepts greyscale ``(H, W)``, ``(H, W, 1)``, RGB and RGBA (alpha dropped) uint8 arrays or
    PIL images. Float images are refused because their scale is ambiguous.
    """
    if hasattr(image, "convert") and hasattr(image, "mode"):  # PIL image
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise InputError(
            f"{what} has dtype {array.dtype}; stimuli must be uint8 RGB images (0..255). "
            "Convert float images with (np.clip(x, 0, 1) * 255).astype(np.uint8)."
        )
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
        raise InputError(f"{what} has shape {array.shape}; expected (height, width, 3).")
    return np.ascontiguousarray(array)


class StimulusSet:
    """Ordered stimulus ids with a lazy image loader and per-stimulus metadata.

    ``loader(stimulus_id)`` returns one image (anything :func:`as_rgb_uint8` accepts).
    ``content_id``, when given, is a cheap stable description of the images' content (for
    example the checksums of the files they come from); otherwise :meth:`content_hash`
    hashes the decoded images once.
    """

    def __init__(
        self,
        identifier: str,
        stimulus_ids: Sequence[str],
        loader: Callable[[str], Any],
        metadata: Any = None,
        content_id: str | None = None,
    ):
        ids = tuple(str(s) for s in stimulus_ids)
        if not ids:
            raise InputError(f"stimulus set {identifier!r} is empty.")
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            dupes = sorted({s for s in ids if s in seen or seen.add(s)})
            raise InputError(
                f"stimulus set {identifier!r} has {len(dupes)} duplicated stimulus ids "
                f"(e.g. {dupes[:3]}); ids must be unique."
            )
        self.identifier = identifier
        self.stimulus_ids = ids
        self._loader = loader
        self.metadata = metadata
        self._content_id = content_id
        self._hash: str | None = None
        self._position = {s: i for i, s in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.stimulus_ids)

    def __repr__(self) -> str:
        return f"StimulusSet({self.identifier!r}, n={len(self)})"

    def index(self, stimulus_ids: Sequence[str]) -> np.ndarray:
        """Positions of ``stimulus_ids`` in this set; raises with the missing ids."""
        missing = [str(s) for s in stimulus_ids if s not in self._position]
        if missing:
            raise InputError(
                f"{len(missing)} stimulus ids are not in stimulus set {self.identifier!r} "
                f"(e.g. {missing[:3]}); the responses and the stimuli do not match."
            )
        return np.array([self._position[s] for s in stimulus_ids], dtype=np.int64)

    def image(self, stimulus_id: str) -> np.ndarray:
        return as_rgb_uint8(self._loader(stimulus_id), what=f"stimulus {stimulus_id!r}")

    def batches(self, batch_size: int) -> Iterator[tuple[slice, list[np.ndarray]]]:
        """Yield ``(rows, images)`` in order, ``batch_size`` images at a time."""
        n = len(self)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            yield slice(start, stop), [self.image(s) for s in self.stimulus_ids[start:stop]]

    def content_hash(self) -> str:
        """A sha256 over the ids and the images' content (or the given ``content_id``)."""
        if self._hash is None:
            h = hashlib.sha256()
            h.update("\n".join(self.stimulus_ids).encode())
            if self._content_id is not None:
                h.update(b"content-id:" + self._content_id.encode())
            else:
                for s in self.stimulus_ids:
                    image = self.image(s)
                    h.update(repr(image.shape).encode())
                    h.update(image.tobytes())
            self._hash = h.hexdigest()
        return self._hash

    def subset(self, stimulus_ids: Sequence[str], identifier: str | None = None) -> StimulusSet:
        self.index(stimulus_ids)  # validates
        meta = None
        if self.metadata is not None and hasattr(self.metadata, "loc"):
            meta = self.metadata.loc[list(stimulus_ids)]
        return StimulusSet(
            identifier or f"{self.identifier}[subset]", stimulus_ids, self._loader, meta
        )
