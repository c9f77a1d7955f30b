"""``variance-partitioning``: how much of each neuroid's variance is unique to one feature
space and how much several spaces share, for spaces of several models.

``spaces`` names 2 to 6 feature spaces (``MODEL:LAYER``, ``MODEL:PATTERN`` for every matching
layer, or ``MODEL`` for the model's best layer; see :mod:`brainrank.core.spaces`); on the
command line ``--spaces 'torchvision/alexnet,torchvision/alexnet@places365'``. The
combination is scored as one leaderboard model, ``stack/<hash>``.

Per (subject, region), a ridge model is fitted on the training stimuli for every non-empty
subset of the spaces (their z-scored features concatenated, each space scaled to the same
total variance; one penalty per neuroid chosen by leave-one-out error on the training
stimuli) and predicts the test stimuli (the dataset's own split, else a seeded half
split). Explained variance is the signed squared correlation between a model's test
predictions and the measured test responses, ``sign(r) r^2`` (0 on data without signal, for
any features; invariant to the ridge's shrinkage); inclusion-exclusion over the subsets
splits it into the regions of the spaces' Venn diagram (:mod:`brainrank.core.varpart`, where
the definition and the choice of unit are justified).

Rows (``value``: the mean over the region's neuroids; ``per_neuroid``: every neuroid's):

- ``selection="joint"`` (``layer="joint"``): the joint model of all spaces, the variance the
  spaces explain together; the headline row. ``extra``: ``unique`` and ``shared`` totals,
  the test ``r2`` (1 - SSE / SST, for reference), the layer each space used;
- ``selection="alone"`` (``layer``: the space's label): each space on its own;
- ``selection="unique"`` (``layer``: the space's label): the variance only that space
  explains, ``E(all) - E(all but it)``;
- ``selection="shared"`` (``layer``: ``a & b`` ...): the variance shared by exactly those
  spaces and no other (for two spaces, ``E(a) + E(b) - E(a, b)``).

Calibrated (tests/core/test_varpart.py): on pure noise every row is 0 within sampling
error; on simulated data with a planted unique and shared component per space the atoms
recover the planted variances within 0.025 (600 training stimuli; slightly low, by 0.005 to
0.02, from the estimation error of the fits). No ceiling is attached: the rows are in units
of r^2, not of r.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brainrank.core.ridge import RidgeCV
from brainrank.core.spaces import canonical_texts
from brainrank.core.varpart import MAX_SPACES, atom_label, partition_variance, subsets
from brainrank.plugin import (
    Dataset,
    FeatureRequest,
    FeatureSet,
    InputError,
    Metric,
    MetricMetadata,
    MetricSpec,
    NotApplicableError,
    Score,
    hookimpl,
)
from brainrank.plugins.metrics import _encoding as enc
from brainrank.plugins.metrics import _spaces

DESCRIPTION = (
    "unique and shared held-out variance (signed r^2) of 2-6 feature spaces of several models"
)
MIN_TRAIN, MIN_TEST = 4, 3


class VariancePartitioning(enc.OnDevice, Metric):
    identifier = "variance-partitioning"
    version = "1"
    needs = "responses"
    headline = "joint"  # the spaces together: what they explain on the test stimuli
    calibrated = True  # sign(r) r^2 of held-out predictions: 0 without signal, any features
    takes_spaces = True

    def __init__(
        self,
        spaces: Any = None,
        n_components: int | str = "jl",
        eps: float = 0.1,
        alphas: Any = None,
    ):
        texts = canonical_texts(spaces)
        if len(texts) == 1:
            raise InputError(
                "variance partitioning compares at least 2 feature spaces; got "
                f"{texts[0]!r} alone. Give two or more (MODEL[:LAYER], comma-separated)."
            )
        if len(texts) > MAX_SPACES:
            raise InputError(
                f"variance partitioning takes at most {MAX_SPACES} feature spaces "
                f"({2**MAX_SPACES - 1} joint models); got {len(texts)}."
            )
        alphas = enc.check_encoding_parameters(n_components, alphas, "mse")
        super().__init__(n_components=n_components, eps=float(eps), alphas=alphas)
        self._spaces = texts  # the scored model's identity (stack/<hash>), not a parameter

    def check_applicable(self, dataset: Dataset) -> None:
        super().check_applicable(dataset)
        if not self.spaces:
            raise NotApplicableError(
                "metric 'variance-partitioning' partitions variance between feature spaces of "
                "several models: give 2 to 6 with --spaces MODEL[:LAYER],... (or the "
                "parameter spaces)."
            )
        train, test = enc.train_test_split(dataset, enc.Targets.of(dataset).stimulus_ids)
        if train.size < MIN_TRAIN or test.size < MIN_TEST:
            raise NotApplicableError(
                f"metric {self.identifier!r} needs at least {MIN_TRAIN} training and "
                f"{MIN_TEST} test stimuli; dataset {dataset.identifier!r} has {train.size} and "
                f"{test.size}."
            )

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        self.check_applicable(dataset)
        train, _ = enc.train_test_split(dataset, enc.Targets.of(dataset).stimulus_ids)
        return FeatureRequest(
            projection_dims=frozenset({enc.dimension(self.parameters, int(train.size))})
        )

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        raise NotApplicableError(
            "metric 'variance-partitioning' scores feature spaces of several models together "
            "(score_spaces), not one model's features; give --spaces."
        )

    def count_fits(self, scores) -> int:
        """``n_alphas`` x neuroids x the 2^m - 1 joint models of m spaces (the best-layer
        choices' fits are not counted)."""
        m = len({s.layer for s in scores if s.selection == "alone"})
        n = sum(int(s.per_neuroid.size) for s in scores
                if s.selection == "joint" and s.per_neuroid is not None)  # fmt: skip
        return len(self.parameters["alphas"]) * n * (2**m - 1) if m else 0

    def score_spaces(self, spaces, dataset: Dataset) -> list[Score]:
        spaces = list(spaces)
        if not 2 <= len(spaces) <= MAX_SPACES:
            raise InputError(
                f"variance partitioning takes 2 to {MAX_SPACES} feature spaces; the spaces "
                f"{', '.join(self.spaces)} give {len(spaces)} "
                f"({', '.join(s.label for s in spaces)}). Name fewer layers."
            )
        targets = enc.Targets.of(dataset)
        train, test = enc.train_test_split(dataset, targets.stimulus_ids)
        k = enc.dimension(self.parameters, int(train.size))
        Y = targets.values
        alphas = self.parameters["alphas"]

        def ridge() -> RidgeCV:
            return RidgeCV(alphas, **self.ridge_options())

        rows_of = {s.label: s.features.rows_for(targets.stimulus_ids) for s in spaces}
        plan = _spaces.plan_layers_per_space(spaces, k, rows_of, train, Y, targets.groups, ridge)
        m = len(spaces)
        labels = [s.label for s in spaces]
        atoms_out = {u: np.full(Y.shape[1], np.nan) for u in subsets(m)}
        explained_out = {u: np.full(Y.shape[1], np.nan) for u in subsets(m)}
        joint_r2 = np.full(Y.shape[1], np.nan)
        for layers, index in plan.combinations(targets.groups):
            designs = [
                _spaces.design(s, name, k, rows_of[s.label])
                for s, name in zip(spaces, layers, strict=True)
            ]
            result = partition_variance(
                designs, Y[:, index], train, test, alphas=alphas,
                ridge_options=self.ridge_options(), backend=self.array_backend(),
            )  # fmt: skip
            for u in subsets(m):
                atoms_out[u][index] = result.atoms[u]
                explained_out[u][index] = result.explained[u]
            joint_r2[index] = result.r2[tuple(range(m))]
        full = tuple(range(m))
        unique_total = sum(atoms_out[(i,)] for i in range(m))
        rows: list[Score] = []
        for key, index in targets.groups:
            extra = _spaces.space_extra(plan, key, spaces)

            def row(selection: str, layer: str, values: np.ndarray, more=None,
                    position=(None, None), key=key, index=index, extra=extra) -> Score:  # fmt: skip
                value, n = enc.group_mean(values, index)
                return Score(
                    subject=key[0], region=key[1], layer=layer, value=value, n_neuroids=n,
                    selection=selection, layer_index=position[0], relative_depth=position[1],
                    per_neuroid=values[index].astype(np.float32),
                    neuroid_ids=tuple(targets.neuroid_ids[index]),
                    extra={**extra, **(more or {})},
                )  # fmt: skip

            joint = explained_out[full]
            rows.append(
                row(
                    "joint",
                    "joint",
                    joint,
                    {
                        "unique": enc.group_mean(unique_total, index)[0],
                        "shared": enc.group_mean(joint - unique_total, index)[0],
                        "r2": _finite(enc.group_mean(joint_r2, index)[0]),
                        "unit": "signed squared test correlation, sign(r) r^2",
                        "spaces": labels,
                        "n_train": int(train.size),
                        "n_test": int(test.size),
                    },
                )
            )
            for i, space in enumerate(spaces):
                layer = plan.layers[key][i]
                where = {"space": space.label, "model": space.model, "layer": layer}
                rows.append(row("alone", space.label, explained_out[(i,)], where, (i, None)))
                rows.append(row("unique", space.label, atoms_out[(i,)], where, (i, None)))
            for u in subsets(m):
                if len(u) > 1:
                    rows.append(
                        row(
                            "shared",
                            atom_label(u, labels),
                            atoms_out[u],
                            {"spaces": [labels[i] for i in u]},
                        )
                    )
        return rows


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


@hookimpl
def brainrank_metrics() -> list[MetricSpec]:
    return [
        MetricSpec(
            "variance-partitioning",
            VariancePartitioning,
            MetricMetadata(
                DESCRIPTION,
                needs="responses",
                citation="Lescroart, Stansbury & Gallant 2015; de Heer et al. 2017",
            ),
        )
    ]
