"""Score tables whose answers are known, for the analyses tests
(tests/leaderboard/analyses/)."""

from __future__ import annotations

import numpy as np
import pandas as pd

REGIONS = ["VISp", "VISl", "VISal", "VISpm", "VISrl", "VISam"]


def frame_from(values: dict[tuple[str, str], list[float]], families=None, trained=None, depth=0.5):
    """values[(model, metric)] = one score per region (subjects: 2, identical)."""
    rows = []
    for (model, metric), per_region in values.items():
        for region, value in zip(REGIONS, per_region, strict=False):
            for subject in ("s1", "s2"):
                for selection in ("max", "layer"):
                    rows.append({
                        "model": model, "dataset": "allen", "metric": metric, "subject": subject,
                        "region": region, "layer": "l1", "selection": selection, "score": value,
                        "relative_depth": depth if np.isscalar(depth) else depth[model],
                        "family": (families or {}).get(model, "convnet"),
                        "trained": (trained or {}).get(model, ":random" not in model),
                    })  # fmt: skip
    return pd.DataFrame(rows)
