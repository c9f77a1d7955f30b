"""Progress bars of a grid run (tqdm): planning, extraction jobs and scored combinations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class JobProgress:
    """Callbacks a job reports through (in-process only; Dask jobs report on completion)."""

    def images(self, description: str, total: int) -> tuple[Any, Callable[[int], None] | None]:
        return None, None

    def scored(self, text: str) -> None:
        pass


class Bars:
    """Progress bars for planning, extraction ((model, stimulus set) jobs) and scoring
    ((model, dataset, metric) combinations). Off when ``enabled`` is false or the output is
    not a terminal."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bars: dict[str, Any] = {}
        if enabled:
            from tqdm.auto import tqdm

            self.tqdm = tqdm

    def open(self, name: str, total: int, unit: str, position: int) -> None:
        if self.enabled:
            self.bars[name] = self.tqdm(total=total, desc=name, unit=unit, position=position,
                                        disable=None, leave=True, dynamic_ncols=True)  # fmt: skip

    def update(self, name: str, n: int = 1, text: str | None = None) -> None:
        bar = self.bars.get(name)
        if bar is not None:
            if text:
                bar.set_postfix_str(text[:60], refresh=False)
            bar.update(n)

    def close(self, name: str | None = None) -> None:
        for key in [name] if name else list(self.bars):
            bar = self.bars.pop(key, None)
            if bar is not None:
                bar.close()


class InProcessProgress(JobProgress):
    def __init__(self, bars: Bars):
        self.bars = bars

    def images(self, description: str, total: int):
        if not self.bars.enabled:
            return None, None
        bar = self.bars.tqdm(desc=description[:50], total=total, unit="img", leave=False,
                             position=3, disable=None)  # fmt: skip
        return bar, bar.update

    def scored(self, text: str) -> None:
        self.bars.update("scoring", 1, text)
