"""``brainrank leaderboard|query|show|failures|runs``: read the stored leaderboard."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
import pandas as pd

from brainrank import results
from brainrank.cli import main
from brainrank.cli._common import FORMATS, echo_frame, echo_wrapped, records
from brainrank.core.errors import InputError

RECORD_COLUMNS = [
    "model", "dataset", "metric", "config", "subject", "region", "layer", "selection", "best", "score",
    "ceiling", "ceiling_low", "ceiling_high", "normalized", "chance", "chance_sd", "flag", "ci_low",
    "ci_high", "n_neuroids", "layer_index", "relative_depth", "family", "trained", "task",
    "training_method", "training_data",
]  # fmt: skip

db_option = click.option(
    "--db", help="Database URL or SQLite file (default: the configured leaderboard)."
)


def filter_options(f: Callable) -> Callable:
    """The leaderboard filters, shared by the reading commands."""
    options = [
        click.option("--model", help="Only these models (shell patterns, comma-separated)."),
        click.option("--dataset", help="Only these datasets (patterns)."),
        click.option("--metric", help="Only these metrics (patterns)."),
        click.option(
            "--config",
            help="Only these metric configurations, by the name the "
            "leaderboard shows (e.g. 'srp-ridge(alphas=1e8)'; patterns; `brainrank "
            "metrics --stored` lists them).",
        ),
        click.option("--region", help="Only these regions (patterns)."),
        click.option("--subject", help="Only these subjects (patterns)."),
        click.option("--layer", help="Only these layers (patterns)."),
        click.option(
            "--family", help="Only these model families (convnet, transformer, mlp-mixer, hybrid)."
        ),
        click.option(
            "--task",
            help="Only models trained for these tasks (classification, 'taskonomy:*', "
            "language-image...; patterns).",
        ),
        click.option(
            "--data", "training_data", help="Only models trained on these data (ImageNet-21k...)."
        ),
        click.option(
            "--method",
            "training_method",
            help="Only models of these training methods (supervised, simclr, clip...).",
        ),
        click.option(
            "--trained/--random",
            "trained",
            default=None,
            help="Only trained models, or only randomly initialised networks (baselines apart).",
        ),
        click.option(
            "--baselines/--no-baselines",
            "baseline",
            default=None,
            help="Only the hand-made baselines, or everything but them.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _filters(kwargs: dict[str, Any]) -> dict[str, Any]:
    names = ("model", "dataset", "metric", "config", "region", "subject", "layer", "family",
             "task", "training_data", "training_method", "trained", "baseline")  # fmt: skip
    return {k: kwargs.pop(k) for k in names if k in kwargs}


VALUE = click.Choice(["score", "normalized"])
RANK_VALUE = click.Choice(["auto", "score", "normalized"])


@main.command("leaderboard")
@db_option
@click.option("--format", "fmt", type=FORMATS, default="table",
              help="table: the ranking; csv/json: every score row (summary rows marked "
              "'best'), or the ranking with --ranking.")  # fmt: skip
@filter_options
@click.option("--selection", help="Layer choice ranked on (default: the row each metric "
              "declares leak-free: 'heldout', 'stacked', 'generalisation'); for csv/json rows "
              "any selection, including 'layer'.")  # fmt: skip
@click.option("--value", type=RANK_VALUE, default="auto", show_default=True,
              help="auto: ceiling-normalised where the ceiling's lower 95% bound is above "
              "0.1, raw scores where no ceiling is stored, cells below that floor left out; "
              "score: raw scores; normalized: only cells with a usable ceiling.")  # fmt: skip
@click.option("--ranking", "as_ranking", is_flag=True,
              help="csv/json: print the ranking instead of the score rows.")  # fmt: skip
@click.option("--no-ci", is_flag=True, help="Skip the bootstrap confidence intervals.")
@click.option("--intervals/--no-intervals", default=True, show_default=True,
              help="Each model's 95% rank interval (rank_low, rank_high) from a paired "
              "bootstrap over subjects or neuroids.")  # fmt: skip
def leaderboard_command(db, fmt, selection, value, as_ranking, no_ci, intervals,
                        **kwargs) -> None:  # fmt: skip
    """Models ranked like with like, with 95% bootstrap CIs across regions.

    Models are ranked only on the (dataset, metric configuration, region, subject) cells
    that every model has; cells some model lacks are left out for all and listed under the
    table (`n_missing`: how many a model lacks). One column per dataset/configuration (two
    settings of one metric are two columns, never averaged), `mean` is their mean.
    Configurations that are not calibrated (the seed papers' leave-one-out protocols) are
    ranked only when named (--config or --metric), each column with its chance level
    beside it. Simulated data are ranked apart from real data. CIs are printed only over at
    least 5 regions. rank_low-rank_high: the model's 95% rank interval (a paired bootstrap
    over subjects, or over neuroids where per-neuroid values are stored; `brainrank compare
    A B` tests a pair). The lines under the table say what was ranked.
    """
    from brainrank.leaderboard import open_store, rankings, scores
    from brainrank.leaderboard.ranking import combined, describe

    filters = _filters(kwargs)
    store = open_store(db, create=False)
    if fmt != "table" and not as_ranking:
        frame = scores(store, selection=selection, **filters)
        echo_frame(frame[[c for c in RECORD_COLUMNS if c in frame.columns]], fmt)
        return
    found = rankings(store, selection, value=value, ci=None if no_ci else 0.95,
                     intervals=intervals, **filters)  # fmt: skip
    if fmt != "table":
        echo_frame(combined(found), fmt)
        for line in describe(found):
            click.echo(line, err=True)
        return
    click.echo(f"leaderboard: {store.path or store.display_url}")
    echo_rankings(found)


def echo_rankings(found: list, marked: set[str] | frozenset[str] = frozenset()) -> None:
    """Print rankings (:func:`brainrank.leaderboard.rankings`) as tables, one per data
    group, followed by the notes saying what was ranked and the cells left out. Models in
    ``marked`` get ``<- new`` in a ``new`` column."""
    from brainrank.leaderboard.ranking import describe

    if not found:
        click.echo("(nothing to rank: no summary scores match these filters)")
        return
    for ranking in found:
        if len(found) > 1 or ranking.group == "simulated":
            click.echo(f"\n== {ranking.title} ==")
        table = ranking.table.astype({"rank": object})
        table["rank"] = [int(v) if pd.notna(v) else "-" for v in ranking.table["rank"]]
        for column in ("rank_low", "rank_high"):
            if column in table.columns:
                table[column] = [int(v) if pd.notna(v) else "-" for v in ranking.table[column]]
        if marked:
            table.insert(2, "new", ["<- new" if m in marked else "" for m in table["model"]])
        echo_frame(table, "table")
    click.echo("")
    for line in describe(found):
        echo_wrapped(line)


@main.command("query")
@db_option
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@filter_options
@click.option("--selection", help="'layer' (per-layer rows), 'max', 'heldout', ... (patterns).")
@click.option(
    "--aggregate",
    type=click.Choice(["none", "region", "subject", "dataset"]),
    default="none",
    show_default=True,
    help="Average over regions, subjects or datasets, with 95% bootstrap CIs.",
)
@click.option("--value", type=VALUE, default="score", show_default=True,
              help="The column averaged by --aggregate.")  # fmt: skip
@click.option("--per-neuroid", is_flag=True,
              help="One row per neuroid with the values behind each score.")  # fmt: skip
@click.option("--columns", help="Comma-separated columns to print (default: the usual ones).")
@click.option("--sort", "sort_by", help="Sort by these columns (comma-separated; '-col' "
              "for descending).")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
def query_command(db, fmt, selection, aggregate, value, per_neuroid, columns, sort_by, limit,
                  **kwargs) -> None:  # fmt: skip
    """Score rows of the leaderboard, filtered, optionally aggregated.

    \b
    brainrank query --model 'timm/*' --selection max --format csv
    brainrank query --selection max --aggregate region          # mean over regions + CI
    brainrank query --model timm/resnet18:random --per-neuroid --layer 'layer4*'
    """
    from brainrank.leaderboard import aggregate as aggregate_frame
    from brainrank.leaderboard import open_store, scores
    from brainrank.leaderboard import per_neuroid as neuroid_frame

    filters = _filters(kwargs)
    store = open_store(db, create=False)
    if per_neuroid:
        frame = neuroid_frame(store, selection=selection, **filters)
    else:
        frame = scores(store, selection=selection, **filters)
        if aggregate != "none":
            from brainrank.leaderboard.query import species_of

            before = frame
            frame = aggregate_frame(frame, over=aggregate, value=value, species=species_of(store))
            for note in frame.attrs.get("notes", []):
                click.echo(note, err=True)
            if frame.empty and not before.empty:
                why = (
                    "none of the matching rows has a usable ceiling (none stored, or its lower "
                    "95% bound not above 0.1); aggregate raw scores with --value score"
                    if value == "normalized"
                    else f"every matching row's {value} is missing (NaN)"
                )
                click.echo(f"nothing to aggregate: {why}.", err=True)
        else:
            frame = frame[[c for c in RECORD_COLUMNS if c in frame.columns]]
    if columns:
        wanted = [c.strip() for c in columns.split(",") if c.strip()]
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise InputError(
                f"no column {missing} in these rows; columns: {', '.join(frame.columns)}."
            )
        frame = frame[wanted]
    if sort_by:
        keys = [c.strip() for c in sort_by.split(",") if c.strip()]
        names = [k.lstrip("-") for k in keys]
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise InputError(f"cannot sort by {missing}; columns: {', '.join(frame.columns)}.")
        frame = frame.sort_values(names, ascending=[not k.startswith("-") for k in keys],
                                  kind="stable")  # fmt: skip
    if limit:
        frame = frame.head(limit)
    echo_frame(frame.reset_index(drop=True), fmt)


@main.command("show")
@click.argument("model")
@db_option
@click.option("--dataset", help="Only these datasets (patterns).")
@click.option("--metric", help="Only these metrics (patterns).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def show_command(model, db, dataset, metric, fmt) -> None:
    """One model: its metadata, its summary scores per region and its score at every layer."""
    from brainrank.leaderboard import configurations, filter_scores, model_detail, open_store

    store = open_store(db, create=False)
    detail = model_detail(model, db=store)
    summary = filter_scores(detail["summary"], dataset=dataset, metric=metric)
    layers = filter_scores(detail["layers"], dataset=dataset, metric=metric)
    if fmt == "json":
        payload = {
            "metadata": records(pd.DataFrame([detail["metadata"]]))[0],
            "summary": records(summary),
            "layers": records(layers),
            "configurations": records(
                configurations(store)[
                    lambda f: f["metric_hash"].isin(
                        set(summary["metric_hash"]) | set(layers["metric_hash"])
                    )
                ]
            ),
        }
        click.echo(json.dumps(payload, indent=2))
        return
    meta = detail["metadata"]
    click.echo(f"model: {model}")
    for key in ("family", "architecture", "task", "training_data", "trained", "n_params",
                "source", "plugin", "weights_hash"):  # fmt: skip
        value = meta.get(key)
        if value is not None and not (isinstance(value, float) and pd.isna(value)):
            click.echo(f"  {key}: {value}")
    if summary.empty and layers.empty:
        click.echo("(no scores stored for this model and filter)")
        return
    used = pd.concat([summary[["metric", "metric_hash", "config"]],
                      layers[["metric", "metric_hash", "config"]]]).drop_duplicates()  # fmt: skip
    configs = configurations(store)
    configs = configs[configs["metric_hash"].isin(set(used["metric_hash"]))]
    if not configs.empty:
        click.echo("\nmetric configurations (each scored and shown apart, never averaged):")
        for row in configs.itertuples():
            click.echo(f"  {row.config}: {row.metric} #{row.metric_hash} {row.parameters}")
    click.echo("\nsummary scores (layer chosen per subject and region):")
    echo_frame(
        summary[["dataset", "config", "selection", "subject", "region", "layer",
                 "relative_depth", "score", "normalized", "n_neuroids"]],
        "table",
    )  # fmt: skip
    for (ds, mt), part in layers.groupby(["dataset", "config"], sort=True):
        click.echo(f"\nper layer, {ds} / {mt} (mean over subjects):")
        table = part.pivot_table(
            index=["layer_index", "layer", "relative_depth"],
            columns="region",
            values="score",
            aggfunc="mean",
        ).reset_index()
        table.columns.name = None
        echo_frame(table.drop(columns="layer_index"), "table")


@main.command("failures")
@db_option
@click.option("--run", "run_id", type=int, help="Only this run (default: every run).")
@click.option("--last", is_flag=True, help="Only the most recent run.")
@click.option("--model", help="Only these models (patterns).")
@click.option("--dataset", help="Only these datasets (patterns).")
@click.option("--metric", help="Only these metrics (patterns).")
@click.option("--stage", help="Only these stages (plugin, model, dataset, features, score...).")
@click.option("--traceback", "show_traceback", is_flag=True, help="Print the tracebacks.")
@click.option("--format", "fmt", type=FORMATS, default="table")
def failures_command(db, run_id, last, model, dataset, metric, stage, show_traceback,
                     fmt) -> None:  # fmt: skip
    """What failed, when and where (recorded by `brainrank run`, with tracebacks)."""
    from brainrank.leaderboard import failures, open_store, runs

    store = open_store(db, create=False)
    if last:
        all_runs = runs(store)
        if all_runs.empty:
            click.echo("(no runs recorded yet)")
            return
        run_id = int(all_runs["id"].max())
    frame = failures(store, run=run_id, model=model, dataset=dataset, metric=metric, stage=stage)
    if fmt != "table":
        if not show_traceback:
            frame = frame.drop(columns=["traceback"])
        echo_frame(frame, fmt)
        return
    if frame.empty:
        click.echo("no failures recorded" + (f" in run {run_id}" if run_id else "") + ".")
        return
    for row in frame.itertuples():
        where = ", ".join(f"{k}={v}" for k, v in (("model", row.model), ("dataset", row.dataset),
                                                   ("metric", row.metric)) if v)  # fmt: skip
        click.echo(f"[run {row.run_id}] {row.created_at:%Y-%m-%d %H:%M:%S} {row.stage}"
                   f"{' (' + where + ')' if where else ''}: {row.error_type}: {row.message}")  # fmt: skip
        if show_traceback and row.traceback:
            click.echo("    " + row.traceback.rstrip().replace("\n", "\n    "))
    if not show_traceback:
        click.echo("(--traceback prints the tracebacks)")


#: the stages whose seconds a run records
STAGES = results.STAGES


def with_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs with ``seconds`` (the sum of the stage seconds over their jobs: more than the
    wall time when jobs ran in parallel) and fits/s of scoring and of all stages."""
    frame = frame.copy()
    for stage in STAGES:
        if f"seconds_{stage}" not in frame.columns:  # a leaderboard written before v3
            frame[f"seconds_{stage}"] = float("nan")
    if "fits" not in frame.columns:
        frame["fits"] = float("nan")
    stages = frame[[f"seconds_{s}" for s in STAGES]].astype(float)
    frame["seconds"] = stages.sum(axis=1, min_count=1)
    fits = frame["fits"].astype(float)
    frame["fits_per_s_scoring"] = fits / frame["seconds_scoring"].astype(float).where(
        lambda v: v > 0
    )
    frame["fits_per_s"] = fits / frame["seconds"].where(lambda v: v > 0)
    frame["fits"] = pd.to_numeric(frame["fits"]).round().astype("Int64")
    return frame


