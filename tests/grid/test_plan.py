"""The plan as a value (brainrank/grid/plan.py): made before any run is recorded, with the
plan hash of every combination (the resume key) and the run configuration; a model is a
source, from a plugin's spec or built in the caller's code."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import brainrank
from brainrank.core.errors import InputError, NotApplicableError
from brainrank.core.extraction import ExtractionConfig
from brainrank.core.hashing import code_version, dataset_hash, plan_hash, weights_hash
from brainrank.core.registry import Registry
from brainrank.core.responses import RDMSet
from brainrank.core.rsa import rdm
from brainrank.core.specs import DatasetMetadata
from brainrank.grid import Dask, MemoryStore, ModelSource
from brainrank.grid.execute import execute
from brainrank.grid.plan import content_options, plan
from brainrank.leaderboard import open_store


def tiny(path):
    spec = importlib.util.spec_from_file_location("tiny_for_plan", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_plugin_model_s_plan_hash_is_the_resume_key_of_before(tiny_plugin_path):
    """The grid's plan hash is computed as it was before plans were values (a user's stored
    leaderboard is not recomputed): identifier, options with the weights file's sha256, the
    factory's module, stimuli, data, metric configuration and extraction settings."""
    registry = Registry(plugin_files=[tiny_plugin_path])
    made = plan(["tiny/net", "baseline/pixels"], ["tiny/data"], ["rsa", "srp-ridge"],
                registry=registry)  # fmt: skip
    assert len(made.combos) == 4
    dataset = registry.get("dataset", "tiny/data").load()
    for planned in made.combos:
        spec = registry.get("model", planned.model)
        metric = made.metrics[(planned.combo.metric, planned.combo.metric_hash)].metric
        expected = plan_hash(planned.model, content_options({}), "tiny/data",
                             dataset.stimuli.content_hash(), dataset_hash(dataset),
                             metric.config_hash, ExtractionConfig(),
                             code=code_version(spec.factory))  # fmt: skip
        assert planned.combo.plan_hash == expected, planned.key
    assert made.hashes == {c.key: c.combo.plan_hash for c in made.combos}


def test_the_plan_is_made_before_any_run_and_holds_the_configuration(tiny_plugin_path):
    registry = Registry(plugin_files=[tiny_plugin_path])
    store = MemoryStore()
    made = plan(["tiny/net"], ["tiny/data"], ["rsa"], registry=registry, recompute=True)
    assert store.runs == {}
    assert made.config["models"] == ["tiny/net"] and made.config["recompute"] is True
    assert made.config["device"] == made.device == made.extraction.device == "cpu"
    assert made.config["plugin_files"] == [str(tiny_plugin_path.resolve())]
    summary = execute(made, store, progress=False)
    assert store.runs[summary.run_id]["config"] == made.config
    assert store.runs[summary.run_id]["executor"] == "local"


def test_the_device_is_resolved_once_and_named_where_it_came_from(tiny_plugin_path):
    registry = Registry(plugin_files=[tiny_plugin_path])
    with pytest.raises(InputError, match=r"unknown device 'gpu'.*came from --device"):
        plan(["tiny/net"], ["tiny/data"], ["rsa"], registry=registry, device="gpu",
             device_origin="--device")  # fmt: skip
    made = plan(["tiny/net"], ["tiny/data"], ["rsa"], ExtractionConfig(device="auto"),
                registry=registry)  # fmt: skip
    assert made.device == "cpu"  # no GPU here: auto is the CPU


def test_a_model_object_is_a_source_of_its_own(tiny_plugin_path):
    """Its code version is the source file of its module's class, its content the hash of
    its weights: other weights under the same identifier are another plan."""
    module = tiny(tiny_plugin_path)
    model = module.build_model()
    source = ModelSource.from_model(model)
    assert source.code == code_version(type(model.module)) and source.plugin == ""
    assert source.content == {"weights": weights_hash(model)}
    assert source.in_process_only
    changed = module.build_model()
    with torch.no_grad():
        changed.module.fc.bias.add_(1.0)
    dataset = module.build_dataset()
    first = plan([model], [dataset], ["rsa"], registry=Registry(plugin_files=[tiny_plugin_path]))
    second = plan([changed], [dataset], ["rsa"],
                  registry=Registry(plugin_files=[tiny_plugin_path]))  # fmt: skip
    assert list(first.hashes) == list(second.hashes)  # the same combination...
    assert first.hashes != second.hashes  # ...another plan


