"""The analyses of the mouse model zoology (Conwell et al., NeurIPS 2021; see the package
docstring): the overall ranking of SRP-Ridge and RSA, trained against randomly initialised
architectures, and the rank agreement of the two metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core import stats
from brainrank.core.errors import InputError
from brainrank.leaderboard.analyses.tables import SEED_METRICS, _area, _model_info, region_scores


def overall_ranking(
    frame: pd.DataFrame,
    metrics: Sequence[str] = SEED_METRICS,
    selection: str | None = "max",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    *,
    value: str = "auto",
    species: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The overall rank of Conwell et al. (2021), computed by the one ranking definition of
    :mod:`brainrank.leaderboard.ranking`: models ranked on the mean over (dataset, metric
    configuration) columns of ``metrics``' ``selection`` scores (``None``: ``heldout`` where
    stored, else ``max``), each column the mean over regions, on the cells every model has.
    With one dataset and every region scored by both metrics this is the paper's mean over
    regions of the mean of SRP-Ridge and RSA.

    Columns: data (real / simulated, ranked apart), rank, model, score, ci_low, ci_high
    (NaN below 5 regions), n_regions, n_cells, n_missing, one column per metric (its mean
    over its columns), the (dataset/configuration) columns, family, trained.
    ``result.attrs["notes"]`` says what was ranked and what was left out.
    """
    from brainrank.leaderboard.ranking import combined, rank_models

    base = ["data", "rank", "model", "score", "ci_low", "ci_high", "n_regions"]
    wanted = [m for m in metrics]
    rows = frame[frame["metric"].astype(str).isin(wanted)] if not frame.empty else frame
    rankings = rank_models(
        rows, selection=selection, value=value, ci=ci, n_boot=n_boot, seed=seed,
        species=species,
    )  # fmt: skip
    if not rankings:
        empty = pd.DataFrame(columns=base)
        empty.attrs["notes"] = ["No summary scores of " + ", ".join(wanted) + " to rank."]
        return empty
    info = _model_info(frame)
    parts = []
    for ranking in rankings:
        table = ranking.table.rename(columns={"mean": "score"})
        table.insert(table.columns.get_loc("ci_high") + 1 if "ci_high" in table else 4,
                     "n_regions", ranking.n_units)  # fmt: skip
        configs = (
            ranking.cells.drop_duplicates(["dataset", "config"])
            if not ranking.cells.empty
            else pd.DataFrame(columns=["dataset", "config"])
        )
        metric_of = {}
        for dataset, config in zip(configs["dataset"], configs["config"], strict=True):
            metric = next((m for m in wanted if config == m or config.startswith(m + "(")
                           or config.startswith(m + "#")), config)  # fmt: skip
            metric_of.setdefault(metric, []).append(f"{dataset}/{config}")
        for metric in wanted:
            columns = metric_of.get(metric, [])
            table[metric] = table[columns].mean(axis=1) if columns else np.nan
        for column in info.columns:
            table[column] = [info[column].get(m) for m in table["model"]]
        parts.append(table.assign(data=ranking.group))
    result = pd.concat(parts, ignore_index=True)
    result = result[["data", *[c for c in result.columns if c != "data"]]]
    result.attrs["notes"] = combined(rankings).attrs["notes"]
    return result


@dataclass
class TrainedVsRandom:
    """Per architecture, the trained and the random variant's score; the paired test.

    With fewer than :data:`brainrank.core.stats.MIN_UNITS` pairs, ``t``, ``p_value``,
    ``cohens_d`` and ``hedges_g`` are NaN and ``reason`` says why.
    """

    pairs: pd.DataFrame  # architecture, trained_model, random_model, trained, random, difference
    t: float
    p_value: float
    cohens_d: float
    random_matches_or_beats: list[str] = field(default_factory=list)
    hedges_g: float = float("nan")
    n: int = 0
    reason: str | None = None


def _pair_models(models: Sequence[str]) -> list[tuple[str, str]]:
    """(trained, random) pairs: ``x:random`` goes with ``x`` or with ``x.<tag>``."""
    names = set(models)
    pairs = []
    for random_id in sorted(m for m in names if m.endswith(":random")):
        base = random_id[: -len(":random")]
        trained = [m for m in names if ":" not in m and (m == base or m.split(".")[0] == base)]
        for t in sorted(trained):
            pairs.append((t, random_id))
    return pairs


