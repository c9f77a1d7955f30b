"""``brainrank compare A B``: does model A beat model B on this leaderboard?"""

from __future__ import annotations

import click

from brainrank.cli import main
from brainrank.cli._common import FORMATS, echo_frame, records
from brainrank.cli.leaderboard import RANK_VALUE, _filters, db_option, filter_options


@main.command("compare")
@click.argument("models", nargs=-1, required=True)
@db_option
@filter_options
@click.option("--selection", help="Layer choice compared (default: the row each metric "
              "declares leak-free, as the leaderboard ranks).")  # fmt: skip
@click.option("--value", type=RANK_VALUE, default="auto", show_default=True,
              help="The value compared, as `brainrank leaderboard --value`.")  # fmt: skip
@click.option("--correction", type=click.Choice(["holm", "bh"]), default="holm",
              show_default=True, help="Multiple-comparison control: holm (family-wise error) "
              "or bh (Benjamini-Hochberg false discovery rate).")  # fmt: skip
@click.option("--n-boot", type=click.IntRange(min=100), default=1000, show_default=True,
              help="Bootstrap draws.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the draws.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.05, show_default=True, help="Significance level of the verdicts.")  # fmt: skip
@click.option("--format", "fmt", type=FORMATS, default="table")
def compare_command(models, db, selection, value, correction, n_boot, seed, alpha, fmt,
                    **kwargs) -> None:  # fmt: skip
    """Does model A beat model B here? With two models: per (dataset, metric configuration)
    column and overall, on the cells both have, the difference of their ranked values, a t
    test with the standard error of a paired bootstrap over subjects (5 or more) or over
    the neuroids of each subject's regions (where per-neuroid values are stored), the
    standardised effect d_z, p adjusted over the columns (--correction) and a verdict. With
    more models: every pair, p adjusted over the pairs.

    Stimuli are not resampled (the leaderboard stores no per-stimulus values): the answer
    is for these images. Columns with nothing to resample (a population metric such as rsa
    on fewer than 5 subjects) are held fixed and not tested; the notes say which.
    """
    import json

    from brainrank.core.errors import InputError
    from brainrank.leaderboard import open_store
    from brainrank.leaderboard.uncertainty import compare_models, pairwise_report

    filters = _filters(kwargs)
    if len(set(models)) < 2:
        raise InputError("name at least two different models to compare.")
    store = open_store(db, create=False)
    options = dict(selection=selection, value=value, n_boot=n_boot, seed=seed,
                   correction=correction, alpha=alpha, **filters)  # fmt: skip
    if len(models) == 2:
        result = compare_models(store, models[0], models[1], **options)
        if fmt == "json":
            click.echo(json.dumps({"a": result.a, "b": result.b,
                                   "overall": records(result.overall),
                                   "columns": records(result.columns), "notes": result.notes},
                                  indent=2))  # fmt: skip
            return
        if fmt == "csv":
            echo_frame(result.columns, fmt)
            return
        click.echo(f"a = {result.a}\nb = {result.b}\n")
        click.echo("Overall (the ranked value):")
        echo_frame(result.overall, "table", float_format="{:.4g}")
        click.echo("\nPer dataset and configuration:")
        echo_frame(result.columns, "table", float_format="{:.4g}")
        click.echo("")
        for note in result.notes:
            click.echo(note)
        return
    table, notes = pairwise_report(store, list(models), **options)
    echo_frame(table, fmt, float_format="{:.4g}")
    if fmt == "table":
        click.echo("")
        for note in notes:
            click.echo(note)
