"""Tiny datasets written in the exact on-disk formats of the real releases.

Each ``make_*`` function writes one dataset under a folder and returns the ground truth the
tests compare the loaders with (the arrays as they were written, before any file format got
involved). The layouts follow ``shared/specs/datasets.md``.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------- NSD

NSD_SHAPE = (5, 4, 3)  # (X, Y, Z)
NSD_T = 6  # trials per session
NSD_SESSIONS = 3
NSD_SHARED = np.array([3, 7, 11, 15])  # 0-based NSD ids of the shared images
NSD_OWN = {"subj01": np.array([0, 1]), "subj02": np.array([5, 6])}
NSD_N_IMAGES = 20


def _nsd_rois(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """ROI volumes (X, Y, Z) with -1 outside cortex, 0 in no ROI, labels elsewhere."""
    shape = NSD_SHAPE
    prf = np.zeros(shape, dtype=np.int16)
    prf[0, :, :] = -1  # outside cortex
    prf[1, :2, :] = 1  # V1v: 6 voxels
    prf[1, 2:, :] = 2  # V1d: 6 voxels
    prf[2, :2, :2] = 7  # hV4: 4 voxels
    faces = np.zeros(shape, dtype=np.int16)
    faces[0] = -1
    faces[3, :, :2] = 2  # FFA-1: 8 voxels
    faces[1, 0, 0] = 2  # FFA-1 also holds one V1v voxel (overlap -> two neuroids)
    general = np.where(prf > 0, 1, 0).astype(np.int16)
    general[0] = -1
    general[3, :, :2] = 1
    out = {
        "prf-visualrois": prf,
        "floc-faces": faces,
        "nsdgeneral": general,
    }
    for atlas in ("floc-bodies", "floc-places", "floc-words", "streams"):
        empty = np.zeros(shape, dtype=np.int16)
        empty[0] = -1
        out[atlas] = empty
    out["floc-places"][4, :, :] = 2  # PPA
    return out


def make_nsd(
    root: Path,
    *,
    subjects=("subj01", "subj02"),
    fmt: str = "hdf5",
    seed: int = 0,
    stim_info: bool = True,
    ctab: bool = True,
    shared: np.ndarray | None = None,
    own: dict | None = None,
) -> dict:
    """Write an NSD folder; return the truth: per subject the betas (X, Y, Z, trials) of each
    session as int16 PSC x 300, the ROI volumes, ncsnr, the signal per image, and the design.

    By default 4 shared and 2 own images per subject in 3 sessions of 6 trials. With
    ``shared`` (0-based NSD ids) and/or ``own`` ({subject: ids}) a larger design is written:
    every image 3 times in a seeded random order, in as many 6-trial sessions as needed
    (``truth["n_sessions"]``)."""
    import h5py
    import nibabel as nib
    import scipy.io

    rng = np.random.default_rng(seed)
    custom = shared is not None or own is not None
    shared = NSD_SHARED if shared is None else np.asarray(shared)
    own = NSD_OWN if own is None else own
    n_own = len(next(iter(own.values())))
    n_columns = shared.size + n_own
    n_images = max(NSD_N_IMAGES, int(shared.max()) + 1, *(int(np.max(v)) + 1 for v in own.values()))
    if custom:
        masterordering = np.random.default_rng(seed + 1).permutation(
            np.repeat(np.arange(1, n_columns + 1), 3)
        )
        if masterordering.size % NSD_T:
            raise ValueError(f"3 x {n_columns} images do not fill sessions of {NSD_T} trials")
        n_sessions = masterordering.size // NSD_T
    else:
        # design: 18 trials, each of the 6 columns of subjectim 3 times (1-based); columns
        # 1 and 2 have all their repetitions in sessions 1-2
        masterordering = np.array([1, 2, 1, 5, 2, 3, 1, 2, 4, 6, 5, 3, 4, 6, 3, 4, 5, 6])
        n_sessions = NSD_SESSIONS
    n_trials = NSD_T * n_sessions
    subjectim = np.zeros((8, n_columns), dtype=np.int64)
    spare = np.arange(n_images, n_images + n_own)  # own images of the other subjects
    for s in range(8):
        default = np.array([18, 19]) if not custom else spare
        mine = own.get(f"subj{s + 1:02d}", default)
        subjectim[s] = np.concatenate([shared, mine]) + 1  # 1-based NSD ids
    n_images = max(n_images, int(subjectim.max()))
    sharedix = shared + 1
    design_dir = root / "nsddata/experiments/nsd"
    design_dir.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(
        design_dir / "nsd_expdesign.mat",
        {
            "masterordering": masterordering[None, :].astype(np.float64),
            "subjectim": subjectim.astype(np.float64),
            "sharedix": sharedix[None, :].astype(np.float64),
            "basiccnt": np.zeros((3, 40)),
            "stimpattern": np.zeros((40, 12, 75)),
        },
    )
    stim_dir = root / "nsddata_stimuli/stimuli/nsd"
    stim_dir.mkdir(parents=True, exist_ok=True)
    images = rng.integers(0, 256, (n_images, 8, 8, 3), dtype=np.uint8)
    with h5py.File(stim_dir / "nsd_stimuli.hdf5", "w") as f:
        f.create_dataset("imgBrick", data=images)

    truth = {"images": images, "masterordering": masterordering, "subjectim": subjectim,
             "subjects": {}}  # fmt: skip
    rois = _nsd_rois(rng)
    for subject in subjects:
        number = int(subject[4:])
        beta_dir = root / f"nsddata_betas/ppdata/{subject}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
        roi_dir = root / f"nsddata/ppdata/{subject}/func1pt8mm/roi"
        beta_dir.mkdir(parents=True, exist_ok=True)
        roi_dir.mkdir(parents=True, exist_ok=True)
        trial_images = subjectim[number - 1, masterordering - 1] - 1  # 0-based NSD ids
        signal = rng.normal(0, 1.0, (*NSD_SHAPE, n_images))
        brain = rois["prf-visualrois"] > 0
        brain |= rois["floc-faces"] > 0
        brain |= rois["floc-places"] > 0
        brain[2, 0, 0] = False  # an hV4 voxel outside the brain mask: betas all 0
        sessions = []
        for session in range(n_sessions):
            shown = trial_images[session * NSD_T : (session + 1) * NSD_T]
            offset = rng.normal(0, 3.0, NSD_SHAPE)[..., None]  # per-session drift
            psc = signal[..., shown] + 0.5 * rng.normal(size=(*NSD_SHAPE, NSD_T)) + offset
            vol = np.round(psc * 300).astype(np.int16)
            vol[~brain] = 0  # outside the brain mask: 0
            sessions.append(vol)
            name = f"betas_session{session + 1:02d}"
            if fmt in ("nifti", "both"):
                image = nib.Nifti1Image(vol, np.eye(4))
                image.header.set_data_dtype(np.int16)
                image.header.set_slope_inter(1.0, 0.0)
                nib.save(image, beta_dir / f"{name}.nii.gz")
            if fmt in ("hdf5", "both"):
                with h5py.File(beta_dir / f"{name}.hdf5", "w") as f:
                    f.create_dataset("betas", data=np.transpose(vol, (3, 2, 1, 0)))
        ncsnr = rng.uniform(0.4, 1.0, NSD_SHAPE).astype(np.float32)
        ncsnr[1, 0, 1] = np.nan  # a V1v voxel with NaN ncsnr
        ncsnr[1, 3, 2] = 0.05  # a V1d voxel below 0.2
        ncsnr[1, 2, 0] = 0.25  # a V1d voxel between DeepNSD's 0.2 and the paper's 1/3
        ncsnr[1, 0, 0] = 0.9  # the V1v/FFA-1 voxel is kept
        nib.save(nib.Nifti1Image(ncsnr, np.eye(4)), beta_dir / "ncsnr.nii.gz")
        for atlas, volume in rois.items():
            nib.save(
                nib.Nifti1Image(volume.astype(np.float32), np.eye(4)), roi_dir / f"{atlas}.nii.gz"
            )
        if ctab:
            label_dir = root / f"nsddata/freesurfer/{subject}/label"
            label_dir.mkdir(parents=True, exist_ok=True)
            (label_dir / "prf-visualrois.mgz.ctab").write_text(
                "0 Unknown\n1 V1v\t0 0 0 0\n2 V1d\n3 V2v\n4 V2d\n5 V3v\n6 V3d\n7 hV4\n"
            )
        truth["subjects"][subject] = {
            "sessions": sessions, "ncsnr": ncsnr, "rois": rois, "trial_images": trial_images,
            "signal": signal,
        }  # fmt: skip
    if stim_info:
        import pandas as pd

        rows = {"cocoId": np.arange(n_images) + 1000, "cocoSplit": ["train2017"] * n_images,
                "nsdId": np.arange(n_images),
                "shared1000": np.isin(np.arange(n_images), shared)}  # fmt: skip
        for s in range(1, 9):
            trial_images = subjectim[s - 1, masterordering - 1] - 1
            for rep in range(3):
                column = np.zeros(n_images, dtype=np.int64)
                for image in range(n_images):
                    where = np.flatnonzero(trial_images == image)
                    if where.size > rep:
                        column[image] = where[rep] + 1  # 1-based trial number
                rows[f"subject{s}_rep{rep}"] = column
        pd.DataFrame(rows).to_csv(design_dir / "nsd_stim_info_merged.csv")
    truth["n_trials"] = n_trials
    truth["n_sessions"] = n_sessions
    return truth


def nsd_expected(truth: dict, subject: str, images, voxel, zscore: bool = True) -> np.ndarray:
    """The averaged response of one voxel (i, j, k) to ``images`` computed straight from the
    written arrays: per-session z-score over trials, then the mean of the 3 repetitions."""
    sub = truth["subjects"][subject]
    series = []
    for vol in sub["sessions"]:
        x = vol[voxel].astype(np.float64) / 300.0
        if zscore:
            x = (x - x.mean()) / x.std()
        series.append(x)
    trials = np.concatenate(series)
    shown = sub["trial_images"]
    return np.array([trials[shown == image].mean() for image in images])


# --------------------------------------------------------------------------- helpers


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_file(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="JPEG", quality=95)


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def write_json(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


# --------------------------------------------------------------------------- BOLD5000

BOLD_IMAGES = [
    "COCO_train2014_000000420713.jpg",
    "n01930112_19568.JPEG",
    "concert5.jpg",
    "COCO_train2014_000000000009.jpg",
    "n02123045_1001.JPEG",
    "kitchen2.jpg",
]
BOLD_ROIS = ("EarlyVis", "LOC", "OPA", "PPA", "RSC")


def make_bold5000(
    root: Path, *, subjects=("CSI1", "CSI2", "CSI3"), seed: int = 0, nan_voxel: bool = True
) -> dict:
    """ROI .mat files (TR3, TR4, TR34), trial lists with rep_ lines, and the images."""
    import scipy.io

    rng = np.random.default_rng(seed)
    truth = {"subjects": {}, "images": {}}
    shared_signal = {roi: rng.normal(size=(len(BOLD_IMAGES), 3)) for roi in BOLD_ROIS}
    for n, subject in enumerate(subjects):
        order = list(rng.permutation(len(BOLD_IMAGES)))
        repeated = order[:3]
        trials = order + repeated  # 9 trials: 6 images + 3 repetitions
        lines = [BOLD_IMAGES[i] for i in order] + [f"rep_{BOLD_IMAGES[i]}" for i in repeated]
        lists = root / "ROIs/stim_lists"
        lists.mkdir(parents=True, exist_ok=True)
        (lists / f"CSI0{subject[3:]}_stim_lists.txt").write_text("\n".join(lines) + "\n")
        mats = {}
        for tr in ("3", "4"):
            content = {}
            for roi in BOLD_ROIS:
                for hemi in ("LH", "RH"):
                    k = 2 + (n + len(roi)) % 3  # 2-4 voxels
                    mix = rng.normal(size=(3, k))
                    values = shared_signal[roi][trials] @ mix + 0.3 * rng.normal(
                        size=(len(trials), k)
                    )
                    content[f"{hemi}{roi}"] = values
            mats[tr] = content
        if nan_voxel:
            mats["3"]["LHPPA"][4, 0] = np.nan
        mats["34"] = {key: (mats["3"][key] + mats["4"][key]) / 2 for key in mats["3"]}
        mat_dir = root / f"ROIs/{subject}/mat"
        mat_dir.mkdir(parents=True, exist_ok=True)
        for tr, content in mats.items():
            scipy.io.savemat(mat_dir / f"{subject}_ROIs_TR{tr}.mat", content)
        truth["subjects"][subject] = {"lines": lines, "mats": mats}
    base = root / "BOLD5000_Stimuli/Scene_Stimuli"
    for name in BOLD_IMAGES:
        source = (
            "COCO" if name.startswith("COCO") else "ImageNet" if name.startswith("n0") else "Scene"
        )
        # smooth images survive JPEG compression (random pixels would not)
        gy, gx = np.mgrid[0:12, 0:16]
        colour = rng.uniform(40, 200, 3)
        image = np.clip(colour + 3.0 * gx[..., None] - 2.0 * gy[..., None], 0, 255).astype(np.uint8)
        jpeg_file(base / "Presented_Stimuli" / source / name, image)
        truth["images"][name] = image
    (base / "repeated_stimuli_113_list.txt").write_text("\n".join(BOLD_IMAGES[:3]) + "\n")
    return truth


# --------------------------------------------------------------------------- Allen

ALLEN_SWEEP = 7  # frames per sweep


def write_allen_nwb(
    path: Path,
    *,
    cells,
    signal,
    n_images: int = 5,
    n_reps: int = 4,
    seed: int = 0,
    session_type: str = "three_session_B",
    genotype: str = "Cux2-CreERT2/Cux2-CreERT2;Camk2a-tTA/wt;Ai93(TITL-GCaMP6f)/wt",
    location: str = "VISp",
    depth: str = "175 microns",
    drop_sweep: bool = False,
) -> dict:
    """An NWB 1.x file at the paths AllenSDK reads; ``signal`` is (cells, n_images + 1) with
    the blank's response in the last column."""
    import h5py

    rng = np.random.default_rng(seed)
    conditions = np.repeat(np.arange(-1, n_images), n_reps)  # -1 = blank
    order = rng.permutation(conditions)
    if drop_sweep:  # one showing of an image is missing
        order = np.delete(order, np.flatnonzero(order >= 0)[0])
    n_sweeps = order.size
    start = 50 + ALLEN_SWEEP * np.arange(n_sweeps)
    end = start + ALLEN_SWEEP
    n_frames = int(end[-1] + 3 * ALLEN_SWEEP)
    cells = np.asarray(cells)
    dff = 0.05 * rng.normal(size=(cells.size, n_frames))
    for sweep, image in enumerate(order):
        column = image if image >= 0 else n_images
        dff[:, start[sweep] : start[sweep] + 2 * ALLEN_SWEEP] += signal[:, column][:, None]
    dff = dff.astype(np.float32)
    table_order = rng.permutation(n_sweeps)  # stored unsorted: the loader sorts by start
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        pipeline = "processing/brain_observatory_pipeline"
        f.create_dataset(f"{pipeline}/DfOverF/imaging_plane_1/data", data=dff)
        f.create_dataset(
            f"{pipeline}/DfOverF/imaging_plane_1/timestamps", data=np.arange(n_frames) / 30.0
        )
        f.create_dataset(
            f"{pipeline}/ImageSegmentation/cell_specimen_ids", data=cells.astype(np.int64)
        )
        f.create_dataset(
            f"{pipeline}/BehavioralTimeSeries/running_speed/data", data=np.zeros(n_frames)
        )
        stim = "stimulus/presentation/natural_scenes_stimulus"
        f.create_dataset(f"{stim}/data", data=order[table_order].astype(np.float64))
        f.create_dataset(
            f"{stim}/frame_duration",
            data=np.stack([start, end], axis=1)[table_order].astype(np.float64),
        )
        templates = rng.integers(0, 256, (n_images, 9, 12), dtype=np.uint8)
        f.create_dataset("stimulus/templates/natural_scenes_image_stack/data", data=templates)
        f.create_dataset("general/session_type", data=session_type.encode())
        f.create_dataset("general/subject/genotype", data=genotype.encode())
        f.create_dataset("general/optophysiology/imaging_plane_1/location", data=location.encode())
        f.create_dataset(
            "general/optophysiology/imaging_plane_1/imaging depth", data=depth.encode()
        )
    return {"dff": dff, "order": order, "start": start, "end": end, "templates": templates}


