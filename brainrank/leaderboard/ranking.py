"""The one ranking definition, shared by the CLI, the Python API, the report and the web page.

A model's rank compares like with like:

- **Cells.** A score is kept apart per *cell*: (dataset, metric configuration, region,
  subject). A metric configuration is the metric identifier with its exact parameters
  (``metric_hash``): two settings of one metric are two configurations, named by a readable
  parameter summary (``srp-ridge(alphas=1e8)``, see :func:`config_labels`) and never
  averaged together.
- **Only shared cells are ranked.** Models are ranked on the cells that *every* ranked model
  has. A cell that some model lacks is left out for everyone and listed (which cell, which
  models lack it); each model's ``n_missing`` counts the cells it lacks. Nothing missing is
  ever averaged over silently.
- **Headline value.** Per (dataset, configuration) the layer choice is ``heldout`` (the
  layer chosen on one half of the stimuli, scored on the other: a held-out split cannot
  beat it by chance) where the metric stores one, else ``max`` (the best layer, an
  optimistic choice); the notes say which. ``selection=`` forces one policy.
- **Ceiling-normalised where a ceiling exists.** ``value="auto"`` ranks ``normalized``
  (score / ceiling) in every cell whose rows all have a ceiling and the raw score elsewhere,
  and the notes name the raw cells; ``"normalized"`` keeps only cells with a ceiling,
  ``"score"`` ranks raw scores everywhere.
- **Simulated data apart.** Datasets whose species is ``"simulated"`` are ranked in their
  own ranking, never averaged with real data.
- **Aggregation.** A column is one (dataset, configuration): the mean over its shared
  regions of the subject-averaged cell values. A model's ``mean`` is the mean of its
  columns. The confidence interval is a percentile bootstrap over (dataset, region) units,
  resampled within each dataset (each resample recomputes every column, then their mean),
  printed only with at least :data:`MIN_UNITS` units: with fewer, a "95% CI" is little
  more than the units' min and max, and the notes say so.
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core import stats
from brainrank.core.errors import InputError

#: selections that are not a layer choice: per-layer rows and per-layer statistics (the
#: fraction of significant voxels of ``encoding:taskonomy``); every other selection is a
#: summary row (``max``, ``heldout``, ``stacked``, ``generalisation``...)
NOT_SUMMARY = ("layer", "significance")

#: fewest resampling units (regions) for a bootstrap CI or a test to be printed
MIN_UNITS = stats.MIN_UNITS
#: layer-choice policies of the headline value, in order of preference
HEADLINE_SELECTIONS = ("heldout", "max")
VALUES = ("auto", "score", "normalized")
SIMULATED = "simulated"
REAL = "real"

CELL = ["dataset", "config", "region", "subject"]


# --------------------------------------------------------------------------- configurations


def format_value(value: Any) -> str:
    """A parameter value written short: ``1e8`` not ``100000000.0``, ``[1]`` as ``1``."""
    if isinstance(value, (list, tuple)):
        if len(value) == 1:
            return format_value(value[0])
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e5:
            return str(int(value))
        text = f"{value:.6g}"
        return text.replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={format_value(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


def parameter_summary(
    parameters: Mapping[str, Any] | None, keys: Sequence[str] | None = None
) -> str:
    """``a=1, b=1e8`` for ``parameters`` (only ``keys`` when given), sorted by name."""
    if not parameters:
        return ""
    names = sorted(parameters) if keys is None else [k for k in keys if k in parameters]
    return ", ".join(f"{k}={format_value(parameters[k])}" for k in names)


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


def config_label_map(
    configs: Sequence[tuple[str, str]],
    parameters: Mapping[tuple[str, str], Mapping[str, Any] | None] | None = None,
) -> dict[tuple[str, str], str]:
    """A readable, unique name per (metric, config_hash).

    A metric with one configuration is named by its identifier (a preset's identifier, e.g.
    ``srp-ridge:nsd``, already names its settings). Several configurations of one metric
    are named by the parameters in which they differ: ``srp-ridge(alphas=1)`` and
    ``srp-ridge(alphas=1e8)``; where the parameters are not known (the metric was never
    registered with the leaderboard) or do not tell two apart, by ``metric#hash``.
    """
    parameters = parameters or {}
    by_metric: dict[str, list[str]] = {}
    for metric, config_hash in dict.fromkeys((str(m), str(h)) for m, h in configs):
        by_metric.setdefault(metric, []).append(config_hash)
    out: dict[tuple[str, str], str] = {}
    for metric, hashes in by_metric.items():
        if len(hashes) == 1:
            out[(metric, hashes[0])] = metric
            continue
        known = {h: parameters.get((metric, h)) for h in hashes}
        keys = sorted({k for p in known.values() if p for k in p})
        differing = [
            k
            for k in keys
            if len({_hashable((p or {}).get(k, "<default>")) for p in known.values()}) > 1
        ]
        labels = {}
        for h, p in known.items():
            if p is None or not differing:
                labels[h] = f"{metric}#{h[:6]}"
            else:
                shown = {k: p.get(k, "default") for k in differing}
                labels[h] = f"{metric}({parameter_summary(shown)})"
        counts = pd.Series(list(labels.values())).value_counts()
        for h, label in labels.items():
            if counts[label] > 1 and not label.endswith(h[:6]):
                label = f"{label}#{h[:6]}"
            out[(metric, h)] = label
    return out


def config_labels(
    frame: pd.DataFrame,
    parameters: Mapping[tuple[str, str], Mapping[str, Any] | None] | None = None,
    known: Sequence[tuple[str, str]] = (),
) -> pd.Series:
    """The configuration name of every row of ``frame`` (see :func:`config_label_map`);
    ``known`` adds configurations stored elsewhere so that a name does not change when a
    filter hides the other configurations of its metric."""
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=object)
    hashes = frame["metric_hash"] if "metric_hash" in frame.columns else pd.Series("", frame.index)
    pairs = list(zip(frame["metric"].astype(str), hashes.astype(str), strict=True))
    mapping = config_label_map([*known, *pairs], parameters)
    return pd.Series([mapping[p] for p in pairs], index=frame.index, dtype=object)


def _with_config(frame: pd.DataFrame) -> pd.DataFrame:
    if "config" in frame.columns:
        return frame
    return frame.assign(config=config_labels(frame))


# --------------------------------------------------------------------------- data groups


def data_groups(datasets: pd.Series, species: Mapping[str, Any] | None = None) -> pd.Series:
    """``"simulated"`` for datasets whose species is simulated, else ``"real"``. A dataset
    the leaderboard has no metadata for is simulated when its identifier says so."""
    species = species or {}

    def group(dataset: str) -> str:
        found = species.get(dataset)
        if found is None or (isinstance(found, float) and math.isnan(found)):
            return SIMULATED if dataset.split(":")[0].split("/")[0] == SIMULATED else REAL
        return SIMULATED if str(found).strip().lower() == SIMULATED else REAL

    return datasets.astype(str).map(group)


# --------------------------------------------------------------------------- bootstrap


def _nanmean(x: np.ndarray, axis: int = 0) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def _mean_of_column_means(resamples: np.ndarray, axis: int) -> np.ndarray:
    """The mean over units of each column, then over columns (NaN-aware)."""
    means = _nanmean(resamples, axis=axis)
    return _nanmean(means, axis=-1) if means.ndim > 1 else means


def bootstrap_mean_ci(values: np.ndarray, ci: float, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile-bootstrap ``(low, high)`` of the mean over the first axis (units); for a
    2-D ``values`` (units x columns) the statistic is the mean of the column means. NaN
    with fewer than 2 units (units without any finite value are left out). The bootstrap
    is :func:`brainrank.core.stats.bootstrap_ci`'s."""
    if not 0 < ci < 1:
        raise InputError(f"ci must be in (0, 1), got {ci}.")
    finite_rows = np.isfinite(values).reshape(values.shape[0], -1).any(axis=1)
    values = values[finite_rows]
    if values.shape[0] < 2:
        return float("nan"), float("nan")
    low, high = stats.bootstrap_ci(values, _mean_of_column_means, n_boot=n_boot, ci=ci, seed=seed,
                             omit_nan=True)  # fmt: skip
    return float(low), float(high)