def stage_table(run: pd.Series) -> pd.DataFrame:
    """One run's stages: seconds, share of the run's job time, fits and fits/s."""
    total = float(run["seconds"]) if pd.notna(run["seconds"]) else float("nan")
    fits = float(run["fits"]) if pd.notna(run["fits"]) else float("nan")
    rows = []
    for stage in (*STAGES, "all"):
        seconds = total if stage == "all" else float(run[f"seconds_{stage}"])
        rows.append({
            "stage": stage,
            "seconds": seconds,
            "share": seconds / total if total > 0 else float("nan"),
            "fits": fits if stage in ("scoring", "all") else 0,
            "fits_per_s": fits / seconds if stage in ("scoring", "all") and seconds > 0
            else float("nan"),
        })  # fmt: skip
    return pd.DataFrame(rows)


@main.command("runs")
@db_option
@click.option("--run", "run_id", type=int, help="One run: its seconds, fits and fits/s per stage.")
@click.option("--format", "fmt", type=FORMATS, default="table")
def runs_command(db, run_id, fmt) -> None:
    """Every run with its provenance (code version, git revision, executor, host) and where
    its time went: seconds per stage (model building, extraction, scoring, writing; summed
    over its jobs and workers), regression fits (one target on one layer with one penalty)
    and fits/s of scoring and of all stages. ``--run ID`` shows one run's stages."""
    from brainrank.leaderboard import open_store, runs

    frame = with_rates(runs(open_store(db, create=False)))
    if run_id is not None:
        chosen = frame[frame["id"] == run_id]
        if chosen.empty:
            known = ", ".join(str(i) for i in frame["id"].tail(10)) or "none"
            raise InputError(
                f"there is no run {run_id} in this leaderboard (latest runs: {known}); see "
                "`brainrank runs`."
            )
        run = chosen.iloc[0]
        if fmt == "table":
            click.echo(f"run {run_id} ({run['status']}, {run['executor']}): "
                       f"{int(run['n_scores'] or 0)} scores")  # fmt: skip
            if pd.isna(run["seconds"]):
                click.echo("(no stage times: the run was recorded before brainrank kept them)")
                return
        echo_frame(stage_table(run), fmt, float_format="{:.4g}")
        return
    if fmt == "table" and not frame.empty:
        frame = frame[["id", "started_at", "status", "n_scores", "n_skipped", "n_failures",
                       "fits", *(f"seconds_{s}" for s in STAGES), "fits_per_s_scoring",
                       "fits_per_s", "executor", "code_version", "git_revision", "host"]]  # fmt: skip
        frame = frame.rename(columns={f"seconds_{s}": f"s_{s}" for s in STAGES}
                             | {"fits_per_s_scoring": "fits/s_scoring", "fits_per_s": "fits/s"})  # fmt: skip
    echo_frame(frame, fmt)
