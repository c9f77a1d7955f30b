"""The stacking paper's contrasts from stored scores (brainrank/leaderboard/analyses/stacking.py)
and the report section that draws them (brainrank/leaderboard/report_stacking.py); combinations
of models are left out of the default ranking."""

from __future__ import annotations

import numpy as np
import pytest

from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import ModelMetadata
from brainrank.leaderboard import open_store, rankings, scores
from brainrank.leaderboard.analyses.stacking import stacking_contrasts
from brainrank.leaderboard.report import NoData, ReportOptions
from brainrank.leaderboard.report_stacking import section_stacking_contrast

A, B = "torchvision/alexnet", "torchvision/alexnet@places365"
LAYERS = ["features.0", "features.3", "features.6", "features.8", "features.10", "classifier.5"]


class _Stacking(Metric):
    identifier = "stacking"
    headline = "stacked"


def write_model(store, model, peak, regions=("V1", "PPA"), subjects=("s1", "s2")):
    rows = []
    for subject in subjects:
        for region in regions:
            weights = np.full(len(LAYERS), 0.05)
            weights[peak[region]] = 1 - 0.05 * (len(LAYERS) - 1)
            for i, layer in enumerate(LAYERS):
                common = dict(subject=subject, region=region, layer=layer, layer_index=i,
                              relative_depth=i / (len(LAYERS) - 1))  # fmt: skip
                rows.append(Score(value=0.1 * i, **common))
                rows.append(Score(value=float(weights[i]), selection="weight", **common))
            rows.append(Score(subject=subject, region=region, layer="stacked", value=0.4,
                              selection="stacked",
                              extra={"weights": dict(zip(LAYERS, weights.tolist(), strict=True))}))  # fmt: skip
    store.register_model(model, ModelMetadata(source="torchvision", architecture="alexnet"))
    store.write_scores(run_id=None, model=model, dataset="nsd", metric=_Stacking(), scores=rows)


@pytest.fixture
def store(tmp_path):
    store = open_store(str(tmp_path / "lb.db"))
    write_model(store, A, {"V1": 2, "PPA": 5})  # ImageNet: Conv-3 in V1
    write_model(store, B, {"V1": 3, "PPA": 5})  # Places: Conv-4 in V1
    joint = [
        Score(subject="s1", region=region, layer="stacked", value=0.45, selection="stacked",
              extra={"model_weights": {A: wa, B: 1 - wa}})
        for region, wa in (("V1", 0.7), ("PPA", 0.2))
    ]  # fmt: skip
    store.register_model("stack/abc123abc123", ModelMetadata(source="stack", architecture="x"))
    store.write_scores(run_id=None, model="stack/abc123abc123", dataset="nsd",
                       metric=_Stacking(), scores=joint)  # fmt: skip
    return store


def test_the_peak_shift_and_the_joint_weights(store):
    found = stacking_contrasts(scores(store))
    peaks = found.peaks[found.peaks["contrast"].str.startswith("AlexNet")].set_index(
        ["region", "model"]
    )
    assert peaks.loc[("V1", A), "peak_layer"] == "features.6"
    assert peaks.loc[("V1", B), "peak_layer"] == "features.8"
    assert peaks.loc[("V1", A), "shift"] == pytest.approx(0.2)  # one layer of six deeper
    assert peaks.loc[("PPA", A), "shift"] == pytest.approx(0.0)
    assert peaks.loc[("V1", B), "stacked"] == pytest.approx(0.4)
    joint = found.joint.set_index("region")
    assert joint.loc["V1", "weight_first"] == pytest.approx(0.7)
    assert joint.loc["PPA", "weight_second"] == pytest.approx(0.8)
    assert "ResNet-50: ImageNet vs Places365" in found.missing


def test_the_report_section_draws_each_stored_contrast_and_names_the_missing(store, tmp_path):
    section = section_stacking_contrast(store, ReportOptions())
    assert len(section.figures) == 1  # AlexNet on nsd
    assert [title for title, _ in section.tables] == [
        "Peak layers per region", "Joint stacking of both networks"]  # fmt: skip
    assert any("@stacking2023" in note for note in section.notes)
    empty = open_store(str(tmp_path / "empty.db"))
    with pytest.raises(NoData, match="torchvision/alexnet and torchvision/alexnet@places365"):
        section_stacking_contrast(empty, ReportOptions())


def test_combinations_are_ranked_apart_from_models(store):
    [ranking] = rankings(store, ci=None, value="score")
    assert "stack/abc123abc123" not in set(ranking.table["model"])
    assert any("combinations of feature spaces" in note for note in ranking.notes)
    [alone] = rankings(store, ci=None, value="score", model="stack/*")
    assert list(alone.table["model"]) == ["stack/abc123abc123"]
