"""`brainrank report`: one self-contained HTML file; each section degrades to a note."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import synthetic_leaderboard
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.core.errors import InputError
from brainrank.leaderboard import open_store, scores
from brainrank.leaderboard.report import build_sections, stacking_weights, write_report

SECTIONS = [
    "ranking",
    "uncalibrated",
    "depth",
    "best-depth",
    "agreement",
    "trained-random",
    "families",
    "taskonomy",
    "stacking",
    "contrasts",
]


@pytest.fixture(scope="module")
def synthetic_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic") / "lb.db"
    synthetic_leaderboard.build(path)
    return path


def test_the_report_is_one_self_contained_file_with_every_section(synthetic_db, tmp_path):
    out = tmp_path / "sub" / "report.html"
    result = CliRunner().invoke(main, ["report", str(out), "--db", str(synthetic_db)])
    assert result.exit_code == 0, result.output
    from brainrank.leaderboard.report import all_sections

    sections, titles = all_sections()
    assert f"of {len(sections)} sections with data" in result.output
    text = out.read_text()
    for anchor, _ in titles.values():
        assert f"<section id='{anchor}'>" in text
    for anchor in SECTIONS:  # the sections this leaderboard has data for
        part = text[text.index(f"<section id='{anchor}'>") :]
        part = part[: part.index("</section>")]
        assert "No data for this figure yet" not in part, anchor
    # the other sections (the papers' analyses that need other data) say why not
    missing = text.count("No data for this figure yet")
    assert missing == result.output.count("no data for '") <= len(sections) - len(SECTIONS)
    # every figure is inline vector graphics, with its numbers as a CSV data URI; nothing is
    # fetched from anywhere and no raster image is left
    assert text.count("<svg") >= 10 and "data:image/png" not in text
    csvs = re.findall(r"href='data:text/csv;base64,([A-Za-z0-9+/=]+)'", text)
    assert len(csvs) == text.count("<svg")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    # the numbers behind the ranking plot come with it, best model first
    ranking = text[text.index("<section id='ranking'>") : text.index("<section id='depth'>")]
    table = ranking[ranking.index("<details>") :]
    assert table.index("net/alpha") < table.index("net/beta:random")


def test_sections_show_the_analyses_numbers(synthetic_db):
    store = open_store(str(synthetic_db))
    sections = {s.anchor: s for s in build_sections(store)}
    missing = {a for a, s in sections.items() if s.missing}
    assert not missing & set(SECTIONS), missing  # the papers' analyses lacking data say so
    assert all(sections[a].missing for a in missing)
    ranking = sections["ranking"].tables[0][1]
    assert ranking["model"].iloc[0] == "net/alpha" and ranking["model"].iloc[-1].endswith(":random")
    # the ranking of the CLI and the web page (the one definition in ranking.py)
    assert set(ranking.columns) >= {"mean", "n_cells", "n_missing", "d1/rsa", "d1/srp-ridge"}
    from brainrank.leaderboard import ranking as api_ranking

    api = api_ranking(store)
    assert list(api["model"]) == list(ranking["model"])
    assert np.allclose(api["mean"], ranking["mean"])
    # 3 regions: no interval is drawn or printed, and the notes say why
    assert ranking["ci_low"].isna().all()
    assert any("No confidence interval: 3" in n for n in sections["ranking"].notes)
    paired = sections["trained-random"].tables[0][1]
    assert list(paired["metric"]) == ["rsa", "srp-ridge"]
    # 3 architectures: no test or effect size is printed, and the table says why
    assert set(paired["n_architectures"]) == {3} and paired["cohens_d"].isna().all()
    assert paired["note"].str.contains("only 3").all()
    assert (paired["mean_trained"] > paired["mean_random"]).all()
    agreement = sections["agreement"].tables[0][1].set_index("comparison")
    assert agreement.loc["models", "n"] == 11 and agreement.loc["models", "rho"] > 0.9
    families = sections["families"].tables[0][1]
    convnets = families[(families["family"] == "convnet") & (families["metric"] == "rsa")]
    assert convnets["n_models"].iloc[0] == 7  # trained convnets: 2 nets and 5 task networks
    similarity = sections["taskonomy"].tables[0][1].set_index("index")
    assert sorted(similarity.index) == ["class", "depth", "edge2d", "edge3d", "normal"]
    np.testing.assert_allclose(np.diag(similarity.to_numpy(dtype=float)), 1.0)


def test_stacking_weights_are_averaged_over_subjects():
    stacked = pd.DataFrame(
        {
            "model": ["m"] * 2,
            "dataset": ["d"] * 2,
            "region": ["V1"] * 2,
            "subject": ["s1", "s2"],
            "details": [{"weights": {"l0": 0.2, "l1": 0.8}}, {"weights": {"l0": 0.4, "l1": 0.6}}],
        }
    )
    long = stacking_weights(stacked)
    assert long.set_index("layer")["weight"].to_dict() == pytest.approx({"l0": 0.3, "l1": 0.7})


def test_an_empty_leaderboard_gives_a_report_of_notes(tmp_path):
    store = open_store(str(tmp_path / "empty.db"))
    sections = write_report(store, tmp_path / "r.html")
    assert all(s.missing for s in sections)
    text = (tmp_path / "r.html").read_text()
    assert text.count("No data for this figure yet") == len(sections) > len(SECTIONS)
    assert "run `brainrank run`" in text
    with pytest.raises(InputError, match=r"ending in \.html or \.pdf"):
        write_report(store, tmp_path / "r.png")


def test_partial_data_degrades_section_by_section(tmp_path):
    """Scores of one metric and no random networks: the ranking and depth plots are drawn,
    the comparisons that need more say what they lack."""
    synthetic = tmp_path / "full.db"
    synthetic_leaderboard.build(synthetic)
    store = open_store(str(tmp_path / "partial.db"))
    full = open_store(str(synthetic))
    keep = scores(full, metric="srp-ridge", trained=True)
    assert not keep.empty
    for (model, metric_id), part in keep.groupby(["model", "metric"]):
        from brainrank.core.metric import Metric
        from brainrank.core.scores import Score

        metric = type("M", (Metric,), {"identifier": metric_id})()
        rows = [
            Score(
                r.subject,
                r.region,
                r.layer,
                r.score,
                selection=r.selection,
                layer_index=r.layer_index,
                relative_depth=r.relative_depth,
            )
            for r in part.itertuples()
        ]
        store.write_scores(run_id=None, model=model, dataset="d1", metric=metric, scores=rows)
    sections = {s.anchor: s for s in build_sections(store)}
    assert not sections["ranking"].missing and not sections["depth"].missing
    assert "both rsa and srp-ridge" in sections["agreement"].missing
    assert "':random'" in sections["trained-random"].missing
    assert "per-neuroid" in sections["taskonomy"].missing
    assert "stacking" in sections["stacking"].missing
