"""Rank uncertainty from a stored leaderboard: the per-neuroid values behind each ranked cell
(a summary row's layer, both layers of a held-out choice), rank intervals as columns of the
ranking, ``compare_models`` and ``brainrank compare``."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.core.errors import InputError
from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import DatasetMetadata, DatasetSpec
from brainrank.leaderboard import open_store, rankings, scores
from brainrank.leaderboard.uncertainty import compare_models, neuroid_arrays, pairwise_report


class Ridge(Metric):
    identifier = "srp-ridge"
    headline = "heldout"


class RSA(Metric):
    identifier = "rsa"
    headline = "heldout"
    needs = "rdms"


REGIONS = ("V1", "V2")
LEVELS = {"m/a": 0.40, "m/b": 0.30, "m/c": 0.29}


def _seed(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


def per_neuroid(model: str, region: str, layer: str, n: int = 50) -> np.ndarray:
    rng = np.random.default_rng(_seed(model, region, layer))
    shared = np.random.default_rng(_seed(region)).normal(0, 0.1, n)
    return LEVELS[model] + (0.02 if layer == "l2" else 0.0) + shared + rng.normal(0, 0.05, n)


@pytest.fixture
def store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'lb.db'}")
    meta = DatasetMetadata(species="mouse", modality="test")
    store.register_dataset(DatasetSpec("d", lambda **_: None, meta, plugin="test"))
    for model in LEVELS:
        ridge, rsa = [], []
        for region in REGIONS:
            ids = tuple(f"{region}-{i}" for i in range(50))
            layers = {}
            for index, layer in enumerate(("l1", "l2")):
                values = per_neuroid(model, region, layer)
                layers[layer] = values
                ridge.append(Score("pooled", region, layer, float(values.mean()), 50,
                                   layer_index=index, per_neuroid=values.astype(np.float32),
                                   neuroid_ids=ids))  # fmt: skip
            chosen = ["l1", "l2"] if model == "m/a" else ["l2", "l2"]
            value = float(np.mean([layers[c].mean() for c in chosen])) - 0.01
            ridge.append(Score("pooled", region, chosen[0], value, 50, selection="heldout",
                               extra={"layers": chosen}))  # fmt: skip
            rsa.append(Score("pooled", region, "l1", LEVELS[model] / 2, 0, selection="heldout"))
        store.write_scores(run_id=None, model=model, dataset="d", metric=Ridge(), scores=ridge)
        store.write_scores(run_id=None, model=model, dataset="d", metric=RSA(), scores=rsa)
    return store


def test_cells_take_their_layers_values(store):
    rankings(store, value="score", intervals=_keep)
    found = _kept[-1]
    arrays = neuroid_arrays(store, found[0].cells, found[1], found[2])
    key = ("m/a", "d", "srp-ridge", "V1", "pooled")
    both = (per_neuroid("m/a", "V1", "l1") + per_neuroid("m/a", "V1", "l2")) / 2
    np.testing.assert_allclose(in_order(arrays[key]), both, atol=1e-6)  # float32 storage
    np.testing.assert_allclose(in_order(arrays[("m/b", "d", "srp-ridge", "V2", "pooled")]),
                               per_neuroid("m/b", "V2", "l2"), atol=1e-6)  # fmt: skip
    assert not any(k[2] == "rsa" for k in arrays)  # no per-neuroid values
    assert arrays[key].scale == pytest.approx(1.0)  # raw scores ranked


_kept: list = []


def in_order(found) -> np.ndarray:
    """Values in the order of their ids' numbers (``V1-0``, ``V1-1``...)."""
    order = np.argsort([int(str(i).split("-")[1]) for i in found.ids])
    return np.asarray(found.values)[order]


def _keep(ranking, rows, selection):
    import pandas as pd

    _kept.append((ranking, rows, selection))
    return pd.DataFrame(columns=["model", "rank_low", "rank_high"]), []


def test_the_ranking_prints_rank_intervals_without_changing_its_values(store):
    (plain,) = rankings(store, value="score")
    (ranked,) = rankings(store, value="score", intervals=True, n_boot=500)
    assert list(ranked.table.columns[:4]) == ["rank", "rank_low", "rank_high", "model"]
    assert ranked.table.drop(columns=["rank_low", "rank_high"]).equals(plain.table)
    table = ranked.table.set_index("model")
    assert (table.loc["m/a", "rank_low"], table.loc["m/a", "rank_high"]) == (1, 1)
    assert table.loc["m/b", "rank_low"] == 2 and table.loc["m/c", "rank_high"] == 3
    notes = " ".join(ranked.notes)
    assert "neuroids within each subject and region (d/srp-ridge)" in notes
    assert "Held fixed" in notes and "d/rsa" in notes and "Stimuli are not resampled" in notes


def test_compare_answers_per_column_and_overall(store):
    result = compare_models(store, "m/a", "m/b", value="score", n_boot=500)
    columns = result.columns.set_index("column")
    assert columns.loc["d/srp-ridge", "unit"] == "neuroids"
    assert columns.loc["d/srp-ridge", "verdict"] == "m/a better"
    assert columns.loc["d/rsa", "verdict"] == "not tested (nothing to resample)"
    assert np.isnan(columns.loc["d/rsa", "p"])
    ranked = scores(store, selection="heldout")
    a = ranked[(ranked["model"] == "m/a") & (ranked["metric"] == "srp-ridge")]["score"].mean()
    b = ranked[(ranked["model"] == "m/b") & (ranked["metric"] == "srp-ridge")]["score"].mean()
    assert columns.loc["d/srp-ridge", "difference"] == pytest.approx(a - b)
    overall = result.overall.iloc[0]
    assert overall["p"] < 0.05 and overall["verdict"] == "m/a better"
    assert any("Holm" in n for n in result.notes)
    close = compare_models(store, "m/b", "m/c", value="score", n_boot=500)
    assert close.columns.set_index("column").loc["d/srp-ridge", "p"] > 0.001
    with pytest.raises(InputError, match=r"no scores of model .m/x.\. Closest stored: m/"):
        compare_models(store, "m/a", "m/x")
    with pytest.raises(InputError, match="itself"):
        compare_models(store, "m/a", "m/a")


def test_pairwise_report_adjusts_over_every_pair(store):
    table, notes = pairwise_report(store, value="score", n_boot=500)
    assert len(table) == 3 and set(table["data"]) == {"real"}
    assert (table["p_adjusted"] >= table["p"]).all()
    assert any("3 pairs" in n for n in notes)


def test_brainrank_compare_command(store):
    runner = CliRunner()
    db = store.display_url
    out = runner.invoke(main, ["compare", "m/a", "m/b", "--db", db, "--value", "score",
                               "--n-boot", "300"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "Overall (the ranked value)" in out.output and "m/a better" in out.output
    out = runner.invoke(main, ["compare", "m/a", "m/b", "m/c", "--db", db, "--n-boot", "300"])
    assert out.exit_code == 0, out.output
    assert "m/a > m/b" in out.output and "Holm" in out.output
    out = runner.invoke(main, ["compare", "m/a", "--db", db])
    assert out.exit_code != 0 and "at least two different models" in out.output
    out = runner.invoke(main, ["leaderboard", "--db", db, "--value", "score"])
    assert out.exit_code == 0 and "rank_low" in out.output
