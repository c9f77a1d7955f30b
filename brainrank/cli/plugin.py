"""``brainrank plugin new|check``: start a plugin package, check one."""

from __future__ import annotations

import re
import string
from importlib import resources
from pathlib import Path
from typing import Any

import click

from brainrank.cli import main
from brainrank.core.errors import InputError

KINDS = ("model", "dataset", "metric")

KIND_TEXT = {
    "model": (
        "A small convolutional network, randomly initialised with seed 0, standing in for "
        "yours: replace `build_module`, `preprocess` and `METADATA` in the module, and load "
        "trained weights with `brainrank run --weights ${identifier}=PATH`."
    ),
    "dataset": (
        "Reads stimuli (`stimuli/*.png`) and responses (`responses.npz`) from "
        "`<data_dir>/${folder}/`; the module docstring describes the layout and "
        "`write_example_files` writes a small example of it."
    ),
    "metric": (
        "Linear centred kernel alignment (CKA) between each layer's features and each "
        "region's responses, as an example of the metric interface: `feature_request` says "
        "what features it needs, `score` returns one score per layer x (subject, region)."
    ),
}
RUN_EXAMPLE = {
    "model": "brainrank run --models ${identifier} --datasets simulated",
    "dataset": (
        "python -c \"import ${module} as p; p.write_example_files('data/${folder}')\"\n"
        "brainrank run --datasets ${identifier} --data-dir data --models baseline/pixels"
    ),
    "metric": "brainrank run --metrics ${identifier} --models baseline/pixels --datasets simulated",
}
SHOW_TARGET = {"model": "${identifier}", "dataset": "baseline/pixels", "metric": "baseline/pixels"}


def _names(kind: str, name: str) -> dict[str, str]:
    from brainrank import __version__
    from brainrank.core.identifiers import check_identifier

    identifier = name.strip()
    check_identifier(identifier, kind)
    base = identifier.split(":")[0]
    flat = re.sub(r"[^a-z0-9]+", "_", base).strip("_")
    if not flat:
        raise InputError(f"{name!r} has no letters or digits to name a package after.")
    source, _, short = base.rpartition("/")
    return {
        "kind": kind,
        "identifier": identifier,
        "source": source or short,
        "name": short,
        "module": f"brainrank_{flat}",
        "package": "brainrank-" + flat.replace("_", "-"),
        "entry_name": flat.replace("_", "-"),
        "folder": flat,
        "brainrank_version": __version__,
    }


def _template(kind: str, name: str) -> str:
    return (
        resources.files("brainrank")
        .joinpath("templates", "plugin", kind, name)
        .read_text(encoding="utf-8")
    )


def render_plugin(kind: str, name: str) -> dict[str, str]:
    """``{relative path: text}`` of a new plugin package of ``kind`` for identifier
    ``name``."""
    if kind not in KINDS:
        raise InputError(f"a plugin is a {', '.join(KINDS)}, not {kind!r}.")
    values = _names(kind, name)
    fill = string.Template
    values["kind_text"] = fill(KIND_TEXT[kind]).substitute(values)
    values["run_example"] = fill(RUN_EXAMPLE[kind]).substitute(values)
    values["show_target"] = fill(SHOW_TARGET[kind]).substitute(values)
    return {
        "pyproject.toml": fill(_template("common", "pyproject.toml.tmpl")).substitute(values),
        "README.md": fill(_template("common", "README.md.tmpl")).substitute(values),
        ".gitignore": _template("common", "gitignore.tmpl"),
        f"{values['module']}.py": fill(_template(kind, "module.py.tmpl")).substitute(values),
        "tests/test_plugin.py": fill(_template(kind, "test_plugin.py.tmpl")).substitute(values),
    }


@main.group("plugin")
def plugin_group() -> None:
    """Write and check plugins (models, datasets, metrics)."""


@plugin_group.command("new")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("name")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False),
    help="Where to create the package (default: ./brainrank-<name>).",
)
def plugin_new(kind: str, name: str, folder: str | None) -> None:
    """Create a plugin package for a KIND (model, dataset or metric) called NAME, an
    identifier such as mylab/mynet. The package passes its own tests as it is; install it
    with `pip install -e DIR` and it appears in `brainrank models` (or datasets, metrics)."""
    files = render_plugin(kind, name)
    values = _names(kind, name)
    target = Path(folder) if folder else Path(values["package"])
    if target.exists() and any(target.iterdir()):
        raise InputError(
            f"{target} exists and is not empty; choose a new folder with --dir (nothing was "
            "written)."
        )
    try:
        for relative, text in files.items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the plugin to {target}: {exc.strerror}.") from exc
    click.echo(f"created {values['package']} in {target}/ ({kind} {values['identifier']}):")
    for relative in files:
        click.echo(f"  {relative}")
    click.echo(
        f"next: pip install -e '{target}[test]' && (cd {target} && pytest) && "
        f"brainrank {kind}s '{values['identifier']}'"
    )


@plugin_group.command("check")
@click.argument("target")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Where the plugin's datasets find their files.",
)
@click.option("--models", "model_ids", help="Only build these models (comma-separated).")
@click.option("--no-lazy", is_flag=True, help="Skip the lazy-listing check (a subprocess).")
def plugin_check(target: str, data_dir: str | None, model_ids: str | None, no_lazy: bool) -> None:
    """Run brainrank's plugin checks (brainrank.testing) on TARGET: a module name (e.g.
    mylab_brainrank), a .py file, or the name of an installed entry point. A plugin that
    uses an import brainrank removed (brainrank.config) fails, with the replacement named."""
    import warnings

    from brainrank.core.errors import RemovedAPIWarning
    from brainrank.testing import PluginCheckError, _fail_on_removed, check_plugin

    with warnings.catch_warnings(record=True) as removed:
        warnings.simplefilter("always", RemovedAPIWarning)
        module = _import_plugin(target)
    chosen = [m.strip() for m in model_ids.split(",")] if model_ids else None
    try:
        _fail_on_removed(removed)
        report = check_plugin(module, data_dir=data_dir, models=chosen, lazy=not no_lazy)
    except PluginCheckError as exc:
        raise click.ClickException(f"check failed: {exc}") from exc
    for kind in ("models", "datasets", "metrics"):
        for identifier in getattr(report, kind):
            click.echo(f"ok  {kind[:-1]} {identifier}")
    for reason in report.skipped:
        click.echo(f"skipped  {reason}")
    for reason in getattr(report, "warnings", []):
        click.echo(f"warning  {reason}")
    click.echo("every check passed")


def _import_plugin(target: str) -> Any:
    """The plugin module named by ``target``: a .py file, an entry point or a module."""
    import importlib
    import importlib.metadata
    import importlib.util

    if target.endswith(".py"):
        path = Path(target).resolve()
        if not path.is_file():
            raise InputError(f"no file {path}.")
        spec = importlib.util.spec_from_file_location(f"brainrank_local_plugin_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise InputError(f"cannot import {path}: not a Python file.")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    points = {ep.name: ep for ep in importlib.metadata.entry_points(group="brainrank")}
    try:
        return points[target].load() if target in points else importlib.import_module(target)
    except ImportError as exc:
        raise InputError(
            f"cannot import {target!r} ({exc}); give a module name, a .py file or the name "
            "of an installed brainrank entry point."
        ) from exc
