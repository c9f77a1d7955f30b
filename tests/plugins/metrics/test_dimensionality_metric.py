"""``effective-dimensionality`` (brainrank/plugins/metrics/dimensionality.py): one value per
layer from the extraction's covariance spectrum, and never ranked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import brainrank.testing as bt
from brainrank.core.errors import InputError
from brainrank.core.registry import get_registry
from brainrank.core.scores import FeatureRequest, FeatureSet, LayerFeatures
from brainrank.leaderboard.ranking import rank_models


def feature_set(spectra: dict[str, np.ndarray]) -> FeatureSet:
    layers = [
        LayerFeatures(name, i, i / max(1, len(spectra) - 1), 50, (50,), spectrum=values)
        for i, (name, values) in enumerate(spectra.items())
    ]
    n = max(len(v) for v in spectra.values() if v is not None)
    return FeatureSet("m/x", tuple(f"s{i}" for i in range(n)), layers)


def test_one_participation_ratio_per_layer():
    metric = get_registry().get("metric", "effective-dimensionality").load()
    assert metric.feature_request(None) == FeatureRequest(spectrum=True)
    spectra = {"flat": np.r_[np.ones(4), np.zeros(6)], "steep": 2.0 ** -np.arange(10.0)}
    rows = metric.score(feature_set(spectra), None)
    assert [r.layer for r in rows] == ["flat", "steep"]
    assert rows[0].value == pytest.approx(4.0)
    steep = spectra["steep"]
    assert rows[1].value == pytest.approx(steep.sum() ** 2 / (steep**2).sum())  # ~3.0
    assert {(r.subject, r.region, r.selection) for r in rows} == {("all", "features", "layer")}
    assert rows[1].extra["top_fractions"][0] == pytest.approx(1 / steep.sum())
    # on a dataset: the same value in every (subject, region) group, as the contract wants
    dataset = bt.example_dataset(n_stimuli=10, n_neuroids=3)
    found = bt.check_metric(metric, dataset)
    groups = {(r.subject, r.region) for r in found if r.selection == "layer"}
    assert groups == {("s1", "early"), ("s1", "late"), ("s2", "early"), ("s2", "late")}
    by_layer = {}
    for r in found:
        by_layer.setdefault(r.layer, set()).add(r.value)
    assert all(len(values) == 1 for values in by_layer.values())
    with pytest.raises(InputError, match="spectrum=True"):
        metric.score(feature_set({"none": None, "x": np.ones(3)}), None)


def test_rankings_leave_it_out_and_say_so():
    rows = []
    for model, ed, r in [("m/a", 40.0, 0.2), ("m/b", 5.0, 0.4)]:
        rows.append(
            {
                "model": model,
                "dataset": "d",
                "metric": "effective-dimensionality",
                "subject": "all",
                "region": "features",
                "selection": "max",
                "score": ed,
            }
        )
        for region in ("V1", "V2"):
            rows.append({"model": model, "dataset": "d", "metric": "rsa", "subject": "s1",
                         "region": region, "selection": "max", "score": r})  # fmt: skip
    (ranking,) = rank_models(pd.DataFrame(rows), selection="max", value="score")
    assert list(ranking.table["model"]) == ["m/b", "m/a"]  # by rsa alone
    assert ranking.columns == ["d/rsa"]
    assert any(n.startswith("Not ranked: effective-dimensionality") for n in ranking.notes)
    only = pd.DataFrame([r for r in rows if r["metric"] == "effective-dimensionality"])
    with pytest.raises(InputError, match="never ranked"):
        rank_models(only, selection="max")
