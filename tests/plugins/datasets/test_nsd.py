"""NSD read from tiny files in its real formats (HDF5 and NIfTI betas, MATLAB design, ROI
volumes, label tables, stimulus HDF5, image table)."""

from __future__ import annotations

import numpy as np
import pytest
from dataset_fixtures import NSD_OWN, NSD_SHARED, make_nsd, nsd_expected

from brainrank.core.errors import DataUnavailableError, InputError
from brainrank.plugins.datasets import nsd

ROIS = ("V1v", "V1d", "hV4", "FFA-1")
OPTIONS = dict(trials_per_session=6, rois=ROIS, subjects=(1, 2))


def load(root, **options):
    return nsd.build(root, **{**OPTIONS, **options})


def files_of(root):
    return sorted(p.relative_to(root) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def nsd_both(tmp_path_factory):
    root = tmp_path_factory.mktemp("nsd")
    return root, make_nsd(root, fmt="both")


def test_hdf5_and_nifti_betas_give_the_reference_pipeline_values(nsd_both):
    root, truth = nsd_both
    from_h5 = load(root, betas_format="hdf5")
    from_nifti = load(root, betas_format="nifti")
    r = from_h5.responses()
    # stimuli: the shared images, ids from the 0-based NSD ids (sharedix is 1-based)
    assert list(r["stimulus_id"].values) == [f"nsd{i:05d}" for i in NSD_SHARED]
    for image in NSD_SHARED:
        np.testing.assert_array_equal(
            from_h5.stimuli.image(f"nsd{image:05d}"), truth["images"][image]
        )
    assert from_h5.stimuli.metadata.loc["nsd00007", "cocoId"] == 1007
    # the same numbers from both formats (HDF5 stores the axes reversed)
    np.testing.assert_allclose(from_nifti.responses().values, r.values, rtol=0, atol=1e-6)
    assert list(from_nifti.responses()["neuroid_id"].values) == list(r["neuroid_id"].values)
    # every kept voxel: z-score per session, mean over the 3 repetitions
    for n in range(r.sizes["neuroid"]):
        subject = str(r["subject"].values[n])
        voxel = (int(r["voxel_i"][n]), int(r["voxel_j"][n]), int(r["voxel_k"][n]))
        expected = nsd_expected(truth, subject, NSD_SHARED, voxel)
        np.testing.assert_allclose(r.values[:, n], expected, atol=1e-5)


def test_voxel_selection_drops_nan_constant_and_unreliable_voxels_with_counts(nsd_both):
    root, _ = nsd_both
    dataset = load(root)
    r = dataset.responses()
    counts = dataset.info["voxels"]["subj01"]
    # ROIs: V1v 6 + V1d 6 + hV4 4 + FFA-1 9 (one of them also in V1v) = 24 distinct voxels
    assert counts["in ROIs"] == 24
    assert counts["NaN ncsnr"] == 1 and counts["constant or non-finite betas"] == 1
    # the paper's threshold, ncsnr >= 1/3, drops the 0.05 and the 0.25 voxel
    assert counts["below threshold"] == 2 and counts["kept"] == 20
    assert dataset.info["threshold"] == pytest.approx(1 / 3)
    assert (r["ncsnr"].values >= 1 / 3).all()
    ids = set(r["neuroid_id"].values)
    assert "subj01/V1v/1-0-1" not in ids  # NaN ncsnr
    assert "subj01/hV4/2-0-0" not in ids  # outside the brain mask
    assert "subj01/V1d/1-3-2" not in ids  # ncsnr 0.05 < 0.2
    assert "subj01/V1d/1-2-0" not in ids  # ncsnr 0.25 < 1/3
    # a voxel in two ROIs is one neuroid per ROI, with the same values
    both = [list(r["neuroid_id"].values).index(f"subj01/{roi}/1-0-0") for roi in ("V1v", "FFA-1")]
    np.testing.assert_array_equal(r.values[:, both[0]], r.values[:, both[1]])
    assert set(r["region"].values) == set(ROIS) and set(r["subject"].values) == {"subj01", "subj02"}
    # DeepNSD's looser ncsnr >= 0.2 keeps the 0.25 voxel; a lower threshold the 0.05 one too
    looser = load(root, selection="ncsnr-deepnsd")
    assert looser.info["voxels"]["subj01"]["kept"] == 21
    assert "subj01/V1d/1-2-0" in set(looser.responses()["neuroid_id"].values)
    assert looser.info["threshold"] == 0.2
    assert load(root, threshold=0.01).info["voxels"]["subj01"]["kept"] == 22


def test_scaling_without_zscore_is_percent_signal_change(nsd_both):
    root, truth = nsd_both
    r = load(root, zscore=False, rois=("V1d",), subjects=[1]).responses()
    for n in range(r.sizes["neuroid"]):
        voxel = (int(r["voxel_i"][n]), int(r["voxel_j"][n]), int(r["voxel_k"][n]))
        expected = nsd_expected(truth, "subj01", NSD_SHARED, voxel, zscore=False)
        np.testing.assert_allclose(r.values[:, n], expected, atol=1e-5)
    assert np.abs(r.values).max() > 1.5  # PSC, not z-scores of 4 trials... and not x300
    assert np.abs(r.values).max() < 30


def test_ceilings_ncsnr_and_intersubject_rdm(nsd_both):
    root, _ = nsd_both
    dataset = load(root)
    r = dataset.responses()
    ncsnr = r["ncsnr"].values
    np.testing.assert_allclose(dataset.neuroid_reliability(), ncsnr**2 / (ncsnr**2 + 1 / 3))
    encoding = dataset.ceiling("encoding")
    mask = (r["subject"].values == "subj01") & (r["region"].values == "FFA-1")
    np.testing.assert_allclose(
        encoding[("subj01", "FFA-1")], np.sqrt(ncsnr[mask] ** 2 / (ncsnr[mask] ** 2 + 1 / 3)).mean()
    )
    rsa = dataset.ceiling("rsa")
    iu = np.triu_indices(NSD_SHARED.size, 1)
    for region in ROIS:
        rdms = {}
        for subject in ("subj01", "subj02"):
            cols = (r["subject"].values == subject) & (r["region"].values == region)
            rdms[subject] = (1 - np.corrcoef(r.values[:, cols]))[iu]
        expected = np.corrcoef(rdms["subj01"], rdms["subj02"])[0, 1]
        assert rsa[("subj01", region)] == pytest.approx(expected, abs=1e-9)
        assert rsa[("subj02", region)] == pytest.approx(expected, abs=1e-9)


def test_split_half_selection(nsd_both):
    root, truth = nsd_both
    dataset = load(root, selection="split-half", threshold=-1.0, subjects=["subj01"], rois=("V1d",))
    r = dataset.responses()
    for n in range(r.sizes["neuroid"]):
        voxel = (int(r["voxel_i"][n]), int(r["voxel_j"][n]), int(r["voxel_k"][n]))
        sub = truth["subjects"]["subj01"]
        z = np.concatenate(
            [
                (v[voxel] / 300 - (v[voxel] / 300).mean()) / (v[voxel] / 300).std()
                for v in sub["sessions"]
            ]
        )
        reps = np.stack([z[sub["trial_images"] == image] for image in NSD_SHARED])  # (4, 3)
        rs = [np.corrcoef(np.delete(reps, k, 1).mean(1), reps[:, k])[0, 1] for k in range(3)]
        expected = 2 * np.mean(rs) / (1 + np.mean(rs))
        assert float(r["split_half"][n]) == pytest.approx(expected, abs=1e-6)
    high = load(root, selection="split-half", threshold=0.5, subjects=["subj01"], rois=("V1d",))
    assert (high.responses()["split_half"].values >= 0.5).all()
    assert high.info["voxels"]["subj01"]["below threshold"] == int(
        (r["split_half"].values < 0.5).sum()
    )


def test_generalisation_split_trains_on_shared_and_tests_on_the_subjects_own_images(nsd_both):
    root, truth = nsd_both
    dataset = load(root, split="generalisation", subjects=["subj02"])
    assert dataset.identifier == "nsd/generalisation:subj02"
    shared = [f"nsd{i:05d}" for i in NSD_SHARED]
    own = [f"nsd{i:05d}" for i in NSD_OWN["subj02"]]
    # one dataset over the same voxels: the shared images (training), then the own (test)
    assert list(dataset.stimuli.stimulus_ids) == shared + own
    assert dataset.train_test_split() == (shared, own)
    assert list(dataset.stimuli.metadata["split"]) == ["train"] * len(shared) + ["test"] * len(own)
    r = dataset.responses()
    for n in range(r.sizes["neuroid"]):
        voxel = (int(r["voxel_i"][n]), int(r["voxel_j"][n]), int(r["voxel_k"][n]))
        images = np.concatenate([NSD_SHARED, NSD_OWN["subj02"]])
        np.testing.assert_allclose(
            r.values[:, n], nsd_expected(truth, "subj02", images, voxel), atol=1e-5
        )
    assert dataset.ceiling("rsa") == {} or all(np.isfinite(list(dataset.ceiling("rsa").values())))
    # shared1000 has no split of its own
    assert load(root).train_test_split() is None
    with pytest.raises(InputError, match="exactly one subject"):
        load(root, split="generalisation", subjects=[1, 2])


def test_missing_session_file_names_it_and_drop_keeps_complete_images(tmp_path):
    truth = make_nsd(tmp_path, fmt="hdf5", stim_info=False)
    beta_dir = tmp_path / "nsddata_betas/ppdata/subj02/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    (beta_dir / "betas_session03.hdf5").unlink()
    before = files_of(tmp_path)
    with pytest.raises(InputError) as info:
        load(tmp_path)
    message = str(info.value)
    assert "subj02" in message and "betas_session03.hdf5" in message and str(beta_dir) in message
    assert "missing_repetitions='drop'" in message
    assert files_of(tmp_path) == before  # nothing written by a failed load
    shown = truth["subjects"]["subj02"]["trial_images"]
    complete = [i for i in NSD_SHARED if (np.flatnonzero(shown == i) < 12).all()]
    assert complete, "the fixture should leave at least one image complete"
    dataset = load(tmp_path, missing_repetitions="drop")
    assert list(dataset.stimuli.stimulus_ids) == [f"nsd{i:05d}" for i in complete]


def test_missing_files_are_listed_with_their_folder_and_source(tmp_path):
    make_nsd(tmp_path, subjects=("subj01",), stim_info=False)
    (tmp_path / nsd.EXPDESIGN).unlink()
    with pytest.raises(DataUnavailableError) as info:
        load(tmp_path, subjects=[1])
    message = str(info.value)
    assert "nsd_expdesign.mat" in message and str(tmp_path) in message
    assert "natural-scenes-dataset.s3.amazonaws.com" in message
    assert "brainrank data download nsd/shared1000" in message
    roi = tmp_path / "nsddata/ppdata/subj01/func1pt8mm/roi/floc-faces.nii.gz"
    make_nsd(tmp_path, subjects=("subj01",), stim_info=False)
    roi.unlink()
    with pytest.raises(DataUnavailableError, match=r"floc-faces\.nii\.gz"):
        load(tmp_path, subjects=[1])
    load(tmp_path, subjects=[1], rois=("V1v",))  # the missing atlas is not needed for V1v


def test_corrupt_hdf5_and_nifti_are_reported_by_name(tmp_path):
    make_nsd(tmp_path, subjects=("subj01",), stim_info=False)
    beta_dir = tmp_path / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    good = (beta_dir / "betas_session02.hdf5").read_bytes()
    (beta_dir / "betas_session02.hdf5").write_bytes(good[: len(good) // 3])
    with pytest.raises(InputError, match=r"betas_session02\.hdf5.*(corrupt|truncated)"):
        load(tmp_path, subjects=[1])
    (beta_dir / "betas_session02.hdf5").write_bytes(good)
    ncsnr = beta_dir / "ncsnr.nii.gz"
    ncsnr.write_bytes(ncsnr.read_bytes()[:60])
    with pytest.raises(InputError, match=r"ncsnr\.nii\.gz.*(corrupt|truncated)"):
        load(tmp_path, subjects=[1])


def test_roi_and_beta_shapes_that_disagree(tmp_path):
    import h5py
    import nibabel as nib

    make_nsd(tmp_path, subjects=("subj01",), stim_info=False)
    roi = tmp_path / "nsddata/ppdata/subj01/func1pt8mm/roi/floc-faces.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 4, 4), np.float32), np.eye(4)), roi)
    with pytest.raises(InputError, match=r"disagree in shape.*floc-faces.nii.gz \(5, 4, 4\)"):
        load(tmp_path, subjects=[1])
    make_nsd(tmp_path, subjects=("subj01",), stim_info=False)
    beta = (
        tmp_path
        / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session01.hdf5"
    )
    with h5py.File(beta, "w") as f:  # written in NIfTI axis order by mistake
        f.create_dataset("betas", data=np.zeros((5, 4, 3, 6), np.int16))
    with pytest.raises(InputError, match=r"\(trials, Z, Y, X\) = \(6, 3, 4, 5\)"):
        load(tmp_path, subjects=[1])


def test_stimulus_ids_that_do_not_match_the_files(tmp_path):
    import h5py
    import pandas as pd

    make_nsd(tmp_path, subjects=("subj01",))
    stimuli = tmp_path / nsd.STIMULI
    with h5py.File(stimuli, "w") as f:
        f.create_dataset("imgBrick", data=np.zeros((10, 8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="holds only 10 images"):
        load(tmp_path, subjects=[1])
    make_nsd(tmp_path, subjects=("subj01",))
    table = pd.read_csv(tmp_path / nsd.STIM_INFO, index_col=0)
    table.loc[table["nsdId"] == 3, "subject1_rep1"] += 1
    table.to_csv(tmp_path / nsd.STIM_INFO)
    with pytest.raises(InputError, match="repetition 1 of 1 images of subj01"):
        load(tmp_path, subjects=[1])
    table.loc[table["nsdId"] == 4, "shared1000"] = True
    table.to_csv(tmp_path / nsd.STIM_INFO)
    with pytest.raises(InputError, match="disagree on the shared images"):
        load(tmp_path, subjects=[1])


def test_options_are_checked(nsd_both):
    root, _ = nsd_both
    with pytest.raises(InputError, match=r"unknown NSD ROI 'V9'.*known ROIs"):
        load(root, rois=("V9",))
    with pytest.raises(InputError, match="unknown subject"):
        load(root, subjects=[9])
    with pytest.raises(InputError, match="selection must be"):
        load(root, selection="snr")
    assert nsd.subject_name("subj05") == nsd.subject_name(5) == nsd.subject_name("05") == "subj05"
    union = load(root, rois=("V1",), subjects=[1]).responses()
    # V1v 6 + V1d 6, minus the NaN, the 0.05 and the 0.25 ncsnr voxels
    assert set(union["region"].values) == {"V1"} and union.sizes["neuroid"] == 9


def test_processed_responses_are_cached_and_invalidated_by_file_changes(tmp_path, monkeypatch):
    make_nsd(tmp_path, subjects=("subj01",), stim_info=False)
    first = load(tmp_path, subjects=[1])
    assert "cache" not in first.info

    def no_reading(*args, **kwargs):
        raise AssertionError("the betas were read although the cache is valid")

    with monkeypatch.context() as patch:
        patch.setattr(nsd, "_read_session", no_reading)
        again = load(tmp_path, subjects=[1])
        assert again.info["cache"].endswith(".nc")
        np.testing.assert_array_equal(again.responses().values, first.responses().values)
        assert list(again.responses()["neuroid_id"].values) == list(
            first.responses()["neuroid_id"].values
        )
        np.testing.assert_array_equal(again.neuroid_reliability(), first.neuroid_reliability())
        assert again.info["voxels"] == first.info["voxels"]
        with pytest.raises(AssertionError, match="cache is valid"):  # other options: a new key
            load(tmp_path, subjects=[1], threshold=0.5)
    # a changed betas file invalidates the cache
    beta = (
        tmp_path
        / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session02.hdf5"
    )
    import h5py

    with h5py.File(beta, "a") as f:
        f["betas"][0] = f["betas"][0] + 300
    changed = load(tmp_path, subjects=[1])
    assert "cache" not in changed.info
    assert not np.allclose(changed.responses().values, first.responses().values)
    assert "cache" not in load(tmp_path, subjects=[1], cache=False, threshold=0.3).info


def test_the_papers_threshold_as_ncsnr_is_one_third():
    """Single-trial r > 0.1 (the paper) <=> ncsnr > 1/3: two repetitions with signal SD
    ncsnr and noise SD 1 correlate by ncsnr^2 / (ncsnr^2 + 1) = (1/9) / (10/9) = 0.1."""
    assert pytest.approx(1 / 3, abs=1e-12) == nsd.PAPER_NCSNR
    assert nsd.DEFAULT_THRESHOLDS["ncsnr"] == nsd.PAPER_NCSNR
    assert nsd.DEFAULT_THRESHOLDS["ncsnr-deepnsd"] == 0.2
    rng = np.random.default_rng(0)
    n = 200_000
    for ncsnr, r_single in [(nsd.PAPER_NCSNR, 0.1), (0.2, 0.04 / 1.04)]:
        signal = ncsnr * rng.standard_normal(n)
        reps = signal[:, None] + rng.standard_normal((n, 3))
        pairs = [np.corrcoef(reps[:, a], reps[:, b])[0, 1] for a, b in ((0, 1), (1, 2), (0, 2))]
        assert np.mean(pairs) == pytest.approx(r_single, abs=0.005)


def test_versa_generalisation_fits_on_the_shared_images_and_scores_the_own_ones(tmp_path):
    """The paper's generalisation test on the real-format fixture: weights fitted on the
    shared images only, applied to the subject's own images; the layer is chosen on the
    shared images."""
    from sklearn.linear_model import RidgeCV as SkRidgeCV

    import brainrank
    from brainrank.core.projection import jl_dimension
    from brainrank.core.scores import FeatureSet, LayerFeatures

    shared, own = np.arange(20, 44), np.arange(0, 12)  # 24 training, 12 test images
    make_nsd(tmp_path, subjects=("subj01",), shared=shared, own={"subj01": own})
    dataset = load(tmp_path, split="generalisation", subjects=[1], selection=None, n_images=12)
    train_ids, test_ids = dataset.train_test_split()
    assert train_ids == [f"nsd{i:05d}" for i in shared]
    assert test_ids == [f"nsd{i:05d}" for i in own]
    alphas = [0.1, 1.0, 10.0, 100.0]
    metric = brainrank.load_metric("versa:generalisation", alphas=alphas, alpha_scoring="mse")
    k = next(iter(metric.feature_request(dataset).projection_dims))
    assert k == jl_dimension(24)  # the JL dimension of the training images, as the paper
    r = dataset.responses()
    Y = r.values.astype(np.float64)
    # a feature space that holds the measured responses themselves (a perfect "model") and
    # one that holds noise
    rng = np.random.default_rng(0)
    spaces = {"noise": rng.standard_normal(Y.shape), "responses": Y.copy()}
    layers = [
        LayerFeatures(name, i, i / 1, Y.shape[1], Y.shape[1:], {k: x.astype(np.float32)})
        for i, (name, x) in enumerate(spaces.items())
    ]
    features = FeatureSet("test/model", tuple(dataset.stimuli.stimulus_ids), layers)
    rows = metric.score(features, dataset)
    train, test = np.arange(24), np.arange(24, 36)
    iu = np.triu_indices(12, 1)
    for name, X in spaces.items():
        fit = SkRidgeCV(alphas=alphas, alpha_per_target=True).fit(X[train], Y[train])
        predicted = fit.predict(X[test])
        for region in set(r["region"].values):
            cols = r["region"].values == region
            if cols.sum() < 2:
                continue
            expected = np.corrcoef(
                (1 - np.corrcoef(predicted[:, cols]))[iu], (1 - np.corrcoef(Y[test][:, cols]))[iu]
            )[0, 1]
            [row] = [
                x for x in rows if x.selection == "layer" and x.layer == name and x.region == region
            ]
            assert row.value == pytest.approx(expected, abs=1e-3)
            assert (row.extra["n_train"], row.extra["n_test"], row.extra["split"]) == (
                24, 12, "dataset",
            )  # fmt: skip
    chosen = [x for x in rows if x.selection == "generalisation"]
    assert chosen and all(x.layer == "responses" and x.value > 0.5 for x in chosen)


def test_single_trial_selection_uses_independent_images(tmp_path):
    """selection='single-trial': mean pairwise r between single repetitions, on own images
    that are neither shared nor generalisation images; both datasets keep the same voxels."""
    shared, own = np.array([3, 7, 11, 15]), np.arange(20, 28)  # 2 generalisation + 6 others
    truth = make_nsd(tmp_path, subjects=("subj01",), shared=shared, own={"subj01": own})
    options = dict(subjects=[1], selection="single-trial", n_images=2, reliability_images=6)
    everything = load(tmp_path, threshold=-1.0, **options)
    r = everything.responses()
    assert list(r["stimulus_id"].values) == [f"nsd{i:05d}" for i in shared]
    sub = truth["subjects"]["subj01"]
    independent = own[2:]
    for n in range(r.sizes["neuroid"]):
        voxel = (int(r["voxel_i"][n]), int(r["voxel_j"][n]), int(r["voxel_k"][n]))
        z = np.concatenate([(v[voxel] - v[voxel].mean()) / v[voxel].std() for v in sub["sessions"]])
        reps = np.stack([z[sub["trial_images"] == image] for image in independent])  # (6, 3)
        pairs = [np.corrcoef(reps[:, a], reps[:, b])[0, 1] for a, b in ((0, 1), (1, 2), (0, 2))]
        assert float(r["single_trial_r"][n]) == pytest.approx(np.mean(pairs), abs=1e-5)
    selected = load(tmp_path, **options)
    kept = selected.responses()
    assert selected.info["threshold"] == 0.1
    assert (kept["single_trial_r"].values >= 0.1).all()
    values = everything.responses()["single_trial_r"].values
    assert kept.sizes["neuroid"] == int((values >= 0.1).sum()) < r.sizes["neuroid"]
    general = load(tmp_path, split="generalisation", **options)
    assert set(general.responses()["neuroid_id"].values) == set(kept["neuroid_id"].values)
    with pytest.raises(InputError, match="neither shared nor among its first 7"):
        load(tmp_path, subjects=[1], selection="single-trial", n_images=7)
