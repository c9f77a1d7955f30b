"""A content-addressed on-disk cache of feature sets.

The key is a sha256 over everything that determines the features: the model identifier,
the content of its weights, its preprocessing, the content of the stimuli, the projection
seed and scheme, and the extraction code version. The entry records which projection sizes
and whether RDMs it holds; a request it does not cover is recomputed (with the union of
both) and replaces it. Entries are written to a temporary folder and renamed into place, so
a killed run never leaves a half-written entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.core.types import FeatureRequest, FeatureSet, LayerFeatures

FORMAT = 1


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
        return request.projection_dims <= have and (meta["rdm"] or not request.rdm)

    def stored_request(self, key: str) -> FeatureRequest | None:
        meta = self._meta(key)
        if meta is None:
            return None
        return FeatureRequest(frozenset(meta["projection_dims"]), bool(meta["rdm"]))

    def _meta(self, key: str) -> dict[str, Any] | None:
        path = self._dir(key) / "meta.json"
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return meta if meta.get("format") == FORMAT else None

    def load(self, key: str) -> FeatureSet | None:
        meta = self._meta(key)
        if meta is None:
            return None
        folder = self._dir(key)
        layers = []
        try:
            for entry in meta["layers"]:
                with np.load(folder / entry["file"]) as arrays:
                    projections = {
                        int(name[5:]): arrays[name]
                        for name in arrays.files
                        if name.startswith("proj_")
                    }
                    rdm = arrays["rdm"] if "rdm" in arrays.files else None
                layers.append(
                    LayerFeatures(
                        name=entry["name"],
                        index=entry["index"],
                        relative_depth=entry["relative_depth"],
                        n_features=entry["n_features"],
                        shape=tuple(entry["shape"]),
                        projections=projections,
                        rdm=rdm,
                    )
                )
        except (OSError, KeyError, ValueError):
            return None  # damaged entry: recompute
        return FeatureSet(
            model=meta["model"],
            stimulus_ids=tuple(meta["stimulus_ids"]),
            layers=layers,
            key=key,
            info={**meta["info"], "cache": "hit"},
        )

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
