"""The report's figures are paper-ready: vector graphics with their numbers, one palette,
baselines as references, labelled points, stacking weights by depth bin, one colour scale
per figure group, titles that say what is drawn (issue 24, item 2)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import synthetic_leaderboard

from brainrank.core.errors import InputError
from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import ModelMetadata
from brainrank.leaderboard import open_store, palette, report
from brainrank.leaderboard.report import (
    DEPTH_BINS,
    ReportOptions,
    binned_weights,
    build_sections,
    write_report,
)


class _Stacking(Metric):
    identifier = "stacking"


class _RSA(Metric):
    identifier = "rsa"


BASELINES = {"baseline/pixels": 0.35, "baseline/gabor": 0.55}
DEEP_LAYERS = 52


@pytest.fixture(scope="module")
def with_baselines(tmp_path_factory):
    """The synthetic leaderboard plus two hand-made baselines (2 layers each, on rsa) and a
    52-layer network with stacking weights."""
    path = tmp_path_factory.mktemp("figures") / "lb.db"
    synthetic_leaderboard.build(path)
    store = open_store(str(path))
    for model, level in BASELINES.items():
        meta = ModelMetadata(source="baseline", architecture=model.split("/")[1], family="other",
                             task="none", training_method="handcrafted", training_data="none",
                             trained=False)  # fmt: skip
        store.register_model(model, meta, "test")
        rows = []
        for subject in synthetic_leaderboard.SUBJECTS:
            for region in synthetic_leaderboard.REGIONS:
                for index in range(2):
                    rows.append(Score(subject, region, f"l{index}", level - 0.1 * (1 - index),
                                      layer_index=index, relative_depth=float(index), ceiling=0.9))  # fmt: skip
                rows.append(Score(subject, region, "l1", level, selection="max", layer_index=1,
                                  relative_depth=1.0, ceiling=0.9))  # fmt: skip
        store.write_scores(run_id=None, model=model, dataset="d1", metric=_RSA(), scores=rows)
    deep = "net/deep"
    store.register_model(deep, ModelMetadata(source="net", architecture="deep", family="convnet"),
                         "test")  # fmt: skip
    layers, stacked = [], []
    for subject in synthetic_leaderboard.SUBJECTS:
        for region in synthetic_leaderboard.REGIONS:
            weights = np.random.default_rng(len(region)).dirichlet(np.ones(DEEP_LAYERS))
            stacked.append(Score(subject, region, "stacked", 0.5, selection="stacked",
                                 extra={"weights": {f"b{i}": float(w) for i, w in
                                                    enumerate(weights)}}))  # fmt: skip
            for i in range(DEEP_LAYERS):
                layers.append(Score(subject, region, f"b{i}", 0.3, layer_index=i,
                                    relative_depth=i / (DEEP_LAYERS - 1)))  # fmt: skip
    store.write_scores(run_id=None, model=deep, dataset="d1", metric=_Stacking(),
                       scores=layers + stacked)  # fmt: skip
    store.close()
    return path


@pytest.fixture(scope="module")
def sections(with_baselines):
    store = open_store(str(with_baselines))
    return {s.anchor: s for s in build_sections(store, ReportOptions(n_boot=200))}


@pytest.fixture(scope="module")
def synthetic_leaderboard_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic-pdf") / "lb.db"
    synthetic_leaderboard.build(path)
    return path


def _figure(section, name_part: str):
    found = [f for f in section.figures if name_part in f.name]
    assert len(found) == 1, [f.name for f in section.figures]
    return found[0]


def test_baselines_are_reference_lines_and_enter_no_mean(sections):
    figure = _figure(sections["depth"], "d1-rsa")
    data = figure.data
    baselines = data[data["kind"] == "baseline"]
    # one reference value per baseline and region: their best layer, no depth curve
    assert set(baselines["series"]) == set(BASELINES)
    assert len(baselines) == len(BASELINES) * len(synthetic_leaderboard.REGIONS)
    assert baselines["relative_depth"].isna().all()
    for model, level in BASELINES.items():
        assert np.allclose(baselines.loc[baselines["series"] == model, "score"], level)
    # the mean curve of trained networks is the mean over trained networks only
    networks = data[(data["kind"] == "trained") & ~data["series"].str.startswith("mean")]
    region = "V1"
    part = networks[networks["region"] == region]
    bins = np.clip((part["relative_depth"] * DEPTH_BINS).astype(int), 0, DEPTH_BINS - 1)
    expected = part.groupby(bins.to_numpy())["score"].mean().to_numpy()
    mean = data[(data["series"] == "mean of trained networks") & (data["region"] == region)]
    np.testing.assert_allclose(mean["score"].to_numpy(), expected)
    # the baselines are drawn as horizontal lines in the figure, not as curves
    ax = figure.figure.axes[0]
    curves = [line.get_label() for line in ax.get_lines() if line.get_label().startswith("_model:")]
    assert not any(label.removeprefix("_model:") in BASELINES for label in curves)
    assert "reference lines" in figure.title


def test_a_model_has_one_colour_and_fill_in_every_figure(sections, with_baselines):
    store = open_store(str(with_baselines))
    kinds = report.model_kinds(store)
    seen = 0
    for section in sections.values():
        for figure in section.figures:
            for ax in figure.figure.axes:
                for line in ax.get_lines():
                    label = line.get_label()
                    if not label.startswith("_model:"):
                        continue
                    model = label.removeprefix("_model:")
                    family, kind = kinds.loc[model, "family"], kinds.loc[model, "kind"]
                    colour = palette.family_colour(family)
                    if line.get_marker() in ("None", None, ""):  # a depth curve
                        assert line.get_color() == colour, (figure.name, model)
                        assert line.get_linestyle() == palette.KIND_STYLES[kind]["linestyle"]
                        seen += 1
                        continue
                    expected = palette.model_style(family, kind)
                    assert line.get_markeredgecolor() == expected["markeredgecolor"], model
                    assert line.get_markerfacecolor() == expected["markerfacecolor"], model
                    assert line.get_marker() == expected["marker"], model
                    seen += 1
    assert seen > 50
    assert palette.model_style("convnet", "random")["markerfacecolor"] == "white"
    assert palette.model_style("convnet", "baseline")["markeredgecolor"] == palette.BASELINE_COLOUR


def test_every_scatter_point_is_labelled(sections):
    figure = _figure(sections["agreement"], "scatter")
    ax = figure.figure.axes[0]
    texts = {t.get_text() for t in ax.texts}
    assert set(figure.data["model"]) <= texts  # 11 models: labelled by name
    assert len(figure.data) == 11
    svg = figure.svg()
    assert "net/alpha:random" in svg and "taskonomy/edge2d" in svg  # text stays text
    pairs = _figure(sections["trained-random"], "pairs")
    labels = {t.get_text() for ax in pairs.figure.axes for t in ax.texts}
    assert {"net/alpha", "net/beta", "vit/gamma"} <= labels
    # strip plots: every point carries its model's number, the key is in the caption and CSV
    for anchor in ("best-depth", "families"):
        (figure,) = sections[anchor].figures
        for ax in figure.figure.axes:
            points = [line for line in ax.get_lines() if line.get_label().startswith("_model:")]
            assert len(ax.texts) == len(points)
            key = dict(zip(figure.data["model"], figure.data["label"], strict=True))
            for line, text in zip(points, ax.texts, strict=True):
                assert text.get_text() == key[line.get_label().removeprefix("_model:")]
        assert figure.caption.startswith("Points: 1 ")


def test_many_points_are_numbered_with_the_key_in_the_numbers():
    from brainrank.leaderboard.report import new_figure

    _, ax = new_figure(3, 3)
    names = [f"m/{i}" for i in range(40)]
    labels = report._label_points(ax, np.arange(40.0), np.arange(40.0), names)
    assert labels == [str(i + 1) for i in range(40)]
    assert [t.get_text() for t in ax.texts] == labels


def test_stacking_weights_are_binned_by_depth_with_one_colour_scale(sections):
    section = sections["stacking"]
    figure = _figure(section, "weights")
    data = figure.data
    deep = data[data["model"] == "net/deep"]
    assert set(deep["depth_bin"]) == set(report._bin_labels())  # 52 layers -> 10 columns
    sums = deep.groupby("region")["weight"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-9)
    # one colour scale for both models' heat maps
    meshes = [c for ax in figure.figure.axes for c in ax.collections
              if hasattr(c, "get_clim") and c.get_array() is not None]  # fmt: skip
    assert len(meshes) >= 2
    assert len({m.get_clim() for m in meshes}) == 1
    assert meshes[0].get_clim()[1] == pytest.approx(data["weight"].max())
    # the per-layer detail is in the table
    (name, detail), *_ = section.tables
    assert name == "Stacking weights per layer"
    assert (detail["model"] == "net/deep").sum() == DEEP_LAYERS * len(synthetic_leaderboard.REGIONS)


def test_binned_weights_sum_within_bins():
    weights = pd.DataFrame({"region": ["A"] * 4, "layer": ["a", "b", "c", "d"],
                            "weight": [0.1, 0.2, 0.3, 0.4]})  # fmt: skip
    depth = {"a": 0.0, "b": 0.05, "c": 0.55, "d": 1.0}
    table = binned_weights(weights, depth)
    assert list(table.columns) == report._bin_labels()
    row = table.loc["A"]
    assert row["0.0-0.1"] == pytest.approx(0.3) and row["0.5-0.6"] == pytest.approx(0.3)
    assert row["0.9-1.0"] == pytest.approx(0.4) and row.sum() == pytest.approx(1.0)
    unknown = binned_weights(weights, {"a": 0.0})
    assert unknown.loc["A", "unknown depth"] == pytest.approx(0.9)


def test_the_taskonomy_matrices_share_one_scale(sections):
    figures = sections["taskonomy"].figures
    assert len(figures) == 2
    for figure in figures:
        meshes = [c for c in figure.figure.axes[0].collections if hasattr(c, "get_clim")]
        assert [m.get_clim() for m in meshes] == [(0.0, 1.0)]
        assert "scale 0-1" in figure.title


def test_titles_name_a_ci_only_where_one_is_drawn(synthetic_leaderboard_db, tmp_path):
    store = open_store(str(synthetic_leaderboard_db))
    (figure,) = report.section_ranking(store, ReportOptions(n_boot=200)).figures
    assert "no CI drawn" in figure.title and "95%" not in figure.title
    assert figure.data["ci_low"].isna().all()
    # six regions: the interval is drawn and named
    store = open_store(str(tmp_path / "six.db"))
    rows = {m: [] for m in ("m/a", "m/b", "m/c")}
    for level, model in enumerate(rows):
        for r in range(6):
            rows[model].append(Score("s1", f"R{r}", "l0", 0.1 * level + 0.01 * r, selection="max",
                                     layer_index=0, relative_depth=0.0))  # fmt: skip
        store.write_scores(run_id=None, model=model, dataset="d", metric=_RSA(), scores=rows[model])
    (ranking,) = report.section_ranking(store, ReportOptions(n_boot=200)).figures
    assert "bars: 95% percentile-bootstrap CI over 6 (dataset, region) units" in ranking.title
    assert ranking.data["ci_low"].notna().all()
    assert (ranking.data["ci_low"] <= ranking.data["mean"]).all()


def test_each_figure_links_its_numbers(sections, with_baselines, tmp_path):
    store = open_store(str(with_baselines))
    text = report.render(store, list(sections.values()))
    figures = [f for s in sections.values() for f in s.figures]
    links = dict(re.findall(r"download='([^']+)\.csv' href='data:text/csv;base64,([^']+)'", text))
    assert set(links) == {f.name for f in figures} and len(figures) >= 10
    for figure in figures:
        decoded = pd.read_csv(io.StringIO(base64.b64decode(links[figure.name]).decode()))
        assert len(decoded) == len(figure.data) > 0
    depth = next(f for f in figures if f.name == "depth-d1-rsa")
    decoded = pd.read_csv(io.StringIO(base64.b64decode(links[depth.name]).decode()))
    np.testing.assert_allclose(decoded["score"], depth.data["score"])
    # with an assets folder each figure is a file, linked relative to the report
    assets = tmp_path / "figs"
    assets.mkdir()
    text = report.render(store, [sections["depth"]], assets, tmp_path)
    for figure in sections["depth"].figures:
        assert (assets / f"{figure.name}.csv").is_file()
        assert (assets / f"{figure.name}.svg").read_text().startswith("<svg")
        assert f"href='figs/{figure.name}.csv'" in text


def test_the_pdf_has_a_page_per_figure_and_the_numbers_beside_it(sections, with_baselines,
                                                                tmp_path):  # fmt: skip
    store = open_store(str(with_baselines))
    out, folder = tmp_path / "r.pdf", tmp_path / "r_figures"
    folder.mkdir()
    chosen = [sections[a] for a in ("ranking", "uncalibrated", "stacking")]  # one missing
    report.render_pdf(store, chosen, out, folder)
    figures = [f for s in chosen for f in s.figures]
    assert len(figures) == 1
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == len(figures) + 1
    for figure in figures:
        assert (folder / f"{figure.name}.pdf").read_bytes().startswith(b"%PDF")
        assert (folder / f"{figure.name}.csv").stat().st_size > 0
    assert (folder / "stacking-stacking-weights-per-layer.csv").is_file()  # tables too
    empty = open_store(str(tmp_path / "empty.db"))
    with pytest.raises(InputError, match=r"writes a \.html file"):
        write_report(empty, tmp_path / "x.pdf", fmt="html")
    write_report(empty, tmp_path / "e.pdf")  # the default folder beside it
    assert (tmp_path / "e_figures").is_dir() and (tmp_path / "e.pdf").stat().st_size > 0


def test_sections_written_for_the_former_report_still_show(monkeypatch, tmp_path):
    """A section of another module that appends base64 PNGs (the former API) and one with
    no TITLES entry are drawn."""

    def legacy(store, options):
        fig, ax = report.new_figure(2, 2)
        ax.plot([0, 1], [0, 1])
        section = report.Section("legacy", "Legacy", "drawn the former way")
        section.images.append(report._png(fig))
        return section

    def section_new_kind(store, options):
        fig, ax = report.new_figure(2, 2)
        ax.plot([0, 1], [1, 0])
        section = report.Section("new-kind", "New", "drawn with add_figure")
        section.add_figure(fig, pd.DataFrame({"x": [0, 1]}), name="line", title="a line")
        return section

    monkeypatch.setattr(report, "SECTIONS", [legacy, section_new_kind])
    monkeypatch.setattr(report, "TITLES", {legacy: ("legacy", "Legacy")})
    store = open_store(str(tmp_path / "empty.db"))
    write_report(store, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text()
    assert "data:image/png;base64," in text and "<svg" in text
    assert "<section id='new-kind'>" in text
    write_report(store, tmp_path / "r.pdf")
    assert len(re.findall(rb"/Type\s*/Page\b", (tmp_path / "r.pdf").read_bytes())) == 3


def test_the_site_draws_with_the_reports_palette(with_baselines):
    """The web site gets the palette the report draws with (one module, two views)."""
    from brainrank.leaderboard.server import LeaderboardAPI

    api = LeaderboardAPI(open_store(str(with_baselines)))
    options = api.options()
    assert options["palette"] == palette.as_json()
    assert options["palette"]["family"]["convnet"] == palette.FAMILY_COLOURS["convnet"]
    app_js = (Path(report.__file__).parent / "static" / "app.js").read_text()
    assert "palette.family[family]" in app_js and "modelLook" in app_js
