"""The seed papers' controlled contrasts, from stored scores: task vs task, training data vs
training data, self-supervised vs supervised, architecture family vs architecture family,
each with the other factors held fixed.

**The design** (Conwell, Prince, Alvarez & Konkle, "5.17 billion regression fits", sections
3.2-3.4, and their code: DeepNSD ``source_code/pressures/model_contrasts.csv`` and
``publication/all_results.R``). A factor is compared only between models that agree on every
other factor: the *matched sets* are the trained models grouped by the control fields of the
taxonomy (:mod:`brainrank.core.taxonomy`), and a set takes part in a comparison only when it
holds models of both levels. So self-supervised and supervised networks are compared as
ResNet-50s trained on ImageNet-1k with different objectives, not as whatever networks
happen to carry each label; Places365 and ImageNet networks as the same architecture with
the same task and training method; architecture families as networks with the same task,
training data and training method. Untrained networks, baselines, and models whose factor
or a control is ``unknown`` (or ``none``) take no part (``ContrastResult.excluded`` says
which and why).

==================  ========================  ===========================================
contrast            factor                    held fixed (the matched set)
==================  ========================  ===========================================
``task``            ``task``                  architecture, training data
``task_cluster``    ``task_cluster``          architecture, training data (Taskonomy)
``data``            ``training_data``         architecture, task, training method
``supervision``     supervised / self-sup.    architecture, training data
``architecture``    ``family``                task, training data, training method
==================  ========================  ===========================================

Each level is compared with a **reference level** (``classification``, ``2D``,
``ImageNet-1k``, ``supervised``, ``convnet`` by default), as the paper's linear models do
(``relevel(..., ref = ...)``).

**The units.** ``unit="models"`` (default): every model of the level is paired with the mean
of its matched set's reference models (same areas); a difference per model. ``unit="sets"``:
a difference per matched set (its level models' mean against its reference models' mean):
independent units when there are several sets, none of them counted twice. ``unit=
"regions"``: per region, the level's mean minus the reference's mean within each matched set,
averaged over the sets; a difference per region (what the paper's bootstrapped differences
average over: subjects and ROIs of one model set). A model's score is its ``selection``
(best-layer) score averaged over the regions it shares with its reference (mean over
subjects first), as in :func:`~brainrank.leaderboard.analyses.trained_vs_random`.

**The statistics** (those of ``docs/validation.md``, from :mod:`brainrank.core.stats`): the
mean difference with a percentile bootstrap CI over the paired units
(:func:`~brainrank.core.stats.bootstrap_ci`), the paired t-test
(:func:`~brainrank.core.stats.paired_ttest`), Hedges' g of the paired differences (d_z with
the small-sample correction, :func:`~brainrank.core.stats.hedges_g`), and p-values adjusted
for the comparisons of one contrast by Holm (default) or Bonferroni; with ``unit="models"``,
also per region, adjusted across regions. Fewer than
:data:`~brainrank.core.stats.MIN_UNITS` paired units: the mean difference only, with the
reason (no p-value, CI or effect size). When a matched set has one reference model, every
model of that set is paired with the same one: with ``unit="models"`` the test asks whether
the level's models differ from *that* reference (as the paper's "over a category-supervised
ResNet-50"), whose own sampling error is not in the interval; to generalise over reference
models too, use ``unit="sets"`` (one difference per set) where there are enough sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core import stats
from brainrank.core.errors import InputError
from brainrank.leaderboard.analyses.tables import region_scores

#: values of a factor or control that say nothing about it
UNKNOWN = frozenset({"", "unknown", "none", "nan", "None"})

#: tasks of self-supervised training (the ``supervision`` contrast's self-supervised level)
SELF_SUPERVISED_TASKS = frozenset(
    {
        "contrastive self-supervision",
        "non-contrastive self-supervision",
        "pretext self-supervision",
        "masked image modelling",
    }
)


@dataclass(frozen=True)
class ContrastSpec:
    """A contrast: the factor compared, the fields held fixed, the default reference."""

    name: str
    factor: str
    controls: tuple[str, ...]
    reference: str | None
    description: str


_SPECS = [
    # name, factor, controls, default reference, description
    ("task", "task", ("architecture", "training_data"), "classification",
     "task vs task, same architecture and training data"),
    ("task_cluster", "task_cluster", ("architecture", "training_data"), "2D",
     "Taskonomy task cluster vs cluster, same architecture and training data"),
    ("data", "training_data", ("architecture", "task", "training_method"), "ImageNet-1k",
     "training data vs training data, same architecture, task and training method"),
    ("supervision", "supervision", ("architecture", "training_data"), "supervised",
     "self-supervised vs supervised, same architecture and training data"),
    ("architecture", "family", ("task", "training_data", "training_method"), "convnet",
     "architecture family vs family, same task, training data and training method"),
]  # fmt: skip
#: the seed contrasts (see the module docstring)
CONTRASTS: dict[str, ContrastSpec] = {spec[0]: ContrastSpec(*spec) for spec in _SPECS}


@dataclass
class Comparison:
    """One level against the reference: ``n`` paired units (models or regions), the mean
    difference (level - reference) with its bootstrap CI, the paired t-test, Hedges' g and
    the adjusted p-value. ``units``: one row per unit (``unit``, ``matched_set``, ``score``,
    ``reference_score``, ``difference``); ``regions``: the same comparison per region
    (``unit="models"`` only). With too few units ``reason`` says why the test is not given."""

    level: str
    reference: str
    n: int
    n_sets: int
    mean_difference: float
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    t: float = float("nan")
    df: float = float("nan")
    p_value: float = float("nan")
    p_adjusted: float = float("nan")
    hedges_g: float = float("nan")
    reason: str | None = None
    units: pd.DataFrame = field(default_factory=pd.DataFrame)
    regions: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class ContrastResult:
    """A contrast's comparisons (one per level other than the reference) and what it was
    computed on. ``sets``: every matched set (control values, level, models); ``excluded``:
    model -> why it takes no part; ``reason``: why there is no comparison at all."""

    name: str
    factor: str
    controls: tuple[str, ...]
    reference: str | None
    metric: str
    selection: str
    unit: str
    correction: str
    comparisons: list[Comparison] = field(default_factory=list)
    sets: pd.DataFrame = field(default_factory=pd.DataFrame)
    excluded: dict[str, str] = field(default_factory=dict)
    reason: str | None = None

    def table(self) -> pd.DataFrame:
        """One row per comparison: contrast, level, reference, n, n_sets, mean_difference,
        ci_low, ci_high, t, df, p, p_adjusted, hedges_g, note."""
        columns = ["contrast", "metric", "level", "reference", "n", "n_sets", "mean_difference",
                   "ci_low", "ci_high", "t", "df", "p", "p_adjusted", "hedges_g", "note"]  # fmt: skip
        rows = []
        for c in self.comparisons:
            rows.append({"contrast": self.name, "metric": self.metric, "level": c.level,
                         "reference": c.reference, "n": c.n, "n_sets": c.n_sets,
                         "mean_difference": c.mean_difference, "ci_low": c.ci_low,
                         "ci_high": c.ci_high, "t": c.t, "df": c.df, "p": c.p_value,
                         "p_adjusted": c.p_adjusted, "hedges_g": c.hedges_g,
                         "note": c.reason or ""})  # fmt: skip
        return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- the design


def _known(value: Any) -> bool:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    return str(value).strip() not in UNKNOWN


def _stated(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def supervision(task: Any, training_method: Any) -> str | None:
    """The ``supervision`` level of a model: ``self-supervised`` (a self-supervised task),
    ``supervised`` (classification trained with labels from the start: training method
    ``supervised``), else None (language-image, detection, Taskonomy, fine-tuned
    self-supervised networks...: not in this contrast)."""
    if not _known(task):
        return None
    if str(task) in SELF_SUPERVISED_TASKS:
        return "self-supervised"
    if str(task) == "classification" and str(training_method) == "supervised":
        return "supervised"
    return None


def model_taxonomy(frame: pd.DataFrame) -> pd.DataFrame:
    """Per model, the taxonomy fields the contrasts read (first value per model; missing
    columns as NaN) and the derived ``supervision``."""
    fields = ["family", "architecture", "task", "task_cluster", "training_data",
              "training_method", "trained"]  # fmt: skip
    present = [c for c in fields if c in frame.columns]
    info = (
        frame.groupby("model")[present].first()
        if present and not frame.empty
        else pd.DataFrame(index=pd.Index(sorted(set(frame.get("model", []))), name="model"))
    )
    for column in fields:
        if column not in info.columns:
            info[column] = np.nan
    info["supervision"] = [
        supervision(t, m) for t, m in zip(info["task"], info["training_method"], strict=True)
    ]
    return info


def _eligible(
    info: pd.DataFrame, models: Sequence[str], factor: str, controls: Sequence[str]
) -> tuple[list[str], dict[str, str]]:
    keep, excluded = [], {}
    for model in models:
        row = info.loc[model]
        trained = row.get("trained")
        if _stated(trained) and not bool(trained):
            excluded[model] = "untrained"
            continue
        if not _known(row.get(factor)):
            excluded[model] = f"no {factor}"
            continue
        missing = [c for c in controls if not _known(row.get(c))]
        if missing:
            excluded[model] = f"{', '.join(missing)} unknown"
            continue
        keep.append(model)
    return keep, excluded


def matched_sets(
    info: pd.DataFrame, models: Sequence[str], factor: str, controls: Sequence[str]
) -> pd.DataFrame:
    """The matched sets: one row per (set, level) with the control values, the level, its
    models and ``set`` (the set's label: its control values joined by ``" / "``)."""
    rows = []
    for model in models:
        row = info.loc[model]
        key = tuple(str(row[c]) for c in controls)
        rows.append({**dict(zip(controls, key, strict=True)), "set": " / ".join(key),
                     "level": str(row[factor]), "model": model})  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=[*controls, "set", "level", "models", "n_models"])
    table = pd.DataFrame(rows)
    grouped = table.groupby([*controls, "set", "level"], sort=True)["model"]
    out = grouped.agg(lambda m: sorted(m)).rename("models").reset_index()
    out["n_models"] = out["models"].map(len)
    return out


