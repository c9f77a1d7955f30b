"""RSA as rsatoolbox users expect: the RDM distance as a parameter (correlation, Euclidean,
crossnobis) equal to rsatoolbox's ``calc_rdm``, recorded with every score; the noise-ceiling
bounds equal to rsatoolbox's ``boot_noise_ceiling`` on the same RDMs; calibration on pure
noise; and what is refused up front.

Noise calibration of the Euclidean and crossnobis RDMs: unlike correlation distances, whose
rows are normalised, a Euclidean RDM of noisy patterns carries each stimulus's noise energy
as a row effect (crossnobis removes its mean, not its spread), so a model RDM with row
structure correlates with pure noise by chance with a standard deviation of order
``1 / sqrt(n_stimuli)``, not ``1 / sqrt(n_pairs)``. The test draws pure-noise datasets and
requires the mean over draws to be 0 within 4 standard errors of that mean.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import brainrank.testing as bt
from brainrank.core.dataset import Dataset
from brainrank.core.errors import InputError, NotApplicableError
from brainrank.core.extraction import ExtractionConfig, extract_features, layer_activations
from brainrank.core.responses import RDMSet, average_repetitions, make_responses
from brainrank.core.rsa import crossnobis, squared_euclidean, upper_triangle
from brainrank.core.scores import FeatureRequest
from brainrank.core.specs import DatasetMetadata
from brainrank.core.stats import trials_array
from brainrank.plugins.metrics.rsa import RSA

METHODS = {"pearson": "corr", "spearman": "spearman", "kendall_tau_a": "tau-a"}


def rsatoolbox():
    return pytest.importorskip("rsatoolbox")


def trial_dataset(n=30, reps=3, per_group=8, seed=0, signal=1.0) -> Dataset:
    """Trial-level responses of 2 subjects x 2 regions sharing a stimulus structure."""
    stimuli = bt.example_stimuli(n, sizes=((8, 8),), seed=seed)
    rng = np.random.default_rng(seed)
    groups = [(s, r) for s in ("s1", "s2") for r in ("a", "b")]
    latent = rng.standard_normal((n, 5))
    patterns = np.hstack([latent @ rng.standard_normal((5, per_group)) for _ in groups])
    trials = np.concatenate(
        [signal * patterns + rng.standard_normal(patterns.shape) for _ in range(reps)]
    )
    responses = make_responses(
        trials.astype(np.float32),
        stimulus_id=list(stimuli.stimulus_ids) * reps,
        repetition=np.repeat(np.arange(reps), n),
        neuroid_id=[f"{s}-{r}-{i}" for s, r in groups for i in range(per_group)],
        subject=[s for s, _ in groups for _ in range(per_group)],
        region=[r for _, r in groups for _ in range(per_group)],
    )
    return Dataset("trials", stimuli,
                   DatasetMetadata(species="none", modality="synthetic", n_stimuli=n),
                   responses=responses)  # fmt: skip


def group_trials(dataset, subject, region):
    responses = dataset.responses()
    trials, ids = trials_array(responses)
    keep = (responses["subject"].values == subject) & (responses["region"].values == region)
    return trials[:, :, keep], ids


def test_brain_rdms_equal_rsatoolbox_calc_rdm():
    """Correlation and Euclidean RDMs of the trial-averaged patterns, crossnobis RDMs of the
    trials (folds: the repetitions; noise: identity, or the diagonal precision of the
    residuals passed to rsatoolbox explicitly), as rsatoolbox computes them."""
    rsa = rsatoolbox()
    dataset = trial_dataset()
    trials, ids = group_trials(dataset, "s1", "a")
    reps, n, p = trials.shape
    flat = trials.reshape(reps * n, p)
    data = rsa.data.Dataset(
        flat, obs_descriptors={"stimulus": np.tile(ids, reps), "repetition": np.repeat(range(reps), n)}
    )  # fmt: skip
    mean = rsa.data.Dataset(trials.mean(axis=0), obs_descriptors={"stimulus": ids})
    for distance, theirs in (("correlation", "correlation"), ("euclidean", "euclidean")):
        ours = RSA(distance=distance).brain_rdms(dataset)[2][0]
        expected = rsa.rdm.calc_rdm(mean, method=theirs, descriptor="stimulus")
        # the responses are float32: their average differs from float64's in the 7th digit
        np.testing.assert_allclose(upper_triangle(ours)[0], expected.get_vectors()[0], rtol=1e-6)
    residuals = trials - trials.mean(axis=0)
    variance = (residuals**2).sum(axis=(0, 1)) / (n * (reps - 1))
    for noise, precision in (("identity", np.eye(p)), ("diagonal", np.diag(1 / variance))):
        ours = RSA(distance="crossnobis", noise=noise).brain_rdms(dataset)[2][0]
        expected = rsa.rdm.calc_rdm(data, method="crossnobis", descriptor="stimulus",
                                    cv_descriptor="repetition", noise=precision)  # fmt: skip
        np.testing.assert_allclose(upper_triangle(ours)[0], expected.get_vectors()[0], atol=1e-10)
        assert expected.dissimilarity_measure == "crossnobis"


def test_model_rdms_of_other_distances_equal_rsatoolbox_on_the_full_activations(tiny_plugin_path):
    """The model's Euclidean RDM comes from the exact Gram matrix the extraction accumulates;
    it equals rsatoolbox's on the layer's full activations."""
    rsa = rsatoolbox()
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_for_rsa", tiny_plugin_path)
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    model = tiny.build_model()
    dataset = tiny.build_dataset()
    metric = RSA(distance="euclidean")
    features = extract_features(model, dataset.stimuli, metric.feature_request(dataset),
                                ExtractionConfig())  # fmt: skip
    images = [dataset.stimuli.image(s) for s in dataset.stimuli.stimulus_ids]
    for name in ("conv", "pool", "fc"):
        full = layer_activations(model, images, [name])[name]
        expected = rsa.rdm.calc_rdm(rsa.data.Dataset(full.astype(np.float64)), method="euclidean")
        ours = metric.model_rdm(features[name])
        np.testing.assert_allclose(upper_triangle(ours)[0], expected.get_vectors()[0],
                                   rtol=1e-5, atol=1e-8)  # fmt: skip
        np.testing.assert_allclose(ours, squared_euclidean(full), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("comparison", list(METHODS))
@pytest.mark.parametrize("distance", ["correlation", "euclidean"])
def test_noise_ceiling_bounds_equal_rsatoolbox_boot_noise_ceiling(comparison, distance):
    """Per region, the mean over subjects of the rows' lower and upper terms is rsatoolbox's
    boot_noise_ceiling of the subjects' RDMs (computed by rsatoolbox from the patterns)."""
    rsa = rsatoolbox()
    dataset = trial_dataset(n=20, per_group=6)
    metric = RSA(comparison=comparison, distance=distance)
    features = bt.example_features(dataset, metric.feature_request(dataset))
    rows = [r for r in metric.score(features, dataset) if r.selection == "layer"]
    averaged = average_repetitions(dataset.responses())
    for region in ("a", "b"):
        mine = [r for r in rows if r.region == region and r.layer == "layer0"]
        assert len(mine) == 2
        stack = []
        for subject in ("s1", "s2"):
            keep = (averaged["subject"].values == subject) & (averaged["region"].values == region)
            patterns = rsa.data.Dataset(np.asarray(averaged.values)[:, keep].astype(np.float64))
            stack.append(rsa.rdm.calc_rdm(patterns, method=distance).get_vectors()[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rsatoolbox: tau ceilings use mean ranks
            lower, upper = rsa.inference.boot_noise_ceiling(
                rsa.rdm.RDMs(np.stack(stack)), method=METHODS[comparison]
            )
        assert np.mean([r.extra["noise_ceiling"]["lower"] for r in mine]) == pytest.approx(
            lower, abs=1e-9
        )
        assert np.mean([r.extra["noise_ceiling"]["upper"] for r in mine]) == pytest.approx(
            upper, abs=1e-9
        )
        if distance != "correlation" or comparison != "pearson":  # no dataset ceiling there
            assert [r.ceiling_low for r in mine] == [
                r.extra["noise_ceiling"]["lower"] for r in mine
            ]
            assert [r.ceiling_high for r in mine] == [
                r.extra["noise_ceiling"]["upper"] for r in mine
            ]
        assert {r.extra["rdm"]["brain"] for r in mine} == {
            "correlation (1 - Pearson r)" if distance == "correlation"
            else "squared euclidean per channel"
        }  # fmt: skip


def test_the_92_image_human_it_bounds_equal_rsatoolbox(shared_dir):
    """On the real 92-image data: the rows of the four human subjects carry the
    leave-one-subject-out and all-subjects terms whose means are rsatoolbox's bounds."""
    rsa = rsatoolbox()
    from brainrank.plugins.datasets import kriegeskorte2008 as k92

    folder = shared_dir / "data" / "kriegeskorte92"
    if not (folder / k92.SUPPLEMENT).is_file():
        pytest.skip(f"the 92-image files are not in {folder}")
    dataset = k92.build(folder)
    metric = RSA()
    _, keys, brain, _ = metric.brain_rdms(dataset)
    bounds = metric.noise_ceilings(keys, brain)
    human = [k for k in keys if k[1] == "hIT"]
    assert len(human) == 4 and ("monkeys", "mIT") not in bounds  # one monkey RDM: no bounds
    subjects = np.stack([brain[keys.index(k)] for k in human])
    lower, upper = rsa.inference.boot_noise_ceiling(rsa.rdm.RDMs(subjects), method="corr")
    assert np.mean([bounds[k]["lower"] for k in human]) == pytest.approx(lower, abs=1e-9)
    assert np.mean([bounds[k]["upper"] for k in human]) == pytest.approx(upper, abs=1e-9)


@pytest.mark.parametrize("distance", ["euclidean", "crossnobis"])
def test_pure_noise_scores_zero_on_average_over_draws(distance):
    features = None
    means = []
    for draw in range(12):
        dataset = trial_dataset(n=40, reps=2, per_group=20, seed=100 + draw, signal=0.0)
        metric = RSA(distance=distance)
        if features is None:
            features = bt.example_features(dataset, metric.feature_request(dataset))
        features.stimulus_ids = tuple(dataset.stimuli.stimulus_ids)
        rows = [r for r in metric.score(features, dataset) if r.selection == "layer"]
        means.append(float(np.mean([r.value for r in rows])))
    sd = float(np.std(means, ddof=1))
    assert abs(np.mean(means)) < 4 * sd / math.sqrt(len(means)), means


def unbiased(rdm_of) -> tuple[bool, list[float]]:
    """Whether the mean distance of ``rdm_of``'s RDMs of pure-noise trials (16 draws) is 0
    within 4 standard errors of the mean over draws."""
    means = []
    for draw in range(16):
        trials = np.random.default_rng(draw).standard_normal((4, 30, 100))
        means.append(float(upper_triangle(rdm_of(trials)).mean()))
    return abs(np.mean(means)) < 4 * np.std(means, ddof=1) / math.sqrt(len(means)), means


def test_crossnobis_is_unbiased_and_its_mutation_without_cross_validation_is_not(monkeypatch):
    """On pure noise a crossnobis distance is 0 on average (its folds' noise is independent);
    the metric's brain RDM replaced by the squared Euclidean distance of the averaged trials
    (no cross-validation) fails the same check: noise adds 2 sigma^2 / repetitions (0.5 here)
    to every distance."""
    from brainrank.plugins.metrics import rsa as rsa_module

    def metric_rdm(trials):
        responses = make_responses(
            trials.reshape(-1, trials.shape[2]).astype(np.float32),
            stimulus_id=[f"s{i}" for i in range(trials.shape[1])] * trials.shape[0],
            repetition=np.repeat(np.arange(trials.shape[0]), trials.shape[1]),
            neuroid_id=[f"n{i}" for i in range(trials.shape[2])], subject="s", region="r",
        )  # fmt: skip
        stimuli = bt.example_stimuli(trials.shape[1], sizes=((8, 8),))
        stimuli = type(stimuli)("x", [f"s{i}" for i in range(trials.shape[1])], stimuli.image)
        dataset = Dataset("noise", stimuli, DatasetMetadata(species="none", modality="x"),
                          responses=responses)  # fmt: skip
        return RSA(distance="crossnobis").brain_rdms(dataset)[2][0]

    ok, means = unbiased(metric_rdm)
    assert ok, means
    assert unbiased(crossnobis)[0]
    monkeypatch.setattr(rsa_module, "crossnobis",
                        lambda t, noise="identity": squared_euclidean(t.mean(axis=0)))  # fmt: skip
    ok, means = unbiased(metric_rdm)
    assert not ok and np.mean(means) == pytest.approx(0.5, abs=0.02), means


def test_what_is_refused_before_any_feature_is_extracted():
    with pytest.raises(InputError, match="distance must be one of"):
        RSA(distance="cosine")
    with pytest.raises(InputError, match="takes none"):
        RSA(noise="diagonal")
    assert RSA().parameters == {"comparison": "pearson", "distance": "correlation"}
    assert RSA(distance="crossnobis").parameters["noise"] == "identity"
    averaged = bt.example_dataset(n_repetitions=1)
    with pytest.raises(NotApplicableError, match="cross-validated over repetitions"):
        RSA(distance="crossnobis").check_applicable(averaged)
    stimuli = bt.example_stimuli(6, sizes=((8, 8),))
    ids = list(stimuli.stimulus_ids)
    rdms = np.abs(np.random.default_rng(0).standard_normal((1, 6, 6)))
    rdms = (rdms + rdms.transpose(0, 2, 1)) / 2
    for i in range(6):
        rdms[0, i, i] = 0
    published = Dataset("pub", stimuli, DatasetMetadata(species="none", modality="x"),
                        rdms=RDMSet(rdms, tuple(ids), [{"subject": "s", "region": "r"}],
                                    distance="euclidean"))  # fmt: skip
    with pytest.raises(
        NotApplicableError, match=r"publishes euclidean RDMs.*rsa\.distance=euclidean"
    ):
        RSA().check_applicable(published)
    RSA(distance="euclidean").check_applicable(published)
    judged = Dataset("judged", stimuli, DatasetMetadata(species="none", modality="x"),
                     rdms=RDMSet(rdms, tuple(ids), [{"subject": "s", "region": "r"}],
                                 distance="similarity judgements"))  # fmt: skip
    RSA().check_applicable(judged)  # not a distance brainrank computes: the model's is used
    assert RSA().rdm_names(judged)["brain"] == "similarity judgements (published)"
    feature_request = RSA(distance="euclidean").feature_request(judged)
    assert feature_request == FeatureRequest(gram=True)
