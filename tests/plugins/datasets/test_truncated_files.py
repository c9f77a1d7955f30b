"""Issue 13: a truncated (or garbage) file of each real format gives a DataUnavailableError or
InputError that names the file and says how to repair it (``brainrank data check`` / download
again), never a raw h5py, scipy, nibabel or netCDF traceback.

Each case writes the small real-format fixture of ``dataset_fixtures``, damages one file and
reads the dataset as a run would (build, responses or RDMs, ceilings, the first image).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import make_allen, make_bold5000, make_majajhong, make_nsd

from brainrank.core.errors import DataUnavailableError, InputError


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: max(16, len(data) // 3)])


def _tail_cut(path: Path) -> None:
    """The header intact, the end of the data missing (an interrupted download)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.9)])


def _head_only(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:60])


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(max(64, path.stat().st_size // 2)))


def _bold5000_h5(root: Path) -> None:
    """The .h5 twins of the TR3 ROI files (the release offers both), .mat removed."""
    import h5py
    import scipy.io

    for mat in root.glob("ROIs/*/mat/*_TR3.mat"):
        content = {k: v for k, v in scipy.io.loadmat(mat).items() if not k.startswith("__")}
        h5_dir = mat.parent.parent / "h5"
        h5_dir.mkdir(exist_ok=True)
        with h5py.File(h5_dir / mat.name.replace(".mat", ".h5"), "w") as f:
            for key, value in content.items():
                f[key] = value
        mat.unlink()


def _use(dataset) -> None:
    """Everything a run reads."""
    responses = dataset.responses()
    if responses is None:
        dataset.rdms()
    dataset.stimuli.image(dataset.stimuli.stimulus_ids[0])
    for name in ("rsa", "srp-ridge"):
        try:
            dataset.ceiling(name)
        except (InputError, DataUnavailableError):
            raise
        except Exception:  # a ceiling this dataset does not offer is not the subject here
            pass


def _nsd(root: Path):
    make_nsd(root, subjects=("subj01",), stim_info=False)
    return lambda: _load("nsd", root, trials_per_session=6, rois=("V1v", "FFA-1"), subjects=[1])


def _nsd_nifti(root: Path):
    make_nsd(root, subjects=("subj01",), stim_info=False, fmt="nifti")
    return lambda: _load("nsd", root, trials_per_session=6, rois=("V1v",), subjects=[1])


def _bold(root: Path, h5: bool = False):
    make_bold5000(root, subjects=("CSI1",))
    if h5:
        _bold5000_h5(root)
    return lambda: _load("bold5000", root, subjects="CSI1", tr="3")


def _allen(root: Path):
    make_allen(root)
    return lambda: _load("allen", root, reliability_threshold=None)


def _majajhong(root: Path):
    make_majajhong(root)
    return lambda: _load("majajhong2015", root)


def _k92(root: Path, shared: Path):
    folder = shared / "data" / "kriegeskorte92"
    from brainrank.plugins.datasets import kriegeskorte2008 as k92

    if not (folder / k92.SUPPLEMENT).is_file():
        pytest.skip(f"the 92-image files are not in {folder}")
    for name in (k92.SUPPLEMENT, k92.BRAIN):
        shutil.copy(folder / name, root / name)
    return lambda: _load("kriegeskorte2008", root)


def _load(module: str, root: Path, **options):
    import importlib

    plugin = importlib.import_module(f"brainrank.plugins.datasets.{module}")
    dataset = plugin.build(root, **options)
    _use(dataset)
    return dataset


BETAS = "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"

CASES = {
    # name: (fixture, file to damage (a glob under the root))
    "nsd-betas-hdf5": (_nsd, f"{BETAS}/betas_session02.hdf5"),
    "nsd-betas-nifti": (_nsd_nifti, f"{BETAS}/betas_session02.nii.gz"),
    "nsd-ncsnr-nifti": (_nsd, f"{BETAS}/ncsnr.nii.gz"),
    "nsd-roi-nifti": (_nsd, "nsddata/ppdata/subj01/func1pt8mm/roi/prf-visualrois.nii.gz"),
    "nsd-design-mat": (_nsd, "nsddata/experiments/nsd/nsd_expdesign.mat"),
    "nsd-stimuli-hdf5": (_nsd, "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"),
    "bold5000-mat": (_bold, "ROIs/CSI1/mat/CSI1_ROIs_TR3.mat"),
    "bold5000-h5": (lambda root: _bold(root, h5=True), "ROIs/CSI1/h5/CSI1_ROIs_TR3.h5"),
    "allen-nwb": (_allen, "ophys_experiment_data/501.nwb"),
    "majajhong-netcdf": (_majajhong, "assy_dicarlo_MajajHong2015_public.nc"),
    "k92-brain-mat": (_k92, "92_brainRDMs.mat"),
    "k92-supplement-mat": (_k92, "Kriegeskorte_Neuron2008_supplementalData.mat"),
}


@pytest.mark.parametrize(
    "damage",
    [_truncate, _tail_cut, _head_only, _garbage],
    ids=["truncated", "tail-cut", "head-only", "garbage"],
)
@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_file_is_named_with_what_to_do(tmp_path, case, damage, request):
    make, pattern = CASES[case]
    # the 92-image files come from ../shared (the fixture skips cleanly when it is absent)
    shared = (request.getfixturevalue("shared_dir"),) if make is _k92 else ()
    load = make(tmp_path, *shared)
    load()  # the intact fixture reads
    targets = sorted(tmp_path.glob(pattern))
    assert targets, f"the fixture wrote no {pattern}"
    target = targets[0]
    damage(target)
    with pytest.raises((InputError, DataUnavailableError)) as caught:
        load()
    message = str(caught.value)
    assert target.name in message, message
    assert "brainrank data check" in message and "download" in message, message


# --- BOLD5000 arrays of the wrong type, an empty trial list --------------------------------


def _set_roi(root: Path, value) -> Path:
    import scipy.io

    path = root / "ROIs/CSI1/mat/CSI1_ROIs_TR3.mat"
    content = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    content["LHPPA"] = value(content["LHPPA"])
    scipy.io.savemat(path, content)
    return path


@pytest.mark.parametrize(
    "value, found",
    [
        (lambda v: v * 1j, "complex128"),
        (lambda v: np.full(v.shape, "x"), "<U1"),
        (lambda v: np.array([[np.zeros(2)] * v.shape[1]] * v.shape[0], dtype=object), "object"),
    ],
    ids=["complex", "text", "cells"],
)
def test_bold5000_arrays_of_the_wrong_type_name_file_and_dtypes(tmp_path, value, found):
    """Was: a raw ValueError (or complex values silently cast to their real part)."""
    load = _bold(tmp_path)
    path = _set_roi(tmp_path, value)
    with pytest.raises(InputError) as caught:
        load()
    message = str(caught.value)
    assert str(path) in message and "LHPPA" in message
    assert found in message and "float64" in message


def test_an_empty_bold5000_trial_list_is_named(tmp_path):
    """Was: ``TypeError: Cannot cast array data from dtype('float64') to dtype('int64')``."""
    load = _bold(tmp_path)
    trial_list = tmp_path / "ROIs/stim_lists/CSI01_stim_lists.txt"
    trial_list.write_text("\n")
    with pytest.raises(InputError) as caught:
        load()
    assert str(trial_list) in str(caught.value) and "no trials" in str(caught.value)
