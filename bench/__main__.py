"""Run the benchmarks and write ``bench/results.json``.

python -m bench            # every benchmark at several sizes
python -m bench --quick    # the reference sizes only (the targets in bench/README.md)

--quick also prints the issue-12 figures in one run: whole-run vs kernel fits/s and the
pipeline ratio vs thingsvision + scikit-learn (``pipeline``), extraction vs a plain forward
pass (``extraction``) and ``make run``'s CPU seconds and peak RSS (``make_run``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from bench import extraction, pipeline, projection, rdm, ridge, suite
from bench.common import cpu_name

REFERENCE = [
    ("ridge", lambda: ridge.run(n=1000, k=5960, v=10_000)),
    ("projection", lambda: projection.run(n=1000, p=1_000_000, k=5960)),
    ("rdm", lambda: rdm.run(n=1000, p=50_000)),
    ("extraction", lambda: extraction.run("torchvision/resnet18:random", n=256, repeat=2)),
    ("pipeline", lambda: pipeline.run("torchvision/alexnet:random", n=1000, v=10_000)),
    ("make_run", lambda: _make_run()),
]
EXTRA = [
    ("ridge", lambda: ridge.run(n=1000, k=5960, v=50_000, peers=False)),
    ("ridge", lambda: ridge.run(n=500, k=4096, v=10_000)),
    ("projection", lambda: projection.run(n=500, p=200_000, k=4096)),
    ("rdm", lambda: rdm.run(n=200, p=800_000)),
    ("suite", lambda: suite.run()),  # whole runs: the default suite, one model's fits
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="reference sizes only")
    parser.add_argument(
        "--only",
        help="comma-separated: ridge, projection, rdm, extraction, pipeline, make_run, suite",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results.json"))
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    plan = REFERENCE + ([] if args.quick else EXTRA)
    results = []
    print(f"CPU: {cpu_name()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    started = time.perf_counter()
    for name, job in plan:
        if only and name not in only:
            continue
        start = time.perf_counter()
        result = job()
        result["wall_seconds"] = time.perf_counter() - start
        results.append(result)
        print(_line(result), flush=True)
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)
    report = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu": cpu_name(),
            "python": platform.python_version(),
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "results": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.out}")


def _make_run() -> dict:
    """``make run`` from cold as a bench entry."""
    use = suite.make_run()
    return {
        "name": "make_run",
        "sizes": {"command": "brainrank run (default suite), fresh home"},
        "seconds": {"wall": use["wall_seconds"], "cpu": use["cpu_seconds"]},
        "speedup": {},
        **use,
        "summary": f"peak RSS {use['peak_rss_bytes'] / 1e9:.2f} GB (targets: <= 60 s CPU, "
        f"<= 2 GB); load average {use['load_average']:.1f}",
    }


def _line(result: dict) -> str:
    if result["name"] == "pipeline":
        return pipeline.summary(result)
    sizes = " ".join(f"{k}={v}" for k, v in result["sizes"].items())
    secs = " ".join(f"{k}={v:.2f}s" for k, v in result["seconds"].items())
    speed = " ".join(f"{k}={v:.1f}x" for k, v in result["speedup"].items())
    extra = ""
    if "fraction_of_peak" in result:
        extra = f" {result['gflops']:.0f} GFLOP/s = {100 * result['fraction_of_peak']:.0f}% of the {result['matmul_peak_gflops']:.0f} GFLOP/s matmul peak"
    if "extra_memory_gb" in result:
        extra = " extra memory " + " ".join(
            f"{k}={v:.2f}GB" for k, v in result["extra_memory_gb"].items()
        )
    if "summary" in result:
        extra = " " + result["summary"]
    return f"{result['name']:26s} {sizes} | {secs} | {speed}{extra}"


if __name__ == "__main__":
    main()
