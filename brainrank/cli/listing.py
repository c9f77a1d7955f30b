"""``brainrank models|datasets|metrics``: list the registered plugins."""

from __future__ import annotations

import contextlib

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


MODEL_COLUMNS = ["identifier", "family", "task", "training_method", "training_data", "trained",
                 "source"]  # fmt: skip
SET_COLUMNS = ["paper_name", "identifier", "status", "named_in", "detail"]


@main.command("models")
@click.argument("pattern", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option(
    "--family", help="Only these families (convnet, transformer, mlp-mixer, hybrid, other)."
)
@click.option("--task", help="Only these tasks (classification, 'taskonomy:*', language-image...).")
@click.option("--data", "training_data", help="Only these training data (ImageNet-21k...).")
@click.option("--method", "training_method", help="Only these training methods (simclr...).")
@click.option("--trained/--random", "trained", default=None,
              help="Only trained models, or only randomly initialised networks (baselines apart).")  # fmt: skip
@click.option("--baselines/--no-baselines", "baseline", default=None,
              help="Only the hand-made baselines, or everything but them.")  # fmt: skip
@click.option("--vocabulary", is_flag=True,
              help="Print the taxonomy's vocabularies (families, tasks, methods, data) instead.")  # fmt: skip
@plugin_option
@click.pass_context
def models_command(ctx, pattern, fmt, vocabulary, plugin_files, **filters) -> None:
    """List the registered models (optionally matching a shell-style PATTERN), with their
    taxonomy: family, task, training method, training data (`--format json` gives every
    field). Listing builds nothing.

    PATTERN may be a paper's model set, `@mouse2021`, `@nsd2023`, `@taskonomy2019`,
    `@stacking2023`: then every model of the paper is listed with its status, `present`
    (weights found, or none needed), `absent` (weights missing: which file goes where) or
    `unsupported` (why brainrank cannot build it).
    """
    import json

    if vocabulary:
        from brainrank.core.taxonomy import vocabularies

        click.echo(json.dumps(vocabularies(), indent=2))
        return
    registry = registry_for(ctx, plugin_files)
    filters = {k: v for k, v in filters.items() if v is not None}
    if pattern and pattern.strip().startswith("@"):
        frame = pd.DataFrame(_set_rows(registry, pattern.strip()))
        columns = SET_COLUMNS
    else:
        rows = _rows("model", registry, pattern)
        if not pattern and not filters:  # what brainrank cannot build, with the reason
            rows += _unsupported_rows(registry)
        frame = pd.DataFrame(rows)
        columns = MODEL_COLUMNS
    if filters and not frame.empty:
        frame = frame[[_matches(row, filters) for row in frame.to_dict("records")]]
    is_set = bool(pattern and pattern.strip().startswith("@"))
    if fmt == "table" and not frame.empty:
        frame = frame[[c for c in dict.fromkeys([*columns, "status"]) if c in frame.columns]]
        if is_set:  # the full detail (file, folder, URL) is in --format json
            frame = frame.assign(
                detail=[_short(d, s) for d, s in zip(frame["detail"], frame["status"], strict=True)]
            )
    echo_frame(frame, fmt)
    if is_set and fmt == "table" and not frame.empty:
        counts = frame["status"].value_counts()
        summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("present", "absent", "unsupported"))
        if "unknown" in counts:
            summary += f", {counts['unknown']} unknown"
        click.echo(
            f"\n{summary}. `--format json` gives each model's full detail: the file, folder "
            "and URL of missing weights, the reason a model is unsupported."
        )


def _matches(row: dict, filters: dict) -> bool:
    """A listed model passes the filters (shell patterns, comma-separated; ``trained``:
    trained models or random networks, baselines apart; ``baseline``). The same rules as the
    leaderboard's filters, without loading the leaderboard."""
    import fnmatch

    baseline = row.get("training_method") == "handcrafted"
    for key, wanted in filters.items():
        if key == "trained":
            if bool(row.get("trained")) != bool(wanted) or (not wanted and baseline):
                return False
        elif key == "baseline":
            if baseline != bool(wanted):
                return False
        else:
            value = row.get(key)
            if not isinstance(value, str):
                return False
            patterns = [p.strip() for p in str(wanted).split(",") if p.strip()]
            if not any(fnmatch.fnmatchcase(value, p) for p in patterns):
                return False
    return True


def _short(text: str, status: str, width: int = 70) -> str:
    """A table cell for a status detail: for missing weights, the file that is missing."""
    import re

    text = str(text)
    if status == "absent" and (found := re.search(r"\bfile (\S+?)[ ,)]", text)):
        text = f"needs {found[1]}"
    return text if len(text) <= width else text[: width - 1] + "…"


def _unsupported_rows(registry) -> list[dict]:
    """One row per model a registered model set names but brainrank cannot build."""
    rows: dict[str, dict] = {}
    for model_set in registry.model_sets().values():
        for member in model_set.unsupported():
            key = member.identifier or member.paper_name
            rows.setdefault(key, {"identifier": member.identifier or f"({member.paper_name})",
                                  "status": f"unsupported (brainrank models @{model_set.name})",
                                  "reason": member.unsupported})  # fmt: skip
    return list(rows.values())


def _set_rows(registry, name: str) -> list[dict]:
    """One row per member of the model set ``name``: the paper's name, the identifier, the
    status and its detail, and the model's metadata when brainrank has the model."""
    from brainrank.core.model_sets import member_status

    model_set = registry.model_set(name)
    rows = []
    for member in model_set.members:
        status, detail = member_status(member, lambda i: registry.get("model", i))
        row = {"set": model_set.name, "paper_name": member.paper_name,
               "identifier": member.identifier, "status": status, "detail": detail,
               "named_in": member.named_in, "note": member.note}  # fmt: skip
        if member.identifier and not member.unsupported:
            with contextlib.suppress(Exception):  # then reported as unsupported
                row.update(registry.get("model", member.identifier).metadata.to_dict())
        rows.append(row)
    return rows


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
    from brainrank.leaderboard.ranking import DESCRIPTIVE_METRICS

    if identifier in DESCRIPTIVE_METRICS:
        return {"parameters": parameter_summary(getattr(metric, "parameters", None)) or "(none)",
                "ranked_row": "never (describes features)", "calibrated": "-"}  # fmt: skip
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
