"""Whole runs: the default suite end to end, and one whole model's regression fits.

1. **Default suite.** ``brainrank run`` with no selection (the default models, datasets
   and metrics) in a fresh brainrank home, so nothing is cached: wall-clock time of the
   command, then of the same command again (everything stored: the resume path).
2. **Regression fits per second, one whole model.** A model run the way the NSD paper
   scores a model (Conwell et al.'s 5.17-billion-fit workload): 1000 images, every layer
   projected to the Johnson-Lindenstrauss dimension (eps 0.1), one leave-one-out ridge
   (lambda 1e5) per voxel and layer, through the real runner (planning, extraction,
   scoring, writes). A *fit* is one voxel regressed on one layer with one penalty.
   fits/s = layers x voxels / the run's wall-clock time; the 5.17e9 fits are projected
   from that rate.

python -m bench.suite [--quick] [--voxels V] [--model ID]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.core.registry import hookimpl

#: the workload of Conwell, Prince, Alvarez & Konkle
PAPER_FITS = 5.17e9


def default_suite() -> dict[str, Any]:
    """Wall time of `brainrank run` (the default suite) on a cold home, then again."""
    with tempfile.TemporaryDirectory(prefix="brainrank-bench-") as home:
        env = {**os.environ, "BRAINRANK_HOME": home, "BRAINRANK_OFFLINE": "1"}
        command = [sys.executable, "-m", "brainrank", "run", "--quiet"]
        times, cpu = [], []
        for _ in range(2):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            out = subprocess.run(command, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if out.returncode != 0:
                raise RuntimeError(f"brainrank run failed:\n{out.stderr[-3000:]}")
        summary = out.stderr.strip().splitlines()
        db = Path(home) / "leaderboard.db"
        from brainrank.leaderboard import open_store

        store = open_store(str(db))
        completions = store.completions_frame()
        combos = len(completions)
        scores = store.count("scores")
        failures = store.count("failures")
        store.close()
    return {
        "first_run": times[0],
        "rerun": times[1],
        "first_run_cpu": cpu[0],
        "rerun_cpu": cpu[1],
        "load_average": os.getloadavg()[0],
        "combinations": combos,
        "score_rows": scores,
        "failures": failures,
        "rerun_output": summary[-1] if summary else "",
    }


class _BenchPlugin:
    """A dataset of ``n`` images and ``v`` voxels for the whole-model run (registered as an
    object, not installed)."""

    def __init__(self, n: int, v: int, size: int = 224, seed: int = 0):
        self.n, self.v, self.size, self.seed = n, v, size, seed

    def _images(self):
        rng = np.random.default_rng(self.seed)
        base = rng.integers(0, 256, (64, self.size, self.size, 3), dtype=np.uint8)
        shifts = rng.integers(0, self.size, (self.n, 2))
        return base, shifts

    def build(self, data_dir=None):
        from brainrank import Dataset, DatasetMetadata, StimulusSet, make_responses

        base, shifts = self._images()
        ids = [f"img{i:04d}" for i in range(self.n)]

        def load(stimulus_id: str):
            i = int(stimulus_id[3:])
            return np.roll(base[i % len(base)], tuple(shifts[i]), axis=(0, 1))

        rng = np.random.default_rng(self.seed + 1)
        # voxels: smooth functions of the image statistics plus noise, 2 repetitions
        stats = np.stack([load(s).reshape(-1, 3).mean(0) for s in ids])
        stats = (stats - stats.mean(0)) / (stats.std(0) + 1e-9)
        signal = stats @ rng.standard_normal((3, self.v))
        trials = np.concatenate([signal + rng.standard_normal(signal.shape) for _ in range(2)])
        regions = np.array(["V1", "V4", "IT", "FFA"])[np.arange(self.v) % 4]
        responses = make_responses(
            trials.astype(np.float32),
            stimulus_id=ids * 2,
            repetition=[0] * self.n + [1] * self.n,
            neuroid_id=[f"v{i}" for i in range(self.v)],
            subject="subj01",
            region=regions,
        )
        metadata = DatasetMetadata(species="none", modality="synthetic", n_stimuli=self.n)
        stimuli = StimulusSet("bench", ids, load, content_id=f"bench-{self.n}-{self.seed}")
        return Dataset("bench/nsd-like", stimuli, metadata, responses=responses)

    @hookimpl
    def brainrank_datasets(self):
        from brainrank import DatasetMetadata, DatasetSpec

        meta = DatasetMetadata(species="none", modality="synthetic", n_stimuli=self.n)
        return [DatasetSpec("bench/nsd-like", self.build, meta)]


def whole_model(
    model: str = "torchvision/alexnet:random", n: int = 1000, voxels: int = 10_000
) -> dict[str, Any]:
    """One model, every layer, NSD protocol: fits per second through the real runner."""
    from brainrank.core.extraction import ExtractionConfig
    from brainrank.core.registry import Registry
    from brainrank.grid import run_grid
    from brainrank.leaderboard import open_store

    plugin = _BenchPlugin(n, voxels)
    registry = Registry(plugins=[plugin])
    with tempfile.TemporaryDirectory(prefix="brainrank-bench-") as folder:
        store = open_store(str(Path(folder) / "lb.db"))
        start = time.perf_counter()
        cpu_start = time.process_time()
        summary = run_grid(
            registry=registry,
            store=store,
            models=[model],
            datasets=["bench/nsd-like"],
            metrics=["srp-ridge:nsd"],
            extraction=ExtractionConfig(batch_size=50),
            progress=False,
        )
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        if summary.failures:
            raise RuntimeError(f"the run failed: {summary.failures}")
        frame = store.completions_frame()
        scoring = float(frame["seconds"].sum())
        scores = store.scores_frame()
        layers = scores[scores["selection"] == "layer"]["layer"].nunique()
        store.close()
    fits = layers * voxels
    return {
        "model": model,
        "stimuli": n,
        "voxels": voxels,
        "layers": int(layers),
        "fits": int(fits),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "scoring_seconds": scoring,
        "fits_per_second": fits / seconds,
        "scoring_fits_per_second": fits / scoring if scoring > 0 else float("nan"),
        "projected_paper_hours": PAPER_FITS / (fits / seconds) / 3600,
    }


def run(
    quick: bool = False, voxels: int | None = None, model: str = "torchvision/alexnet:random"
) -> dict[str, Any]:
    """Both measurements as one bench entry (see bench/README.md)."""
    suite = default_suite()
    fits = whole_model(model=model, voxels=voxels or (2_000 if quick else 10_000))
    summary = (
        f"suite {suite['combinations']} combinations, {suite['score_rows']} rows, "
        f"CPU {suite['first_run_cpu']:.0f} s (rerun {suite['rerun_cpu']:.0f} s), load "
        f"{suite['load_average']:.1f}; "
        f"{suite['failures']} failures; {fits['model']} {fits['layers']} layers x "
        f"{fits['voxels']} voxels = {fits['fits']} fits at {fits['fits_per_second']:.0f} fits/s "
        f"({fits['scoring_fits_per_second']:.0f}/s in scoring); 5.17e9 fits: "
        f"{fits['projected_paper_hours']:.1f} h ({fits['projected_paper_hours'] / 24:.1f} days)"
    )
    return {
        "name": "suite",
        "sizes": {"voxels": fits["voxels"], "stimuli": fits["stimuli"]},
        "seconds": {
            "default_suite": suite["first_run"],
            "default_suite_rerun": suite["rerun"],
            "model_run": fits["seconds"],
            "model_scoring": fits["scoring_seconds"],
        },
        "speedup": {},
        "suite": suite,
        "fits": fits,
        "summary": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 voxels instead of 10,000")
    parser.add_argument("--voxels", type=int)
    parser.add_argument("--model", default="torchvision/alexnet:random")
    args = parser.parse_args()
    result = run(args.quick, args.voxels, args.model)
    print(result["summary"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
