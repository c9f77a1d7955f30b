"""Progress that tells the truth (issue 24, item 3): the estimate weighs each piece of work
by its measured cost, the status names what runs now, the lines fit the terminal and leave
nothing behind. Timings are never asserted: the clocks here are fake, and the terminal test
reads what was drawn, not when."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from brainrank.core.scores import FeatureSet, LayerFeatures
from brainrank.grid import progress as progress_module
from brainrank.grid.progress import (
    DEFAULT_LAYERS,
    CostModel,
    Estimate,
    InProcessProgress,
    RunProgress,
    fit,
    watched,
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@dataclass(frozen=True)
class C:
    dataset: str
    metric: str
    metric_hash: str = "h"


def _features(n_layers: int) -> FeatureSet:
    layers = [LayerFeatures(f"l{i}", i, i / max(1, n_layers - 1), 4, (4,), {},
                            None) for i in range(n_layers)]  # fmt: skip
    return FeatureSet("m", ("a", "b"), layers)


def test_the_estimate_weighs_pieces_by_their_measured_cost():
    clock = FakeClock()
    costs = CostModel(history={("rsa", "d"): 7.0})
    estimate = Estimate(costs, now=clock)
    estimate.add_job("big", "s1", 100, [C("d", "rsa"), C("d", "srp-ridge")])
    estimate.add_job("small", "s1", 100, [C("d", "rsa"), C("d", "srp-ridge")])
    # before anything is measured: defaults, and the leaderboard's earlier seconds for rsa
    assert estimate.cost(estimate.items[("s", "big", "d", "rsa", "h")]) == 7.0
    default = progress_module.DEFAULT_LAYER_SECONDS * DEFAULT_LAYERS
    assert estimate.cost(estimate.items[("s", "big", "d", "srp-ridge", "h")]) == default
    # the big model: 100 images in 50 s (0.5 s each), 40 layers; srp-ridge 20 s (0.5 s/layer)
    costs.measured_extraction("big", 100, 40, 50.0)
    estimate.finish(("x", "big", "s1"), 50.0)
    costs.measured_scoring("srp-ridge", "d", "big", 20.0)
    estimate.finish(("s", "big", "d", "srp-ridge", "h"), 20.0)
    costs.measured_scoring("rsa", "d", "big", 4.0)  # 0.1 s per layer
    estimate.finish(("s", "big", "d", "rsa", "h"), 4.0)
    # the small model is not extracted yet: the measured models' seconds per image and
    # layer count stand in for it
    srp, rsa = ("s", "small", "d", "srp-ridge", "h"), ("s", "small", "d", "rsa", "h")
    assert estimate.cost(estimate.items[("x", "small", "s1")]) == pytest.approx(50.0)
    assert estimate.cost(estimate.items[srp]) == pytest.approx(20.0)
    # once its features are there (4 layers, 10 s), its scorings scale with its layers
    costs.measured_extraction("small", 100, 4, 10.0)
    estimate.finish(("x", "small", "s1"), 10.0)
    assert estimate.cost(estimate.items[srp]) == pytest.approx(2.0)
    assert estimate.cost(estimate.items[rsa]) == pytest.approx(0.4)
    assert estimate.done_work == pytest.approx(84.0)
    assert estimate.left_work == pytest.approx(2.4)
    assert estimate.done_fraction() == pytest.approx(84.0 / 86.4)
    # the time left is the work left at the pace measured so far (here 2 s of wall per
    # second of measured work: overheads count)
    clock.t += 168.0
    assert estimate.seconds_left() == pytest.approx(2.4 * 2)
    assert estimate.count("x") == (2, 2) and estimate.count("s") == (2, 4)


def test_the_piece_in_progress_counts_by_its_fraction():
    clock = FakeClock()
    estimate = Estimate(CostModel(), now=clock)
    estimate.add_job("m", "s", 200, [C("d", "rsa")])
    extraction = ("x", "m", "s")
    whole = estimate.cost(estimate.items[extraction])
    scoring = estimate.cost(estimate.items[("s", "m", "d", "rsa", "h")])
    estimate.begin(extraction)
    estimate.fraction = 0.25
    assert estimate.done_work == pytest.approx(0.25 * whole)
    assert estimate.done_work + estimate.left_work == pytest.approx(whole + scoring)
    # a piece that takes longer than estimated counts its seconds as done, none as left:
    # the time left is then the rest of the run's estimate, not inflated by the overrun
    clock.t += 10 * whole
    assert estimate.done_work == pytest.approx(10 * whole)
    assert estimate.left_work == pytest.approx(scoring)
    assert estimate.seconds_left() == pytest.approx(scoring)
    assert np.isnan(Estimate(CostModel(), now=clock).seconds_left())  # nothing measured


def test_the_status_follows_a_job_and_names_the_layer(monkeypatch):
    clock = FakeClock()
    run = RunProgress(False, Estimate(CostModel(), now=clock))
    said: list[str] = []
    monkeypatch.setattr(run, "status", lambda text, restart=True: said.append(text))
    hooks = InProcessProgress(run)
    combo = C("d", "srp-ridge")
    keys = run.estimate.add_job("m", "s", 20, [combo])
    hooks.start_job("m", "s", 20, keys)
    hooks.building("m")
    _, callback = hooks.images("m on stim", 20)
    callback.plan(layers=3, passes=2, images=20)
    callback(10)
    callback.again(20, 1)
    assert said[-1] == "extracting m on stim: 3 layers, pass 2/2, 20/20 images"
    assert run.estimate.fraction == pytest.approx(1.0)
    clock.t += 5
    hooks.features("m", _features(3))
    assert run.estimate.items[("x", "m", "s")].seconds == 5
    seen = [layer.name for layer in hooks.scoring("m", combo, _features(3))]
    assert seen == ["l0", "l1", "l2"]
    assert said[-1] == "scoring m × d × srp-ridge: layer 3/3 l2"
    clock.t += 2
    hooks.combo_done("m", combo, "scored")
    hooks.end_job(None, "m on stim")
    assert run.estimate.count("s") == (1, 1)
    assert run.estimate.costs.layer_seconds[("srp-ridge", "d")] == [pytest.approx(2 / 3)]


def test_watched_features_share_the_arrays_and_report_every_pass():
    features = _features(4)
    seen = []
    view = watched(features, lambda i, n, name: seen.append((i, n, name)))
    assert isinstance(view, FeatureSet) and view.layers is features.layers
    assert [layer for layer in view] == features.layers
    assert list(view) == features.layers  # a second pass is reported too
    assert seen == [(i, 4, f"l{i}") for i in range(4)] * 2
    assert view["l2"] is features["l2"] and len(view) == 4


def test_text_is_cut_to_the_width():
    assert fit("abcdef", 4) == "abc…" and fit("abc", 4) == "abc" and fit("abc", 0) == ""
    head, tail = progress_module._fit_around_bar("run  50% ", " x" * 60, 80)
    assert len(head) + len(tail) + 10 <= 79


# --------------------------------------------------------------------------- a terminal

ESCAPE = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


class Screen:
    """A minimal terminal: printable characters, CR, LF, cursor up/down/left/right/column,
    erase in line. Writing past the last column is recorded (a line that did not fit)."""

    def __init__(self, columns: int, rows: int = 200):
        self.columns = columns
        self.lines = [[" "] * columns for _ in range(rows)]
        self.row = self.col = 0
        self.overflow: list[str] = []

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            match = ESCAPE.match(text, i)
            if match:
                self._csi(match.group(1), match.group(2))
                i = match.end()
                continue
            char = text[i]
            i += 1
            if char == "\r":
                self.col = 0
            elif char == "\n":
                self.row += 1
                self.col = 0  # the pty's output processing maps LF to CR LF
            elif char == "\x1b":
                continue
            elif char >= " ":
                if self.col >= self.columns:
                    self.overflow.append("".join(self.lines[self.row]).rstrip() + char)
                    self.row += 1
                    self.col = 0
                self.lines[self.row][self.col] = char
                self.col += 1

    def _csi(self, args: str, code: str) -> None:
        n = int(args) if args.isdigit() else 1
        if code == "A":
            self.row = max(0, self.row - n)
        elif code == "B":
            self.row += n
        elif code == "C":
            self.col = min(self.columns, self.col + n)
        elif code == "D":
            self.col = max(0, self.col - n)
        elif code == "G":
            self.col = max(0, n - 1)
        elif code == "K":
            mode = int(args) if args.isdigit() else 0
            start, stop = {0: (self.col, self.columns), 1: (0, self.col + 1),
                           2: (0, self.columns)}[mode]  # fmt: skip
            for c in range(start, stop):
                self.lines[self.row][c] = " "

    def text(self) -> list[str]:
        out = ["".join(line).rstrip() for line in self.lines]
        while out and not out[-1]:
            out.pop()
        return out


def _run_in_a_terminal(columns: int, tmp_path, tiny_plugin_path) -> tuple[str, int]:
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(BRAINRANK_HOME=str(tmp_path / "home"), TERM="xterm")
    proc = subprocess.Popen(
        [sys.executable, "-m", "brainrank", "--plugin", str(tiny_plugin_path), "run", "--models",
         "tiny/net,baseline/pixels", "--datasets", "tiny/data", "--metrics", "rsa"],
        stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 300)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed its side
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace"), proc.wait(timeout=60)


@pytest.mark.parametrize("columns", [80, 120])
def test_a_run_on_a_terminal_fits_it_and_leaves_a_clean_summary(columns, tmp_path,
                                                                tiny_plugin_path):  # fmt: skip
    raw, status = _run_in_a_terminal(columns, tmp_path, tiny_plugin_path)
    assert status == 0, raw[-3000:]
    screen = Screen(columns)
    screen.feed(raw)
    # only a path longer than the terminal is wider than it (printed whole, never cut)
    too_wide = [line for line in screen.overflow if str(tmp_path)[:12] not in line]
    assert not too_wide, too_wide[:3]
    lines = screen.text()
    # what ran was named while it ran
    assert "now: building dataset tiny/data" in raw
    assert re.search(r"now: extracting tiny/net on tiny: \d+ layers", raw)
    assert re.search(r"now: scoring tiny/net × tiny/data × rsa", raw)
    assert re.search(r"run +\d+%", raw)
    # the bars are gone: the summary starts its lines, nothing of a bar is left over
    summary = [i for i, line in enumerate(lines) if line.startswith("run 1 ok in ")]
    assert len(summary) == 1, lines
    start = summary[0]
    assert lines[start + 1].startswith("  written: ") and "of 2 combinations" in lines[start + 1]
    assert lines[start + 2] == "  skipped: none (none was stored before)"
    assert lines[start + 3] == "  failed: 0"
    assert not any(("now:" in line or "█" in line) for line in lines), lines
    assert lines[start + 4].startswith("  leaderboard: ")
