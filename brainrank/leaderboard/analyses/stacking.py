"""The stacking paper's contrasts (Wang, Lin, Tarr & Wehbe, "Joint interpretation of
representations in neural networks and the brain"), computed from stored ``stacking`` scores.

The paper fixes an architecture and changes the training task: AlexNet and ResNet-50
trained on ImageNet (object) vs Places365 (scene), and Taskonomy's 2D vs 3D edge encoders;
per voxel and ROI it compares the stacking weights of each network's layers, and reads a
change of task as a shift of the *peak weight* from one layer to another (AlexNet: Conv-3
to Conv-4 in V1-V4 from object to scene; ResNet-50: none; the edge networks: Conv-3
preferred in every ROI but V1). :func:`stacking_contrasts` gives, per contrast, dataset and
region:

- ``profiles``: each model's mean stacking weight of every layer (``weight`` rows: the mean
  over a region's neuroids, averaged over subjects; for scores stored before weight rows
  existed, the stacked row's ``extra["weights"]``), with the layer's relative depth;
- ``peaks``: each model's peak layer, its relative depth, the stacked model's score, and
  the peak's shift in relative depth from the first model of the pair to the second;
- ``joint``: where the two models were also stacked *together* (a combination
  ``stack/<hash>`` whose spaces are layers of both, ``--spaces 'A:*,B:*'``), the total
  weight the joint stacked model gives each model's layers (``extra["model_weights"]``): a
  direct measure of which training the region prefers, which two separate stackings cannot
  give.

The paper used 6-7 named layers per network; brainrank stacks every layer it extracts (or
the ``layers`` parameter's), so peaks are compared by relative depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: (label, first model, second model): the paper's three contrasts
CONTRASTS: tuple[tuple[str, str, str], ...] = (
    ("AlexNet: ImageNet vs Places365", "torchvision/alexnet", "torchvision/alexnet@places365"),
    ("ResNet-50: ImageNet vs Places365", "torchvision/resnet50", "torchvision/resnet50@places365"),
    ("Taskonomy edges: 2D vs 3D", "taskonomy/edge_texture", "taskonomy/edge_occlusion"),
)


@dataclass
class StackingContrasts:
    """See the module docstring; ``missing`` lists the contrasts without stored weights for
    both models."""

    profiles: pd.DataFrame
    peaks: pd.DataFrame
    joint: pd.DataFrame
    missing: list[str] = field(default_factory=list)


def layer_weights(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean stacking weight per (model, dataset, region, layer), averaged over subjects, with
    the layer's relative depth: from ``weight`` rows, else from the stacked rows'
    ``details["weights"]`` (stored before weight rows existed)."""
    columns = ["model", "dataset", "region", "layer", "relative_depth", "weight"]
    stacking = frame[frame["metric"] == "stacking"] if "metric" in frame.columns else frame
    parts = []
    rows = stacking[stacking["selection"] == "weight"]
    if not rows.empty:
        parts.append(rows.assign(weight=rows["score"].astype(float))[
            ["model", "dataset", "region", "subject", "layer", "relative_depth", "weight"]
        ])  # fmt: skip
    stacked = stacking[stacking["selection"] == "stacked"]
    have = set(zip(rows["model"], rows["dataset"], strict=True)) if not rows.empty else set()
    depth = (
        stacking[stacking["selection"] == "layer"]
        .groupby(["model", "layer"])["relative_depth"].first()
        .to_dict()
    )  # fmt: skip
    older = []
    for row in stacked.itertuples():
        if (row.model, row.dataset) in have or not isinstance(row.details, dict):
            continue
        for layer, weight in (row.details.get("weights") or {}).items():
            older.append({"model": row.model, "dataset": row.dataset, "region": row.region,
                          "subject": row.subject, "layer": layer,
                          "relative_depth": depth.get((row.model, layer), np.nan),
                          "weight": float(weight)})  # fmt: skip
    if older:
        parts.append(pd.DataFrame(older))
    if not parts:
        return pd.DataFrame(columns=columns)
    long = pd.concat(parts, ignore_index=True)
    out = long.groupby(["model", "dataset", "region", "layer"], sort=False).agg(
        relative_depth=("relative_depth", "first"), weight=("weight", "mean")
    )
    return out.reset_index()[columns]


def stacking_contrasts(
    frame: pd.DataFrame, pairs: Sequence[tuple[str, str, str]] = CONTRASTS
) -> StackingContrasts:
    """The contrasts ``pairs`` ((label, first model, second model)) on the stored score rows
    ``frame`` (``brainrank.leaderboard.scores()``, every selection); see the module
    docstring."""
    weights = layer_weights(frame)
    stacked = frame[(frame["metric"] == "stacking") & (frame["selection"] == "stacked")]
    profiles, peaks, joint, missing = [], [], [], []
    for label, first, second in pairs:
        mine = weights[weights["model"].isin([first, second])]
        datasets = sorted(
            set(mine.loc[mine["model"] == first, "dataset"])
            & set(mine.loc[mine["model"] == second, "dataset"])
        )
        if not datasets:
            missing.append(label)
        for dataset in datasets:
            part = mine[mine["dataset"] == dataset]
            profiles.append(part.assign(contrast=label))
            for region, by_region in part.groupby("region", sort=False):
                found = {}
                for model in (first, second):
                    layers = by_region[by_region["model"] == model]
                    if layers.empty:
                        continue
                    top = layers.loc[layers["weight"].idxmax()]
                    score = stacked[(stacked["model"] == model) & (stacked["dataset"] == dataset)
                                    & (stacked["region"] == region)]["score"]  # fmt: skip
                    found[model] = (top, float(score.mean()) if len(score) else np.nan)
                for model, (top, score) in found.items():
                    peaks.append({"contrast": label, "dataset": dataset, "region": region,
                                  "model": model, "peak_layer": top["layer"],
                                  "peak_depth": top["relative_depth"],
                                  "peak_weight": top["weight"], "stacked": score})  # fmt: skip
                if len(found) == 2:
                    shift = found[second][0]["relative_depth"] - found[first][0]["relative_depth"]
                    peaks[-1]["shift"] = shift
                    peaks[-2]["shift"] = shift
        joint += _joint_weights(frame, label, first, second)
    return StackingContrasts(
        profiles=pd.concat(profiles, ignore_index=True)
        if profiles
        else pd.DataFrame(columns=["contrast", *weights.columns]),
        peaks=pd.DataFrame(peaks),
        joint=pd.DataFrame(joint),
        missing=missing,
    )


def _joint_weights(frame: pd.DataFrame, label: str, first: str, second: str) -> list[dict]:
    """Per region of each combination holding layers of both models: the stacked model's
    total weight on each model (mean over subjects)."""
    if "details" not in frame.columns:
        return []
    stacked = frame[(frame["metric"] == "stacking") & (frame["selection"] == "stacked")
                    & frame["model"].astype(str).str.startswith("stack/")]  # fmt: skip
    out: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for row in stacked.itertuples():
        details = row.details if isinstance(row.details, dict) else {}
        by_model = details.get("model_weights") or {}
        if first in by_model and second in by_model:
            out.setdefault((row.model, row.dataset, row.region), []).append(
                (float(by_model[first]), float(by_model[second]))
            )
    return [
        {"contrast": label, "combination": model, "dataset": dataset, "region": region,
         "first": first, "second": second,
         "weight_first": float(np.mean([a for a, _ in values])),
         "weight_second": float(np.mean([b for _, b in values]))}
        for (model, dataset, region), values in sorted(out.items())
    ]  # fmt: skip
