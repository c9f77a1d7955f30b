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
python -m bench.suite --model-only [--images N] [--voxels V]   # whole run vs kernel only
python -m bench.suite --profile [--images 500] [--voxels 5000]  # where the time goes
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

from bench.common import max_rss_bytes, nsd_like_images, nsd_like_trials, voxel_regions
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


#: run in a fresh Python whose only child is the command: its RUSAGE_CHILDREN is the command's
_RUSAGE_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
out = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
use = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"returncode": out.returncode, "stderr": out.stderr[-3000:], "wall": wall,
                  "user": use.ru_utime, "system": use.ru_stime, "maxrss": use.ru_maxrss * 1024}))
"""


def make_run() -> dict[str, Any]:
    """``make run`` (``brainrank run``, the default suite) from cold: a fresh brainrank home,
    nothing cached. CPU seconds (user + system) and peak RSS of the command alone, read with
    ``getrusage(RUSAGE_CHILDREN)`` in a wrapper process that runs nothing else."""
    with tempfile.TemporaryDirectory(prefix="brainrank-make-run-") as home:
        env = {**os.environ, "BRAINRANK_HOME": home, "BRAINRANK_OFFLINE": "1"}
        command = [sys.executable, "-m", "brainrank", "run", "--quiet"]
        out = subprocess.run(
            [sys.executable, "-c", _RUSAGE_WRAPPER, *command],
            env=env,
            capture_output=True,
            text=True,
        )
    if out.returncode != 0:
        raise RuntimeError(f"the rusage wrapper failed:\n{out.stderr[-3000:]}")
    use = json.loads(out.stdout.strip().splitlines()[-1])
    if use["returncode"] != 0:
        raise RuntimeError(f"brainrank run failed:\n{use['stderr']}")
    return {
        "wall_seconds": use["wall"],
        "cpu_seconds": use["user"] + use["system"],
        "user_seconds": use["user"],
        "system_seconds": use["system"],
        "peak_rss_bytes": use["maxrss"],
        "load_average": os.getloadavg()[0],
    }


class _BenchPlugin:
    """A dataset of ``n`` images and ``v`` voxels for the whole-model run (registered as an
    object, not installed)."""

    def __init__(self, n: int, v: int, size: int = 224, seed: int = 0):
        self.n, self.v, self.size, self.seed = n, v, size, seed

    def build(self, data_dir=None):
        from brainrank import Dataset, DatasetMetadata, StimulusSet, make_responses

        image = nsd_like_images(self.n, self.size, self.seed)
        ids = [f"img{i:04d}" for i in range(self.n)]

        def load(stimulus_id: str):
            return image(int(stimulus_id[3:]))

        responses = make_responses(
            nsd_like_trials(self.n, self.v, image, self.seed),
            stimulus_id=ids * 2,
            repetition=[0] * self.n + [1] * self.n,
            neuroid_id=[f"v{i}" for i in range(self.v)],
            subject="subj01",
            region=voxel_regions(self.v),
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
    model: str = "torchvision/alexnet:random",
    n: int = 1000,
    voxels: int = 10_000,
    kernel: bool = True,
    memory_budget: float = 4.0,
) -> dict[str, Any]:
    """One model, every layer, NSD protocol: fits per second through the real runner, and
    (``kernel``) the ridge kernel's own rate on the same projected features and voxels.

    The run writes its features to a feature cache in a temporary folder (as ``brainrank
    run`` does); the kernel then reads them back, z-scores each layer as the metric does and
    times ``RidgeCV(alphas=[1e5]).fit`` alone. Its per-region scores are checked against the
    run's (``kernel_max_difference``). ``peak_rss_bytes`` is read before the kernel step."""
    from brainrank.core.cache import FeatureCache
    from brainrank.core.extraction import ExtractionConfig
    from brainrank.core.registry import Registry
    from brainrank.grid import run_grid
    from brainrank.leaderboard import open_store

    plugin = _BenchPlugin(n, voxels)
    registry = Registry(plugins=[plugin])
    with tempfile.TemporaryDirectory(prefix="brainrank-bench-") as folder:
        store = open_store(str(Path(folder) / "lb.db"))
        cache = FeatureCache(Path(folder) / "features")
        start = time.perf_counter()
        cpu_start = time.process_time()
        summary = run_grid(
            registry=registry,
            store=store,
            models=[model],
            datasets=["bench/nsd-like"],
            metrics=["srp-ridge:nsd"],
            extraction=ExtractionConfig(batch_size=50, memory_budget=int(memory_budget * 2**30)),
            cache=cache,
            progress=False,
        )
        finished = time.perf_counter()
        seconds = finished - start
        cpu = time.process_time() - cpu_start
        peak = max_rss_bytes()
        if summary.failures:
            raise RuntimeError(f"the run failed: {summary.failures}")
        frame = store.completions_frame()
        scoring = float(frame["seconds"].sum())
        scores = store.scores_frame()
        store.close()
        rows = scores[scores["selection"] == "layer"]
        layer_scores: dict[str, dict[str, float]] = {}
        for row in rows.sort_values("layer_index").itertuples():
            layer_scores.setdefault(str(row.layer), {})[str(row.region)] = float(row.score)
        layers = len(layer_scores)
        fits = layers * voxels
        result: dict[str, Any] = {
            "model": model,
            "memory_budget_gib": memory_budget,
            "stimuli": n,
            "voxels": voxels,
            "layers": int(layers),
            "fits": int(fits),
            "seconds": seconds,
            "cpu_seconds": cpu,
            "scoring_seconds": scoring,
            "peak_rss_bytes": peak,
            "fits_per_second": fits / seconds,
            "scoring_fits_per_second": fits / scoring if scoring > 0 else float("nan"),
            "projected_paper_hours": PAPER_FITS / (fits / seconds) / 3600,
            "run_finished_at": finished,  # time.perf_counter() when run_grid returned
            "layer_scores": layer_scores,
        }
        if kernel:
            dataset = plugin.build()
            result.update(kernel_rate(dataset, cache, layer_scores))
            result["kernel_ratio"] = result["fits_per_second"] / result["kernel_fits_per_second"]
            result.update(forward_and_projection(model, dataset.stimuli, cache, batch_size=50))
            irreducible = (
                result["forward_seconds"] + result["projection_seconds"] + result["kernel_seconds"]
            )
            result["irreducible_seconds"] = irreducible
            result["irreducible_ratio"] = seconds / irreducible
            with_chance = irreducible + result["chance_kernel_seconds"]
            result["irreducible_with_chance_seconds"] = with_chance
            result["irreducible_with_chance_ratio"] = seconds / with_chance
    return result