# --------------------------------------------------------------------------- the contrast


def controlled_contrast(
    frame: pd.DataFrame,
    factor: str,
    controls: Sequence[str],
    reference: str | None = None,
    *,
    levels: Sequence[str] | None = None,
    metric: str = "srp-ridge",
    selection: str = "max",
    unit: str = "models",
    correction: str = "holm",
    n_boot: int = 1000,
    seed: int = 0,
    name: str | None = None,
) -> ContrastResult:
    """Compare the levels of ``factor`` with ``reference`` within matched sets of trained
    models that agree on ``controls`` (see the module docstring).

    ``frame``: the score table (:func:`brainrank.leaderboard.scores`); ``metric`` a metric
    or configuration name, ``selection`` the summary rows compared (``max``: the best
    layer). ``levels`` restricts the levels compared. ``reference``: default the most
    frequent level among the matched sets (ties: alphabetical). ``unit``: ``models``,
    ``sets`` or ``regions``; ``correction``: ``holm`` or ``bonferroni``. Raises
    :class:`~brainrank.core.errors.InputError` when the metric has no such scores or an
    argument is invalid; a contrast the leaderboard cannot make (no matched set) comes back
    with ``reason``.
    """
    if unit not in ("models", "sets", "regions"):
        raise InputError(f"unit must be 'models', 'sets' or 'regions', got {unit!r}.")
    if correction not in ("holm", "bonferroni"):
        raise InputError(f"correction must be 'holm' or 'bonferroni', got {correction!r}.")
    controls = tuple(controls)
    if factor in controls:
        raise InputError(f"the factor {factor!r} cannot also be held fixed.")
    table = region_scores(frame, metric, selection)
    if table.empty:
        raise InputError(f"no {selection!r} scores of metric {metric!r} in the leaderboard.")
    info = model_taxonomy(frame).reindex(table.index)
    result = ContrastResult(name or factor, factor, controls, reference, metric, selection,
                            unit, correction)  # fmt: skip
    models, result.excluded = _eligible(info, list(table.index), factor, controls)
    sets = matched_sets(info, models, factor, controls)
    if levels is not None:
        wanted = {str(level) for level in levels} | ({reference} if reference else set())
        sets = sets[sets["level"].isin(wanted)]
    multi = sets.groupby("set")["level"].transform("nunique") > 1 if not sets.empty else []
    result.sets = sets.reset_index(drop=True)
    used = sets[multi] if len(sets) else sets
    if used.empty:
        why = pd.Series(result.excluded, dtype=object).value_counts()
        left_out = "; ".join(f"{reason}: {count}" for reason, count in why.items())
        result.reason = (
            f"no matched set holds models of two {factor} levels: every comparison needs "
            f"trained models that agree on {', '.join(controls)} and differ in {factor} "
            f"({len(models)} eligible models in {sets['set'].nunique() if len(sets) else 0} "
            f"sets{'; left out: ' + left_out if left_out else ''})."
        )
        return result
    if reference is None:
        counts = used.groupby("level")["n_models"].sum()
        reference = sorted(counts.index, key=lambda lv: (-counts[lv], lv))[0]
    result.reference = reference
    with_reference = used[used["set"].isin(used.loc[used["level"] == reference, "set"])]
    others = sorted(set(with_reference["level"]) - {reference})
    if not others:
        result.reason = (
            f"no matched set holds the reference {factor} {reference!r} together with another "
            f"level (levels in matched sets: {sorted(set(used['level']))}); choose another "
            "reference."
        )
        return result
    for level in others:
        result.comparisons.append(
            _compare(table, with_reference, level, reference, unit, n_boot, seed)
        )
    _adjust([c.p_value for c in result.comparisons], result.comparisons, "p_adjusted",
            correction)  # fmt: skip
    return result


