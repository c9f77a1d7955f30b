"""``brainrank data check|download``: where dataset files are, what is missing, fetching it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from brainrank.cli import main
from brainrank.cli._common import plugin_option, registry_for
from brainrank.core.errors import BrainrankError, InputError

MAX_LISTED = 20


def _subjects(values: tuple[str, ...]) -> list[str] | None:
    out = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return out or None


def _sources(registry: Any, patterns: tuple[str, ...]) -> list[tuple[str, Any]]:
    from brainrank.data import data_source_of

    identifiers = (
        registry.select("dataset", list(patterns)) if patterns else registry.identifiers("dataset")
    )
    out = []
    for identifier in identifiers:
        source = data_source_of(registry.get("dataset", identifier))
        if source is not None:
            out.append((identifier, source))
        elif patterns:
            click.echo(f"{identifier}: reads no files (nothing to check or download)", err=True)
    return out


def _common_base(statuses: list) -> str:
    """The URL prefix every listed file shares as ``<prefix>/<its path>``, else ''."""
    bases = set()
    for status in statuses:
        file = status.file
        url = file.urls[0] if file.urls else ""
        if file.archive is not None or not url.endswith("/" + file.path):
            return ""
        bases.add(url[: -len(file.path) - 1])
    return bases.pop() if len(bases) == 1 else ""


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@main.group("data")
def data_group() -> None:
    """Dataset files: where they are expected, what is missing, and downloading them.

    Each dataset lives in <data dir>/<folder> (the data dir is --data-dir, else
    BRAINRANK_DATA, else data_dir in config.toml, else ~/.brainrank/data; a [dataset_dirs]
    table in config.toml can point one dataset elsewhere).
    """


@data_group.command("check")
@click.argument("datasets", nargs=-1)
@click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Folder with the datasets' files."
)
@click.option("--subjects", multiple=True, help="Subjects to check (comma-separated or repeated).")
@click.option("--verify", is_flag=True, help="Also compare checksums (reads every file).")
@click.option("--all", "show_all", is_flag=True, help="List every missing file, not the first 20.")
@plugin_option
@click.pass_context
def check_command(ctx, datasets, data_dir, subjects, verify, show_all, plugin_files) -> None:
    """Report which files of DATASETS (identifiers or patterns; default: all) are present,
    which are missing, where each is expected and where it comes from. Exits with status 1
    when a required file is missing."""
    from brainrank.data.files import check_file

    registry = registry_for(ctx, plugin_files)
    chosen = _subjects(subjects)
    incomplete = False
    for identifier, source in _sources(registry, datasets):
        root = source.root(data_dir)
        try:
            files = source.files(root, chosen)
        except BrainrankError as exc:
            click.echo(f"{identifier}: cannot list its files: {exc}")
            incomplete = True
            continue
        statuses = [check_file(f, root, verify=verify) for f in files]
        required = [s for s in statuses if not s.file.optional]
        missing = [s for s in required if not s.present]
        damaged = [s for s in statuses if s.present and s.problem]
        optional_missing = [s for s in statuses if s.file.optional and not s.present]
        state = "complete" if not missing and not damaged else "incomplete"
        incomplete |= state == "incomplete"
        click.echo(
            f"{identifier}: {state}, {len(required) - len(missing)} of {len(required)} required "
            f"files present in {root}"
            + (f" ({len(optional_missing)} optional missing)" if optional_missing else "")
        )
        if not datasets:  # the overview: one line per dataset
            continue
        listed = (missing + optional_missing)[: None if show_all else MAX_LISTED]
        base = _common_base(listed)
        if base:
            click.echo(f"  from {base}/<path>")
        for status in listed:
            label = "optional" if status.file.optional else "missing"
            where = "" if base else f"  <- {status.file.source}"
            click.echo(f"  {label}: {status.file.path}{where}")
        hidden = len(missing) + len(optional_missing) - len(listed)
        if hidden > 0:
            click.echo(f"  ... and {hidden} more (--all lists them)")
        for status in damaged:
            click.echo(f"  damaged: {status.file.path}: {status.problem}")
        if missing and source.subjects_help:
            click.echo(f"  (--subjects: {source.subjects_help})")
    if incomplete and not datasets:
        click.echo("(`brainrank data check ID` lists the missing files of one dataset)")
    if incomplete:
        ctx.exit(1)


class _Bar:
    """A per-file progress bar on a terminal, nothing otherwise."""

    def __init__(self, name: str):
        self.name = name
        self.bar = None

    def __call__(self, done: int, total: int | None) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.name, unit="B", unit_scale=True, leave=False,
                            disable=None, initial=done)  # fmt: skip
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@data_group.command("download")
@click.argument("dataset")
@click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Folder with the datasets' files."
)
@click.option("--subjects", multiple=True, help="Subjects to fetch (comma-separated or repeated).")
@click.option(
    "--mirror",
    help="Base URL of a mirror laid out like the data folder (<mirror>/<folder>/<file>).",
)
@click.option("--yes", is_flag=True, help="Accept the dataset's terms of use without asking.")
@plugin_option
@click.pass_context
def download_command(ctx, dataset, data_dir, subjects, mirror, yes, plugin_files) -> None:
    """Download the missing files of DATASET from its public source (resumable; checksums
    verified where known). Files already present are kept."""
    from brainrank.data.fetch import fetch_all
    from brainrank.data.files import check_file, is_offline

    registry = registry_for(ctx, plugin_files)
    matches = _sources(registry, (dataset,))
    if len(matches) != 1:
        raise InputError(
            f"{dataset!r} matches {len(matches)} datasets that read files; name exactly one."
        )
    identifier, source = matches[0]
    root = source.root(data_dir)
    chosen = _subjects(subjects)
    if is_offline():
        raise InputError("downloads are disabled (BRAINRANK_OFFLINE=1); unset it to download.")
    if source.terms:
        click.echo(f"{identifier}: {source.terms}")
        if not yes and sys.stdin.isatty() and not click.confirm("Continue?", default=True):
            ctx.exit(1)
    click.echo(f"downloading into {root}")
    bars: list[_Bar] = []

    def progress_for(file):
        bar = _Bar(Path(file.path).name)
        bars.append(bar)
        return bar

    fetched_total = 0
    seen: set[str] = set()
    # some file lists grow once the first files are present (BOLD5000's trial lists name the
    # images; the Allen experiment table names the NWB files): fetch until nothing new appears
    for _ in range(4):
        files = source.to_download(root, chosen)
        todo = [f for f in files if not check_file(f, root).ok and f.path not in seen]
        if not todo:
            break
        seen.update(f.path for f in todo)
        try:
            fetch_all(
                todo,
                root,
                folder=source.folder,
                mirror=mirror,
                report=lambda text: click.echo(f"  {text}", err=True),
                progress_factory=progress_for,
                verify_present=False,
            )
        finally:
            for bar in bars:
                bar.close()
        fetched_total += len(todo)
    if source.after_download is not None:
        source.after_download(root)
    files = source.files(root, chosen)
    missing = [f for f in files if not f.optional and not (root / f.path).is_file()]
    size = sum((root / f.path).stat().st_size for f in files if (root / f.path).is_file())
    click.echo(
        f"{identifier}: {len(files) - len(missing)} of {len(files)} files present in {root} "
        f"({_size(size)}); fetched {fetched_total}."
    )
    if missing:
        raise InputError(
            f"{len(missing)} files are still missing (e.g. {missing[0].path}: {missing[0].source})."
        )