def trained_vs_random(
    frame: pd.DataFrame, metric: str = "srp-ridge", selection: str = "max"
) -> TrainedVsRandom:
    """Paired comparison of trained and randomly initialised variants of the same
    architectures on a metric (each model's score: its mean over regions): paired t-test,
    Cohen's d_z (mean difference / SD of the differences, as Conwell et al. 2021 report)
    and Hedges' g (d_z times ``1 - 3 / (4 (n - 1) - 1)``). Fewer than 5 pairs: no test or
    effect size, a ``reason`` instead."""
    table = region_scores(frame, metric, selection)
    if table.empty:
        raise InputError(f"no {selection!r} scores of metric {metric!r} in the leaderboard.")
    per_model = table.mean(axis=1)
    pairs = _pair_models(per_model.index)
    if len(pairs) < 2:
        raise InputError(
            f"trained vs random needs at least 2 architectures scored both trained and "
            f"':random' on {metric!r}; found {len(pairs)}."
        )
    rows = [
        {
            "architecture": trained.split(":")[0],
            "trained_model": trained,
            "random_model": random_id,
            "trained": float(per_model[trained]),
            "random": float(per_model[random_id]),
        }
        for trained, random_id in pairs
    ]
    pairs_frame = pd.DataFrame(rows)
    pairs_frame["difference"] = pairs_frame["trained"] - pairs_frame["random"]
    beaten = pairs_frame.loc[pairs_frame["difference"] <= 0, "architecture"].tolist()
    n = int(np.isfinite(pairs_frame["difference"]).sum())
    reason = stats.too_few(n, "trained/random pairs")
    if reason is not None:
        nan = float("nan")
        return TrainedVsRandom(pairs_frame, nan, nan, nan, beaten, nan, n, reason)
    test = stats.paired_ttest(pairs_frame["trained"], pairs_frame["random"])
    d = stats.cohens_d_paired(pairs_frame["trained"], pairs_frame["random"])
    g = stats.hedges_g(pairs_frame["trained"], pairs_frame["random"], paired=True)
    return TrainedVsRandom(pairs_frame, test.statistic, test.p_value, d, beaten, g, n)