def _compare(
    table: pd.DataFrame,
    sets: pd.DataFrame,
    level: str,
    reference: str,
    unit: str,
    n_boot: int,
    seed: int,
) -> Comparison:
    """The paired units of one level against the reference, and their statistics."""
    values = table.to_numpy(dtype=np.float64)  # models x areas
    row = {model: i for i, model in enumerate(table.index)}
    areas = list(table.columns)
    shared = sets.groupby("set")["level"].agg(set)
    names = [s for s, levels in shared.items() if level in levels and reference in levels]
    per_area: list[np.ndarray] = []  # unit="models": each model's per-area differences
    rows = []
    level_means, reference_means = [], []  # unit="regions": per set, per area
    for set_name in names:
        members = sets[sets["set"] == set_name].set_index("level")["models"]
        ref_mean = _nanmean(values[[row[m] for m in members[reference]]])
        level_means.append(_nanmean(values[[row[m] for m in members[level]]]))
        reference_means.append(ref_mean)
        if unit == "regions":
            continue
        for model in members[level]:
            scores = values[row[model]]
            both = np.isfinite(scores) & np.isfinite(ref_mean)
            if not both.any():
                continue
            difference = np.where(both, scores - ref_mean, np.nan)
            per_area.append(difference)
            rows.append({"unit": model, "matched_set": set_name,
                         "score": float(scores[both].mean()),
                         "reference_score": float(ref_mean[both].mean()),
                         "difference": float(difference[both].mean())})  # fmt: skip
    if unit == "regions":
        a, b = _nanmean(np.asarray(level_means)), _nanmean(np.asarray(reference_means))
        rows = [{"unit": area, "matched_set": ", ".join(names), "score": float(a[k]),
                 "reference_score": float(b[k]), "difference": float(a[k] - b[k])}
                for k, area in enumerate(areas) if np.isfinite(a[k] - b[k])]  # fmt: skip
    units = pd.DataFrame(rows, columns=["unit", "matched_set", "score", "reference_score",
                                        "difference"])  # fmt: skip
    if unit == "sets":  # one unit per matched set: the means of its level models
        units = units.groupby("matched_set", sort=False)[["score", "reference_score",
                                                           "difference"]].mean()  # fmt: skip
        units = units.reset_index().assign(unit=lambda t: t["matched_set"])
        units = units[["unit", "matched_set", "score", "reference_score", "difference"]]
    comparison = Comparison(level, reference, len(units), len(names),
                            float(units["difference"].mean()) if len(units) else float("nan"),
                            units=units)  # fmt: skip
    what = {"models": "models", "regions": "regions", "sets": "matched sets"}[unit]
    _test(comparison, units["score"].to_numpy(), units["reference_score"].to_numpy(), what,
          n_boot, seed)  # fmt: skip
    if unit == "models" and per_area:
        comparison.regions = _per_region(np.asarray(per_area), areas)
    return comparison


