"""Queries: filters, aggregations with bootstrap CIs, the ranking, one model's detail."""

from __future__ import annotations

import numpy as np
import pytest

from brainrank.core.errors import InputError
from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import ModelMetadata
from brainrank.core.stats import bootstrap_ci
from brainrank.leaderboard import (
    aggregate,
    model_detail,
    models,
    open_store,
    rank_frame,
    ranking,
    rankings,
    scores,
)


class RSA(Metric):
    identifier = "rsa"


class Ridge(Metric):
    identifier = "srp-ridge"


# (subject, region) -> best-layer value per model; region V1 has two subjects, IT one
VALUES = {
    "m/conv-trained": {("s1", "V1"): 0.6, ("s2", "V1"): 0.4, ("s1", "V4"): 0.5, ("s1", "IT"): 0.7},
    "m/conv-random": {("s1", "V1"): 0.3, ("s2", "V1"): 0.1, ("s1", "V4"): 0.2, ("s1", "IT"): 0.1},
    "m/vit": {("s1", "V1"): 0.2, ("s2", "V1"): 0.2, ("s1", "V4"): 0.4, ("s1", "IT"): 0.9},
}
META = {
    "m/conv-trained": ModelMetadata(source="m", architecture="conv", family="convnet"),
    "m/conv-random": ModelMetadata(
        source="m", architecture="conv", family="convnet", trained=False
    ),
    "m/vit": ModelMetadata(source="m", architecture="vit", family="transformer"),
}


def layer_rows(values, offset=0.0):
    out = []
    for (subject, region), best in values.items():
        for index, layer in enumerate(["l0", "l1", "l2"]):
            value = best - 0.1 * abs(index - 1) + offset
            out.append(
                Score(
                    subject,
                    region,
                    layer,
                    value,
                    n_neuroids=5,
                    layer_index=index,
                    relative_depth=index / 2,
                )
            )
        out.append(
            Score(
                subject,
                region,
                "l1",
                best + offset,
                n_neuroids=5,
                layer_index=1,
                relative_depth=0.5,
                selection="max",
            )
        )
    return out


@pytest.fixture
def store(tmp_path):
    store = open_store(str(tmp_path / "lb.db"))
    for model, values in VALUES.items():
        store.register_model(model, META[model])
        store.write_scores(
            run_id=None, model=model, dataset="d1", metric=RSA(), scores=layer_rows(values)
        )
        store.write_scores(
            run_id=None,
            model=model,
            dataset="d1",
            metric=Ridge(),
            scores=layer_rows(values, offset=0.2),
        )
    # a second dataset for one model, one region
    store.write_scores(
        run_id=None,
        model="m/vit",
        dataset="d2",
        metric=RSA(),
        scores=layer_rows({("s1", "V1"): 0.05}),
    )
    return store


def test_filters(store):
    assert set(scores(store, family="transformer")["model"]) == {"m/vit"}
    assert set(scores(store, trained=False)["model"]) == {"m/conv-random"}
    assert set(scores(store, trained=True)["model"]) == {"m/conv-trained", "m/vit"}
    best = scores(store, selection="max", subject="s2", region="V1,IT")
    assert set(best["subject"]) == {"s2"} and set(best["region"]) == {"V1"}
    assert len(best) == 3 * 2
    assert set(scores(store, layer="l[02]")["layer"]) == {"l0", "l2"}  # character classes
    assert set(scores(store, model="m/conv-*", metric="rsa")["model"]) == {
        "m/conv-trained",
        "m/conv-random",
    }
    assert scores(store, model="M/VIT").empty  # identifiers are case-sensitive
    with pytest.raises(InputError, match="unknown filter"):
        scores(store, colour="red")
    assert set(models(store, trained=False)["model"]) == {"m/conv-random"}


def test_aggregate_over_regions_averages_subjects_first_and_bootstraps_regions(store):
    frame = scores(store, selection="max", metric="rsa", dataset="d1")
    # 3 regions: no interval by default (fewer than 5 units), and a note says why
    default = aggregate(frame, over="region")
    assert default["ci_low"].isna().all() and "fewer than 5 regions" in default.attrs["notes"][0]
    out = aggregate(frame, over="region", n_boot=500, seed=3, min_units=2)
    row = out[out["model"] == "m/conv-trained"].iloc[0]
    regions = np.array([0.7, 0.5, 0.5])  # IT, V1 = mean(0.6, 0.4), V4 (sorted by name)
    assert row["n"] == 3 and row["mean"] == pytest.approx(regions.mean())
    low, high = bootstrap_ci(regions, n_boot=500, seed=3)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    # over subjects: s1 is the mean of its three regions, s2 has V1 only
    by_subject = aggregate(frame, over="subject")
    row = by_subject[by_subject["model"] == "m/conv-trained"].iloc[0]
    assert row["n"] == 2 and row["mean"] == pytest.approx(np.mean([np.mean([0.6, 0.5, 0.7]), 0.4]))