def make_allen(root: Path, seed: int = 0) -> dict:
    """Two natural-scenes experiments (VISp Cux2, VISl with one Sst cell), one session of
    another type, the cell table and the events file."""
    rng = np.random.default_rng(seed)
    truth = {}
    # experiment 1: cells 11 (reliable), 12 (pure noise), 13 (reliable, running modulated)
    signal1 = np.stack([rng.normal(0, 1, 6), np.zeros(6), rng.normal(0, 1, 6)])
    truth[501] = write_allen_nwb(root / "ophys_experiment_data/501.nwb", cells=[11, 12, 13],
                                 signal=signal1, seed=seed + 1)  # fmt: skip
    # experiment 2: cells 21 (reliable), 22 (reliable, Sst), 23 (reliable, not in the table)
    signal2 = rng.normal(0, 1, (3, 6))
    truth[502] = write_allen_nwb(root / "ophys_experiment_data/502.nwb", cells=[21, 22, 23],
                                 signal=signal2, seed=seed + 2, location="VISl",
                                 depth="275 microns")  # fmt: skip
    write_allen_nwb(root / "ophys_experiment_data/503.nwb", cells=[31], signal=np.ones((1, 6)),
                    session_type="three_session_A")  # fmt: skip
    import h5py

    with h5py.File(root / "ophys_experiment_data/503.nwb", "a") as f:
        del f["stimulus/presentation/natural_scenes_stimulus"]
    base = {"failed_experiment_container": False, "all_stim": True, "tld2_name": "Camk2a-tTA",
            "tlr1_name": "Ai93(TITL-GCaMP6f)", "p_ns": 0.001, "reliability_ns": 0.3}  # fmt: skip
    records = [
        {**base, "cell_specimen_id": 11, "experiment_container_id": 7001, "area": "VISp",
         "tld1_name": "Cux2-CreERT2", "imaging_depth": 175, "specimen_id": 1, "p_run_mod_ns": 0.6},
        {**base, "cell_specimen_id": 12, "experiment_container_id": 7001, "area": "VISp",
         "tld1_name": "Cux2-CreERT2", "imaging_depth": 175, "specimen_id": 1, "p_run_mod_ns": None},
        {**base, "cell_specimen_id": 13, "experiment_container_id": 7001, "area": "VISp",
         "tld1_name": "Cux2-CreERT2", "imaging_depth": 175, "specimen_id": 1, "p_run_mod_ns": 0.01},
        {**base, "cell_specimen_id": 21, "experiment_container_id": 7002, "area": "VISl",
         "tld1_name": "Rorb-IRES2-Cre", "imaging_depth": 275, "specimen_id": 2, "p_run_mod_ns": None},
        {**base, "cell_specimen_id": 22, "experiment_container_id": 7002, "area": "VISl",
         "tld1_name": "Sst-IRES-Cre", "imaging_depth": 275, "specimen_id": 2, "p_run_mod_ns": 0.9},
    ]  # fmt: skip
    write_json(root / "cell_specimens.json", records)
    events = root / "ophys_experiment_events"
    events.mkdir(parents=True, exist_ok=True)
    np.savez(events / "501_events.npz", ev=np.zeros((3, truth[501]["dff"].shape[1])))
    return truth


