"""Content hashes that decide what is already scored and what a cached feature set holds.

- :func:`features_key`: what determines a model's features on a stimulus set (the feature
  cache's key and every score row's ``feature_key``);
- :func:`weights_hash`: the content of a model's weights;
- :func:`dataset_hash`: a dataset's stimuli and data;
- :func:`plan_hash`: what determines a (model, dataset, metric) result before the model is
  built (the resume key of the grid);
- :func:`file_sha256`: a file's content, cached by path, size and modification time.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import threading
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from brainrank._version import __version__
from brainrank.core.cache import feature_key
from brainrank.core.dataset import Dataset
from brainrank.core.extraction import EXTRACTION_VERSION, ExtractionConfig, state_dict_hash
from brainrank.core.projection import SCHEME
from brainrank.core.specs import Model
from brainrank.core.stimuli import StimulusSet


def features_key(model: Model, stimuli: StimulusSet, config: ExtractionConfig) -> str:
    """The content hash that determines a model's features on a stimulus set."""
    return feature_key(
        {
            "model": model.identifier,
            "weights": weights_hash(model),
            "preprocess": model.preprocess_id,
            "layers": list(model.layers) if model.layers is not None else None,
            "stimuli": stimuli.content_hash(),
            "projection_seed": config.projection_seed,
            "projection_scheme": SCHEME,
            "extraction": EXTRACTION_VERSION,
            "brainrank": __version__,
        }
    )


def weights_hash(model: Model) -> str:
    """The content of a model's weights: its ``weights_id`` or a hash of its state dict."""
    if not model.weights_id:
        model.weights_id = state_dict_hash(model.module)
    return model.weights_id


def dataset_hash(dataset: Dataset) -> str:
    """A sha256 over a dataset's stimuli and its data (responses with their ids, or RDMs)."""
    h = hashlib.sha256()
    h.update(dataset.identifier.encode())
    h.update(dataset.stimuli.content_hash().encode())
    responses = dataset.responses()
    if responses is not None:
        values = np.ascontiguousarray(np.asarray(responses.values))
        h.update(f"{values.dtype.str}{values.shape}".encode())
        h.update(values)  # the array's buffer, hashed in place (no copy of the data)
        for name in ("stimulus_id", "repetition", "neuroid_id", "subject", "region"):
            if name in responses.coords:
                h.update(name.encode())
                h.update("\x1f".join(map(str, responses[name].values.tolist())).encode())
    rdms = dataset.rdms()
    if rdms is not None:
        h.update(np.ascontiguousarray(rdms.dissimilarities))
        h.update(json.dumps([rdms.stimulus_ids, rdms.descriptors], default=str).encode())
    return h.hexdigest()


def plan_hash(
    model: str,
    model_options: dict[str, Any],
    dataset: str,
    stimuli_hash: str,
    data_hash: str,
    metric_hash: str,
    extraction: ExtractionConfig,
    code: str | None = None,
) -> str:
    """What determines a (model, dataset, metric) result before the model is built.

    ``model_options`` should carry the content of any file they name (see
    :func:`file_sha256`), and ``code`` a version of the code that builds the model (see
    :func:`code_version`), so that a changed weights file or plugin is scored again.
    """
    parts: dict[str, Any] = {
        "model": model,
        "options": model_options,
        "dataset": dataset,
        "stimuli": stimuli_hash,
        "data": data_hash,
        "metric": metric_hash,
        "projection_seed": extraction.projection_seed,
        "projection_scheme": SCHEME,
        "extraction": EXTRACTION_VERSION,
    }
    if code is not None:
        parts["code"] = code
    return feature_key(parts)


# --------------------------------------------------------------------------- files and code

_FILE_HASHES: dict[tuple[str, int, int], str] = {}
_LOCK = threading.Lock()


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """sha256 of a file's content, computed once per (path, size, modification time) in
    this process (a weights file is hashed once per run, however many jobs name it)."""
    path = Path(path).expanduser().resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _LOCK:
        known = _FILE_HASHES.get(key)
    if known is not None:
        return known
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            h.update(block)
    digest = h.hexdigest()
    with _LOCK:
        _FILE_HASHES[key] = digest
    return digest


def code_version(factory: Any) -> str | None:
    """A version of the code behind a plugin's factory: the sha256 of the source file that
    defines it (the factory of a ``functools.partial`` is followed), or ``None`` when the
    source cannot be found (a factory defined interactively).

    Covers edits to the plugin module itself (a changed network definition); not edits in
    other modules it imports, nor in installed libraries (their versions are recorded with
    each run).
    """
    while isinstance(factory, partial):
        factory = factory.func
    target = getattr(factory, "__func__", factory)
    try:
        source = inspect.getsourcefile(target if callable(target) else type(target))
    except (TypeError, OSError):
        source = None
    if source is None:
        try:
            source = inspect.getsourcefile(type(factory))
        except (TypeError, OSError):
            return None
    if not source or not os.path.isfile(source):
        return None
    return file_sha256(source)
