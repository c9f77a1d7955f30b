"""`brainrank diff`: scores only one leaderboard has, and values that differ."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.cli.diff import EXIT_DIFFERENT
from brainrank.core.metric import Metric
from brainrank.core.scores import Score
from brainrank.core.specs import ModelMetadata
from brainrank.leaderboard import open_store
from brainrank.leaderboard.compare import compare


class Toy(Metric):
    identifier = "toy"


def write(path, values, per_neuroid=(0.1, 0.2)):
    store = open_store(str(path))
    store.register_model("m/a", ModelMetadata(source="m", architecture="a"))
    rows = [
        Score(
            "s1",
            region,
            "layer1",
            value,
            per_neuroid=np.array(per_neuroid, np.float32),
            neuroid_ids=("n1", "n2"),
        )
        for region, value in values.items()
    ]
    store.write_scores(run_id=None, model="m/a", dataset="d", metric=Toy(), scores=rows)
    return store


def test_identical_leaderboards_agree(tmp_path):
    a = write(tmp_path / "a.db", {"V1": 0.5, "IT": 0.25})
    b = write(tmp_path / "b.db", {"V1": 0.5, "IT": 0.25})
    result = compare(a, b, per_neuroid=True)
    assert result.same and result.n_common == 2
    out = CliRunner().invoke(main, ["diff", str(tmp_path / "a.db"), str(tmp_path / "b.db")])
    assert out.exit_code == 0 and "2 scores in both; 0 differ" in out.output


def test_differences_are_listed_and_the_exit_status_says_so(tmp_path):
    a = write(tmp_path / "a.db", {"V1": 0.5, "IT": 0.25})
    b = write(tmp_path / "b.db", {"V1": 0.5 + 2e-7, "V4": 0.3})
    result = compare(a, b)
    assert len(result.changed) == 1 and result.changed["region"].iloc[0] == "V1"
    assert list(result.only_a["region"]) == ["IT"] and list(result.only_b["region"]) == ["V4"]
    assert len(compare(a, b, tolerance=1e-6).changed) == 0  # float32 rounding, tolerated
    out = CliRunner().invoke(main, ["diff", str(tmp_path / "a.db"), str(tmp_path / "b.db")])
    assert out.exit_code == EXIT_DIFFERENT
    assert "only in" in out.output and "differing values" in out.output


def test_per_neuroid_values_are_compared_when_asked(tmp_path):
    a = write(tmp_path / "a.db", {"V1": 0.5})
    b = write(tmp_path / "b.db", {"V1": 0.5}, per_neuroid=(0.1, 0.3))
    assert compare(a, b).same
    changed = compare(a, b, per_neuroid=True).changed
    assert len(changed) == 1 and changed["difference"].iloc[0] > 0.09


def test_leaderboards_with_other_ceilings_differ(tmp_path):
    """Issue 20: `diff` compared the raw score only; two leaderboards whose ceilings (so
    their normalised values, what the ranking uses) differ were reported identical."""

    def with_ceiling(path, ceiling, low):
        store = open_store(str(path))
        rows = [Score("s1", "V1", "layer1", 0.3, ceiling=ceiling, ceiling_low=low)]
        store.write_scores(run_id=None, model="m/a", dataset="d", metric=Toy(), scores=rows)
        return store

    a = with_ceiling(tmp_path / "a.db", 0.894, 0.85)
    b = with_ceiling(tmp_path / "b.db", 0.548, 0.5)
    result = compare(a, b)
    assert not result.same and len(result.changed) == 1
    assert result.changed["columns"].iloc[0] == "ceiling,normalized,ceiling_low"
    assert result.changed["score_a"].iloc[0] == result.changed["score_b"].iloc[0] == 0.3
    cli = CliRunner().invoke(main, ["diff", str(tmp_path / "a.db"), str(tmp_path / "b.db")])
    assert cli.exit_code == EXIT_DIFFERENT, cli.output
    assert "ceiling,normalized" in cli.output
    # a ceiling below the floor in one: its normalised value is missing there, which differs
    c = with_ceiling(tmp_path / "c.db", 0.894, 0.05)
    assert "normalized" in compare(a, c).changed["columns"].iloc[0]
