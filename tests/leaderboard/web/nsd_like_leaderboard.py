"""A generated NSD-sized leaderboard for the web site's tests: 40 models (trained, random,
baselines; four families, several tasks and training sets) x 16 regions x 4 subjects x 4
metrics on an NSD-like dataset, per-layer curves and ``heldout`` / ``max`` rows, plus the
small ``simulated`` dataset (ranked apart). Values follow known rules (a model's level,
a per-metric offset, a per-region depth peak), so tests can check what is shown.

Fast: models, datasets, metrics and the run go through the store's API; the ~90,000 score
rows are inserted with one executemany into the ``scores`` table (the store's upsert
compiles one multi-row statement per call, 30 s for these rows), about 3 s in all; time it
with ``python tests/leaderboard/web/nsd_like_leaderboard.py``."""

from __future__ import annotations

import time

import numpy as np
from sqlalchemy import insert

from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import DatasetMetadata, DatasetSpec, ModelMetadata
from brainrank.leaderboard import open_store
from brainrank.leaderboard.schema import ScoreRow

DATASET = "nsd-like/shared"
#: 16 regions in the dataset's own (visual-hierarchy) order, not alphabetical
REGIONS = ("V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4", "OFA", "FFA-1", "FFA-2", "EBA",
           "FBA-1", "OPA", "PPA", "RSC", "VWFA-1")  # fmt: skip
SUBJECTS = ("subj01", "subj02", "subj05", "subj07")
LAYERS = 6
SIM_REGIONS = ("early", "late", "null")


class SrpRidge(Metric):
    identifier = "srp-ridge"


class RSA(Metric):
    identifier = "rsa"


class VeRSA(Metric):
    identifier = "versa"


class Encoding(Metric):
    identifier = "encoding:taskonomy"


#: metric -> (offset added to every score, ceiling or None, selections stored)
METRICS = {
    SrpRidge: (0.0, 0.8, ("heldout", "max")),
    RSA: (-0.25, None, ("max",)),
    VeRSA: (-0.1, 0.6, ("heldout", "max")),
    Encoding: (0.05, 0.8, ("max",)),
}
FAMILIES = ("convnet", "transformer", "mlp-mixer", "other")
TASKS = ("classification", "contrastive self-supervision", "depth", "segmentation")
DATA = ("ImageNet-1k", "Places365", "COCO")


def models() -> dict[str, tuple[ModelMetadata, float]]:
    """identifier -> (metadata, level): 19 trained networks, each with a random twin, and
    2 baselines (40 models)."""
    out: dict[str, tuple[ModelMetadata, float]] = {}
    for i in range(19):
        family = FAMILIES[i % 3]
        name = f"zoo/net{i:02d}"
        level = 0.62 - 0.015 * i
        meta = dict(source="zoo", architecture=f"arch{i % 5}", family=family,
                    task=TASKS[i % len(TASKS)], training_data=DATA[i % len(DATA)])  # fmt: skip
        out[name] = (ModelMetadata(**meta), level)
        untrained = {**meta, "trained": False, "task": None, "training_data": None}
        out[f"{name}:random"] = (ModelMetadata(**untrained), level / 4)
    for j, name in enumerate(("baseline/pixels", "baseline/gabor")):
        meta = ModelMetadata(source="baseline", architecture=name.split("/")[1],
                             family="other", task="none", training_data="none",
                             training_method="handcrafted", trained=False)  # fmt: skip
        out[name] = (meta, 0.05 + 0.04 * j)
    return out


def _rows(level, offset, ceiling, selections, regions, subjects, layers, rng) -> list[Score]:
    n_regions = len(regions)
    depth = np.linspace(0, 1, layers)
    peak = (np.arange(n_regions) + 1) / (n_regions + 1)  # later regions peak deeper
    noise = 0.02 * rng.standard_normal((len(subjects), n_regions, layers))
    values = level + offset - 0.3 * (depth[None, None, :] - peak[None, :, None]) ** 2 + noise
    rows = []
    for s, subject in enumerate(subjects):
        for r, region in enumerate(regions):
            for k in range(layers):
                rows.append(Score(subject, region, f"layer{k}", float(values[s, r, k]),
                                  layer_index=k, relative_depth=float(depth[k]),
                                  ceiling=ceiling, n_neuroids=100))  # fmt: skip
            best = int(np.argmax(values[s, r]))
            for selection in selections:
                value = values[s, r, best] - (0.01 if selection == "heldout" else 0.0)
                rows.append(Score(subject, region, f"layer{best}", float(value),
                                  selection=selection, layer_index=best,
                                  relative_depth=float(depth[best]), ceiling=ceiling,
                                  ci_low=float(value - 0.03), ci_high=float(value + 0.03),
                                  n_neuroids=100))  # fmt: skip
    return rows


def build(path) -> dict[str, float]:
    """Write the leaderboard to the SQLite file ``path``; returns each model's level."""
    store = open_store(str(path))
    rng = np.random.default_rng(0)
    nsd = DatasetMetadata(species="human", modality="fMRI (generated, NSD-sized)",
                          regions=REGIONS, n_stimuli=1000,
                          citation="Generated for brainrank's web tests.",
                          description="An NSD-like generated dataset: 16 ROIs x 4 subjects.")  # fmt: skip
    sim = DatasetMetadata(species="simulated", modality="simulated", regions=SIM_REGIONS,
                          description="Simulated responses.")  # fmt: skip
    store.register_dataset(DatasetSpec(DATASET, lambda **_: None, nsd, plugin="test"),
                           stimuli_hash="stim-1", data_hash="data-1")  # fmt: skip
    store.register_dataset(DatasetSpec("simulated", lambda **_: None, sim, plugin="test"))
    run = store.start_run({"generated": True})
    levels = {}
    rows: list[dict] = []

    def add(model, dataset, metric, scores, **hashes):
        hashes = {k: hashes.get(k) for k in ("weights_hash", "stimuli_hash", "data_hash")}
        for sc in scores:
            rows.append({"model": model, "dataset": dataset, "metric": metric.identifier,
                         "metric_hash": metric.config_hash, "subject": sc.subject,
                         "region": sc.region, "layer": sc.layer, "selection": sc.selection,
                         "value": sc.value, "ceiling": sc.ceiling, "normalized": sc.normalized,
                         "ci_low": sc.ci_low, "ci_high": sc.ci_high,
                         "n_neuroids": sc.n_neuroids, "layer_index": sc.layer_index,
                         "relative_depth": sc.relative_depth, "run_id": run, **hashes})  # fmt: skip

    for model, (meta, level) in models().items():
        store.register_model(model, meta, "test", weights_hash=f"w-{model}")
        levels[model] = level
        for metric_class, (offset, ceiling, selections) in METRICS.items():
            metric = metric_class()
            store.register_metric(metric, "test")
            add(model, DATASET, metric,
                _rows(level, offset, ceiling, selections, REGIONS, SUBJECTS, LAYERS, rng),
                weights_hash=f"w-{model}", stimuli_hash="stim-1", data_hash="data-1")  # fmt: skip
        if not model.startswith("baseline/") and model.endswith("0"):  # a few on simulated
            add(model, "simulated", SrpRidge(),
                _rows(level, 0.0, None, ("max",), SIM_REGIONS, ("sim",), 3, rng))  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(insert(ScoreRow), rows)
    store.finish_run(run, "ok", len(rows), 0)
    store.close()
    return levels


if __name__ == "__main__":
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        build(Path(sys.argv[1] if len(sys.argv) > 1 else folder) / "lb.db")
        print(f"built in {time.perf_counter() - start:.1f} s")
