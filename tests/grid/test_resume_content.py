"""Resume keyed on content, parameters checked before work, failures never stored as scores,
and an exit status that tells the truth (issue 13: cases 1, 2, 3, 6, 7, 13, 14)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.cli.run import EXIT_INCOMPLETE
from brainrank.core.errors import InputError
from brainrank.core.registry import Registry
from brainrank.grid import run_grid
from brainrank.leaderboard import open_store

# a model that loads its weights from a file, and a metric whose result can be made empty
PLUGIN = textwrap.dedent(
    """
    from collections import OrderedDict
    import numpy as np
    from brainrank.plugin import (MetricMetadata, MetricSpec, Model, ModelMetadata, ModelSpec,
                                  FeatureRequest, Metric, Score, hookimpl)

    META = ModelMetadata(source="w", architecture="tiny", family="convnet", trained=True)
    VERSION = 1

    def build(weights=None):
        import torch
        from torch import nn
        torch.manual_seed(0)
        module = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 4, 3), relu=nn.ReLU(),
                                           pool=nn.AdaptiveAvgPool2d(2))).eval()
        if weights is not None:
            module.load_state_dict(torch.load(weights, weights_only=True))
        prep = lambda im: torch.from_numpy(np.array(im, dtype=np.float32)).permute(2, 0, 1) / 255
        return Model("w/net", module, prep, "uint8/255", META)

    class Odd(Metric):
        identifier = "odd"
        needs = "responses"
        def __init__(self, result="empty"):
            super().__init__(result=result)
        def feature_request(self, dataset):
            return FeatureRequest(frozenset({4}))
        def score(self, features, dataset):
            kind = self.parameters["result"]
            if kind == "empty":
                return []
            if kind == "nan":
                return [Score("s1", "a", layer.name, float("nan")) for layer in features]
            if kind == "array":
                return [Score("s1", "a", layer.name, np.zeros(3)) for layer in features]
            return {"not": "a list"}

    @hookimpl
    def brainrank_models():
        return [ModelSpec("w/net", build, META)]

    @hookimpl
    def brainrank_metrics():
        return [MetricSpec("odd", Odd, MetricMetadata("a metric that misbehaves"))]
    """
)


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "wplugin.py"
    path.write_text(PLUGIN)
    return path


def _weights(path, seed: int) -> None:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    conv = nn.Conv2d(3, 4, 3)
    torch.save({"conv.weight": conv.weight.detach(), "conv.bias": conv.bias.detach()}, path)


def run(*args, plugin_path=None):
    extra = ["--plugin", str(plugin_path)] if plugin_path else []
    return CliRunner().invoke(main, [*extra, "run", "--quiet", *args])


def test_a_weights_file_overwritten_in_place_is_scored_again(tmp_path, plugin, tiny_plugin_path):
    weights, db = tmp_path / "net.pt", tmp_path / "lb.db"
    _weights(weights, 1)
    args = ["--models", "w/net", "--datasets", "tiny/data", "--metrics", "rsa",
            "--weights", f"w/net={weights}", "--db", str(db)]  # fmt: skip
    first = CliRunner().invoke(main, ["--plugin", str(plugin), "--plugin", str(tiny_plugin_path),
                                      "run", "--quiet", *args])  # fmt: skip
    assert first.exit_code == 0, first.output
    before = open_store(str(db)).scores_frame(selection="max")["score"].to_numpy()
    again = CliRunner().invoke(main, ["--plugin", str(plugin), "--plugin", str(tiny_plugin_path),
                                      "run", "--quiet", *args])  # fmt: skip
    assert "already stored" in again.stderr  # unchanged: nothing to do
    _weights(weights, 2)  # same path, other content
    third = CliRunner().invoke(main, ["--plugin", str(plugin), "--plugin", str(tiny_plugin_path),
                                      "run", "--quiet", *args])  # fmt: skip
    assert third.exit_code == 0 and "already stored" not in third.stderr, third.stderr
    store = open_store(str(db))
    after = store.scores_frame(selection="max")["score"].to_numpy()
    assert len(after) == len(before) and not (after == before).all()
    assert store.runs_frame()["n_scores"].tolist()[-1] > 0


def test_an_edited_plugin_is_scored_again(tmp_path, plugin, tiny_plugin_path):
    store = open_store(str(tmp_path / "lb.db"))

    def grid():
        registry = Registry(plugin_files=[plugin, tiny_plugin_path])
        return run_grid(registry=registry, store=store, models=["w/net"], datasets=["tiny/data"],
                        metrics=["rsa"], progress=False)  # fmt: skip

    assert grid().n_scored == 1
    assert grid().n_stored == 1
    plugin.write_text(plugin.read_text().replace("VERSION = 1", "VERSION = 2"))
    third = grid()
    assert (third.n_scored, third.n_stored) == (1, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metrics", "rsa", "--param", "srp-ridge.alphas=1"], "not among the metrics"),
        (["--metrics", "srp-ridge", "--param", "srpridge.alphas=1"], "not among the metrics"),
        (["--metrics", "srp-ridge", "--param", "srp-ridge.alfas=1"], "does not take"),
        (["--metrics", "srp-ridge", "--param", "srp-ridge.alphas=[1,"], "not valid JSON"),
        (["--metrics", "srp-ridge", "--param", "srp-ridge.alphas=abc"], "srp-ridge"),
        (["--models", "baseline/pixels", "--weights", "baseline/pixels=/x.pt"], "takes no"),
        (
            [
                "--models",
                "torchvision/alexnet:random",
                "--weights",
                "torchvision/alexnet:random=/x.pt",
            ],
            "takes no",
        ),
        (
            ["--models", "torchvision/alexnet", "--weights", "torchvision/alexnet=/no/file.pt"],
            "does not exist",
        ),
    ],
)
def test_bad_options_are_refused_before_any_work(tmp_path, args, message):
    db = tmp_path / "lb.db"
    defaults = ["--models", "baseline/pixels"] if "--models" not in args else []
    result = run(*defaults, "--datasets", "simulated", *args, "--db", str(db))
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    if db.exists():  # nothing was started
        assert len(open_store(str(db)).runs_frame()) == 0


@pytest.mark.parametrize("option", ["--memory-budget", "--batch-size"])
def test_zero_is_refused_not_replaced_by_the_default(tmp_path, option):
    result = run("--models", "baseline/pixels", option, "0", "--db", str(tmp_path / "lb.db"))
    assert result.exit_code == 2 and option in result.output


@pytest.mark.parametrize("kind", ["empty", "nan", "array", "dict"])
def test_unusable_results_are_failures_retried_next_time(tmp_path, plugin, tiny_plugin_path, kind):
    db = tmp_path / "lb.db"
    args = ["--models", "tiny/net", "--datasets", "tiny/data", "--metrics", "odd",
            "--param", f'odd.result="{kind}"', "--db", str(db)]  # fmt: skip
    invoke = ["--plugin", str(plugin), "--plugin", str(tiny_plugin_path), "run", "--quiet", *args]
    result = CliRunner().invoke(main, invoke)
    assert result.exit_code == EXIT_INCOMPLETE, result.output
    store = open_store(str(db))
    assert len(store.scores_frame()) == 0 and len(store.completions_frame()) == 0
    failures = store.failures_frame()
    assert list(failures["stage"]) == ["score"] and "odd" in failures["message"].iloc[0]
    assert store.runs_frame()["status"].tolist() == ["partial"]
    again = CliRunner().invoke(main, invoke)  # not skipped as "already stored"
    assert again.exit_code == EXIT_INCOMPLETE and "already stored" not in again.stderr
    assert len(open_store(str(db)).failures_frame()) == 2


def test_exit_status_is_zero_only_when_everything_is_stored(tmp_path, tiny_plugin_path):
    db = tmp_path / "lb.db"
    ok = CliRunner().invoke(main, ["--plugin", str(tiny_plugin_path), "run", "--quiet", "--models",
                                   "tiny/net", "--datasets", "tiny/data", "--metrics", "rsa",
                                   "--db", str(db)])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    missing = CliRunner().invoke(main, ["--plugin", str(tiny_plugin_path), "run", "--quiet",
                                        "--models", "tiny/net,cifar/resnet20", "--datasets",
                                        "tiny/data", "--metrics", "rsa", "--db", str(db)])  # fmt: skip
    assert missing.exit_code == EXIT_INCOMPLETE
    assert "incomplete" in missing.stderr


def test_runs_of_dead_processes_are_marked_killed_with_their_rows(tmp_path, tiny_plugin_path):
    store = open_store(str(tmp_path / "lb.db"))
    run_id = store.start_run({"models": []})
    registry = Registry(plugin_files=[tiny_plugin_path])
    # rows committed by a run that then died: the grid of another store object writes them
    summary = run_grid(registry=registry, store=store, models=["tiny/net"],
                       datasets=["tiny/data"], metrics=["rsa"], progress=False)  # fmt: skip
    with store.engine.begin() as conn:  # pretend run_id owned those rows and its process died
        from sqlalchemy import update

        from brainrank.leaderboard.schema import RunRow, ScoreRow

        conn.execute(update(ScoreRow).values(run_id=run_id))
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        config = {"models": [], "pid": int(dead.stdout)}
        conn.execute(update(RunRow).where(RunRow.id == run_id).values(config=config))
    assert summary.n_scores > 0
    store.start_run({"models": []})
    runs = store.runs_frame().set_index("id")
    assert runs.loc[run_id, "status"] == "killed"
    assert runs.loc[run_id, "n_scores"] == summary.n_scores


def test_an_interrupted_run_counts_the_rows_it_committed(tmp_path, tiny_plugin_path):
    store = open_store(str(tmp_path / "lb.db"))
    registry = Registry(plugin_files=[tiny_plugin_path])
    summary = run_grid(registry=registry, store=store, models=["tiny/net"],
                       datasets=["tiny/data"], metrics=["rsa"], progress=False)  # fmt: skip
    store.finish_run(summary.run_id, "interrupted", 0, 0)  # the caller heard of no job's end
    assert store.runs_frame().set_index("id").loc[summary.run_id, "n_scores"] == summary.n_scores


def test_check_metric_params_names_the_parameters():
    from brainrank.grid.plan import check_metric_params

    with pytest.raises(InputError, match="alphas"):
        check_metric_params(Registry(), ["srp-ridge"], {"srp-ridge": {"alfas": [1.0]}})


EXITING = textwrap.dedent(
    """
    import sys
    from brainrank.plugin import ModelMetadata, ModelSpec, hookimpl

    def build():
        sys.exit(3)

    @hookimpl
    def brainrank_models():
        return [ModelSpec("exit/net", build, ModelMetadata(source="exit", architecture="x"))]
    """
)


def test_a_plugin_calling_sys_exit_is_a_recorded_failure_not_the_end(tmp_path, tiny_plugin_path):
    plugin = tmp_path / "exiting.py"
    plugin.write_text(EXITING)
    db = tmp_path / "lb.db"
    result = CliRunner().invoke(main, ["--plugin", str(plugin), "--plugin", str(tiny_plugin_path),
                                       "run", "--quiet", "--models", "exit/net,tiny/net",
                                       "--datasets", "tiny/data", "--metrics", "rsa",
                                       "--db", str(db)])  # fmt: skip
    assert result.exit_code == EXIT_INCOMPLETE, result.output
    assert "sys.exit(3)" in result.stderr
    store = open_store(str(db))
    assert set(store.scores_frame()["model"]) == {"tiny/net"}  # the rest went on
    assert "sys.exit(3)" in store.failures_frame()["message"].iloc[0]
