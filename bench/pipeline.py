"""brainrank vs the pipeline a lab assembles today, on one workload, in one run.

The workload is the NSD protocol of ``srp-ridge:nsd`` on bench/suite.py's synthetic
NSD-sized dataset: one model, every layer, 1000 images, 10,000 voxels; each layer projected
to the Johnson-Lindenstrauss dimension (eps 0.1) with a very sparse random projection,
z-scored, and regressed on every voxel with exact leave-one-out ridge (alpha 1e5,
intercept); a voxel's score is the Pearson r of its LOO predictions, a region's the mean.

- **brainrank**: ``run_grid`` with ``srp-ridge:nsd`` (planning, extraction, projection,
  scoring, leaderboard writes), as ``bench/suite.py`` runs it.
- **peer**: ``thingsvision`` extracts every layer in one pass (``module_names``), then per
  layer scikit-learn's ``SparseRandomProjection`` (the same dimension), ``StandardScaler``
  and ``RidgeCV(alphas=[1e5], store_cv_results=True)`` (exact LOO in its GCV mode; its
  stored values are the LOO predictions when a scoring is given). Same network: the peer
  builds the torchvision architecture after ``torch.manual_seed(0)``, as brainrank builds
  ``:random`` models; the weight checksums are compared.

Each side runs in a fresh process; the times are end to end inside that process (imports
included), the memory its peak RSS (``ru_maxrss``). Agreement: (1) the ridge exactly, on the
peer's projected features of one layer, brainrank's ``zscore_columns`` + ``RidgeCV`` vs
the peer's per-voxel r; (2) the per-layer scores, which differ by the random projection:
compared with the spread between two projection seeds of the peer (see ``--help``).

python -m bench.pipeline [--images N] [--voxels V] [--model ID] [--peer-python PATH]

The peers need their own environment, since thingsvision pins torchvision 0.15 and numpy
< 2 (see bench/README.md): ``make bench-peer`` creates it in ``.bench-peer`` and runs this
script with it; ``--peer-python`` (or ``BENCH_PEER_PYTHON``) names another Python.
Without thingsvision the script says so and runs brainrank's side only.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    ROOT,
    max_rss_bytes,
    nsd_like_images,
    nsd_like_trials,
    run_worker,
    voxel_regions,
)

ALPHA = 1e5
EPS = 0.1
BATCH = 50
PEER_MODULES = ("thingsvision", "sklearn", "torch")
#: brainrank's ridge vs scikit-learn's on identical features: float32 products vs float64
EXACT_TOLERANCE = 1e-4


# ----------------------------------------------------------------------------- workers
def brainrank_worker(model: str, n: int, v: int) -> dict[str, Any]:
    """brainrank's side: the whole run of bench/suite.py (and, after it and not counted in
    ``end_to_end_seconds``, its kernel rate on the run's cached features)."""
    start = time.perf_counter()
    from bench.suite import whole_model

    result = whole_model(model, n, v, kernel=True)
    # end to end: imports, dataset, the run; not the kernel measurement that follows it
    result["end_to_end_seconds"] = result["run_finished_at"] - start
    return result


def torchvision_name(model: str) -> tuple[str, bool]:
    """``torchvision/NAME[:random]`` -> (NAME, pretrained); the peer side builds only these."""
    family, _, rest = model.partition("/")
    name, _, variant = rest.partition(":")
    if family != "torchvision" or not name or variant not in ("", "random"):
        raise ValueError(
            f"the peer pipeline builds torchvision/<name>[:random] models only, got {model!r}; "
            "use e.g. --model torchvision/alexnet:random (brainrank's side runs any model)."
        )
    return name, variant != "random"


def weights_checksum(module: Any) -> float:
    """A checksum of a network's parameters (sum of |w| in float64), to compare networks."""
    return float(sum(p.detach().double().abs().sum().item() for p in module.parameters()))


def pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of matching columns, float64 (NaN where a column is constant)."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def region_means(r: np.ndarray) -> dict[str, float]:
    regions = voxel_regions(len(r))
    with np.errstate(invalid="ignore"):
        return {str(g): float(np.nanmean(r[regions == g])) for g in np.unique(regions)}


