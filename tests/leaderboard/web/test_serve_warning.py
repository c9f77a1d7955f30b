"""`brainrank serve` warns when it listens beyond this machine."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.leaderboard import open_store


class _StubServer:
    server_port = 8000

    def serve_forever(self):
        raise KeyboardInterrupt

    def server_close(self):
        pass


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_serving_beyond_localhost_is_warned(tmp_path, monkeypatch, host, warned):
    import brainrank.leaderboard.server as server

    monkeypatch.setattr(server, "make_server", lambda store, h, p: _StubServer())
    db = tmp_path / "lb.db"
    open_store(str(db))
    result = CliRunner().invoke(main, ["serve", "--db", str(db), "--host", host])
    assert result.exit_code == 0, result.output
    assert ("reachable from other machines" in result.stderr) is warned
