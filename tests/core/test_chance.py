"""Chance levels of configurations that are not calibrated (issue 20, decision 1): the same
protocol on the same features with the dataset's stimulus correspondence broken."""

from __future__ import annotations

import numpy as np
import pytest

import brainrank
import brainrank.testing as bt
from brainrank.core.chance import PermutedDataset, attach_chance_levels, stimulus_permutation
from brainrank.core.features import score_features
from brainrank.core.metric import Metric
from brainrank.core.responses import RDMSet, average_repetitions, neuroid_groups
from brainrank.core.scores import FeatureRequest, Score


class Alignment(Metric):
    """Per group: Pearson r between each layer's first feature and the dataset's first
    neuroid (trial-averaged), aligned by stimulus id: 1 for a layer equal to the responses,
    ~0 once the correspondence is broken."""

    identifier = "test/alignment"
    headline = "heldout"

    def feature_request(self, dataset):
        return FeatureRequest(frozenset({8}))

    def score(self, features, dataset):
        mean = average_repetitions(dataset.responses())
        ids = np.asarray(mean["stimulus_id"].values).astype(str)
        rows = features.rows_for(ids)
        out = []
        for layer in features:
            x = layer.projections[8][rows, 0]
            for (subject, region), _ in neuroid_groups(mean):
                y = np.asarray(mean.values)[:, 0]
                r = float(np.corrcoef(x, y)[0, 1])
                out.append(Score(subject, region, layer.name, r, n_neuroids=1))
                out.append(Score(subject, region, layer.name, r, selection="heldout"))
        return out


class UncalibratedAlignment(Alignment):
    identifier = "test/alignment-uncalibrated"
    calibrated = False


def _aligned(dataset, features):
    """Features whose first column of every layer is the first neuroid of each group."""
    mean = average_repetitions(dataset.responses())
    ids = np.asarray(mean["stimulus_id"].values).astype(str)
    order = features.rows_for(ids)
    target = np.asarray(mean.values)[:, 0]
    for layer in features:
        column = np.empty(len(ids))
        column[order] = target
        layer.projections[8] = np.array(layer.projections[8], copy=True)
        layer.projections[8][:, 0] = column
    return features


@pytest.fixture
def dataset():
    return bt.example_dataset(n_stimuli=60, n_neuroids=1, n_repetitions=3)


def test_a_permuted_dataset_relabels_stimuli_and_keeps_the_rest(dataset):
    mapping = stimulus_permutation(dataset.stimuli.stimulus_ids, seed=3)
    assert sorted(mapping) == sorted(mapping.values()) and len(mapping) == 60
    assert sum(a != b for a, b in mapping.items()) > 50  # a real permutation
    assert stimulus_permutation(list(reversed(dataset.stimuli.stimulus_ids)), 3) == mapping
    permuted = PermutedDataset(dataset, mapping)
    before, after = dataset.responses(), permuted.responses()
    assert np.array_equal(np.asarray(before.values), np.asarray(after.values))
    relabelled = [mapping[s] for s in np.asarray(before["stimulus_id"].values).astype(str)]
    assert list(np.asarray(after["stimulus_id"].values).astype(str)) == relabelled
    assert list(after["repetition"].values) == list(before["repetition"].values)
    assert permuted.ceiling("encoding") == dataset.ceiling("encoding")
    assert permuted.train_test_split() == dataset.train_test_split()
    stimuli = bt.example_stimuli(4)
    ids = stimuli.stimulus_ids
    matrix = np.arange(16, dtype=float).reshape(1, 4, 4)
    rdms = RDMSet(matrix, ids, [{"subject": "s", "region": "r"}])
    rdm_only = brainrank.Dataset("test/rdm", stimuli, dataset.metadata, rdms=rdms)
    shuffled = PermutedDataset(rdm_only, stimulus_permutation(ids, 1)).rdms()
    assert np.array_equal(shuffled.dissimilarities, rdms.dissimilarities)
    assert shuffled.stimulus_ids == tuple(stimulus_permutation(ids, 1)[s] for s in ids)


def test_chance_levels_are_the_score_with_the_correspondence_broken(dataset):
    features = _aligned(dataset, bt.example_features(dataset, FeatureRequest(frozenset({8}))))
    metric = Alignment()
    rows = list(metric.score(features, dataset))
    assert rows and all(r.value == pytest.approx(1.0) for r in rows)
    with_chance = attach_chance_levels(rows, lambda d: metric.score(features, d), dataset, 20)
    assert len(with_chance) == len(rows)
    chances = np.array([r.chance for r in with_chance], dtype=float)
    spreads = np.array([r.chance_sd for r in with_chance], dtype=float)
    assert np.isfinite(chances).all() and np.isfinite(spreads).all()
    # r of 60 unrelated stimuli: sd ~ 1/sqrt(59) = 0.13; the mean of 20 permutations ~0.03
    assert np.all(np.abs(chances) < 4 * 0.13 / np.sqrt(20))
    assert np.all((spreads > 0.05) & (spreads < 0.3))
    # a mutation that forgets to permute gives a chance level of 1: the check above fails
    identity = attach_chance_levels(rows, lambda d: metric.score(features, dataset), dataset, 3)
    assert all(r.chance == pytest.approx(1.0) for r in identity)


def test_only_uncalibrated_configurations_carry_a_chance_level(dataset):
    features = _aligned(dataset, bt.example_features(dataset, FeatureRequest(frozenset({8}))))
    calibrated = score_features(Alignment(), features, dataset)
    assert all(r.chance is None and r.chance_sd is None for r in calibrated)
    uncalibrated = score_features(UncalibratedAlignment(), features, dataset)
    assert {r.selection for r in uncalibrated} == {"layer", "heldout", "max"}
    assert all(r.chance is not None and abs(r.chance) < 0.3 for r in uncalibrated)


def test_the_nsd_presets_null_is_its_chance_level():
    """srp-ridge:nsd (the paper's LOO at alpha 1e5) scores pure noise below 0; its chance
    level, computed from the same protocol on permuted labels, shows that offset: on pure
    noise score and chance agree within their sampling error."""
    metric = brainrank.load_metric("srp-ridge:nsd")
    assert not metric.calibrated and metric.headline == "heldout"
    assert brainrank.load_metric("srp-ridge").calibrated
    noise = bt.example_dataset(n_stimuli=60, n_neuroids=30, n_repetitions=2, seed=5)
    values = np.random.default_rng(9).standard_normal(noise.responses().shape)
    noise.responses().values[:] = values.astype(np.float32)
    features = bt.example_features(noise, metric.feature_request(noise), n_layers=2)
    rows = score_features(metric, features, noise)
    layer_rows = [r for r in rows if r.selection == "layer"]
    assert layer_rows
    score = np.mean([r.value for r in layer_rows])
    chance = np.mean([r.chance for r in layer_rows])
    assert score < -0.02 and chance < -0.02  # the protocol's offset, seen by both
    assert abs(score - chance) < 0.05
