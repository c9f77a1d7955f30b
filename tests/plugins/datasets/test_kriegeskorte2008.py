"""The real 92-image data (shared/data/kriegeskorte92), checked against rsatoolbox."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

import brainrank
from brainrank.core.errors import DataUnavailableError, InputError, NotApplicableError
from brainrank.core.rsa import compare
from brainrank.plugins.datasets import kriegeskorte2008 as k92

_LOADED: dict = {}


@pytest.fixture
def dataset(shared_dir):
    folder = shared_dir / "data" / "kriegeskorte92"
    if not (folder / k92.SUPPLEMENT).is_file():
        pytest.skip(f"the 92-image files are not in {folder}")
    if folder not in _LOADED:  # read once per test session
        _LOADED[folder] = k92.build(folder)
    return _LOADED[folder]


def rsatoolbox_rdms(stack):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    return rsatoolbox.rdm.RDMs(np.asarray(stack))


def test_stimuli_and_rdms(dataset):
    assert len(dataset.stimuli) == 92 and dataset.stimuli.stimulus_ids[0] == "k92-01"
    image = dataset.stimuli.image("k92-92")
    assert image.shape == (175, 175, 3) and image.dtype == np.uint8
    meta = dataset.stimuli.metadata
    assert meta["animal"].sum() == 48 and meta.loc["k92-01", "human"]  # 48 animate images
    rdms = dataset.rdms()
    assert dataset.responses() is None and len(rdms) == 9
    subjects = [(d["subject"], d["session"]) for d in rdms.descriptors if d["region"] == "hIT"]
    assert subjects == [(s, n) for s in ("BE", "KO", "SN", "TI") for n in (1, 2)]
    assert rdms.descriptors[-1]["region"] == "mIT"
    # the figure-1 RDMs are 4186-long upper triangles in MATLAB squareform order: expanded
    # with numpy's triu order, human IT equals the mean of the 8 session RDMs
    _, sessions = dataset.human_rdms("session")
    reference = dataset.reference_rdms()
    assert (
        np.corrcoef(compare_vectors(sessions.mean(0)), compare_vectors(reference["hIT-fig1"]))[0, 1]
        > 0.9999
    )
    np.testing.assert_array_equal(reference["mIT-fig1"], reference["mIT-fig1"].T)
    assert dataset.metadata.kind == "rdms"


def compare_vectors(square):
    i, j = np.triu_indices(92, 1)
    return square[i, j]


def test_model_rdms_against_human_it_match_rsatoolbox_and_the_reference_values(dataset):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    reference = dataset.reference_rdms()
    human = reference["hIT-fig1"]
    expected = {"model/animacy": 0.340, "model/HMAX": 0.149, "mIT-fig1": 0.304}
    for name, value in expected.items():
        ours = compare(reference[name], human, "kendall_tau_a")
        oracle = rsatoolbox.rdm.compare(
            rsatoolbox_rdms(reference[name][None]), rsatoolbox_rdms(human[None]), method="tau-a"
        )[0, 0]
        assert ours == pytest.approx(oracle, abs=1e-9)
        assert round(ours, 3) == value
    pearson = compare(reference["mIT-fig1"], human, "pearson")
    assert round(pearson, 3) == 0.491


def test_noise_ceiling_matches_rsatoolbox(dataset):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    lower, upper = dataset.noise_ceiling("kendall_tau_a", unit="session")
    assert (round(lower, 3), round(upper, 3)) == (0.223, 0.366)
    _, sessions = dataset.human_rdms("session")
    _, subjects = dataset.human_rdms("subject")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rsatoolbox warns that tau ceilings use mean ranks
        oracle = rsatoolbox.inference.boot_noise_ceiling(rsatoolbox_rdms(sessions), method="tau-a")
        oracle_pearson = rsatoolbox.inference.boot_noise_ceiling(
            rsatoolbox_rdms(subjects), method="corr"
        )
    assert (lower, upper) == pytest.approx(tuple(oracle), abs=1e-9)
    assert dataset.noise_ceiling("pearson") == pytest.approx(tuple(oracle_pearson), abs=1e-9)
    # ceiling("rsa"): per subject, r with the pooled RDM of the other subjects; their mean
    # is the lower bound
    ceiling = dataset.ceiling("rsa")
    assert set(ceiling) == {(s, "hIT") for s in ("BE", "KO", "SN", "TI")}
    assert np.mean(list(ceiling.values())) == pytest.approx(oracle_pearson[0], abs=1e-9)


def test_regression_metrics_refuse_it_and_rsa_uses_it(dataset):
    from brainrank.plugins.metrics.rsa import RSA
    from brainrank.plugins.metrics.srp_ridge import SRPRidge

    with pytest.raises(NotApplicableError, match="RDMs only"):
        SRPRidge().check_applicable(dataset)
    RSA().check_applicable(dataset)
    ids, keys, brain, _ = RSA().brain_rdms(dataset)
    assert len(ids) == 92 and ("monkeys", "mIT") in keys and len(keys) == 5
    np.testing.assert_allclose(brain[keys.index(("BE", "hIT"))], dataset.human_rdms()[1][0])


def test_missing_files_are_named(tmp_path, shared_dir):
    folder = shared_dir / "data" / "kriegeskorte92"
    if not (folder / k92.SUPPLEMENT).is_file():
        pytest.skip("the 92-image files are not present")
    shutil.copy(folder / k92.SUPPLEMENT, tmp_path / k92.SUPPLEMENT)
    with pytest.raises(DataUnavailableError) as info:
        k92.build(tmp_path)
    message = str(info.value)
    assert "92_brainRDMs.mat" in message and str(tmp_path) in message
    assert "raw.githubusercontent.com/rsagroup/rsatoolbox" in message
    assert "92_modelRDMs.mat" not in message  # optional
    shutil.copy(folder / k92.BRAIN, tmp_path / k92.BRAIN)
    assert "model/animacy" not in k92.build(tmp_path).reference_rdms()


def test_intersubject_reference_offers_the_nsd_and_the_leave_one_out_protocols(dataset):
    _, stack = dataset.human_rdms("subject")
    vectors = [v[np.triu_indices(92, 1)] for v in stack]
    pairs = [
        np.corrcoef(vectors[i], vectors[j])[0, 1]
        for i in range(len(vectors))
        for j in range(i + 1, len(vectors))
    ]
    assert dataset.intersubject_reference("nsd") == pytest.approx(np.mean(pairs), abs=1e-9)
    assert dataset.intersubject_reference("nsd") == pytest.approx(0.284, abs=5e-4)
    assert dataset.intersubject_reference("leave-one-out") == pytest.approx(0.394, abs=5e-4)
    pairwise = dataset.ceiling("rsa-pairwise")
    assert np.mean(list(pairwise.values())) == pytest.approx(np.mean(pairs), abs=1e-9)
    assert "rsa-pairwise" in dataset.ceiling_kinds
    with pytest.raises(InputError, match="unknown protocol"):
        dataset.intersubject_reference("bogus")


@pytest.fixture
def behaviour(shared_dir):
    folder = shared_dir / "data" / "kriegeskorte92"
    if not (folder / k92.BEHAVIOUR).is_file() or not (folder / k92.SUPPLEMENT).is_file():
        pytest.skip(f"the 92-image judgement files are not in {folder}")
    key = ("behaviour", folder)
    if key not in _LOADED:
        _LOADED[key] = k92.build_behaviour(folder)
    return _LOADED[key]


def test_behaviour_holds_the_16_subjects_judgement_rdms(behaviour, shared_dir):
    import scipy.io

    rdms = behaviour.rdms()
    assert behaviour.identifier == "kriegeskorte2008/behaviour" and behaviour.responses() is None
    assert len(rdms) == 16 and rdms.stimulus_ids[0] == "k92-01"
    assert [d["subject"] for d in rdms.descriptors] == [f"subject{i}" for i in range(1, 17)]
    assert {d["region"] for d in rdms.descriptors} == {"behaviour"}
    raw = scipy.io.loadmat(
        shared_dir / "data" / "kriegeskorte92" / k92.BEHAVIOUR,
        squeeze_me=True,
        struct_as_record=False,
    )["rdms_behav_92"]
    np.testing.assert_array_equal(rdms.dissimilarities[2], np.asarray(raw[2].RDM, dtype=np.float64))
    np.testing.assert_array_equal(
        rdms.dissimilarities, np.transpose(rdms.dissimilarities, (0, 2, 1))
    )
    assert behaviour.metadata.kind == "rdms" and behaviour.metadata.regions == ("behaviour",)
    # the same images as the brain dataset: features are extracted once for both
    assert behaviour.stimuli.identifier == "kriegeskorte2008"


def test_behaviour_noise_ceiling_matches_rsatoolbox(behaviour):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    _, subjects = behaviour.human_rdms("subject")
    assert subjects.shape == (16, 92, 92)
    oracle = rsatoolbox.inference.boot_noise_ceiling(rsatoolbox_rdms(subjects), method="corr")
    assert behaviour.noise_ceiling("pearson") == pytest.approx(tuple(oracle), abs=1e-9)
    ceiling = behaviour.ceiling("rsa")
    assert set(ceiling) == {(f"subject{i}", "behaviour") for i in range(1, 17)}
    assert np.mean(list(ceiling.values())) == pytest.approx(oracle[0], abs=1e-9)
    assert round(float(oracle[0]), 3) == 0.572  # the figure docs/validation.md states


def test_rsa_scores_the_judgements_and_regression_metrics_refuse_them(behaviour):
    from brainrank.core.rsa import rdm
    from brainrank.core.scores import FeatureSet, LayerFeatures

    for name in ("srp-ridge", "pls", "ridge-cv", "cka", "error-consistency"):
        with pytest.raises(NotApplicableError):
            brainrank.load_metric(name).check_applicable(behaviour)
    X = np.random.default_rng(0).standard_normal((92, 30))
    model_rdm = rdm(X, dtype="float64")
    features = FeatureSet(
        "m", behaviour.stimuli.stimulus_ids, [LayerFeatures("l", 0, 0.0, 30, (30,), rdm=model_rdm)]
    )
    for comparison in ("pearson", "spearman"):
        metric = brainrank.load_metric("rsa", comparison=comparison)
        metric.check_applicable(behaviour)
        rows = [r for r in metric.score(features, behaviour) if r.selection == "layer"]
        assert [r.subject for r in rows] == [f"subject{i}" for i in range(1, 17)]
        assert rows[0].value == pytest.approx(
            compare(model_rdm, behaviour.rdms().dissimilarities[0], comparison), abs=1e-9
        )
        if comparison == "pearson":  # the leave-one-subject-out ceiling of each subject
            assert all(
                r.ceiling == behaviour.ceiling("rsa")[(r.subject, "behaviour")] for r in rows
            )


def test_the_judgements_file_is_declared_with_its_source(tmp_path, shared_dir):
    names = {f.path: f for f in k92.behaviour_files(tmp_path)}
    assert set(names) == {k92.SUPPLEMENT, k92.BEHAVIOUR}
    assert not names[k92.BEHAVIOUR].optional
    assert any(
        "rsatoolbox" in url and url.endswith("92imageData/92_behavRDMs.mat")
        for url in names[k92.BEHAVIOUR].urls
    )
    assert k92.BEHAVIOUR not in {f.path for f in k92.files(tmp_path)}  # the brain dataset's
    folder = shared_dir / "data" / "kriegeskorte92"
    if not (folder / k92.SUPPLEMENT).is_file():
        pytest.skip("the 92-image files are not present")
    shutil.copy(folder / k92.SUPPLEMENT, tmp_path / k92.SUPPLEMENT)
    with pytest.raises(DataUnavailableError, match=r"92_behavRDMs\.mat"):
        k92.build_behaviour(tmp_path)
