"""The seed papers' analyses, computed from stored scores.

Every function takes the score table (``brainrank.leaderboard.scores()``: one row per model
x dataset x metric x subject x region x layer x selection, with the model's ``family`` and
``trained``) or arrays, and returns plain DataFrames / dataclasses that the report plots.

- :func:`overall_ranking` (Conwell et al. 2021): per model and region the mean of SRP-Ridge
  Max and RSA Max, averaged over regions, with a 95% bootstrap CI across regions.
- :func:`trained_vs_random`: paired t-test and Cohen's d across architectures, and the
  architectures whose random variant matches or beats the trained one.
- :func:`metric_agreement`: Spearman rank agreement of two metrics over models (with and
  without random models) and layer by layer, with bootstrap CIs.
- :func:`best_layer_depth`: relative depth of the best layer per region and family.
- :func:`family_comparison`: Kruskal-Wallis across architecture families.
- :func:`generalisation`: layers chosen on one dataset, scored on another (NSD's shared
  images vs each subject's own images).
- Neural Taskonomy (Wang, Tarr & Wehbe 2019): :func:`voxel_significance` (permutation test
  with Benjamini-Hochberg FDR), :func:`task_similarity` (cosine similarity of thresholded
  voxel maps), :func:`cluster_tasks` (average / ward linkage), :func:`compare_with_clusters`
  (agreement with the Taskonomy task clusters), :func:`contrast_map` (e.g. 3D vs 2D).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core import stats
from brainrank.core.errors import InputError

SEED_METRICS = ("srp-ridge", "rsa")


# --------------------------------------------------------------------------- helpers


def region_scores(
    frame: pd.DataFrame, metric: str, selection: str = "max", dataset: str | None = None
) -> pd.DataFrame:
    """Model x region table of ``selection`` rows of ``metric`` (mean over subjects, and over
    datasets unless ``dataset`` picks one). Regions are ``dataset/region`` when several
    datasets are present, so regions of different datasets stay apart."""
    rows = frame[(frame["metric"] == metric) & (frame["selection"] == selection)]
    if dataset is not None:
        rows = rows[rows["dataset"] == dataset]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(area=_area(rows))
    return rows.pivot_table(index="model", columns="area", values="score", aggfunc="mean")


def _area(rows: pd.DataFrame) -> pd.Series:
    if rows["dataset"].nunique() > 1:
        return rows["dataset"].astype(str) + "/" + rows["region"].astype(str)
    return rows["region"].astype(str)


def _model_info(frame: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in ("family", "trained") if c in frame.columns]
    return frame.groupby("model")[columns].first() if columns else pd.DataFrame()


# --------------------------------------------------------------------------- ranking


def overall_ranking(
    frame: pd.DataFrame,
    metrics: Sequence[str] = SEED_METRICS,
    selection: str = "max",
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Models ranked on the mean over regions of the mean of ``metrics``' best-layer scores
    (the overall rank of Conwell et al. 2021), with bootstrap CIs across regions.

    Columns: rank, model, score, ci_low, ci_high, n_regions, one column per metric (its mean
    over the regions used), family, trained. Only regions where every metric has a score
    count for a model.
    """
    tables = {m: region_scores(frame, m, selection) for m in metrics}
    tables = {m: t for m, t in tables.items() if not t.empty}
    if not tables:
        return pd.DataFrame(columns=["rank", "model", "score", "ci_low", "ci_high", "n_regions"])
    models = sorted(set.intersection(*(set(t.index) for t in tables.values())))
    areas = sorted(set.intersection(*(set(t.columns) for t in tables.values())))
    info = _model_info(frame)
    out = []
    for model in models:
        stack = np.stack(
            [tables[m].reindex(index=[model], columns=areas).to_numpy()[0] for m in tables]
        )
        combined = stack.mean(axis=0)  # mean over metrics, per region
        keep = np.isfinite(combined)
        values = combined[keep]
        row: dict[str, Any] = {
            "model": model,
            "score": float(values.mean()) if values.size else np.nan,
        }
        if values.size >= 2:
            low, high = stats.bootstrap_ci(values, n_boot=n_boot, ci=ci, seed=seed)
            row.update(ci_low=float(low), ci_high=float(high))
        else:
            row.update(ci_low=np.nan, ci_high=np.nan)
        row["n_regions"] = int(keep.sum())
        for m, series in zip(tables, stack, strict=True):
            row[m] = float(np.nanmean(series[keep])) if keep.any() else np.nan
        for column in info.columns:
            row[column] = info.loc[model, column]
        out.append(row)
    result = pd.DataFrame(out).sort_values("score", ascending=False, na_position="last")
    result.insert(0, "rank", np.arange(1, len(result) + 1))
    return result.reset_index(drop=True)


