"""A process writing part of a synthetic grid into a leaderboard, for the concurrency tests.

python _grid_writer.py URL START_FILE MODEL [MODEL ...]

Waits until START_FILE exists (so that several writers start together, including the
creation of the schema), then writes every model's scores, per-neuroid values and
completion record, one transaction per model, and prints a JSON line with what it wrote.
Values are a deterministic function of the key, so two writers of the same model agree.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from brainrank.core.metric import Metric
from brainrank.core.scores import Score, best_layer_scores
from brainrank.core.specs import ModelMetadata

LAYERS = 6
REGIONS = ("V1", "V4", "IT")
NEUROIDS = 40


class GridMetric(Metric):
    identifier = "grid"


def value(*key: str) -> float:
    digest = hashlib.sha256("/".join(key).encode()).digest()
    return int.from_bytes(digest[:4], "little") / 2**32


def grid_scores(model: str) -> list[Score]:
    rows = []
    for layer in range(LAYERS):
        for region in REGIONS:
            per = np.array(
                [value(model, str(layer), region, str(i)) for i in range(NEUROIDS)],
                dtype=np.float32,
            )
            rows.append(
                Score(
                    "s1",
                    region,
                    f"layer{layer}",
                    float(per.mean()),
                    n_neuroids=NEUROIDS,
                    layer_index=layer,
                    relative_depth=layer / (LAYERS - 1),
                    per_neuroid=per,
                    neuroid_ids=tuple(f"{region}-{i}" for i in range(NEUROIDS)),
                )
            )
    return rows + best_layer_scores(rows, "max")


def main(url: str, start_file: str, models: list[str]) -> None:
    from brainrank.leaderboard.store import Store

    deadline = time.time() + 60
    while not Path(start_file).exists():
        if time.time() > deadline:
            raise SystemExit("the start file never appeared")
        time.sleep(0.005)
    store = Store(url)
    metric = GridMetric(kind="test")
    store.register_metric(metric)
    run = store.start_run({"models": models})
    written = 0
    for model in models:
        store.register_model(model, ModelMetadata(source="grid", architecture=model))
        written += store.write_scores(
            run_id=run,
            model=model,
            dataset="grid/data",
            metric=metric,
            scores=grid_scores(model),
            weights_hash=f"w-{model}",
            plan_hash=f"plan-{model}",
        )
    store.finish_run(run, "ok", written, 0)
    print(json.dumps({"written": written, "models": models}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
