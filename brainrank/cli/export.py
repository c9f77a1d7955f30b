"""``brainrank export scores|features``: leaderboard rows and activations as files.

Other commands of the group are added by their own modules with
``@export_group.command(...)``: ``export rdms`` (RDMs as rsatoolbox objects, ``export_rdms``)
and ``export maps``.
"""

from __future__ import annotations

from pathlib import Path

import click

from brainrank.cli import main
from brainrank.cli._common import checked_device, plugin_option, registry_for
from brainrank.cli.leaderboard import _filters, db_option, filter_options
from brainrank.core.errors import InputError


@main.group("export")
def export_group() -> None:
    """Write leaderboard rows and model features to files other tools read."""


@export_group.command("scores")
@click.argument("out", type=click.Path(dir_okay=False))
@db_option
@filter_options
@click.option("--selection", help="Only these selections ('layer', 'max', 'heldout'...; "
              "patterns). Default: every row; for netcdf, each metric's declared row.")  # fmt: skip
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "netcdf"]),
    help="csv or parquet: the score rows (as `brainrank query`, every column); netcdf: a "
    "Brain-Score-style score per model, dataset, configuration and region (center, error, "
    "raw, ceiling; xarray). Default: from OUT's suffix (.csv, .parquet, .nc).",
)
def export_scores(out, db, selection, fmt, **kwargs) -> None:
    """Write the leaderboard's score rows to OUT (CSV or Parquet, every column of
    `leaderboard.scores()`), or the Brain-Score-style score (netCDF, read with
    `xarray.open_dataset`). The filters are those of `brainrank query`."""
    from brainrank.leaderboard import open_store, scores
    from brainrank.leaderboard.export import as_xarray, write_scores

    filters = _filters(kwargs)
    suffix = Path(out).suffix.lower()
    fmt = fmt or {".nc": "netcdf", ".nc4": "netcdf"}.get(suffix)
    store = open_store(db, create=False)
    frame = scores(db=store, selection=selection, **filters)
    if frame.empty:
        raise InputError("no score rows match these filters: nothing to export.")
    if fmt == "netcdf":
        data = as_xarray(frame, selection if selection and "," not in selection else None)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        data.to_netcdf(out)
        click.echo(f"wrote {out}: {dict(data.sizes)} (center, error, raw, ceiling)")
        return
    written = write_scores(frame.drop(columns=["score_id"], errors="ignore"), out, fmt)
    click.echo(f"wrote {out}: {len(frame)} score rows, {frame.shape[1] - 1} columns ({written})")


@export_group.command("features")
@click.argument("model")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--dataset", help="A dataset identifier whose stimuli to run.")
@click.option(
    "--images", type=click.Path(exists=True), help="A folder of images (or one image file)."
)
@click.option(
    "--layers",
    help="Layers, names or shell patterns, comma-separated (default: every layer the "
    "leaderboard scores; `brainrank show MODEL` lists them).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["npz", "hdf5", "netcdf"]),
    help="npz: one array per layer and stimulus_id; hdf5: one dataset per layer; netcdf: one "
    "(presentation, neuroid) assembly. Default: from OUT's suffix (.npz, .h5, .nc).",
)
@click.option("--no-flatten", is_flag=True, help="Keep each layer's own shape (npz, hdf5).")
@click.option("--weights", type=click.Path(dir_okay=False), help="Trained weights from a file.")
@click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Folder with the datasets' files."
)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images per forward pass.")  # fmt: skip
@click.option("--device", metavar="auto|cpu|cuda[:N]|mps", help="Where the forward pass runs.")
@plugin_option
@click.pass_context
def export_features(ctx, model, out, dataset, images, layers, fmt, no_flatten, weights, data_dir,
                    batch_size, device, plugin_files) -> None:  # fmt: skip
    """Write MODEL's full activations at the chosen layers on a dataset's stimuli or a
    folder of images to OUT (see `brainrank.features`). Each layer takes n_images x its
    size x 4 bytes: name the layers you need."""
    import numpy as np

    from brainrank.activations import features, images_of
    from brainrank.settings import settings

    if (dataset is None) == (images is None):
        raise InputError("give the images with either --dataset ID or --images FOLDER.")
    suffix = Path(out).suffix.lower()
    fmt = fmt or {".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5", ".nc": "netcdf"}.get(suffix)
    if fmt is None:
        raise InputError(
            f"give OUT a suffix .npz, .h5 or .nc, or --format npz|hdf5|netcdf (not {out})."
        )
    conf = settings(data_dir=data_dir, device=device)
    registry = registry_for(ctx, plugin_files)
    chosen_device = checked_device(device, conf.device)
    if dataset is not None:
        source = registry.get("dataset", dataset).load(data_dir=conf.data_dir)
    else:
        source = images
    ids, pictures = images_of(source)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    options = {"batch_size": batch_size, "device": chosen_device, "weights": weights}
    if fmt == "netcdf":
        data = features(model, pictures, layers, output="xarray", **options)
        data = data.assign_coords(stimulus_id=("presentation", ids))
        data.to_netcdf(target)
        click.echo(f"wrote {out}: {data.sizes['presentation']} stimuli x "
                   f"{data.sizes['neuroid']} features of {len(data.attrs['layers'])} layers")  # fmt: skip
        return
    arrays = features(model, pictures, layers, flatten=not no_flatten, **options)
    if fmt == "npz":
        np.savez(target, stimulus_id=np.array(ids), layers=np.array(list(arrays)),
                 **{f"layer:{name}": value for name, value in arrays.items()})  # fmt: skip
    else:
        import h5py

        with h5py.File(target, "w") as handle:
            handle.create_dataset("stimulus_id", data=np.array(ids, dtype="S"))
            handle.attrs["model"] = model
            group = handle.create_group("layers")
            for name, value in arrays.items():
                group.create_dataset(name.replace("/", "|"), data=value)
    sizes = ", ".join(f"{name} {value.shape[1:]}" for name, value in list(arrays.items())[:4])
    more = f" and {len(arrays) - 4} more" if len(arrays) > 4 else ""
    click.echo(f"wrote {out}: {len(ids)} stimuli; layers {sizes}{more}")
