"""``--layers`` and ``--aliases`` on ``brainrank run`` and ``brainrank extract``, as a user
types them."""

from __future__ import annotations

import json

from click.testing import CliRunner

from brainrank.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def stored_layers(db) -> set[str]:
    rows = json.loads(invoke("leaderboard", "--db", str(db), "--format", "json",
                             "--selection", "layer").output)  # fmt: skip
    assert rows
    return {r["layer"] for r in rows}


def test_run_with_layer_choices(tmp_path, tiny_plugin_path, brainrank_home):
    db = tmp_path / "lb.db"
    base = ["run", "--plugin", str(tiny_plugin_path), "--models", "tiny/net", "--datasets",
            "tiny/data", "--metrics", "rsa", "--db", str(db), "--quiet"]  # fmt: skip
    assert invoke(*base).exit_code == 0
    every = stored_layers(db)
    assert {"conv", "relu", "pool", "fc"} <= every
    result = invoke(*base, "--layers", "conv,fc")
    assert result.exit_code == 0, result.output
    assert "already stored" not in result.stderr  # another configuration: scored again
    assert stored_layers(db) == {"conv", "fc"}  # and its rows replace the earlier ones
    # the tiny net is a plain sequence: its blocks are its activation, pooling and output
    assert invoke(*base, "--layers", "blocks").exit_code == 0
    assert stored_layers(db) == {"relu", "pool", "output"}
    result = CliRunner().invoke(main, [*base, "--layers", "conv,nope*"])
    assert result.exit_code != 0 and "['nope*'] match no layer" in result.output
    result = CliRunner().invoke(main, [*base, "--layers", " , "])
    assert result.exit_code == 1 and "selects nothing" in result.output
    assert "Traceback" not in result.output


def test_extract_with_a_pattern(tiny_plugin_path, brainrank_home):
    result = invoke("extract", "tiny/net", "--plugin", str(tiny_plugin_path), "--dataset",
                    "tiny/data", "--metrics", "rsa", "--layers", "pool", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "tiny/data: 1 layers" in result.output


def test_the_python_api_takes_layers_and_plans_as_the_command_line(tmp_path, tiny_plugin_path,
                                                                   brainrank_home):  # fmt: skip
    """``brainrank.score(..., layers=...)`` scores those layers, under the plan hash the
    command line makes for the same choice."""
    import brainrank
    from brainrank.leaderboard import open_store

    grid_db, api_db = str(tmp_path / "grid.db"), str(tmp_path / "api.db")
    result = invoke("run", "--quiet", "--plugin", str(tiny_plugin_path), "--db", grid_db,
                    "--models", "tiny/net", "--datasets", "tiny/data", "--metrics", "rsa",
                    "--layers", "fc,conv")  # fmt: skip
    assert result.exit_code == 0, result.output
    brainrank.get_registry([tiny_plugin_path])
    frame = brainrank.score("tiny/net", "tiny/data", "rsa", db=api_db, layers="conv,fc")
    assert set(frame.loc[frame["selection"] == "layer", "layer"]) == {"conv", "fc"}
    plans = [open_store(db, create=False).completions_frame()["plan_hash"].tolist()
             for db in (grid_db, api_db)]  # fmt: skip
    assert plans[0] == plans[1] and len(plans[0]) == 1
