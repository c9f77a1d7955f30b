"""Shared fixtures. Every test runs with its own brainrank home (config, leaderboard,
feature cache) in a temporary folder, so nothing touches ~/.brainrank."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from brainrank.core import registry as registry_module

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BRAINRANK_SHARED", REPO.parent / "shared"))
TINY_PLUGIN = Path(__file__).parent / "fixtures" / "tiny_plugin.py"


@pytest.fixture(autouse=True)
def brainrank_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("brainrank-home")
    monkeypatch.setenv("BRAINRANK_HOME", str(home))
    monkeypatch.setenv("BRAINRANK_OFFLINE", "1")
    for name in ("BRAINRANK_DATA", "BRAINRANK_DB", "BRAINRANK_CACHE"):
        monkeypatch.delenv(name, raising=False)
    registry_module.reset_registry()
    yield home
    registry_module.reset_registry()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"the shared data folder {SHARED} is not present")
    return SHARED


@pytest.fixture
def tiny_plugin_path() -> Path:
    return TINY_PLUGIN


@pytest.fixture
def stimuli_factory():
    """``make(n=4, size=16, seed=0)``: a tiny StimulusSet of random RGB images."""
    import numpy as np

    from brainrank.core.stimuli import StimulusSet

    def make(n: int = 4, size: int = 16, seed: int = 0) -> StimulusSet:
        rng = np.random.default_rng(seed)
        images = {f"s{i}": rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(n)}
        return StimulusSet(f"tiny-{seed}-{n}-{size}", list(images), images.__getitem__)

    return make
