"""The command line, as a user types it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from brainrank.cli import main


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_list_commands_in_table_and_json():
    result = invoke("models", "--format", "json")
    assert result.exit_code == 0
    models = json.loads(result.output)
    ids = {m["identifier"] for m in models}
    assert {
        "torchvision/alexnet",
        "torchvision/alexnet:random",
        "timm/resnet18:random",
        "baseline/pixels",
    } <= ids
    alexnet = next(m for m in models if m["identifier"] == "torchvision/alexnet")
    assert (
        alexnet["family"] == "convnet"
        and alexnet["trained"] is True
        and alexnet["plugin"] == "torchvision"
    )
    result = invoke("models", "baseline/*")
    assert "baseline/gabor" in result.output and "torchvision" not in result.output
    assert "simulated" in invoke("datasets").output
    metrics = json.loads(invoke("metrics", "--format", "json").output)
    assert {m["identifier"] for m in metrics} >= {"srp-ridge", "rsa"}


def test_run_then_leaderboard_with_a_plugin_file(tmp_path, tiny_plugin_path):
    db = tmp_path / "lb.db"
    result = invoke("run", "--plugin", str(tiny_plugin_path), "--models", "tiny/net,baseline/pixels",
                    "--datasets", "tiny/data", "--db", str(db), "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"  leaderboard: {db}" in result.stderr and "run 1 ok in " in result.stderr
    assert "tiny/net" in result.stdout and "tiny/data/srp-ridge" in result.stdout
    rows = json.loads(invoke("leaderboard", "--db", str(db), "--format", "json").output)
    assert {"model", "dataset", "metric", "subject", "region", "layer", "score", "best"} <= set(
        rows[0]
    )
    assert {r["model"] for r in rows} == {"tiny/net", "baseline/pixels"}
    best = [r for r in rows if r["best"]]
    # summary rows: the best layer ("max"), the held-out layer choice, stacked models
    assert best and {"max", "heldout"} <= {r["selection"] for r in best} <= {
        "max",
        "heldout",
        "stacked",
    }
    # the rest: per-layer rows and stacking's per-neuroid weights of every layer
    assert len(rows) == len(best) + sum(r["selection"] in ("layer", "weight") for r in rows)
    assert any(r["selection"] == "weight" for r in rows)
    # the same grid again: the same rows, not twice as many
    invoke("run", "--plugin", str(tiny_plugin_path), "--models", "tiny/net,baseline/pixels",
           "--datasets", "tiny/data", "--db", str(db), "--quiet")  # fmt: skip
    again = json.loads(invoke("leaderboard", "--db", str(db), "--format", "json").output)
    assert len(again) == len(rows)
    csv = invoke(
        "leaderboard", "--db", str(db), "--format", "csv", "--model", "tiny/*", "--selection", "max"
    )
    lines = csv.output.strip().splitlines()
    n_metrics = len({r["metric"] for r in rows})
    assert lines[0].startswith("model,dataset,metric") and len(lines) == 1 + 2 * n_metrics
    table = invoke("leaderboard", "--db", str(db))
    assert table.output.splitlines()[1].split()[:4] == ["rank", "rank_low", "rank_high", "model"]


def test_user_errors_are_one_clear_line(tmp_path):
    result = CliRunner().invoke(
        main, ["run", "--models", "torchvision/alexnett", "--db", str(tmp_path / "x.db")]
    )
    assert result.exit_code == 1
    assert (
        "unknown model 'torchvision/alexnett'" in result.output
        and "torchvision/alexnet" in result.output
    )
    assert "Traceback" not in result.output
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(
        main, ["run", "--db", str(blocker / "lb.db"), "--models", "baseline/pixels"]
    )
    assert result.exit_code == 1 and "choose a writable path with --db" in result.output.lower()
    result = CliRunner().invoke(
        main, ["run", "--param", "srp-ridge=3", "--db", str(tmp_path / "y.db")]
    )
    assert result.exit_code == 1 and "ID.KEY=VALUE" in result.output


def test_console_script_and_module_entry():
    exe = shutil.which("brainrank") or str(sys.prefix + "/bin/brainrank")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert "brainrank" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "brainrank", "metrics"], capture_output=True, text=True, check=True
    )
    assert "srp-ridge" in out.stdout


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_empty_leaderboard(tmp_path, fmt):
    from brainrank.leaderboard import open_store

    open_store(str(tmp_path / "empty.db"))  # a leaderboard with nothing in it
    result = invoke("leaderboard", "--db", str(tmp_path / "empty.db"), "--format", fmt)
    assert result.exit_code == 0
    if fmt == "json":
        assert json.loads(result.stdout) == []
    else:
        assert "nothing to" in result.stdout and "Traceback" not in result.output
    # a mistyped path is an error, not another empty leaderboard
    missing = invoke("leaderboard", "--db", str(tmp_path / "emty.db"), "--format", fmt)
    assert missing.exit_code == 1 and "no leaderboard at" in missing.output
    assert not (tmp_path / "emty.db").exists()


@pytest.mark.parametrize("budget", ["inf", "nan", "-1", "0"])
def test_a_memory_budget_that_is_not_a_positive_finite_number_is_a_usage_error(budget):
    """Issue 20: --memory-budget inf crashed with an OverflowError traceback."""
    result = CliRunner().invoke(main, ["run", "--memory-budget", budget, "--models", "x"])
    assert result.exit_code == 2, result.output
    assert "--memory-budget" in result.output and "Traceback" not in result.output


def test_a_memory_budget_of_inf_in_the_config_file_is_refused(brainrank_home):
    from brainrank.core.errors import InputError
    from brainrank.settings import settings

    (brainrank_home / "config.toml").write_text("memory_budget_gb = inf\n")
    with pytest.raises(InputError, match="positive, finite"):
        settings()


def test_dataset_listing_prints_counts_as_integers():
    """Issue 20: `brainrank datasets` printed n_stimuli as 118.000."""
    output = invoke("datasets").output
    assert ".000" not in output
    listed = {line.split()[0]: line.split() for line in output.splitlines()[1:] if line.strip()}
    assert "simulated" in listed and listed["simulated"][-1] == "200"
