"""BOLD5000 from tiny ROI .mat files, trial lists with rep_ lines and JPEG images."""

from __future__ import annotations

import numpy as np
import pytest
from dataset_fixtures import BOLD_IMAGES, make_bold5000

from brainrank.core.errors import DataUnavailableError, InputError
from brainrank.plugins.datasets import bold5000


def expected_average(truth, subject, key, tr="34"):
    """Mean over the presentations of each image, in order of first presentation."""
    sub = truth["subjects"][subject]
    values = sub["mats"][tr][key]
    names = [line.removeprefix("rep_") for line in sub["lines"]]
    order = list(dict.fromkeys(names))
    return order, np.stack([values[[n == name for n in names]].mean(0) for name in order])


def test_trials_are_averaged_per_image_and_nan_voxels_dropped(tmp_path):
    truth = make_bold5000(tmp_path)
    dataset = bold5000.build(tmp_path)
    r = dataset.responses()
    order, expected = expected_average(truth, "CSI1", "RHLOC")
    assert list(r["stimulus_id"].values) == order and set(order) == set(BOLD_IMAGES)
    np.testing.assert_array_equal(r["n_repetitions"].values, [2, 2, 2, 1, 1, 1])
    columns = [i for i, n in enumerate(r["neuroid_id"].values) if n.startswith("CSI1/RHLOC/")]
    np.testing.assert_allclose(r.values[:, columns], expected, rtol=1e-6)
    # the LHPPA voxel with a NaN in TR3 is dropped from the TR3/TR4 mean, and counted
    assert dataset.info["dropped_nan_voxels"]["CSI1"]["LHPPA"] == 1
    _, lhppa = expected_average(truth, "CSI1", "LHPPA")
    columns = [i for i, n in enumerate(r["neuroid_id"].values) if n.startswith("CSI1/LHPPA/")]
    assert len(columns) == lhppa.shape[1] - 1
    np.testing.assert_allclose(r.values[:, columns], lhppa[:, 1:], rtol=1e-6)
    # regions pool the hemispheres; the hemisphere is a coordinate
    assert set(r["region"].values) == set(bold5000.ROIS)
    assert set(r["hemisphere"].values) == {"LH", "RH"}
    assert set(r["subject"].values) == {"CSI1", "CSI2", "CSI3"}
    # images come from the three source folders
    image = dataset.stimuli.image("n01930112_19568.JPEG")
    assert image.shape == (12, 16, 3)
    assert np.abs(image.astype(int) - truth["images"]["n01930112_19568.JPEG"]).mean() < 4
    assert dict(dataset.stimuli.metadata["source"].value_counts()) == {
        "COCO": 2,
        "ImageNet": 2,
        "Scene": 2,
    }


def test_tr_choice_and_the_tr34_file(tmp_path):
    truth = make_bold5000(tmp_path, nan_voxel=False)
    mean = bold5000.build(tmp_path, rois=("OPA",)).responses()
    tr3 = bold5000.build(tmp_path, rois=("OPA",), tr="TR3").responses()
    order2, expected3 = expected_average(truth, "CSI2", "LHOPA", tr="3")  # in CSI2's order
    columns = [i for i, n in enumerate(tr3["neuroid_id"].values) if n.startswith("CSI2/LHOPA/")]
    rows = [order2.index(name) for name in tr3["stimulus_id"].values]  # responses: CSI1's order
    np.testing.assert_allclose(tr3.values[:, columns], expected3[rows], rtol=1e-6)
    (tmp_path / bold5000.roi_file("CSI1", "4")).unlink()  # then the TR34 file is read
    (tmp_path / bold5000.roi_file("CSI2", "4")).unlink()
    (tmp_path / bold5000.roi_file("CSI3", "4")).unlink()
    fallback = bold5000.build(tmp_path, rois=("OPA",)).responses()
    np.testing.assert_allclose(fallback.values, mean.values, rtol=1e-6)
    (tmp_path / bold5000.roi_file("CSI1", "34")).unlink()
    with pytest.raises(DataUnavailableError, match=r"CSI1_ROIs_TR4\.mat or .*CSI1_ROIs_TR34\.mat"):
        bold5000.build(tmp_path)
    with pytest.raises(InputError, match="tr must be one of"):
        bold5000.build(tmp_path, tr="6")