def peer_worker(
    model: str, n: int, v: int, layers: list[str], check_layer: str, out: Path
) -> dict[str, Any]:
    """The peer side: thingsvision + scikit-learn, on the same data. Saves the check
    layer's projected features and per-voxel r (and a second seed's r) under ``out``."""
    start = time.perf_counter()
    import numpy

    if not hasattr(numpy, "AxisError"):  # thingsvision 2.7 reads np.AxisError (numpy < 2)
        setattr(numpy, "AxisError", numpy.exceptions.AxisError)  # noqa: B010
    import torch

    # torch's triton must load before tensorflow (which thingsvision imports): imported
    # after it, triton crashes the process (torch 2.14, tensorflow 2.21)
    with contextlib.suppress(ImportError):
        importlib.import_module("torch._dynamo")
    from PIL import Image
    from sklearn.linear_model import RidgeCV
    from sklearn.preprocessing import StandardScaler
    from sklearn.random_projection import SparseRandomProjection, johnson_lindenstrauss_min_dim
    from thingsvision import get_extractor
    from thingsvision.utils.data import DataLoader

    imported = time.perf_counter()
    name, pretrained = torchvision_name(model)
    image = nsd_like_images(n)
    trials = nsd_like_trials(n, v, image)
    Y = (trials[:n] + trials[n:]) / 2  # trial average: repetitions 0 and 1
    torch.manual_seed(0)
    extractor = get_extractor(
        model_name=name, source="torchvision", pretrained=pretrained, device="cpu"
    )
    checksum = weights_checksum(extractor.model)
    transform = extractor.get_transformations(resize_dim=256, crop_dim=224)

    class Images(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int):
            return transform(Image.fromarray(image(i)))

    batches = DataLoader(Images(), batch_size=BATCH, backend=extractor.get_backend())
    t0 = time.perf_counter()
    features = extractor.extract_features(
        batches=batches, module_names=layers, flatten_acts=True, output_type="ndarray"
    )
    extraction = time.perf_counter() - t0
    k = int(johnson_lindenstrauss_min_dim(n, eps=EPS))
    projection = ridge = 0.0
    scores: dict[str, dict[str, float]] = {}
    check_raw = check = None
    for layer in layers:
        X = np.asarray(features.pop(layer), dtype=np.float32).reshape(n, -1)
        t0 = time.perf_counter()
        if layer == check_layer and X.shape[1] > k:
            check_raw = X  # kept for the second seed below
        if X.shape[1] > k:  # as brainrank: a layer with at most k features is used as it is
            X = SparseRandomProjection(k, random_state=0).fit_transform(X)
        projection += time.perf_counter() - t0
        t0 = time.perf_counter()
        if np.ptp(X, axis=0).max() == 0:  # a constant layer predicts nothing
            scores[layer] = {g: float("nan") for g in np.unique(voxel_regions(v))}
            continue
        Xs = StandardScaler().fit_transform(X)
        fit = RidgeCV(alphas=[ALPHA], scoring="r2", store_cv_results=True).fit(Xs, Y)
        r = pearson_columns(fit.cv_results_[:, :, 0], Y)
        ridge += time.perf_counter() - t0
        scores[layer] = region_means(r)
        if layer == check_layer:
            check = (X, r)
        del X, Xs, fit
    seconds = time.perf_counter() - start
    peak = max_rss_bytes()
    if check is not None:
        np.save(out / "check_X.npy", check[0])
        np.save(out / "check_r.npy", check[1])
    # outside the timing: the same check layer under a second projection seed, the spread
    # the per-layer comparison of two different projections must allow for
    seed_spread = float("nan")
    if check_raw is not None and check_layer in scores:
        X2 = SparseRandomProjection(k, random_state=1).fit_transform(check_raw)
        fit = RidgeCV(alphas=[ALPHA], scoring="r2", store_cv_results=True).fit(
            StandardScaler().fit_transform(X2), Y
        )
        other = region_means(pearson_columns(fit.cv_results_[:, :, 0], Y))
        seed_spread = max(abs(other[g] - scores[check_layer][g]) for g in other)
    return {
        "end_to_end_seconds": seconds,
        "import_seconds": imported - start,
        "extraction_seconds": extraction,
        "projection_seconds": projection,
        "ridge_seconds": ridge,
        "peak_rss_bytes": peak,
        "k": k,
        "weights_checksum": checksum,
        "layer_scores": scores,
        "seed_spread": seed_spread,
    }


# ----------------------------------------------------------------------------- driver
def find_peer_python(explicit: str | None = None) -> str | None:
    """A Python that can import thingsvision and scikit-learn: ``explicit``, then
    ``$BENCH_PEER_PYTHON``, this interpreter, ``.bench-peer`` (what ``make bench-peer``
    creates) and ``bench-venv`` beside the repository."""
    candidates = [explicit, os.environ.get("BENCH_PEER_PYTHON"), sys.executable]
    candidates.append(str(ROOT / ".bench-peer" / "bin" / "python"))
    candidates.append(str(ROOT.parent / "bench-venv" / "bin" / "python"))
    probe = (
        "import importlib.util as u, sys; "
        f"sys.exit(0 if all(u.find_spec(m) for m in {PEER_MODULES!r}) else 1)"
    )
    for python in candidates:
        usable = python and Path(python).exists()
        if usable and subprocess.run([python, "-c", probe], capture_output=True).returncode == 0:
            return python
        if python and python == explicit:
            return None  # an explicit choice that cannot import the peers: say so
    return None