def _nanmean(block: np.ndarray) -> np.ndarray:
    """Column means over the finite values (NaN where a column has none)."""
    finite = np.isfinite(block)
    counts = finite.sum(axis=0)
    sums = np.where(finite, block, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def _test(
    comparison: Comparison, a: np.ndarray, b: np.ndarray, what: str, n_boot: int, seed: int
) -> None:
    """Fill in the paired test of ``a`` (level) against ``b`` (reference)."""
    n = int(np.isfinite(a - b).sum()) if len(a) else 0
    comparison.reason = stats.too_few(n, f"paired {what}")
    if comparison.reason is not None:
        return
    d = (a - b)[np.isfinite(a - b)]
    if np.ptp(d) == 0:
        comparison.reason = "every paired difference is the same: no test is possible"
        comparison.ci_low = comparison.ci_high = float(d[0])
        return
    test = stats.paired_ttest(a, b)
    comparison.t, comparison.p_value = test.statistic, test.p_value
    comparison.df = float(test.df) if test.df is not None else float("nan")
    comparison.hedges_g = stats.hedges_g(a, b, paired=True)
    low, high = stats.bootstrap_ci(d, np.mean, n_boot=n_boot, seed=seed)
    comparison.ci_low, comparison.ci_high = float(low), float(high)


def _per_region(differences: np.ndarray, areas: Sequence[str]) -> pd.DataFrame:
    """Per region (column of ``differences``: models x areas), the paired comparison;
    p-values adjusted by Holm across regions."""
    rows = []
    for k, area in enumerate(areas):
        d = differences[:, k]
        d = d[np.isfinite(d)]
        row: dict[str, Any] = {"region": area, "n": int(d.size),
                               "mean_difference": float(d.mean()) if d.size else np.nan,
                               "t": np.nan, "p": np.nan, "hedges_g": np.nan}  # fmt: skip
        if stats.too_few(int(d.size)) is None and np.ptp(d) > 0:
            test = stats.paired_ttest(d, np.zeros_like(d))
            row.update(t=test.statistic, p=test.p_value,
                       hedges_g=stats.hedges_g(d, np.zeros_like(d), paired=True))  # fmt: skip
        rows.append(row)
    out = pd.DataFrame(rows)
    if not out.empty:
        out["p_holm"] = stats.holm(out["p"].to_numpy())[0]
    return out


def _adjust(p_values: Sequence[float], comparisons: list[Comparison], attribute: str,
            correction: str) -> None:  # fmt: skip
    p = np.asarray(p_values, dtype=np.float64)
    if correction == "holm":
        adjusted = stats.holm(p)[0]
    else:  # Bonferroni: each p times the number of tests done (NaN: not done)
        m = int(np.isfinite(p).sum())
        adjusted = np.where(np.isfinite(p), np.minimum(1.0, p * m), np.nan)
    for comparison, value in zip(comparisons, adjusted, strict=True):
        setattr(comparison, attribute, float(value))


# --------------------------------------------------------------------------- the seed contrasts


def _named(name: str, frame: pd.DataFrame, reference: str | None, **options: Any) -> ContrastResult:
    spec = CONTRASTS[name]
    return controlled_contrast(frame, spec.factor, spec.controls, reference, name=name, **options)


def task_contrast(frame: pd.DataFrame, reference: str | None = "classification",
                  **options: Any) -> ContrastResult:  # fmt: skip
    """Task vs task (the NSD paper's 3.3): models of the same architecture and training data
    trained for different tasks (Taskonomy's tasks, SLIP's language-image vs SimCLR
    objectives...). ``reference``: default ``classification``; ``None``: the most frequent
    task of the matched sets. ``options``: those of :func:`controlled_contrast`."""
    return _named("task", frame, reference, **options)


def task_cluster_contrast(frame: pd.DataFrame, reference: str = "2D",
                          **options: Any) -> ContrastResult:  # fmt: skip
    """Taskonomy cluster vs cluster (2D, 3D, geometric, semantic; the NSD paper's figure 3
    and the stacking paper's 2D vs 3D): the Taskonomy encoders share architecture and data."""
    return _named("task_cluster", frame, reference, **options)


def data_contrast(frame: pd.DataFrame, reference: str = "ImageNet-1k",
                  **options: Any) -> ContrastResult:  # fmt: skip
    """Training data vs data (the NSD paper's 3.4 "input variation"): the same architecture,
    task and training method on other images (Places365 vs ImageNet networks, IPCL's visual
    diets, ImageNet-1k vs -21k)."""
    return _named("data", frame, reference, **options)


def supervision_contrast(frame: pd.DataFrame, reference: str = "supervised",
                         **options: Any) -> ContrastResult:  # fmt: skip
    """Self-supervised vs category-supervised (the NSD paper's 3.3: SimCLR, BarlowTwins...
    against a supervised ResNet-50): the same architecture and training data."""
    return _named("supervision", frame, reference, **options)


def architecture_contrast(frame: pd.DataFrame, reference: str = "convnet",
                          **options: Any) -> ContrastResult:  # fmt: skip
    """Architecture family vs family (the NSD paper's 3.2: transformers and MLP-mixers
    against convnets): the same task, training data and training method."""
    return _named("architecture", frame, reference, **options)


def seed_contrasts(frame: pd.DataFrame, **options: Any) -> list[ContrastResult]:
    """Every seed contrast of :data:`CONTRASTS` with its default reference (``options``:
    those of :func:`controlled_contrast`, e.g. ``metric``, ``selection``, ``unit``)."""
    return [_named(name, frame, spec.reference, **options) for name, spec in CONTRASTS.items()]
