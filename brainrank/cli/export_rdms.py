"""``brainrank export rdms``: a dataset's brain RDMs, or a model's layer RDMs on its stimuli,
as rsatoolbox RDMs (its HDF5 file: ``rsatoolbox.rdm.load_rdm(FILE)``)."""

from __future__ import annotations

import click

from brainrank.cli._common import checked_device, plugin_option, registry_for
from brainrank.cli.export import export_group
from brainrank.core.rsa import CROSSNOBIS_NOISE, RSA_DISTANCES


@export_group.command("rdms")
@click.argument("dataset")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option("--model", help="Export this model's layer RDMs instead of the brain RDMs.")
@click.option("--layers", help="Layers of the model (comma-separated; default: every layer).")
@click.option(
    "--distance",
    type=click.Choice(RSA_DISTANCES),
    default="correlation",
    show_default=True,
    help="The RDM distance, as the rsa metric's (model RDMs: correlation, else squared "
    "Euclidean per channel).",
)
@click.option("--noise", type=click.Choice(CROSSNOBIS_NOISE), help="Crossnobis noise precision.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rsatoolbox"]),
    default="rsatoolbox",
    show_default=True,
    help="rsatoolbox: its HDF5 RDMs file (rsatoolbox.rdm.load_rdm reads it).",
)
@click.option("--weights", type=click.Path(dir_okay=False), help="Trained weights of --model.")
@click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Folder with the datasets' files."
)
@click.option("--device", metavar="auto|cpu|cuda[:N]|mps", help="Where extraction runs.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@plugin_option
@click.pass_context
def export_rdms_command(ctx, dataset, out, model, layers, distance, noise, fmt, weights,
                        data_dir, device, overwrite, plugin_files) -> None:  # fmt: skip
    """Write the RDMs the rsa metric compares, as rsatoolbox RDMs: the brain RDM of every
    (subject, region) of DATASET (descriptors subject, region, n_neuroids), or with --model
    every layer's RDM of MODEL on DATASET's stimuli (descriptors model, layer, layer_index,
    relative_depth; features from the feature cache or extracted into it). Pattern
    descriptors: stimulus_id and the stimuli's metadata."""
    from pathlib import Path

    from brainrank.core.errors import InputError
    from brainrank.rsatoolbox_io import dataset_rdms, model_rdms, write_rsatoolbox_hdf5
    from brainrank.settings import settings

    if Path(out).exists() and not overwrite:
        raise InputError(f"{out} exists; choose another file or pass --overwrite.")
    if weights and not model:
        raise InputError("--weights goes with --model.")
    if layers and not model:
        raise InputError("--layers goes with --model.")
    conf = settings(data_dir=data_dir, device=device)
    device = checked_device(device, conf.device)
    registry = registry_for(ctx, plugin_files)
    loaded = registry.get("dataset", dataset).load(data_dir=conf.data_dir)
    metric = registry.get("metric", "rsa").load(distance=distance, noise=noise)
    metric.check_applicable(loaded)  # before any model is built
    if model is None:
        rdms = dataset_rdms(loaded, metric)
    else:
        from brainrank.core.cache import FeatureCache
        from brainrank.core.extraction import ExtractionConfig
        from brainrank.core.features import compute_features, model_handle

        spec = registry.get("model", model)
        handle = model_handle(spec, {"weights": weights} if weights else {},
                              FeatureCache(conf.cache_dir / "features"))  # fmt: skip
        config = ExtractionConfig(batch_size=conf.batch_size,
                                  memory_budget=int(conf.memory_budget_gb * 2**30),
                                  device=device)  # fmt: skip
        features = compute_features(handle, loaded.stimuli, metric.feature_request(loaded),
                                    config, FeatureCache(conf.cache_dir / "features"))  # fmt: skip
        wanted = [x.strip() for x in layers.split(",")] if layers else None
        rdms = model_rdms(features, loaded, metric, wanted)
    path = write_rsatoolbox_hdf5(out, rdms, overwrite=overwrite)
    click.echo(
        f"wrote {rdms.dissimilarities.shape[0]} {rdms.measure} RDMs over "
        f"{len(rdms.stimulus_ids)} stimuli to {path} ({fmt}: rsatoolbox.rdm.load_rdm)",
        err=True,
    )
