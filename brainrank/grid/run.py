"""``run_grid``: plan a grid and execute it, in one call (:func:`~brainrank.grid.plan.plan`
then :func:`~brainrank.grid.execute.execute`, exactly as ``brainrank run`` does)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from brainrank.core.cache import FeatureCache
from brainrank.core.errors import InputError
from brainrank.core.extraction import ExtractionConfig
from brainrank.core.registry import Registry
from brainrank.grid.execute import Dask, InProcess, RunSummary, execute
from brainrank.grid.plan import plan
from brainrank.results import ResultStore


def run_grid(
    *,
    registry: Registry,
    store: ResultStore,
    models: list[str],
    datasets: list[str],
    metrics: list[str],
    extraction: ExtractionConfig | None = None,
    cache: FeatureCache | None = None,
    data_dir: Any = None,
    model_options: dict[str, dict[str, Any]] | None = None,
    metric_params: dict[str, dict[str, Any]] | None = None,
    dataset_options: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
    workers: int = 1,
    scheduler: str | None = None,
    plugin_files: Sequence[str | Path] | None = None,
    recompute: bool = False,
    store_opener: Callable[[], ResultStore] | None = None,
    device: str | None = None,
) -> RunSummary:
    """Score every model on every dataset with every metric; write to ``store``.

    ``workers=1`` runs in this process, ``workers=N`` on a local Dask cluster of N worker
    processes, ``scheduler=ADDRESS`` on an existing Dask scheduler (``store_opener`` opens
    ``store`` again in a worker; default: ``store.opener()``). The other arguments are
    :func:`~brainrank.grid.plan.plan`'s.
    """
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}.")
    executor = Dask(workers, scheduler) if scheduler is not None or workers > 1 else InProcess()
    executor.check_sink(store_opener or store.opener())
    the_plan = plan(
        models,
        datasets,
        metrics,
        extraction,
        registry=registry,
        cache=cache,
        data_dir=data_dir,
        model_options=model_options,
        metric_params=metric_params,
        dataset_options=dataset_options,
        plugin_files=plugin_files,
        recompute=recompute,
        device=device,
        progress=progress,
    )
    return execute(the_plan, store, executor=executor, progress=progress,
                   sink_opener=store_opener)  # fmt: skip
