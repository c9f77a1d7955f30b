"""The ``brainrank`` command line: parses, calls the API, prints.

Each command group lives in its own module of this package and registers itself on
:data:`main` when imported below.
"""

from __future__ import annotations

import logging
import sys

import click

from brainrank import __version__
from brainrank.core.errors import BrainrankError


class _Group(click.Group):
    """Prints brainrank's user errors as one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrainrankError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Load a plugin from a Python file (for plugin development). Repeatable.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(__version__, prog_name="brainrank")
@click.pass_context
def main(ctx: click.Context, plugins: tuple[str, ...], verbose: int) -> None:
    """brainrank: score vision models against brain data and keep a leaderboard."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ctx.ensure_object(dict)
    ctx.obj["plugins"] = list(plugins)


def _register_commands() -> None:
    """Import every public module of this package: each registers its commands on main."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_register_commands()

__all__ = ["main"]