def test_the_python_api_reuses_a_model_object_s_score_until_its_weights_change(
    tmp_path, tiny_plugin_path
):
    brainrank.get_registry([tiny_plugin_path])
    module = tiny(tiny_plugin_path)
    db = str(tmp_path / "lb.db")
    model = module.build_model()
    first = brainrank.score(model, "tiny/data", "rsa", db=db)
    again = brainrank.score(model, "tiny/data", "rsa", db=db)
    runs = open_store(db).runs_frame()
    assert list(runs["n_scores"]) == [len(first), 0] and runs["n_skipped"].iloc[1] == 1
    np.testing.assert_array_equal(np.sort(first["score"]), np.sort(again["score"]))
    with torch.no_grad():
        model.module.fc.bias.add_(1.0)
    model.weights_id = ""  # the weights changed in place: their hash is computed again
    brainrank.score(model, "tiny/data", "rsa", db=db)
    assert open_store(db).runs_frame()["n_scores"].iloc[2] == len(first)  # scored again


def test_a_model_object_cannot_go_to_dask_workers(tmp_path, tiny_plugin_path):
    module = tiny(tiny_plugin_path)
    made = plan([module.build_model()], ["tiny/data"], ["rsa"],
                registry=Registry(plugin_files=[tiny_plugin_path]))  # fmt: skip
    store = open_store(str(tmp_path / "lb.db"))
    with pytest.raises(InputError, match="built in this process"):
        execute(made, store, executor=Dask(workers=2), progress=False)
    assert store.runs_frame().empty  # refused before the run is recorded


def test_one_identifier_twice_is_refused(tiny_plugin_path):
    module = tiny(tiny_plugin_path)
    with pytest.raises(InputError, match="'tiny/net' appear more than once"):
        plan(["tiny/net", module.build_model()], ["tiny/data"], ["rsa"],
             registry=Registry(plugin_files=[tiny_plugin_path]))  # fmt: skip


def test_what_planning_finds_is_recorded_when_the_run_starts(tmp_path, tiny_plugin_path):
    """A dataset that fails to load is a failure of the run (with its traceback); the rest of
    the grid goes on."""
    registry = Registry(plugin_files=[tiny_plugin_path])
    made = plan(["tiny/net"], ["tiny/data", "nsd/shared1000"], ["rsa"], registry=registry,
                data_dir=tmp_path / "empty")  # fmt: skip
    assert [f.stage for f in made.failures] == ["dataset"]
    store = open_store(str(tmp_path / "lb.db"))
    summary = execute(made, store, progress=False)
    assert summary.n_scored == 1 and summary.status == "partial"
    failures = store.failures_frame()
    assert list(failures["dataset"]) == ["nsd/shared1000"] and failures["traceback"].iloc[0]


def test_the_python_api_refuses_a_metric_that_does_not_apply_before_any_run(tmp_path):
    ids = [f"s{i}" for i in range(6)]
    rdms = RDMSet(np.stack([rdm(np.random.default_rng(0).standard_normal((6, 3)))]),
                  tuple(ids), [{"subject": "s", "region": "IT"}])  # fmt: skip
    images = {s: np.full((8, 8, 3), i * 40, np.uint8) for i, s in enumerate(ids)}
    dataset = brainrank.Dataset("test/rdm-only",
                                brainrank.StimulusSet("rdm-only", ids, images.__getitem__),
                                DatasetMetadata("x", "y", kind="rdms"), rdms=rdms)  # fmt: skip
    db = tmp_path / "lb.db"
    with pytest.raises(NotApplicableError, match="RDMs only"):
        brainrank.score("baseline/pixels", dataset, "srp-ridge", db=str(db))
    assert not db.exists()
