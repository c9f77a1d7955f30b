"""The analyses of Neural Taskonomy (Wang, Tarr & Wehbe 2019; see the package docstring):
per-voxel significance read from stored values, task similarity and task trees, and
contrast maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core.errors import InputError


@dataclass
class VoxelSignificance:
    """Per-neuroid held-out r and FDR-adjusted permutation p-values, read from the store."""

    neuroid_ids: np.ndarray  # "subject/neuroid_id"
    r: np.ndarray
    p_fdr: np.ndarray
    significant: np.ndarray
    q: float
    layers: dict[tuple[str, str], str] = field(default_factory=dict)  # (subject, region) -> layer


def voxel_significance(
    per_neuroid: pd.DataFrame, *, layer: str | None = None, q: float = 0.05
) -> VoxelSignificance:
    """Per-voxel significance of one model's held-out encoding, from stored values only.

    ``per_neuroid``: rows of :func:`brainrank.leaderboard.per_neuroid` for one model,
    dataset and metric that stores a ``selection="significance"`` row per layer (e.g.
    ``encoding:taskonomy``: its ``layer`` rows hold each voxel's held-out r, its
    ``significance`` rows the Benjamini-Hochberg adjusted permutation p-values). The layer
    is ``layer`` when given, else per (subject, region) the layer of the stored ``max`` row.
    A voxel is significant when its adjusted p <= ``q`` (the q the metric used, 0.05 by
    default). Nothing is fitted or extracted here.
    """
    if per_neuroid.empty:
        raise InputError("no per-neuroid values were given.")
    for column in ("model", "dataset", "metric"):
        if per_neuroid[column].nunique() > 1:
            raise InputError(
                f"voxel significance needs the rows of one {column}; got "
                f"{sorted(per_neuroid[column].unique())}."
            )
    significance = per_neuroid[per_neuroid["selection"] == "significance"]
    if significance.empty:
        raise InputError(
            f"metric {per_neuroid['metric'].iloc[0]!r} stores no per-neuroid significance "
            "('significance' rows); score the model with 'encoding:taskonomy', which stores "
            "held-out permutation p-values with FDR correction."
        )
    layer_rows = per_neuroid[per_neuroid["selection"] == "layer"]
    keys = ["subject", "region"]
    if layer is not None:
        chosen = {k: layer for k, _ in significance.groupby(keys)}
    else:
        best = per_neuroid[per_neuroid["selection"] == "max"].drop_duplicates(keys)
        if best.empty:
            raise InputError("no 'max' rows to choose the layer from; pass layer=...")
        chosen = {(row.subject, row.region): row.layer for row in best.itertuples()}
    parts = []
    for (subject, region), name in chosen.items():
        pick = (
            (significance["subject"] == subject)
            & (significance["region"] == region)
            & (significance["layer"] == name)
        )
        sig = significance[pick][["neuroid_id", "value"]].rename(columns={"value": "p_fdr"})
        pick_r = (
            (layer_rows["subject"] == subject)
            & (layer_rows["region"] == region)
            & (layer_rows["layer"] == name)
        )
        r = layer_rows[pick_r][["neuroid_id", "value"]].rename(columns={"value": "r"})
        if sig.empty:
            raise InputError(f"no stored significance for layer {name!r} in {subject}/{region}.")
        part = sig.merge(r, on="neuroid_id", how="left")
        part.insert(0, "subject", subject)
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    p_fdr = table["p_fdr"].to_numpy(dtype=np.float64)
    return VoxelSignificance(
        neuroid_ids=(
            table["subject"].astype(str) + "/" + table["neuroid_id"].astype(str)
        ).to_numpy(),
        r=table["r"].to_numpy(dtype=np.float64),
        p_fdr=p_fdr,
        significant=np.nan_to_num(p_fdr, nan=1.0) <= q,
        q=q,
        layers={k: str(v) for k, v in chosen.items()},
    )


def encoding_significance(
    db: Any,
    model: str,
    dataset: str,
    *,
    layer: str | None = None,
    metric: str = "encoding:taskonomy",
    q: float = 0.05,
) -> VoxelSignificance:
    """:func:`voxel_significance` of ``model`` on ``dataset`` from the store ``db`` (a path,
    URL or Store). Reads stored rows only; score first with ``brainrank run --metric
    encoding:taskonomy`` (the held-out protocol of Neural Taskonomy)."""
    from brainrank.leaderboard.query import per_neuroid

    rows = per_neuroid(db=db, model=model, dataset=dataset, metric=metric)
    if rows.empty:
        raise InputError(
            f"no per-neuroid {metric!r} values of {model!r} on {dataset!r} are stored; run "
            f"'brainrank run --model {model} --dataset {dataset} --metric {metric}' first."
        )
    return voxel_significance(rows, layer=layer, q=q)


def significant_maps(
    per_neuroid: pd.DataFrame, key: str = "model", q: float = 0.05
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(maps, significant)`` for :func:`task_similarity`: per model (``key``), the held-out
    r of the best layer of every voxel and whether that voxel is FDR-significant, aligned on
    the voxels every model has. Rows as for :func:`voxel_significance`, several models."""
    results = {}
    for name, rows in per_neuroid.groupby(key):
        try:
            results[str(name)] = voxel_significance(rows, q=q)
        except InputError:
            continue
    if not results:
        return {}, {}
    common = set.intersection(*(set(r.neuroid_ids) for r in results.values()))
    ids = sorted(common)
    maps, significant = {}, {}
    for name, result in results.items():
        position = {v: i for i, v in enumerate(result.neuroid_ids)}
        index = np.array([position[v] for v in ids], dtype=np.int64)
        maps[name] = result.r[index] if index.size else np.empty(0)
        significant[name] = result.significant[index] if index.size else np.empty(0, bool)
    return maps, significant


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
