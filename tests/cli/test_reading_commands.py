"""The reading commands: leaderboard, query, show, failures, runs; run's new options."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.core.metric import Metric
from brainrank.core.scores import Score, best_layer_scores
from brainrank.core.specs import ModelMetadata
from brainrank.leaderboard import open_store


class RSA(Metric):
    identifier = "rsa"


def invoke(*args: str, code: int = 0):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "lb.db"
    store = open_store(str(path))
    run = store.start_run({"cli": True})
    for model, family, trained, level in (
        ("lab/conv", "convnet", True, 0.5),
        ("lab/conv:random", "convnet", False, 0.1),
        ("lab/vit", "transformer", True, 0.4),
    ):
        store.register_model(
            model,
            ModelMetadata(
                source="lab",
                architecture=model,
                family=family,
                trained=trained,
                task="classification" if trained else None,
            ),
        )
        rows = []
        for subject in ("s1", "s2"):
            for r, region in enumerate(("V1", "IT")):
                for layer in range(3):
                    per = np.full(4, level + 0.1 * r - 0.05 * abs(layer - 1), dtype=np.float32)
                    rows.append(
                        Score(
                            subject,
                            region,
                            f"l{layer}",
                            float(per.mean()),
                            n_neuroids=4,
                            layer_index=layer,
                            relative_depth=layer / 2,
                            per_neuroid=per,
                            neuroid_ids=tuple(f"{region}{i}" for i in range(4)),
                        )
                    )
        store.write_scores(
            run_id=run,
            model=model,
            dataset="d",
            metric=RSA(),
            scores=rows + best_layer_scores(rows),
        )
    try:
        raise RuntimeError("out of memory on layer l9")
    except RuntimeError as exc:
        store.record_failure(run, "score", exc, model="lab/big", dataset="d", metric="rsa")
    store.finish_run(run, "partial", store.count("scores"), 1)
    return str(path)


def test_leaderboard_ranks_with_cis_and_filters(db):
    table = invoke("leaderboard", "--db", db).output
    lines = table.splitlines()
    assert lines[1].split()[:4] == ["rank", "rank_low", "rank_high", "model"]
    assert "ci_low" in lines[1]
    rows = lines[2 : lines.index("")]
    assert [line.split()[3] for line in rows] == ["lab/conv", "lab/vit", "lab/conv:random"]
    # the lines under the table say what was ranked; 2 regions: no interval, and why
    notes = table[table.index("\n\n") :]
    assert "Per-cell value" in notes and "No confidence interval: 2 (dataset, region)" in notes
    result = CliRunner().invoke(main, ["leaderboard", "--db", db, "--format", "json", "--ranking"])
    ranking = json.loads(result.stdout)
    assert ranking[0]["model"] == "lab/conv" and ranking[0]["ci_low"] is None
    assert ranking[0]["data"] == "real" and ranking[0]["n_cells"] == 2
    random_only = invoke("leaderboard", "--db", db, "--random").output
    assert "lab/conv:random" in random_only and "lab/vit" not in random_only
    transformers = json.loads(
        invoke("leaderboard", "--db", db, "--format", "json", "--family", "transformer").output
    )
    assert {r["model"] for r in transformers} == {"lab/vit"}
    one_subject = json.loads(
        invoke(
            "leaderboard",
            "--db",
            db,
            "--format",
            "json",
            "--subject",
            "s2",
            "--region",
            "IT",
            "--selection",
            "layer",
        ).output
    )
    assert {(r["subject"], r["region"], r["selection"]) for r in one_subject} == {
        ("s2", "IT", "layer")
    }


def test_query_formats_aggregates_and_columns(db):
    csv = invoke("query", "--db", db, "--selection", "max", "--format", "csv").output
    frame = pd.read_csv(io.StringIO(csv))
    assert len(frame) == 3 * 2 * 2 and set(frame["selection"]) == {"max"}
    result = invoke(
        "query", "--db", db, "--selection", "max", "--aggregate", "region", "--format", "json"
    )
    agg = json.loads(result.stdout)
    conv = next(r for r in agg if r["model"] == "lab/conv")
    assert conv["n"] == 2 and conv["mean"] == pytest.approx(np.mean([0.5, 0.6]))
    # 2 regions: no "95% CI" (it would be their min and max), and the reason on stderr
    assert conv["ci_low"] is None and conv["ci_high"] is None
    assert "fewer than 5 regions" in result.stderr
    top = invoke(
        "query",
        "--db",
        db,
        "--selection",
        "layer",
        "--columns",
        "model,layer,score",
        "--sort",
        "-score,model",
        "--limit",
        "2",
    ).output.splitlines()
    assert top[0].split() == ["model", "layer", "score"] and len(top) == 3
    assert top[1].split()[:2] == ["lab/conv", "l1"]
    neuroids = json.loads(
        invoke(
            "query",
            "--db",
            db,
            "--per-neuroid",
            "--model",
            "lab/vit",
            "--selection",
            "max",
            "--region",
            "V1",
            "--subject",
            "s1",
            "--format",
            "json",
        ).output
    )
    assert [r["neuroid_id"] for r in neuroids] == ["V10", "V11", "V12", "V13"]
    bad = invoke("query", "--db", db, "--columns", "model,colour", code=1)
    assert "no column ['colour']" in bad.output and "Traceback" not in bad.output
    bad = invoke("query", "--db", db, "--sort", "weight", code=1)
    assert "cannot sort by ['weight']" in bad.output


def test_show_a_model(db):
    text = invoke("show", "lab/vit", "--db", db).output
    assert "family: transformer" in text and "per layer, d / rsa" in text
    per_layer = text[text.index("per layer") :].splitlines()
    assert per_layer[1].split() == ["layer", "relative_depth", "IT", "V1"]
    payload = json.loads(invoke("show", "lab/vit", "--db", db, "--format", "json").output)
    assert payload["metadata"]["family"] == "transformer"
    assert len(payload["layers"]) == 2 * 2 * 3 and {r["selection"] for r in payload["summary"]} == {
        "max"
    }
    missing = invoke("show", "lab/vt", "--db", db, code=1)
    assert "no model 'lab/vt'" in missing.output and "Closest stored: lab/vit" in missing.output


def test_failures_and_runs(db):
    text = invoke("failures", "--db", db).output
    assert "score (model=lab/big, dataset=d, metric=rsa): RuntimeError: out of memory" in text
    assert "Traceback" not in text and "--traceback" in text
    assert "Traceback" in invoke("failures", "--db", db, "--last", "--traceback").output
    rows = json.loads(invoke("failures", "--db", db, "--format", "json", "--model", "lab/*").output)
    assert len(rows) == 1 and "traceback" not in rows[0]
    assert "no failures recorded in run 99" in invoke("failures", "--db", db, "--run", "99").output
    runs = json.loads(invoke("runs", "--db", db, "--format", "json").output)
    assert runs[0]["status"] == "partial" and runs[0]["packages"]["numpy"]
    assert "partial" in invoke("runs", "--db", db).output


def test_run_option_errors(tmp_path):
    result = invoke(
        "run",
        "--workers",
        "2",
        "--scheduler",
        "tcp://x:1",
        "--db",
        str(tmp_path / "a.db"),
        "--models",
        "baseline/pixels",
        code=1,
    )
    assert "either --workers" in result.output
    result = invoke(
        "run", "--workers", "2", "--db", "sqlite:///:memory:", "--models", "baseline/pixels", code=1
    )
    assert "in-memory SQLite" in result.output
    result = invoke("run", "--workers", "0", code=2)
    assert "--workers" in result.output


@pytest.fixture
def mixed_db(tmp_path):
    """Real data (two datasets of different metric coverage, one model missing a region)
    beside simulated data, and two settings of one metric."""
    from brainrank.core.specs import DatasetMetadata, DatasetSpec

    class Ridge(Metric):
        identifier = "srp-ridge"

    path = tmp_path / "mixed.db"
    store = open_store(str(path))
    for name, species in (("allen", "mouse"), ("k92", "human"), ("simulated", "simulated")):
        meta = DatasetMetadata(species=species, modality="test")
        store.register_dataset(DatasetSpec(name, lambda **_: None, meta, plugin="test"))
    low, high = Ridge(alphas=[1.0]), Ridge(alphas=[1e8])
    for metric in (low, high, RSA()):
        store.register_metric(metric, "test")
    regions = ["VISp", "VISl", "VISal", "VISpm", "VISrl"]

    def write(model, dataset, metric, values):
        rows = [Score("s1", r, "l1", v, n_neuroids=2, selection="max") for r, v in values.items()]
        store.write_scores(run_id=None, model=model, dataset=dataset, metric=metric, scores=rows)

    for model, level in (("lab/a", 0.5), ("lab/b", 0.3)):
        write(model, "allen", low, {r: level for r in regions})
        write(model, "allen", high, {r: -level for r in regions})
        write(
            model,
            "k92",
            RSA(),
            {r: level / 2 for r in (["IT"] if model == "lab/b" else ["IT", "EVC"])},
        )
        write(model, "simulated", low, {r: 1 - level for r in regions})
    return str(path)


def test_leaderboard_never_averages_settings_or_simulated_with_real(mixed_db):
    text = invoke("leaderboard", "--db", mixed_db).output
    assert "== real data ==" in text and "== simulated data ==" in text
    assert "allen/srp-ridge(alphas=1)" in text and "allen/srp-ridge(alphas=1e8)" in text
    assert "several configurations of one metric" in text
    assert "--config 'srp-ridge(alphas=1)'" in text
    assert "k92/rsa/EVC: lab/b" in text  # the cell one model lacks, listed
    one = invoke("leaderboard", "--db", mixed_db, "--config", "srp-ridge(alphas=1e8),rsa").output
    lines = one.splitlines()  # the simulated rows have the other setting: one ranking
    assert "== real data ==" not in one and "several configurations" not in one
    assert [line.split()[:4:3] for line in lines[2:4]] == [["1", "lab/b"], ["2", "lab/a"]]
    args = ["leaderboard", "--db", mixed_db, "--format", "json", "--ranking", "--config"]
    rows = json.loads(CliRunner().invoke(main, [*args, "srp-ridge(alphas=1)"]).stdout)
    assert {(r["data"], r["model"], r["rank"]) for r in rows} == {
        ("real", "lab/a", 1), ("real", "lab/b", 2), ("simulated", "lab/b", 1),
        ("simulated", "lab/a", 2),
    }  # fmt: skip


def test_configurations_map_a_hash_to_parameters(mixed_db):
    stored = invoke("metrics", "--stored", "--db", mixed_db).output
    line = next(line for line in stored.splitlines() if "srp-ridge(alphas=1e8)" in line)
    assert "alphas=1e8" in line.split("srp-ridge(alphas=1e8)", 1)[1]
    payload = json.loads(invoke("metrics", "--stored", "--db", mixed_db, "--format", "json").output)
    by_name = {r["config"]: r for r in payload}
    assert by_name["srp-ridge(alphas=1)"]["parameters"] == "alphas=1"
    shown = invoke("show", "lab/a", "--db", mixed_db, "--dataset", "allen").output
    assert "srp-ridge(alphas=1e8): srp-ridge #" in shown
    assert "per layer" not in shown or "srp-ridge(alphas=1e8)" in shown
    summary = shown[shown.index("summary scores") :]
    assert "srp-ridge(alphas=1)" in summary and "srp-ridge(alphas=1e8)" in summary


def test_metrics_lists_parameters_and_defaults():
    text = invoke("metrics", "srp-ridge*").output
    header, *rows = text.splitlines()
    assert "parameters" in header
    default = next(r for r in rows if r.split()[0] == "srp-ridge")
    assert "alphas=" in default and "n_components=" in default
