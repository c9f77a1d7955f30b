"""The NSD paper's analyses (brainrank/leaderboard/analyses/nsd.py, "5.17 billion
regression fits") on score tables whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from _analysis_frames import REGIONS, frame_from

from brainrank.core.errors import InputError
from brainrank.leaderboard import analyses


def test_best_layer_depth_and_family_comparison():
    values, families, depth = {}, {}, {}
    rng = np.random.default_rng(1)
    for fam, level, d in [
        ("convnet", 0.5, 0.3),
        ("transformer", 0.3, 0.8),
        ("mlp-mixer", 0.35, 0.6),
    ]:
        for i in range(5):
            model = f"{fam}/{i}"
            values[(model, "srp-ridge")] = list(level + 0.02 * rng.standard_normal(6))
            families[model] = fam
            depth[model] = d
    frame = frame_from(values, families=families, depth=depth)
    depths = analyses.best_layer_depth(frame)
    conv = depths[(depths["family"] == "convnet") & (depths["region"] == "VISp")]
    assert conv["mean_depth"].iloc[0] == pytest.approx(0.3) and conv["n_models"].iloc[0] == 5
    result = analyses.family_comparison(frame)
    per_family = [np.array([np.mean(values[(f"{fam}/{i}", "srp-ridge")]) for i in range(5)])
                  for fam in ("convnet", "transformer", "mlp-mixer")]  # fmt: skip
    ref = scipy.stats.kruskal(*per_family)
    assert result.h == pytest.approx(ref.statistic) and result.p_value == pytest.approx(ref.pvalue)
    assert result.summary.set_index("family").loc["convnet", "n_models"] == 5
    assert result.epsilon_squared == pytest.approx(ref.statistic / (15 - 1))
    regions = result.regions.set_index("region")
    assert len(regions) == 6
    per_region = [
        scipy.stats.kruskal(*[[values[(f"{fam}/{i}", "srp-ridge")][k] for i in range(5)]
                              for fam in ("convnet", "transformer", "mlp-mixer")]).pvalue
        for k in range(6)
    ]  # fmt: skip
    expected = [min(1.0, p) for p in per_region]
    order = np.argsort(per_region)
    running = 0.0
    for rank, i in enumerate(order):  # Holm step-down
        running = max(running, min(1.0, (6 - rank) * per_region[i]))
        expected[i] = running
    np.testing.assert_allclose(regions.loc[REGIONS, "p_holm"], expected)
    # fewer than 5 models in a family: no p-value, a reason
    small = {k: v for k, v in values.items() if not k[0].endswith(("/3", "/4"))}
    few = analyses.family_comparison(frame_from(small, families=families, depth=depth))
    assert np.isnan(few.p_value) and "fewer than 5" in few.reason


def test_generalisation_scores_the_layer_chosen_on_the_training_stimuli():
    rows = []
    # per layer: the test score as the value, the training score in details["train"]
    for layer, (train, test) in {"l1": (0.2, 0.1), "l2": (0.5, 0.3), "l3": (0.4, 0.35)}.items():
        rows.append({"model": "m/a", "dataset": "nsd/generalisation:subj01",
                     "metric": "versa:generalisation", "subject": "subj01", "region": "V1",
                     "layer": layer, "selection": "layer", "score": test,
                     "details": {"train": train}})  # fmt: skip
    rows.append({**rows[0], "metric": "versa", "layer": "l9", "score": 0.9,
                 "details": {"train": 0.9}})  # another metric: ignored  # fmt: skip
    out = analyses.generalisation(pd.DataFrame(rows))
    [row] = out.to_dict(orient="records")
    assert row["layer"] == "l2" and row["selected"] == 0.5  # chosen on the training score
    assert row["generalised"] == 0.3 and row["best_possible"] == 0.35
    with pytest.raises(InputError, match="versa:generalisation"):
        analyses.generalisation(pd.DataFrame(rows), dataset="nsd/shared1000")
