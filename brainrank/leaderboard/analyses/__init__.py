"""The seed papers' analyses, computed from stored scores.

Every function takes the score table (``brainrank.leaderboard.scores()``: one row per model
x dataset x metric x subject x region x layer x selection, with the model's ``family`` and
``trained``) or arrays, and returns plain DataFrames / dataclasses that the report plots.

With fewer than 5 units (pairs, models per family, model x area combinations) no p-value,
CI or effect size is given: the result carries a ``reason`` / ``note`` instead.

- :func:`overall_ranking` (Conwell et al. 2021): the ranking of
  :mod:`brainrank.leaderboard.ranking` (shared with the CLI, report and web page) on
  SRP-Ridge and RSA: mean over (dataset, configuration) columns of region means, on the
  cells every model has, simulated data apart, with a 95% bootstrap CI across regions
  (from 5 regions).
- :func:`trained_vs_random`: paired t-test, Cohen's d and Hedges' g across architectures,
  and the architectures whose random variant matches or beats the trained one.
- :func:`metric_agreement`: Spearman rank agreement of two metrics over models (with and
  without random models) and the mouse paper's layer-wise rho averaged over model x area,
  with bootstrap CIs.
- :func:`best_layer_depth`: relative depth of the best layer per region and family.
- :func:`family_comparison`: Kruskal-Wallis across architecture families with epsilon^2,
  and per region with Holm-corrected p-values.
- :func:`generalisation`: layers chosen on one dataset, scored on another (NSD's shared
  images vs each subject's own images).
- The controlled contrasts of the NSD paper (:mod:`~brainrank.leaderboard.analyses.contrasts`):
  :func:`task_contrast`, :func:`task_cluster_contrast`, :func:`data_contrast`,
  :func:`supervision_contrast` (self-supervised vs supervised), :func:`architecture_contrast`,
  each within matched sets of models that agree on the other factors, and the general
  :func:`controlled_contrast`; :func:`seed_contrasts` runs them all (paired t-tests, Hedges'
  g, bootstrap CIs, Holm or Bonferroni).
- Neural Taskonomy (Wang, Tarr & Wehbe 2019): :func:`voxel_significance` /
  :func:`encoding_significance` (read the held-out r and FDR-adjusted permutation p-values
  that the ``encoding:taskonomy`` metric stores; nothing is fitted here),
  :func:`significant_maps`, :func:`task_similarity` (cosine similarity of maps whose
  non-significant voxels count as 0), :func:`cluster_tasks` (average / ward linkage),
  :func:`compare_with_clusters` (agreement with the Taskonomy task clusters),
  :func:`contrast_map` (e.g. 3D vs 2D).

Added for issue 23 (each with its report section in
:mod:`brainrank.leaderboard.report_analyses`):

- the mouse paper (:mod:`~brainrank.leaderboard.analyses.mouse`): :func:`score_vs_property`
  and :func:`property_correlations` (Spearman with bootstrap CIs against parameters, ImageNet
  top-1, number of layers, best-layer depth), :func:`reliability_sweep`,
  :func:`cre_line_breakdown` and :func:`option_sweep` (datasets built with different options,
  each a dataset entry of its own), :func:`family_contrast` (Welch's or Student's t, Hedges'
  g) and :func:`trained_vs_random_by_architecture` (paired t tests, Bonferroni);
- the NSD paper (:mod:`~brainrank.leaderboard.analyses.nsd`): :func:`generalisation_summary`,
  :func:`paired_difference` (two metrics, two models or two lists of models),
  :func:`layer_dimensionality` and :func:`dimensionality_vs_score` (the
  ``effective-dimensionality`` metric's rows), :func:`subject_references` (human reference
  points scored by the models' own metric; it needs a loaded dataset and metric, the one
  function here that does not read the store alone).

One module per paper: :mod:`~brainrank.leaderboard.analyses.mouse`,
:mod:`~brainrank.leaderboard.analyses.nsd` and :mod:`~brainrank.leaderboard.analyses.taskonomy`,
on the tables of :mod:`~brainrank.leaderboard.analyses.tables`; every function is also here
(``analyses.trained_vs_random(...)``).
"""

from __future__ import annotations

from brainrank.leaderboard.analyses.contrasts import (
    CONTRASTS,
    Comparison,
    ContrastResult,
    architecture_contrast,
    controlled_contrast,
    data_contrast,
    seed_contrasts,
    supervision_contrast,
    task_cluster_contrast,
    task_contrast,
)
from brainrank.leaderboard.analyses.mouse import (
    PROPERTIES,
    GroupContrast,
    OptionSweep,
    PropertyCorrelation,
    TrainedVsRandom,
    cre_line_breakdown,
    family_contrast,
    metric_agreement,
    model_property,
    option_datasets,
    option_sweep,
    overall_ranking,
    property_correlations,
    reliability_sweep,
    scipy_spearman,
    score_vs_property,
    trained_vs_random,
    trained_vs_random_by_architecture,
)
from brainrank.leaderboard.analyses.nsd import (
    DIMENSIONALITY,
    FamilyComparison,
    PairedDifference,
    best_layer_depth,
    dimensionality_vs_score,
    family_comparison,
    generalisation,
    generalisation_summary,
    layer_dimensionality,
    paired_difference,
    subject_references,
)
from brainrank.leaderboard.analyses.tables import SEED_METRICS, region_scores
from brainrank.leaderboard.analyses.taskonomy import (
    TaskTree,
    VoxelSignificance,
    cluster_tasks,
    compare_with_clusters,
    contrast_map,
    encoding_significance,
    maps_from_per_neuroid,
    significant_maps,
    task_similarity,
    voxel_significance,
)

__all__ = [
    "CONTRASTS",
    "DIMENSIONALITY",
    "PROPERTIES",
    "SEED_METRICS",
    "Comparison",
    "ContrastResult",
    "FamilyComparison",
    "GroupContrast",
    "OptionSweep",
    "PairedDifference",
    "PropertyCorrelation",
    "TaskTree",
    "TrainedVsRandom",
    "VoxelSignificance",
    "architecture_contrast",
    "best_layer_depth",
    "cluster_tasks",
    "compare_with_clusters",
    "contrast_map",
    "controlled_contrast",
    "cre_line_breakdown",
    "data_contrast",
    "dimensionality_vs_score",
    "encoding_significance",
    "family_comparison",
    "family_contrast",
    "generalisation",
    "generalisation_summary",
    "layer_dimensionality",
    "maps_from_per_neuroid",
    "metric_agreement",
    "model_property",
    "option_datasets",
    "option_sweep",
    "overall_ranking",
    "paired_difference",
    "property_correlations",
    "region_scores",
    "reliability_sweep",
    "scipy_spearman",
    "score_vs_property",
    "seed_contrasts",
    "significant_maps",
    "subject_references",
    "supervision_contrast",
    "task_cluster_contrast",
    "task_contrast",
    "task_similarity",
    "trained_vs_random",
    "trained_vs_random_by_architecture",
    "voxel_significance",
]