def _stratified_ci(units: pd.DataFrame, ci: float, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap of the mean of column means, resampling each dataset's regions
    within that dataset (so every column stays in every resample: a dataset with few
    regions is never dropped from a draw). With one dataset the draws are those of
    :func:`bootstrap_mean_ci`."""
    matrix = units.pivot_table(index=["dataset", "region"], columns="column", values="value")
    datasets = units.drop_duplicates("column").set_index("column")["dataset"]
    columns = sorted(matrix.columns, key=lambda c: (datasets[c], c))  # dataset by dataset
    low, high = stats.bootstrap_ci(
        matrix[columns].to_numpy(dtype=np.float64), _mean_of_column_means, n_boot=n_boot,
        ci=ci, seed=seed, strata=matrix.index.get_level_values("dataset"), omit_nan=True,
    )  # fmt: skip
    return float(low), float(high)


def too_few(n: int, what: str = "regions", min_units: int = MIN_UNITS) -> str | None:
    """Why a CI or a test over ``n`` units is not printed, or None when ``n`` is enough."""
    if n >= min_units:
        return None
    return (
        f"no confidence interval: {n} {what} (at least {min_units} needed; over so few, a "
        "bootstrap interval only brackets their min and max)"
    )


# --------------------------------------------------------------------------- the ranking


@dataclass
class Ranking:
    """One ranking (of real or of simulated data).

    ``table``: rank, model, mean, [ci_low, ci_high,] n_cells, n_missing and one column per
    (dataset, configuration) in ``columns``. ``cells``: the ranked cells (dataset, config,
    region, subject, selection, value). ``excluded``: cells left out because some model
    lacks them (with ``missing_for``). ``notes``: what the numbers are, in sentences.
    """

    group: str
    table: pd.DataFrame
    columns: list[str] = field(default_factory=list)
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    excluded: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    n_units: int = 0
    with_ci: bool = False

    @property
    def title(self) -> str:
        return "simulated data" if self.group == SIMULATED else "real data"


def _headline(rows: pd.DataFrame, selection: str | None) -> tuple[pd.DataFrame, dict[str, str]]:
    """The summary rows ranked on and, per (dataset, config) column, the policy used."""
    summary = rows[~rows["selection"].isin(NOT_SUMMARY)]
    chosen: dict[str, str] = {}
    parts = []
    for (dataset, config), part in summary.groupby(["dataset", "config"], sort=True):
        have = set(part["selection"])
        if selection is not None:
            wanted = [p for p in fnmatch.filter(sorted(have), selection)]
            if len(wanted) > 1:
                raise InputError(
                    f"selection {selection!r} matches several layer choices {wanted} of "
                    f"{dataset}/{config}; rank on one."
                )
        else:
            wanted = [p for p in HEADLINE_SELECTIONS if p in have][:1]
        if not wanted:
            chosen[f"{dataset}/{config}"] = ""  # no row of the policy asked for
            continue
        chosen[f"{dataset}/{config}"] = wanted[0]
        parts.append(part[part["selection"] == wanted[0]])
    if not parts:
        return summary.iloc[0:0], chosen
    return pd.concat(parts, ignore_index=True), chosen


def _cell_values(rows: pd.DataFrame, value: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Per (model, cell): the value ranked, and the (dataset/config) columns ranked on raw
    scores (no ceiling) or dropped (``value="normalized"`` without a ceiling)."""
    has_norm = "normalized" in rows.columns
    keys = ["dataset", "config", "region"]
    # a cell is normalised when every row with a score has a normalised value
    ok = (rows["normalized"].notna() | rows["score"].isna()) if has_norm else False
    normalisable = rows.assign(ok=ok).groupby(keys)["ok"].all()
    raw_regions: dict[str, list[str]] = {}
    all_regions: dict[str, set[str]] = {}
    dropped: set[str] = set()
    parts = []
    for key, part in rows.groupby(keys, sort=True):
        column = f"{key[0]}/{key[1]}"
        all_regions.setdefault(column, set()).add(str(key[2]))
        if value == "score":
            use = "score"
        elif bool(normalisable.get(key, False)):
            use = "normalized"
        elif value == "normalized":
            dropped.add(column)
            continue
        else:
            use = "score"
            raw_regions.setdefault(column, []).append(str(key[2]))
        parts.append(part.assign(value=part[use].astype(np.float64)))
    # a column ranked raw everywhere is named; one raw in some regions names them
    raw_columns = sorted(
        c if len(r) == len(all_regions[c]) else f"{c} (region {', '.join(sorted(r))})"
        for c, r in raw_regions.items()
    )
    if not parts:
        return rows.iloc[0:0].assign(value=np.float64("nan")), raw_columns, sorted(dropped)
    out = pd.concat(parts, ignore_index=True)
    out = out[np.isfinite(out["value"])]
    out = out.groupby(["model", *CELL], sort=True)["value"].mean().reset_index()
    return out, raw_columns, sorted(dropped)


def _rank_group(
    group: str,
    rows: pd.DataFrame,
    *,
    selection: str | None,
    value: str,
    ci: float | None,
    n_boot: int,
    seed: int,
    min_units: int,
) -> Ranking:
    base = ["rank", "model", "mean"] + (["ci_low", "ci_high"] if ci else []) + [
        "n_cells", "n_missing"]  # fmt: skip
    models = sorted(set(rows["model"]))
    summary, chosen = _headline(rows, selection)
    notes: list[str] = []
    cells, raw_columns, dropped = _cell_values(summary, value)
    lacking_policy = sorted(c for c, p in chosen.items() if not p)
    if lacking_policy:
        wanted = repr(selection) if selection is not None else "'heldout' or 'max'"
        notes.append(f"Left out, no {wanted} rows: {', '.join(lacking_policy)}.")
    # layer choice actually used
    used = {c: p for c, p in chosen.items() if p and c not in dropped}
    policies = sorted(set(used.values()))
    if selection is None and used:
        fallback = sorted(c for c, p in used.items() if p != "heldout")
        if not fallback:
            notes.append(
                "Per-cell value: the 'heldout' layer choice (layer chosen on one half of the "
                "stimuli, scored on the other)."
            )
        else:
            notes.append(
                "Per-cell value: the 'heldout' layer choice where the metric stores one, else "
                f"'max' (the best layer, chosen and scored on the same data: optimistic), "
                f"used for {', '.join(fallback)}."
            )
    elif used:
        notes.append(f"Per-cell value: the {', '.join(repr(p) for p in policies)} layer choice.")
    if value == "score":
        notes.append("Values: raw scores (not ceiling-normalised).")
    elif value == "normalized":
        notes.append("Values: ceiling-normalised scores (score / ceiling).")
        if dropped:
            notes.append(f"Left out, no ceiling stored: {', '.join(dropped)}.")
    else:
        ranked_columns = sorted(set(used) - set(dropped))
        if raw_columns and set(raw_columns) >= set(ranked_columns):  # every column raw
            notes.append("Values: raw scores; no ceiling is stored for these data.")
        elif raw_columns:
            notes.append(
                "Values: ceiling-normalised (score / ceiling) where a ceiling exists; raw "
                f"scores (no ceiling, or one <= 0) for {', '.join(raw_columns)}."
            )
        elif ranked_columns:
            notes.append("Values: ceiling-normalised scores (score / ceiling).")
    # cells every model has
    subjects = cells.groupby(["dataset", "config", "region"])["subject"].nunique()
    presence = cells.groupby(CELL)["model"].apply(set)
    everyone = set(models)
    common = [k for k, have in presence.items() if have == everyone]
    lacking_by_region: dict[tuple, dict[tuple, list[str]]] = {}
    for key, have in presence.items():
        if have != everyone:
            lacking = tuple(sorted(everyone - have))
            lacking_by_region.setdefault(key[:3], {}).setdefault(lacking, []).append(key[3])
    excluded_rows = []
    for region_key, by_models in lacking_by_region.items():
        for lacking, region_subjects in by_models.items():
            name = "/".join(region_key)
            if len(region_subjects) < subjects[region_key]:
                name += f" (subject {', '.join(sorted(region_subjects))})"
            excluded_rows.append(
                {
                    "dataset": region_key[0], "config": region_key[1], "region": region_key[2],
                    "subjects": sorted(region_subjects), "cell": name,
                    "n_models": len(everyone) - len(lacking), "missing_for": list(lacking),
                }
            )  # fmt: skip
    excluded = pd.DataFrame(
        excluded_rows,
        columns=["dataset", "config", "region", "subjects", "cell", "n_models", "missing_for"],
    )
    regions_of = {k[:3] for k in presence.index}
    missing_count = dict.fromkeys(models, 0)
    for by_models in lacking_by_region.values():  # a region counts once per model lacking it
        for m in {x for lacking in by_models for x in lacking}:
            missing_count[m] += 1
    n_common = len({k[:3] for k in common})
    # models that have no summary row of the ranked kind at all
    unranked = sorted(everyone - set(cells["model"]))
    if not excluded.empty:
        worst = sorted(missing_count.items(), key=lambda kv: (-kv[1], kv[0]))
        worst = [f"{m} ({n})" for m, n in worst if n > 0][:5]
        partial = sum(1 for r in excluded.itertuples() if "(subject" in r.cell)
        subjects_note = f", {partial} of them for some subjects only" if partial else ""
        notes.append(
            f"Ranked on the {n_common} of {len(regions_of)} cells (dataset, metric "
            "configuration, region) that every model has; the cells some model lacks are "
            f"left out for all and listed ({len(excluded)}{subjects_note}; most missing: "
            f"{', '.join(worst)})."
        )
    elif common:
        notes.append(f"Ranked on {n_common} cells; every model has every cell.")
    common_set = set(common)
    keep = [k in common_set for k in zip(*(cells[c] for c in CELL), strict=True)]
    ranked = cells[np.asarray(keep, dtype=bool)] if len(cells) else cells
    # region units (subject-averaged) per (dataset, config) column
    units = (
        ranked.assign(column=ranked["dataset"] + "/" + ranked["config"])
        .groupby(["model", "column", "dataset", "region"], sort=True)["value"]
        .mean()
        .reset_index()
    )
    columns = sorted(set(units["column"]))
    n_units = int(units[["dataset", "region"]].drop_duplicates().shape[0]) if len(units) else 0
    reason = too_few(n_units, "(dataset, region) units", min_units) if ci else None
    with_ci = bool(ci) and reason is None
    if ci and reason and n_units:
        notes.append(reason[0].upper() + reason[1:] + ".")
    elif with_ci:
        notes.append(
            f"CI: {round(ci * 100)}% percentile bootstrap over {n_units} (dataset, region) "
            "units, regions resampled within each dataset."
        )
    table = units.pivot_table(index="model", columns="column", values="value", aggfunc="mean")
    table = table.reindex(index=models, columns=columns)
    out = pd.DataFrame({"model": models})
    out["mean"] = table[columns].mean(axis=1).to_numpy() if columns else np.nan
    # two settings of one metric are never averaged: no mean over their columns
    configs = ranked[["dataset", "config"]].drop_duplicates()
    metric_of = dict(zip(rows["config"], rows["metric"], strict=True))
    by_metric: dict[str, set[str]] = {}
    for config in configs["config"]:
        by_metric.setdefault(str(metric_of.get(config, config)), set()).add(config)
    several = {m: sorted(c) for m, c in by_metric.items() if len(c) > 1}
    if several:
        out["mean"] = np.nan
        with_ci = False
        notes[:] = [n for n in notes if not n.startswith("CI:")]
        listed = "; ".join(f"{m}: {', '.join(c)}" for m, c in sorted(several.items()))
        example = next(iter(several.values()))[0]
        notes.append(
            f"Not ranked: these rows hold several configurations of one metric ({listed}); "
            "a mean over them would average different settings of one metric. The columns "
            f"show each apart; rank one configuration with --config '{example}' (or "
            "config= in Python and the web page)."
        )
    if ci:
        lows, highs = [], []
        for model in models:
            if not with_ci:
                lows.append(np.nan)
                highs.append(np.nan)
                continue
            low, high = _stratified_ci(units[units["model"] == model], ci, n_boot, seed)
            lows.append(low)
            highs.append(high)
        out["ci_low"] = lows
        out["ci_high"] = highs
    out["n_cells"] = n_common
    out["n_missing"] = [missing_count.get(m, 0) for m in models]
    for column in columns:
        out[column] = table[column].to_numpy()
    out = out.sort_values(["mean", "model"], ascending=[False, True], na_position="last",
                          kind="stable").reset_index(drop=True)  # fmt: skip
    ranks = pd.array([pd.NA] * len(out), dtype="Int64")
    finite = np.isfinite(out["mean"].to_numpy(dtype=np.float64))
    ranks[finite] = np.arange(1, int(finite.sum()) + 1)
    out.insert(0, "rank", ranks)
    out = out[[*base, *columns]]
    if not common and models:
        notes.append(
            "Not ranked: no cell is shared by every model. Narrow the comparison to models "
            "with the same coverage (--model, --dataset, --metric)."
        )
    if unranked:
        notes.append(f"No ranked summary row at all: {', '.join(unranked)}.")
    return Ranking(group, out, columns, ranked, excluded, notes, n_units, with_ci)


def rank_models(
    frame: pd.DataFrame,
    *,
    selection: str | None = None,
    value: str = "auto",
    ci: float | None = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    species: Mapping[str, Any] | None = None,
    min_units: int = MIN_UNITS,
) -> list[Ranking]:
    """The rankings of the score rows in ``frame`` (one for real data, one for simulated
    data, each present only when it has rows); see the module docstring for the definition.

    ``frame``: rows of :func:`brainrank.leaderboard.scores` (``config`` names the metric
    configurations; computed from ``metric``/``metric_hash`` when absent). ``selection``:
    None for the headline choice (``heldout``, else ``max``) or a policy name. ``value``:
    ``auto``, ``score`` or ``normalized``. ``species``: dataset -> species, to keep
    simulated data apart.
    """
    if value not in VALUES:
        raise InputError(f"value must be one of {', '.join(VALUES)}, not {value!r}.")
    if selection == "layer":
        raise InputError("rank on a layer-choice policy (heldout, max...), not 'layer'.")
    needed = {"model", "dataset", "metric", "region", "subject", "selection", "score"}
    if not frame.empty:
        lacking = needed - set(frame.columns)
        if lacking:
            raise InputError(f"these rows have no column {sorted(lacking)} to rank on.")
    data = frame[~frame["selection"].isin(NOT_SUMMARY)] if not frame.empty else frame
    if data.empty:
        return []
    data = _with_config(data)
    data = data.assign(
        subject=data["subject"].astype(str),
        region=data["region"].astype(str),
        dataset=data["dataset"].astype(str),
        _group=data_groups(data["dataset"], species).to_numpy(),
    )
    out = []
    for group in (REAL, SIMULATED):
        rows = data[data["_group"] == group]
        if rows.empty:
            continue
        out.append(
            _rank_group(
                group, rows, selection=selection, value=value, ci=ci, n_boot=n_boot,
                seed=seed, min_units=min_units,
            )
        )  # fmt: skip
    if len(out) > 1:
        out[0].notes.insert(0, "Simulated and real data are ranked apart, never averaged together.")
    return out


def combined(rankings: Sequence[Ranking]) -> pd.DataFrame:
    """The rankings as one frame, with a ``data`` column (``real`` / ``simulated``); ranks
    are within each. ``attrs["notes"]`` holds every ranking's notes."""
    if not rankings:
        frame = pd.DataFrame(columns=["data", "rank", "model", "mean", "n_cells", "n_missing"])
        frame.attrs["notes"] = ["No summary scores to rank."]
        return frame
    frames = [r.table.assign(data=r.group) for r in rankings]
    frame = pd.concat(frames, ignore_index=True)
    columns = ["data", *[c for c in frame.columns if c != "data"]]
    frame = frame[columns]
    frame.attrs["notes"] = [
        (f"[{r.title}] " if len(rankings) > 1 else "") + note for r in rankings for note in r.notes
    ]
    return frame


def describe(rankings: Sequence[Ranking], max_cells: int = 20) -> list[str]:
    """Notes and excluded cells as lines of text (the CLI prints them under the table)."""
    lines = []
    for r in rankings:
        prefix = f"[{r.title}] " if len(rankings) > 1 else ""
        lines += [prefix + n for n in r.notes]
        if not r.excluded.empty:
            lines.append(prefix + "Cells left out (models lacking them):")
            for row in r.excluded.head(max_cells).itertuples():
                lacking = list(row.missing_for)
                shown = ", ".join(lacking[:4]) + (
                    f" and {len(lacking) - 4} more" if len(lacking) > 4 else ""
                )
                lines.append(f"  {row.cell}: {shown}")
            if len(r.excluded) > max_cells:
                lines.append(f"  ... and {len(r.excluded) - max_cells} more cells")
    return lines
