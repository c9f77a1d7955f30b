"""Combinations of feature spaces of several models through the grid
(brainrank/grid/combination.py): planned once per dataset as model ``stack/<hash>``, their
members' identities, weights and code in the plan hash, bad spaces refused before any run,
executed one model at a time and stored with their spaces in the models table."""

from __future__ import annotations

import hashlib
import importlib.util

import numpy as np
import pytest
import torch

import brainrank
from brainrank.core.errors import InputError
from brainrank.core.extraction import ExtractionConfig
from brainrank.core.hashing import code_version, dataset_hash, plan_hash
from brainrank.core.registry import Registry
from brainrank.core.spaces import Space, combination_identifier
from brainrank.grid import MemoryStore
from brainrank.grid.execute import execute
from brainrank.grid.plan import ModelSource, content_options, plan
from brainrank.plugins.metrics.stacking import Stacking
from brainrank.plugins.metrics.varpart import VariancePartitioning

SPACES = ["tiny/net:pool", "baseline/pixels"]


def tiny(path):
    spec = importlib.util.spec_from_file_location("tiny_for_combination", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_combination_is_one_model_per_dataset_whose_plan_hash_covers_its_members(
    tiny_plugin_path,
):
    registry = Registry(plugin_files=[tiny_plugin_path])
    metric = Stacking(spaces=SPACES)
    made = plan(["baseline/pixels"], ["tiny/data"], [metric, "rsa"], registry=registry)
    identifier = combination_identifier([Space("tiny/net", "pool"), Space("baseline/pixels")])
    stacked = [c for c in made.combos if c.combo.metric == "stacking"]
    assert [c.model for c in stacked] == [identifier]  # not paired with baseline/pixels
    assert [c.model for c in made.combos if c.combo.metric == "rsa"] == ["baseline/pixels"]
    dataset = registry.get("dataset", "tiny/data").load()
    members = {m: registry.get("model", m) for m in ("tiny/net", "baseline/pixels")}
    code = hashlib.sha256(
        "\n".join(f"{m}={code_version(members[m].factory)}" for m in sorted(members)).encode()
    ).hexdigest()
    content = {"spaces": sorted(SPACES),
               "members": {m: content_options({}) for m in ("tiny/net", "baseline/pixels")}}  # fmt: skip
    expected = plan_hash(identifier, content, "tiny/data", dataset.stimuli.content_hash(),
                         dataset_hash(dataset), metric.config_hash, ExtractionConfig(), code=code)  # fmt: skip
    assert stacked[0].combo.plan_hash == expected
    assert made.config["combinations"] == {identifier: sorted(SPACES)}
    again = plan([], ["tiny/data"], [Stacking(spaces=SPACES[::-1])], registry=registry)
    assert again.hashes == {stacked[0].key: expected}  # the same spaces in another order


def test_a_member_s_weights_are_in_the_plan_hash(tiny_plugin_path):
    """Members built in the caller's code: other weights under the same identifier are the
    same combination, another plan (as for one model)."""
    module = tiny(tiny_plugin_path)
    registry = Registry(plugin_files=[tiny_plugin_path])
    model = module.build_model()
    changed = module.build_model()
    with torch.no_grad():
        changed.module.fc.bias.add_(1.0)
    first = plan([model], ["tiny/data"], [Stacking(spaces=SPACES)], registry=registry)
    second = plan([changed], ["tiny/data"], [Stacking(spaces=SPACES)], registry=registry)
    assert list(first.hashes) == list(second.hashes) and first.hashes != second.hashes
    assert first.in_process_only  # an object member cannot go to Dask workers
    members = {m.identifier: m for m in first.combinations[first.combos[0].model].members}
    assert isinstance(members["tiny/net"], ModelSource) and members["tiny/net"].model is model


@pytest.mark.parametrize(
    ("spaces", "message"),
    [
        (["tiny/nett:pool", "baseline/pixels"], r"names no known model.*Closest known models: "),
        (["tiny/net:poool", "baseline/pixels"], r"'tiny/net' has no layer 'poool'\. Closest: pool"),
        (["tiny/net:flatten", "baseline/pixels"], r"repeats the activations of layer 'pool'"),
        (["tiny/net:block*", "baseline/pixels"], r"matches none of the 4 layers"),
    ],
)
def test_a_bad_space_is_an_error_before_any_run(tiny_plugin_path, spaces, message):
    registry = Registry(plugin_files=[tiny_plugin_path])
    store = MemoryStore()
    with pytest.raises(InputError, match=message):
        made = plan([], ["tiny/data"], [VariancePartitioning(spaces=spaces)], registry=registry)
        execute(made, store, progress=False)
    assert store.runs == {}


def test_a_weights_file_may_name_a_member_model(tiny_plugin_path, tmp_path):
    """--weights for a model that is only in a space is an option of the run (checked like
    the run's models': a model without trained weights is refused)."""
    registry = Registry(plugin_files=[tiny_plugin_path])
    with pytest.raises(InputError, match="'tiny/net' takes no a weights file"):
        plan([], ["tiny/data"], [Stacking(spaces=SPACES)], registry=registry,
             model_options={"tiny/net": {"weights": str(tmp_path / "w.pt")}})  # fmt: skip
    with pytest.raises(InputError, match="not among the models of this run"):
        plan([], ["tiny/data"], ["stacking"], registry=registry,
             model_options={"tiny/net": {"weights": str(tmp_path / "w.pt")}})  # fmt: skip


def test_one_configuration_with_two_sets_of_spaces_in_one_run_is_refused(tiny_plugin_path):
    with pytest.raises(InputError, match="differ only in their feature spaces"):
        plan([], ["tiny/data"], [Stacking(spaces=SPACES), Stacking()],
             registry=Registry(plugin_files=[tiny_plugin_path]))  # fmt: skip


def test_variance_partitioning_without_spaces_is_skipped_with_the_reason(tiny_plugin_path):
    made = plan(["tiny/net"], ["tiny/data"], ["variance-partitioning"],
                registry=Registry(plugin_files=[tiny_plugin_path]))  # fmt: skip
    assert made.combos == [] and "--spaces" in made.skipped[0]


def test_a_combination_runs_once_is_stored_with_its_spaces_and_resumes(tiny_plugin_path):
    registry = Registry(plugin_files=[tiny_plugin_path])
    store = MemoryStore()
    metrics = [Stacking(spaces=SPACES), VariancePartitioning(spaces=SPACES)]
    made = plan([], ["tiny/data"], metrics, registry=registry)
    summary = execute(made, store, progress=False, raise_errors=True)
    assert summary.status == "ok" and summary.n_scored == 2
    (identifier,) = made.combinations
    record = store.models[identifier]
    assert record["metadata"].source == "stack"
    assert record["metadata"].extra["spaces"] == sorted(SPACES)  # stored sorted
    assert set(record["metadata"].extra["members"]) == {"tiny/net", "baseline/pixels"}
    stacked = store.stored_scores((identifier, "tiny/data", "stacking", metrics[0].config_hash))
    weights = [r for r in stacked if r.selection == "weight"]
    assert {r.layer for r in weights} == set(SPACES)
    for region in ("a", "b"):  # per neuroid, a convex combination
        mine = [r.per_neuroid for r in weights if r.region == region]
        np.testing.assert_allclose(np.sum(mine, axis=0), 1.0, atol=1e-5)
    parts = store.stored_scores((identifier, "tiny/data", "variance-partitioning",
                                 metrics[1].config_hash))  # fmt: skip
    assert {r.selection for r in parts} == {"joint", "alone", "unique", "shared"}
    again = execute(plan([], ["tiny/data"], metrics, registry=registry), store, progress=False)
    assert again.n_stored == 2 and again.n_scored == 0  # resumed: nothing computed again


def test_the_python_api_scores_spaces(tiny_plugin_path):
    brainrank.get_registry([tiny_plugin_path])
    frame = brainrank.score(None, "tiny/data", "variance-partitioning", spaces=SPACES)
    assert set(frame["model"]) == {combination_identifier(
        [Space("tiny/net", "pool"), Space("baseline/pixels")])}  # fmt: skip
    assert "joint" in set(frame["selection"])
    with pytest.raises(InputError, match="metric given by identifier"):
        brainrank.score(None, "tiny/data", Stacking(spaces=SPACES), spaces=SPACES)


@pytest.mark.slow
def test_a_combination_on_two_dask_workers_stores_the_serial_scores(tiny_plugin_path, tmp_path):
    """The combination's job goes to a Dask worker like a model's: it rebuilds the members
    there and stores what a serial run stores (float32 tolerance: other thread counts)."""
    pytest.importorskip("distributed")
    from brainrank.grid import run_grid
    from brainrank.leaderboard import open_store
    from brainrank.leaderboard.compare import compare

    params = {"stacking": {"spaces": SPACES}, "variance-partitioning": {"spaces": SPACES}}
    stores = []
    for name, workers in (("serial", 1), ("dask", 2)):
        store = open_store(str(tmp_path / f"{name}.db"))
        summary = run_grid(registry=Registry(plugin_files=[tiny_plugin_path]), store=store,
                           models=[], datasets=["tiny/data"],
                           metrics=["stacking", "variance-partitioning"], metric_params=params,
                           workers=workers, progress=False)  # fmt: skip
        assert summary.status == "ok" and summary.n_scored == 2, summary.failures
        stores.append(store)
    differences = compare(stores[0], stores[1], tolerance=1e-5, per_neuroid=True)
    assert differences.same and differences.n_common > 0, differences
