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
#: exit status of `plugin check --strict` when a check was skipped
EXIT_SKIPPED = 4

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


def brainrank_requirement() -> str:
    """The requirement a generated plugin names brainrank by, so that it installs where
    brainrank comes from: ``brainrank @ file:///path`` (brainrank installed from a folder,
    as by ``pip install -e .``), ``brainrank @ git+URL@COMMIT`` (from a repository),
    ``brainrank @ URL`` (from an archive), else ``brainrank>=VERSION`` (from a package
    index). Read from pip's record of the installation (``direct_url.json``, PEP 610)."""
    import importlib.metadata
    import json

    from brainrank import __version__

    found = None
    # every distribution named brainrank on the path: a source checkout's own metadata
    # (brainrank.egg-info in the working directory) has no record; the installed one has
    for distribution in importlib.metadata.distributions(name="brainrank"):
        try:
            record = distribution.read_text("direct_url.json")
            found = json.loads(record) if record else None
        except ValueError:
            found = None
        if isinstance(found, dict) and found.get("url"):
            break
    if not isinstance(found, dict) or not found.get("url"):
        return f"brainrank>={__version__}"
    url = str(found["url"])
    vcs = found.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs"):
        commit = vcs.get("commit_id") or vcs.get("requested_revision")
        return f"brainrank @ {vcs['vcs']}+{url}" + (f"@{commit}" if commit else "")
    return f"brainrank @ {url}"


def _names(kind: str, name: str, requirement: str | None = None) -> dict[str, str]:
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
        "brainrank_requirement": requirement or brainrank_requirement(),
    }


def _template(kind: str, name: str) -> str:
    return (
        resources.files("brainrank")
        .joinpath("templates", "plugin", kind, name)
        .read_text(encoding="utf-8")
    )


