"""Queries: filters, aggregations with bootstrap CIs, the ranking, one model's detail."""

from __future__ import annotations

import numpy as np
import pytest

from brainrank.core.errors import InputError
from brainrank.core.stats import bootstrap_ci
from brainrank.core.types import Metric, ModelMetadata, Score
from brainrank.leaderboard import (
    aggregate,
    model_detail,
    models,
    open_store,
    rank_frame,
    ranking,
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
    out = aggregate(frame, over="region", n_boot=500, seed=3)
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
    with pytest.raises(InputError, match="over must be one of"):
        aggregate(frame, over="voxel")


def test_ranking_with_bootstrap_cis_across_regions(store):
    table = ranking(store, dataset="d1", n_boot=400, seed=1)
    assert list(table["model"]) == ["m/conv-trained", "m/vit", "m/conv-random"]
    assert list(table["rank"]) == [1, 2, 3] and (table["n_scores"] == 2).all()
    row = table.iloc[0]
    rsa = np.mean([0.7, 0.5, 0.5])
    assert row["d1/rsa"] == pytest.approx(rsa) and row["d1/srp-ridge"] == pytest.approx(rsa + 0.2)
    assert row["mean"] == pytest.approx(rsa + 0.1)
    # an independent implementation of the resampling: draw regions, recompute the columns
    units = np.array([[0.7, 0.9], [0.5, 0.7], [0.5, 0.7]])  # IT, V1, V4 x (rsa, srp-ridge)
    rng = np.random.default_rng(1)
    index = rng.integers(0, 3, size=(400, 3))
    stats = units[index].mean(axis=1).mean(axis=1)
    assert row["ci_low"] == pytest.approx(np.quantile(stats, 0.025))
    assert row["ci_high"] == pytest.approx(np.quantile(stats, 0.975))
    # normalised values are ranked only where ceilings exist; none here
    assert rank_frame(scores(store, selection="max"), value="normalized").empty
    no_ci = ranking(store, ci=None)
    assert "ci_low" not in no_ci.columns and "d2/rsa" in no_ci.columns


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