def test_cross_subject_and_rdm_ceilings(tmp_path):
    from sklearn.linear_model import Ridge

    make_bold5000(tmp_path, nan_voxel=False)
    dataset = bold5000.build(tmp_path)
    r = dataset.responses()
    encoding = dataset.ceiling("encoding")
    assert set(encoding) == {(s, roi) for s in ("CSI1", "CSI2", "CSI3") for roi in bold5000.ROIS}
    # one voxel by hand: leave-one-image-out ridge from the other subjects' PPA voxels,
    # the alpha with the best LOO r
    subjects, regions = r["subject"].values, r["region"].values
    target = np.flatnonzero((subjects == "CSI1") & (regions == "PPA"))[0]
    X = r.values[:, (subjects != "CSI1") & (regions == "PPA")].astype(np.float64)
    y = r.values[:, target].astype(np.float64)
    best = -np.inf
    for alpha in 10.0 ** np.arange(-2, 9):
        loo = [Ridge(alpha=alpha).fit(np.delete(X, i, 0), np.delete(y, i)).predict(X[i : i + 1])[0]
               for i in range(len(y))]  # fmt: skip
        best = max(best, np.corrcoef(loo, y)[0, 1])
    reliability = dataset.neuroid_reliability()
    assert np.sqrt(reliability[target]) == pytest.approx(max(best, 0.0), abs=1e-4)
    rsa = dataset.ceiling("rsa")
    assert set(rsa) == set(encoding) and all(-1 <= v <= 1 for v in rsa.values())
    single = bold5000.build(tmp_path, subjects=["CSI1"])
    assert single.ceiling("encoding") == {} and single.neuroid_reliability() is None


def test_partial_subject_keeps_the_common_images(tmp_path):
    make_bold5000(tmp_path, subjects=("CSI1", "CSI4"), nan_voxel=False)
    lines = (tmp_path / "ROIs/stim_lists/CSI04_stim_lists.txt").read_text().split()
    dropped = lines[0]
    keep = [i for i, line in enumerate(lines) if line.removeprefix("rep_") != dropped]
    (tmp_path / "ROIs/stim_lists/CSI04_stim_lists.txt").write_text(
        "\n".join(lines[i] for i in keep)
    )
    import scipy.io

    for tr in ("3", "4", "34"):
        path = tmp_path / bold5000.roi_file("CSI4", tr)
        content = {k: v[keep] for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
        scipy.io.savemat(path, content)
    dataset = bold5000.build(tmp_path, subjects=["CSI1", "CSI4"])
    assert dropped not in dataset.stimuli.stimulus_ids and len(dataset.stimuli) == 5


def test_bad_input_is_reported_clearly(tmp_path):
    make_bold5000(tmp_path, nan_voxel=False)
    lists = tmp_path / "ROIs/stim_lists/CSI01_stim_lists.txt"
    good = lists.read_text()
    lists.write_text("\n".join(good.split()[:8]))
    with pytest.raises(InputError, match=r"has shape \(9, \d\), but .*lists 8 trials"):
        bold5000.build(tmp_path)
    lists.write_text(good)
    image = tmp_path / bold5000.STIMULUS_DIR / "Scene" / "concert5.jpg"
    image.unlink()
    with pytest.raises(DataUnavailableError, match=r"1 of the 6 BOLD5000 images.*concert5\.jpg"):
        bold5000.build(tmp_path)
    lists.unlink()
    with pytest.raises(DataUnavailableError, match=r"CSI01_stim_lists\.txt.*figshare"):
        bold5000.build(tmp_path)
    with pytest.raises(InputError, match="unknown BOLD5000 ROI"):
        bold5000.build(tmp_path, rois=("FFA",))


def test_separate_hemispheres_and_file_list(tmp_path):
    make_bold5000(tmp_path, nan_voxel=False)
    r = bold5000.build(tmp_path, hemispheres="separate", rois=("PPA",)).responses()
    assert set(r["region"].values) == {"LHPPA", "RHPPA"}
    listed = {f.path for f in bold5000.files(tmp_path, ["CSI1", "CSI2"])}
    assert (
        "BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli/ImageNet/n01930112_19568.JPEG" in listed
    )
    assert bold5000.FACTORY.available(tmp_path.parent) is False  # folder name is 'bold5000'


def test_h5_twins_of_the_mat_files(tmp_path):
    import h5py
    import scipy.io

    make_bold5000(tmp_path, nan_voxel=False)
    from_mat = bold5000.build(tmp_path, rois=("RSC",)).responses()
    for subject in ("CSI1", "CSI2", "CSI3"):
        for tr in ("3", "4", "34"):
            mat = tmp_path / bold5000.roi_file(subject, tr)
            h5 = tmp_path / bold5000.roi_file(subject, tr, "h5")
            h5.parent.mkdir(parents=True, exist_ok=True)
            with h5py.File(h5, "w") as f:
                for key, value in scipy.io.loadmat(mat).items():
                    if not key.startswith("__"):
                        f.create_dataset(key, data=value)
            mat.unlink()
    from_h5 = bold5000.build(tmp_path, rois=("RSC",)).responses()
    np.testing.assert_allclose(from_h5.values, from_mat.values, rtol=1e-6)
