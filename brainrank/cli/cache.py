"""``brainrank cache list|prune|clear``: the feature cache, and keeping it small."""

from __future__ import annotations

import datetime

import click
import pandas as pd

from brainrank.cli import main
from brainrank.cli._common import FORMATS, echo_frame


def _root():
    from brainrank.settings import settings

    return settings().cache_dir / "features"


@main.group("cache")
def cache_group() -> None:
    """The feature cache (the `cache_dir` setting, BRAINRANK_CACHE): list it, prune it to a
    size, clear it. Removing features never loses a score: a run that needs them again
    extracts them again."""


@cache_group.command("list")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def cache_list(fmt) -> None:
    """Every cached feature set: model, stimuli, layers, projections, RDMs, size and last
    use (most recent first), and leftovers of killed runs."""
    from brainrank.core.cache_admin import entries, human

    root = _root()
    found = entries(root)
    frame = pd.DataFrame(
        [
            {
                "key": e.key[:12],
                "kind": e.kind,
                "model": e.model,
                "stimuli": e.n_stimuli,
                "layers": e.n_layers,
                "projections": ",".join(map(str, e.projection_dims)),
                "rdm": e.rdm,
                "size": e.bytes if fmt != "table" else human(e.bytes),
                "last_used": datetime.datetime.fromtimestamp(e.last_used).strftime(
                    "%Y-%m-%d %H:%M"
                ),
            }
            for e in found
        ]
    )
    echo_frame(frame, fmt)
    if fmt == "table":
        total = sum(e.bytes for e in found)
        click.echo(f"\n{len(found)} entries, {human(total)} in {root}")


@cache_group.command("prune")
@click.option("--max-size", help="Remove the least recently used feature sets until the cache "
              "takes at most this much (500M, 10G...).")  # fmt: skip
@click.option("--older-than", type=click.FloatRange(min=0), metavar="DAYS",
              help="Remove feature sets unused for more than DAYS days.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def cache_prune(max_size, older_than, dry_run) -> None:
    """Make the cache smaller: leftovers of killed runs first, then feature sets unused for
    --older-than days, then the least recently used until it fits --max-size."""
    from brainrank.core.cache_admin import human, parse_size, prune
    from brainrank.core.errors import InputError

    if max_size is None and older_than is None:
        raise InputError("say how to prune: --max-size SIZE (e.g. 10G) and/or --older-than DAYS.")
    limit = parse_size(max_size) if max_size is not None else None
    seconds = older_than * 86400 if older_than is not None else None
    removed, left = prune(_root(), limit, seconds, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    freed = sum(e.bytes for e in removed)
    for entry in removed:
        click.echo(f"{verb} {entry.key[:12]} {entry.model} ({human(entry.bytes)})")
    click.echo(f"{verb} {len(removed)} entries, {human(freed)}; the cache takes {human(left)}"
               + (" after that" if dry_run else ""))  # fmt: skip


@cache_group.command("clear")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def cache_clear(yes) -> None:
    """Remove every cached feature set."""
    from brainrank.core.cache_admin import clear, human

    root = _root()
    if not root.exists():
        click.echo(f"the cache at {root} is empty")
        return
    if not yes:
        click.confirm(f"remove everything in {root}?", abort=True)
    click.echo(f"removed {human(clear(root))} from {root}")
