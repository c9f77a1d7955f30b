"""Content hashes that decide what is already scored and what a cached feature set holds.

- :func:`features_key`: what determines a model's features on a stimulus set (the feature
  cache's key and every score row's ``feature_key``);
- :func:`weights_hash`: the content of a model's weights (:func:`state_dict_hash` of its
  module when the model does not name it);
- :func:`dataset_hash`: a dataset's stimuli and data;
- :func:`plan_hash`: what determines a (model, dataset, metric) result before the model is
  built (the resume key of the grid);
- :func:`file_sha256`: a file's content, cached by path, size and modification time;
- :func:`build_key`, :func:`recording_reads`, :func:`file_identity`: what lets a model's
  identity be known without building it (see :class:`brainrank.core.features.ModelHandle`).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import stat as stat_module
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from brainrank._version import __version__
from brainrank.core.cache import feature_key
from brainrank.core.dataset import Dataset
from brainrank.core.extraction import EXTRACTION_VERSION, ExtractionConfig
from brainrank.core.extraction.layers import hooked_modules, layer_policy_key
from brainrank.core.projection import SCHEME
from brainrank.core.specs import Model, ModelMetadata
from brainrank.core.stimuli import StimulusSet


@dataclass(frozen=True)
class ModelFacts:
    """What the feature cache key and the leaderboard need of a built model: known from
    the model itself, or remembered from an earlier build with the same inputs."""

    identifier: str
    weights: str
    preprocess_id: str
    layers: tuple[str, ...] | None
    metadata: ModelMetadata
    #: the network has attention modules whose q, k and v are layers (whatever its family)
    attention: bool = False

    @classmethod
    def of(cls, model: Model) -> ModelFacts:
        return cls(
            identifier=model.identifier,
            weights=weights_hash(model),
            preprocess_id=model.preprocess_id,
            layers=tuple(model.layers) if model.layers is not None else None,
            metadata=model.metadata,
            attention=_has_attention_layers(model),
        )


def _has_attention_layers(model: Model) -> bool:
    """Whether the default extraction of the model takes q, k and v from attention modules
    (checked on its module: a model whose family does not say so is keyed right too)."""
    if model.module is None or model.layers is not None:
        return False
    return any(item.kind != "output" for item in hooked_modules(model.module))


def features_key(model: Model | ModelFacts, stimuli: StimulusSet, config: ExtractionConfig) -> str:
    """The content hash that determines a model's features on a stimulus set (with the
    layer policy where it changes what is extracted: :func:`~brainrank.core.extraction.
    layers.layer_policy_key`)."""
    facts = model if isinstance(model, ModelFacts) else ModelFacts.of(model)
    return feature_key(
        {
            "model": facts.identifier,
            "weights": facts.weights,
            "preprocess": facts.preprocess_id,
            "layers": list(facts.layers) if facts.layers is not None else None,
            "stimuli": stimuli.content_hash(),
            "projection_seed": config.projection_seed,
            "projection_scheme": SCHEME,
            "extraction": EXTRACTION_VERSION,
            "brainrank": __version__,
            **_policy(config, facts.metadata.family, facts.attention),
        }
    )


def _policy(config: ExtractionConfig, family: str | None, attention: bool = False) -> dict:
    # the selection is "layer_selection" here: "layers" already names a model's own list
    parts = layer_policy_key(config.layers, config.aliases, family, attention)
    if "layers" in parts:
        parts["layer_selection"] = parts.pop("layers")
    return parts


def weights_hash(model: Any) -> str:
    """The content of a model's weights: its ``weights_id`` or a hash of its state dict
    (for a :class:`~brainrank.core.features.ModelHandle`: its known or built weights)."""
    if not isinstance(model, Model):
        return model.weights
    if not model.weights_id:
        model.weights_id = state_dict_hash(model.module)
    return model.weights_id


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


#: version of what :func:`dataset_hash` covers (2: every coordinate, the reliabilities, the
#: dataset's own train/test split and its published ceilings)
DATASET_HASH_VERSION = "2"


def dataset_hash(dataset: Dataset) -> str:
    """A sha256 over everything of a dataset that a score depends on: its stimuli, its data
    (responses with *every* coordinate, e.g. a ``reliability`` or ``ncsnr`` read from a
    file, RDMs with their descriptors, behavioural trials), each neuroid's reliability, its own train/test
    split and the ceilings it publishes (:meth:`Dataset.published_ceiling_kinds`; the
    ceilings brainrank computes from the responses follow from the responses). A corrected
    file that changes a ceiling or a split but not the responses is then scored again."""
    h = hashlib.sha256()
    h.update(f"dataset-hash-{DATASET_HASH_VERSION}".encode())
    h.update(dataset.identifier.encode())
    h.update(dataset.stimuli.content_hash().encode())
    responses = dataset.responses()
    if responses is not None:
        values = np.ascontiguousarray(np.asarray(responses.values))
        h.update(f"{values.dtype.str}{values.shape}".encode())
        h.update(values)  # the array's buffer, hashed in place (no copy of the data)
        for name in sorted(map(str, responses.coords)):
            coordinate = responses.coords[name]
            h.update(f"{name}{coordinate.dims}".encode())
            h.update("\x1f".join(map(repr, np.ravel(coordinate.values).tolist())).encode())
        reliability = dataset.neuroid_reliability()
        if reliability is not None:
            h.update(b"reliability")
            h.update(np.ascontiguousarray(np.asarray(reliability, dtype=np.float64)))
    rdms = dataset.rdms()
    if rdms is not None:
        h.update(np.ascontiguousarray(rdms.dissimilarities))
        h.update(json.dumps([rdms.stimulus_ids, rdms.descriptors], default=str).encode())
        if rdms.distance != "correlation":  # the default adds nothing: stored hashes hold
            h.update(f"distance:{rdms.distance}".encode())
    trials = getattr(dataset, "trials", lambda: None)()
    if trials is not None:
        h.update(b"trials")
        h.update(trials.to_csv(index=False).encode())
    split = dataset.train_test_split()
    if split is not None:
        h.update(json.dumps([list(map(str, part)) for part in split]).encode())
    for kind in dataset.published_ceiling_kinds():
        values = sorted(
            (list(map(str, k)), repr(float(v))) for k, v in dataset.ceiling(kind).items()
        )
        h.update(json.dumps([kind, values]).encode())
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
    family: str | None = None,
) -> str:
    """What determines a (model, dataset, metric) result before the model is built.

    ``model_options`` should carry the content of any file they name (see
    :func:`file_sha256`), and ``code`` a version of the code that builds the model (see
    :func:`code_version`), so that a changed weights file or plugin is scored again.
    ``family`` (the model's architecture family) and the extraction's layer policy add
    what :func:`~brainrank.core.extraction.layers.layer_policy_key` gives: nothing for the
    default layers of a network without attention, whose hashes are what they were.
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
    parts.update(_policy(extraction, family))
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
    source = _source_file(factory)
    return file_sha256(source) if source is not None else None


def _source_file(factory: Any) -> str | None:
    """The source file that defines ``factory`` (a ``functools.partial`` is followed)."""
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
    return source


# --------------------------------------------------------------------------- model identity


def build_key(identifier: str, options: dict[str, Any], code: str | None) -> str:
    """What determines the model a plugin's factory builds, known before building it: the
    identifier, its options, the plugin's code (:func:`plugin_code_version`), brainrank's
    version and every installed distribution's version (:func:`environment_version`).
    Files the build reads are checked separately (:func:`recording_reads`)."""
    return feature_key(
        {
            "kind": "model-build",
            "model": identifier,
            "options": options,
            "code": code,
            "environment": environment_version(),
            "brainrank": __version__,
        }
    )


_ENVIRONMENT: list[str] = []


def environment_version() -> str:
    """A sha256 over the Python version and the name and version of every installed
    distribution (computed once per process): upgrading torch, timm or any other package
    changes it."""
    if not _ENVIRONMENT:
        from importlib import metadata

        names = sorted(
            {f"{(d.metadata['Name'] or '').lower()}=={d.version}" for d in metadata.distributions()}
        )
        payload = json.dumps([sys.version, sys.platform, names])
        _ENVIRONMENT.append(hashlib.sha256(payload.encode()).hexdigest())
    return _ENVIRONMENT[0]


def plugin_code_version(factory: Any) -> str | None:
    """A version of a model plugin's code: the sha256 of every ``.py`` file in the package
    folder of the module that defines ``factory`` (the module alone when it is no package's),
    and of ``brainrank/plugin.py`` (the seed of random variants). ``None`` when the source
    cannot be found."""
    source = _source_file(factory)
    if source is None:
        return None
    folder = Path(source).resolve().parent
    files = sorted(folder.glob("*.py")) if (folder / "__init__.py").is_file() else [Path(source)]
    files.append(Path(__file__).resolve().parent.parent / "plugin.py")
    h = hashlib.sha256()
    for path in files:
        if path.is_file():
            h.update(f"{path.name}:{file_sha256(path)};".encode())
    return h.hexdigest()


def file_identity(path: str) -> list[Any] | None:
    """``[path, size, mtime_ns, ctime_ns, inode]`` of a regular file (``None`` for anything
    else): any write to the file, or its replacement, changes it (the ctime cannot be set
    back by tools that restore a modification time)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat_module.S_ISREG(st.st_mode):
        return None
    return [path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def files_unchanged(identities: list[list[Any]]) -> bool:
    """Whether every file of ``identities`` is still the same: a regular file with the same
    :func:`file_identity`, or, for an entry ``[path]`` (a file looked for and not found),
    still absent."""
    for entry in identities:
        path = str(entry[0])
        if len(entry) == 1:
            if os.path.lexists(path):
                return False
        elif file_identity(path) != list(entry):
            return False
    return True


_RECORDINGS: list[set[str]] = []
_HOOKED: list[bool] = []
_SKIPPED_ROOTS = ("/proc/", "/sys/", "/dev/")


def _library_roots() -> tuple[str, ...]:
    """The folders of Python's standard library and of installed packages."""
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    roots = {paths.get(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    roots.add(
        os.path.join(
            sys.base_prefix, "lib", f"python{sys.version_info[0]}{sys.version_info[1]}.zip"
        )
    )
    real = {os.path.realpath(r) for r in roots if r}
    return tuple(os.path.join(r, "") for r in real if r != os.path.sep) + tuple(
        r for r in real if r.endswith(".zip")
    )


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    """Audit hook: note the files opened for reading while a recording is active."""
    if event != "open" or not _RECORDINGS:
        return
    try:
        path, mode, flags = args
        if path is None or isinstance(path, int):
            return
        if isinstance(flags, int):
            reading = flags & (os.O_WRONLY | os.O_RDWR) == 0
        else:
            reading = isinstance(mode, str) and not any(c in mode for c in "wax+")
        if reading:
            name = os.path.abspath(os.fsdecode(path))
            for recording in list(_RECORDINGS):
                recording.add(name)
    except Exception:  # an audit hook must never fail the operation it observes
        return


@contextlib.contextmanager
def recording_reads() -> Iterator[set[str]]:
    """Collect the paths of the files opened for reading from Python in this process
    during the block (any thread). Only reads through Python's ``open`` are seen: a library
    that reads files from native code (safetensors) is not."""
    with _LOCK:
        if not _HOOKED:
            sys.addaudithook(_on_audit)
            _HOOKED.append(True)
    recording: set[str] = set()
    _RECORDINGS.append(recording)
    try:
        yield recording
    finally:
        _RECORDINGS.remove(recording)


def read_files(paths: set[str]) -> list[list[Any]]:
    """The identities of the files a build opened for reading (see
    :func:`recording_reads`), as :func:`files_unchanged` checks them: ``[path]`` for a file
    looked for and not found (it must stay absent), nothing for folders, system files and
    the installed libraries (their versions are in :func:`environment_version`), and a
    module's source in place of its bytecode."""
    libraries = _library_roots()
    out: dict[str, list[Any]] = {}
    for path in sorted(paths):
        real = os.path.realpath(path)
        if real.endswith(".pyc") and os.path.basename(os.path.dirname(real)) == "__pycache__":
            module = os.path.basename(real).split(".")[0] + ".py"
            real = os.path.join(os.path.dirname(os.path.dirname(real)), module)
        if real.startswith(libraries) or real.startswith(_SKIPPED_ROOTS) or os.path.isdir(real):
            continue
        out[real] = file_identity(real) or [real]
    return list(out.values())
