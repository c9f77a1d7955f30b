"""The one ranking definition, shared by the CLI, the Python API, the report and the web page.

A model's rank compares like with like:

- **Cells.** A score is kept apart per *cell*: (dataset, metric configuration, region,
  subject). A metric configuration is the metric identifier with its exact parameters
  (``metric_hash``), named by what differs from the preset it was built from
  (``srp-ridge:mouse(standardize=none)``, see :func:`config_labels`), even when it is the
  only one stored; two configurations are never averaged together.
- **Only shared cells are ranked.** Models are ranked on the cells that *every* ranked model
  has. A cell that some model lacks is left out for everyone and listed (which cell, which
  models lack it); each model's ``n_missing`` counts the cells it lacks. Nothing missing is
  ever averaged over silently.
- **Headline value.** Per (dataset, configuration) the summary row the metric declares
  leak-free (``Metric.headline``, stored with the configuration): ``heldout`` (the layer
  chosen on one half of the stimuli, scored on the other), ``stacked`` (stacking),
  ``generalisation`` (a layer chosen on training stimuli, scored on test stimuli); a held-out
  split cannot beat it by chance. Configurations registered before the declaration was
  stored fall back to ``heldout``, else ``max`` (the notes say where). ``selection=``
  forces one policy.
- **Calibrated configurations only, unless asked for.** A configuration whose null
  expectation is not 0 (``Metric.calibrated`` false: a seed paper's leave-one-out protocol)
  is left out of the default ranking and named in the notes; ranked when asked for
  (``include_uncalibrated=True``, which the query functions set when a ``metric`` or
  ``config`` filter names it), each of its columns then has a ``(chance)`` column beside it:
  the same protocol with the stimulus labels permuted.
- **Ceiling-normalised only where the ceiling is there.** ``value="auto"`` ranks
  ``normalized`` (score / ceiling) in every cell whose rows all have a usable ceiling (its
  lower confidence bound above :data:`~brainrank.core.scores.CEILING_FLOOR`, 0.1; the
  ceiling itself where no interval is stored) and the raw score elsewhere; the notes name
  the raw cells and why (no ceiling, or one below the floor), and each cell carries a
  ``flag``. ``"normalized"`` keeps only cells with a usable ceiling, ``"score"`` ranks raw
  scores everywhere.
- **Simulated data apart.** Datasets whose species is ``"simulated"`` are ranked in their
  own ranking, never averaged with real data.
- **Aggregation.** A column is one (dataset, configuration): the mean over its shared
  regions of the subject-averaged cell values. A model's ``mean`` is the mean of its
  columns. The confidence interval is a percentile bootstrap over (dataset, region) units,
  resampled within each dataset (each resample recomputes every column, then their mean),
  printed only with at least :data:`MIN_UNITS` units: with fewer, a "95% CI" is little
  more than the units' min and max, and the notes say so.
- **Rank intervals** (when asked for, ``rank_intervals=``): ``rank_low`` and ``rank_high``
  after ``rank``, each model's 95% rank interval from the paired bootstrap of
  :mod:`brainrank.leaderboard.uncertainty`; the ranked values do not change.
- **Descriptive metrics** (:data:`DESCRIPTIVE_METRICS`, e.g. ``effective-dimensionality``)
  describe features rather than compare them with a brain: never ranked, named in the notes.
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core import stats
from brainrank.core.errors import InputError
from brainrank.core.scores import CEILING_FLOOR, ceiling_usable
from brainrank.core.spaces import is_combination

#: selections that are not a layer choice: per-layer rows and per-layer statistics (the
#: fraction of significant voxels of ``encoding:taskonomy``; the stacking weights of a layer
#: or space; a space alone, its unique variance and the variance spaces share, of
#: ``variance-partitioning``); every other selection is a summary row (``max``,
#: ``heldout``, ``stacked``, ``generalisation``, ``joint``...)
NOT_SUMMARY = ("layer", "significance", "weight", "alone", "unique", "shared")

#: fewest resampling units (regions) for a bootstrap CI or a test to be printed
MIN_UNITS = stats.MIN_UNITS
#: layer-choice policies of the headline value of configurations that declare none (stored
#: before the declaration was), in order of preference
HEADLINE_SELECTIONS = ("heldout", "max")
#: cell flags: why a cell is ranked on its raw score
NO_CEILING = "raw: no ceiling"
LOW_CEILING = "raw: ceiling below the floor"
#: row flag of a configuration that is not calibrated (its chance level is beside it)
UNCALIBRATED = "not calibrated: compare with chance"


def row_flags(frame: pd.DataFrame, floor: float = CEILING_FLOOR) -> pd.Series:
    """Per score row, what a reader must know before reading its value: why it is not
    ceiling-normalised (:data:`NO_CEILING`, :data:`LOW_CEILING`) and whether its
    configuration is not calibrated (:data:`UNCALIBRATED`); ``""`` when neither."""
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=object)
    ceiling = _finite_column(frame, "ceiling")
    low = _finite_column(frame, "ceiling_low")
    calibrated = frame["calibrated"] if "calibrated" in frame.columns else None
    out = []
    for i in range(len(frame)):
        parts = []
        if not np.isfinite(ceiling[i]):
            parts.append(NO_CEILING)
        elif not ceiling_usable(ceiling[i], low[i], floor):
            parts.append(LOW_CEILING)
        if calibrated is not None and (calibrated.iloc[i] is False or calibrated.iloc[i] == 0):
            parts.append(UNCALIBRATED)
        details = frame["details"].iloc[i] if "details" in frame.columns else None
        if isinstance(details, dict) and details.get("warning"):
            parts.append(f"warning: {details['warning']}")
        out.append("; ".join(parts))
    return pd.Series(out, index=frame.index, dtype=object)


#: metrics whose values describe a model's features instead of comparing them with the brain
#: (one value per layer, e.g. the effective dimensionality): never ranked
DESCRIPTIVE_METRICS = ("effective-dimensionality",)

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


def _difference(parameters: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """``(a=1, b=none)``: the parameters whose values differ from ``defaults`` ("" when none
    does)."""
    keys = sorted(set(parameters) | set(defaults))
    changed = {
        k: parameters.get(k, "default")
        for k in keys
        if _hashable(parameters.get(k, "<default>")) != _hashable(defaults.get(k, "<default>"))
    }
    return f"({parameter_summary(changed)})" if changed else ""


def config_label_map(
    configs: Sequence[tuple[str, str]],
    parameters: Mapping[tuple[str, str], Mapping[str, Any] | None] | None = None,
    defaults: Mapping[tuple[str, str], Mapping[str, Any] | None] | None = None,
) -> dict[tuple[str, str], str]:
    """A readable, unique name per (metric, config_hash).

    Where the parameters of the preset a configuration was built from are known
    (``defaults``, recorded when it was registered), it is named by what differs from them,
    however many configurations are stored: ``srp-ridge:mouse`` for the preset itself,
    ``srp-ridge:mouse(standardize=none)`` for a changed one. Otherwise a metric with one
    configuration is named by its identifier, and several configurations of one metric by
    the parameters in which they differ (``srp-ridge(alphas=1)``,
    ``srp-ridge(alphas=1e8)``); where the parameters are not known (never registered) or
    do not tell two apart, by ``metric#hash``.
    """
    parameters = parameters or {}
    defaults = defaults or {}
    by_metric: dict[str, list[str]] = {}
    for metric, config_hash in dict.fromkeys((str(m), str(h)) for m, h in configs):
        by_metric.setdefault(metric, []).append(config_hash)
    out: dict[tuple[str, str], str] = {}
    for metric, hashes in by_metric.items():
        relative = {
            h: _difference(parameters[(metric, h)], defaults[(metric, h)])
            for h in hashes
            if parameters.get((metric, h)) is not None and defaults.get((metric, h)) is not None
        }
        if len(relative) == len(hashes):
            labels = {h: metric + relative[h] for h in hashes}
            counts = pd.Series(list(labels.values())).value_counts()
            for h, label in labels.items():  # same parameters, another version: #hash
                out[(metric, h)] = label if counts[label] == 1 else f"{label}#{h[:6]}"
            continue
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
    defaults: Mapping[tuple[str, str], Mapping[str, Any] | None] | None = None,
) -> pd.Series:
    """The configuration name of every row of ``frame`` (see :func:`config_label_map`);
    ``known`` adds configurations stored elsewhere so that a name does not change when a
    filter hides the other configurations of its metric."""
    if frame.empty:
        return pd.Series([], index=frame.index, dtype=object)
    hashes = frame["metric_hash"] if "metric_hash" in frame.columns else pd.Series("", frame.index)
    pairs = list(zip(frame["metric"].astype(str), hashes.astype(str), strict=True))
    mapping = config_label_map([*known, *pairs], parameters, defaults)
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
    (dataset, configuration) in ``columns`` (followed by its ``(chance)`` column for a
    configuration that is not calibrated). ``cells``: the ranked cells (dataset, config,
    region, subject, value, chance, flag: why a cell is raw, see :data:`NO_CEILING`). ``excluded``: cells left out because some model
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
    #: column -> the name of its chance-level column (configurations not calibrated)
    chance_columns: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return "simulated data" if self.group == SIMULATED else "real data"


#: what each layer-choice policy is, for the notes
POLICIES = {
    "heldout": "the layer chosen on one half of the stimuli, scored on the other",
    "stacked": "the stacked model, its layer weights fitted on training stimuli and scored on "
    "test stimuli",
    "generalisation": "the layer chosen on the training stimuli, scored on the test stimuli",
    "max": "the best layer, chosen and scored on the same data: optimistic",
}


@dataclass
class _Choice:
    """Per (dataset/config) column: the policy ranked ("" when none could be), and why."""

    policy: dict[str, str] = field(default_factory=dict)
    #: columns whose configuration declares no headline row (registered before it was stored)
    undeclared: list[str] = field(default_factory=list)
    #: columns whose declared row is not stored: {column: declared policy}
    missing: dict[str, str] = field(default_factory=dict)


def _declared(part: pd.DataFrame) -> str | None:
    if "headline" not in part.columns:
        return None
    values = [str(v) for v in part["headline"].dropna() if str(v)]
    return values[0] if values else None


def _headline(rows: pd.DataFrame, selection: str | None) -> tuple[pd.DataFrame, _Choice]:
    """The summary rows ranked on and, per (dataset, config) column, the policy used: the
    one the metric declares (``headline``), or ``selection`` when given."""
    summary = rows[~rows["selection"].isin(NOT_SUMMARY)]
    choice = _Choice()
    parts = []
    for (dataset, config), part in summary.groupby(["dataset", "config"], sort=True):
        column = f"{dataset}/{config}"
        have = set(part["selection"])
        if selection is not None:
            wanted = [p for p in fnmatch.filter(sorted(have), selection)]
            if len(wanted) > 1:
                raise InputError(
                    f"selection {selection!r} matches several layer choices {wanted} of "
                    f"{dataset}/{config}; rank on one."
                )
        else:
            declared = _declared(part)
            if declared is None:
                choice.undeclared.append(column)
                wanted = [p for p in HEADLINE_SELECTIONS if p in have][:1]
            elif declared in have:
                wanted = [declared]
            else:
                choice.missing[column] = declared
                wanted = []
        if not wanted:
            choice.policy[column] = ""  # no row of the policy asked for
            continue
        choice.policy[column] = wanted[0]
        parts.append(part[part["selection"] == wanted[0]])
    if not parts:
        return summary.iloc[0:0], choice
    return pd.concat(parts, ignore_index=True), choice


@dataclass
class _Values:
    """Per (model, cell): the value ranked, its chance level and flag; and per column, the
    regions ranked raw for want of a ceiling or below the floor, and the columns dropped
    (``value="normalized"`` without a usable ceiling)."""

    cells: pd.DataFrame
    no_ceiling: dict[str, list[str]] = field(default_factory=dict)
    low_ceiling: dict[str, list[str]] = field(default_factory=dict)
    regions: dict[str, set[str]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    def named(self, which: dict[str, list[str]]) -> list[str]:
        """Columns raw everywhere by name; those raw in some regions with the regions."""
        return sorted(
            c if len(r) == len(self.regions[c]) else f"{c} (region {', '.join(sorted(r))})"
            for c, r in which.items()
        )


def _finite_column(rows: pd.DataFrame, name: str) -> np.ndarray:
    if name not in rows.columns:
        return np.full(len(rows), np.nan)
    return pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=np.float64)


def _cell_values(rows: pd.DataFrame, value: str, floor: float = CEILING_FLOOR) -> _Values:
    """The value ranked per (model, cell), with the ceiling floor applied: a cell is
    normalised only when every row with a score has a usable ceiling."""
    score = _finite_column(rows, "score")
    if "ceiling" in rows.columns:
        ceiling = _finite_column(rows, "ceiling")
        low = _finite_column(rows, "ceiling_low")
        usable = np.array([ceiling_usable(c, lo, floor) for c, lo in zip(ceiling, low, strict=True)],
                          dtype=bool)  # fmt: skip
        with np.errstate(invalid="ignore", divide="ignore"):
            normalized = np.where(usable, score / ceiling, np.nan)
        has = np.isfinite(ceiling)
    elif "normalized" in rows.columns:  # rows without their ceilings: as stored
        normalized = _finite_column(rows, "normalized")
        ceiling = np.where(np.isfinite(normalized), score / normalized, np.nan)
        usable = has = np.isfinite(normalized)
    else:
        ceiling = normalized = np.full(len(rows), np.nan)
        usable = has = np.zeros(len(rows), dtype=bool)
    chance = _finite_column(rows, "chance")
    data = rows.assign(_normalized=normalized, _usable=usable | np.isnan(score), _has=has,
                       _ceiling=ceiling, _chance=chance)  # fmt: skip
    keys = ["dataset", "config", "region"]
    out = _Values(pd.DataFrame())
    parts = []
    for key, part in data.groupby(keys, sort=True):
        column = f"{key[0]}/{key[1]}"
        out.regions.setdefault(column, set()).add(str(key[2]))
        normalisable = bool(part["_usable"].all())
        flag = None
        if value == "score":
            use = "score"
        elif normalisable:
            use = "_normalized"
        else:
            flag = LOW_CEILING if bool(part["_has"].any()) else NO_CEILING
            if value == "normalized":
                if column not in out.dropped:
                    out.dropped.append(column)
                continue
            if flag == LOW_CEILING:  # no signal to compare against: not a headline cell
                out.low_ceiling.setdefault(column, []).append(str(key[2]))
                continue
            use = "score"
            out.no_ceiling.setdefault(column, []).append(str(key[2]))
        chance = part["_chance"] if use == "score" else part["_chance"] / part["_ceiling"]
        parts.append(part.assign(value=part[use].astype(np.float64), chance=chance, flag=flag))
    out.dropped.sort()
    if not parts:
        out.cells = rows.iloc[0:0].assign(value=np.float64("nan"), chance=np.float64("nan"),
                                          flag=None)  # fmt: skip
        return out
    cells = pd.concat(parts, ignore_index=True)
    cells = cells[np.isfinite(cells["value"])]
    grouped = cells.groupby(["model", *CELL], sort=True)
    out.cells = grouped.agg(
        value=("value", "mean"), chance=("chance", "mean"), flag=("flag", "first")
    ).reset_index()
    return out


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
    summary, choice = _headline(rows, selection)
    notes: list[str] = []
    values = _cell_values(summary, value)
    cells, dropped = values.cells, values.dropped
    chosen = choice.policy
    lacking_policy = sorted(c for c, p in chosen.items() if not p and c not in choice.missing)
    if lacking_policy:
        wanted = repr(selection) if selection is not None else "'heldout' or 'max'"
        notes.append(f"Left out, no {wanted} rows: {', '.join(lacking_policy)}.")
    if choice.missing:
        listed = ", ".join(f"{c} ('{p}')" for c, p in sorted(choice.missing.items()))
        notes.append(f"Left out, the row their metric declares leak-free is not stored: {listed}.")
    # layer choice actually used
    used = {c: p for c, p in chosen.items() if p and c not in dropped}
    policies = sorted(set(used.values()))
    if selection is None and used:
        by_policy: dict[str, list[str]] = {}
        for column, policy in used.items():
            if column not in choice.undeclared:
                by_policy.setdefault(policy, []).append(column)
        if by_policy:
            if len(by_policy) == 1:
                (policy,) = by_policy
                described = f"'{policy}' ({POLICIES.get(policy, 'declared by the metric')})"
            else:
                described = "; ".join(
                    f"'{p}' ({POLICIES.get(p, 'declared by the metric')}) for {', '.join(sorted(c))}"
                    for p, c in sorted(by_policy.items())
                )
            notes.append(
                "Per-cell value: the row each metric declares leak-free (a held-out split "
                f"cannot beat it by chance): {described}."
            )
        fallback = sorted(c for c in choice.undeclared if c in used)
        held = [c for c in fallback if used[c] == "heldout"]
        optimistic = [c for c in fallback if used[c] == "max"]
        if held:
            notes.append(
                "Per-cell value where the metric declares no leak-free row: 'heldout' ("
                + POLICIES["heldout"]
                + f") for {', '.join(held)}."
            )
        if optimistic:
            notes.append(
                "Per-cell value where the metric declares no leak-free row and stores no "
                f"'heldout' row: 'max' ({POLICIES['max']}) for {', '.join(optimistic)}."
            )
    elif used:
        notes.append(f"Per-cell value: the {', '.join(repr(p) for p in policies)} layer choice.")
    floor = f"{CEILING_FLOOR:g}"
    if value == "score":
        notes.append("Values: raw scores (not ceiling-normalised).")
    elif value == "normalized":
        notes.append("Values: ceiling-normalised scores (score / ceiling).")
        if dropped:
            notes.append(
                "Left out, no usable ceiling (none stored, or its lower 95% bound not above "
                f"{floor}): {', '.join(dropped)}."
            )
    else:
        ranked_columns = sorted(set(used) - set(dropped))
        no_ceiling = values.named(values.no_ceiling)
        raw_everywhere = {
            c for c in ranked_columns
            if len(values.no_ceiling.get(c, [])) == len(values.regions.get(c, ()))
        }  # fmt: skip
        if ranked_columns and raw_everywhere >= set(ranked_columns):
            notes.append("Values: raw scores; no ceiling is stored for these data.")
        elif no_ceiling:
            notes.append(
                "Values: ceiling-normalised (score / ceiling) where a ceiling is stored; raw "
                f"scores where none is: {', '.join(no_ceiling)}."
            )
        elif ranked_columns:
            notes.append("Values: ceiling-normalised scores (score / ceiling).")
        if values.low_ceiling:
            notes.append(
                f"Left out, a ceiling whose lower 95% bound is not above {floor} (no reliable "
                "signal to compare a model with; their raw scores are kept and marked in the "
                f"other views): {', '.join(values.named(values.low_ceiling))}."
            )
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
    # chance levels (configurations that are not calibrated), averaged like the values
    chance_units = (
        ranked.assign(column=ranked["dataset"] + "/" + ranked["config"])
        .groupby(["model", "column"], sort=True)["chance"]
        .mean()
    )
    chance_columns = {
        c: f"{c} (chance)"
        for c in columns
        if np.isfinite(chance_units.xs(c, level="column").to_numpy(dtype=np.float64)).any()
    }
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
    shown = []
    for column in columns:
        out[column] = table[column].to_numpy()
        shown.append(column)
        if column in chance_columns:
            chance = chance_units.xs(column, level="column").reindex(models)
            out[chance_columns[column]] = chance.to_numpy(dtype=np.float64)
            shown.append(chance_columns[column])
    out = out.sort_values(["mean", "model"], ascending=[False, True], na_position="last",
                          kind="stable").reset_index(drop=True)  # fmt: skip
    ranks = pd.array([pd.NA] * len(out), dtype="Int64")
    finite = np.isfinite(out["mean"].to_numpy(dtype=np.float64))
    ranks[finite] = np.arange(1, int(finite.sum()) + 1)
    out.insert(0, "rank", ranks)
    out = out[[*base, *shown]]
    for column, chance_name in sorted(chance_columns.items()):
        scored = out[column].to_numpy(dtype=np.float64)
        chance = out[chance_name].to_numpy(dtype=np.float64)
        both = np.isfinite(scored) & np.isfinite(chance)
        if both.sum() < 2:
            continue
        score_spread = float(np.ptp(scored[both]))
        chance_spread = float(np.ptp(chance[both]))
        if chance_spread >= 0.5 * score_spread:
            notes.append(
                f"{column}: the chance levels differ between models by {chance_spread:.3f}, "
                f"the scores by {score_spread:.3f}: much of the spread between these models is "
                "the protocol's null, not signal; compare each score with its own chance level."
            )
    if chance_columns:
        notes.append(
            "Not calibrated (their expected score without signal is not 0): "
            f"{', '.join(sorted(chance_columns))}; each '(chance)' column is the same protocol "
            "on the same features with the stimulus labels permuted (mean of "
            "permutations), averaged like the scores."
        )
    if cells.empty and dropped:
        notes.append(
            "Not ranked: no cell has a usable ceiling to normalise by; rank raw scores "
            "(value='score', --value score) or the default (value='auto')."
        )
    elif not common and models:
        notes.append(
            "Not ranked: no cell is shared by every model. Narrow the comparison to models "
            "with the same coverage (--model, --dataset, --metric)."
        )
    if unranked and not (cells.empty and dropped):
        notes.append(f"No ranked summary row at all: {', '.join(unranked)}.")
    return Ranking(group, out, columns, ranked, excluded, notes, n_units, with_ci, chance_columns)


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
    include_uncalibrated: bool = False,
    rank_intervals: Callable[[Ranking, pd.DataFrame, str | None], tuple[pd.DataFrame, list[str]]]
    | None = None,
) -> list[Ranking]:
    """The rankings of the score rows in ``frame`` (one for real data, one for simulated
    data, each present only when it has rows); see the module docstring for the definition.

    ``frame``: rows of :func:`brainrank.leaderboard.scores` (``config`` names the metric
    configurations; computed from ``metric``/``metric_hash`` when absent). ``selection``:
    None for the row each metric declares leak-free (``headline``) or a policy name.
    ``value``: ``auto``, ``score`` or ``normalized``. ``species``: dataset -> species, to
    keep simulated data apart. ``include_uncalibrated``: rank configurations whose
    ``calibrated`` is false too (with their chance levels); otherwise they are left out
    and named in the notes. ``rank_intervals``: called with each ranking, its rows and
    ``selection``, it returns a frame of ``model``, ``rank_low``, ``rank_high`` and notes
    (:func:`brainrank.leaderboard.uncertainty.interval_source`); the columns go after
    ``rank``, the notes under the others. The ranked values are unchanged.
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
    descriptive = sorted(set(data["metric"].astype(str)) & set(DESCRIPTIVE_METRICS)) if len(
        data) else []  # fmt: skip
    if descriptive:
        data = data[~data["metric"].astype(str).isin(DESCRIPTIVE_METRICS)]
        if data.empty:
            raise InputError(
                f"{', '.join(descriptive)} describes each layer's features and is never ranked; "
                "read its values with brainrank.leaderboard.scores(metric=...) or the analyses."
            )
    if data.empty:
        return []
    data = _with_config(data)
    combination = data["model"].astype(str).map(is_combination)
    combinations_left_out = bool(combination.any() and not combination.all())
    if combinations_left_out:  # combinations of models are ranked among themselves only
        data = data[~combination]
    left_out: dict[str, list[str]] = {}
    if not include_uncalibrated and "calibrated" in data.columns:
        uncalibrated = data["calibrated"].map(lambda v: v is False or v == 0)
        for group, part in data[uncalibrated].groupby(
            data_groups(data.loc[uncalibrated, "dataset"], species)
        ):
            left_out[str(group)] = sorted(set(part["dataset"].astype(str) + "/" + part["config"]))
        data = data[~uncalibrated]
        if data.empty:
            names = sorted({c for cs in left_out.values() for c in cs})
            raise InputError(
                "every configuration of these rows is not calibrated (its expected score "
                f"without signal is not 0): {', '.join(names)}. Rank it by naming it "
                "(--config NAME, or config=/include_uncalibrated=True in Python); its chance "
                "levels are shown beside its scores."
            )
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
        if rank_intervals is not None:
            _attach_intervals(out[-1], *rank_intervals(out[-1], rows, selection))
        if left_out.get(group):
            out[-1].notes.append(
                "Left out, not calibrated (a seed paper's protocol whose expected score "
                f"without signal is not 0): {', '.join(left_out[group])}; rank one by naming "
                "it (--config NAME), shown with its chance level."
            )
    if len(out) > 1:
        out[0].notes.insert(0, "Simulated and real data are ranked apart, never averaged together.")
    if descriptive and out:
        out[0].notes.append(
            f"Not ranked: {', '.join(descriptive)} (describes each layer's features, not a "
            "comparison with the brain)."
        )
    if combinations_left_out and out:
        out[0].notes.append(
            "Left out: combinations of feature spaces of several models (stack/...; their "
            "spaces are in the models table): rank them among themselves (--model 'stack/*')."
        )
    return out


def _attach_intervals(ranking: Ranking, intervals: pd.DataFrame, notes: list[str]) -> None:
    """``rank_low`` and ``rank_high`` after ``rank`` (missing: NA), and their notes."""
    table = ranking.table
    found = intervals.set_index("model") if not intervals.empty else None
    position = table.columns.get_loc("rank") + 1
    for offset, column in enumerate(("rank_low", "rank_high")):
        values = pd.array([pd.NA] * len(table), dtype="Int64")
        if found is not None:
            for i, model in enumerate(table["model"]):
                if model in found.index and pd.notna(table["rank"].iloc[i]):
                    values[i] = int(found.loc[model, column])
        table.insert(position + offset, column, values)
    ranking.notes.extend(notes)


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
