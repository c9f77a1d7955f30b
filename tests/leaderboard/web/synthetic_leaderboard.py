"""A synthetic leaderboard with everything the report and the web page show: trained and
random pairs, two families, task networks with per-neuroid values, two metrics, stacking
weights. Values follow simple known rules so tests can check what is displayed."""

from __future__ import annotations

import dataclasses

import numpy as np

from brainrank.core.metric import Metric
from brainrank.core.scores import Score, best_layer_scores
from brainrank.core.specs import ModelMetadata
from brainrank.leaderboard import open_store

REGIONS = ("V1", "V4", "IT")
SUBJECTS = ("s1", "s2")
LAYERS = 5
NEUROIDS = 8


class RSA(Metric):
    identifier = "rsa"


class Ridge(Metric):
    identifier = "srp-ridge"


class Stacking(Metric):
    identifier = "stacking"


def _models() -> dict[str, tuple[ModelMetadata, float]]:
    """identifier -> (metadata, level): a model's scores are about its level."""
    out = {}
    for name, family, level in (
        ("net/alpha", "convnet", 0.6),
        ("net/beta", "convnet", 0.45),
        ("vit/gamma", "transformer", 0.5),
    ):
        arch = name.split("/")[1]
        out[name] = (
            ModelMetadata(source=name.split("/")[0], architecture=arch, family=family),
            level,
        )
        out[f"{name}:random"] = (
            ModelMetadata(
                source=name.split("/")[0], architecture=arch, family=family, trained=False
            ),
            level / 3,
        )
    tasks = {"edge2d": "edge_texture", "edge3d": "edge_occlusion", "normal": "normal",
             "depth": "depth_zbuffer", "class": "class_object"}  # fmt: skip
    for i, (task, taskonomy) in enumerate(tasks.items()):
        out[f"taskonomy/{task}"] = (
            ModelMetadata(
                source="taskonomy",
                architecture="resnet50",
                family="convnet",
                task=f"taskonomy:{taskonomy}",
                training_data="Taskonomy",
            ),
            0.3 + 0.04 * i,
        )
    return out


def _rows(model: str, level: float, metric_offset: float, rng) -> list[Score]:
    rows = []
    for subject in SUBJECTS:
        for r, region in enumerate(REGIONS):
            peak = (r + 1) / (len(REGIONS) + 1)  # later regions peak deeper
            for layer in range(LAYERS):
                depth = layer / (LAYERS - 1)
                value = level + metric_offset - 0.4 * (depth - peak) ** 2
                per = (value + 0.05 * rng.standard_normal(NEUROIDS)).astype(np.float32)
                rows.append(
                    Score(
                        subject,
                        region,
                        f"layer{layer}",
                        float(per.mean()),
                        n_neuroids=NEUROIDS,
                        layer_index=layer,
                        relative_depth=depth,
                        ceiling=0.9,
                        per_neuroid=per,
                        neuroid_ids=tuple(f"{region}-{i}" for i in range(NEUROIDS)),
                    )
                )
    summary = best_layer_scores(rows, "max")
    if model.startswith("taskonomy/"):  # stored FDR-adjusted p-values, as encoding:taskonomy
        for row in [r for r in rows if r.selection == "layer"]:
            p_fdr = np.where(row.per_neuroid > np.median(row.per_neuroid), 0.01, 0.5)
            summary.append(
                dataclasses.replace(
                    row,
                    selection="significance",
                    value=float((p_fdr <= 0.05).mean()),
                    per_neuroid=p_fdr.astype(np.float32),
                )
            )
    return rows + summary


def build(path) -> dict[str, float]:
    """Write the synthetic leaderboard to the SQLite file ``path``; returns each model's
    level."""
    store = open_store(str(path))
    rng = np.random.default_rng(0)
    levels = {}
    run = store.start_run({"synthetic": True})
    for model, (meta, level) in _models().items():
        store.register_model(model, meta, "synthetic", weights_hash=f"w-{model}")
        levels[model] = level
        for metric, offset in ((RSA(), -0.2), (Ridge(), 0.0)):
            store.write_scores(
                run_id=run,
                model=model,
                dataset="d1",
                metric=metric,
                scores=_rows(model, level, offset, rng),
            )
    stacked = []
    for subject in SUBJECTS:
        for r, region in enumerate(REGIONS):
            weights = np.exp(-((np.arange(LAYERS) - r * 2) ** 2))
            weights /= weights.sum()
            stacked.append(
                Score(
                    subject,
                    region,
                    "stacked",
                    0.7,
                    selection="stacked",
                    extra={"weights": {f"layer{i}": float(w) for i, w in enumerate(weights)}},
                )
            )
    store.write_scores(
        run_id=run, model="net/alpha", dataset="d1", metric=Stacking(), scores=stacked
    )
    store.finish_run(run, "ok", store.count("scores"), 0)
    store.close()
    return levels
