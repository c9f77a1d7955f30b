"""The leaderboard stores the model taxonomy (schema v4) and filters on it: training method,
Taskonomy cluster, task and data; randomly initialised networks apart from baselines."""

from __future__ import annotations

import sqlite3

from click.testing import CliRunner

from brainrank.cli import main
from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import ModelMetadata
from brainrank.leaderboard import SCHEMA_VERSION, models, open_store, scores


class RSA(Metric):
    identifier = "rsa"


META = {
    "lab/simclr": ModelMetadata(
        source="lab",
        architecture="r50",
        family="convnet",
        task="contrastive self-supervision",
        training_method="simclr",
        training_data="ImageNet-1k",
    ),
    "lab/sup": ModelMetadata(
        source="lab",
        architecture="r50",
        family="convnet",
        task="classification",
        training_method="supervised",
        training_data="ImageNet-21k",
        imagenet_top1=80.1,
        top1_source="a table",
    ),
    "taskonomy/normal": ModelMetadata(
        source="taskonomy",
        architecture="enc",
        family="convnet",
        task="taskonomy:normal",
        training_method="taskonomy",
        training_data="Taskonomy",
    ),
    "lab/r50:random": ModelMetadata(
        source="lab", architecture="r50", family="convnet", trained=False
    ),
    "baseline/gabor": ModelMetadata(
        source="baseline",
        architecture="gabor",
        family="other",
        trained=False,
        training_method="handcrafted",
    ),
}


def fill(store) -> None:
    for model, meta in META.items():
        store.register_model(model, meta)
        rows = [Score("s1", "V1", "l0", 0.3, layer_index=0, relative_depth=0.0),
                Score("s1", "V1", "l0", 0.3, layer_index=0, relative_depth=0.0,
                      selection="max")]  # fmt: skip
        store.write_scores(run_id=None, model=model, dataset="d", metric=RSA(), scores=rows)


def test_the_taxonomy_is_stored_and_filtered(tmp_path):
    store = open_store(str(tmp_path / "lb.db"))
    fill(store)
    frame = models(store).set_index("model")
    assert frame.loc["lab/simclr", "training_method"] == "simclr"
    assert frame.loc["taskonomy/normal", "task_cluster"] == "3D"
    assert frame.loc["lab/sup", "imagenet_top1"] == 80.1
    assert frame.loc["lab/sup", "details"]["top1_source"] == "a table"
    assert set(scores(store, training_method="simclr,supervised")["model"]) == {
        "lab/simclr", "lab/sup"}  # fmt: skip
    assert set(scores(store, task_cluster="3D")["model"]) == {"taskonomy/normal"}
    assert set(scores(store, task="*self-supervision")["model"]) == {"lab/simclr"}
    assert set(scores(store, training_data="ImageNet-*")["model"]) == {"lab/simclr", "lab/sup"}
    # random networks without the baselines; the baselines on their own
    assert set(scores(store, trained=False)["model"]) == {"lab/r50:random"}
    assert set(scores(store, baseline=True)["model"]) == {"baseline/gabor"}
    assert "baseline/gabor" not in set(scores(store, baseline=False)["model"])
    assert set(models(store, trained=True)["model"]) == {"lab/simclr", "lab/sup",
                                                          "taskonomy/normal"}  # fmt: skip
    out = CliRunner().invoke(main, ["query", "--db", str(tmp_path / "lb.db"), "--random",
                                    "--format", "csv", "--columns", "model,training_method"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "lab/r50:random,none" in out.output and "baseline" not in out.output
    out = CliRunner().invoke(main, ["query", "--db", str(tmp_path / "lb.db"), "--method",
                                    "simclr", "--format", "csv", "--columns", "model"])  # fmt: skip
    assert out.output.split() == ["model", "lab/simclr", "lab/simclr"]


def test_a_version_3_leaderboard_gains_the_taxonomy_columns(tmp_path):
    path = tmp_path / "lb.db"
    fill(open_store(str(path)))
    con = sqlite3.connect(path)  # make it a version-3 file: without the v4 columns
    for column in ("training_method", "task_cluster", "imagenet_top1"):
        con.execute(f"ALTER TABLE models DROP COLUMN {column}")
    con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    store = open_store(str(path))
    assert store.migrated_from == [4] and store.schema_version() == SCHEMA_VERSION == 4
    frame = models(store).set_index("model")
    assert frame["training_method"].isna().all()  # old rows: unknown until rebuilt
    # before the next build fills them, an old baseline row still counts as a baseline
    assert set(scores(store, trained=False)["model"]) == {"lab/r50:random"}
    store.register_model("lab/simclr", META["lab/simclr"])
    assert models(store).set_index("model").loc["lab/simclr", "training_method"] == "simclr"
