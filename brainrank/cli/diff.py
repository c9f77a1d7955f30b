"""``brainrank diff DB1 DB2``: the scores that differ between two leaderboards."""

from __future__ import annotations

import click

from brainrank.cli import main
from brainrank.cli._common import echo_frame

#: exit status when the leaderboards differ (0: the same within the tolerance)
EXIT_DIFFERENT = 4


@main.command("diff")
@click.argument("db_a")
@click.argument("db_b")
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Absolute difference below which two values count as equal.")  # fmt: skip
@click.option("--per-neuroid", is_flag=True, help="Compare the per-neuroid values too.")
@click.option("--model", help="Only these models (shell patterns, comma-separated).")
@click.option("--dataset", help="Only these datasets (patterns).")
@click.option("--metric", help="Only these metrics (patterns).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Rows of each kind of difference to print.")  # fmt: skip
def diff_command(db_a, db_b, tolerance, per_neuroid, model, dataset, metric, limit) -> None:
    """Compare the scores of two leaderboards (database URLs or SQLite files): scores that
    only one has, and scores whose values (score, ceiling and its interval, normalised
    value, chance level; per-neuroid values with --per-neuroid) differ by more than
    --tolerance. Both are opened read-only.

    Exit status 0 when they agree, 4 when they differ. Runs on different machines, thread
    counts or --workers settings agree to float32 rounding (differences of about 1e-7), not
    bit for bit: compare such runs with a tolerance (e.g. --tolerance 1e-5).
    """
    from brainrank.leaderboard.compare import compare
    from brainrank.leaderboard.store import open_store

    a, b = open_store(db_a, create=False), open_store(db_b, create=False)
    filters = {k: v for k, v in {"model": model, "dataset": dataset, "metric": metric}.items() if v}
    result = compare(a, b, tolerance=tolerance, per_neuroid=per_neuroid, **filters)
    click.echo(
        f"{result.n_common} scores in both; {len(result.changed)} differ by more than "
        f"{tolerance:g} (largest difference {result.max_difference:.3g}); "
        f"{len(result.only_a)} only in {db_a}; {len(result.only_b)} only in {db_b}"
    )
    for title, frame in (
        ("differing values", result.changed),
        (f"only in {db_a}", result.only_a),
        (f"only in {db_b}", result.only_b),
    ):
        if not frame.empty:
            click.echo(f"\n{title}:")
            echo_frame(frame.head(limit), "table", float_format="{:.6g}")
    if not result.same:
        raise SystemExit(EXIT_DIFFERENT)
