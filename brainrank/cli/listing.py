"""``brainrank models|datasets|metrics``: list the registered plugins."""

from __future__ import annotations

import click
import pandas as pd

from brainrank.cli import main
from brainrank.cli._common import echo_frame, plugin_option, registry_for


def _rows(kind: str, registry, pattern: str | None) -> list[dict]:
    import fnmatch

    rows = []
    for identifier in registry.select(kind, pattern or "*", skip_duplicates=True):
        spec = registry.get(kind, identifier)
        meta = spec.metadata.to_dict()
        rows.append({"identifier": identifier, "plugin": spec.plugin, **meta})
    for identifier, message in registry.duplicates.get(kind, {}).items():
        wanted = [p.strip() for p in (pattern or "*").split(",") if p.strip()]
        if any(fnmatch.fnmatchcase(identifier, p) for p in wanted):  # unusable until fixed
            click.echo(f"warning: {message}", err=True)
            rows.append({"identifier": identifier, "status": "DUPLICATE: unusable"})
    return rows


def _list_command(kind: str, columns: list[str]):
    @click.argument("pattern", required=False)
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
    @plugin_option
    @click.pass_context
    def command(ctx: click.Context, pattern: str | None, fmt: str, plugin_files: tuple[str, ...]):
        registry = registry_for(ctx, plugin_files)
        rows = _rows(kind, registry, pattern)
        frame = pd.DataFrame(rows)
        for column in ("n_stimuli", "n_params", "input_size"):  # counts, never 118.000
            if column in frame.columns:
                frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
        if fmt == "table" and not frame.empty:
            frame = frame[[c for c in [*columns, "status"] if c in frame.columns]]
        echo_frame(frame, fmt)

    command.__doc__ = (
        f"List the registered {kind}s (optionally matching a shell-style PATTERN). Listing "
        "builds nothing and reads no data."
    )
    return command


main.command("models")(
    _list_command("model", ["identifier", "family", "trained", "training_data", "source"])
)
main.command("datasets")(
    _list_command("dataset", ["identifier", "species", "modality", "kind", "n_stimuli"])
)


def _parameters(registry, identifier: str) -> dict[str, object]:
    """The metric's parameters with their defaults, the row rankings take and whether it is
    calibrated, read from the metric itself."""
    from brainrank.leaderboard.ranking import parameter_summary

    try:
        metric = registry.get("metric", identifier).load()
    except Exception as exc:  # a metric that cannot be built still lists
        return {"parameters": f"(cannot build: {type(exc).__name__}: {exc})"}
    calibrated = bool(getattr(metric, "calibrated", True))
    return {
        "parameters": parameter_summary(getattr(metric, "parameters", None)) or "(none)",
        "ranked_row": getattr(metric, "headline", None) or "heldout, else max",
        "calibrated": "yes" if calibrated else "NO: ranked only when named, with chance",
    }


@main.command("metrics")
@click.argument("pattern", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--stored", is_flag=True,
              help="List the metric configurations stored in the leaderboard instead: each "
              "configuration's name (as in the leaderboard's columns), hash and parameters.")  # fmt: skip
@click.option("--db", help="With --stored: database URL or SQLite file (default: the "
              "configured leaderboard).")  # fmt: skip
@plugin_option
@click.pass_context
def metrics_command(ctx, pattern, fmt, stored, db, plugin_files) -> None:
    """List the registered metrics (optionally matching a shell-style PATTERN) with their
    parameters and defaults. With --stored: the configurations stored in the leaderboard,
    which maps a configuration hash (``srp-ridge#2998ff``) to its parameters."""
    if stored:
        from brainrank.leaderboard import configurations, open_store

        frame = configurations(open_store(db, create=False), metric=pattern)
        echo_frame(frame, fmt)
        return
    registry = registry_for(ctx, plugin_files)
    rows = _rows("metric", registry, pattern)
    for row in rows:
        row.update(_parameters(registry, row["identifier"]))
    frame = pd.DataFrame(rows)
    if fmt == "table" and not frame.empty:
        columns = ["identifier", "needs", "ranked_row", "calibrated", "parameters", "description"]
        frame = frame[[c for c in columns if c in frame.columns]]
    echo_frame(frame, fmt)
