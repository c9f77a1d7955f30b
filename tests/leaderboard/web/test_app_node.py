"""The site's script (static/app.js) run in Node with a minimal DOM against a live `brainrank
serve` on the generated NSD-sized leaderboard: where no browser is installed (test_browser.py
skips), this still checks the page's own functions on the API's answers: the column
hierarchy (metrics, then regions in the dataset's order, then subjects), sorting and search,
the rendered table with a cell flag shown as a marker, and the CSV download."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import threading
from importlib import resources
from pathlib import Path

import nsd_like_leaderboard as generated
import pytest

from brainrank.leaderboard import open_store
from brainrank.leaderboard.server import make_server

NODE = shutil.which("node")
SCRIPT = Path(__file__).with_name("app_in_node.js")
APP = resources.files("brainrank.leaderboard").joinpath("static", "app.js")


@pytest.fixture
def served(tmp_path):
    path = tmp_path / "lb.db"
    generated.build(path)
    store = open_store(str(path))
    server = make_server(store, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        store.close()


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_page_functions_show_the_shared_ranking(served):
    out = subprocess.run(
        [NODE, str(SCRIPT), str(APP), served], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    page = json.loads(out.stdout)
    metrics = ["encoding:taskonomy", "rsa", "srp-ridge", "versa"]
    assert page["collapsed"] == [f"{generated.DATASET}/{m}" for m in metrics]
    expanded = page["expanded"]
    assert expanded[0] == ["column", "encoding:taskonomy"]
    assert [label for kind, label in expanded if kind == "region"] == list(generated.REGIONS)
    assert [label for kind, label in expanded if kind == "subject"] == list(generated.SUBJECTS)
    # subjects come right after their region
    assert expanded[1] == ["region", generated.REGIONS[0]] and expanded[2][0] == "subject"
    assert page["byMean"][0] == "zoo/net00" and page["byMean"][-1].startswith("baseline/")
    assert page["searched"] and all("random" in m for m in page["searched"])
    head = page["head"]
    assert head[:4] == ["rank", "model", "mean", "ci"]
    assert head[4:] == page["collapsed"]
    # the flag attached to one cell: exactly one marked cell, with the marker
    assert page["marked"] == 1 and page["markedText"][0].endswith("†")
    rows = list(csv.DictReader(io.StringIO(page["csv"])))
    assert len(rows) == 40 and rows[0]["model"] == page["firstModel"]
    assert set(page["collapsed"]) <= set(rows[0])
