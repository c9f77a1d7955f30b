"""NSD's voxels keep their volume: the func1pt8mm shape and affine per subject, and the
``nsd/nsdgeneral`` dataset (NSD's nsdgeneral mask as its one region)."""

from __future__ import annotations

import nibabel
import numpy as np
from dataset_fixtures import NSD_SHAPE, make_nsd

from brainrank.core.registry import get_registry
from brainrank.plugins.datasets import nsd


def test_volumes_and_the_nsdgeneral_region(tmp_path):
    root = tmp_path / "nsd"
    truth = make_nsd(root, fmt="nifti")
    # a real-looking affine (1.8 mm voxels, an origin) in every volume of subject 01
    affine = np.array([[-1.8, 0, 0, 72.0], [0, 1.8, 0, -93.6], [0, 0, 1.8, -74.7], [0, 0, 0, 1]])
    for path in (root / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"
                 / "ncsnr.nii.gz",):  # fmt: skip
        image = nibabel.load(path)
        nibabel.save(nibabel.Nifti1Image(np.asarray(image.dataobj), affine), path)
    spec = get_registry().get("dataset", nsd.NSDGENERAL)
    dataset = spec.load(data_dir=tmp_path, trials_per_session=6, subjects=(1, 2), cache=False)
    r = dataset.responses()
    assert dataset.identifier == "nsd/nsdgeneral"
    assert set(r["region"].values) == {"nsdgeneral"}
    volumes = dataset.info["volumes"]
    assert volumes["subj01"]["shape"] == list(NSD_SHAPE)
    np.testing.assert_allclose(volumes["subj01"]["affine"], affine)
    np.testing.assert_allclose(volumes["subj02"]["affine"], np.eye(4))
    for subject in ("subj01", "subj02"):
        own = r.sel(neuroid=r["subject"] == subject)
        general = truth["subjects"][subject]["rois"]["nsdgeneral"]
        ijk = np.stack([own[f"voxel_{a}"].values for a in "ijk"], axis=1)
        assert len(ijk) > 0 and (general[tuple(ijk.T)] == 1).all()
    # the default dataset gives the volumes too
    shared = nsd.build(root, trials_per_session=6, subjects=(1, 2), rois=("V1v",), cache=False)
    assert shared.info["volumes"] == volumes