# --------------------------------------------------------------------------- trained vs random


@dataclass
class TrainedVsRandom:
    """Per architecture, the trained and the random variant's score; the paired test."""

    pairs: pd.DataFrame  # architecture, trained_model, random_model, trained, random, difference
    t: float
    p_value: float
    cohens_d: float
    random_matches_or_beats: list[str] = field(default_factory=list)


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
    architectures on a metric (each model's score: its mean over regions)."""
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
    test = stats.paired_ttest(pairs_frame["trained"], pairs_frame["random"])
    d = stats.cohens_d_paired(pairs_frame["trained"], pairs_frame["random"])
    beaten = pairs_frame.loc[pairs_frame["difference"] <= 0, "architecture"].tolist()
    return TrainedVsRandom(pairs_frame, test.statistic, test.p_value, d, beaten)


# --------------------------------------------------------------------------- metric agreement


def metric_agreement(
    frame: pd.DataFrame,
    a: str = "srp-ridge",
    b: str = "rsa",
    selection: str = "max",
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Spearman rank agreement between two metrics, with bootstrap CIs.

    Rows: ``models`` (each model's mean over regions, all models), ``trained models``
    (random variants and untrained baselines left out), ``layers`` (every layer of every
    model, each layer's mean over regions) and ``layers within models`` (the median over
    models of the per-model layer-by-layer rho; CI by bootstrap over models).
    """
    out = []
    ta, tb = region_scores(frame, a, selection), region_scores(frame, b, selection)
    if not ta.empty and not tb.empty:
        common = ta.index.intersection(tb.index)
        sa, sb = ta.loc[common].mean(axis=1), tb.loc[common].mean(axis=1)
        out.append(_agreement("models", sa, sb, n_boot, seed))
        info = _model_info(frame)
        if "trained" in info.columns:
            trained = [m for m in common if bool(info.loc[m, "trained"])]
            if len(trained) >= 3:
                out.append(_agreement("trained models", sa[trained], sb[trained], n_boot, seed))
    la = _layer_table(frame, a)
    lb = _layer_table(frame, b)
    if not la.empty and not lb.empty:
        joined = la.to_frame("a").join(lb.to_frame("b"), how="inner").dropna()
        if len(joined) >= 3:
            out.append(_agreement("layers", joined["a"], joined["b"], n_boot, seed))
        per_model = []
        for _, group in joined.groupby(level="model"):
            if len(group) >= 3 and group["a"].nunique() > 1 and group["b"].nunique() > 1:
                rho, _, _ = stats.spearman_rank_agreement(group["a"], group["b"], n_boot=2)
                per_model.append(rho)
        if len(per_model) >= 2:
            values = np.asarray(per_model)
            low, high = stats.bootstrap_ci(values, np.median, n_boot=n_boot, seed=seed)
            out.append({"comparison": "layers within models", "rho": float(np.median(values)),
                        "ci_low": float(low), "ci_high": float(high), "n": len(values)})  # fmt: skip
    return pd.DataFrame(out, columns=["comparison", "rho", "ci_low", "ci_high", "n"])


def _layer_table(frame: pd.DataFrame, metric: str) -> pd.Series:
    rows = frame[(frame["metric"] == metric) & (frame["selection"] == "layer")]
    if rows.empty:
        return pd.Series(dtype=float)
    return rows.groupby(["model", "layer"])["score"].mean()


def _agreement(name: str, a: pd.Series, b: pd.Series, n_boot: int, seed: int) -> dict[str, Any]:
    rho, low, high = stats.spearman_rank_agreement(
        np.asarray(a), np.asarray(b), n_boot=n_boot, seed=seed
    )
    return {"comparison": name, "rho": rho, "ci_low": low, "ci_high": high, "n": len(a)}


# --------------------------------------------------------------------------- generalisation


def generalisation(
    frame: pd.DataFrame,
    select_on: str,
    score_on: str,
    metric: str = "versa",
) -> pd.DataFrame:
    """Best layer chosen on one dataset, scored on another with the same subjects and
    regions (the generalisation test of the 5.17-billion-fit paper: layers chosen on NSD's
    shared images, ``select_on="nsd/shared1000"``, scored on each subject's own images,
    ``score_on="nsd/generalisation:*"``).

    Returns one row per model, subject and region: the chosen layer, its score on
    ``select_on`` (``selected``), its score on ``score_on`` (``generalised``) and the best
    score on ``score_on`` over all layers (``best_possible``).
    """
    import fnmatch

    layers = frame[(frame["metric"] == metric) & (frame["selection"] == "layer")]
    train = layers[layers["dataset"] == select_on]
    test = layers[layers["dataset"].map(lambda d: fnmatch.fnmatchcase(str(d), score_on))]
    if train.empty or test.empty:
        raise InputError(
            f"no per-layer {metric!r} scores on {select_on!r} and on {score_on!r} to compare."
        )
    keys = ["model", "subject", "region"]
    chosen = train.loc[train.groupby(keys)["score"].idxmax()][[*keys, "layer", "score"]]
    chosen = chosen.rename(columns={"score": "selected"})
    scored = test.groupby([*keys, "layer"])["score"].mean().rename("generalised").reset_index()
    best = test.groupby(keys)["score"].max().rename("best_possible").reset_index()
    out = chosen.merge(scored, on=[*keys, "layer"], how="inner").merge(best, on=keys, how="left")
    return out.sort_values(keys).reset_index(drop=True)


# --------------------------------------------------------------------------- hierarchy and families


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
    summary: pd.DataFrame  # family, n_models, mean, median
    h: float
    p_value: float
    df: float


def family_comparison(
    frame: pd.DataFrame,
    metric: str = "srp-ridge",
    selection: str = "max",
    families: Sequence[str] = ("convnet", "transformer", "mlp-mixer"),
    trained_only: bool = True,
) -> FamilyComparison:
    """Kruskal-Wallis test of the models' scores (mean over regions) across families."""
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
    return FamilyComparison(summary, result.statistic, result.p_value, result.df or 0.0)


# --------------------------------------------------------------------------- Neural Taskonomy


@dataclass
class VoxelSignificance:
    r: np.ndarray
    p: np.ndarray
    p_fdr: np.ndarray
    significant: np.ndarray


def voxel_significance(
    predictions: np.ndarray,
    responses: np.ndarray,
    *,
    n_permutations: int = 5000,
    alpha: float = 0.05,
    seed: int = 0,
) -> VoxelSignificance:
    """Per-voxel permutation test of the prediction-response correlation (stimuli shuffled,
    no refits), Benjamini-Hochberg FDR across voxels."""
    r, p = stats.permutation_test(predictions, responses, n_permutations=n_permutations, seed=seed)
    adjusted, significant = stats.fdr_bh(p, alpha=alpha)
    return VoxelSignificance(r, p, adjusted, significant)


def encoding_significance(
    model: Any,
    dataset: Any,
    layer: str,
    *,
    metric: Any = "srp-ridge",
    n_permutations: int = 5000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, VoxelSignificance]:
    """Per-neuroid significance of a layer's encoding model (Neural Taskonomy): the LOO
    predictions of ``metric`` (an SRP-ridge metric) for ``layer`` tested by permutation
    with FDR. Features come from the feature cache when present. Returns
    ``(neuroid_ids, result)``."""
    import brainrank
    from brainrank.config import settings
    from brainrank.core.cache import FeatureCache
    from brainrank.core.extraction import ExtractionConfig
    from brainrank.core.runner import compute_features
    from brainrank.plugins.metrics._encoding import Targets

    model = brainrank.load_model(model) if isinstance(model, str) else model
    dataset = brainrank.load_dataset(dataset) if isinstance(dataset, str) else dataset
    metric = brainrank.load_metric(metric) if isinstance(metric, str) else metric
    if not hasattr(metric, "per_neuroid"):
        raise InputError(f"metric {metric.identifier!r} has no per-neuroid LOO predictions.")
    cache = FeatureCache(settings().cache_dir / "features")
    features = compute_features(
        model, dataset.stimuli, metric.feature_request(dataset), ExtractionConfig(), cache
    )
    targets = Targets.of(dataset)
    subset = type(features)(features.model, features.stimulus_ids, [features[layer]], features.key)
    [(_, _, _, predictions)] = list(metric.per_neuroid(subset, targets))
    if predictions is None:
        raise InputError(f"layer {layer!r} of {model.identifier!r} is constant: nothing to test.")
    result = voxel_significance(
        predictions, targets.values, n_permutations=n_permutations, alpha=alpha, seed=seed
    )
    return targets.neuroid_ids, result


def task_similarity(
    maps: Mapping[str, np.ndarray], significant: Mapping[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """Task x task cosine similarity of voxelwise performance maps; voxels not significant
    for a task (``significant[task]`` False) count as 0 for that task."""
    names = list(maps)
    if len(names) < 2:
        raise InputError("task similarity needs the maps of at least 2 tasks.")
    stack = np.stack([np.nan_to_num(np.asarray(maps[n], dtype=np.float64)) for n in names])
    if significant is not None:
        stack = stack * np.stack([np.asarray(significant[n], dtype=bool) for n in names])
    norms = np.linalg.norm(stack, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = (stack @ stack.T) / np.outer(norms, norms)
    return pd.DataFrame(similarity, index=names, columns=names)


@dataclass
class TaskTree:
    method: str
    labels: list[str]
    linkage: np.ndarray  # scipy linkage matrix
    order: list[str]  # leaves in dendrogram order

    def clusters(self, n_clusters: int) -> dict[str, int]:
        from scipy.cluster.hierarchy import fcluster

        ids = fcluster(self.linkage, n_clusters, criterion="maxclust")
        return dict(zip(self.labels, ids.tolist(), strict=True))


def cluster_tasks(similarity: pd.DataFrame, method: str = "average") -> TaskTree:
    """Hierarchical clustering of tasks from their similarity (distance = 1 - similarity)
    with ``average`` or ``ward`` linkage."""
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    if method not in ("average", "ward"):
        raise InputError(f"method must be 'average' or 'ward', got {method!r}.")
    values = np.nan_to_num(similarity.to_numpy(dtype=np.float64))
    distance = np.clip(1.0 - (values + values.T) / 2, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method=method)
    labels = list(similarity.index)
    leaves = dendrogram(tree, no_plot=True, labels=labels)["ivl"]
    return TaskTree(method, labels, tree, list(leaves))


def compare_with_clusters(tree: TaskTree, clusters: Mapping[str, str]) -> dict[str, float]:
    """Agreement between the tree cut into as many clusters as ``clusters`` names (e.g. the
    Taskonomy 2D / 3D / geometric / semantic groups) and those clusters: adjusted Rand index
    and purity, over the tasks present in both."""
    from sklearn.metrics import adjusted_rand_score

    tasks = [t for t in tree.labels if t in clusters]
    if len(tasks) < 3:
        raise InputError("comparing clusterings needs at least 3 tasks with a known cluster.")
    k = len({clusters[t] for t in tasks})
    cut = tree.clusters(k)
    truth = [clusters[t] for t in tasks]
    found = [cut[t] for t in tasks]
    purity = 0
    for label in set(found):
        members = [truth[i] for i, f in enumerate(found) if f == label]
        purity += max(members.count(c) for c in set(members))
    return {
        "adjusted_rand": float(adjusted_rand_score(truth, found)),
        "purity": purity / len(tasks),
        "n_clusters": k,
    }


def contrast_map(
    maps: Mapping[str, np.ndarray], group_a: Sequence[str], group_b: Sequence[str]
) -> np.ndarray:
    """Per voxel, the mean map of ``group_a`` tasks minus that of ``group_b`` (e.g. 3D vs 2D)."""
    missing = [t for t in [*group_a, *group_b] if t not in maps]
    if missing:
        raise InputError(f"no maps for tasks {missing}.")
    a = np.nanmean(np.stack([maps[t] for t in group_a]), axis=0)
    b = np.nanmean(np.stack([maps[t] for t in group_b]), axis=0)
    return a - b


def maps_from_per_neuroid(per_neuroid: pd.DataFrame, key: str = "model") -> dict[str, np.ndarray]:
    """``{model: values}`` aligned on the neuroids every model has, from
    ``brainrank.leaderboard.per_neuroid(...)`` rows of one dataset, subject and selection."""
    if per_neuroid.empty:
        return {}
    table = per_neuroid.pivot_table(index="neuroid_id", columns=key, values="value", aggfunc="mean")
    table = table.dropna()
    return {str(c): table[c].to_numpy() for c in table.columns}