def timed_worker(args: list[str], python: str | None = None) -> dict[str, Any]:
    """A worker run in a fresh process, with the wall time the parent measured."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    result = run_worker("bench.pipeline", *args, python=python, env=env)
    result["process_seconds"] = time.perf_counter() - start
    return result


def exact_ridge_check(folder: Path, n: int, v: int) -> float:
    """Largest |r difference| between brainrank's ridge and the peer's on the peer's own
    projected features of the check layer (z-scored by each side)."""
    from brainrank.core.ridge import RidgeCV, zscore_columns

    if not (folder / "check_X.npy").exists():  # the check layer was constant
        return float("nan")
    X = np.load(folder / "check_X.npy")
    peer_r = np.load(folder / "check_r.npy")
    trials = nsd_like_trials(n, v, nsd_like_images(n))
    Y = (trials[:n] + trials[n:]) / 2
    ours = RidgeCV([ALPHA]).fit(zscore_columns(X), Y).result_.scores
    return float(np.nanmax(np.abs(ours - peer_r)))


def layer_means(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    return {layer: float(np.nanmean(list(by.values()))) for layer, by in scores.items()}


def agreement(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    """Per-layer (mean over regions) scores of the two sides compared."""
    a, b = layer_means(ours["layer_scores"]), layer_means(peer["layer_scores"])
    layers = [layer for layer in a if np.isfinite(a[layer]) and np.isfinite(b.get(layer, np.nan))]
    x = np.array([a[layer] for layer in layers])
    y = np.array([b[layer] for layer in layers])
    r = float(np.corrcoef(x, y)[0, 1]) if len(layers) > 2 and x.std() and y.std() else np.nan
    return {
        "layers_compared": len(layers),
        "max_layer_difference": float(np.max(np.abs(x - y))) if layers else float("nan"),
        "mean_layer_difference": float(np.mean(np.abs(x - y))) if layers else float("nan"),
        "layer_profile_r": r,
        "best_layer": [max(layers, key=a.get), max(layers, key=b.get)] if layers else [],
    }


def run(
    model: str = "torchvision/alexnet:random",
    n: int = 1000,
    v: int = 10_000,
    peer_python: str | None = None,
    peers: bool = True,
) -> dict[str, Any]:
    """Both sides, one after the other, and their comparison (see the module docstring)."""
    sizes = ["--model", model, "--images", str(n), "--voxels", str(v)]
    ours = timed_worker(["--worker", "brainrank", *sizes])
    result: dict[str, Any] = {
        "name": "pipeline",
        "sizes": {"model": model, "images": n, "voxels": v},
        "brainrank": ours,
        "seconds": {"brainrank": ours["end_to_end_seconds"]},
        "speedup": {},
    }
    python = find_peer_python(peer_python) if peers else None
    if python is None:
        result["peer_missing"] = (
            "peer pipeline not run: no Python with thingsvision and scikit-learn found "
            "(tried --peer-python, $BENCH_PEER_PYTHON, this interpreter, .bench-peer, ../bench-venv; "
            "`make bench-peer` creates .bench-peer); "
            "see bench/README.md for the separate environment it needs."
        )
        return result
    torchvision_name(model)  # a clear error before a long peer run
    layers = list(ours["layer_scores"])
    check = layers[len(layers) // 2]
    with tempfile.TemporaryDirectory(prefix="brainrank-pipeline-") as folder:
        peer = timed_worker(
            ["--worker", "peer", *sizes, "--layers", ",".join(layers), "--check-layer", check,
             "--out", folder],
            python=python,
        )  # fmt: skip
        exact = exact_ridge_check(Path(folder), n, v)
    import torch

    import brainrank

    ours_checksum = weights_checksum(brainrank.load_model(model).module)
    seconds = {"brainrank": ours["end_to_end_seconds"], "peer": peer["end_to_end_seconds"]}
    result.update(
        peer=peer,
        peer_python=python,
        seconds=seconds,
        speedup={"brainrank_vs_peer": seconds["peer"] / seconds["brainrank"]},
        memory_ratio=peer["peak_rss_bytes"] / ours["peak_rss_bytes"],
        same_weights=bool(np.isclose(ours_checksum, peer["weights_checksum"], rtol=1e-9)),
        check_layer=check,
        exact_ridge_max_difference=exact,
        agreement=agreement(ours, peer),
        torch=torch.__version__,
    )
    # two different random projections of one layer give scores that differ by about the
    # peer's own seed-to-seed difference; twice that bounds brainrank vs peer per layer. The
    # ridge on identical features must agree to float32 round-off (brainrank's products).
    tolerance = 2 * peer["seed_spread"] if np.isfinite(peer["seed_spread"]) else 0.05
    result["layer_tolerance"] = max(tolerance, 0.005)
    result["exact_tolerance"] = EXACT_TOLERANCE
    result["scores_agree"] = bool(
        result["agreement"]["max_layer_difference"] <= result["layer_tolerance"]
        and exact <= EXACT_TOLERANCE
    )
    return result


def summary(result: dict[str, Any]) -> str:
    """The printed lines of a :func:`run` result."""
    ours = result["brainrank"]
    gb = 1e9
    lines = [
        f"pipeline {result['sizes']['model']}, {result['sizes']['images']} images x "
        f"{result['sizes']['voxels']} voxels, {ours['layers']} layers, srp-ridge:nsd",
        f"  brainrank: {ours['end_to_end_seconds']:.1f} s end to end "
        f"({ours['process_seconds']:.1f} s process), peak RSS {ours['peak_rss_bytes'] / gb:.2f} GB;"
        f" whole run {ours['fits_per_second']:.0f} fits/s, kernel alone "
        f"{ours['kernel_fits_per_second']:.0f} fits/s, ratio {ours['kernel_ratio']:.2f}",
    ]
    if "peer_missing" in result:
        lines.append("  " + result["peer_missing"])
        return "\n".join(lines)
    peer, agree = result["peer"], result["agreement"]
    lines += [
        f"  thingsvision + scikit-learn: {peer['end_to_end_seconds']:.1f} s end to end "
        f"({peer['process_seconds']:.1f} s process; imports {peer['import_seconds']:.1f}, "
        f"extraction {peer['extraction_seconds']:.1f}, projection {peer['projection_seconds']:.1f},"
        f" ridge {peer['ridge_seconds']:.1f}), peak RSS {peer['peak_rss_bytes'] / gb:.2f} GB",
        f"  speed-up {result['speedup']['brainrank_vs_peer']:.1f}x (target >= 5x); peer memory "
        f"{result['memory_ratio']:.1f}x brainrank's; same weights: {result['same_weights']}",
        f"  ridge on identical projected features ({result['check_layer']}): max |r diff| "
        f"{result['exact_ridge_max_difference']:.1e} (tolerance {result['exact_tolerance']:.0e})",
        f"  per-layer scores ({agree['layers_compared']} layers, different projections): max "
        f"|diff| {agree['max_layer_difference']:.4f}, mean {agree['mean_layer_difference']:.4f}; "
        f"seed-to-seed spread of the peer on {result['check_layer']}: {peer['seed_spread']:.4f};"
        f" layer profile r {agree['layer_profile_r']:.3f}; best layer {agree['best_layer']}",
        f"  scores agree within tolerance (per layer {result['layer_tolerance']:.4f} = twice that "
        f"spread): {result['scores_agree']}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="torchvision/alexnet:random")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--voxels", type=int, default=10_000)
    parser.add_argument("--peer-python", help="a Python with thingsvision and scikit-learn")
    parser.add_argument("--no-peers", action="store_true", help="brainrank's side only")
    parser.add_argument("--json", action="store_true", help="print the result as JSON last")
    parser.add_argument("--worker", choices=["brainrank", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--layers", help=argparse.SUPPRESS)
    parser.add_argument("--check-layer", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.images < 12 or args.voxels < 4:
        parser.error("--images must be at least 12 and --voxels at least 4")
    if args.worker == "brainrank":
        print(json.dumps(brainrank_worker(args.model, args.images, args.voxels)))
    elif args.worker == "peer":
        layers = args.layers.split(",")
        out = peer_worker(
            args.model, args.images, args.voxels, layers, args.check_layer, Path(args.out)
        )
        print(json.dumps(out))
    else:
        try:
            result = run(args.model, args.images, args.voxels, args.peer_python, not args.no_peers)
        except ValueError as exc:
            sys.exit(f"error: {exc}")
        print(summary(result))
        if args.json:
            print(json.dumps(result))


if __name__ == "__main__":
    main()
