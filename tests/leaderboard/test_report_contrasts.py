"""The report's section on the controlled contrasts (brainrank/leaderboard/report_contrasts.py)
on a stored leaderboard whose differences are known."""

from __future__ import annotations

import numpy as np
import pytest

from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import ModelMetadata
from brainrank.leaderboard import open_store
from brainrank.leaderboard.report import NoData, ReportOptions
from brainrank.leaderboard.report_contrasts import section_contrasts

REGIONS = ("V1", "V4", "IT", "FFA", "PPA")
GAIN = 0.04


class RSA(Metric):
    identifier = "rsa"


def build(path, n_arch: int = 6, taxonomy: bool = True) -> None:
    store = open_store(str(path))
    rng = np.random.default_rng(0)
    run = store.start_run({"synthetic": True})
    for a in range(n_arch):
        base = 0.3 + 0.03 * a
        for tag, level, task, method in (("", base, "classification", "supervised"),
                                         ("@simclr", base + GAIN, "contrastive self-supervision",
                                          "simclr")):  # fmt: skip
            model = f"tv/arch{a}{tag}"
            meta = ModelMetadata(source="tv", architecture=f"arch{a}")
            if taxonomy:
                meta = ModelMetadata(source="tv", architecture=f"arch{a}", family="convnet",
                                     task=task, training_method=method,
                                     training_data="ImageNet-1k")  # fmt: skip
            store.register_model(model, meta, "synthetic", weights_hash=f"w-{model}")
            scores = [Score("s1", region, "l3", float(level + rng.normal(0, 0.003)),
                            selection="max", n_neuroids=4) for region in REGIONS]  # fmt: skip
            store.write_scores(run_id=run, model=model, dataset="d", metric=RSA(), scores=scores)
    store.finish_run(run, "ok", store.count("scores"), 0)
    store.close()


def test_the_section_shows_each_contrast_it_can_make(tmp_path):
    build(tmp_path / "lb.db")
    section = section_contrasts(open_store(str(tmp_path / "lb.db")), ReportOptions())
    assert section.anchor == "contrasts" and len(section.figures) == 1
    [(_, table)] = section.tables
    row = table.set_index("contrast").loc["supervision"]
    assert (row["level"], row["reference"], row["n"]) == ("self-supervised", "supervised", 6)
    assert row["mean_difference"] == pytest.approx(GAIN, abs=0.005) and row["p_adjusted"] < 0.01
    assert row["ci_low"] < row["mean_difference"] < row["ci_high"]
    # contrasts this leaderboard cannot make are listed with their reason
    assert any(note.startswith("rsa, architecture: no matched set") for note in section.notes)


def test_the_section_says_what_is_missing(tmp_path):
    with pytest.raises(NoData, match="no scores"):
        section_contrasts(open_store(str(tmp_path / "empty.db")), ReportOptions())
    build(tmp_path / "bare.db", taxonomy=False)  # models without a task or training data
    with pytest.raises(NoData, match="no contrast can be made: rsa, task: no matched set"):
        section_contrasts(open_store(str(tmp_path / "bare.db")), ReportOptions())
