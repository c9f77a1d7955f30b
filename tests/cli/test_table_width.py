"""Tables fit the terminal (issue 24, item 3): `brainrank metrics` was ~500 columns wide and
configuration names reach 80 characters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.cli._table import render

LONG = "nsd/shared1000/srp-ridge:nsd(alphas=[0.1,1,10,100,1000], standardize=train, cv=4)"


@pytest.mark.parametrize("width", [80, 120])
def test_brainrank_metrics_fits_the_terminal(width, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    result = CliRunner().invoke(main, ["metrics"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) > 10 and max(map(len, lines)) <= width
    assert "srp-ridge:mouse" in result.output and "…" in result.output  # text cut, not lost
    # piped (no COLUMNS, no terminal): printed whole
    monkeypatch.delenv("COLUMNS")
    whole = CliRunner().invoke(main, ["metrics"]).output
    assert max(map(len, whole.splitlines())) > 200 and "…" not in whole


def test_a_wide_ranking_is_split_into_blocks_each_led_by_rank_and_model():
    frame = pd.DataFrame({
        "rank": [1, 2, 3], "model": ["torchvision/alexnet:random", "m/b", "m/c"],
        "mean": [0.5, 0.4, np.nan], **{f"{LONG}#{i}": [0.1 * i, 0.2, 0.3] for i in range(6)},
    })  # fmt: skip
    text = render(frame, 80)
    assert max(map(len, text.splitlines())) <= 80
    blocks = text.split("\n\n")
    assert len(blocks) > 1
    for block in blocks:
        head = block.splitlines()[:3]  # headers take at most three lines
        assert any(line.startswith("rank  model") for line in head), block
        assert all(m in block for m in ("torchvision/alexnet:random", "m/b", "m/c"))
    # a long header is wrapped over three lines, its middle cut: start and end both show,
    # so configurations that differ at the end are told apart
    head = blocks[0].splitlines()[:3]
    assert any("nsd/shared1000/" in line for line in head) and any("…" in line for line in head)
    assert any("cv=4)#0" in line for line in head)
    ends = {line.split()[-1] for block in blocks for line in block.splitlines()[2:3]}
    assert {"cv=4)#0", "cv=4)#5"} <= ends
    assert " -" in text  # NaN shown as '-'
    # with room, one block, nothing cut
    assert "\n\n" not in render(frame[["rank", "model", "mean"]], 80)
    assert render(frame, None).count("\n\n") == 0


def test_the_check_fails_when_a_line_is_too_wide(monkeypatch):
    """The width assertion above can fail: render without cutting gives lines wider than 80."""
    from brainrank.cli import _table

    monkeypatch.setattr(_table, "_blocks", lambda columns, key, sizes, width: [columns])
    frame = pd.DataFrame({"model": ["m"], **{f"{LONG}#{i}": [0.1] for i in range(6)}})
    assert max(map(len, render(frame, 80).splitlines())) > 80
