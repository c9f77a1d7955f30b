"""Every-layer feature extraction vs a plain forward pass.

Both run the same model on the same images with the same preprocessing and batch size.
The plain pass only computes the network's output; brainrank's extraction hooks every
layer, projects each one (very sparse random projection to the Johnson-Lindenstrauss
dimension of n) and computes its exact RDM, within the default memory budget. The figure
of merit is the ratio of the two times (target: at most 2x).
"""

from __future__ import annotations

import numpy as np

from bench.common import best_time, entry, peak_rss_bytes, reset_peak_rss, rss_bytes


def smooth_images(n: int, size: int = 256, seed: int = 0) -> list[np.ndarray]:
    """``n`` RGB uint8 images of low-pass filtered noise (natural-image-like 1/f spectra)."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(size)
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    amplitude = 1.0 / np.maximum(radius, 1.0 / size)
    images = []
    for _ in range(n):
        noise = rng.standard_normal((3, size, size))
        field = np.fft.ifft2(np.fft.fft2(noise) * amplitude).real
        field = (field - field.mean()) / (field.std() + 1e-9)
        images.append(np.clip(128 + 48 * field, 0, 255).astype(np.uint8).transpose(1, 2, 0))
    return images


def run(
    model_id: str = "torchvision/resnet18:random",
    n: int = 256,
    batch_size: int = 32,
    memory_budget_gb: float = 4.0,
    repeat: int = 3,
):
    import torch

    import brainrank
    from brainrank.core.extraction import ExtractionConfig, extract_features
    from brainrank.core.projection import jl_dimension
    from brainrank.core.scores import FeatureRequest
    from brainrank.core.stimuli import StimulusSet

    images = smooth_images(n)
    ids = [f"img{i:04d}" for i in range(n)]
    stimuli = StimulusSet("bench", ids, dict(zip(ids, images, strict=True)).__getitem__)
    model = brainrank.load_model(model_id)
    k = jl_dimension(n)
    request = FeatureRequest(frozenset({k}), rdm=True)
    config = ExtractionConfig(batch_size=batch_size, memory_budget=int(memory_budget_gb * 2**30))

    def plain() -> None:
        with torch.inference_mode():
            for _, batch in stimuli.batches(batch_size):
                model.module(torch.stack([model.preprocess(image) for image in batch]))

    holder = {}

    def extract() -> None:
        holder["features"] = extract_features(model, stimuli, request, config)

    seconds = {
        "plain_forward": best_time(plain, repeat=repeat),
        "brainrank_all_layers": best_time(extract, repeat=repeat),
    }
    features = holder["features"]
    before = rss_bytes()
    reset_peak_rss()
    extract_features(model, stimuli, request, config)
    extra_gb = (peak_rss_bytes() - before) / 1e9
    return entry(
        "extraction_all_layers",
        {
            "model": model_id,
            "n": n,
            "image": model.metadata.input_size,
            "batch": batch_size,
            "k": k,
            "budget_gib": memory_budget_gb,
        },
        seconds,
        "brainrank_all_layers",
        overhead=seconds["brainrank_all_layers"] / seconds["plain_forward"],
        n_layers=len(features),
        n_features=int(sum(layer.n_features for layer in features)),
        passes=features.info["passes"],
        extra_memory_gb={"brainrank_all_layers": extra_gb},
    )


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="torchvision/resnet18:random")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--budget", type=float, default=4.0, help="memory budget, GiB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    result = run(args.model, args.n, memory_budget_gb=args.budget, repeat=args.repeat)
    print(json.dumps(result))
