"""Chance levels of metric configurations that are not calibrated.

A configuration whose expected score on data without signal is not 0 (the NSD paper's
leave-one-out ridge at a fixed penalty scores pure noise below 0; a leave-one-out veRSA
leaks the held-out response and scores it above 0) is stored with its *chance level*: the
same protocol on the same features, run again with the dataset's stimulus correspondence
broken (every presentation of stimulus ``s`` relabelled ``pi(s)`` for a seeded random
permutation ``pi``; the responses, their repetitions, reliabilities and ceilings are
unchanged). The mean and the standard deviation over :data:`N_PERMUTATIONS` permutations
go beside each score (``Score.chance``, ``Score.chance_sd``), so a reader sees how far a
score is from what the protocol gives without any signal.

Cost: the metric is run ``1 + N_PERMUTATIONS`` times on the same features, in one call of
:meth:`Metric.score_with_permutations`, where a metric can share work across the runs (the
leave-one-out ridge of ``srp-ridge`` factorises each layer once for all of them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from brainrank.core.dataset import Dataset
from brainrank.core.responses import RDMSet
from brainrank.core.scores import Score, best_layer_scores

#: permutations behind a chance level (seeds 0 .. N - 1)
N_PERMUTATIONS = 5


def stimulus_permutation(stimulus_ids: Sequence[str], seed: int) -> dict[str, str]:
    """A seeded random relabelling of ``stimulus_ids`` (sorted first, so the same ids give
    the same permutation whatever their order)."""
    ids = sorted({str(s) for s in stimulus_ids})
    order = np.random.default_rng(seed).permutation(len(ids))
    return {ids[i]: ids[j] for i, j in enumerate(order)}


class PermutedDataset(Dataset):
    """``base`` with its stimulus correspondence broken by ``mapping`` (old id -> new id):
    the responses (or RDMs) of stimulus ``s`` are labelled ``mapping[s]``. Ceilings,
    reliabilities and the train/test split are the base's (a relabelling changes none of
    them)."""

    def __init__(self, base: Dataset, mapping: dict[str, str]):
        self.base = base
        responses = base.responses()
        if responses is not None:
            ids = np.asarray(responses["stimulus_id"].values).astype(str)
            relabelled = np.array([mapping.get(s, s) for s in ids], dtype=object)
            responses = responses.assign_coords(stimulus_id=("presentation", relabelled))
        rdms = base.rdms()
        if rdms is not None:
            rdms = RDMSet(
                rdms.dissimilarities,
                tuple(mapping.get(s, s) for s in rdms.stimulus_ids),
                [dict(d) for d in rdms.descriptors],
            )
        super().__init__(base.identifier, base.stimuli, base.metadata, responses, rdms)

    def neuroid_reliability(self) -> np.ndarray | None:
        return self.base.neuroid_reliability()

    @property
    def ceiling_kinds(self) -> list[str]:
        return self.base.ceiling_kinds

    def ceiling(self, kind: str) -> dict[tuple[str, str], float]:
        return self.base.ceiling(kind)

    def ceiling_interval(self, kind: str, ci: float = 0.95) -> dict[tuple[str, str], Any]:
        return self.base.ceiling_interval(kind, ci)

    def train_test_split(self) -> tuple[list[str], list[str]] | None:
        return self.base.train_test_split()

    def __getattr__(self, name: str) -> Any:  # dataset-specific extras (info, ...)
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)


def _key(row: Score) -> tuple:
    """Per-layer rows match by layer; summary rows by their policy (the layer a policy
    picks differs between permutations)."""
    if row.selection == "layer":
        return (row.subject, row.region, row.selection, row.layer)
    return (row.subject, row.region, row.selection)


def permuted_datasets(dataset: Dataset, n_permutations: int = N_PERMUTATIONS) -> list[Dataset]:
    """The ``n_permutations`` seeded relabellings of ``dataset`` behind its chance levels
    (seeds 0 .. n - 1)."""
    responses = dataset.responses()
    if responses is not None:
        ids = np.asarray(responses["stimulus_id"].values).astype(str)
    else:
        ids = np.asarray(dataset.rdms().stimulus_ids)
    return [
        PermutedDataset(dataset, stimulus_permutation(ids, seed)) for seed in range(n_permutations)
    ]


def attach_chance_levels(
    rows: list[Score],
    score: Callable[[Dataset], list[Score]] | None,
    dataset: Dataset,
    n_permutations: int = N_PERMUTATIONS,
    score_many: Callable[[list[Dataset]], list[list[Score]]] | None = None,
) -> list[Score]:
    """``rows`` with ``chance`` and ``chance_sd`` set: ``score(permuted dataset)`` for
    ``n_permutations`` seeded relabellings of the dataset's stimuli, grouped per row (per
    layer for per-layer rows, per policy for summary rows; ``max`` rows are added to a
    permuted result that lacks them, as for the real one). A row whose key no permuted run
    produced (or only non-finite values) keeps ``None``.

    ``score_many`` (instead of ``score``) scores all the relabelled datasets in one call
    (:meth:`Metric.score_with_permutations`), so that a metric can share work across them.
    """
    if score_many is None:
        if score is None:
            raise TypeError("attach_chance_levels needs score or score_many")
        score_many = lambda datasets: [score(d) for d in datasets]  # noqa: E731
    permuted = permuted_datasets(dataset, n_permutations)
    results = score_many(permuted)
    if len(results) != len(permuted):
        raise ValueError(
            f"scoring {len(permuted)} relabelled datasets gave {len(results)} results; "
            "score_with_permutations must return one list of scores per dataset."
        )
    return with_chance_levels(rows, results)


def with_chance_levels(rows: list[Score], results: Sequence[Sequence[Score]]) -> list[Score]:
    """``rows`` with ``chance`` and ``chance_sd`` from ``results``, the scores of the
    relabelled datasets (see :func:`attach_chance_levels`)."""
    values: dict[tuple, list[float]] = {}
    for result in results:
        result = list(result)
        if not any(r.selection == "max" for r in result):
            result += best_layer_scores(result, "max")
        for row in result:
            value = float(row.value)
            if np.isfinite(value):
                values.setdefault(_key(row), []).append(value)
    out = []
    for row in rows:
        found = values.get(_key(row), [])
        if not found:
            out.append(row)
            continue
        spread = float(np.std(found, ddof=1)) if len(found) > 1 else None
        out.append(dataclasses.replace(row, chance=float(np.mean(found)), chance_sd=spread))
    return out