def test_aggregate_over_datasets(store):
    frame = scores(store, selection="max", metric="rsa", model="m/vit")
    out = aggregate(frame, over="dataset")
    assert len(out) == 1 and "dataset" not in out.columns
    d1 = np.mean([0.2, 0.2, 0.4, 0.9])  # every subject x region row of d1
    assert out["mean"].iloc[0] == pytest.approx(np.mean([d1, 0.05])) and out["n"].iloc[0] == 2
    single = aggregate(scores(store, selection="max", model="m/conv-random"), over="dataset")
    assert single["ci_low"].isna().all()  # one dataset: no interval
    # simulated data are averaged apart from real data
    mixed = frame.assign(dataset=frame["dataset"].replace({"d2": "sim2"}))
    apart = aggregate(mixed, over="dataset", species={"sim2": "simulated"})
    assert list(apart["data"]) == ["real", "simulated"] and list(apart["n"]) == [1, 1]
    assert apart["mean"].iloc[0] == pytest.approx(d1)
    with pytest.raises(InputError, match="over must be one of"):
        aggregate(frame, over="voxel")


def test_ranking_on_shared_cells_without_a_ci_over_three_regions(store):
    table = ranking(store, dataset="d1", n_boot=400, seed=1)
    assert list(table["model"]) == ["m/conv-trained", "m/vit", "m/conv-random"]
    assert list(table["rank"]) == [1, 2, 3] and set(table["data"]) == {"real"}
    # 2 configurations x (V1, V4, IT), every model has every cell
    assert (table["n_cells"] == 6).all() and (table["n_missing"] == 0).all()
    row = table.iloc[0]
    rsa = np.mean([0.7, 0.5, 0.5])  # IT, V1 = mean(0.6, 0.4), V4
    assert row["d1/rsa"] == pytest.approx(rsa) and row["d1/srp-ridge"] == pytest.approx(rsa + 0.2)
    assert row["mean"] == pytest.approx(rsa + 0.1)
    # 3 regions: a bootstrap interval would only bracket their min and max; none is printed
    assert table["ci_low"].isna().all() and table["ci_high"].isna().all()
    notes = " ".join(table.attrs["notes"]).lower()
    assert "no confidence interval: 3 (dataset, region) units" in notes
    assert "raw scores; no ceiling" in notes and "'max'" in notes
    # normalised values are ranked only where ceilings exist; none here
    assert rank_frame(scores(store, selection="max"), value="normalized")["mean"].isna().all()


def test_ranking_leaves_out_and_lists_cells_some_model_lacks(store):
    table = ranking(store, ci=None)
    assert "ci_low" not in table.columns and "d2/rsa" not in table.columns
    by_model = table.set_index("model")
    # d2 has m/vit only: left out for everyone, counted for the models that lack it
    assert (
        by_model.loc["m/conv-trained", "n_missing"] == 1 and by_model.loc["m/vit", "n_missing"] == 0
    )
    assert by_model.loc["m/conv-trained", "mean"] == pytest.approx(np.mean([0.7, 0.5, 0.5]) + 0.1)
    assert any("Ranked on the 6 of 7 cells" in note for note in table.attrs["notes"])
    [result] = rankings(store, ci=None)
    assert list(result.excluded["cell"]) == ["d2/rsa/V1"]
    assert result.excluded["missing_for"].iloc[0] == ["m/conv-random", "m/conv-trained"]


def test_model_detail_and_layer_curves(store):
    detail = model_detail(store, "m/vit")
    assert detail["metadata"]["family"] == "transformer"
    assert set(detail["summary"]["selection"]) == {"max"}
    layers = detail["layers"]
    curve = layers[
        (layers["dataset"] == "d1")
        & (layers["metric"] == "rsa")
        & (layers["subject"] == "s1")
        & (layers["region"] == "IT")
    ]
    assert curve["layer"].tolist() == ["l0", "l1", "l2"]
    assert curve["relative_depth"].tolist() == [0.0, 0.5, 1.0]
    np.testing.assert_allclose(curve["score"], [0.8, 0.9, 0.8])
    with pytest.raises(InputError, match=r"no model 'm/vt'.*brainrank leaderboard"):
        model_detail(store, "m/vt")