def metric_agreement(
    frame: pd.DataFrame,
    a: str = "srp-ridge",
    b: str = "rsa",
    selection: str = "max",
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Spearman rank agreement between two metrics, with bootstrap CIs.

    Rows:

    - ``models``: rho over models of their ``selection`` scores (mean over regions);
      ``trained models``: the same without random variants and untrained baselines;
    - ``layers (model x area)``: the mouse paper's layer-by-layer statistic (Conwell et al.
      2021, "we decompose the Spearman correlation across distinct combinations of model
      and cortical area"): for every model and area, the Spearman rho between the two
      metrics' per-layer scores (mean over subjects), averaged over the model x area
      combinations, with a percentile bootstrap CI over combinations;
      ``layers (model x area), trained models``: the same without random models;
    - ``layers (pooled)``: rho over every layer of every model pooled (each layer's mean over
      regions; brainrank's earlier statistic, kept for comparison).

    ``n`` is the number of units (models, combinations or layers). With fewer than 5 units
    the CI is not given (NaN) and ``note`` says why.
    """
    out = []
    ta, tb = region_scores(frame, a, selection), region_scores(frame, b, selection)
    info = _model_info(frame)
    is_trained = (
        (lambda m: bool(info.loc[m, "trained"])) if "trained" in info.columns else (lambda m: True)
    )
    if not ta.empty and not tb.empty:
        common = ta.index.intersection(tb.index)
        sa, sb = ta.loc[common].mean(axis=1), tb.loc[common].mean(axis=1)
        if len(common) >= 3:
            out.append(_agreement("models", sa, sb, n_boot, seed))
        if "trained" in info.columns:
            trained = [m for m in common if is_trained(m)]
            if len(trained) >= 3:
                out.append(_agreement("trained models", sa[trained], sb[trained], n_boot, seed))
    la = _layer_table(frame, a)
    lb = _layer_table(frame, b)
    if not la.empty and not lb.empty:
        joined = la.to_frame("a").join(lb.to_frame("b"), how="inner").dropna()
        combos = []
        for (model, _area), group in joined.groupby(level=["model", "area"]):
            if len(group) >= 3 and group["a"].nunique() > 1 and group["b"].nunique() > 1:
                rho = float(scipy_spearman(group["a"].to_numpy(), group["b"].to_numpy()))
                combos.append((model, rho))
        for name, keep in [
            ("layers (model x area)", lambda m: True),
            ("layers (model x area), trained models", is_trained),
        ]:
            values = np.asarray([rho for m, rho in combos if keep(m)])
            if values.size == 0 or (name.endswith("trained models") and values.size == len(combos)):
                continue
            out.append(_mean_with_ci(name, values, n_boot, seed))
        pooled = joined.groupby(level=["model", "layer"])[["a", "b"]].mean()
        if len(pooled) >= 3:
            out.append(_agreement("layers (pooled)", pooled["a"], pooled["b"], n_boot, seed))
    return pd.DataFrame(out, columns=["comparison", "rho", "ci_low", "ci_high", "n", "note"])


def scipy_spearman(x: np.ndarray, y: np.ndarray) -> float:
    import scipy.stats

    return float(scipy.stats.spearmanr(x, y).statistic)


def _mean_with_ci(name: str, values: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    row: dict[str, Any] = {"comparison": name, "rho": float(values.mean()), "n": int(values.size)}
    note = stats.too_few(int(values.size), "model x area combinations")
    if note is None:
        low, high = stats.bootstrap_ci(values, np.mean, n_boot=n_boot, seed=seed)
        row.update(ci_low=float(low), ci_high=float(high), note="")
    else:
        row.update(ci_low=np.nan, ci_high=np.nan, note=note)
    return row


def _layer_table(frame: pd.DataFrame, metric: str) -> pd.Series:
    """Per-layer scores of ``metric``, mean over subjects, indexed (model, area, layer)."""
    rows = frame[(frame["metric"] == metric) & (frame["selection"] == "layer")]
    if rows.empty:
        return pd.Series(dtype=float)
    rows = rows.assign(area=_area(rows))
    return rows.groupby(["model", "area", "layer"])["score"].mean()


def _agreement(name: str, a: pd.Series, b: pd.Series, n_boot: int, seed: int) -> dict[str, Any]:
    n = len(a)
    note = stats.too_few(n, "items")
    if note is None:
        rho, low, high = stats.spearman_rank_agreement(
            np.asarray(a), np.asarray(b), n_boot=n_boot, seed=seed
        )
        return {"comparison": name, "rho": rho, "ci_low": low, "ci_high": high, "n": n, "note": ""}
    rho = scipy_spearman(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    return {"comparison": name, "rho": rho, "ci_low": np.nan, "ci_high": np.nan, "n": n,
            "note": note}  # fmt: skip


# --------------------------------------------------------------------------- model properties

#: what :func:`score_vs_property` correlates with: columns of the models table, and two
#: properties read from the score rows
PROPERTIES = {
    "n_params": "number of parameters (the models table's n_params)",
    "imagenet_top1": "published ImageNet top-1 accuracy, % (the models table's imagenet_top1)",
    "n_layers": "depth of the model: the number of distinct layers with per-layer scores",
    "best_layer_depth": "relative depth (0 first, 1 last) of the best layer, mean over regions",
}


@dataclass
class PropertyCorrelation:
    """Spearman's rho between models' scores and one of their properties, with a percentile
    bootstrap CI over models and scipy's p-value; ``table``: model, score, value. With fewer
    than :data:`~brainrank.core.stats.MIN_UNITS` models with both, no p-value or CI
    (``reason`` says why)."""

    property: str
    metric: str
    rho: float
    p_value: float
    ci_low: float
    ci_high: float
    n: int
    table: pd.DataFrame
    reason: str | None = None


def model_property(
    frame: pd.DataFrame,
    name: str,
    models: pd.DataFrame | None = None,
    metric: str = "srp-ridge",
    selection: str = "max",
) -> pd.Series:
    """One property per model (see :data:`PROPERTIES`), indexed by model. ``models``: the
    models table (:func:`brainrank.leaderboard.models`) for ``n_params`` and
    ``imagenet_top1`` when ``frame`` does not carry those columns."""
    if name not in PROPERTIES:
        raise InputError(f"unknown model property {name!r}; choose one of {', '.join(PROPERTIES)}.")
    if name == "n_layers":
        rows = frame[(frame["metric"] == metric) & (frame["selection"] == "layer")]
        if rows.empty:
            rows = frame[frame["selection"] == "layer"]
        return rows.groupby("model")["layer"].nunique().astype(float)
    if name == "best_layer_depth":
        rows = frame[(frame["metric"] == metric) & (frame["selection"] == selection)]
        rows = rows.dropna(subset=["relative_depth"])
        return rows.groupby("model")["relative_depth"].mean()
    source = frame if name in frame.columns else models
    if source is None or name not in source.columns:
        raise InputError(
            f"no {name!r} column: {PROPERTIES[name]}. It comes from the models table of a "
            "leaderboard whose models carry the taxonomy (pass models=brainrank.leaderboard."
            "models(db)); models registered without it have none."
        )
    key = "model" if "model" in source.columns else "identifier"
    values = pd.to_numeric(source.groupby(key)[name].first(), errors="coerce")
    return values.rename_axis("model")


def score_vs_property(
    frame: pd.DataFrame,
    property: str,
    *,
    models: pd.DataFrame | None = None,
    metric: str = "srp-ridge",
    selection: str = "max",
    trained: bool | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> PropertyCorrelation:
    """Spearman rank correlation between the models' scores on ``metric`` (their
    ``selection`` rows, mean over regions and subjects) and ``property``: the number of
    parameters, the ImageNet top-1 accuracy, the model's depth (number of layers) or the
    relative depth of its best layer (Conwell et al. 2021, section 3.3: "a small, positive
    correlation between the depth of a model (the number of distinct layers)" and the scores,
    "a small, negative correlation for the total number of trainable parameters", no
    significant one with top-1). ``trained``: only trained (True) or only random (False)
    models; None: all. Models without the property are left out; the CI is a percentile
    bootstrap over models, the p-value scipy's (t approximation)."""
    table = region_scores(frame, metric, selection)
    if table.empty:
        raise InputError(f"no {selection!r} scores of metric {metric!r} in these rows.")
    scores = table.mean(axis=1).rename("score")
    if trained is not None:
        info = _model_info(frame)
        if "trained" in info.columns:
            keep = [m for m in scores.index if bool(info["trained"].get(m)) == trained]
            scores = scores[keep]
    values = model_property(frame, property, models, metric, selection).rename("value")
    both = pd.concat([scores, values], axis=1, join="inner").dropna()
    both = both.rename_axis("model").reset_index()
    n = len(both)
    nan = float("nan")
    if n < 3 or both["value"].nunique() < 2 or both["score"].nunique() < 2:
        reason = (
            f"only {n} models with both a {metric} score and {property!r}"
            if n < 3
            else f"{property!r} or the score is constant over the {n} models"
        )
        return PropertyCorrelation(property, metric, nan, nan, nan, nan, n, both, reason)
    import scipy.stats

    result = scipy.stats.spearmanr(both["score"], both["value"])
    reason = stats.too_few(n, "models")
    if reason is not None:
        return PropertyCorrelation(property, metric, float(result.statistic), nan, nan, nan, n,
                                   both, reason)  # fmt: skip
    rho, low, high = stats.spearman_rank_agreement(both["score"], both["value"], n_boot=n_boot,
                                                   seed=seed)  # fmt: skip
    return PropertyCorrelation(property, metric, rho, float(result.pvalue), low, high, n, both)


def property_correlations(
    frame: pd.DataFrame,
    *,
    models: pd.DataFrame | None = None,
    metrics: Sequence[str] = SEED_METRICS,
    properties: Sequence[str] = tuple(PROPERTIES),
    selection: str = "max",
    trained: bool | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`score_vs_property` for every metric and property: one row each (metric,
    property, rho, p_value, ci_low, ci_high, n, note); a property the leaderboard lacks
    gets a row whose note says so."""
    rows = []
    for metric in metrics:
        for name in properties:
            try:
                r = score_vs_property(frame, name, models=models, metric=metric,
                                      selection=selection, trained=trained, n_boot=n_boot,
                                      seed=seed)  # fmt: skip
            except InputError as exc:
                rows.append({"metric": metric, "property": name, "n": 0, "note": str(exc)})
                continue
            rows.append({"metric": metric, "property": name, "rho": r.rho, "p_value": r.p_value,
                         "ci_low": r.ci_low, "ci_high": r.ci_high, "n": r.n,
                         "note": r.reason or ""})  # fmt: skip
    columns = ["metric", "property", "rho", "p_value", "ci_low", "ci_high", "n", "note"]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- dataset options


@dataclass
class OptionSweep:
    """Scores of runs that differ in one dataset option (a reliability threshold, a cre
    line...). ``scores``: model x option value (each model's mean over regions of its
    ``selection`` rows on the dataset built with that value); ``summary``: per value the
    mean over models with a percentile bootstrap CI over models (NaN below 5 models),
    ``n_models`` and the dataset entry; ``notes``."""

    option: str
    metric: str
    scores: pd.DataFrame
    summary: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def option_datasets(frame: pd.DataFrame, option: str, default: Any = None) -> dict[Any, str]:
    """``{option value: dataset}`` for the datasets of ``frame`` built with ``option`` set.

    A dataset built with options other than its factory's defaults is a dataset entry of
    its own, named by them in parentheses (``allen/natural-scenes(reliability_threshold=0.5)``,
    ``allen/natural-scenes(cre_lines=["Cux2-CreERT2"])``; values bare or JSON, as
    ``brainrank run --dataset-option`` writes them); rows may also carry a
    ``dataset_options`` column (a dict per row). ``default``: the factory's default value
    of ``option``, which names the base dataset itself (an option set to its default is no
    option): the base entry is then that value's dataset, when some variant of it is there.
    Values are numbers where they read as numbers; a list of one value is that value, a
    longer list its values joined by commas."""
    found: dict[Any, str] = {}
    if "dataset_options" in frame.columns:
        for dataset, options in zip(frame["dataset"], frame["dataset_options"], strict=True):
            if isinstance(options, dict) and option in options:
                found.setdefault(_option_value(options[option]), str(dataset))
    bases = set()
    for dataset in sorted(set(frame["dataset"].astype(str))):
        base, options = _variant_options(dataset)
        if option in options:
            found.setdefault(_option_value(options[option]), dataset)
            bases.add(base)
    if default is not None:
        for base in sorted(bases):
            if base in set(frame["dataset"].astype(str)):
                found.setdefault(_option_value(default), base)
    return found


def _variant_options(identifier: str) -> tuple[str, dict[str, Any]]:
    """``("allen/natural-scenes", {"reliability_threshold": 0.5})`` from
    ``"allen/natural-scenes(reliability_threshold=0.5)"``; ``(identifier, {})`` when it names
    no options (or they cannot be read)."""
    import json
    import re

    start = identifier.find("(")
    if start < 0 or not identifier.endswith(")"):
        return identifier, {}
    text, options, decoder, position = identifier[start + 1 : -1], {}, json.JSONDecoder(), 0
    key = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")
    while position < len(text):
        match = key.match(text, position)
        if match is None:
            return identifier, {}
        position = match.end()
        value: Any = None
        end = -1
        if position < len(text) and text[position] in '["{':
            try:
                value, end = decoder.raw_decode(text, position)
            except ValueError:
                end = -1
        if end < 0:
            comma = text.find(",", position)
            end = len(text) if comma < 0 else comma
            value = text[position:end]
        options[match.group(1)] = value
        position = end + 1
    return identifier[:start], options


def _option_value(text: Any) -> Any:
    if isinstance(text, (list, tuple)):
        return _option_value(text[0]) if len(text) == 1 else ",".join(str(t) for t in text)
    if isinstance(text, bool) or text is None:
        return str(text)
    try:
        return float(text)
    except (TypeError, ValueError):
        return str(text).strip("'\"")


def option_sweep(
    frame: pd.DataFrame,
    option: str,
    datasets: Mapping[Any, str] | None = None,
    *,
    default: Any = None,
    metric: str = "srp-ridge",
    selection: str = "max",
    n_boot: int = 1000,
    seed: int = 0,
) -> OptionSweep:
    """Scores of every model on the datasets ``datasets`` ({option value: dataset entry as
    stored in the ``dataset`` column}; default :func:`option_datasets`), one column per
    value, and per value the mean over models with a bootstrap CI across models (as the
    mouse paper's Figure 6 and Figure 10). Datasets built with other options are other
    data: each is a separate dataset entry of the leaderboard. ``default``: the factory's
    default value of ``option`` (its dataset is the base entry, see
    :func:`option_datasets`)."""
    datasets = dict(option_datasets(frame, option, default) if datasets is None else datasets)
    if not datasets:
        raise InputError(
            f"no datasets built with dataset option {option!r} in these rows: score the "
            f"dataset with each value (brainrank run --dataset-option NAME.{option}=VALUE) "
            "or pass datasets={value: dataset}."
        )
    columns, notes = {}, []
    for value, dataset in sorted(datasets.items(), key=lambda kv: _sort_key(kv[0])):
        table = region_scores(frame, metric, selection, dataset=dataset)
        if table.empty:
            notes.append(f"{option}={value}: no {selection!r} {metric} rows of {dataset}.")
            continue
        columns[value] = table.mean(axis=1)
    if not columns:
        raise InputError(f"no {selection!r} scores of {metric!r} on {sorted(datasets.values())}.")
    scores = pd.DataFrame(columns)
    scores.columns.name = option
    rows = []
    for value in scores.columns:
        values = scores[value].dropna().to_numpy(dtype=np.float64)
        row = {option: value, "dataset": datasets[value], "mean": float(values.mean()),
               "ci_low": np.nan, "ci_high": np.nan, "n_models": int(values.size)}  # fmt: skip
        if stats.too_few(values.size, "models") is None:
            low, high = stats.bootstrap_ci(values, np.mean, n_boot=n_boot, seed=seed)
            row.update(ci_low=float(low), ci_high=float(high))
        rows.append(row)
    summary = pd.DataFrame(rows)
    if (summary["n_models"] < stats.MIN_UNITS).any():
        notes.append(
            "No CI where fewer than 5 models were scored (a bootstrap over so few only "
            "brackets their min and max)."
        )
    missing = scores.isna().any(axis=1)
    if missing.any():
        notes.append(
            f"{int(missing.sum())} models lack some {option} values; each value's mean is "
            "over the models scored with it."
        )
    return OptionSweep(option, metric, scores, summary, notes)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, float) else (1, str(value))


def reliability_sweep(
    frame: pd.DataFrame,
    datasets: Mapping[float, str] | None = None,
    *,
    metrics: Sequence[str] = SEED_METRICS,
    option: str = "reliability_threshold",
    default: Any = 0.8,
    selection: str = "max",
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, OptionSweep]:
    """The mouse paper's reliability-threshold sweep (Conwell et al. 2021, appendix A.6,
    Figure 6): per metric, every model's score at each split-half reliability threshold of
    the Allen neurons kept (``allen/natural-scenes`` built with ``reliability_threshold``),
    and the mean over models with a bootstrap CI across models. Metrics without such
    scores are left out. ``default``: the threshold of the base dataset (the Allen
    factory's default and the paper's, 0.8)."""
    out = {}
    for metric in metrics:
        try:
            out[metric] = option_sweep(frame, option, datasets, default=default, metric=metric,
                                       selection=selection, n_boot=n_boot, seed=seed)  # fmt: skip
        except InputError:
            continue
    if not out:
        raise InputError(
            f"no scores of {', '.join(metrics)} on datasets built with different {option} "
            "values: score allen/natural-scenes with each (brainrank run --dataset-option "
            f"allen/natural-scenes.{option}=0.5 ...)."
        )
    return out


def cre_line_breakdown(
    frame: pd.DataFrame,
    datasets: Mapping[str, str] | None = None,
    *,
    metric: str = "srp-ridge",
    option: str = "cre_lines",
    selection: str = "max",
    n_boot: int = 1000,
    seed: int = 0,
) -> OptionSweep:
    """The mouse paper's breakdown by genetic cre line (appendix A.10, Figure 10): the
    scores of every model on the Allen neurons of each cre line (``allen/natural-scenes``
    built with ``cre_lines`` set to one line), the facets in descending order of their
    mean score, as the paper shows them."""
    sweep = option_sweep(frame, option, datasets, metric=metric, selection=selection,
                         n_boot=n_boot, seed=seed)  # fmt: skip
    order = sweep.summary.sort_values("mean", ascending=False, kind="stable")
    sweep.summary = order.reset_index(drop=True)
    sweep.scores = sweep.scores[list(order[option])]
    return sweep


# --------------------------------------------------------------------------- architectures


@dataclass
class GroupContrast:
    """One family against the other models: t test, Hedges' g, the two groups' sizes and
    means. ``test``: ``"welch"`` or ``"student"``. Fewer than 5 models in a group: no
    statistics, ``reason`` says why."""

    family: str
    metric: str
    n_family: int
    n_other: int
    mean_family: float
    mean_other: float
    t: float
    df: float
    p_value: float
    hedges_g: float
    test: str
    reason: str | None = None
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


def family_contrast(
    frame: pd.DataFrame,
    family: str = "transformer",
    metric: str = "srp-ridge",
    selection: str = "max",
    *,
    trained_only: bool = True,
    equal_var: bool = False,
) -> GroupContrast:
    """The models of ``family`` against all other models on ``metric`` (each model's mean
    over regions of its ``selection`` rows): a two-sample t test and Hedges' g (independent
    samples, pooled SD, small-sample correction). Conwell et al. 2021, section 3.3:
    "Compared to all other architectures, transformers on average fare slightly worse in the
    RSA Max metric (student's t = -3.96, p = 0.004, Hedge's g = -0.913), but moderately
    better in the SRP-Ridge Max metric (t = 2.45, p = 0.023, g = 0.633)". Those t and p fit
    Welch's unequal-variance test (about 8 and 21 degrees of freedom) and not Student's
    pooled one (about 90: p < 0.001 for t = -3.96), so ``equal_var=False`` (Welch) is the
    default. ``trained_only``: trained models only (the paper's contrast of architectures);
    hand-made baselines are never in either group."""
    table = region_scores(frame, metric, selection)
    if table.empty:
        raise InputError(f"no {selection!r} scores of metric {metric!r} in these rows.")
    per_model = table.mean(axis=1)
    info = _model_info(frame)
    if "family" not in info.columns:
        raise InputError("these rows have no model family to group by.")
    rows = []
    for model, score in per_model.items():
        fam = info["family"].get(model)
        trained = bool(info["trained"].get(model)) if "trained" in info.columns else True
        if trained_only and not trained:
            continue
        if not trained_only and fam == "other" and not trained:  # a hand-made baseline
            continue
        rows.append({"model": model, "family": fam, "group": family if fam == family else "other",
                     "score": float(score)})  # fmt: skip
    grouped = pd.DataFrame(rows, columns=["model", "family", "group", "score"])
    a = grouped.loc[grouped["group"] == family, "score"].to_numpy(dtype=np.float64)
    b = grouped.loc[grouped["group"] != family, "score"].to_numpy(dtype=np.float64)
    nan = float("nan")
    test = "student" if equal_var else "welch"
    reason = stats.too_few(min(a.size, b.size), f"models in the smaller group ({family} or other)")
    if reason is not None:
        return GroupContrast(family, metric, a.size, b.size, _mean(a), _mean(b), nan, nan, nan,
                             nan, test, reason, grouped)  # fmt: skip
    result = stats.two_sample_ttest(a, b, equal_var=equal_var)
    g = stats.hedges_g(a, b, paired=False)
    return GroupContrast(family, metric, a.size, b.size, _mean(a), _mean(b), result.statistic,
                         float(result.df), result.p_value, g, test, None, grouped)  # fmt: skip


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else float("nan")


def trained_vs_random_by_architecture(
    frame: pd.DataFrame,
    per_neuroid: pd.DataFrame | None = None,
    *,
    metric: str = "srp-ridge",
    selection: str = "max",
    families: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per architecture, a paired t test of its trained against its randomly initialised
    variant, with Bonferroni correction across the architectures tested (Conwell et al.
    2021, section 3.3: "transformers and MLP-Mixers boast the largest differences between
    ImageNet-trained and randomly initialized variants in the SRP-Ridge Max metric, with all
    pairwise t-tests significant at alpha = 0.05 after Bonferroni correction").

    The pairs are the units both variants were scored on: neuroids when ``per_neuroid``
    (rows of :func:`brainrank.leaderboard.per_neuroid` for these models' ``selection`` rows)
    is given, matched by subject, region and neuroid id; else the (subject, region) cells of
    ``frame``. ``families``: only architectures of these families. Columns: architecture,
    family, trained_model, random_model, unit, n, mean_trained, mean_random, difference, t,
    p_value, p_bonferroni (p times the number of architectures tested, at most 1),
    hedges_g (paired), significant (p_bonferroni < ``alpha``), note."""
    rows = frame[(frame["metric"] == metric) & (frame["selection"] == selection)]
    if rows.empty:
        raise InputError(f"no {selection!r} scores of metric {metric!r} in these rows.")
    info = _model_info(frame)
    pairs = _pair_models(sorted(set(rows["model"])))
    if families is not None and "family" in info.columns:
        pairs = [(t, r) for t, r in pairs if info["family"].get(t) in set(families)]
    if not pairs:
        raise InputError(
            f"no architecture is scored both trained and ':random' on {metric!r}"
            + (f" among the families {list(families)}." if families else ".")
        )
    use_neuroids = per_neuroid is not None and not per_neuroid.empty
    if use_neuroids:
        units = per_neuroid[(per_neuroid["metric"] == metric)
                            & (per_neuroid["selection"] == selection)]  # fmt: skip
        units = units.assign(unit=units["subject"].astype(str) + "/" + units["region"].astype(str)
                             + "/" + units["neuroid_id"].astype(str))  # fmt: skip
        values = units.pivot_table(index="unit", columns="model", values="value", aggfunc="mean")
    else:
        units = rows.assign(unit=rows["subject"].astype(str) + "/" + rows["region"].astype(str))
        values = units.pivot_table(index="unit", columns="model", values="score", aggfunc="mean")
    out = []
    for trained, random_id in pairs:
        row = {"architecture": trained.split(":")[0], "family": info["family"].get(trained)
               if "family" in info.columns else None, "trained_model": trained,
               "random_model": random_id, "unit": "neuroids" if use_neuroids else "cells"}  # fmt: skip
        if trained not in values.columns or random_id not in values.columns:
            out.append({**row, "n": 0, "note": "no shared units"})
            continue
        both = values[[trained, random_id]].dropna()
        a, b = both[trained].to_numpy(np.float64), both[random_id].to_numpy(np.float64)
        row.update(n=len(both), mean_trained=_mean(a), mean_random=_mean(b),
                   difference=_mean(a - b))  # fmt: skip
        reason = stats.too_few(len(both), f"paired {row['unit']}")
        if reason is None and np.std(a - b) > 0:
            test = stats.paired_ttest(a, b)
            row.update(t=test.statistic, p_value=test.p_value,
                       hedges_g=stats.hedges_g(a, b, paired=True), note="")  # fmt: skip
        else:
            row.update(note=reason or "no variation in the differences")
        out.append(row)
    columns = ["architecture", "family", "trained_model", "random_model", "unit", "n",
               "mean_trained", "mean_random", "difference", "t", "p_value", "p_bonferroni",
               "hedges_g", "significant", "note"]  # fmt: skip
    table = pd.DataFrame(out).reindex(columns=columns)
    p = table["p_value"].to_numpy(dtype=np.float64)
    tested = int(np.isfinite(p).sum())
    table["p_bonferroni"] = np.minimum(1.0, p * tested) if tested else np.nan
    table["significant"] = table["p_bonferroni"] < alpha
    table.attrs["notes"] = [
        f"Paired t tests over {'neuroids' if use_neuroids else '(subject, region) cells'} of "
        f"each architecture's trained and random variants; Bonferroni over the {tested} "
        f"architectures tested (p x {tested}); significant at {alpha}."
    ]
    return table
