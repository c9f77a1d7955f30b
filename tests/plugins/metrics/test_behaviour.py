"""Behavioural trials and ``error-consistency`` on simulated observers whose answer is
known: observers who classify stimuli from a known feature space, models with that space or
with noise, and observers who choose at random."""

from __future__ import annotations

import math

import numpy as np
import pytest

import brainrank
import brainrank.testing as bt
from brainrank.core.dataset import Dataset
from brainrank.core.errors import InputError, NotApplicableError
from brainrank.core.responses import make_trials
from brainrank.core.scores import FeatureSet, LayerFeatures
from brainrank.core.specs import DatasetMetadata
from brainrank.core.stats import error_consistency
from brainrank.core.stimuli import StimulusSet

N, CLASSES, DIMS, SUBJECTS = 240, 4, 20, 6


def world(seed: int = 0):
    """240 stimuli of 4 classes in a 20-dimensional feature space (class centroids plus
    within-class spread, so some stimuli lie near another class)."""
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((CLASSES, DIMS))
    y = np.repeat(np.arange(CLASSES), N // CLASSES)
    F = centroids[y] + 2.5 * rng.standard_normal((N, DIMS))
    return F, centroids, np.array([f"class{c}" for c in y]), rng


def observers(F, centroids, labels, rng, random_choices: bool = False, percept_noise: float = 0.8):
    """Each subject sees every stimulus once and picks the class whose centroid is nearest to
    a noisy percept of its features (or, with ``random_choices``, any class at random)."""
    ids = [f"img{i:03d}" for i in range(N)]
    stimulus, subject, choice, truth = [], [], [], []
    for s in range(SUBJECTS):
        if random_choices:
            picked = rng.integers(0, CLASSES, N)
        else:
            percept = F + percept_noise * rng.standard_normal(F.shape)
            picked = np.argmin(((percept[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
        stimulus += ids
        subject += [f"p{s}"] * N
        choice += [f"class{c}" for c in picked]
        truth += list(labels)
    trials = make_trials(stimulus_id=stimulus, subject=subject, choice=choice, truth=truth,
                         condition="categorisation")  # fmt: skip
    images = {i: np.zeros((4, 4, 3), np.uint8) for i in ids}
    meta = DatasetMetadata("human", "behaviour (simulated)", kind="trials")
    return Dataset("test/behaviour", StimulusSet("t", ids, images.__getitem__), meta, trials=trials)


def features(metric, dataset, spaces):
    k = next(iter(metric.feature_request(dataset).projection_dims))
    layers = [
        LayerFeatures(
            name, i, float(i), x.shape[1], (x.shape[1],), projections={k: x.astype(np.float32)}
        )
        for i, (name, x) in enumerate(spaces.items())
    ]
    return FeatureSet("test/model", dataset.stimuli.stimulus_ids, layers)


def by_layer(rows, layer):
    out = [r for r in rows if r.selection == "layer" and r.layer == layer]
    assert len(out) == SUBJECTS
    return out


def null_sd(rows) -> float:
    """The standard error the module docstring states for one subject,
    sqrt(p (1 - p) / n) / (1 - c_exp), averaged over subjects, over sqrt(subjects)."""
    sds = []
    for r in rows:
        p, m = r.extra["subject_accuracy"], r.extra["model_accuracy"]
        expected = p * m + (1 - p) * (1 - m)
        sds.append(math.sqrt(p * (1 - p) / r.extra["n_stimuli"]) / (1 - expected))
    return float(np.mean(sds)) / math.sqrt(len(rows))


def test_the_generating_feature_space_reaches_the_ceiling_and_noise_scores_zero():
    F, centroids, labels, rng = world()
    dataset = observers(F, centroids, labels, rng)
    metric = brainrank.load_metric("error-consistency")
    assert metric.calibrated
    spaces = {"truth": F, "noise": rng.standard_normal((N, 50))}
    rows = metric.score(features(metric, dataset, spaces), dataset)
    truth, noise = by_layer(rows, "truth"), by_layer(rows, "noise")
    accuracy = np.mean([r.extra["subject_accuracy"] for r in truth])
    assert 0.6 < accuracy < 0.9  # errors to be consistent about (0.74)
    ceiling = np.mean([r.ceiling for r in truth])
    assert ceiling > 0.4  # the subjects err on the same stimuli (0.60)
    # the model with the observers' feature space errs where they err, nearly as
    # consistently as they do with each other (0.56: its read-out learns the class
    # boundaries from 216 labelled stimuli, where the observers use the true centroids)
    assert np.mean([r.value for r in truth]) >= 0.85 * ceiling
    assert {r.region for r in truth} == {"categorisation"}
    value = np.mean([r.value for r in noise])
    assert abs(value) <= 4 * null_sd(noise), (value, null_sd(noise))
    assert {r.selection for r in rows} == {"layer", "heldout"}


def test_random_choices_score_zero_with_any_model():
    """Pure-noise behaviour: choices independent of the stimuli. kappa = 0 within 4 standard
    errors (pooled over the 6 subjects) for the true feature space and for noise."""
    F, centroids, labels, rng = world(1)
    dataset = observers(F, centroids, labels, rng, random_choices=True)
    metric = brainrank.load_metric("error-consistency")
    rows = metric.score(
        features(metric, dataset, {"truth": F, "noise": rng.standard_normal((N, 50))}), dataset
    )
    for layer in ("truth", "noise"):
        members = by_layer(rows, layer)
        value = np.mean([r.value for r in members])
        assert abs(value) <= 4 * null_sd(members), (layer, value)
    assert abs(np.mean([r.ceiling for r in by_layer(rows, "truth")])) < 0.05


def test_error_consistency_is_cohens_kappa():
    a = np.array([1, 1, 0, 0, 1, 0, 1, 1], float)
    b = np.array([1, 0, 0, 1, 1, 0, 1, 1], float)
    observed = np.mean(a == b)
    expected = a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean())
    assert error_consistency(a, b) == pytest.approx((observed - expected) / (1 - expected))
    assert error_consistency(a, a) == pytest.approx(1.0)
    assert np.isnan(error_consistency(np.ones(5), np.ones(5)))


def test_trials_are_checked_and_refused_where_they_cannot_be_scored():
    with pytest.raises(InputError, match="more than one correct label"):
        make_trials(stimulus_id=["a", "a"], subject="s", choice=["x", "y"], truth=["x", "y"])
    with pytest.raises(InputError, match="entries"):
        make_trials(stimulus_id=["a", "b"], subject="s", choice=["x"], truth=["x", "y"])
    F, centroids, labels, rng = world(2)
    dataset = observers(F, centroids, labels, rng)
    bt.check_dataset(dataset)  # a trials-only dataset passes the plugin checks
    for name in ("pls", "srp-ridge", "rsa", "cka"):  # metrics that need responses or RDMs
        with pytest.raises(NotApplicableError):
            brainrank.load_metric(name).check_applicable(dataset)
    one_label = observers(F, centroids, np.array(["class0"] * N), rng)
    with pytest.raises(NotApplicableError, match="at least 2 labels"):
        brainrank.load_metric("error-consistency").check_applicable(one_label)
    with pytest.raises(NotApplicableError, match="behavioural trials"):
        brainrank.load_metric("error-consistency").check_applicable(bt.example_dataset())
