"""``brainrank export maps``: per-voxel values of the leaderboard as NIfTI volumes in each
subject's space (:mod:`brainrank.leaderboard.maps`)."""

from __future__ import annotations

import click

from brainrank.cli.export import export_group
from brainrank.cli.leaderboard import db_option


@export_group.command("maps")
@click.argument("out_dir", type=click.Path(file_okay=True))
@db_option
@click.option("--dataset", required=True, help="A dataset of voxels (bold5000/wholebrain, nsd/*).")
@click.option("--metric", required=True, help="The metric whose per-voxel values to map.")
@click.option(
    "--quantity",
    type=click.Choice(["score", "contrast", "weights", "argmax-weight"]),
    default="score",
    show_default=True,
    help="score: each voxel's value; contrast: model A minus model B (--contrast A B); "
    "weights: the per-layer weights as a 4D volume (stacking); argmax-weight: the position of "
    "the layer of largest weight.",
)
@click.option("--model", help="Models (shell patterns, comma-separated; default: every one).")
@click.option("--contrast", nargs=2, metavar="A B", help="The two models of --quantity contrast.")
@click.option(
    "--selection",
    default="max",
    show_default=True,
    help="Which rows' per-voxel values (max: the best layer's; a layer's rows: layer).",
)
@click.option("--subject", help="One subject (default: every subject, one file each).")
def export_maps(out_dir, db, dataset, metric, quantity, model, contrast, selection, subject):
    """Write per-voxel values (a metric's scores, a contrast of two models, stacking weights
    or the argmax layer) as NIfTI volumes into OUT_DIR: one `.nii.gz` per subject (and model)
    in the subject's space, with the dataset's affine, NaN where no voxel was scored, and a
    `.json` sidecar saying what it holds."""
    from brainrank.leaderboard import open_store
    from brainrank.leaderboard.maps import maps

    store = open_store(db, create=False)
    found = maps(store, dataset=dataset, metric=metric, quantity=quantity, model=model,
                 contrast=tuple(contrast) if contrast else None, selection=selection,
                 subject=subject)  # fmt: skip
    for brain_map in found:
        path = brain_map.write(out_dir)
        n = int((brain_map.data == brain_map.data).sum())
        click.echo(f"wrote {path}: {list(brain_map.data.shape)}, {n} voxels with a value")
