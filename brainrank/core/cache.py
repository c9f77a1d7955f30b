"""A content-addressed on-disk cache of feature sets.

The key is a sha256 over everything that determines the features: the model identifier,
the content of its weights, its preprocessing, the content of the stimuli, the projection
seed and scheme, and the extraction code version. The entry records which projection sizes
and whether RDMs it holds; a request it does not cover is recomputed (with the union of
both) and replaces it. Entries are written to a temporary folder and renamed into place, so
a killed run never leaves a half-written entry behind.

Beside the feature sets, ``root/models/`` remembers what earlier builds of a model gave
(its weights hash, preprocessing, layers and metadata) under a key over the build's inputs,
so that a run whose features are cached need not build the model again (see
:class:`brainrank.core.features.ModelHandle`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.core.scores import FeatureRequest, FeatureSet, LayerFeatures

FORMAT = 1

log = logging.getLogger(__name__)


class _CorruptEntry(Exception):
    """An entry whose files cannot be read back or do not match its ``meta.json``."""


def feature_key(parts: dict[str, Any]) -> str:
    payload = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class FeatureCache:
    """Feature sets stored under ``root/<key[:2]>/<key>/``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    def covers(self, key: str, request: FeatureRequest) -> bool:
        meta = self._meta(key)
        if meta is None:
            return False
        have = set(meta["projection_dims"])
        return (
            request.projection_dims <= have
            and (meta["rdm"] or not request.rdm)
            and (bool(meta.get("gram", False)) or not request.gram)
            and (bool(meta.get("spectrum", False)) or not request.spectrum)
        )

    def stored_request(self, key: str) -> FeatureRequest | None:
        meta = self._meta(key)
        if meta is None:
            return None
        return FeatureRequest(
            frozenset(meta["projection_dims"]),
            bool(meta["rdm"]),
            bool(meta.get("gram", False)),
            bool(meta.get("spectrum")),
        )

    def _meta(self, key: str) -> dict[str, Any] | None:
        path = self._dir(key) / "meta.json"
        if not path.exists():
            return None
        try:
            meta = json.loads(path.read_text())
            if not isinstance(meta, dict):
                raise ValueError("meta.json does not hold a JSON object")
        except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            self._discard(key, f"unreadable meta.json ({exc})")
            return None
        if meta.get("format") != FORMAT:
            return None  # another format version: recomputed and replaced on store
        try:
            _check_meta(meta)
        except _CorruptEntry as exc:
            self._discard(key, str(exc))
            return None
        return meta

    def _discard(self, key: str, reason: str) -> None:
        """Move a damaged entry aside (``<key>.corrupt-*``), or delete it if that fails,
        and log where it was, so that it is recomputed instead of failing every run."""
        folder = self._dir(key)
        if not folder.exists():
            return
        aside = folder.with_name(f"{folder.name}.corrupt-{os.getpid()}-{os.urandom(3).hex()}")
        try:
            os.replace(folder, aside)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            log.warning(
                "feature cache entry %s is damaged (%s); deleted it, it will be recomputed",
                folder,
                reason,
            )
            return
        log.warning(
            "feature cache entry %s is damaged (%s); moved it to %s (safe to delete) and "
            "it will be recomputed",
            folder,
            reason,
            aside,
        )

    def load(self, key: str) -> FeatureSet | None:
        """The stored feature set, or None when there is none or it is damaged (a
        damaged entry is logged with its path, moved aside and so recomputed)."""
        meta = self._meta(key)
        if meta is None:
            return None
        folder = self._dir(key)
        n = len(meta["stimulus_ids"])
        layers = []
        try:
            for entry in meta["layers"]:
                path = folder / entry["file"]
                try:
                    # allow_pickle stays False: no object arrays, so no code from the file
                    with np.load(path, allow_pickle=False) as arrays:
                        projections = {
                            int(name[5:]): np.asarray(arrays[name])
                            for name in arrays.files
                            if name.startswith("proj_")
                        }
                        rdm = np.asarray(arrays["rdm"]) if "rdm" in arrays.files else None
                        gram = np.asarray(arrays["gram"]) if "gram" in arrays.files else None
                        spectrum = (
                            np.asarray(arrays["spectrum"]) if "spectrum" in arrays.files else None
                        )
                except Exception as exc:  # BadZipFile, zlib.error, EOFError, OSError, ...
                    raise _CorruptEntry(f"{path.name}: {type(exc).__name__}: {exc}") from exc
                _check_arrays(path.name, projections, rdm, n, meta)
                if bool(meta.get("gram", False)) and (gram is None or gram.shape != (n, n)):
                    raise _CorruptEntry(
                        f"{path.name} has no ({n}, {n}) Gram matrix although meta.json says it has"
                    )
                if bool(meta.get("spectrum")) and (spectrum is None or spectrum.shape != (n,)):
                    raise _CorruptEntry(
                        f"{path.name}: the covariance spectrum that meta.json lists is missing "
                        f"or not ({n},)"
                    )
                layers.append(
                    LayerFeatures(
                        name=entry["name"],
                        index=entry["index"],
                        relative_depth=entry["relative_depth"],
                        n_features=entry["n_features"],
                        shape=tuple(entry["shape"]),
                        projections=projections,
                        rdm=rdm,
                        gram=gram,
                        spectrum=spectrum,
                    )
                )
        except _CorruptEntry as exc:
            self._discard(key, str(exc))
            return None
        return FeatureSet(
            model=meta["model"],
            stimulus_ids=tuple(meta["stimulus_ids"]),
            layers=layers,
            key=key,
            info={**meta["info"], "cache": "hit"},
        )

    def describe(self, key: str) -> tuple[list[str], dict[str, Any]] | None:
        """The layer names of the entry ``key`` (in order) and its extraction's ``info``
        (duplicated and constant layers among it), read without loading any array; ``None``
        when there is no such entry."""
        meta = self._meta(key)
        if meta is None:
            return None
        return [str(entry["name"]) for entry in meta["layers"]], dict(meta["info"])

    def _model_file(self, key: str) -> Path:
        return self.root / "models" / key[:2] / f"{key}.json"

    def model_record(self, key: str) -> dict[str, Any] | None:
        """What an earlier build with the build key ``key`` gave, or ``None`` (none, another
        format, or unreadable: the model is then built)."""
        try:
            record = json.loads(self._model_file(key).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            return None
        return record

    def store_model_record(self, key: str, record: dict[str, Any]) -> None:
        """Remember a build's record (written to a temporary file, then renamed)."""
        path = self._model_file(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:12]}-", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump({**record, "format": FORMAT}, handle)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def forget_model_record(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self._model_file(key).unlink()

    def store(self, key: str, features: FeatureSet) -> None:
        target = self._dir(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=target.parent))
        try:
            entries = []
            for layer in features.layers:
                file = f"layer_{layer.index:04d}.npz"
                arrays = {f"proj_{k}": v for k, v in layer.projections.items()}
                if layer.rdm is not None:
                    arrays["rdm"] = layer.rdm
                if layer.gram is not None:
                    arrays["gram"] = layer.gram
                if layer.spectrum is not None:
                    arrays["spectrum"] = layer.spectrum
                np.savez(tmp / file, **arrays)
                entries.append(
                    {
                        "name": layer.name,
                        "index": layer.index,
                        "relative_depth": layer.relative_depth,
                        "n_features": layer.n_features,
                        "shape": list(layer.shape),
                        "file": file,
                    }
                )
            info = {k: v for k, v in features.info.items() if k != "cache"}
            meta = {
                "format": FORMAT,
                "model": features.model,
                "stimulus_ids": list(features.stimulus_ids),
                "projection_dims": sorted(info.get("projection_dims", [])),
                "rdm": bool(info.get("rdm", False)),
                "gram": bool(info.get("gram", False)),
                "spectrum": bool(info.get("spectrum", False)),
                "layers": entries,
                "info": info,
            }
            (tmp / "meta.json").write_text(json.dumps(meta, default=str))
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _check_meta(meta: dict[str, Any]) -> None:
    try:
        assert isinstance(meta["model"], str)
        assert isinstance(meta["stimulus_ids"], list)
        assert isinstance(meta["info"], dict)
        [int(d) for d in meta["projection_dims"]]
        assert isinstance(meta["layers"], list) and meta["layers"]
        for entry in meta["layers"]:
            for field in ("name", "index", "relative_depth", "n_features", "shape", "file"):
                entry[field]
            name = str(entry["file"])
            assert "/" not in name and "\\" not in name and not name.startswith(".")
    except (AssertionError, KeyError, TypeError, ValueError) as exc:
        raise _CorruptEntry(f"meta.json is incomplete or malformed ({exc!r})") from exc


def _check_arrays(
    file: str, projections: dict[int, np.ndarray], rdm: np.ndarray | None, n: int, meta: dict
) -> None:
    """The arrays of one layer file agree with ``meta.json``."""
    missing = {int(d) for d in meta["projection_dims"]} - set(projections)
    if missing:
        raise _CorruptEntry(f"{file} lacks projections {sorted(missing)} that meta.json lists")
    for dim, values in projections.items():
        if values.ndim != 2 or values.shape[0] != n or values.dtype.kind not in "fiu":
            raise _CorruptEntry(
                f"{file}: projection {dim} has shape {values.shape} and dtype {values.dtype}, "
                f"expected {n} numeric rows"
            )
    if bool(meta["rdm"]) and rdm is None:
        raise _CorruptEntry(f"{file} has no RDM although meta.json says it has")
    if rdm is not None and (rdm.shape != (n, n) or rdm.dtype.kind not in "fiu"):
        raise _CorruptEntry(f"{file}: RDM has shape {rdm.shape}, expected ({n}, {n})")