def forward_and_projection(model_id: str, stimuli, cache, batch_size: int = 50) -> dict[str, Any]:
    """The two other irreducible parts of a whole run, each alone, in this process:

    - ``forward_seconds``: a plain forward pass of the model over the stimuli (loading and
      preprocessing the images included, batches of ``batch_size``, no hooks);
    - ``projection_seconds``: the very sparse random projection of every layer the run
      cached, to the same dimension, fed as the extraction feeds it (feature-major float32
      activations captured by hooks on the same modules in a second forward pass that is
      not timed, ``chunk`` images at a time as the streamed extraction keeps them);
      the time of :meth:`ProjectionAccumulator.add` alone, drawing the projection matrix
      included."""
    import torch

    import brainrank
    from brainrank.core.projection import SparseRandomProjection

    entries = sorted(Path(cache.root).glob("??/*/meta.json"))
    features = cache.load(entries[0].parent.name)
    model = brainrank.load_model(model_id)
    module = model.module.eval()
    n = len(stimuli)

    def batches():
        for rows, images in stimuli.batches(batch_size):
            yield rows, torch.stack([model.preprocess(image) for image in images])

    start = time.perf_counter()
    with torch.inference_mode():
        for _, batch in batches():
            module(batch)
    forward = time.perf_counter() - start

    layers = []  # (name, module, accumulator)
    for layer in features:
        try:
            sub = module.get_submodule(layer.name)
        except AttributeError:
            continue
        k = max(layer.projections)
        if layer.n_features <= k:  # used as it is: nothing to project
            continue
        projection = SparseRandomProjection(layer.n_features, k, seed=0)
        layers.append((layer.name, sub, projection.accumulator(n)))
    # as the streamed extraction feeds it: per chunk of images, feature-major buffers
    chunk = int(features.info.get("images_per_chunk") or 250)
    buffers = {
        name: np.empty((sizes, chunk), dtype=np.float32)
        for name, sizes in ((ly.name, ly.n_features) for ly in features)
        if any(name == item[0] for item in layers)
    }
    filled = {"start": 0, "at": 0}

    def keep(name: str, out: torch.Tensor) -> None:
        flat = out.detach().reshape(out.shape[0], -1)
        at = filled["at"]
        buffers[name][:, at : at + flat.shape[0]] = flat.T.numpy()

    handles = [
        sub.register_forward_hook(lambda _m, _i, out, name=name: keep(name, out))
        for name, sub, _ in layers
    ]
    projection = 0.0

    def flush(stop: int) -> float:
        start = filled["start"]
        t0 = time.perf_counter()
        for name, _, accumulator in layers:
            block = torch.as_tensor(buffers[name][:, : stop - start]).T
            accumulator.add(block, 0, rows=slice(start, stop))
        return time.perf_counter() - t0

    try:
        with torch.inference_mode():
            for rows, batch in batches():
                if rows.stop - filled["start"] > chunk:
                    projection += flush(rows.start)
                    filled["start"] = rows.start
                filled["at"] = rows.start - filled["start"]
                module(batch)
            projection += flush(n)
    finally:
        for handle in handles:
            handle.remove()
    return {
        "forward_seconds": forward,
        "projection_seconds": projection,
        "projected_layers": len(layers),
        "projection_chunk": chunk,
    }


