"""The analysis sections of the report (brainrank/leaderboard/report_analyses.py): on a
leaderboard that holds what each needs, every section draws its plot and gives its numbers,
and the numbers are those of the analysis functions; on an empty one each says what is
missing."""

from __future__ import annotations

import numpy as np
import pytest
from _analysis_store import build, small_simulated

from brainrank.leaderboard import analyses, open_store, scores
from brainrank.leaderboard import report_analyses as ra
from brainrank.leaderboard.report import NoData, Section, render


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build(tmp_path_factory.mktemp("analyses") / "lb.db")


@pytest.fixture(scope="module")
def sections(store):
    """Every section; the reference points on a small stand-in for ``simulated`` (the slow
    suite reads the real one)."""
    options = ra.AnalysisOptions(n_boot=200, references=True)
    out = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ra, "_load_dataset", lambda identifier, data_dir=None: small_simulated())
        for make in ra.SECTIONS:
            out[ra.TITLES[make][0]] = make(store, options)
    return out


def test_every_section_draws_and_gives_its_numbers(sections, store):
    assert set(sections) == {anchor for anchor, _ in ra.TITLES.values()}
    for anchor, section in sections.items():
        assert isinstance(section, Section) and section.anchor == anchor
        assert section.figures, anchor
        assert section.tables and all(not t.empty for _, t in section.tables), anchor
    page = render(store, list(sections.values()))
    assert page.count("<svg") >= len(sections) and "Rank uncertainty" in page
    assert "data:image/png" not in page


def test_the_numbers_are_the_analyses(sections, store):
    tables = {title: table for s in sections.values() for title, table in s.tables}
    frame = scores(store, selection="max")
    ridge = frame[frame["metric"] == "srp-ridge"]
    contrast = analyses.family_contrast(ridge, "transformer", "srp-ridge")
    row = tables["Family against the rest"].set_index(["metric", "family"]).loc[
        ("srp-ridge", "transformer")]  # fmt: skip
    assert row["t"] == pytest.approx(contrast.t) and row["test"] == "welch"
    assert row["n_family"] == 5 and row["n_other"] == 5
    sweep = tables["Mean over models per threshold, srp-ridge"]
    assert list(sweep["reliability_threshold"]) == [0.5, 0.7, 0.8]
    assert np.all(np.diff(sweep["mean"]) > 0)  # built to rise with the threshold
    cre = tables["Mean over models per cre line, srp-ridge"]
    assert list(cre["cre_lines"]) == ["Cux2", "Rorb"]  # descending means
    properties = tables["Spearman correlations"].set_index(["metric", "property"])
    assert properties.loc[("srp-ridge", "n_params"), "n"] == 10  # the random ones have none
    assert properties.loc[("srp-ridge", "imagenet_top1"), "rho"] > 0.5
    intervals = tables["Rank intervals, real data"]
    assert {"rank", "rank_low", "rank_high"} <= set(intervals.columns)
    assert (intervals["rank_low"] <= intervals["rank"]).all()
    pairs = tables["Pairwise tests, real data"]
    assert len(pairs) == 14 * 13 // 2
    general = tables["Mean decrease, versa:generalisation"]
    assert general.loc[0, "n"] == 14 * 2
    references = tables["Reference points, simulated / rsa"]
    assert set(references["kind"]) == {"subject"}  # two subjects: no multi-subject one
    dims = tables["Per model"]
    assert len(dims) == 14 and (dims["n_layers"] == 4).all()
    differences = tables["Mean difference"].set_index(["a", "b"])
    assert differences.loc[("versa", "rsa"), "mean"] == pytest.approx(0.15, abs=0.02)


def test_an_empty_leaderboard_says_what_each_section_lacks(tmp_path):
    empty = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    options = ra.AnalysisOptions(n_boot=100)
    for make in ra.SECTIONS:
        with pytest.raises(NoData) as caught:
            make(empty, options)
        assert str(caught.value), make.__name__
    with pytest.raises(NoData, match="brainrank report --references"):
        ra.section_references(empty, ra.AnalysisOptions(references=False))


@pytest.mark.slow
def test_the_reference_points_read_the_simulated_dataset(store):
    section = ra.section_references(store, ra.AnalysisOptions(n_boot=100, references=True))
    tables = dict(section.tables)
    refs = tables["Every reference, simulated / versa"]
    assert set(refs["target"]) == {"sim-01", "sim-02"} and set(refs["kind"]) == {"subject"}
    assert set(refs["region"]) == {"early", "late", "null"}
    by_region = refs.groupby("region")["value"].mean()
    assert by_region["late"] > by_region["null"] and abs(by_region["null"]) < 0.1
