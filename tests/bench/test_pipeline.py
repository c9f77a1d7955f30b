"""bench/pipeline.py at tiny sizes: brainrank's side in a subprocess (its scores, the
kernel's agreement with the run), the peer side only where thingsvision is importable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--model", "torchvision/alexnet:random", "--images", "16", "--voxels", "8"]


def _pipeline(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.pipeline", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


def test_brainrank_side_tiny():
    out = _pipeline(*TINY, "--no-peers", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    ours = result["brainrank"]
    assert ours["layers"] == len(ours["layer_scores"]) > 10  # every layer of alexnet
    assert ours["fits"] == ours["layers"] * 8
    values = [v for by in ours["layer_scores"].values() for v in by.values()]
    assert len(values) == ours["layers"] * 4  # four regions per layer
    assert all(np.isfinite(values)) and all(-1 <= v <= 1 for v in values)
    # the isolated kernel, on the run's cached features, reproduces the run's scores
    assert ours["kernel_max_difference"] < 1e-6
    assert ours["kernel_fits"] == ours["fits"]
    assert ours["peak_rss_bytes"] > 0
    assert "peer pipeline not run" in result["peer_missing"]
    assert "peer pipeline not run" in out.stdout


def test_peer_model_must_be_torchvision():
    from bench.pipeline import torchvision_name

    assert torchvision_name("torchvision/alexnet:random") == ("alexnet", False)
    assert torchvision_name("torchvision/resnet18") == ("resnet18", True)
    with pytest.raises(ValueError, match="torchvision/<name>"):
        torchvision_name("timm/vit_base_patch16_224:random")


def test_tiny_sizes_are_refused_clearly():
    out = _pipeline("--images", "5", "--voxels", "8", timeout=120)
    assert out.returncode != 0
    assert "--images must be at least 12" in out.stderr


def test_peer_side_tiny():
    from bench.pipeline import find_peer_python

    python = find_peer_python()
    if python is None:
        pytest.skip("thingsvision is not importable (the peers need their own environment)")
    out = _pipeline(*TINY, "--peer-python", python, "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["same_weights"]
    # the ridge itself: the same per-voxel r on identical projected features
    assert result["exact_ridge_max_difference"] < 1e-4
    assert set(result["peer"]["layer_scores"]) == set(result["brainrank"]["layer_scores"])
    assert result["agreement"]["layers_compared"] == result["brainrank"]["layers"]
