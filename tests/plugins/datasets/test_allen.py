"""Allen Brain Observatory natural scenes from NWB 1.x files written with h5py."""

from __future__ import annotations

import numpy as np
import pytest
from dataset_fixtures import allen_expected, make_allen, write_allen_nwb

from brainrank.core.errors import DataUnavailableError, InputError
from brainrank.plugins.datasets import allen


@pytest.fixture
def allen_root(tmp_path):
    return tmp_path, make_allen(tmp_path)


def test_sweep_responses_repetitions_and_cell_filters(allen_root):
    root, truth = allen_root
    dataset = allen.build(root, reliability_threshold=0.5)
    r = dataset.responses()
    # 5 images x 4 repetitions; ids from the NWB's 0-based image index
    assert list(dict.fromkeys(r["stimulus_id"].values)) == [f"ns{i:03d}" for i in range(5)]
    assert r.sizes["presentation"] == 20 and sorted(set(r["repetition"].values)) == [0, 1, 2, 3]
    # kept: 11 (reliable), 21 (Rorb, excitatory), 23 (not in the table: NWB metadata, Cux2)
    assert list(r["neuroid_id"].values) == ["11", "21", "23"]
    counts = dataset.info["cells"]
    assert counts == {"cells": 6, "not in areas": 0, "not excitatory": 1, "running modulated": 1,
                      "unreliable": 1, "kept": 3}  # fmt: skip
    assert dataset.info["skipped_files"] == ["503.nwb"]
    assert list(r["region"].values) == ["VISp", "VISl", "VISl"]
    assert list(r["cre_line"].values) == ["Cux2-CreERT2", "Rorb-IRES2-Cre", "Cux2-CreERT2"]
    assert list(r["depth"].values) == [175, 275, 275]
    assert set(r["subject"].values) == {"pooled"}
    # each value: the mean dF/F over AllenSDK's window, k-th showing = repetition k
    for column, (experiment, row) in enumerate([(501, 0), (502, 0), (502, 2)]):
        for image in range(5):
            rows = np.flatnonzero(r["stimulus_id"].values == f"ns{image:03d}")
            order = np.argsort(r["repetition"].values[rows])
            np.testing.assert_allclose(
                r.values[rows[order], column],
                allen_expected(truth[experiment], row, image),
                rtol=1e-5,
            )
    # split-half reliability over even/odd repetitions, Spearman-Brown corrected
    trials = np.stack([allen_expected(truth[501], 0, i) for i in range(5)]).T  # (reps, images)
    r_half = np.corrcoef(trials[0::2].mean(0), trials[1::2].mean(0))[0, 1]
    assert float(r["reliability"][0]) == pytest.approx(2 * r_half / (1 + r_half), abs=1e-5)
    np.testing.assert_allclose(dataset.neuroid_reliability(), r["reliability"].values)
    assert set(dataset.ceiling("encoding")) == {("pooled", "VISp"), ("pooled", "VISl")}
    image = dataset.stimuli.image("ns002")
    np.testing.assert_array_equal(image[..., 0], truth[501]["templates"][2])


def test_default_threshold_blank_and_area_selection(allen_root):
    root, truth = allen_root
    default = allen.build(root)
    assert (default.responses()["reliability"].values >= 0.8).all()
    with_blank = allen.build(root, reliability_threshold=None, include_blank=True, running_p=None)
    r = with_blank.responses()
    assert list(dict.fromkeys(r["stimulus_id"].values)) == ["blank"] + [
        f"ns{i:03d}" for i in range(5)
    ]
    np.testing.assert_array_equal(
        with_blank.stimuli.image("blank"), np.full((9, 12, 3), 127, np.uint8)
    )
    rows = np.flatnonzero(r["stimulus_id"].values == "blank")
    np.testing.assert_allclose(
        np.sort(r.values[rows, 0]), np.sort(allen_expected(truth[501], 0, -1)), rtol=1e-5
    )
    assert set(r["neuroid_id"].values) == {"11", "12", "13", "21", "23"}
    only_visl = allen.build(root, areas=["VISl"], reliability_threshold=None)
    assert set(only_visl.responses()["region"].values) == {"VISl"}
    everyone = allen.build(root, cre_lines="all", reliability_threshold=None, running_p=None)
    assert "22" in set(everyone.responses()["neuroid_id"].values)
    with pytest.raises(InputError, match="unknown area"):
        allen.build(root, areas=["V1"])


def test_bad_input(tmp_path):
    make_allen(tmp_path)
    write_allen_nwb(tmp_path / "ophys_experiment_data/504.nwb", cells=[41], signal=np.ones((1, 6)),
                    drop_sweep=True)  # fmt: skip
    with pytest.raises(InputError, match=r"504\.nwb: not every image has all repetitions"):
        allen.build(tmp_path)
    (tmp_path / "ophys_experiment_data/504.nwb").write_bytes(b"not an HDF5 file")
    with pytest.raises(InputError, match=r"504\.nwb.*(corrupt|truncated)"):
        allen.build(tmp_path)
    (tmp_path / "ophys_experiment_data/504.nwb").unlink()
    (tmp_path / "cell_specimens.json").unlink()
    with pytest.raises(DataUnavailableError, match=r"cell_specimens\.json.*api\.brain-map\.org"):
        allen.build(tmp_path)


def test_missing_nwb_files_and_the_download_list(tmp_path):
    from dataset_fixtures import write_json

    write_json(tmp_path / "cell_specimens.json", [])
    with pytest.raises(DataUnavailableError, match="no NWB file in"):
        allen.build(tmp_path)
    experiments = [
        {"id": 501, "stimulus_name": "three_session_B", "well_known_files": [
            {"download_link": "/api/v2/well_known_file_download/9001",
             "well_known_file_type": {"name": "NWBOphys"}}]},
        {"id": 600, "stimulus_name": "three_session_A", "well_known_files": []},
    ]  # fmt: skip
    write_json(tmp_path / "ophys_experiments.json", {"success": True, "msg": experiments})
    listed = {f.path: f for f in allen.files(tmp_path)}
    assert listed["ophys_experiment_data/501.nwb"].urls == (
        "http://api.brain-map.org/api/v2/well_known_file_download/9001",
    )
    assert "ophys_experiment_data/600.nwb" not in listed
    assert allen.files(tmp_path, ["999"])[-1].path == "ophys_experiments.json"
    with pytest.raises(DataUnavailableError, match=r"501\.nwb"):
        allen.build(tmp_path, experiments=[501])
