"""`brainrank serve`: the JSON API and the static page over real HTTP."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
import synthetic_leaderboard

from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.leaderboard import open_store
from brainrank.leaderboard.server import make_server


@pytest.fixture
def served(tmp_path):
    path = tmp_path / "lb.db"
    synthetic_leaderboard.build(path)
    store = open_store(str(path))
    server = make_server(store, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", store
    finally:
        server.shutdown()
        server.server_close()


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def get_json(url: str):
    status, headers, body = get(url)
    assert headers["Content-Type"].startswith("application/json")
    return status, json.loads(body)


def test_api_answers(served):
    base, _ = served
    status, index = get_json(f"{base}/api/")
    assert status == 200 and "/api/ranking" in index["endpoints"]
    status, options = get_json(f"{base}/api/options")
    assert options["regions"] == ["IT", "V1", "V4"] and options["families"] == [
        "convnet",
        "transformer",
    ]
    assert {"layer", "max", "stacked"} <= set(options["selections"])
    status, ranking = get_json(f"{base}/api/ranking")
    assert status == 200 and ranking["columns"] == ["d1/rsa", "d1/srp-ridge"]
    rows = ranking["rows"]
    assert [r["rank"] for r in rows] == list(range(1, 12)) and rows[0]["model"] == "net/alpha"
    assert {r["data"] for r in rows} == {"real"} and {r["n_cells"] for r in rows} == {6}
    # 3 regions: no interval (it would only bracket their min and max), and the notes say so
    assert all(r["ci_low"] is None for r in rows)
    assert any("no confidence interval: 3" in n.lower() for n in ranking["notes"])
    assert [g["data"] for g in ranking["groups"]] == ["real"] and not ranking["groups"][0][
        "with_ci"
    ]
    _, random_only = get_json(f"{base}/api/ranking?trained=false&metric=rsa&ci=0")
    assert {r["model"] for r in random_only["rows"]} == {
        "net/alpha:random",
        "net/beta:random",
        "vit/gamma:random",
    }
    assert random_only["columns"] == ["d1/rsa"] and "ci_low" not in random_only["rows"][0]
    _, region = get_json(f"{base}/api/ranking?region=V1&family=transformer")
    assert [r["model"] for r in region["rows"]] == ["vit/gamma", "vit/gamma:random"]
    _, detail = get_json(f"{base}/api/model?id=" + urllib.request.quote("vit/gamma:random"))
    assert detail["metadata"]["trained"] is False
    assert {r["selection"] for r in detail["summary"]} == {"max"}
    assert len(detail["layers"]) == 2 * 2 * 3 * 5  # metrics x subjects x regions x layers
    _, rows = get_json(f"{base}/api/scores?model=net/alpha&selection=stacked")
    assert rows["total"] == 6 and rows["rows"][0]["layer"] == "stacked"
    _, runs = get_json(f"{base}/api/runs")
    assert runs["rows"][0]["status"] == "ok"


def test_api_errors_are_json_with_advice(served):
    base, _ = served
    status, body = get_json(f"{base}/api/model?id=net/nothing")
    assert status == 404 and "no model 'net/nothing'" in body["error"]
    status, body = get_json(f"{base}/api/ranking?trained=perhaps")
    assert status == 400 and "true or false" in body["error"]
    status, body = get_json(f"{base}/api/ranking?selection=layer")
    assert status == 400 and "not 'layer'" in body["error"]
    status, body = get_json(f"{base}/api/nothing")
    assert status == 404 and "/api/" in body["error"]
    status, body = get_json(f"{base}/api/scores?limit=many")
    assert status == 400 and "limit" in body["error"] and "many" in body["error"]


def test_page_and_static_files_are_served_and_nothing_else(served):
    base, _ = served
    status, headers, body = get(f"{base}/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert "/static/app.js" in page and "http://" not in page and "https://" not in page
    status, headers, body = get(f"{base}/static/app.js")
    assert status == 200 and "javascript" in headers["Content-Type"] and b"loadRanking" in body
    assert b"http://" not in body.replace(b"http://www.w3.org/2000/svg", b"")
    assert get(f"{base}/static/../server.py")[0] == 404
    assert get(f"{base}/static/nothing.js")[0] == 404


def test_answers_follow_new_writes(served):
    base, store = served
    _, before = get_json(f"{base}/api/ranking?ci=0")

    class Late(Metric):
        identifier = "late"

    store.write_scores(
        run_id=None,
        model="net/new",
        dataset="d1",
        metric=Late(),
        scores=[Score("s1", "V1", "l0", 0.99, selection="max")],
    )
    _, after = get_json(f"{base}/api/ranking?ci=0")
    assert len(after["rows"]) == len(before["rows"]) + 1
    # net/new shares no cell with the others: nobody is ranked, and the page says why
    assert "net/new" in {r["model"] for r in after["rows"]}
    assert all(r["rank"] is None for r in after["rows"])
    assert any("no cell is shared by every model" in n for n in after["notes"])
    _, late = get_json(f"{base}/api/ranking?ci=0&metric=late")
    assert [(r["model"], r["rank"]) for r in late["rows"]] == [("net/new", 1)]


def test_serve_refuses_a_busy_port_with_advice(served, tmp_path):
    from brainrank.core.errors import InputError

    base, store = served
    port = int(base.rsplit(":", 1)[1])
    with pytest.raises(InputError, match="--port"):
        make_server(store, "127.0.0.1", port)
