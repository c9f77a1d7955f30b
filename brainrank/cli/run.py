"""``brainrank run``: score the model x dataset x metric grid into the leaderboard."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from pathlib import Path
from typing import Any

import click

from brainrank.cli import main
from brainrank.cli._common import layer_options, plugin_option, registry_for
from brainrank.core.errors import InputError

#: exit status of a run that stored some but not all of the requested combinations (some
#: failed); 0 means every requested combination is stored, 130 an interrupted run, 1 an error
#: found before any work started, 2 a command-line usage error
EXIT_INCOMPLETE = 3


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (sent by batch schedulers and `kill`) stops a run like Ctrl-C: the run is
    recorded as interrupted and a later run resumes it. Both signals also set the grid's
    ``STOP_REQUESTED``, so that a KeyboardInterrupt Python drops (raised inside a garbage
    collection callback) still stops the run after the job it landed in."""
    from brainrank.grid.execute import STOP_REQUESTED

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        STOP_REQUESTED.set()
        raise KeyboardInterrupt(f"signal {signum}")

    STOP_REQUESTED.clear()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            if old is not None:  # None: a handler installed outside Python, left as it was
                signal.signal(sig, old)
        STOP_REQUESTED.clear()


def _run(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except KeyboardInterrupt:
        click.echo(
            "\ninterrupted: the scores written so far are kept; run the same command again to "
            "finish the grid.",
            err=True,
        )
        raise SystemExit(130) from None


def _parse_assignments(values: tuple[str, ...], what: str) -> dict[str, dict[str, Any]]:
    """``("srp-ridge.alphas=[1.0]", ...)`` -> ``{"srp-ridge": {"alphas": [1.0]}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in values:
        target, sep, raw = item.partition("=")
        plugin, dot, key = target.rpartition(".")
        if not sep or not dot or not plugin or not key:
            raise InputError(
                f"{what} {item!r} must look like ID.KEY=VALUE (e.g. srp-ridge.alphas=1.0)."
            )
        try:
            value = json.loads(raw)
        except ValueError as exc:
            if raw.strip()[:1] in ("[", "{", '"') or (
                raw.strip()[:1].isdigit() and any(c in raw for c in "[],{}")
            ):
                raise InputError(
                    f"{what} {item!r}: the value {raw!r} is not valid JSON ({exc}); write e.g. "
                    f"{target}=[1.0,10.0] or {target}=1e5 (quote it for the shell)."
                ) from exc
            value = raw  # a bare word: a string value
        out.setdefault(plugin, {})[key] = value
    return out


def parse_dataset_options(values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``--dataset-option`` values by dataset; a key given twice is an error (one run builds
    a dataset once: score each value in a run of its own)."""
    seen: set[tuple[str, str]] = set()
    for item in values:
        one = _parse_assignments((item,), "--dataset-option")
        for dataset, options in one.items():
            for key in options:
                if (dataset, key) in seen:
                    raise InputError(
                        f"--dataset-option {dataset}.{key} is given twice; a run builds a "
                        "dataset once: run once per value (each is a dataset entry of its "
                        "own, and the analyses read them together)."
                    )
                seen.add((dataset, key))
    return _parse_assignments(values, "--dataset-option")


#: the largest --memory-budget taken (GiB): a finite number (inf and nan are usage errors)
MAX_BUDGET_GIB = 2.0**20


def _finite(value: float | None, name: str) -> float | None:
    if value is not None and value != value:  # NaN passes click's range checks
        raise click.BadParameter(f"{value} is not a number of GiB.", param_hint=name)
    return value


def check_checkpoints(
    registry: Any,
    model_ids: list[str],
    model_options: dict[str, dict[str, Any]],
    model_info: tuple[str, ...],
) -> None:
    """``--model-info`` values go to the user checkpoints they name (checked against the
    taxonomy now); every user checkpoint of the run has its weights file."""
    from brainrank.core.checkpoints import STATED_FIELDS, is_user_checkpoint
    from brainrank.core.specs import ModelMetadata

    for model_id, values in _parse_assignments(model_info, "--model-info").items():
        spec = registry.get("model", model_id)
        if not is_user_checkpoint(spec):
            raise InputError(
                f"--model-info is for user checkpoints (MODEL@TAG with --weights MODEL@TAG=PATH);"
                f" {model_id!r} is a registered model whose metadata its plugin gives."
            )
        unknown = sorted(set(values) - set(STATED_FIELDS))
        if unknown:
            raise InputError(
                f"--model-info {model_id}: unknown key {unknown}; keys: {', '.join(STATED_FIELDS)}."
            )
        values = {k: str(v) for k, v in values.items()}
        # checked against the vocabularies before any work starts
        ModelMetadata(source="x", architecture="x",
                      **{k: v for k, v in values.items() if k != "description"})  # fmt: skip
        model_options.setdefault(model_id, {}).update(values)
    for model_id in model_ids:
        spec = registry.get("model", model_id)
        if is_user_checkpoint(spec) and "weights" not in model_options.get(model_id, {}):
            raise InputError(
                f"{model_id!r} is a user checkpoint (no plugin registers it): give its file "
                f"with --weights {model_id}=PATH."
            )


def add_spaces(
    registry: Any,
    metric_ids: list[str],
    metric_params: dict[str, dict[str, Any]],
    spaces: tuple[str, ...],
) -> None:
    """``--spaces`` becomes the ``spaces`` parameter of every metric of the run that takes
    feature spaces; an error when none does or one is also given ``--param METRIC.spaces``."""
    from brainrank.core.spaces import split_texts

    texts = split_texts(list(spaces))
    takers = [m for m in metric_ids if registry.get("metric", m).load().takes_spaces]
    if not takers:
        raise InputError(
            f"--spaces is for metrics that take feature spaces of several models (stacking, "
            f"variance-partitioning); this run's metrics are {', '.join(metric_ids) or 'none'}."
        )
    for metric in takers:
        if "spaces" in metric_params.get(metric, {}):
            raise InputError(
                f"the spaces of {metric!r} are given twice (--spaces and --param "
                f"{metric}.spaces); give them once."
            )
        metric_params.setdefault(metric, {})["spaces"] = texts


def own_models_note(store: Any, model_ids: list[str]) -> list[str]:
    """Lines saying that the ranking printed after a run holds the run's models only, when
    the leaderboard holds others (a new model is not 'rank 1' of the leaderboard)."""
    stored = sorted(set(store.distinct_values()["model"]))
    others = [m for m in stored if m not in set(model_ids)]
    if not others:
        return []
    return [
        f"This ranking holds the {len(set(model_ids) & set(stored))} models of this run only; "
        f"the leaderboard holds {len(stored)} models. `brainrank leaderboard` ranks them all "
        "(`brainrank plugin try` shows a new model's place among them)."
    ]


@main.command("run")
@click.option(
    "--models",
    multiple=True,
    help="Model identifiers or shell patterns (comma-separated, repeatable).",
)
@click.option("--datasets", multiple=True, help="Dataset identifiers or patterns.")
@click.option("--metrics", multiple=True, help="Metric identifiers or patterns.")
@click.option("--db", help="Database URL or SQLite file (default: the configured leaderboard).")
@click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Folder with the datasets' files."
)
@click.option(
    "--weights",
    multiple=True,
    help="MODEL=PATH: trained weights of MODEL from a local file. MODEL@TAG=PATH scores a "
    "checkpoint of MODEL's architecture as a model of its own (MODEL@TAG in --models).",
)
@click.option(
    "--model-info",
    "model_info",
    multiple=True,
    help="MODEL@TAG.KEY=VALUE: what is known of a user checkpoint's training (KEY: task, "
    "training_method, training_data, description; values from `brainrank models "
    "--vocabulary`). Default: unknown.",
)
@click.option(
    "--param", "params", multiple=True, help="METRIC.KEY=VALUE metric parameter (JSON value)."
)
@click.option(
    "--dataset-option",
    "dataset_option",
    multiple=True,
    help="NAME.KEY=VALUE: build dataset NAME with an option of its factory (JSON value), e.g. "
    "allen/natural-scenes.reliability_threshold=0.5; a dataset entry of its own, "
    'NAME(KEY=VALUE). Also [dataset_options."NAME"] in config.toml.',
)
@click.option(
    "--spaces",
    "spaces",
    multiple=True,
    help="MODEL[:LAYER],...: feature spaces of several models for the metrics that take them "
    "(stacking, variance-partitioning), scored together as one model stack/<hash>. LAYER may "
    "be a shell pattern (one space per matching layer); a bare MODEL is its best layer.",
)
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per forward pass.")
@click.option(
    "--memory-budget",
    type=click.FloatRange(min=0, min_open=True, max=MAX_BUDGET_GIB),
    callback=lambda _ctx, _param, value: _finite(value, "--memory-budget"),
    help="Most GiB of activations held at once during extraction (more than 0, finite).",
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the feature cache.")
@click.option(
    "--device",
    metavar="auto|cpu|cuda[:N]|mps",
    help="Where extraction and scoring run (default: cpu, or BRAINRANK_DEVICE / device in "
    "config.toml). auto: the first GPU if there is one. Recorded in the run's configuration; "
    "scores keep their identity (the same hashes on every device).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes of a local Dask cluster (1: run in this process, no Dask).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Submit the work to an existing Dask scheduler (e.g. tcp://host:8786).",
)
@click.option(
    "--recompute",
    is_flag=True,
    help="Score again what the leaderboard already holds (default: skip it).",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@layer_options
@plugin_option
@click.pass_context
def run_command(ctx, models, datasets, metrics, db, data_dir, weights, model_info, params,
                dataset_option, spaces, batch_size, memory_budget, no_cache, device, workers, scheduler, recompute,
                quiet, layer_selection, aliases, plugin_files) -> None:  # fmt: skip
    """Score models on datasets with metrics and store the scores in the leaderboard.

    With no selection it runs the default suite: a few models that need no download, the
    default datasets present offline (the embedded `simulated` one at least) and every
    metric.

    What the leaderboard already holds with the same content (model, options, stimuli,
    data, metric configuration) is skipped, so a run that was interrupted, even killed,
    finishes when started again. Each (model, stimulus set) is one job: the model is built
    and its features extracted once for every dataset and metric on those stimuli.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from brainrank import suite
    from brainrank.cli._common import device_origin
    from brainrank.core.cache import FeatureCache
    from brainrank.core.errors import StoreError
    from brainrank.core.extraction import ExtractionConfig
    from brainrank.grid import Dask, InProcess
    from brainrank.grid.execute import execute
    from brainrank.grid.plan import plan
    from brainrank.leaderboard import open_store, rankings
    from brainrank.settings import database_url, settings

    conf = settings(data_dir=data_dir, db=db, memory_budget_gb=memory_budget,
                    batch_size=batch_size, device=device)  # fmt: skip
    registry = registry_for(ctx, plugin_files)
    # a --data-dir given here is passed on; otherwise each dataset finds its folder through
    # the settings ([dataset_dirs] of config.toml included)
    model_ids = registry.select("model", models) if models else suite.default_models(registry)
    dataset_ids = (
        registry.select("dataset", datasets)
        if datasets
        else suite.default_datasets(registry, data_dir)
    )
    metric_ids = registry.select("metric", metrics) if metrics else suite.default_metrics(registry)
    model_options: dict[str, dict[str, Any]] = {}
    for item in weights:
        model_id, sep, path = item.partition("=")
        if not sep or not path:
            raise InputError(f"--weights {item!r} must look like MODEL=PATH.")
        registry.get("model", model_id)
        model_options.setdefault(model_id, {})["weights"] = str(Path(path).expanduser().resolve())
    check_checkpoints(registry, model_ids, model_options, model_info)
    metric_params = _parse_assignments(params, "--param")
    dataset_options = conf.options_of_datasets(dataset_ids, parse_dataset_options(dataset_option))
    if spaces:
        add_spaces(registry, metric_ids, metric_params, spaces)
    extraction = ExtractionConfig(
        batch_size=conf.batch_size,
        memory_budget=int(conf.memory_budget_gb * 2**30),
        layers=layer_selection,
        aliases=aliases,
    )
    if scheduler and workers > 1:
        raise InputError("give either --workers (a local cluster) or --scheduler, not both.")
    executor = Dask(workers, scheduler) if workers > 1 or scheduler else InProcess()
    try:
        url = make_url(database_url(conf.db))
    except ArgumentError as exc:
        raise StoreError(f"{conf.db!r} is not a database URL ({exc}).") from None
    if (
        (workers > 1 or scheduler)
        and url.get_backend_name() == "sqlite"
        and url.database in (None, "", ":memory:")
    ):
        raise InputError(
            "an in-memory SQLite leaderboard cannot be shared with Dask workers; use a file "
            "(--db PATH) or PostgreSQL."
        )
    files = [str(f) for f in (ctx.find_root().obj or {}).get("plugins", [])] + list(plugin_files)
    shown_url = url.render_as_string(hide_password=True)
    where = url.database if url.get_backend_name() == "sqlite" and url.database else shown_url
    click.echo(f"leaderboard: {where}", err=True)
    with _sigterm_as_interrupt():
        the_plan = _run(
            plan,
            model_ids,
            dataset_ids,
            metric_ids,
            extraction,
            registry=registry,
            cache=None if no_cache else FeatureCache(conf.cache_dir / "features"),
            data_dir=conf.data_dir if data_dir is not None else None,
            model_options=model_options,
            metric_params=metric_params,
            dataset_options=dataset_options,
            plugin_files=files,
            recompute=recompute,
            device=conf.device,
            device_origin=device_origin(device),
            progress=not quiet,
        )
        store = open_store(conf.db)  # created once the plan is checked (device, options)
        click.echo(
            f"scoring {len(model_ids)} models x {len(dataset_ids)} datasets x "
            f"{len(metric_ids)} metrics on {the_plan.device}",
            err=True,
        )
        summary = _run(execute, the_plan, store, executor=executor, progress=not quiet)
    from brainrank.grid.progress import summary_lines

    for line in summary_lines(summary, store.path or store.display_url):
        click.echo(line, err=True)
    for combination in the_plan.combinations.values():
        click.echo(
            f"combination {combination.identifier}: "
            f"{', '.join(s.label for s in combination.spaces)}",
            err=True,
        )
    for reason in summary.skipped:
        click.echo(f"not applicable: {reason}", err=True)
    for failure in summary.failures:
        place = ", ".join(x for x in (failure.model, failure.dataset, failure.metric) if x)
        click.echo(f"failed [{failure.stage}] {place}: {failure.error}", err=True)
    from brainrank.cli.leaderboard import echo_rankings  # the ranking of `brainrank leaderboard`

    echo_rankings(
        rankings(
            store,
            model=model_ids or None,
            dataset=dataset_ids or None,
            metric=metric_ids or None,
            intervals=True,
        )
    )
    for line in own_models_note(store, model_ids):
        click.echo(line)
    if not summary.complete:
        n_failed = len(summary.failures)
        click.echo(
            f"run {summary.run_id} is incomplete: {n_failed} failure(s); the combinations that "
            "failed are not stored and are tried again by the same command (exit status "
            f"{EXIT_INCOMPLETE}).",
            err=True,
        )
        raise SystemExit(EXIT_INCOMPLETE)
