"""The analyses of the NSD benchmark (Conwell, Prince, Alvarez & Konkle, "5.17 billion
regression fits"; see the package docstring): the relative depth of the best layer per
region and architecture family, the comparison of families (Kruskal-Wallis), and the
generalisation of layers chosen on one image set to another."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core import stats
from brainrank.core.errors import InputError
from brainrank.leaderboard.analyses.tables import _area, _model_info, region_scores


def generalisation(
    frame: pd.DataFrame,
    dataset: str = "nsd/generalisation:*",
    metric: str = "versa:generalisation",
) -> pd.DataFrame:
    """The generalisation test of the 5.17-billion-fit paper, from stored rows: per model,
    subject and region, the layer chosen on the training stimuli (NSD's shared 1000
    images), scored on the test stimuli (the subject's own 1000 images) with the weights
    fitted on the training stimuli.

    Reads the per-layer rows of a train/test metric (``versa:generalisation``,
    ``versa:nsd``) on the datasets matching ``dataset``: each holds the test score as its
    value and the (leak-free, cross-fitted) training score in ``details["train"]``.

    Returns one row per model, subject and region: the chosen layer, its training score
    (``selected``), its test score (``generalised``) and the best test score over all layers
    (``best_possible``, for reference: choosing on the test stimuli would be optimistic).
    """
    import fnmatch

    rows = frame[(frame["metric"] == metric) & (frame["selection"] == "layer")]
    rows = rows[rows["dataset"].map(lambda d: fnmatch.fnmatchcase(str(d), dataset))].copy()
    if not rows.empty:
        rows["train"] = [
            (d or {}).get("train") if isinstance(d, dict) else None for d in rows["details"]
        ]
        rows = rows[rows["train"].notna() & rows["score"].notna()]
    if rows.empty:
        raise InputError(
            f"no per-layer {metric!r} scores with a training score on {dataset!r}: score a "
            "dataset with a train/test split (e.g. nsd/generalisation:subj01) with "
            "versa:generalisation or versa:nsd first."
        )
    keys = ["model", "dataset", "subject", "region"]
    rows["train"] = rows["train"].astype(float)
    chosen = rows.loc[rows.groupby(keys)["train"].idxmax()][[*keys, "layer", "train", "score"]]
    chosen = chosen.rename(columns={"train": "selected", "score": "generalised"})
    best = rows.groupby(keys)["score"].max().rename("best_possible").reset_index()
    out = chosen.merge(best, on=keys, how="left")
    return out.sort_values(keys).reset_index(drop=True)


def best_layer_depth(
    frame: pd.DataFrame, metric: str = "srp-ridge", selection: str = "max"
) -> pd.DataFrame:
    """Relative depth (0 = first layer, 1 = last) of the best layer per region and family:
    mean, standard deviation and number of models (mean over subjects first)."""
    rows = frame[(frame["metric"] == metric) & (frame["selection"] == selection)]
    rows = rows[rows["relative_depth"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=["region", "family", "mean_depth", "sd_depth", "n_models"])
    rows = rows.assign(area=_area(rows))
    per_model = rows.groupby(["area", "model"]).agg(
        depth=("relative_depth", "mean"), family=("family", "first")
    )
    grouped = per_model.reset_index().groupby(["area", "family"])["depth"]
    out = grouped.agg(mean_depth="mean", sd_depth="std", n_models="count").reset_index()
    return out.rename(columns={"area": "region"})


@dataclass
class FamilyComparison:
    """Kruskal-Wallis across families on the models' mean over regions (``h``, ``p_value``,
    ``epsilon_squared``), and per region with Holm-corrected p-values (``regions``)."""

    summary: pd.DataFrame  # family, n_models, mean, median
    h: float
    p_value: float
    df: float
    epsilon_squared: float = float("nan")
    n: int = 0
    reason: str | None = None
    #: region, h, df, p_value, p_holm, epsilon_squared, n (one Kruskal-Wallis per region)
    regions: pd.DataFrame = field(default_factory=pd.DataFrame)


def family_comparison(
    frame: pd.DataFrame,
    metric: str = "srp-ridge",
    selection: str = "max",
    families: Sequence[str] = ("convnet", "transformer", "mlp-mixer"),
    trained_only: bool = True,
) -> FamilyComparison:
    """Kruskal-Wallis test of the models' scores (mean over regions) across families, with
    the rank effect size epsilon^2 = H / (n - 1) (the ``epsilon^2_ordinal`` of Conwell et al.'s
    5.17-billion-fit paper), and the same test per region with Holm-corrected p-values
    across regions (that paper's ``p_Holm``). p-values are given only when every family has
    at least 5 models (the chi-square approximation's usual minimum); otherwise ``reason``
    says why and ``p_value`` is NaN."""
    table = region_scores(frame, metric, selection)
    if table.empty:
        raise InputError(f"no {selection!r} scores of metric {metric!r} in the leaderboard.")
    per_model = table.mean(axis=1)
    info = _model_info(frame)
    groups = {}
    for family in families:
        members = [m for m in per_model.index if info.loc[m, "family"] == family]
        if trained_only and "trained" in info.columns:
            members = [m for m in members if bool(info.loc[m, "trained"])]
        if members:
            groups[family] = per_model[members].to_numpy()
    if len(groups) < 2:
        raise InputError(f"the family comparison needs models of at least 2 of {list(families)}.")
    result = stats.kruskal_wallis(list(groups.values()))
    n = int(sum(v.size for v in groups.values()))
    smallest = min(v.size for v in groups.values())
    reason = stats.too_few(smallest, "models in the smallest family")
    members = {f: [m for m in per_model.index if _in_family(info, m, f, trained_only)]
               for f in groups}  # fmt: skip
    region_rows = []
    for area in table.columns:
        samples = [table.loc[members[f], area].dropna().to_numpy() for f in groups]
        if sum(x.size > 0 for x in samples) < 2:
            continue
        samples = [x for x in samples if x.size]
        test = stats.kruskal_wallis(samples)
        m = int(sum(x.size for x in samples))
        region_rows.append({"region": area, "h": test.statistic, "df": test.df,
                            "p_value": test.p_value, "epsilon_squared": stats.epsilon_squared(
                                test.statistic, m), "n": m,
                            "min_group": min(x.size for x in samples)})  # fmt: skip
    regions = pd.DataFrame(region_rows)
    if not regions.empty:
        regions["p_holm"] = stats.holm(regions["p_value"].to_numpy())[0]
        few = regions["min_group"] < stats.MIN_UNITS
        regions.loc[few, ["p_value", "p_holm"]] = np.nan
    summary = pd.DataFrame(
        [
            {
                "family": f,
                "n_models": v.size,
                "mean": float(v.mean()),
                "median": float(np.median(v)),
            }
            for f, v in groups.items()
        ]
    )
    p_value = result.p_value if reason is None else float("nan")
    return FamilyComparison(
        summary,
        result.statistic,
        p_value,
        result.df or 0.0,
        stats.epsilon_squared(result.statistic, n),
        n,
        reason,
        regions,
    )


def _in_family(info: pd.DataFrame, model: str, family: str, trained_only: bool) -> bool:
    if info.loc[model, "family"] != family:
        return False
    return not (trained_only and "trained" in info.columns and not bool(info.loc[model, "trained"]))


def generalisation_summary(
    table: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0
) -> tuple[dict[str, float], pd.DataFrame]:
    """The numbers of the 5.17-billion-fit paper's generalisation test (section 3.5 and
    appendix Figure 4) from :func:`generalisation`'s table: overall, the mean decrease from
    the training score of the chosen layer (``selected``) to its test score
    (``generalised``) with a percentile bootstrap CI over (model, subject, region) rows
    ("the mean decrease in score on the unseen images was less than 1%, r = 0.0095,
    CI95 [0.00422, 0.0153]"); and per subject and region the mean training and test scores
    over models with the mean decrease (the figure's points)."""
    if table.empty:
        raise InputError("no generalisation rows to summarise.")
    decrease = (table["selected"] - table["generalised"]).to_numpy(dtype=np.float64)
    decrease = decrease[np.isfinite(decrease)]
    overall = {"mean_decrease": float(decrease.mean()), "ci_low": np.nan, "ci_high": np.nan,
               "n": int(decrease.size), "mean_selected": float(table["selected"].mean()),
               "mean_generalised": float(table["generalised"].mean())}  # fmt: skip
    if stats.too_few(decrease.size, "rows") is None:
        low, high = stats.bootstrap_ci(decrease, np.mean, n_boot=n_boot, seed=seed)
        overall.update(ci_low=float(low), ci_high=float(high))
    per = table.assign(decrease=table["selected"] - table["generalised"])
    keys = ["dataset", "subject", "region"]
    by_cell = per.groupby(keys).agg(selected=("selected", "mean"),
                                    generalised=("generalised", "mean"),
                                    decrease=("decrease", "mean"),
                                    n_models=("model", "nunique")).reset_index()  # fmt: skip
    return overall, by_cell


# --------------------------------------------------------------------------- paired differences


@dataclass
class PairedDifference:
    """The mean of paired differences ``a - b`` over units with a percentile bootstrap CI
    (NaN below 5 units; ``reason`` then says why); ``units``: one row per unit with both
    values and the difference; ``by_region``: the same per region."""

    a: str
    b: str
    mean: float
    ci_low: float
    ci_high: float
    n: int
    units: pd.DataFrame
    by_region: pd.DataFrame
    reason: str | None = None


def paired_difference(
    frame: pd.DataFrame,
    a: str | Sequence[str],
    b: str | Sequence[str],
    *,
    by: str = "metric",
    selection: str = "max",
    n_boot: int = 1000,
    seed: int = 0,
) -> PairedDifference:
    """Paired-difference bootstrap CI of two metrics or two models (or two lists of models,
    paired by position: SSL against supervised variants of the same architectures).

    - ``by="metric"``: ``a`` and ``b`` are metrics or configuration names (``versa``,
      ``rsa``); a unit is a (model, dataset, region) both were scored on, its value the
      mean over subjects of the ``selection`` rows. The 5.17-billion-fit paper's "average
      gains of r = 0.160, CI95 [0.152, 0.166] across model and ROI" of veRSA over cRSA.
    - ``by="model"``: ``a`` and ``b`` are models (or equal-length lists of models); a unit is
      a (pair, dataset, metric configuration, region) both were scored on, subject-averaged.

    The CI resamples units (percentile bootstrap, :func:`brainrank.core.stats.bootstrap_ci`).
    """
    if by not in ("metric", "model"):
        raise InputError(f"by must be 'metric' or 'model', got {by!r}.")
    rows = frame[frame["selection"] == selection]
    if rows.empty:
        raise InputError(f"no {selection!r} rows in these scores.")
    column = "config" if "config" in rows.columns else "metric"
    if by == "metric":
        if not isinstance(a, str) or not isinstance(b, str):
            raise InputError("by='metric' compares two metrics: give a and b as names.")
        name = {}
        for side, metric in (("a", a), ("b", b)):
            part = rows[rows["metric"] == metric]
            if part.empty:
                part = rows[rows[column] == metric]
            if part.empty:
                raise InputError(f"no {selection!r} rows of metric {metric!r}.")
            if column in part.columns and part[column].nunique() > 1:
                raise InputError(
                    f"metric {metric!r} is stored with several configurations "
                    f"({', '.join(sorted(part[column].unique()))}); name one."
                )
            name[side] = part.groupby(["model", "dataset", "region"])["score"].mean()
        units = pd.concat([name["a"].rename("a"), name["b"].rename("b")], axis=1, join="inner")
        label_a, label_b = a, b
    else:
        first = [a] if isinstance(a, str) else list(a)
        second = [b] if isinstance(b, str) else list(b)
        if len(first) != len(second):
            raise InputError(f"{len(first)} models against {len(second)}: pair them one to one.")
        parts = []
        for x, y in zip(first, second, strict=True):
            keys = ["dataset", column, "region"]
            va = rows[rows["model"] == x].groupby(keys)["score"].mean().rename("a")
            vb = rows[rows["model"] == y].groupby(keys)["score"].mean().rename("b")
            both = pd.concat([va, vb], axis=1, join="inner").reset_index()
            parts.append(both.assign(pair=f"{x} - {y}"))
        units = pd.concat(parts, ignore_index=True).set_index(["pair", "dataset", column, "region"])
        label_a, label_b = ", ".join(first), ", ".join(second)
    units = units.dropna()
    units["difference"] = units["a"] - units["b"]
    units = units.reset_index()
    n = len(units)
    if n == 0:
        raise InputError(f"{label_a} and {label_b} share no scored units.")
    diff = units["difference"].to_numpy(dtype=np.float64)
    nan = float("nan")
    by_region = units.groupby(["dataset", "region"])["difference"].agg(["mean", "count"])
    by_region = by_region.rename(columns={"count": "n"}).reset_index()
    reason = stats.too_few(n, "paired units")
    if reason is not None:
        return PairedDifference(label_a, label_b, float(diff.mean()), nan, nan, n, units,
                                by_region, reason)  # fmt: skip
    low, high = stats.bootstrap_ci(diff, np.mean, n_boot=n_boot, seed=seed)
    return PairedDifference(label_a, label_b, float(diff.mean()), float(low), float(high), n,
                            units, by_region)  # fmt: skip


# --------------------------------------------------------------------------- dimensionality

#: the metric that stores each layer's effective dimensionality
DIMENSIONALITY = "effective-dimensionality"


def layer_dimensionality(frame: pd.DataFrame) -> pd.DataFrame:
    """Each layer's effective dimensionality on each dataset's stimuli, from the rows of the
    ``effective-dimensionality`` metric (one value per layer, repeated in every subject and
    region of the dataset: taken once): model, dataset, layer, layer_index, relative_depth,
    effective_dimensionality, family, trained."""
    rows = frame[(frame["metric"] == DIMENSIONALITY) & (frame["selection"] == "layer")]
    rows = rows.drop_duplicates(["model", "dataset", "layer"])
    columns = ["model", "dataset", "layer", "layer_index", "relative_depth",
               "effective_dimensionality", "family", "trained"]  # fmt: skip
    if rows.empty:
        return pd.DataFrame(columns=columns)
    out = rows.rename(columns={"score": "effective_dimensionality"})
    for column in columns:
        if column not in out.columns:
            out[column] = np.nan
    return out[columns].sort_values(["model", "dataset", "layer_index"]).reset_index(drop=True)


def dimensionality_vs_score(
    frame: pd.DataFrame,
    metric: str = "srp-ridge",
    *,
    dataset: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Spearman's rho between a layer's effective dimensionality and its score on ``metric``
    (mean over subjects and regions), over every (model, layer) of a dataset (Elmoznino &
    Bonner: higher-dimensional layers predict visual cortex better). The CI resamples
    models (a cluster bootstrap: a model's layers are not independent of one another);
    ``per_model``: each model's own rho over its layers (at least 3 layers), with their mean.
    Returns ``{"rho", "ci_low", "ci_high", "n_layers", "n_models", "mean_model_rho", "table",
    "per_model", "reason"}``."""
    dims = layer_dimensionality(frame)
    rows = frame[(frame["metric"] == metric) & (frame["selection"] == "layer")]
    if "config" in rows.columns and rows["config"].nunique() > 1:
        raise InputError(f"metric {metric!r} has several configurations here; filter to one.")
    if dataset is not None:
        dims, rows = dims[dims["dataset"] == dataset], rows[rows["dataset"] == dataset]
    if dims.empty:
        raise InputError(
            "no effective dimensionality is stored: score the models with "
            "`brainrank run --metrics effective-dimensionality` on the same dataset."
        )
    score = rows.groupby(["model", "dataset", "layer"])["score"].mean().rename("score")
    table = dims.merge(score.reset_index(), on=["model", "dataset", "layer"], how="inner")
    table = table.dropna(subset=["effective_dimensionality", "score"])
    if table.empty:
        raise InputError(f"no layer has both an effective dimensionality and a {metric} score.")
    import scipy.stats

    models = sorted(set(table["model"]))
    nan = float("nan")
    out: dict[str, Any] = {"rho": nan, "ci_low": nan, "ci_high": nan, "n_layers": len(table),
                           "n_models": len(models), "table": table, "reason": None}  # fmt: skip
    if len(table) >= 3:
        out["rho"] = float(scipy.stats.spearmanr(table["effective_dimensionality"],
                                                 table["score"]).statistic)  # fmt: skip
    per_model = []
    for model, part in table.groupby("model"):
        if len(part) >= 3 and part["score"].nunique() > 1:
            rho = scipy.stats.spearmanr(part["effective_dimensionality"], part["score"]).statistic
            per_model.append({"model": model, "rho": float(rho), "n_layers": len(part)})
    out["per_model"] = pd.DataFrame(per_model, columns=["model", "rho", "n_layers"])
    out["mean_model_rho"] = float(out["per_model"]["rho"].mean()) if per_model else nan
    reason = stats.too_few(len(models), "models")
    if reason is not None:
        out["reason"] = reason
        return out
    groups = [table[table["model"] == m] for m in models]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        chosen = pd.concat([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        draws.append(
            scipy.stats.spearmanr(chosen["effective_dimensionality"], chosen["score"]).statistic
        )
    draws = np.asarray(draws, dtype=np.float64)
    out["ci_low"], out["ci_high"] = (float(np.nanquantile(draws, q)) for q in (0.025, 0.975))
    return out


# --------------------------------------------------------------------------- references


def subject_references(
    dataset: Any,
    metric: Any,
    *,
    kinds: Sequence[str] = ("subject", "multisubject"),
    regions: Sequence[str] | None = None,
    selection: str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Human reference points of the 5.17-billion-fit paper (appendix A.5, Figure 5): how
    well other brains predict one brain, scored by the same ``metric`` object that scores
    the models (the same projection, ridge, split and comparison: "the mapping procedure in
    this case is exactly the same as it was for the mapping of models").

    For every target subject and region, the "features" are another subject's responses in
    that region (its trial-averaged patterns over the stimuli both have):

    - ``"subject"``: each other single subject in turn (with ``rsa``, the paper's pairwise
      inter-subject RDM correlation; with ``versa``, its reweighted subject-to-subject
      reference);
    - ``"multisubject"``: the concatenated responses of every other subject (the paper's
      multi-human reference, "the one reference point that reweighted models do not
      consistently outperform").

    ``dataset``: a loaded :class:`~brainrank.core.dataset.Dataset` with responses of at
    least 2 subjects; ``metric``: a metric object (e.g. ``brainrank.load_metric("versa")``).
    Wider sources than the metric's projection dimension are projected as model features
    are (very sparse random projection, ``seed``). Returns one row per (target, region,
    kind, source): ``value`` is the metric's ``selection`` row (default: the metric's
    headline row, else ``max``; with one "layer" the two agree but for ``heldout``, whose
    halves are scored apart as they are for models).
    """
    from brainrank.core.dataset import Dataset
    from brainrank.core.projection import SparseRandomProjection
    from brainrank.core.responses import average_repetitions, neuroid_groups
    from brainrank.core.rsa import rdm
    from brainrank.core.scores import FeatureSet, LayerFeatures

    unknown = set(kinds) - {"subject", "multisubject"}
    if unknown:
        raise InputError(f"unknown reference kinds {sorted(unknown)}; use subject, multisubject.")
    responses = dataset.responses()
    if responses is None:
        raise InputError(f"dataset {dataset.identifier!r} has no responses to compare subjects.")
    averaged = average_repetitions(responses)
    groups = dict(neuroid_groups(averaged))
    subjects = sorted({s for s, _ in groups})
    if len(subjects) < 2:
        raise InputError(
            f"dataset {dataset.identifier!r} has {len(subjects)} subject: a reference between "
            "subjects needs at least 2 with the same stimuli."
        )
    ids = [str(s) for s in averaged["stimulus_id"].values]
    values = np.asarray(averaged.values, dtype=np.float64)
    wanted = selection or getattr(metric, "headline", None) or "max"
    request = metric.feature_request(dataset)
    dims = sorted(request.projection_dims)
    names = sorted({r for _, r in groups}) if regions is None else list(regions)
    out = []
    for region in names:
        have = [s for s in subjects if (s, region) in groups]
        for target in have:
            index = groups[(target, region)]
            keep = np.all(np.isfinite(values[:, index]), axis=1)
            sources = [s for s in have if s != target]
            plans = []
            if "subject" in kinds:
                plans += [("subject", s, [s]) for s in sources]
            if "multisubject" in kinds and len(sources) > 1:
                plans.append(("multisubject", "+".join(sources), sources))
            for kind, name, members in plans:
                columns = np.concatenate([groups[(s, region)] for s in members])
                rows_ok = keep & np.all(np.isfinite(values[:, columns]), axis=1)
                stim = [i for i, ok in zip(ids, rows_ok, strict=True) if ok]
                x = values[rows_ok][:, columns]
                y = averaged[rows_ok][:, index]
                target_set = Dataset(f"{dataset.identifier}:reference", dataset.stimuli,
                                     dataset.metadata, responses=y)  # fmt: skip
                projections = {}
                for k in dims:
                    projections[k] = (
                        x.astype(np.float32) if x.shape[1] <= k else
                        (x @ SparseRandomProjection(x.shape[1], k, seed=seed).dense())
                        .astype(np.float32)
                    )  # fmt: skip
                layer = LayerFeatures(
                    "responses", 0, 0.0, x.shape[1], (x.shape[1],), projections,
                    rdm=rdm(x, dtype="float64") if request.rdm else None,
                )  # fmt: skip
                features = FeatureSet(f"reference/{name}", tuple(stim), [layer])
                scores = metric.score(features, target_set)
                found = [s for s in scores if s.selection == wanted] or [
                    s for s in scores if s.selection == "layer"
                ]
                for score in found:
                    out.append({"dataset": dataset.identifier, "region": region,
                                "target": target, "kind": kind, "source": name,
                                "n_sources": len(members), "selection": score.selection,
                                "value": float(score.value)})  # fmt: skip
    columns = ["dataset", "region", "target", "kind", "source", "n_sources", "selection", "value"]
    return pd.DataFrame(out, columns=columns)
