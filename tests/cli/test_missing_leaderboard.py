"""Read commands never create a leaderboard (issue 13, item 12): a mistyped ``--db`` path is
an error naming the path, while ``run`` and the Python API still create one.

docs/reliability.md lists it with the other faults of issue 13.
"""

from __future__ import annotations

import pytest

READ_COMMANDS = [
    ["leaderboard"],
    ["query"],
    ["show", "some/model"],
    ["failures"],
    ["runs"],
    ["report", "OUT.html"],
    ["serve", "--port", "0"],
    ["metrics", "--stored"],
]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_a_read_command_refuses_a_missing_sqlite_file(tmp_path, command, monkeypatch):
    """Was: an empty leaderboard created at the mistyped path and "(nothing to show)"."""
    from click.testing import CliRunner

    from brainrank.cli import main
    from brainrank.leaderboard import server

    def no_serving(*args, **kwargs):  # the old code went on to serve the empty leaderboard
        raise RuntimeError("serve opened the leaderboard and would have served it")

    monkeypatch.setattr(server, "make_server", no_serving)

    missing = tmp_path / "typo" / "leaderbaord.db"
    args = [a.replace("OUT.html", str(tmp_path / "r.html")) for a in command]
    result = CliRunner().invoke(main, [*args, "--db", str(missing)])
    assert result.exit_code != 0, result.output
    assert str(missing) in result.output and "does not exist" in result.output
    assert f"brainrank run --db {missing}" in result.output
    assert "nothing to show" not in result.output
    assert not missing.exists() and not missing.parent.exists()


def test_run_still_creates_the_leaderboard(tmp_path):
    from brainrank.leaderboard import open_store

    path = tmp_path / "new" / "lb.db"
    open_store(str(path)).close()  # the default (run, the Python API) creates it
    assert path.is_file()
    open_store(str(path), create=False).close()  # and then read commands open it
