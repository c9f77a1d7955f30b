"""The leaderboard page's script (static/app.js) run in Node with a minimal DOM against a live
`brainrank serve`: where no browser is installed (test_browser.py skips), this still checks
that the page shows the shared ranking: its columns, the data groups, the notes."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from importlib import resources
from pathlib import Path

import pytest
import synthetic_leaderboard

from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import DatasetMetadata, DatasetSpec
from brainrank.leaderboard import open_store
from brainrank.leaderboard.server import make_server

NODE = shutil.which("node")
SCRIPT = Path(__file__).with_name("app_in_node.js")
APP = resources.files("brainrank.leaderboard").joinpath("static", "app.js")


class Ridge(Metric):
    identifier = "srp-ridge"


@pytest.fixture
def served(tmp_path):
    path = tmp_path / "lb.db"
    synthetic_leaderboard.build(path)
    store = open_store(str(path))
    meta = DatasetMetadata(species="simulated", modality="test")
    store.register_dataset(DatasetSpec("simulated", lambda **_: None, meta, plugin="test"))
    for model, level in (("net/alpha", 0.2), ("net/beta", 0.4)):
        rows = [Score("s1", r, "l1", level, selection="max") for r in ("early", "late")]
        store.write_scores(run_id=None, model=model, dataset="simulated", metric=Ridge(),
                           scores=rows)  # fmt: skip
    server = make_server(store, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_page_shows_the_shared_ranking_with_its_notes(served):
    out = subprocess.run(
        [NODE, str(SCRIPT), str(APP), served], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    page = json.loads(out.stdout)
    head = page["head"]
    # real and simulated data ranked apart: a data column; cells and missing cells shown
    assert head[:3] == ["data", "rank", "model"]
    assert {"mean", "n_cells", "n_missing", "d1/rsa", "d1/srp-ridge"} <= set(head)
    assert "simulated/srp-ridge" in head
    assert "ci_low" not in head  # no group has 5 regions: no interval column
    rows = page["rows"]
    assert len(rows) == 11 + 2 and page["status"] == "13 models"
    data = [r[head.index("data")] for r in rows]
    assert data == ["real"] * 11 + ["simulated"] * 2  # sorted by rank within each group
    assert rows[0][head.index("model")] == "net/alpha"
    assert [r[head.index("model")] for r in rows[-2:]] == ["net/beta", "net/alpha"]
    notes = " ".join(page["notes"])
    assert "ranked apart" in notes and "No confidence interval: 3" in notes
    assert page["selection"][0] == ""  # the default layer choice: heldout, else max
    assert "srp-ridge" in page["configs"]
