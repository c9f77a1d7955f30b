"""``brainrank run --spaces``: feature spaces of several models scored as one leaderboard model
``stack/<hash>``, and the mistakes refused before any run."""

from __future__ import annotations

import json

from click.testing import CliRunner

from brainrank.cli import main
from brainrank.core.spaces import Space, combination_identifier


def run(tiny_plugin_path, db, *args):
    return CliRunner().invoke(
        main, ["run", "--plugin", str(tiny_plugin_path), "--datasets", "tiny/data", "--db",
               str(db), "--quiet", *args], catch_exceptions=False)  # fmt: skip


def test_spaces_go_to_every_metric_that_takes_them(tiny_plugin_path, tmp_path):
    db = tmp_path / "lb.db"
    result = run(tiny_plugin_path, db, "--models", "tiny/net", "--metrics",
                 "stacking,variance-partitioning,rsa", "--spaces", "tiny/net:pool,baseline/pixels")  # fmt: skip
    assert result.exit_code == 0, result.output
    identifier = combination_identifier([Space("tiny/net", "pool"), Space("baseline/pixels")])
    assert f"combination {identifier}: baseline/pixels, tiny/net:pool" in result.stderr
    rows = json.loads(CliRunner().invoke(main, ["query", "--db", str(db), "--format", "json"],
                                         catch_exceptions=False).output)  # fmt: skip
    by_model = {}
    for row in rows:
        by_model.setdefault(row["model"], set()).add(row["metric"])
    # rsa scores tiny/net; stacking and variance partitioning score the combination only
    assert by_model == {"tiny/net": {"rsa"},
                        identifier: {"stacking", "variance-partitioning"}}  # fmt: skip


def test_spaces_without_a_metric_that_takes_them_or_given_twice_are_refused(
    tiny_plugin_path, tmp_path
):
    db = tmp_path / "lb.db"
    result = run(tiny_plugin_path, db, "--models", "tiny/net", "--metrics", "rsa", "--spaces",
                 "tiny/net:pool,baseline/pixels")  # fmt: skip
    assert result.exit_code == 1 and "metrics that take feature spaces" in result.output
    result = run(tiny_plugin_path, db, "--models", "tiny/net", "--metrics", "stacking",
                 "--spaces", "tiny/net:pool,baseline/pixels",
                 "--param", 'stacking.spaces=["tiny/net"]')  # fmt: skip
    assert result.exit_code == 1 and "given twice" in result.output
    result = run(tiny_plugin_path, db, "--models", "tiny/net", "--metrics", "stacking",
                 "--spaces", "tiny/net:pool,baseline/pixelz")  # fmt: skip
    assert result.exit_code == 1 and "Closest known models: baseline/pixels" in result.output
    assert not db.exists()  # refused before the leaderboard was opened: no run recorded