def render_plugin(kind: str, name: str, requirement: str | None = None) -> dict[str, str]:
    """``{relative path: text}`` of a new plugin package of ``kind`` for identifier
    ``name`` (``requirement``: how its pyproject names brainrank; default
    :func:`brainrank_requirement`)."""
    if kind not in KINDS:
        raise InputError(f"a plugin is a {', '.join(KINDS)}, not {kind!r}.")
    values = _names(kind, name, requirement)
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
@click.option(
    "--brainrank",
    "requirement",
    metavar="REQUIREMENT",
    help="How the package's pyproject names brainrank (default: where this brainrank was "
    "installed from: 'brainrank @ file:///path' for a folder, 'brainrank @ git+URL@COMMIT' "
    "for a repository, else 'brainrank>=VERSION').",
)
def plugin_new(kind: str, name: str, folder: str | None, requirement: str | None) -> None:
    """Create a plugin package for a KIND (model, dataset or metric) called NAME, an
    identifier such as mylab/mynet (a model needs its source: mylab/...). The package
    passes its own tests as it is; install it with `pip install -e DIR` and it appears in
    `brainrank models` (or datasets, metrics); `brainrank plugin try DIR` checks it, scores
    it and shows its place in the leaderboard."""
    files = render_plugin(kind, name, requirement)
    values = _names(kind, name, requirement)
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
    click.echo(f"brainrank is required as: {values['brainrank_requirement']}")
    click.echo(
        f"next: brainrank plugin try {target}   (or: pip install -e '{target}[test]' && "
        f"(cd {target} && pytest) && brainrank {kind}s '{values['identifier']}')"
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
@click.option("--strict", is_flag=True,
              help="A skipped check (a dataset whose files are not there) fails the command "
              f"(exit status {EXIT_SKIPPED}).")  # fmt: skip
def plugin_check(target: str, data_dir: str | None, model_ids: str | None, no_lazy: bool,
                 strict: bool) -> None:  # fmt: skip
    """Run brainrank's plugin checks (brainrank.testing) on TARGET: a module name (e.g.
    mylab_brainrank), a .py file, or the name of an installed entry point. A plugin that
    uses an import brainrank removed (brainrank.config) fails, with the replacement named.
    A check that cannot run (a dataset without its files: give --data-dir) is reported as
    skipped, and fails the command with --strict."""
    module = _load_for_check(target)
    chosen = [m.strip() for m in model_ids.split(",")] if model_ids else None
    report = _run_checks(module, data_dir, chosen, not no_lazy)
    _finish_checks(report, strict)


def _load_for_check(target: str) -> Any:
    import warnings

    from brainrank.core.errors import RemovedAPIWarning
    from brainrank.testing import PluginCheckError, _fail_on_removed

    with warnings.catch_warnings(record=True) as removed:
        warnings.simplefilter("always", RemovedAPIWarning)
        module = _import_plugin(target)
    try:
        _fail_on_removed(removed)
    except PluginCheckError as exc:
        raise click.ClickException(f"check failed: {exc}") from exc
    return module


def _run_checks(module: Any, data_dir: Any, models: list[str] | None, lazy: bool) -> Any:
    from brainrank.testing import PluginCheckError, check_plugin

    try:
        report = check_plugin(module, data_dir=data_dir, models=models, lazy=lazy)
    except PluginCheckError as exc:
        raise click.ClickException(f"check failed: {exc}") from exc
    for kind in ("models", "datasets", "metrics"):
        for identifier in getattr(report, kind):
            click.echo(f"ok  {kind[:-1]} {identifier}")
    for reason in report.skipped:
        click.echo(f"skipped  {reason}")
    for reason in getattr(report, "warnings", []):
        click.echo(f"warning  {reason}")
    return report


def _finish_checks(report: Any, strict: bool) -> None:
    """The last line: every check passed, or how many were skipped (an error with
    ``strict``)."""
    passed = len(report.models) + len(report.datasets) + len(report.metrics)
    if not report.skipped:
        click.echo(f"every check passed ({passed} plugin specs checked)")
        return
    line = (f"{passed} passed, {len(report.skipped)} skipped (not checked: see 'skipped' "
            "above; give --data-dir for a dataset's files)")  # fmt: skip
    if strict:
        click.echo(f"{line}; --strict: a skipped check fails", err=True)
        raise SystemExit(EXIT_SKIPPED)
    click.echo(line)


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


# --------------------------------------------------------------------------- plugin try

#: the models a dataset or metric plugin is tried with (no download, seconds each)
TRY_MODELS = ("baseline/pixels", "baseline/gabor")
#: the dataset a model or metric plugin is tried on (embedded)
TRY_DATASET = "simulated"


def _plugin_source(target: str) -> tuple[Any, str | None]:
    """The plugin module of ``target`` (a package folder, a .py file, a module or entry
    point name) and the .py file the registry must load for it (None when it is installed:
    its entry point is seen already)."""
    import importlib
    import importlib.metadata
    import sys

    path = Path(target)
    installed = {
        ep.value.split(":")[0] for ep in importlib.metadata.entry_points(group="brainrank")
    }
    if path.is_dir():
        modules = _entry_modules(path)
        if not modules:
            raise InputError(
                f"{path} has no brainrank entry point: its pyproject.toml needs "
                "[project.entry-points.brainrank] (`brainrank plugin new` writes one)."
            )
        name = modules[0]
        for base in (path, path / "src"):
            for candidate in (base / f"{name}.py", base / name / "__init__.py"):
                if candidate.is_file():
                    if name in installed:
                        return importlib.import_module(name), None
                    sys.path.insert(0, str(base))
                    return _load_for_check(str(candidate)), str(candidate)
        raise InputError(f"the entry point names the module {name!r}, which is not in {path}.")
    if target.endswith(".py"):
        return _load_for_check(target), str(path.resolve())
    return _load_for_check(target), None


def _entry_modules(folder: Path) -> list[str]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    file = folder / "pyproject.toml"
    if not file.is_file():
        return []
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {file}: {exc}.") from exc
    points = data.get("project", {}).get("entry-points", {}).get("brainrank", {})
    return [str(v).split(":")[0] for v in points.values()]


def _example_data(module: Any, report: Any, data_dir: str | None) -> str | None:
    """A folder with the plugin's example files (``write_example_files`` into ``FOLDER``, as
    `brainrank plugin new dataset` writes them) when its dataset has no files of its own."""
    import tempfile

    if not report.skipped or not hasattr(module, "write_example_files"):
        return None
    folder = getattr(module, "FOLDER", None)
    if not folder:
        return None
    root = tempfile.mkdtemp(prefix="brainrank-try-")
    module.write_example_files(str(Path(root) / folder))
    return root


@plugin_group.command("try")
@click.argument("target")
@click.option("--db", help="Database URL or SQLite file (default: the configured leaderboard).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Where the plugin's datasets find their files (default: the data folder; a "
    "dataset made by `plugin new` without files is tried on its example files).",
)
@click.option(
    "--metrics",
    help="Metrics to score with (default: every metric in its default configuration).",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def plugin_try(ctx, target: str, db: str | None, data_dir: str | None, metrics: str | None,
               quiet: bool) -> None:  # fmt: skip
    """Try a plugin in one command: check it, score it, and show its place in the whole
    leaderboard. TARGET: the plugin's package folder (as `plugin new` writes it), a .py file,
    or an installed module or entry point.

    A model is scored on `simulated` with every metric; a dataset with the baselines
    (baseline/pixels, baseline/gabor); a metric with the baselines on `simulated`. Then the
    leaderboard's ranking is printed whole, the new rows marked."""
    from brainrank.cli._common import registry_for
    from brainrank.cli.leaderboard import echo_rankings
    from brainrank.cli.run import EXIT_INCOMPLETE
    from brainrank.core.cache import FeatureCache
    from brainrank.core.extraction import ExtractionConfig
    from brainrank.grid.execute import execute
    from brainrank.grid.plan import plan
    from brainrank.grid.progress import summary_lines
    from brainrank.leaderboard import open_store, rankings
    from brainrank.settings import settings
    from brainrank.suite import default_metrics
    from brainrank.testing import collect_specs

    module, plugin_file = _plugin_source(target)
    click.echo(f"checking the plugin in {target}")
    report = _run_checks(module, data_dir, None, True)
    example = _example_data(module, report, data_dir) if data_dir is None else None
    if example is not None:
        click.echo(f"its dataset has no files here: trying it on its example files "
                   f"(write_example_files, simulated data) in {example}")  # fmt: skip
        data_dir = example
    elif report.skipped:
        click.echo("not scored: a dataset without its files (give --data-dir)", err=True)
    specs = collect_specs(module)
    new_models = [s.identifier for s in specs.models]
    new_datasets = [s.identifier for s in specs.datasets]
    new_metrics = [s.identifier for s in specs.metrics]
    files = [plugin_file] if plugin_file else []
    registry = registry_for(ctx, tuple(files))
    conf = settings(data_dir=data_dir, db=db)
    chosen = ([m.strip() for m in metrics.split(",") if m.strip()] if metrics
              else default_metrics(registry))  # fmt: skip
    grids = []
    if new_models:
        grids.append((new_models, [TRY_DATASET], chosen))
    available = [d for d in new_datasets
                 if registry.get("dataset", d).available(data_dir=conf.data_dir)]  # fmt: skip
    if available:
        grids.append((list(TRY_MODELS), available, chosen))
    if new_metrics:
        grids.append((list(TRY_MODELS), [TRY_DATASET], new_metrics))
    if not grids:
        raise InputError("the plugin registers nothing brainrank can score here.")
    store = open_store(conf.db)
    click.echo(f"leaderboard: {store.path or store.display_url}", err=True)
    extraction = ExtractionConfig(batch_size=conf.batch_size,
                                  memory_budget=int(conf.memory_budget_gb * 2**30))  # fmt: skip
    complete = True
    for models, datasets, metric_ids in grids:
        click.echo(f"scoring {', '.join(models)} on {', '.join(datasets)} with "
                   f"{', '.join(metric_ids)}", err=True)  # fmt: skip
        the_plan = plan(models, datasets, metric_ids, extraction, registry=registry,
                        cache=FeatureCache(conf.cache_dir / "features"),
                        data_dir=conf.data_dir if data_dir is not None else None,
                        plugin_files=files, device=conf.device, progress=not quiet)  # fmt: skip
        summary = execute(the_plan, store, progress=not quiet)
        for line in summary_lines(summary):
            click.echo(line, err=True)
        for failure in summary.failures:
            place = ", ".join(x for x in (failure.model, failure.dataset, failure.metric) if x)
            click.echo(f"failed [{failure.stage}] {place}: {failure.error}", err=True)
        complete = complete and summary.complete
    found = rankings(store)
    click.echo(f"\nthe whole leaderboard ({store.path or store.display_url}), the new rows "
               "marked:")  # fmt: skip
    echo_rankings(found, marked=set(new_models))
    for line in place_lines(found, new_models, new_datasets + new_metrics):
        click.echo(line)
    if not complete:
        raise SystemExit(EXIT_INCOMPLETE)


def place_lines(found: list, models: list[str], columns_of: list[str]) -> list[str]:
    """Where each new model ranks in each ranking, and the columns new datasets or metrics
    added."""
    lines = []
    for ranking in found:
        table = ranking.table
        ranked = table[table["rank"].notna()]
        for model in models:
            row = table[table["model"] == model]
            if row.empty:
                continue
            rank = row["rank"].iloc[0]
            missing = int(row["n_missing"].iloc[0])
            if rank is None or (isinstance(rank, float) and rank != rank) or str(rank) == "<NA>":
                why = (f"it lacks {missing} cells the others have" if missing else
                       "no cell could be ranked (the notes above say why)")  # fmt: skip
                lines.append(f"{model} is not ranked on {ranking.title}: {why}.")
            else:
                lines.append(f"{model} ranks {int(rank)} of {len(ranked)} on {ranking.title}.")
        new = [c for c in ranking.columns if any(c.startswith(f"{x}/") or c.endswith(f"/{x}")
                                                 for x in columns_of)]  # fmt: skip
        if new:
            lines.append(f"new columns on {ranking.title}: {', '.join(new)}.")
    return lines
