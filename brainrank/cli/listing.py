"""``brainrank models|datasets|metrics``: list the registered plugins."""

from __future__ import annotations

import click
import pandas as pd

from brainrank.cli import main
from brainrank.cli._common import echo_frame, plugin_option, registry_for


def _rows(kind: str, registry, pattern: str | None) -> list[dict]:
    rows = []
    for identifier in registry.select(kind, pattern or "*"):
        spec = registry.get(kind, identifier)
        meta = spec.metadata.to_dict()
        rows.append({"identifier": identifier, "plugin": spec.plugin, **meta})
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
        if fmt == "table" and not frame.empty:
            frame = frame[[c for c in columns if c in frame.columns]]
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
main.command("metrics")(_list_command("metric", ["identifier", "needs", "description"]))
