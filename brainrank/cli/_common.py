"""Options and output helpers shared by the commands."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from typing import Any

import click
import pandas as pd

from brainrank.core.registry import Registry, get_registry

FORMATS = click.Choice(["table", "csv", "json"])


def plugin_option(f: Callable) -> Callable:
    return click.option(
        "--plugin",
        "plugin_files",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Load a plugin from a Python file (for plugin development). Repeatable.",
    )(f)


def layer_options(f: Callable) -> Callable:
    """``--layers`` and ``--aliases``: which layers an extraction keeps (see
    :mod:`brainrank.core.extraction.layers`)."""
    f = click.option(
        "--aliases",
        type=click.Choice(["exact", "affine"]),
        default="exact",
        show_default=True,
        help="A layer that repeats an earlier one is kept once; 'affine': also one that is a "
        "per-feature affine map of an earlier one (eval-mode batch norm after a convolution), "
        "its alias recorded. RSA, SRP-based and CKA scores are not invariant to such a map.",
    )(f)
    return click.option(
        "--layers",
        "layer_selection",
        metavar="all|blocks|PATTERN",
        default="all",
        show_default=True,
        help="Which layers to extract: every layer (leaf module calls, attention's q, k, v "
        "and output), the architecture's block outputs, or shell patterns over layer names, "
        "comma-separated (e.g. 'layer4.*,avgpool'). Another choice is another extraction "
        "configuration: it has its own cached features and plan hashes, and its scores "
        "replace those of the same model, dataset and metric in the leaderboard.",
    )(f)


def registry_for(ctx: click.Context, plugin_files: tuple[str, ...] = ()) -> Registry:
    files = list((ctx.find_root().obj or {}).get("plugins", [])) + list(plugin_files)
    registry = get_registry(files)
    for error in registry.load_errors:
        click.echo(f"warning: plugin {error.name} failed to load: {error.error}", err=True)
    return registry


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def echo_frame(
    frame: pd.DataFrame, fmt: str, float_format: str = "{:.3f}", width: int | None = None
) -> None:
    """Print ``frame`` as JSON, CSV or a table; a table fits the terminal (``width``,
    default: :func:`brainrank.cli._table.output_width`; piped, it is printed whole)."""
    if fmt == "json":
        click.echo(json.dumps(records(frame), indent=2))
    elif fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif frame.empty:
        click.echo("(nothing to show)")
    else:
        from brainrank.cli._table import output_width, render

        width = width if width is not None else output_width()
        if width is None:
            click.echo(
                frame.to_string(
                    index=False,
                    na_rep="-",
                    float_format=lambda v: float_format.format(v),
                )
            )
        else:
            click.echo(render(frame, width, lambda v: float_format.format(v)))


def echo_wrapped(text: str, err: bool = False) -> None:
    """A sentence wrapped at the terminal's width (printed whole when piped)."""
    import textwrap

    from brainrank.cli._table import output_width

    width = output_width(sys.stderr if err else sys.stdout)
    if width is None or len(text) <= width:
        click.echo(text, err=err)
        return
    indent = " " * (len(text) - len(text.lstrip()))
    click.echo(textwrap.fill(text, width=width - 1, subsequent_indent=indent + "  ",
                             break_on_hyphens=False), err=err)  # fmt: skip


def device_origin(given: str | None) -> str:
    """Where the device setting came from: the option, ``BRAINRANK_DEVICE`` or
    ``config.toml`` (for error messages)."""
    import os

    if given:
        return "--device"
    if os.environ.get("BRAINRANK_DEVICE"):
        return "the environment variable BRAINRANK_DEVICE"
    return "the device setting of config.toml"


def checked_device(given: str | None, chosen: str) -> str:
    """The device a command runs on, resolved and checked before any work; an error names
    where the value came from (the option, ``BRAINRANK_DEVICE`` or ``config.toml``)."""
    from brainrank.core.backend import resolve_device
    from brainrank.core.errors import InputError

    try:
        return resolve_device(chosen)
    except InputError as exc:
        raise InputError(
            f"{exc} (The device {chosen!r} came from {device_origin(given)}.)"
        ) from None
