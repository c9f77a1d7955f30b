"""MajajHong2015 from a brainio netCDF assembly, a stimulus CSV and a ZIP of PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from dataset_fixtures import make_majajhong

from brainrank.core.errors import DataUnavailableError, InputError
from brainrank.core.responses import average_repetitions
from brainrank.plugins.datasets import majajhong2015 as mh


@pytest.fixture
def hvm(tmp_path):
    return tmp_path, make_majajhong(tmp_path)


def test_public_split_reads_the_assembly_like_brain_score(hvm):
    root, truth = hvm
    dataset = mh.build(root)
    r = dataset.responses()
    public = np.isin(truth["variations"], (0, 3))
    assert list(dict.fromkeys(r["stimulus_id"].values)) == list(truth["image_ids"][public])
    # Tito_L_P_* removed, the site with a NaN dropped, both counted
    assert list(r["neuroid_id"].values) == [
        "Chabo_L_M_5_9",
        "Chabo_L_A_1_2",
        "Tito_L_M_8_0",
        "Tito_R_M_3_3",
    ]
    assert dataset.info["sites"] == {
        "sites": 6,
        "Tito_L_P_* removed": 1,
        "non-finite removed": 1,
        "kept": 4,
    }
    assert list(r["region"].values) == ["IT", "IT", "V4", "V4"]
    assert list(r["animal"].values) == ["Chabo", "Chabo", "Tito", "Tito"]
    # trial-level, with repetitions; the average equals the mean over the file's rows
    averaged = average_repetitions(r)
    for k, image_id in enumerate(averaged["stimulus_id"].values):
        i = list(truth["image_ids"]).index(image_id)
        expected = truth["values"][truth["rows"] == i][:, :4].mean(0)
        np.testing.assert_allclose(averaged.values[k], expected, rtol=1e-5)
    assert sorted(set(r["repetition"].values)) == [0, 1, 2, 3]
    # images from the ZIP, by the CSV's file names
    first = r["stimulus_id"].values[0]
    name = next(n for n in truth["pngs"] if first in n)
    np.testing.assert_array_equal(dataset.stimuli.image(first), truth["pngs"][name])
    assert dataset.stimuli.metadata.loc[first, "object_name"] == name.split("_")[0]


def test_internal_consistency_ceiling(hvm):
    from sklearn.model_selection import ShuffleSplit

    root, _ = hvm
    dataset = mh.build(root)
    r = dataset.responses()
    values = r.values.astype(np.float64)
    reps = np.unique(r["repetition"].values)
    ids = r["stimulus_id"].values
    order = list(dict.fromkeys(ids))
    per_split = []
    for a, b in ShuffleSplit(n_splits=10, train_size=0.5, random_state=1).split(reps):
        halves = []
        for half in (reps[a], reps[b]):
            rows = np.isin(r["repetition"].values, half)
            halves.append(np.stack([values[rows & (ids == s)].mean(0) for s in order]))
        corr = np.array([np.corrcoef(halves[0][:, n], halves[1][:, n])[0, 1] for n in range(4)])
        per_split.append(2 * corr / (1 + corr))
    per_split = np.array(per_split)
    ic = dataset.ceiling("internal-consistency")
    assert ic[("pooled", "IT")] == pytest.approx(
        np.mean(np.median(per_split[:, :2], axis=1)), abs=1e-6
    )
    assert ic[("pooled", "V4")] == pytest.approx(
        np.mean(np.median(per_split[:, 2:], axis=1)), abs=1e-6
    )
    encoding = dataset.ceiling("encoding")
    assert encoding[("pooled", "IT")] == pytest.approx(np.sqrt(ic[("pooled", "IT")]))
    np.testing.assert_allclose(dataset.neuroid_reliability(), per_split.mean(0), atol=1e-6)
    rsa = dataset.ceiling("rsa")
    assert set(rsa) == {("pooled", "IT"), ("pooled", "V4")} and all(
        0 < v <= 1 for v in rsa.values()
    )


def test_private_split_and_region_choice(hvm):
    root, _ = hvm
    private = mh.build(root, split="private", regions="V4")
    assert private.identifier == "majajhong2015/private"
    assert len(private.stimuli) == 4 and set(private.responses()["region"].values) == {"V4"}
    with pytest.raises(InputError, match="split must be"):
        mh.build(root, split="test")


def test_bad_input(tmp_path):
    import pandas as pd

    make_majajhong(tmp_path)
    (tmp_path / "image_dicarlo_hvm-public.zip").unlink()
    with pytest.raises(DataUnavailableError) as info:
        mh.build(tmp_path)
    assert "stimulus_dicarlo_hvm-public.zip" in str(info.value) and "brainio-brainscore" in str(
        info.value
    )
    make_majajhong(tmp_path)
    table = pd.read_csv(tmp_path / "image_dicarlo_hvm-public.csv")
    table.loc[0, "image_id"] = "0" * 40
    table.to_csv(tmp_path / "image_dicarlo_hvm-public.csv", index=False)
    with pytest.raises(
        InputError, match=r"1 stimulus ids of assy_dicarlo_MajajHong2015_public\.nc are not in"
    ):
        mh.build(tmp_path)
    make_majajhong(tmp_path)
    nc = tmp_path / "assy_dicarlo_MajajHong2015_public.nc"
    nc.write_bytes(nc.read_bytes()[:500])
    with pytest.raises(InputError, match=r"netCDF assembly .*(corrupt|truncated)"):
        mh.build(tmp_path)
    make_majajhong(tmp_path)
    import xarray as xr

    with xr.open_dataarray(nc) as array:
        array = array.load()
    array.isel(presentation=array["variation"].values == 6).to_netcdf(nc, engine="netcdf4")
    with pytest.raises(InputError, match=r"holds variations \[6\] only"):
        mh.build(tmp_path)
