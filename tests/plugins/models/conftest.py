"""Fixtures of the model-zoo tests: a few tiny images, and empty weight caches in tmp_path
(torch hub and Hugging Face) so tests place weight files where the plugins look for them."""

from __future__ import annotations

import numpy as np
import pytest

from brainrank.core.stimuli import StimulusSet


def make_stimuli(n: int = 4, size: int = 16, seed: int = 0) -> StimulusSet:
    rng = np.random.default_rng(seed)
    images = {f"s{i}": rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(n)}
    return StimulusSet(f"tiny-{seed}-{n}-{size}", list(images), images.__getitem__)


@pytest.fixture
def tiny_stimuli() -> StimulusSet:
    return make_stimuli()


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch-hub cache; returns its checkpoint folder."""
    home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    """An empty Hugging Face cache; returns its hub folder."""
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    (home / "hub").mkdir(parents=True)
    return home / "hub"


def put_in_hf_cache(hub, repo: str, filename: str, write) -> None:
    """Lay a file out as the Hugging Face client caches it: a snapshot folder named by a
    commit, and refs/main naming that commit. ``write(path)`` writes the file."""
    folder = hub / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    write(snapshot / filename)


@pytest.fixture
def hf_put():
    return put_in_hf_cache


@pytest.fixture
def stimuli_factory():
    return make_stimuli
