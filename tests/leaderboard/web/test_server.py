"""`brainrank serve`: the JSON API and the static page over real HTTP."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from importlib import resources

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


# --- the FastAPI site: schema, validation, new endpoints -----------------------------------


def test_openapi_schema_lists_every_route_and_its_parameters(served):
    base, _ = served
    status, schema = get_json(f"{base}/api/openapi.json")
    assert status == 200 and schema["openapi"].startswith("3.")
    _, index = get_json(f"{base}/api/")
    listed = {e.split("?")[0] for e in index["endpoints"]} - {"/api/openapi.json"}
    assert listed and listed <= set(schema["paths"])  # every endpoint is described
    assert set(schema["paths"]) - {"/api/"} <= listed
    limit = next(p for p in schema["paths"]["/api/scores"]["get"]["parameters"]
                 if p["name"] == "limit")  # fmt: skip
    assert limit["schema"]["minimum"] == 0
    ranking = {p["name"] for p in schema["paths"]["/api/ranking"]["get"]["parameters"]}
    assert {"dataset", "metric", "kind", "where", "selection", "value", "ci"} <= ranking
    value = next(p for p in schema["paths"]["/api/ranking"]["get"]["parameters"]
                 if p["name"] == "value")  # fmt: skip
    assert set(value["schema"]["enum"]) == {"auto", "score", "normalized"}


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("/api/scores?limit=-1", ["limit", "greater than or equal to 0", "-1"]),
        ("/api/scores?limit=many", ["limit", "integer", "many"]),
        ("/api/ranking?value=best", ["value", "best"]),
        ("/api/ranking?ci=perhaps", ["ci", "perhaps"]),
        ("/api/ranking?familly=convnet", ["unknown parameter familly", "family"]),
        ("/api/ranking?where=colour:red", ["no model field 'colour'", "family"]),
        ("/api/ranking?kind=robot", ["kind has no value 'robot'", "baseline"]),
        ("/api/ranking?where=family", ["FIELD:VALUE"]),
        ("/api/failures?run=abc", ["run", "abc"]),
        ("/api/model", ["id", "Field required"]),
        ("/api/compare?x=mean&y=nothing", ["no column 'nothing'", "d1/rsa"]),
    ],
)
def test_bad_parameters_are_400_with_a_message(served, query, words):
    base, _ = served
    status, body = get_json(base + query)
    assert status == 400, body
    for word in words:
        assert word in body["error"], (word, body["error"])


def test_taxonomy_filters_and_baselines(served):
    base, store = served
    from brainrank.core.specs import ModelMetadata

    store.register_model("baseline/pixels", ModelMetadata(source="baseline", architecture="pixels",
                                                          trained=False))  # fmt: skip
    store.write_scores(run_id=None, model="baseline/pixels", dataset="d1",
                       metric=synthetic_leaderboard.Ridge(),
                       scores=[Score(s, r, "pixels", 0.01, selection="max")
                               for s in synthetic_leaderboard.SUBJECTS
                               for r in synthetic_leaderboard.REGIONS])  # fmt: skip
    _, options = get_json(f"{base}/api/options")
    assert options["taxonomy"]["kind"] == ["baseline", "random", "trained"]
    assert "task" in options["taxonomy"] and "family" in options["taxonomy"]
    _, models = get_json(f"{base}/api/models")
    kinds = {r["model"]: r["kind"] for r in models["rows"]}
    assert kinds["baseline/pixels"] == "baseline" and kinds["net/alpha:random"] == "random"
    _, ranking = get_json(f"{base}/api/ranking?kind=baseline&metric=srp-ridge&ci=0")
    assert [r["model"] for r in ranking["rows"]] == ["baseline/pixels"]
    assert ranking["rows"][0]["kind"] == "baseline"
    _, random = get_json(f"{base}/api/ranking?where=kind:random&where=family:transformer&ci=0")
    assert [r["model"] for r in random["rows"]] == ["vit/gamma:random"]
    assert random["model_count"] == 1 and "kind is random" in random["notes"][0]
    wanted = "task:taskonomy:edge_texture,taskonomy:edge_occlusion"
    _, task = get_json(f"{base}/api/ranking?where={wanted}&ci=0")
    assert {r["model"] for r in task["rows"]} == {"taskonomy/edge2d", "taskonomy/edge3d"}


def test_ranking_cells_hold_the_rankings_values_and_flags(served, monkeypatch):
    """Region and subject values of every column come from the ranking's cells, and any
    flag the ranking attaches to a cell reaches the JSON (no note is hard-coded)."""
    base, _ = served
    from brainrank.leaderboard import server
    from brainrank.leaderboard.ranking import rank_models

    _, plain = get_json(f"{base}/api/ranking?ci=0")
    top = plain["rows"][0]
    info = {c["key"]: c for c in plain["column_info"]}
    assert info["d1/rsa"]["regions"] == ["IT", "V1", "V4"]  # no declared order: alphabetical
    assert info["d1/rsa"]["subjects"] == ["s1", "s2"] and info["d1/rsa"]["label"] == "rsa"
    cells = top["cells"]["d1/srp-ridge"]
    for region, value in cells["regions"].items():  # region = mean over its subjects
        subjects = cells["subjects"][region].values()
        assert value == pytest.approx(sum(subjects) / len(subjects))
    # the column = mean over regions (the ranking's definition)
    assert top["d1/srp-ridge"] == pytest.approx(sum(cells["regions"].values()) / 3)
    assert "flags" not in cells

    real = rank_models

    def flagged(frame, **kwargs):
        out = real(frame, **kwargs)
        for r in out:
            cells = r.cells.copy()
            cells["flags"] = [["raw score: no usable ceiling"] if reg == "V1" else []
                              for reg in cells["region"]]  # fmt: skip
            cells["chance_mean"] = 0.02
            r.cells = cells
        return out

    monkeypatch.setattr(server, "rankings", lambda *a, **k: _with(flagged, *a, **k))
    _, marked = get_json(f"{base}/api/ranking?ci=0&metric=srp-ridge")
    cells = marked["rows"][0]["cells"]["d1/srp-ridge"]
    assert cells["flags"] == ["raw score: no usable ceiling"]
    assert cells["region_flags"] == {"V1": ["raw score: no usable ceiling"]}
    assert cells["subject_flags"]["V1"]["s1"] == ["raw score: no usable ceiling"]
    assert cells["extra"]["V4"]["s2"] == {"chance_mean": 0.02}


def _with(rank, db, selection=None, **kwargs):
    from brainrank.leaderboard.query import scores, species_of

    filters = {k: v for k, v in kwargs.items() if k not in ("ci", "value", "n_boot", "seed")}
    frame = scores(db, selection="heldout,max", **filters)
    return rank(frame, selection=selection, value=kwargs.get("value", "auto"),
                ci=kwargs.get("ci"), species=species_of(db))  # fmt: skip


def test_a_second_configuration_gets_a_short_header(served):
    base, store = served

    class LongRidge(Metric):
        identifier = "srp-ridge"

    long = LongRidge(alphas=[1e8, 1e9, 1e10], standardize="all", n_components=4096)
    store.register_metric(long)
    store.register_metric(synthetic_leaderboard.Ridge())
    store.write_scores(run_id=None, model="net/alpha", dataset="d1", metric=long,
                       scores=[Score("s1", r, "l1", 0.5, selection="max")
                               for r in synthetic_leaderboard.REGIONS])  # fmt: skip
    _, ranking = get_json(f"{base}/api/ranking?ci=0&metric=srp-ridge&model=net/alpha")
    labels = {c["config"]: c["label"] for c in ranking["column_info"]}
    assert len(labels) == 2
    for config, label in labels.items():
        assert len(label) <= 20, label
        if len(config) > 20:
            assert label.startswith("srp-ridge [") and config in next(
                c["title"] for c in ranking["column_info"] if c["config"] == config
            )


def test_compare_dataset_and_runs(served):
    base, _ = served
    from scipy import stats

    _, ranking = get_json(f"{base}/api/ranking?ci=0")
    _, answer = get_json(f"{base}/api/compare?ci=0&x=d1/rsa&y=d1/srp-ridge|V4")
    x = [r["d1/rsa"] for r in ranking["rows"]]
    y = [r["cells"]["d1/srp-ridge"]["regions"]["V4"] for r in ranking["rows"]]
    assert answer["n"] == 11
    assert answer["spearman_r"] == pytest.approx(stats.spearmanr(x, y).statistic)
    by_model = {p["model"]: (p["x"], p["y"]) for p in answer["points"]}
    assert by_model["net/alpha"] == (pytest.approx(x[0]), pytest.approx(y[0]))
    _, d1 = get_json(f"{base}/api/dataset?id=d1")
    assert {c["config"] for c in d1["configs"]} == {"rsa", "srp-ridge", "stacking"}
    assert {(c["region"], c["subject"]) for c in d1["ceilings"]} == {
        (r, s) for r in synthetic_leaderboard.REGIONS for s in synthetic_leaderboard.SUBJECTS
    }
    assert {c["ceiling"] for c in d1["ceilings"]} == {0.9}
    status, body = get_json(f"{base}/api/dataset?id=nothing")
    assert status == 404 and "d1" in body["error"]
    _, detail = get_json(f"{base}/api/model?id=net/alpha&layers=0")
    assert detail["layers"] == [] and detail["curves"]
    assert detail["provenance"]["runs"][0]["status"] == "ok"
    assert detail["metadata"]["weights_hash"] == "w-net/alpha"
    hashes = detail["provenance"]["hashes"]
    assert {h["config"] for h in hashes} == {"rsa", "srp-ridge", "stacking"}
    assert all(h["runs"] == [1] and len(h["metric_hash"]) == 16 for h in hashes)
    _, runs = get_json(f"{base}/api/runs")
    assert "fits_per_second" in runs["rows"][0] and runs["rows"][0]["seconds"] >= 0


def test_the_chart_library_is_vendored_with_its_licence(served):
    base, _ = served
    status, _, page = get(f"{base}/")
    assert b"/static/vendor/chart.umd.min.js" in page
    status, _, body = get(f"{base}/static/vendor/chart.umd.min.js")
    assert status == 200 and b"Chart.js v4" in body[:200]
    folder = resources.files("brainrank.leaderboard").joinpath("static", "vendor")
    licence = folder.joinpath("chart.js-LICENSE.md").read_text()
    assert "MIT License" in licence and "Chart.js Contributors" in licence
