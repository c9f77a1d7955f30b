"""Issue 20: the headline is honest.

- a ceiling is divided by only where it is there: its lower 95% bound above the floor
  (0.1); a cell below it leaves the headline ranking and is marked in the rows;
- the ranked row of every metric is the one it declares leak-free (``Metric.headline``);
- a configuration that is not calibrated never enters the default ranking, and is shown
  with its chance level when asked for by name;
- a configuration is named by what differs from its preset, even alone, and that name (with
  its commas) selects it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainrank.core.errors import InputError
from brainrank.core.metric import Metric
from brainrank.core.scores import CEILING_FLOOR, Score, ceiling_usable
from brainrank.leaderboard import open_store, rankings, scores
from brainrank.leaderboard.query import split_patterns
from brainrank.leaderboard.ranking import LOW_CEILING, NO_CEILING, UNCALIBRATED, rank_models

REGIONS = ["r1", "r2", "r3", "r4", "r5", "noise"]
LEVEL = {"m/a": 0.5, "m/b": 0.3, "m/c": 0.4}


class Declared(Metric):
    identifier = "declared"
    headline = "heldout"


class Stacked(Metric):
    identifier = "stacked-metric"
    headline = "stacked"


class Generalising(Metric):
    identifier = "generalising"
    headline = "generalisation"


class Paper(Metric):
    """A preset whose null is not 0 (as the seed papers' LOO protocols)."""

    identifier = "paper"
    headline = "heldout"
    calibrated = False


def _rows(level, ceilings, *, selections=("max", "heldout"), chance=None, low=None):
    out = []
    for subject in ("s1", "s2"):
        for i, region in enumerate(REGIONS):
            value = level + 0.01 * i
            ceiling = ceilings.get(region)
            bound = (low or {}).get(region)
            out.append(Score(subject, region, "l1", value, n_neuroids=4, ceiling=ceiling,
                             ceiling_low=bound, chance=chance))  # fmt: skip
            for selection in selections:
                offset = {"max": 0.05, "heldout": 0.0, "stacked": -0.02}.get(selection, 0.0)
                out.append(Score(subject, region, "l1", value + offset, n_neuroids=4,
                                 selection=selection, ceiling=ceiling, ceiling_low=bound,
                                 chance=chance))  # fmt: skip
    return out


def _store(tmp_path, metric, ceilings, low=None, **kwargs):
    store = open_store(str(tmp_path / f"{metric.identifier}.db"))
    store.register_metric(metric, "test", defaults=dict(metric.parameters))
    for model, level in LEVEL.items():
        store.write_scores(run_id=None, model=model, dataset="allen", metric=metric,
                           scores=_rows(level, ceilings, low=low, **kwargs))  # fmt: skip
    return store


def test_the_floor_rule():
    assert ceiling_usable(0.5, 0.3) and not ceiling_usable(0.5, 0.05)
    assert ceiling_usable(0.3) and not ceiling_usable(CEILING_FLOOR)  # no interval: the point
    assert not ceiling_usable(None) and not ceiling_usable(0.0) and not ceiling_usable(-0.2)
    assert Score("s", "r", "l", 0.2, ceiling=0.4, ceiling_low=0.3).normalized == pytest.approx(0.5)
    assert Score("s", "r", "l", 0.2, ceiling=0.4, ceiling_low=0.02).normalized is None


def test_a_near_zero_ceiling_never_normalises_a_cell(tmp_path):
    """The measured fault: a noise region's ceiling of 0.022 divided scores from -1.19 to
    +0.49 into the headline. Here region 'noise' has a ceiling of 0.05 (no interval) and
    r5 one of 0.4 whose lower bound is 0.08: neither normalises; both leave the ranking."""
    ceilings = {r: 0.5 for r in REGIONS[:4]} | {"r5": 0.4, "noise": 0.05}
    low = {r: 0.45 for r in REGIONS[:4]} | {"r5": 0.08}
    store = _store(tmp_path, Declared(), ceilings, low=low)
    frame = scores(store, selection="heldout")
    assert not frame.empty
    for region in ("r5", "noise"):
        part = frame[frame["region"] == region]
        assert len(part) == 6 and part["normalized"].isna().all()
        assert (part["flag"] == LOW_CEILING).all()
    good = frame[frame["region"].isin(REGIONS[:4])]
    assert np.allclose(good["normalized"], good["score"] / 0.5)
    assert (good["flag"] == "").all()
    [real] = rankings(store, ci=None)
    assert set(real.cells["region"]) == set(REGIONS[:4])  # only regions with signal ranked
    table = real.table.set_index("model")
    expected = np.mean([(0.5 + 0.01 * i) / 0.5 for i in range(4)])
    assert table.loc["m/a", "allen/declared"] == pytest.approx(expected)
    assert any("lower 95% bound is not above 0.1" in n and "region noise, r5" in n
               for n in real.notes)  # fmt: skip
    # a mutation that divides by any positive ceiling (the old rule) fails this test
    old = scores(store, selection="heldout").assign(ceiling_low=np.nan, ceiling=0.5)
    assert set(rank_models(old, ci=None)[0].cells["region"]) == set(REGIONS)


def test_rows_without_any_ceiling_are_ranked_raw_and_flagged(tmp_path):
    store = _store(tmp_path, Declared(), {})
    frame = scores(store, selection="heldout")
    assert (frame["flag"] == NO_CEILING).all() and frame["normalized"].isna().all()
    [real] = rankings(store, ci=None)
    assert any("raw scores; no ceiling is stored" in n for n in real.notes)
    # asking for normalised values where none exists says why, not "no cell is shared"
    [norm] = rankings(store, ci=None, value="normalized")
    assert any("no cell has a usable ceiling to normalise by" in n for n in norm.notes)
    assert not any("No ranked summary row" in n for n in norm.notes)
    assert not any("no cell is shared" in n for n in norm.notes)


def test_the_ranked_row_is_the_declared_one(tmp_path):
    store = _store(tmp_path, Stacked(), {}, selections=("max", "heldout", "stacked"))
    [real] = rankings(store, ci=None)
    table = real.table.set_index("model")
    expected = np.mean([0.5 + 0.01 * i - 0.02 for i in range(6)])
    assert table.loc["m/a", "allen/stacked-metric"] == pytest.approx(expected)
    assert any("'stacked'" in n for n in real.notes)
    # the declared row missing: left out and said, never replaced by an optimistic one
    other = _store(tmp_path, Generalising(), {})
    [found] = rankings(other, ci=None)
    assert found.columns == [] and any("'generalisation'" in n for n in found.notes)


def test_an_uncalibrated_configuration_never_enters_the_default_ranking(tmp_path):
    store = _store(tmp_path, Paper(), {r: 0.5 for r in REGIONS}, chance=-0.2,
                   low={r: 0.4 for r in REGIONS})  # fmt: skip
    store.register_metric(Declared(), "test", defaults={})
    for model, level in LEVEL.items():
        store.write_scores(run_id=None, model=model, dataset="allen", metric=Declared(),
                           scores=_rows(level, {}))  # fmt: skip
    [real] = rankings(store, ci=None)
    assert real.columns == ["allen/declared"]
    assert any("not calibrated" in n and "allen/paper" in n for n in real.notes)
    frame = scores(store, metric="paper", selection="heldout")
    assert (frame["flag"] == UNCALIBRATED).all() and (frame["chance"] == -0.2).all()
    # named: ranked, with its chance level beside it (in the same unit: normalised here)
    [named] = rankings(store, ci=None, config="paper")
    assert named.columns == ["allen/paper"] and named.chance_columns
    table = named.table.set_index("model")
    assert table.loc["m/a", "allen/paper (chance)"] == pytest.approx(-0.2 / 0.5)
    assert any("(chance)" in n for n in named.notes)
    only_paper = _store(tmp_path / "..", Paper(), {}, chance=0.1)
    with pytest.raises(InputError, match="not calibrated"):
        rankings(only_paper, ci=None)


def test_a_configuration_is_named_by_what_differs_from_its_preset(tmp_path):
    store = open_store(str(tmp_path / "names.db"))
    preset = {"alphas": [1.0], "standardize": "all", "cv": "loo"}
    changed = Paper(**{**preset, "standardize": "none"})
    changed.identifier = "srp-ridge:mouse"
    store.register_metric(changed, "test", defaults=preset)
    for model, level in LEVEL.items():
        store.write_scores(run_id=None, model=model, dataset="allen", metric=changed,
                           scores=_rows(level, {}))  # fmt: skip
    frame = scores(store)
    assert set(frame["config"]) == {"srp-ridge:mouse(standardize=none)"}  # alone, still named
    two = Paper(**{**preset, "alphas": [1.0, 10.0], "standardize": "all"})
    two.identifier = "srp-ridge:mouse"
    store.register_metric(two, "test", defaults=preset)
    store.write_scores(run_id=None, model="m/a", dataset="allen", metric=two,
                       scores=_rows(0.5, {}))  # fmt: skip
    name = "srp-ridge:mouse(alphas=[1,10])"
    assert name in set(scores(store)["config"])
    # a name with commas is one pattern (the ranking's own advice used to match nothing)
    assert split_patterns("a(x=1, y=2),b") == ["a(x=1, y=2)", "b"]
    picked = scores(store, config=f"{name},srp-ridge:mouse(standardize=none)")
    assert set(picked["config"]) == {name, "srp-ridge:mouse(standardize=none)"}
    assert not pd.isna(picked["score"]).all()


def test_the_report_shows_uncalibrated_configurations_with_their_chance_levels(tmp_path):
    from brainrank.leaderboard.report import ReportOptions, section_ranking, section_uncalibrated

    store = _store(tmp_path, Paper(), {r: 0.5 for r in REGIONS}, chance=-0.2,
                   low={r: 0.4 for r in REGIONS})  # fmt: skip
    store.register_metric(Declared(), "test", defaults={})
    for model, level in LEVEL.items():
        store.write_scores(run_id=None, model=model, dataset="allen", metric=Declared(),
                           scores=_rows(level, {}))  # fmt: skip
    options = ReportOptions(n_boot=50)
    ranked = section_ranking(store, options)
    assert all("paper" not in " ".join(t.columns) for _, t in ranked.tables)
    section = section_uncalibrated(store, options)
    [(title, table)] = section.tables
    assert "not calibrated" in title.lower()
    assert "allen/paper (chance)" in table.columns and "allen/declared" not in table.columns
    assert table["allen/paper (chance)"].to_numpy() == pytest.approx(-0.4)


def test_notes_say_when_chance_levels_spread_models_as_much_as_scores():
    rows = []
    for model, (score, chance) in {"a": (0.10, -0.30), "b": (0.05, -0.10)}.items():
        for region in REGIONS[:2]:
            rows.append(dict(model=model, dataset="mouse", metric="paper", metric_hash="h",
                             subject="s", region=region, selection="heldout", score=score,
                             chance=chance, headline="heldout", calibrated=False))  # fmt: skip
    [ranking] = rank_models(pd.DataFrame(rows), ci=None, include_uncalibrated=True)
    assert any("chance levels differ between models by 0.200" in n for n in ranking.notes)
