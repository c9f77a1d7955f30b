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
    type=click.Choice(["score", "contrast", "weights", "argmax-weight", "fdr", "q-value"]),
    default="score",
    show_default=True,
    help="score: each voxel's value; contrast: model A minus model B (--contrast A B); "
    "weights: the per-layer weights as a 4D volume (stacking); argmax-weight: the position of "
    "the layer of largest weight; fdr: 1 where the voxel's r is significantly above 0 after "
    "Benjamini-Hochberg at --alpha over the map's voxels, 0 elsewhere; q-value: the adjusted "
    "p-values (one-sided p of Pearson r over --n-stimuli).",
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
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="The false discovery rate of --quantity fdr.",
)
@click.option(
    "--n-stimuli",
    type=click.IntRange(min=3),
    help="The number of stimuli each per-voxel r was computed over, for fdr and q-value "
    "(default: the dataset's number of stimuli in the leaderboard).",
)
def export_maps(out_dir, db, dataset, metric, quantity, model, contrast, selection, subject,
                alpha, n_stimuli):  # fmt: skip
    """Write per-voxel values (a metric's scores, a contrast of two models, an FDR mask or
    its q-values, stacking weights or the argmax layer) as NIfTI volumes into OUT_DIR: one `.nii.gz` per subject (and model)
    in the subject's space, with the dataset's affine, NaN where no voxel was scored, and a
    `.json` sidecar saying what it holds."""
    from brainrank.leaderboard import open_store
    from brainrank.leaderboard.maps import maps

    store = open_store(db, create=False)
    found = maps(store, dataset=dataset, metric=metric, quantity=quantity, model=model,
                 contrast=tuple(contrast) if contrast else None, selection=selection,
                 subject=subject, alpha=alpha, n_stimuli=n_stimuli)  # fmt: skip
    for brain_map in found:
        path = brain_map.write(out_dir)
        n = int((brain_map.data == brain_map.data).sum())
        click.echo(f"wrote {path}: {list(brain_map.data.shape)}, {n} voxels with a value")