def kernel_rate(dataset, cache, layer_scores: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The ridge kernel alone on the features a run cached: per layer, the metric's design
    matrix and z-scoring (``prepare_seconds``) and ``RidgeCV(alphas=[1e5]).fit``
    (``kernel_seconds``), with the largest difference from the run's per-region scores."""
    from brainrank.core.chance import N_PERMUTATIONS
    from brainrank.core.ridge import RidgeCV, zscore_columns
    from brainrank.plugins.metrics import _encoding as enc

    entries = sorted(Path(cache.root).glob("??/*/meta.json"))
    if len(entries) != 1:
        raise RuntimeError(
            f"expected one feature-cache entry under {cache.root}, found {len(entries)}; the "
            "runner no longer caches features where bench/suite.py expects them."
        )
    features = cache.load(entries[0].parent.name)
    targets = enc.Targets.of(dataset)
    k = enc.dimension({"n_components": "jl", "eps": 0.1}, len(targets.stimulus_ids))
    rows = enc.rows_for(features, targets)
    prepare = kernel = chance = 0.0
    orders = [
        np.random.default_rng(seed).permutation(len(targets.stimulus_ids))
        for seed in range(N_PERMUTATIONS)
    ]
    fitted_layers = 0
    difference = 0.0
    for layer in features:
        start = time.perf_counter()
        X = enc.design(layer, k, rows)
        if X is None:
            continue
        X = zscore_columns(X)
        middle = time.perf_counter()
        ridge = RidgeCV([1e5])
        fitted = ridge.fit(X, targets.values).result_
        kernel += time.perf_counter() - middle
        prepare += middle - start
        fitted_layers += 1
        # the chance level's fits (5 relabellings of the stimuli), as the metric's fast
        # path does them (srp-ridge's score_with_permutations)
        t0 = time.perf_counter()
        ridge.fit_relabelled(X, targets.values, orders, decomposition=ridge.decomposition_)
        chance += time.perf_counter() - t0
        for (_, region), index in targets.groups:
            value = enc.group_mean(fitted.scores, index)[0]
            stored = layer_scores.get(layer.name, {}).get(region, float("nan"))
            difference = max(difference, abs(value - stored))
    fits = fitted_layers * targets.values.shape[1]
    return {
        "kernel_fits": fits,
        "kernel_seconds": kernel,
        "prepare_seconds": prepare,
        "kernel_fits_per_second": fits / kernel,
        "kernel_max_difference": difference,
        "chance_kernel_seconds": chance,
    }


#: where a whole run's time goes: (label, substring of a profiled function's file path)
PROFILE_PARTS = [
    ("extraction: forward pass + hooks", "brainrank/core/extraction/"),
    ("projection", "brainrank/core/projection.py"),
    ("ridge kernel", "brainrank/core/ridge.py"),
    ("feature cache", "brainrank/core/cache.py"),
    ("leaderboard writes", "brainrank/leaderboard/"),
    ("grid: planning, jobs", "brainrank/grid/"),
    ("metric + dataset (targets, ceilings)", "brainrank/plugins/"),
    ("synthetic images (bench)", "bench/"),
    ("torch (forward pass: convolutions, linear layers)", "/torch/"),
    ("numpy", "/numpy/"),
    ("scipy", "/scipy/"),
]

#: functions whose cumulative time is reported on its own
PROFILE_FUNCTIONS = [
    "run_grid",
    "extract_features",
    "_forward",
    "score",
    "fit",
    "ceiling",
    "zscore_columns",
    "column_pearson",
    "load",
    "store",
    "add_scores",
    "write_scores",
    "build",
]


def profile_whole_model(
    model: str = "torchvision/alexnet:random", n: int = 500, voxels: int = 5000, top: int = 25
) -> str:
    """A cProfile of :func:`whole_model` (no kernel step): the top functions by cumulative
    and by own time, and own time summed per part of the code (see ``PROFILE_PARTS``)."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    whole_model(model, n, voxels, kernel=False)
    profiler.disable()
    wall = time.perf_counter() - start
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    parts: dict[str, float] = {}
    named: dict[str, float] = {}

    def part(path: str) -> str | None:
        return next((label for label, key in PROFILE_PARTS if key in path), None)

    for (path, _, name), (_, _, own, cumulative, callers) in stats.stats.items():
        label = part(path)
        if label is None and callers:  # a built-in: its time goes to its callers' parts
            total = sum(c[3] for c in callers.values()) or 1.0
            for (caller, _, _), c in callers.items():
                where = part(caller) or "other (interpreter, imports, stdlib)"
                parts[where] = parts.get(where, 0.0) + own * c[3] / total
        else:
            label = label or "other (interpreter, imports, stdlib)"
            parts[label] = parts.get(label, 0.0) + own
        if name in PROFILE_FUNCTIONS and "brainrank" in path:
            where = path.split("brainrank/", 1)[-1]
            named[f"{where}:{name}"] = max(named.get(f"{where}:{name}", 0.0), cumulative)
    lines = [f"profile of {model}, {n} images x {voxels} voxels: {wall:.1f} s under cProfile"]
    lines.append("own time per part of the code:")
    for label, seconds in sorted(parts.items(), key=lambda item: -item[1]):
        lines.append(f"  {seconds:8.2f} s  {label}")
    lines.append("cumulative time of brainrank's main steps:")
    for name, seconds in sorted(named.items(), key=lambda item: -item[1]):
        if seconds >= 0.05:
            lines.append(f"  {seconds:8.2f} s  {name}")
    stats.sort_stats("tottime").print_stats(top)
    lines.append(out.getvalue())
    return "\n".join(lines)


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
        f"({fits['scoring_fits_per_second']:.0f}/s in scoring; kernel alone "
        f"{fits['kernel_fits_per_second']:.0f}/s, whole run / kernel = {fits['kernel_ratio']:.2f}); "
        "5.17e9 fits: "
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


def kernel_line(fits: dict[str, Any]) -> str:
    """One line: whole-run vs kernel fits/s of a :func:`whole_model` result."""
    return (
        f"{fits['model']}, {fits['stimuli']} images x {fits['voxels']} voxels, "
        f"{fits['layers']} layers: whole run {fits['seconds']:.1f} s = "
        f"{fits['fits_per_second']:.0f} fits/s; kernel alone {fits['kernel_seconds']:.1f} s = "
        f"{fits['kernel_fits_per_second']:.0f} fits/s; ratio {fits['kernel_ratio']:.2f} "
        f"(target >= 0.5); kernel scores = run's within {fits['kernel_max_difference']:.1e}; "
        f"peak RSS {fits['peak_rss_bytes'] / 1e9:.2f} GB at a "
        f"{fits.get('memory_budget_gib', 4.0):g} GiB budget\n" + irreducible_line(fits)
    )


def irreducible_line(fits: dict[str, Any]) -> str:
    """One line: the whole run against its irreducible parts, each measured alone."""
    if "irreducible_ratio" not in fits:
        return ""
    return (
        f"whole run {fits['seconds']:.1f} s / (forward {fits['forward_seconds']:.1f} s + "
        f"projection {fits['projection_seconds']:.1f} s + kernel {fits['kernel_seconds']:.1f} s"
        f" = {fits['irreducible_seconds']:.1f} s) = {fits['irreducible_ratio']:.2f} (target "
        f"<= 1.3); with the chance level's 5 relabelled fits "
        f"({fits['chance_kernel_seconds']:.1f} s) in the kernel: "
        f"{fits['irreducible_with_chance_ratio']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 voxels instead of 10,000")
    parser.add_argument("--voxels", type=int)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--model", default="torchvision/alexnet:random")
    parser.add_argument(
        "--model-only", action="store_true", help="whole run vs kernel only, no default suite"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile of the whole run (default 5,000 voxels)"
    )
    parser.add_argument(
        "--memory-budget", type=float, default=4.0, help="GiB of activations (--model-only)"
    )
    args = parser.parse_args()
    if args.profile:
        print(profile_whole_model(args.model, args.images, args.voxels or 5000))
        return
    if args.model_only:
        fits = whole_model(
            args.model, args.images, args.voxels or 10_000, memory_budget=args.memory_budget
        )
        print(kernel_line(fits))
        print(json.dumps(fits))
        return
    result = run(args.quick, args.voxels, args.model)
    print(result["summary"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
