"""``brainrank report|serve``: the leaderboard as an HTML report or a live web page."""

from __future__ import annotations

from pathlib import Path

import click

from brainrank.cli import main


@main.command("report")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--db", help="Database URL or SQLite file (default: the configured leaderboard).")
@click.option(
    "--selection",
    default="max",
    show_default=True,
    help="Layer-choice policy the plots use (max, heldout, ...).",
)
@click.option(
    "--metrics",
    "metric_pair",
    default="rsa,srp-ridge",
    show_default=True,
    help="The two metrics compared in the agreement scatter.",
)
@click.option(
    "--taskonomy-models",
    default="taskonomy/*",
    show_default=True,
    help="Models of the task-similarity matrix (a pattern).",
)
@click.option(
    "--max-models",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    help="Models shown in the ranking figure.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "pdf"]),
    help="html: one self-contained file, figures as inline SVG; pdf: one page per figure. "
    "Default: from OUT's suffix (.html, .pdf).",
)
@click.option(
    "--assets",
    type=click.Path(file_okay=False),
    help="Also write each figure (SVG, or PDF) and its numbers (CSV) to this folder and link "
    "them (default: HTML links the CSV as data: URIs inside the file; a PDF writes them to "
    "OUT_figures/).",
)
@click.option(
    "--references",
    is_flag=True,
    help="Also score the human reference points (one subject predicted from another, and from "
    "all the others) with each stored metric configuration: loads the datasets (minutes on "
    "NSD).",
)
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="With --references: where the datasets' files are.")  # fmt: skip
def report_command(out, db, selection, metric_pair, taskonomy_models, max_models, fmt,
                   assets, references, data_dir) -> None:  # fmt: skip
    """Write the leaderboard's figures to OUT (.html or .pdf): the ranking, score vs layer
    depth, best-layer depth, metric agreement, trained vs random, families, the task
    similarity matrix and dendrogram, stacking weights. Figures are vector graphics, each
    with the numbers it draws as CSV. Sections without data say so."""
    from brainrank.core.errors import InputError
    from brainrank.leaderboard import open_store
    from brainrank.leaderboard.report import write_report
    from brainrank.leaderboard.report_analyses import AnalysisOptions

    pair = tuple(m.strip() for m in metric_pair.split(",") if m.strip())
    if len(pair) != 2:
        raise InputError(f"--metrics takes two metrics separated by a comma, not {metric_pair!r}.")
    store = open_store(db, create=False)
    options = AnalysisOptions(
        selection=selection,
        metric_pair=pair,  # type: ignore[arg-type]
        taskonomy_models=taskonomy_models,
        max_models=max_models,
        references=references,
        data_dir=data_dir,
    )
    sections = write_report(store, out, options, fmt=fmt, assets=assets)
    shown = [s for s in sections if not s.missing]
    figures = sum(len(s.figures) for s in sections)
    click.echo(f"report written to {out}: {len(shown)} of {len(sections)} sections with data, "
               f"{figures} figures")  # fmt: skip
    folder = assets or (str(Path(out).with_name(Path(out).stem + "_figures"))
                        if out.lower().endswith(".pdf") else None)  # fmt: skip
    if folder:
        click.echo(f"each figure and its numbers (CSV) are in {folder}/")
    for section in sections:
        if section.missing:
            click.echo(f"  no data for '{section.title}': {section.missing}", err=True)


@main.command("serve")
@click.option("--db", help="Database URL or SQLite file (default: the configured leaderboard).")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on (0.0.0.0: every interface).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port (0: any free port).",
)
def serve_command(db, host, port) -> None:
    """Serve the leaderboard as a web page (sortable, filterable, per-model layer curves)
    and a JSON API under /api/. Stop with Ctrl-C."""
    from brainrank.leaderboard import open_store
    from brainrank.leaderboard.server import make_server

    store = open_store(db, create=False)
    server = make_server(store, host, port)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"warning: listening on {host}, reachable from other machines: anyone who can reach "
            "this port can read the whole leaderboard (there is no authentication). Use the "
            "default --host 127.0.0.1 unless that is what you want.",
            err=True,
        )
    click.echo(
        f"serving {store.display_url} on http://{shown}:{server.server_port}/ "
        "(JSON API under /api/; Ctrl-C stops)",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()
