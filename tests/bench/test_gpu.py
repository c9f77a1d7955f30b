"""``bench/gpu.py`` in CI-sized form: it runs with ``--device cpu`` and tiny sizes in a fresh
process, prints every field it promises, and the CPU and torch-kernel scores agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_gpu_runs_tiny_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    command = [sys.executable, str(REPO / "bench" / "gpu.py"), "--device", "cpu",
               "--images", "16", "--voxels", "24", "--subset-images", "16",
               "--subset-voxels", "24", "--repeat", "1", "--json", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for field in ("device:", "extraction:", "kernel:", "whole run:", "agreement:", "projected:"):
        assert any(line.startswith(field) for line in lines), (field, done.stdout)
    result = json.loads(lines[-1])
    assert result == json.loads(out.read_text())
    assert result["device"] == "cpu"
    assert result["extraction"]["ratio"] > 0 and result["extraction"]["layers"] == 18
    assert result["kernel"]["fits_per_second"] > 0
    run = result["whole_run"]
    assert run["fits"] == 18 * 24 and run["fits_per_second"] > 0 and run["run_device"] == "cpu"
    assert result["projected"]["hours"] == 5.17e9 / run["fits_per_second"] / 3600
    agreement = result["agreement"]
    assert set(agreement["scoring"]) == {"srp-ridge:nsd", "srp-ridge", "versa", "stacking", "rsa"}
    assert agreement["ok"] and agreement["max_scoring"] <= agreement["tolerance"]
    assert agreement["max_end_to_end"] <= agreement["tolerance"]


def test_bench_gpu_refuses_a_device_it_does_not_have(tmp_path):
    command = [sys.executable, str(REPO / "bench" / "gpu.py"), "--device", "tpu"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode != 0
    assert "unknown device 'tpu'" in done.stderr
