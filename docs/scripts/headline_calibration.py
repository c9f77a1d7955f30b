"""The headline of every metric configuration without signal: calibrated or not, and its null.

For each registered configuration of the built-in metrics, with the features of
``torchvision/alexnet:random`` (four layers) on ``simulated``'s 200 stimuli, it prints the
ranked row (the one the metric declares leak-free) on:

- ``averaged noise``: ``simulated``'s 144 pure-noise neuroids, averaged over repetitions;
- ``shuffled``: ``simulated``'s signal neuroids with the stimulus labels permuted (structure
  kept, correspondence broken), mean and sd over 6 seeded shuffles;
- and, for configurations that are not calibrated, the chance level brainrank stores with
  each of their scores (the same protocol on permuted labels) on the averaged noise.

Run: ``python docs/scripts/headline_calibration.py`` (several minutes on 2 cores). The
figures it printed are in docs/validation.md ("Calibrated or not").
"""

from __future__ import annotations

import numpy as np

import brainrank
from brainrank.core.chance import PermutedDataset, stimulus_permutation
from brainrank.core.dataset import Dataset
from brainrank.core.extraction import ExtractionConfig, extract_features
from brainrank.core.features import score_features
from brainrank.core.responses import average_repetitions
from brainrank.core.scores import FeatureRequest
from brainrank.core.specs import DatasetMetadata
from brainrank.plugins.datasets import simulated

CONFIGS = {
    "srp-ridge": {},
    "srp-ridge:mouse": {},
    "srp-ridge:nsd": {},
    "rsa": {},
    "rsa(comparison=spearman)": {"comparison": "spearman"},
    "versa": {},
    "versa(mode=loo, alphas=1e5)": {"mode": "loo", "alphas": [1e5]},
    "versa:generalisation": {},
    "versa:nsd": {},
    "stacking": {},
    "encoding:taskonomy": {"n_permutations": 100},
}
LAYERS = ("features.2", "features.5", "features.11", "classifier.5")


def main() -> None:
    base = simulated.build()
    responses = base.responses()
    signal = responses["signal"].values.astype(bool)
    meta = DatasetMetadata("simulated", "calibration")
    noise = Dataset("test/noise", base.stimuli, meta,
                    responses=average_repetitions(responses[:, ~signal]))  # fmt: skip
    structured = Dataset("test/signal", base.stimuli, meta, responses=responses[:, signal])
    metrics = {}
    for name, params in CONFIGS.items():
        identifier = name.split("(")[0]
        metrics[name] = brainrank.load_metric(identifier, **params)
    request = FeatureRequest(rdm=True)
    for metric in metrics.values():
        request = request | metric.feature_request(structured)
    model = brainrank.load_model("torchvision/alexnet:random")
    model.layers = list(LAYERS)
    features = extract_features(model, base.stimuli, request, ExtractionConfig())
    ids = base.stimuli.stimulus_ids
    print("| configuration | calibrated | ranked row | averaged noise | chance (stored) | "
          "shuffled: mean (sd over 6) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, metric in metrics.items():
        rows = score_features(metric, features, noise)
        ranked = [r for r in rows if r.selection == metric.headline]
        value = np.mean([r.value for r in ranked])
        chance = [r.chance for r in ranked if r.chance is not None]
        shuffled = []
        for seed in range(6):
            permuted = PermutedDataset(structured, stimulus_permutation(ids, 1000 + seed))
            found = [r.value for r in metric.score(features, permuted)
                     if r.selection == metric.headline]  # fmt: skip
            shuffled.append(np.nanmean(found))
        print(f"| `{name}` | {'yes' if metric.calibrated else '**no**'} | `{metric.headline}` "
              f"| {value:+.3f} | {np.mean(chance):+.3f} | " if chance else
              f"| `{name}` | {'yes' if metric.calibrated else '**no**'} | `{metric.headline}` "
              f"| {value:+.3f} | - | ", end="")  # fmt: skip
        print(f"{np.mean(shuffled):+.3f} ({np.std(shuffled, ddof=1):.3f}) |", flush=True)


if __name__ == "__main__":
    main()
