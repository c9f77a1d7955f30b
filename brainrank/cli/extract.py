"""``brainrank extract``: precompute a model's features on datasets' stimuli into the cache."""

from __future__ import annotations

import time

import click

from brainrank.cli import main
from brainrank.cli._common import checked_device, layer_options, plugin_option, registry_for
from brainrank.core.errors import InputError, NotApplicableError


@main.command("extract")
@click.argument("model")
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    required=True,
    help="Dataset identifier or pattern whose stimuli to run (repeatable, comma-separated).",
)
@click.option(
    "--metrics",
    multiple=True,
    help="Extract what these metrics need (default: every metric that applies).",
)
@click.option("--weights", type=click.Path(dir_okay=False), help="Trained weights from a file.")
@click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Folder with the datasets' files."
)
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per forward pass.")
@click.option(
    "--memory-budget",
    type=click.FloatRange(min=0, min_open=True),
    help="Most GiB of activations held at once during extraction (more than 0).",
)
@click.option(
    "--device",
    metavar="auto|cpu|cuda[:N]|mps",
    help="Where the forward pass, projections and RDMs run (default: cpu, or "
    "BRAINRANK_DEVICE / device in config.toml). auto: the first GPU if there is one.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@layer_options
@plugin_option
@click.pass_context
def extract_command(ctx, model, datasets, metrics, weights, data_dir, batch_size, memory_budget,
                    device, quiet, layer_selection, aliases, plugin_files) -> None:  # fmt: skip
    """Extract the features of MODEL (every layer, or those --layers selects: projections
    and RDMs) on the stimuli of each dataset and store them in the feature cache, so that
    later runs with the same --layers read them.

    A second call with the same model, weights, preprocessing and stimuli finds everything
    in the cache and computes nothing.
    """
    from brainrank.core.cache import FeatureCache
    from brainrank.core.extraction import ExtractionConfig
    from brainrank.core.features import compute_features
    from brainrank.core.scores import FeatureRequest
    from brainrank.settings import settings

    conf = settings(
        data_dir=data_dir, memory_budget_gb=memory_budget, batch_size=batch_size, device=device
    )
    device = checked_device(device, conf.device)  # checked before any work starts
    registry = registry_for(ctx, plugin_files)
    spec = registry.get("model", model)
    dataset_ids = registry.select("dataset", datasets)
    metric_ids = registry.select("metric", metrics or None)
    if not metric_ids:
        raise InputError("no metric is registered: nothing tells which features to extract.")
    config = ExtractionConfig(
        batch_size=conf.batch_size,
        memory_budget=int(conf.memory_budget_gb * 2**30),
        device=device,
        layers=layer_selection,
        aliases=aliases,
    )
    cache = FeatureCache(conf.cache_dir / "features")
    started = time.perf_counter()
    built = spec.load(**({"weights": weights} if weights else {}))
    click.echo(
        f"{model}: built in {time.perf_counter() - started:.1f} s (device {device})", err=True
    )
    loaded_metrics = [registry.get("metric", m).load() for m in metric_ids]
    for dataset_id in dataset_ids:
        dataset = registry.get("dataset", dataset_id).load(data_dir=data_dir)
        request = FeatureRequest()
        for metric in loaded_metrics:
            try:
                metric.check_applicable(dataset)
            except NotApplicableError as exc:
                click.echo(f"skipped {metric.identifier} on {dataset_id}: {exc}", err=True)
                continue
            request = request | metric.feature_request(dataset)
        if not request.projection_dims and not request.rdm:
            click.echo(f"{dataset_id}: no metric applies, nothing to extract", err=True)
            continue
        bar = None
        if not quiet:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(dataset.stimuli), desc=dataset_id, unit="img", disable=None)
        started = time.perf_counter()
        try:
            features = compute_features(
                built,
                dataset.stimuli,
                request,
                config,
                cache,
                bar.update if bar is not None else None,
            )
        finally:
            if bar is not None:
                bar.close()
        source = "cache" if features.info.get("cache") == "hit" else "extracted"
        click.echo(
            f"{dataset_id}: {len(features)} layers x {len(features.stimulus_ids)} stimuli, "
            f"projections {sorted(request.projection_dims)}, RDMs {'yes' if request.rdm else 'no'}"
            f" ({source}, {time.perf_counter() - started:.1f} s, "
            f"{features.info.get('passes', '-')} passes); key {features.key[:16]}"
        )
