"""A run whose features are cached does not build the model (issue 12, item 3), and
whatever changes the model's weights (a seed option, the content of a weights file, the
plugin's code) builds it again and recomputes its features."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from brainrank.core.cache import FeatureCache
from brainrank.core.registry import Registry
from brainrank.grid import run_grid
from brainrank.leaderboard import open_store

PLUGIN = Path(__file__).parents[1] / "fixtures" / "counted_builds.py"


@pytest.fixture
def env(tmp_path, monkeypatch, tiny_plugin_path):
    log = tmp_path / "builds.log"
    monkeypatch.setenv("BRAINRANK_TEST_BUILD_LOG", str(log))
    plugin = tmp_path / "counted_builds.py"  # a copy, so a test may edit it
    shutil.copy(PLUGIN, plugin)

    class Env:
        runs = 0
        cache = FeatureCache(tmp_path / "cache")

        def builds(self) -> list[str]:
            return log.read_text().split() if log.exists() else []

        def run(self, model: str, **options):
            """Scores ``model`` into a new leaderboard (nothing stored yet) with the shared
            feature cache; returns (builds during the run, best-layer scores)."""
            self.runs += 1
            before = len(self.builds())
            store = open_store(str(tmp_path / f"lb{self.runs}.db"))
            summary = run_grid(
                registry=Registry(plugin_files=[plugin, tiny_plugin_path]),
                store=store,
                models=[model],
                datasets=["tiny/data"],
                metrics=["rsa"],
                cache=self.cache,
                model_options={model: options} if options else None,
                progress=False,
            )
            assert summary.n_scored == 1 and not summary.failures, summary
            frame = store.scores_frame(selection="max").sort_values(["subject", "region"])
            return len(self.builds()) - before, frame["score"].to_numpy()

    out = Env()
    out.plugin = plugin
    return out


def _weights(path: Path, seed: int) -> None:
    import torch

    from tests.fixtures.counted_builds import _module

    torch.manual_seed(seed)
    torch.save(_module().state_dict(), path)


def test_cached_features_of_a_seeded_model_are_read_without_building_it(env):
    built, first = env.run("counted/random")
    assert built == 1
    built, again = env.run("counted/random")
    assert built == 0  # identity remembered, features cached: the factory is not called
    np.testing.assert_array_equal(again, first)
    built, other_seed = env.run("counted/random", seed=1)
    assert built == 1 and not np.array_equal(other_seed, first)
    built, _ = env.run("counted/random", seed=1)
    assert built == 0


def test_an_overwritten_weights_file_builds_the_model_again(env, tmp_path):
    weights = tmp_path / "net.pt"
    _weights(weights, 1)
    built, first = env.run("counted/file", weights=str(weights))
    assert built == 1
    built, again = env.run("counted/file", weights=str(weights))
    assert built == 0
    np.testing.assert_array_equal(again, first)
    _weights(weights, 2)  # same path, other content
    built, changed = env.run("counted/file", weights=str(weights))
    assert built == 1 and not np.array_equal(changed, first)


def test_implicit_trained_weights_are_always_built(env):
    assert env.run("counted/implicit")[0] == 1
    assert env.run("counted/implicit")[0] == 1  # weights from no named file: hashed each time


def test_an_edited_plugin_builds_the_model_again(env):
    built, first = env.run("counted/random")
    assert built == 1
    text = env.plugin.read_text()
    env.plugin.write_text(text.replace("with seeded(int(seed)):", "with seeded(int(seed) + 5):"))
    built, edited = env.run("counted/random")
    assert built == 1 and not np.array_equal(edited, first)


def test_a_build_that_differs_from_its_record_recomputes(env, tmp_path):
    """A record whose weights do not match what a build gives (a build that is not
    reproducible) is dropped: the features are those of the model actually built."""
    built, first = env.run("counted/random")
    records = list((env.cache.root / "models").rglob("*.json"))
    assert len(records) == 1
    for entry in env.cache.root.iterdir():  # drop the features, keep the record
        if entry.name != "models":
            shutil.rmtree(entry)
    import json

    record = json.loads(records[0].read_text())
    record["weights"] = "0" * 64
    records[0].write_text(json.dumps(record))
    built, again = env.run("counted/random")
    assert built == 1
    np.testing.assert_array_equal(again, first)
    assert not records[0].exists()  # forgotten


def test_a_record_from_before_attention_layers_builds_the_model_again(env):
    """A build record written before records said whether the network has attention layers
    is not trusted: the model is built once more and the record rewritten."""
    import json

    assert env.run("counted/random")[0] == 1
    [record] = list((env.cache.root / "models").rglob("*.json"))
    data = json.loads(record.read_text())
    assert data["attention"] is False
    del data["attention"]
    record.write_text(json.dumps(data))
    assert env.run("counted/random")[0] == 1
    assert "attention" in json.loads(record.read_text())
    assert env.run("counted/random")[0] == 0
