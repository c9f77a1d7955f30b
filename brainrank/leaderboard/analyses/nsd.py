"""The analyses of the NSD benchmark (Conwell, Prince, Alvarez & Konkle, "5.17 billion
regression fits"; see the package docstring): the relative depth of the best layer per
region and architecture family, the comparison of families (Kruskal-Wallis), and the
generalisation of layers chosen on one image set to another."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