def allen_expected(truth: dict, cell_row: int, image: int) -> np.ndarray:
    """Per repetition, the mean dF/F over [start, start + 2 * sweep) of the sweeps of
    ``image`` in time order."""
    sweeps = np.flatnonzero(truth["order"] == image)
    return np.array(
        [truth["dff"][cell_row, truth["start"][s] : truth["start"][s] + 2 * ALLEN_SWEEP].mean()
         for s in sweeps]
    )  # fmt: skip


# --------------------------------------------------------------------------- MajajHong2015


def make_majajhong(
    root: Path, *, seed: int = 0, legacy: bool = True, n_reps: int = 4, per_variation: int = 4
) -> dict:
    """A brainio netCDF assembly (presentation x neuroid x time_bin, coordinates without
    index variables, legacy image_id), the stimulus CSV and a ZIP of PNGs, for both splits
    (variations 0 and 3 public, 6 private: one file holds all three, as the full HvM).
    ``per_variation`` images of each variation (4 objects in turn): 4 by default; 40 gives
    the 80 public images that Brain-Score's 10 stratified 90/10 splits need."""
    import pandas as pd
    import xarray as xr

    rng = np.random.default_rng(seed)
    variations = np.repeat([0, 3, 6], per_variation)  # 12 images by default
    n_images = variations.size
    image_ids = np.array([f"{h:040x}" for h in rng.integers(0, 2**62, n_images)])
    objects = np.resize(np.array(["car", "face", "apple", "dog"]), n_images)
    sites = [
        "Chabo_L_M_5_9",
        "Chabo_L_A_1_2",
        "Tito_L_M_8_0",
        "Tito_R_M_3_3",
        "Tito_L_P_1_1",
        "Chabo_L_M_2_2",
    ]
    regions = ["IT", "IT", "V4", "V4", "IT", "IT"]
    signal = rng.normal(size=(n_images, len(sites)))
    rows = []
    values = []
    for _ in range(n_reps):
        for i in range(n_images):
            rows.append(i)
            values.append(signal[i] + 0.5 * rng.normal(size=len(sites)))
    rows = np.array(rows)
    values = np.asarray(values, dtype=np.float32)
    values[3, 5] = np.nan  # one site with a missing value
    repetition = np.repeat(np.arange(n_reps), n_images)
    data = xr.DataArray(
        values[:, :, None],
        dims=("presentation", "neuroid", "time_bin"),
        coords={
            "image_id": ("presentation", image_ids[rows]),
            "repetition": ("presentation", repetition),
            "variation": ("presentation", variations[rows]),
            "object_name": ("presentation", objects[rows]),
            "category_name": ("presentation", objects[rows]),
            "neuroid_id": ("neuroid", sites),
            "region": ("neuroid", regions),
            "animal": ("neuroid", [s.split("_")[0] for s in sites]),
            "arr": ("neuroid", [s.split("_")[2] for s in sites]),
            "time_bin_start": ("time_bin", [70]),
            "time_bin_end": ("time_bin", [170]),
        },
        name="data",
        attrs={"identifier": "dicarlo.MajajHong2015", "stimulus_set_identifier": "dicarlo.hvm"},
    )
    pngs = {}
    for i, image_id in enumerate(image_ids):
        pngs[f"{objects[i]}_{image_id}_16x16.png"] = rng.integers(
            0, 256, (16, 16, 3), dtype=np.uint8
        )
    prefix = "image_" if legacy else "stimulus_"
    root.mkdir(parents=True, exist_ok=True)
    for split, kept in (("public", (0, 3)), ("private", (6,))):
        rows_kept = np.isin(variations[rows], kept)
        data.isel(
            presentation=np.flatnonzero(rows_kept) if split == "private" else slice(None)
        ).to_netcdf(root / f"assy_dicarlo_MajajHong2015_{split}.nc", engine="netcdf4")
        chosen = np.flatnonzero(np.isin(variations, kept))
        names = list(pngs)
        pd.DataFrame(
            {
                "image_id": image_ids[chosen],
                "object_name": objects[chosen],
                "category_name": objects[chosen],
                "variation": variations[chosen],
                "image_file_name": [names[i] for i in chosen],
            }
        ).to_csv(root / f"{prefix}dicarlo_hvm-{split}.csv", index=False)
        write_zip(
            root / f"{prefix}dicarlo_hvm-{split}.zip",
            {f"dicarlo_hvm-{split}/{names[i]}": png_bytes(pngs[names[i]]) for i in chosen},
        )
    return {"values": values, "rows": rows, "image_ids": image_ids, "sites": sites,
            "regions": regions, "variations": variations, "pngs": pngs, "repetition": repetition}  # fmt: skip
