"""What a run shows while it works (tqdm), and the hooks the grid calls to tell it.

On a terminal a run shows two lines, redrawn in place and removed when it ends:

- **the whole run**: one bar over the estimated work, ``jobs`` and ``combinations`` done,
  elapsed time and the time left. The estimate weighs each piece of work by its measured
  cost (:class:`CostModel`): extraction per image of each model, scoring per layer of each
  (metric, dataset), both measured as the run goes, before that from the leaderboard's
  earlier combinations of the same metric and dataset, before that from a default. The time
  left is the estimated work left at the pace measured so far (so overheads, and Dask
  workers working side by side, are accounted for);
- **now**: what is running at this moment, named before it starts: the dataset being built
  while planning; the model being built; the model being extracted, with its layer count,
  its pass and the images done; the combination being scored, with the layer the metric is
  at; with the seconds it has taken so far (the line is redrawn twice a second, so a long
  step is seen to be alive).

Both lines are cut to the terminal's width. Off a terminal (a log file, a batch job) there
are no bars: one line per planning step and per finished job instead. ``--quiet`` shows
nothing. The run's summary (scores written, combinations skipped as stored, failures, time)
is printed by the caller once the lines are gone (:func:`summary_lines`).

The grid calls the hooks of :class:`JobProgress` at the right moments; it never waits for
them and they never change what is computed. A job on a Dask worker reports when it ends.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from brainrank.core.scores import FeatureSet

log = logging.getLogger(__name__)

#: seconds per image of extraction before any is measured (alexnet-sized, CPU)
DEFAULT_IMAGE_SECONDS = 0.05
#: seconds per layer of scoring one combination before any is measured
DEFAULT_LAYER_SECONDS = 0.25
#: layers of a model whose features are not there yet, before any model's are known
DEFAULT_LAYERS = 20
#: seconds between two redraws of the lines (elapsed time, time left)
TICK = 0.5


# --------------------------------------------------------------------------- text


def terminal_width(stream: TextIO | None = None, fallback: int = 80) -> int:
    """Columns of the terminal ``stream`` writes to (``COLUMNS`` wins; ``fallback`` when
    it is no terminal)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    stream = stream or sys.stderr
    try:
        return os.get_terminal_size(stream.fileno()).columns or fallback
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size((fallback, 24)).columns


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in ``…`` when cut."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``, ``2 h 07 min``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def clock(seconds: float) -> str:
    """``0:45``, ``12:05``, ``1:02:03`` (compact, for the bar)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# --------------------------------------------------------------------------- costs


@dataclass
class CostModel:
    """Estimated seconds of each piece of a run, from what was measured.

    - **extraction** of a model on a stimulus set: the model's measured seconds per image,
      else the median of the measured models' seconds per image, else
      :data:`DEFAULT_IMAGE_SECONDS`; features read from the cache cost what was measured
      for them;
    - **scoring** of a (metric, dataset) combination: the seconds per layer measured for
      that (metric, dataset) in this run times the model's layer count, else the median
      seconds the leaderboard recorded for it earlier (``history``), else the seconds per
      layer measured for the metric on other datasets, else :data:`DEFAULT_LAYER_SECONDS`
      per layer. A model whose features are not there yet counts the median layer count of
      the models seen (:data:`DEFAULT_LAYERS` before any).
    """

    history: dict[tuple[str, str], float] = field(default_factory=dict)
    image_seconds: dict[str, float] = field(default_factory=dict)
    layer_seconds: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    layers: dict[str, int] = field(default_factory=dict)

    def model_layers(self, model: str) -> int:
        if model in self.layers:
            return self.layers[model]
        if self.layers:
            return int(_median(list(self.layers.values())))
        return DEFAULT_LAYERS

    def extraction(self, model: str, n_images: int) -> float:
        if model in self.image_seconds:
            rate = self.image_seconds[model]
        elif self.image_seconds:
            rate = _median(list(self.image_seconds.values()))
        else:
            rate = DEFAULT_IMAGE_SECONDS
        return rate * max(1, n_images)

    def scoring(self, metric: str, dataset: str, model: str) -> float:
        n_layers = self.model_layers(model)
        measured = self.layer_seconds.get((metric, dataset))
        if measured:
            return _median(measured) * n_layers
        if (metric, dataset) in self.history:
            return self.history[(metric, dataset)]
        same_metric = [s for (m, _), values in self.layer_seconds.items() if m == metric
                       for s in values]  # fmt: skip
        rate = _median(same_metric) if same_metric else DEFAULT_LAYER_SECONDS
        return rate * n_layers

    def measured_extraction(self, model: str, n_images: int, n_layers: int,
                            seconds: float) -> None:  # fmt: skip
        self.layers[model] = max(1, n_layers)
        self.image_seconds[model] = max(0.0, seconds) / max(1, n_images)

    def measured_scoring(self, metric: str, dataset: str, model: str, seconds: float) -> None:
        per_layer = max(0.0, seconds) / self.model_layers(model)
        self.layer_seconds.setdefault((metric, dataset), []).append(per_layer)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass
class _Item:
    """A piece of the run: an extraction (``metric`` None) or a scoring."""

    model: str
    n_images: int
    dataset: str | None = None
    metric: str | None = None
    done: bool = False
    seconds: float = 0.0  # measured when done


class Estimate:
    """The run's work: what is done (measured seconds) and what is left (estimated), and
    from both the fraction done and the time left. ``now`` is the clock (tests pass
    theirs)."""

    def __init__(self, costs: CostModel | None = None, now: Callable[[], float] = time.monotonic):
        self.costs = costs or CostModel()
        self.now = now
        self.started = now()
        self.items: dict[tuple, _Item] = {}
        #: the item in progress, the fraction of it done and when it began
        self.current: tuple | None = None
        self.fraction = 0.0
        self.current_since = self.started
        #: held while the pieces or the costs change and while they are read (the display
        #: redraws from another thread)
        self.lock = threading.RLock()

    def begin(self, key: tuple) -> None:
        """The piece ``key`` starts now."""
        with self.lock:
            self.current, self.fraction, self.current_since = key, 0.0, self.now()

    def _current_done(self) -> tuple[float, float]:
        """(work done, work left) of the piece in progress: its estimated cost times the
        fraction done, or the seconds it has taken when it takes longer than estimated
        (then nothing of it is counted as left)."""
        current = self.items.get(self.current) if self.current else None
        if current is None or current.done:
            return 0.0, 0.0
        cost = self.cost(current)
        done = max(cost * min(1.0, max(0.0, self.fraction)), self.now() - self.current_since)
        return done, max(0.0, cost - done)

    def add_job(
        self, model: str, stimuli: str, n_images: int, combos: Sequence[Any]
    ) -> list[tuple]:
        """A job: one extraction (of ``model`` on the stimuli whose hash is ``stimuli``) and
        its combinations (each with ``dataset``, ``metric``, ``metric_hash``); returns the
        keys of its pieces."""
        keys = [extraction_key(model, stimuli)]
        with self.lock:
            self.items[keys[0]] = _Item(model, n_images)
            for combo in combos:
                key = scoring_key(model, combo)
                self.items[key] = _Item(model, n_images, combo.dataset, combo.metric)
                keys.append(key)
        return keys

    def cost(self, item: _Item) -> float:
        if item.done:
            return item.seconds
        if item.metric is None:
            return self.costs.extraction(item.model, item.n_images)
        return self.costs.scoring(item.metric, str(item.dataset), item.model)

    def finish(self, key: tuple, seconds: float) -> None:
        with self.lock:
            item = self.items.get(key)
            if item is None:
                return
            item.done, item.seconds = True, max(0.0, seconds)
            if self.current == key:
                self.current, self.fraction = None, 0.0

    def drop(self, key: tuple) -> None:
        """A piece that will not run (its job failed first, or another run did it)."""
        with self.lock:
            item = self.items.get(key)
            if item is not None and not item.done:
                item.done, item.seconds = True, 0.0

    @property
    def done_work(self) -> float:
        with self.lock:
            done = sum(i.seconds for i in self.items.values() if i.done)
            return done + self._current_done()[0]

    @property
    def left_work(self) -> float:
        with self.lock:
            pending = [i for k, i in self.items.items() if not i.done and k != self.current]
            return sum(self.cost(i) for i in pending) + self._current_done()[1]

    def done_fraction(self) -> float:
        with self.lock:
            done, left = self.done_work, self.left_work
        return done / (done + left) if done + left > 0 else 1.0

    def seconds_left(self) -> float:
        """Estimated work left at the pace measured so far (wall seconds per second of
        measured work); NaN before any work is measured."""
        with self.lock:
            done, left = self.done_work, self.left_work
        elapsed = self.now() - self.started
        if done <= 0 or elapsed <= 0:
            return float("nan")
        return left * elapsed / done

    def count(self, kind: str) -> tuple[int, int]:
        """(done, total) of the extractions (``"x"``) or the scorings (``"s"``)."""
        with self.lock:
            chosen = [i for k, i in self.items.items() if k[0] == kind]
            return sum(i.done for i in chosen), len(chosen)


def extraction_key(model: str, stimuli: str) -> tuple:
    return ("x", model, stimuli)


def scoring_key(model: str, combo: Any) -> tuple:
    return ("s", model, combo.dataset, combo.metric, combo.metric_hash)


# --------------------------------------------------------------------------- hooks


class JobProgress:
    """The hooks a job calls (no-ops here; :class:`InProcessProgress` shows them). A Dask
    job has no progress of its own: the run reports it when it ends."""

    def building(self, model: str) -> None:
        """The model is being built (or its record read)."""

    def images(self, description: str, total: int) -> tuple[Any, Callable[[int], None] | None]:
        """Extraction starts; returns ``(bar, callback)``: ``callback(n_images)`` after each
        batch (its optional ``plan(layers=, passes=, images=)`` and ``again(n)`` are told
        the layer count, the passes and the images of later passes)."""
        return None, None

    def features(self, model: str, features: FeatureSet) -> None:
        """The features are there (extracted or read from the cache)."""

    def scoring(self, model: str, combo: Any, features: FeatureSet) -> FeatureSet:
        """The scoring of ``combo`` (a :class:`~brainrank.grid.jobs.Combo`) starts; returns
        the features the metric reads (the same, possibly watched so that the layer it is
        at can be shown)."""
        return features

    def combo_done(self, model: str, combo: Any, outcome: str) -> None:
        """``outcome``: ``scored``, ``failed`` or ``elsewhere`` (stored by another run)."""

    def scored(self, text: str) -> None:
        """The former hook (a line of text per finished combination); kept for callers
        written against it."""


class _Watched(FeatureSet):
    """A feature set that says which layer a metric is at while it iterates over them."""

    _on_layer: Callable[[int, int, str], None]

    def __iter__(self) -> Iterator[Any]:
        total = len(self.layers)
        for index, layer in enumerate(self.layers):
            self._on_layer(index, total, layer.name)
            yield layer


def watched(features: FeatureSet, on_layer: Callable[[int, int, str], None]) -> FeatureSet:
    """``features`` (the same arrays, nothing copied) whose iteration calls
    ``on_layer(index, n_layers, name)`` before each layer."""
    import copy

    out = copy.copy(features)
    out.__class__ = _Watched
    out._on_layer = on_layer  # type: ignore[attr-defined]
    return out


# --------------------------------------------------------------------------- display


class _Display:
    """The two lines on a terminal (tqdm), or plain lines off one, or nothing."""

    def __init__(self, enabled: bool, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and _isatty(self.stream)
        self.lock = threading.RLock()
        self.bars: dict[str, Any] = {}

    def open(self) -> None:
        if not self.tty or self.bars:
            return
        from tqdm.auto import tqdm

        common = {"file": self.stream, "leave": False, "dynamic_ncols": True,
                  "disable": False}  # fmt: skip
        self.bars["run"] = tqdm(total=1000, position=0, bar_format="{desc}{bar}", **common)
        self.bars["now"] = tqdm(total=0, position=1, bar_format="{desc}", **common)

    def show(self, run: tuple[str, str] | None, now: str | None) -> None:
        """Redraw: ``run`` is (text before the bar, text after it) with the fraction in
        the bar, ``now`` the status line."""
        if not self.tty:
            return
        with self.lock:
            self.open()
            width = terminal_width(self.stream)
            if run is not None:
                fraction, head, tail = run
                bar = self.bars["run"]
                head, tail = _fit_around_bar(head, tail, width)
                bar.set_description_str(head, refresh=False)
                # the text after the bar goes into the format (tqdm's postfix adds ", ")
                bar.bar_format = "{desc}{bar}" + tail.replace("{", "{{").replace("}", "}}")
                bar.n = round(1000 * min(1.0, max(0.0, fraction)))
                bar.refresh()
            if now is not None:
                self.bars["now"].set_description_str(fit(now, width - 1), refresh=True)

    def line(self, text: str) -> None:
        """A plain line (off a terminal only)."""
        if self.enabled and not self.tty:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        with self.lock:
            for name in ("now", "run"):  # inner first, so the cursor ends where it began
                bar = self.bars.pop(name, None)
                if bar is not None:
                    bar.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _fit_around_bar(head: str, tail: str, width: int, least: int = 10) -> tuple[str, str]:
    """``head`` and ``tail`` cut so that a bar of at least ``least`` characters fits
    between them on ``width`` columns (tail first, then head)."""
    room = width - 1 - least
    if len(head) + len(tail) > room:
        tail = fit(tail, max(0, room - len(head)))
    if len(head) + len(tail) > room:
        head = fit(head, max(0, room - len(tail)))
    return head, tail


class _Ticker:
    """Calls ``redraw`` every :data:`TICK` seconds in a daemon thread until stopped."""

    def __init__(self, redraw: Callable[[], None]):
        self.redraw = redraw
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="brainrank-progress", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(TICK):
            try:
                self.redraw()
            except Exception as exc:  # a display error never stops a run
                log.debug("progress redraw failed: %s", exc)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=2)


class PlanningProgress:
    """Planning's progress: what is being loaded now (a metric, a dataset being built), the
    step and the seconds it has taken."""

    def __init__(self, enabled: bool, total: int, stream: TextIO | None = None,
                 now: Callable[[], float] = time.monotonic):  # fmt: skip
        self.display = _Display(enabled, stream)
        self.total, self.now = total, now
        self.number = 0
        self.text = ""
        self.since = now()
        self.ticker = _Ticker(self._redraw) if self.display.tty else None
        if self.ticker is not None:
            self.ticker.start()

    def step(self, text: str) -> None:
        """A step starts (``text``: ``building dataset simulated``...)."""
        self.number += 1
        self.text, self.since = text, self.now()
        self.display.line(f"planning: {text} ({self.number}/{self.total})")
        self._redraw()

    def _redraw(self) -> None:
        if not self.text:
            return
        fraction = (self.number - 1) / self.total if self.total else 0.0
        self.display.show(
            (fraction, f"planning: step {self.number} of {self.total} ", ""),
            f"now: {self.text} · {duration(self.now() - self.since)}",
        )

    def close(self) -> None:
        if self.ticker is not None:
            self.ticker.close()
        self.display.close()


class RunProgress:
    """The run's progress (see the module docstring): :class:`Estimate` over its jobs, the
    two lines, the status of what runs now."""

    def __init__(self, enabled: bool, estimate: Estimate | None = None,
                 stream: TextIO | None = None):  # fmt: skip
        self.display = _Display(enabled, stream)
        self.estimate = estimate or Estimate()
        self.now_text = "starting"
        self.since = self.estimate.now()
        self.executor = ""
        self.ticker: _Ticker | None = None

    def start(self, executor: str = "") -> None:
        self.executor = executor
        self.estimate.started = self.estimate.now()
        if self.display.tty and self.ticker is None:
            self.ticker = _Ticker(self.redraw)
            self.ticker.start()
        self.redraw()

    def status(self, text: str, *, restart: bool = True) -> None:
        """What runs now (the clock of the step restarts unless ``restart`` is false)."""
        with self.display.lock:
            self.now_text = text
            if restart:
                self.since = self.estimate.now()
        self.redraw()

    def redraw(self) -> None:
        estimate = self.estimate
        with self.display.lock:
            fraction = estimate.done_fraction()
            jobs_done, jobs = estimate.count("x")
            combos_done, combos = estimate.count("s")
            elapsed = estimate.now() - estimate.started
            left = estimate.seconds_left()
            width = terminal_width(self.display.stream)
            eta = "estimating" if math.isnan(left) else clock(left)
            if width >= 100:
                tail = (f" {jobs_done}/{jobs} jobs, {combos_done}/{combos} combinations · "
                        f"{clock(elapsed)} elapsed · {eta} left")  # fmt: skip
            else:
                tail = f" {combos_done}/{combos} combinations · {clock(elapsed)} · {eta} left"
            head = f"run {round(100 * fraction):3d}% "
            now = f"now: {self.now_text} · {duration(estimate.now() - self.since)}"
            self.display.show((fraction, head, tail), now)

    def close(self) -> None:
        if self.ticker is not None:
            self.ticker.close()
            self.ticker = None
        self.display.close()


class InProcessProgress(JobProgress):
    """The hooks of jobs run in this process: they keep :class:`RunProgress` told. The
    executor calls :meth:`start_job` and :meth:`end_job` around each job."""

    def __init__(self, run: RunProgress):
        self.run = run
        self.job: tuple[str, str, int] | None = None  # model, stimuli hash, images
        self.keys: list[tuple] = []
        self.job_started = 0.0
        self.step_started = 0.0
        self.layers: int | None = None
        self.passes = 1
        self.pass_number = 1
        self.images_done = 0
        self.cache = False

    @property
    def estimate(self) -> Estimate:
        return self.run.estimate

    def start_job(self, model: str, stimuli: str, n_images: int, keys: list[tuple]) -> None:
        self.job, self.keys = (model, stimuli, n_images), keys
        self.job_started = self.step_started = self.estimate.now()
        self.layers, self.passes, self.pass_number, self.images_done = None, 1, 1, 0
        self.cache = False

    def building(self, model: str) -> None:
        self.run.status(f"loading model {model}")

    def images(self, description: str, total: int):
        self.step_started = self.estimate.now()
        if self.job is not None:
            self.estimate.begin(extraction_key(self.job[0], self.job[1]))
        self.images_done, self.pass_number = 0, 1
        self.run.status(f"extracting {description}: {total} images")
        return None, _ImageCallback(self, description, total)

    def _extraction_status(self, description: str, total: int) -> None:
        layers = f"{self.layers} layers, " if self.layers else ""
        passes = f"pass {self.pass_number}/{self.passes}, " if self.passes > 1 else ""
        self.run.status(f"extracting {description}: {layers}{passes}{self.images_done}/{total} "
                        "images", restart=False)  # fmt: skip

    def features(self, model: str, features: FeatureSet) -> None:
        if self.job is None:
            return
        seconds = self.estimate.now() - self.step_started
        self.layers = len(features)
        with self.estimate.lock:
            self.estimate.costs.measured_extraction(model, self.job[2], len(features), seconds)
            self.estimate.finish(extraction_key(model, self.job[1]), seconds)
        self.cache = features.info.get("cache") == "hit"

    def scoring(self, model: str, combo: Any, features: FeatureSet) -> FeatureSet:
        key = scoring_key(model, combo)
        self.step_started = self.estimate.now()
        self.estimate.begin(key)
        label = f"scoring {model} × {combo.dataset} × {combo.metric}"
        self.run.status(label)
        rounds = [0]

        def on_layer(index: int, total: int, name: str) -> None:
            if index == 0:
                rounds[0] += 1
            if rounds[0] == 1:
                self.estimate.fraction = index / max(1, total)
            again = f" (pass {rounds[0]} over the layers)" if rounds[0] > 1 else ""
            self.run.status(f"{label}: layer {index + 1}/{total} {name}{again}", restart=False)

        return watched(features, on_layer)

    def combo_done(self, model: str, combo: Any, outcome: str) -> None:
        key = scoring_key(model, combo)
        if outcome == "scored":
            seconds = self.estimate.now() - self.step_started
            with self.estimate.lock:
                self.estimate.costs.measured_scoring(combo.metric, combo.dataset, model, seconds)
                self.estimate.finish(key, seconds)
        else:
            self.estimate.drop(key)
        self.run.redraw()

    def end_job(self, result: Any, label: str) -> None:
        """The job is over: what of it did not run counts as done (nothing of it is left),
        and off a terminal one line says what it did."""
        for key in self.keys:
            self.estimate.drop(key)
        if self.job is None:
            return
        seconds = self.estimate.now() - self.job_started
        layers = f"{self.layers} layers " if self.layers else ""
        source = "features from the cache" if self.cache else f"{layers}extracted"
        failed = len(getattr(result, "failures", None) or [])
        done, total = self.estimate.count("x")
        self.run.display.line(
            f"[{done}/{total}] {label}: {source}; {getattr(result, 'n_scored', 0)} combinations "
            "scored" + (f", {failed} failed" if failed else "") + f" in {duration(seconds)}"
        )
        self.job, self.keys = None, []


class _ImageCallback:
    """The extraction's progress callback: images done (``__call__``), the layer count and
    passes (``plan``) and the images of later passes (``again``)."""

    def __init__(self, owner: InProcessProgress, description: str, total: int):
        self.owner, self.description, self.total = owner, description, total

    def plan(self, layers: int, passes: int = 1, images: int | None = None) -> None:
        self.owner.layers, self.owner.passes = layers, max(1, passes)
        self._update()

    def __call__(self, n: int) -> None:
        self.owner.images_done += n
        self._update()

    def again(self, n: int, number: int | None = None) -> None:
        """Images of a later pass (``number``: the pass, from 0)."""
        owner = self.owner
        if number is not None and number + 1 != owner.pass_number:
            owner.pass_number, owner.images_done = number + 1, 0
        owner.images_done += n
        self._update()

    def _update(self) -> None:
        owner = self.owner
        done = (owner.pass_number - 1) * self.total + owner.images_done
        owner.estimate.fraction = done / max(1, self.total * owner.passes)
        owner._extraction_status(self.description, self.total)


# --------------------------------------------------------------------------- the summary


def summary_lines(summary: Any, where: str | None = None) -> list[str]:
    """The run's summary: what was written, skipped as stored and failed, and its time
    (``summary``: a :class:`~brainrank.grid.execute.RunSummary`)."""
    failures = [f for f in summary.failures if f.stage != "plugin"]
    lines = [f"run {summary.run_id} {summary.status} in {duration(summary.seconds)}"]
    written = (f"  written: {summary.n_scores} scores of {summary.n_scored} combinations"
               + (f" (and {summary.n_elsewhere} stored meanwhile by another run)"
                  if summary.n_elsewhere else ""))  # fmt: skip
    lines.append(written)
    lines.append(f"  skipped as already stored: {summary.n_stored} combinations (--recompute "
                 "scores them again)" if summary.n_stored else "  skipped: none (none was stored "
                 "before)")  # fmt: skip
    lines.append(f"  failed: {len(failures)}"
                 + (f" (brainrank failures --run {summary.run_id} --traceback)"
                    if failures else ""))  # fmt: skip
    if where:
        lines.append(f"  leaderboard: {where}")
    return lines
