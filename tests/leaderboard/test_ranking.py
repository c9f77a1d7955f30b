"""The one ranking definition (brainrank.leaderboard.ranking): like with like.

Regression tests with two and three datasets of different metric coverage: models are
ranked only on the cells they all have (the others are listed), ceiling-normalised where a
ceiling exists, simulated data apart from real data, RSA and encoding regions labelled
alike, two settings of one metric never averaged, the held-out layer choice preferred, and
CIs printed only over at least 5 regions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainrank.core.errors import InputError
from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import DatasetMetadata, DatasetSpec
from brainrank.leaderboard import analyses, configurations, open_store, ranking, rankings, scores
from brainrank.leaderboard.ranking import (
    MIN_UNITS,
    config_label_map,
    format_value,
    rank_models,
)


class RSA(Metric):
    identifier = "rsa"


class Ridge(Metric):
    identifier = "srp-ridge"


SIM_REGIONS = ["V1", "V2", "V4", "IT", "early", "late"]
ALLEN = ["VISp", "VISl", "VISal", "VISpm", "VISrl", "VISam"]
LEVEL = {"m/a": 0.5, "m/b": 0.3, "m/c": 0.4}


def _dataset(store, identifier: str, species: str) -> None:
    meta = DatasetMetadata(species=species, modality="test")
    store.register_dataset(DatasetSpec(identifier, lambda **_: None, meta, plugin="test"))


def _write(store, model, dataset, metric, values, *, ceiling=None, heldout=None):
    """values: {region: score} (subjects s1 and s2 alike); ``heldout``: offset of a
    'heldout' row added to every cell."""
    rows = []
    for subject in ("s1", "s2"):
        for region, value in values.items():
            rows.append(Score(subject, region, "l1", value, n_neuroids=4, layer_index=1,
                              relative_depth=0.5, ceiling=ceiling))  # fmt: skip
            rows.append(Score(subject, region, "l1", value, n_neuroids=4, layer_index=1,
                              relative_depth=0.5, ceiling=ceiling, selection="max"))  # fmt: skip
            if heldout is not None:
                rows.append(Score(subject, region, "l1", value + heldout, n_neuroids=4,
                                  ceiling=ceiling, selection="heldout"))  # fmt: skip
    store.write_scores(run_id=None, model=model, dataset=dataset, metric=metric, scores=rows)


def _values(level: float, regions, slope: float = 0.02) -> dict[str, float]:
    return {r: level + slope * i for i, r in enumerate(regions)}


@pytest.fixture
def simulated_and_rsa_only(tmp_path):
    """The measured bug: kriegeskorte2008 (RSA only) beside simulated (SRP-Ridge and RSA)."""
    store = open_store(str(tmp_path / "two.db"))
    _dataset(store, "simulated", "simulated")
    _dataset(store, "kriegeskorte2008", "human and macaque")
    for model, level in LEVEL.items():
        _write(store, model, "simulated", Ridge(), _values(level, SIM_REGIONS))
        _write(store, model, "simulated", RSA(), _values(level - 0.1, SIM_REGIONS))
        _write(store, model, "kriegeskorte2008", RSA(), {"human-IT": level / 2, "monkey-IT": level})
    return store


def test_rsa_only_dataset_beside_simulated_ranks_every_model(simulated_and_rsa_only):
    store = simulated_and_rsa_only
    frame = scores(store)
    # RSA and encoding regions are labelled alike (the bug: simulated RSA regions got the
    # dataset prefix, SRP ones did not, so no region was shared and every score was NaN)
    srp = analyses.region_scores(frame, "srp-ridge")
    rsa = analyses.region_scores(frame, "rsa")
    assert set(srp.columns) == {f"simulated/{r}" for r in SIM_REGIONS}
    assert set(srp.columns) <= set(rsa.columns)
    species = {"simulated": "simulated", "kriegeskorte2008": "human and macaque"}
    table = analyses.overall_ranking(frame, species=species)
    assert table["score"].notna().all()
    for group in ("real", "simulated"):
        part = table[table["data"] == group]
        assert list(part["model"]) == ["m/a", "m/c", "m/b"] and list(part["rank"]) == [1, 2, 3]
    sim = table[table["data"] == "simulated"].set_index("model")
    expected = np.mean([np.mean(list(_values(0.5, SIM_REGIONS).values())),
                        np.mean(list(_values(0.4, SIM_REGIONS).values()))])  # fmt: skip
    assert sim.loc["m/a", "score"] == pytest.approx(expected)
    assert sim.loc["m/a", "n_regions"] == 6 and sim.loc["m/a", "ci_low"] < expected
    real = table[table["data"] == "real"].set_index("model")
    assert real.loc["m/a", "score"] == pytest.approx(0.375)  # (0.25 + 0.5) / 2, not simulated
    assert np.isnan(real.loc["m/a", "ci_low"])  # 2 regions: no interval
    assert any("ranked apart" in note for note in table.attrs["notes"])


def test_simulated_data_are_never_averaged_with_real_data(simulated_and_rsa_only):
    found = rankings(simulated_and_rsa_only)
    assert [r.group for r in found] == ["real", "simulated"]
    real, sim = found
    assert real.columns == ["kriegeskorte2008/rsa"]
    assert sim.columns == ["simulated/rsa", "simulated/srp-ridge"]
    assert set(real.cells["dataset"]) == {"kriegeskorte2008"}
    combined = ranking(simulated_and_rsa_only)
    assert list(combined["data"]) == ["real"] * 3 + ["simulated"] * 3
    # without registered metadata a dataset named 'simulated' is still simulated
    assert [r.group for r in rank_models(scores(simulated_and_rsa_only))] == ["real", "simulated"]


def test_report_draws_the_ranking_of_both_groups(simulated_and_rsa_only):
    from brainrank.leaderboard.report import ReportOptions, section_ranking

    section = section_ranking(simulated_and_rsa_only, ReportOptions(n_boot=200))
    assert len(section.figures) == 2 and not section.missing
    titles = [title for title, _ in section.tables]
    assert titles == ["Ranking, real data", "Ranking, simulated data"]
    assert all(t["mean"].notna().all() for _, t in section.tables)
    # the report ranks by the same definition as the Python API (and so the CLI and web page)
    api = ranking(simulated_and_rsa_only, n_boot=200)
    report = pd.concat([t.assign(data=g) for (_, t), g in zip(section.tables, ["real", "simulated"],
                                                             strict=True)])  # fmt: skip
    assert list(report["model"]) == list(api["model"])
    assert np.allclose(report["mean"], api["mean"])


@pytest.fixture
def three_datasets(tmp_path):
    """allen (real, SRP-Ridge and RSA, ceiling 0.5, m/c lacks RSA in VISam), k92 (real, RSA
    only, no ceiling, 2 regions), simulated (SRP-Ridge only)."""
    store = open_store(str(tmp_path / "three.db"))
    _dataset(store, "allen", "mouse")
    _dataset(store, "k92", "human")
    _dataset(store, "simulated", "simulated")
    for model, level in LEVEL.items():
        _write(store, model, "allen", Ridge(), _values(level, ALLEN), ceiling=0.5)
        regions = ALLEN[:-1] if model == "m/c" else ALLEN
        _write(store, model, "allen", RSA(), _values(level - 0.2, regions), ceiling=0.5)
        _write(store, model, "k92", RSA(), {"EVC": level / 4, "IT": level / 2})
        _write(store, model, "simulated", Ridge(), _values(1 - level, SIM_REGIONS))
    return store


def test_three_datasets_rank_on_shared_cells_normalised_where_a_ceiling_exists(three_datasets):
    real, sim = rankings(three_datasets, n_boot=300)
    assert real.columns == ["allen/rsa", "allen/srp-ridge", "k92/rsa"]
    table = real.table.set_index("model")
    # VISam of allen/rsa is missing for m/c: left out for every model, listed, counted
    assert list(real.excluded["cell"]) == ["allen/rsa/VISam"]
    assert real.excluded["missing_for"].iloc[0] == ["m/c"]
    assert table.loc["m/c", "n_missing"] == 1 and table.loc["m/a", "n_missing"] == 0
    assert (table["n_cells"] == 5 + 6 + 2).all()
    for model, level in LEVEL.items():
        rsa = np.mean(list(_values(level - 0.2, ALLEN[:-1]).values())) / 0.5  # normalised
        srp = np.mean(list(_values(level, ALLEN).values())) / 0.5
        k92 = np.mean([level / 4, level / 2])  # no ceiling: raw
        assert table.loc[model, "allen/rsa"] == pytest.approx(rsa)
        assert table.loc[model, "mean"] == pytest.approx(np.mean([rsa, srp, k92]))
    assert list(real.table["model"]) == ["m/a", "m/c", "m/b"]
    notes = " ".join(real.notes)
    assert "raw scores where none is: k92/rsa." in notes and "ceiling-normalised" in notes
    assert "that every model has" in notes and "m/c (1)" in notes
    assert real.with_ci and (real.table["ci_low"] <= real.table["mean"]).all()
    # simulated: its own ranking, its own order (1 - level)
    assert list(sim.table["model"]) == ["m/b", "m/c", "m/a"] and sim.columns == [
        "simulated/srp-ridge"
    ]
    # raw scores when asked; only the ceiling cells with value="normalized"
    raw = rankings(three_datasets, value="score", ci=None)[0].table.set_index("model")
    assert raw.loc["m/a", "allen/srp-ridge"] == pytest.approx(
        np.mean(list(_values(0.5, ALLEN).values()))
    )
    norm = rankings(three_datasets, value="normalized", ci=None)[0]
    assert norm.columns == ["allen/rsa", "allen/srp-ridge"]
    assert any("no usable ceiling" in n and n.endswith(": k92/rsa.") for n in norm.notes)


def test_a_model_with_fewer_columns_does_not_outrank_on_other_cells(three_datasets):
    """The CLI's old mean averaged each model's own columns: a model scored on one easy
    column outranked models scored on every column."""
    _write(three_datasets, "m/partial", "k92", RSA(), {"EVC": 0.6, "IT": 0.6})
    [real, _] = rankings(three_datasets, ci=None, dataset="allen,k92,simulated")
    assert real.columns == ["k92/rsa"]  # the only column every real model has
    table = real.table.set_index("model")
    assert table.loc["m/a", "mean"] == pytest.approx(np.mean([0.5 / 4, 0.5 / 2]))
    assert table.loc["m/partial", "n_missing"] == 6 + 6
    assert any("m/partial (12)" in n for n in real.notes)


def test_heldout_is_the_headline_where_the_metric_stores_it(tmp_path):
    store = open_store(str(tmp_path / "h.db"))
    for model, level in LEVEL.items():
        _write(store, model, "allen", Ridge(), _values(level, ALLEN), heldout=-0.1)
        _write(store, model, "allen", RSA(), _values(level, ALLEN))
    [real] = rankings(store, ci=None)
    table = real.table.set_index("model")
    assert table.loc["m/a", "allen/srp-ridge"] == pytest.approx(
        np.mean(list(_values(0.5, ALLEN).values())) - 0.1
    )
    assert table.loc["m/a", "allen/rsa"] == pytest.approx(
        np.mean(list(_values(0.5, ALLEN).values()))
    )
    assert any("'max'" in n and "allen/rsa" in n and "allen/srp-ridge" not in n for n in real.notes)
    forced = rankings(store, "max", ci=None)[0].table.set_index("model")
    assert forced.loc["m/a", "allen/srp-ridge"] == pytest.approx(table.loc["m/a", "allen/rsa"])
    only_heldout = rankings(store, "heldout", ci=None)[0]
    assert only_heldout.columns == ["allen/srp-ridge"]
    assert "Left out, no 'heldout' rows: allen/rsa." in only_heldout.notes
    with pytest.raises(InputError, match="not 'layer'"):
        rankings(store, "layer")


def test_ci_is_an_independent_bootstrap_over_regions_and_absent_below_five(tmp_path):
    store = open_store(str(tmp_path / "ci.db"))
    rng = np.random.default_rng(4)
    per_region = {m: dict(zip(ALLEN, rng.uniform(0, 1, 6), strict=True)) for m in LEVEL}
    for model in LEVEL:
        _write(store, model, "allen", Ridge(), per_region[model])
        _write(store, model, "allen", RSA(), {r: v / 2 for r, v in per_region[model].items()})
    [real] = rankings(store, n_boot=500, seed=7)
    row = real.table.set_index("model").loc["m/a"]
    units = np.array([[per_region["m/a"][r] / 2, per_region["m/a"][r]] for r in sorted(ALLEN)])
    index = np.random.default_rng(7).integers(0, 6, size=(500, 6))
    stats = units[index].mean(axis=1).mean(axis=1)
    assert row["ci_low"] == pytest.approx(np.quantile(stats, 0.025))
    assert row["ci_high"] == pytest.approx(np.quantile(stats, 0.975))
    few = rankings(store, region=",".join(ALLEN[: MIN_UNITS - 1]))[0]
    assert not few.with_ci and few.table["ci_low"].isna().all()
    assert any(f"{MIN_UNITS - 1} (dataset, region) units" in n for n in few.notes)


def test_two_settings_of_one_metric_are_two_named_columns_never_averaged(tmp_path):
    store = open_store(str(tmp_path / "cfg.db"))
    low, high = Ridge(alphas=[1.0], n_components=64), Ridge(alphas=[1e8], n_components=64)
    assert low.config_hash != high.config_hash
    for metric in (low, high):
        store.register_metric(metric, "test")
    for model, level in LEVEL.items():
        _write(store, model, "allen", low, _values(level, ALLEN))
        _write(store, model, "allen", high, _values(-level, ALLEN))
    table = ranking(store, ci=None)
    assert "allen/srp-ridge(alphas=1)" in table.columns
    assert "allen/srp-ridge(alphas=1e8)" in table.columns
    # the mean would average two settings of one metric: no mean, no rank, and why
    assert table["mean"].isna().all() and table["rank"].isna().all()
    assert any("several configurations of one metric" in n for n in table.attrs["notes"])
    one_setting = ranking(store, ci=None, config="srp-ridge(alphas=1e8)")
    assert list(one_setting["model"]) == ["m/b", "m/c", "m/a"]
    assert one_setting["mean"].iloc[0] == pytest.approx(
        np.mean(list(_values(-0.3, ALLEN).values()))
    )
    frame = scores(store, selection="max")
    assert set(frame["config"]) == {"srp-ridge(alphas=1)", "srp-ridge(alphas=1e8)"}
    with pytest.raises(InputError, match=r"2 configurations.*never averaged"):
        analyses.region_scores(frame, "srp-ridge")
    one = analyses.region_scores(frame, "srp-ridge(alphas=1e8)")
    assert one.loc["m/a", "VISp"] == pytest.approx(-0.5)
    configs = configurations(store).set_index("config")
    assert configs.loc["srp-ridge(alphas=1e8)", "metric_hash"] == high.config_hash
    assert configs.loc["srp-ridge(alphas=1e8)", "parameters"] == "alphas=1e8, n_components=64"
    # the name does not change when a filter hides the other configuration
    only = scores(store, config="srp-ridge(alphas=1)")
    assert set(only["metric_hash"]) == {low.config_hash}


def test_configuration_names():
    assert format_value(1e8) == "1e8" and format_value([1.0]) == "1" and format_value(0.5) == "0.5"
    assert format_value([0.1, 10.0]) == "[0.1,10]" and format_value(1e-5) == "1e-5"
    labels = config_label_map(
        [("m", "aaaaaa1"), ("m", "bbbbbb2"), ("n", "cccccc3"), ("o", "d1"), ("o", "e2")],
        {("m", "aaaaaa1"): {"alphas": [1.0], "k": 5}, ("m", "bbbbbb2"): {"alphas": [1e8], "k": 5}},
    )
    assert labels[("m", "aaaaaa1")] == "m(alphas=1)" and labels[("m", "bbbbbb2")] == "m(alphas=1e8)"
    assert labels[("n", "cccccc3")] == "n"  # one configuration: the identifier
    assert labels[("o", "d1")] == "o#d1"  # parameters unknown: the hash


def test_rank_models_refuses_bad_input():
    with pytest.raises(InputError, match="value must be one of"):
        rank_models(pd.DataFrame(), value="mean")
    with pytest.raises(InputError, match="no column"):
        rank_models(pd.DataFrame({"model": ["a"], "selection": ["max"]}))
    assert rank_models(pd.DataFrame()) == []
