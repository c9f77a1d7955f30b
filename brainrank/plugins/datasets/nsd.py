"""The Natural Scenes Dataset (NSD; Allen et al. 2022), read from its released files.

Identifiers
    ``nsd/shared1000``: the 1000 images every subject saw, subjects 01, 02, 05, 07 (the four
    who saw all their images 3 times), responses averaged over the 3 repetitions.
    ``nsd/generalisation:subjXX`` (XX in 01, 02, 05, 07): the generalisation test of
    Conwell et al. (2021, section 3.5 and appendix A.1) for one subject: its responses to
    the shared 1000 images *and* to 1000 of its own (non-shared) images that it saw 3 times
    (the first 1000 in the order of its row of ``subjectim``, which NSD drew at random), in
    one dataset over the same voxels. :meth:`NSDDataset.train_test_split` returns the
    shared images as training stimuli and the subject's own images as test stimuli, so a
    metric that fits on one set and scores on another (``versa:generalisation``) fits its
    weights on the shared images and applies them to the new ones, as the paper does (the
    layer is chosen on the shared images). Stimulus metadata column ``split``: ``train`` /
    ``test``.

Files (under ``<data_dir>/nsd``, the layout of the public bucket
``s3://natural-scenes-dataset``)::

    nsddata/experiments/nsd/nsd_expdesign.mat
    nsddata/experiments/nsd/nsd_stim_info_merged.csv            (optional cross-check)
    nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5
    nsddata_betas/ppdata/subjXX/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_sessionNN.hdf5
        (or .nii.gz), ncsnr.nii.gz
    nsddata/ppdata/subjXX/func1pt8mm/roi/<atlas>.nii.gz
    nsddata/freesurfer/subjXX/label/<atlas>.mgz.ctab             (optional label tables)

How it is read (as the reference pipelines do)
    - trial t (0-based, global) of subject s shows the image with 0-based NSD id
      ``subjectim[s-1, masterordering[t]-1] - 1`` (both tables are 1-based); session k holds
      trials ``(k-1)*750 .. k*750-1`` in order;
    - betas are int16 percent signal change x 300 (divided by 300 here); the HDF5 files
      store ``(750, Z, Y, X)``, the NIfTI files and every ROI/ncsnr volume ``(X, Y, Z)``;
    - each voxel is z-scored over the 750 trials of each session, then the 3 repetitions of
      every image are averaged;
    - voxels: the union of the selected ROIs, minus voxels whose ncsnr is NaN or whose betas
      are constant in a session (outside the brain mask), each dropped with a count; then
      the reliability selection:
      ``selection="ncsnr"`` (default): ncsnr >= 1/3, the paper's threshold. Conwell et al.
      (2021, appendix A.1) keep voxels whose mean pairwise single-trial correlation (over
      the 3 pairs of repetitions, on 1000 images independent of the analysed ones)
      exceeds r = 0.1. With NSD's ncsnr = signal SD / noise SD of a single trial, two
      repetitions correlate by r = ncsnr^2 / (ncsnr^2 + 1), so r > 0.1 <=> ncsnr^2 > 0.1 /
      0.9 = 1/9 <=> ncsnr > 1/3 = 0.333 (NSD's ncsnr is estimated from every repetition of
      every image, a larger and more precise sample than the paper's 1000 images);
      ``selection="ncsnr-deepnsd"``: ncsnr >= 0.2, the looser threshold of the later DeepNSD
      code (``ncsnr_threshold=0.2`` in ``load_NSD_benchmark_ROI_metadata``,
      ColinConwell/DeepNSD ``source_code/pressures/brain_data/nsd_parser.py``), which keeps
      voxels down to a single-trial r of 0.04 / 1.04 = 0.038;
      ``selection="single-trial"``: the paper's procedure itself: per voxel, the mean of
      the Pearson r between single repetitions (rep1-rep2, rep2-rep3, rep1-rep3; z-scored
      per session, no Spearman-Brown) over ``reliability_images`` (default 1000) of the
      subject's own images seen 3 times that are neither shared nor among its first
      ``n_images`` own images (the generalisation images), kept when >= 0.1 (coordinate
      ``single_trial_r``). Both NSD datasets of a subject then select the same voxels;
      ``selection="split-half"``: split-half reliability of the 3-trial mean >= 0.1, the
      mean over the 3 leave-one-repetition-out splits of r(mean of two, third),
      Spearman-Brown corrected (factor 2), computed on the analysed images themselves;
      ``selection=None`` keeps every voxel. ``threshold`` overrides the default of the
      chosen selection;
    - ROIs (``rois``): names from the label tables of prf-visualrois (V1v, V1d, V2v, V2d,
      V3v, V3d, hV4), floc-faces (OFA, FFA-1, FFA-2, mTL-faces, aTL-faces), floc-bodies
      (EBA, FBA-1, FBA-2, mTL-bodies), floc-places (OPA, PPA, RSC), floc-words (OWFA,
      VWFA-1, VWFA-2, mfs-words, mTL-words), streams (early, midventral, midlateral,
      midparietal, ventral, lateral, parietal) and nsdgeneral, plus the unions V1, V2, V3,
      FFA, FBA and VWFA. Default: the 7 retinotopic and the 9 face, body and place ROIs
      (V1v ... hV4, OFA, FFA-1, FFA-2, EBA, FBA-1, FBA-2, OPA, PPA, RSC). A voxel in several
      selected ROIs is one neuroid per ROI.

Cache
    Reading the betas is slow (each 40-session subject has about 40 GB of them), so the
    processed responses are cached in ``<cache_dir>/datasets/`` under a key made of the
    options and the size and modification time of every file read; ``cache=False`` skips it.

Ceilings
    - per voxel, the ncsnr noise ceiling of the 3-trial mean, ``ncsnr^2 / (ncsnr^2 + 1/3)``
      (fraction of variance; coordinate ``noise_ceiling``): :meth:`neuroid_reliability`, and
      ``ceiling("encoding")`` = mean over the ROI's voxels of its square root (the Pearson r
      a perfect model reaches);
    - ``ceiling("rsa")`` (shared1000): the inter-subject RDM correlation per ROI, Pearson r
      between a subject's RDM and the pooled RDM of the other subjects.

Terms: NSD's data are free to use after agreeing to its Terms and Conditions
(https://naturalscenesdataset.org); the images are from Microsoft COCO (their own terms).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.data.files import DatasetFactory, DataSource, RemoteFile, require
from brainrank.plugin import (
    DatasetMetadata,
    DatasetSpec,
    DataUnavailableError,
    InputError,
    StimulusSet,
    hookimpl,
    make_responses,
)
from brainrank.plugins.datasets._common import (
    RealDataset,
    file_stamp,
    format_counts,
    intersubject_rdm_ceiling,
    load_processed,
    parse_subjects,
    processed_cache_path,
    save_processed,
)

log = logging.getLogger("brainrank.datasets.nsd")

FOLDER = "nsd"
BUCKET_URL = "https://natural-scenes-dataset.s3.amazonaws.com"
SESSIONS = {1: 40, 2: 40, 3: 32, 4: 30, 5: 40, 6: 32, 7: 40, 8: 30}
COMPLETE_SUBJECTS = ("subj01", "subj02", "subj05", "subj07")
ALL_SUBJECTS = tuple(f"subj{s:02d}" for s in SESSIONS)
TRIALS_PER_SESSION = 750
N_REPETITIONS = 3
BETA_SCALE = 300.0
#: the paper's single-trial r > 0.1, as ncsnr: sqrt(0.1 / (1 - 0.1)) = 1/3 (module docstring)
PAPER_NCSNR = float(np.sqrt(0.1 / 0.9))
DEFAULT_THRESHOLDS = {
    "ncsnr": PAPER_NCSNR, "ncsnr-deepnsd": 0.2, "single-trial": 0.1, "split-half": 0.1,
}  # fmt: skip
SELECTIONS = ("ncsnr", "ncsnr-deepnsd", "single-trial", "split-half")
#: bump when the processing changes: cached processed responses are then rebuilt
CACHE_VERSION = 2

EXPDESIGN = "nsddata/experiments/nsd/nsd_expdesign.mat"
STIM_INFO = "nsddata/experiments/nsd/nsd_stim_info_merged.csv"
STIMULI = "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
BETAS_DIR = "nsddata_betas/ppdata/{subject}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
ROI_DIR = "nsddata/ppdata/{subject}/func1pt8mm/roi"
CTAB_DIR = "nsddata/freesurfer/{subject}/label"

#: label tables (value -> name) used when the .mgz.ctab files are absent
ATLASES: dict[str, dict[int, str]] = {
    "prf-visualrois": {1: "V1v", 2: "V1d", 3: "V2v", 4: "V2d", 5: "V3v", 6: "V3d", 7: "hV4"},
    "floc-faces": {1: "OFA", 2: "FFA-1", 3: "FFA-2", 4: "mTL-faces", 5: "aTL-faces"},
    "floc-bodies": {1: "EBA", 2: "FBA-1", 3: "FBA-2", 4: "mTL-bodies"},
    "floc-places": {1: "OPA", 2: "PPA", 3: "RSC"},
    "floc-words": {1: "OWFA", 2: "VWFA-1", 3: "VWFA-2", 4: "mfs-words", 5: "mTL-words"},
    "streams": {
        1: "early",
        2: "midventral",
        3: "midlateral",
        4: "midparietal",
        5: "ventral",
        6: "lateral",
        7: "parietal",
    },
    "nsdgeneral": {1: "nsdgeneral"},
}
UNIONS = {
    "V1": ("V1v", "V1d"),
    "V2": ("V2v", "V2d"),
    "V3": ("V3v", "V3d"),
    "FFA": ("FFA-1", "FFA-2"),
    "FBA": ("FBA-1", "FBA-2"),
    "VWFA": ("VWFA-1", "VWFA-2"),
}
DEFAULT_ROIS = (
    "V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4",
    "OFA", "FFA-1", "FFA-2", "EBA", "FBA-1", "FBA-2", "OPA", "PPA", "RSC",
)  # fmt: skip

CITATION = (
    "Allen EJ, St-Yves G, Wu Y, et al. (2022) A massive 7T fMRI dataset to bridge cognitive "
    "neuroscience and artificial intelligence. Nature Neuroscience 25:116-126. Selection and "
    "averaging as in Conwell C, Prince JS, Alvarez GA, Konkle T (2021/2024), 'What can 5.17 "
    "billion regression fits tell us about artificial models of the human visual system?'"
)
LICENCE = (
    "NSD Terms and Conditions (free use after agreeing to them at "
    "https://naturalscenesdataset.org; cite the paper); images from Microsoft COCO under "
    "their own terms."
)
TERMS = (
    "The Natural Scenes Dataset may be used after agreeing to its Terms and Conditions: "
    "https://naturalscenesdataset.org (data access form). By downloading you confirm that "
    "you have done so."
)


def subject_name(value: Any) -> str:
    """``1``, ``"1"``, ``"01"``, ``"subj01"`` -> ``"subj01"``."""
    text = str(value).strip().lower()
    match = re.fullmatch(r"(?:subj)?0*(\d+)", text)
    if not match:
        raise InputError(f"cannot read NSD subject {value!r}; use 1..8 or 'subj01'.")
    return f"subj{int(match.group(1)):02d}"


# --------------------------------------------------------------------------- files


def betas_path(subject: str, session: int, fmt: str) -> str:
    ext = "hdf5" if fmt == "hdf5" else "nii.gz"
    return f"{BETAS_DIR.format(subject=subject)}/betas_session{session:02d}.{ext}"


def _present_format(root: Path, subject: str) -> str:
    if (root / betas_path(subject, 1, "nifti")).is_file() and not (
        root / betas_path(subject, 1, "hdf5")
    ).is_file():
        return "nifti"
    return "hdf5"


def _url(path: str) -> tuple[str, ...]:
    return (f"{BUCKET_URL}/{path}",)


def files(root: Path, subjects: Any = None, fmt: str | None = None) -> list[RemoteFile]:
    subjects = (
        COMPLETE_SUBJECTS
        if subjects is None
        else parse_subjects(subjects, ALL_SUBJECTS, subject_name)
    )
    out = [
        RemoteFile(EXPDESIGN, _url(EXPDESIGN), description="trial design (1-based tables)"),
        RemoteFile(STIM_INFO, _url(STIM_INFO), description="image table", optional=True),
        RemoteFile(STIMULI, _url(STIMULI), description="73,000 images, uint8 (37 GB)"),
    ]
    for subject in subjects:
        number = int(subject[4:])
        chosen = fmt or _present_format(root, subject)
        for session in range(1, SESSIONS[number] + 1):
            path = betas_path(subject, session, chosen)
            out.append(RemoteFile(path, _url(path), description="single-trial betas"))
        ncsnr = f"{BETAS_DIR.format(subject=subject)}/ncsnr.nii.gz"
        out.append(RemoteFile(ncsnr, _url(ncsnr), description="noise-ceiling SNR per voxel"))
        for atlas in ATLASES:
            roi = f"{ROI_DIR.format(subject=subject)}/{atlas}.nii.gz"
            out.append(RemoteFile(roi, _url(roi), description="ROI volume"))
            ctab = f"{CTAB_DIR.format(subject=subject)}/{atlas}.mgz.ctab"
            out.append(RemoteFile(ctab, _url(ctab), description="label table", optional=True))
    return out


SOURCE = DataSource(
    folder=FOLDER,
    files=files,
    terms=TERMS,
    subjects_help="NSD subjects 1..8 (default 1 2 5 7)",
)


# --------------------------------------------------------------------------- design


@dataclass
class Design:
    masterordering: np.ndarray  # (n_trials,), 1-based columns of subjectim
    subjectim: np.ndarray  # (8, n_images_per_subject), 1-based NSD ids
    sharedix: np.ndarray  # (n_shared,), 1-based NSD ids

    def trial_images(self, subject: int, n_trials: int) -> np.ndarray:
        """0-based NSD id shown on each of the first ``n_trials`` trials of ``subject``."""
        columns = self.masterordering[:n_trials] - 1
        return self.subjectim[subject - 1, columns] - 1


def read_design(root: Path) -> Design:
    from brainrank.data.readers import load_mat

    path = root / EXPDESIGN
    content = load_mat(path, "NSD design file")
    missing = [k for k in ("masterordering", "subjectim", "sharedix") if k not in content]
    if missing:
        raise InputError(
            f"{path} lacks {missing} (it has {sorted(content)}); is it nsd_expdesign.mat?"
        )
    order = np.asarray(content["masterordering"]).ravel().astype(np.int64)
    subjectim = np.atleast_2d(np.asarray(content["subjectim"])).astype(np.int64)
    shared = np.asarray(content["sharedix"]).ravel().astype(np.int64)
    if order.size == 0 or order.min() < 1 or order.max() > subjectim.shape[1]:
        raise InputError(
            f"masterordering in {path} holds values {order.min()}..{order.max()}, but they are "
            f"1-based columns of subjectim, which has {subjectim.shape[1]} columns."
        )
    if subjectim.min() < 1 or shared.size == 0 or shared.min() < 1:
        raise InputError(f"subjectim and sharedix in {path} must hold 1-based NSD ids (>= 1).")
    return Design(order, subjectim, shared)


def _sessions_of(subject: str, design: Design, trials_per_session: int, sessions: Any) -> int:
    if sessions is not None:
        return int(sessions)
    return min(SESSIONS[int(subject[4:])], design.masterordering.size // trials_per_session)


def _occurrences(trial_images: np.ndarray, wanted: np.ndarray) -> dict[int, list[int]]:
    """Global trial indices at which each wanted image was shown, in order."""
    wanted_set = set(int(w) for w in wanted)
    out: dict[int, list[int]] = {int(w): [] for w in wanted}
    for t, image in enumerate(trial_images.tolist()):
        if image in wanted_set:
            out[image].append(t)
    return out


# --------------------------------------------------------------------------- volumes


def _read_ctab(path: Path) -> dict[int, str]:
    from brainrank.data.readers import read_lines

    table = {}
    for line in read_lines(path, "label table"):
        parts = line.split()[:2]
        if len(parts) == 2 and parts[0].lstrip("-").isdigit():
            table[int(parts[0])] = parts[1]
    return table


def label_table(root: Path, subject: str, atlas: str) -> dict[int, str]:
    ctab = root / CTAB_DIR.format(subject=subject) / f"{atlas}.mgz.ctab"
    if ctab.is_file():
        table = {k: v for k, v in _read_ctab(ctab).items() if k > 0}
        if table:
            return table
    return dict(ATLASES[atlas])


def resolve_rois(rois: Any, root: Path, subject: str) -> dict[str, list[tuple[str, int]]]:
    """ROI name -> [(atlas, label value), ...] from the label tables."""
    if isinstance(rois, str):
        rois = [rois]
    names: dict[str, tuple[str, int]] = {}
    for atlas in ATLASES:
        for value, name in label_table(root, subject, atlas).items():
            names.setdefault(name, (atlas, value))
    out = {}
    for roi in rois:
        parts = UNIONS.get(roi, (roi,))
        unknown = [p for p in parts if p not in names]
        if unknown:
            known = sorted(names) + sorted(UNIONS)
            raise InputError(f"unknown NSD ROI {roi!r}; known ROIs: {', '.join(known)}.")
        out[roi] = [names[p] for p in parts]
    return out


def _volume_int(path: Path, what: str) -> np.ndarray:
    from brainrank.data.readers import Nifti

    data = Nifti(path, what).data()
    return np.rint(np.asarray(data, dtype=np.float64)).astype(np.int64)


# --------------------------------------------------------------------------- betas


def _read_session(
    path: Path, fmt: str, voxels: tuple[np.ndarray, np.ndarray, np.ndarray],
    volume_shape: tuple[int, int, int], trials: int,
) -> np.ndarray:  # fmt: skip
    """Betas of one session at the given voxels, ``(trials, n_voxels)`` float32 in percent
    signal change."""
    i, j, k = voxels
    x, y, z = volume_shape
    if fmt == "hdf5":
        from brainrank.data.readers import hdf5_dataset, open_hdf5, read_hdf5

        with open_hdf5(path, "NSD betas file") as handle:
            ds = hdf5_dataset(handle, "betas", path)
            expected = (trials, z, y, x)
            if tuple(ds.shape) != expected:
                raise InputError(
                    f"{path} holds betas of shape {tuple(ds.shape)}, but (trials, Z, Y, X) = "
                    f"{expected} was expected from the ROI volumes of shape (X, Y, Z) = "
                    f"{volume_shape} and {trials} trials per session (HDF5 stores the axes in "
                    "reverse order). Do the betas and the ROI files belong to the same subject "
                    "and resolution (func1pt8mm)?"
                )
            flat = (k * y + j) * x + i
            out = np.empty((trials, flat.size), dtype=np.float32)
            block = max(1, int(2**27 // max(1, x * y * z * 2)))  # ~128 MB of int16 per read
            for start in range(0, trials, block):
                stop = min(trials, start + block)
                chunk = read_hdf5(ds, np.s_[start:stop], path).reshape(stop - start, -1)
                out[start:stop] = chunk[:, flat]
    else:
        from brainrank.data.readers import Nifti

        image = Nifti(path, "NSD betas file")
        expected = (*volume_shape, trials)
        if image.shape != expected:
            raise InputError(
                f"{path} holds betas of shape {image.shape}, but (X, Y, Z, trials) = {expected} "
                f"was expected from the ROI volumes and {trials} trials per session. Do the "
                "betas and the ROI files belong to the same subject and resolution?"
            )
        out = np.ascontiguousarray(image.data()[i, j, k, :].T, dtype=np.float32)
    out /= BETA_SCALE
    return out


def _zscore(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-score columns; returns ``(z, constant)`` with constant columns flagged (set to 0)."""
    mean = block.mean(axis=0, dtype=np.float64)
    sd = block.std(axis=0, dtype=np.float64)
    constant = ~(sd > 0) | ~np.isfinite(sd)
    sd[constant] = 1.0
    z = ((block - mean) / sd).astype(np.float32)
    z[:, constant] = 0.0
    return z, constant


def single_trial_r(reps: np.ndarray) -> np.ndarray:
    """The paper's voxel reliability from ``(n_images, 3, n_voxels)`` single trials: the mean
    of r(rep1, rep2), r(rep2, rep3), r(rep1, rep3) over images (no Spearman-Brown)."""
    from brainrank.core.stats import pearson_columns

    n_reps = reps.shape[1]
    pairs = [(a, b) for a in range(n_reps) for b in range(a + 1, n_reps)]
    return np.mean([pearson_columns(reps[:, a], reps[:, b]) for a, b in pairs], axis=0)


def split_half(reps: np.ndarray) -> np.ndarray:
    """Reliability of the 3-repetition mean from ``(n_images, 3, n_voxels)``: the mean over the
    3 leave-one-out splits of r(mean of two repetitions, the third), Spearman-Brown corrected
    with factor 2."""
    from brainrank.core.stats import pearson_columns, spearman_brown

    n_reps = reps.shape[1]
    rs = []
    for left in range(n_reps):
        keep = [r for r in range(n_reps) if r != left]
        rs.append(pearson_columns(reps[:, keep].mean(axis=1), reps[:, left]))
    return spearman_brown(np.mean(rs, axis=0))


# --------------------------------------------------------------------------- loading


@dataclass
class _Subject:
    name: str
    images: np.ndarray  # 0-based NSD ids, in stimulus order
    averaged: np.ndarray  # (n_images, n_kept_voxels)
    voxels: np.ndarray  # (n_kept, 3) NIfTI indices
    ncsnr: np.ndarray
    reliability: np.ndarray | None
    regions: dict[str, np.ndarray]  # ROI -> positions among kept voxels
    counts: dict[str, int]


def _target_images(
    design: Design, subject: str, split: str, n_images: int, trial_images: np.ndarray
) -> np.ndarray:
    shared = design.sharedix - 1
    if split == "shared1000":
        return shared
    own = design.subjectim[int(subject[4:]) - 1] - 1
    own = own[~np.isin(own, shared)]
    counts = dict(zip(*np.unique(trial_images, return_counts=True), strict=True))
    complete = np.array([img for img in own if counts.get(int(img), 0) >= N_REPETITIONS])
    if complete.size < n_images:
        log.warning(
            "%s saw only %d non-shared images %d times in the available sessions; using them all",
            subject, complete.size, N_REPETITIONS,
        )  # fmt: skip
    # training stimuli (the shared images) first, then the subject's own test images
    return np.concatenate([shared, complete[:n_images]]).astype(np.int64)


def _independent_images(
    design: Design, subject: str, n_images: int, n_independent: int, trial_images: np.ndarray
) -> np.ndarray:
    """The paper's reliability images: own (non-shared) images seen 3 times that are neither
    shared nor among the subject's ``n_images`` generalisation images (the next
    ``n_independent`` in the order of ``subjectim``)."""
    shared = design.sharedix - 1
    own = design.subjectim[int(subject[4:]) - 1] - 1
    own = own[~np.isin(own, shared)]
    counts = dict(zip(*np.unique(trial_images, return_counts=True), strict=True))
    complete = np.array([img for img in own if counts.get(int(img), 0) >= N_REPETITIONS])
    chosen = complete[n_images : n_images + n_independent].astype(np.int64)
    if chosen.size < 3:
        raise InputError(
            f"selection='single-trial' needs images of NSD {subject} seen {N_REPETITIONS} times "
            f"that are neither shared nor among its first {n_images} own images (the "
            f"generalisation images); only {chosen.size} are available in the session files "
            "present. Download more sessions, lower n_images, or use selection='ncsnr' (the "
            "same threshold, as ncsnr >= 1/3)."
        )
    if chosen.size < n_independent:
        log.warning(
            "%s: the single-trial reliability uses %d independent images (asked for %d)",
            subject, chosen.size, n_independent,
        )  # fmt: skip
    return chosen


def _plan_subject(
    root: Path, design: Design, subject: str, split: str, n_images: int,
    trials_per_session: int, sessions: Any, fmt: str, n_independent: int = 0,
) -> tuple[np.ndarray, dict[int, list[int]], list[int], list[int], str, np.ndarray]:  # fmt: skip
    """Which images (and independent reliability images), at which trials, in which session
    files."""
    n_sessions = _sessions_of(subject, design, trials_per_session, sessions)
    if n_sessions < 1:
        raise InputError(
            f"nsd_expdesign.mat has {design.masterordering.size} trials, fewer than one session "
            f"of {trials_per_session}."
        )
    chosen = fmt if fmt != "auto" else _present_format(root, subject)
    present = [
        s for s in range(1, n_sessions + 1) if (root / betas_path(subject, s, chosen)).is_file()
    ]
    missing_sessions = [s for s in range(1, n_sessions + 1) if s not in present]
    trial_images = design.trial_images(int(subject[4:]), n_sessions * trials_per_session)
    present_trials = np.zeros(trial_images.size, dtype=bool)
    for s in present:
        present_trials[(s - 1) * trials_per_session : s * trials_per_session] = True
    usable = np.where(present_trials, trial_images, -1)
    images = _target_images(design, subject, split, n_images, usable)
    independent = (
        _independent_images(design, subject, n_images, n_independent, usable)
        if n_independent
        else np.zeros(0, dtype=np.int64)
    )
    occurrences = _occurrences(usable, np.concatenate([images, independent]))
    return images, occurrences, present, missing_sessions, chosen, independent


def _incomplete_message(
    root: Path, subject: str, incomplete: list[int], n_images: int, missing: list[int], fmt: str
) -> str:
    text = (
        f"NSD {subject} lacks some of the {N_REPETITIONS} repetitions of {len(incomplete)} of "
        f"the {n_images} images (0-based NSD ids e.g. {incomplete[:5]}). "
    )
    if missing:
        folder = root / BETAS_DIR.format(subject=subject)
        names = ", ".join(Path(betas_path(subject, s, fmt)).name for s in missing[:6])
        more = f" and {len(missing) - 6} more" if len(missing) > 6 else ""
        text += (
            f"{len(missing)} session files are missing from {folder} ({names}{more}): "
            f"download them (`brainrank data download nsd/shared1000 --subjects "
            f"{int(subject[4:])}`), or "
        )
    else:
        text += "This subject did not see them 3 times in the experiment. Choose subjects 1, 2, 5, 7, or "
    return (
        text + "pass missing_repetitions='drop' to keep only the images every subject saw 3 times."
    )


def _load_subject(
    root: Path, subject: str, images: np.ndarray, occurrences: dict[int, list[int]],
    fmt: str, rois: Any, selection: str | None, threshold: float, trials_per_session: int,
    zscore: bool, independent: np.ndarray | None = None,
) -> _Subject:  # fmt: skip
    from brainrank.data.readers import Nifti

    beta_dir = root / BETAS_DIR.format(subject=subject)
    roi_dir = root / ROI_DIR.format(subject=subject)
    roi_map = resolve_rois(rois, root, subject)
    atlases = sorted({atlas for parts in roi_map.values() for atlas, _ in parts})
    volumes = {a: _volume_int(roi_dir / f"{a}.nii.gz", f"NSD ROI volume ({a})") for a in atlases}
    ncsnr_volume = Nifti(beta_dir / "ncsnr.nii.gz", "NSD ncsnr volume").data(np.float64)
    shapes = {f"{a}.nii.gz": v.shape for a, v in volumes.items()}
    shapes["ncsnr.nii.gz"] = ncsnr_volume.shape
    if len(set(shapes.values())) != 1 or len(ncsnr_volume.shape) != 3:
        raise InputError(
            f"the volumes of NSD {subject} disagree in shape: "
            + ", ".join(f"{k} {v}" for k, v in shapes.items())
            + f" (in {roi_dir} and {beta_dir}); every ROI and ncsnr volume must be (X, Y, Z) "
            "of the same func1pt8mm space."
        )
    volume_shape = ncsnr_volume.shape
    masks = {}
    for roi, parts in roi_map.items():
        mask = np.zeros(volume_shape, dtype=bool)
        for atlas, value in parts:
            mask |= volumes[atlas] == value
        masks[roi] = mask
    union = np.zeros(volume_shape, dtype=bool)
    for mask in masks.values():
        union |= mask
    counts = {"in ROIs": int(union.sum())}
    nan_ncsnr = union & ~np.isfinite(ncsnr_volume)
    counts["NaN ncsnr"] = int(nan_ncsnr.sum())
    candidate = union & ~nan_ncsnr
    voxels = np.nonzero(candidate)  # NIfTI (i, j, k) in C order
    n_vox = voxels[0].size
    if n_vox == 0:
        raise InputError(
            f"the ROIs {list(roi_map)} contain no voxel with a finite ncsnr in NSD {subject}; "
            f"check the ROI files in {roi_dir}."
        )
    # which trials of which session feed which (image, repetition); the independent
    # reliability images (selection="single-trial") follow the dataset's images
    n_main = images.size
    if independent is not None and independent.size:
        images = np.concatenate([images, independent])
    position = {int(img): n for n, img in enumerate(images)}
    by_session: dict[int, list[tuple[int, int, int]]] = {}
    for img in images.tolist():
        for rep, t in enumerate(occurrences[img][:N_REPETITIONS]):
            session = t // trials_per_session + 1
            by_session.setdefault(session, []).append((t % trials_per_session, position[img], rep))
    reps = np.zeros((images.size, N_REPETITIONS, n_vox), dtype=np.float32)
    bad = np.zeros(n_vox, dtype=bool)
    for session in sorted(by_session):
        path = root / betas_path(subject, session, fmt)
        block = _read_session(path, fmt, voxels, volume_shape, trials_per_session)
        finite = np.isfinite(block).all(axis=0)
        bad |= ~finite
        block[:, ~finite] = 0.0
        if zscore:
            block, constant = _zscore(block)
            bad |= constant
        rows = np.array(by_session[session])
        reps[rows[:, 1], rows[:, 2]] = block[rows[:, 0]]
    counts["constant or non-finite betas"] = int(bad.sum())
    independent_reps, reps, images = reps[n_main:], reps[:n_main], images[:n_main]
    keep = ~bad
    ncsnr = ncsnr_volume[voxels]
    reliability = None
    if selection == "single-trial":
        reliability = single_trial_r(independent_reps)
    elif selection == "split-half" or selection is None:
        reliability = split_half(reps)
    if selection in ("ncsnr", "ncsnr-deepnsd"):
        selected = ncsnr >= threshold
    elif selection in ("split-half", "single-trial"):
        selected = np.nan_to_num(reliability, nan=-np.inf) >= threshold
    else:
        selected = np.ones(n_vox, dtype=bool)
    counts["below threshold"] = int((keep & ~selected).sum())
    keep &= selected
    counts["kept"] = int(keep.sum())
    kept_voxels = np.stack(voxels, axis=1)[keep]
    averaged = reps[:, :, keep].mean(axis=1)
    regions = {}
    for roi, mask in masks.items():
        regions[roi] = np.flatnonzero(mask[tuple(kept_voxels.T)])
    return _Subject(
        name=subject,
        images=images,
        averaged=averaged,
        voxels=kept_voxels,
        ncsnr=ncsnr[keep],
        reliability=None if reliability is None else reliability[keep],
        regions=regions,
        counts=counts,
    )


def _stimulus_set(
    root: Path, identifier: str, images: np.ndarray, stim_info: Any,
    shared: np.ndarray | None = None,
) -> StimulusSet:  # fmt: skip
    import pandas as pd

    from brainrank.data.readers import hdf5_dataset, open_hdf5, read_hdf5

    path = root / STIMULI
    with open_hdf5(path, "NSD stimulus file") as handle:
        brick = hdf5_dataset(handle, "imgBrick", path)
        shape = tuple(brick.shape)
    if len(shape) != 4 or shape[3] != 3:
        raise InputError(f"imgBrick in {path} has shape {shape}; expected (n_images, H, W, 3).")
    if images.max() >= shape[0]:
        raise InputError(
            f"the design refers to NSD id {int(images.max())} (0-based), but imgBrick in {path} "
            f"holds only {shape[0]} images: the stimulus ids do not match the stimulus file."
        )
    ids = [f"nsd{int(i):05d}" for i in images]
    index = dict(zip(ids, images.tolist(), strict=True))

    def load(stimulus_id: str) -> np.ndarray:
        with open_hdf5(path, "NSD stimulus file") as handle:
            return read_hdf5(handle["imgBrick"], index[stimulus_id], path)

    meta = pd.DataFrame({"nsd_id": images}, index=pd.Index(ids, name="stimulus_id"))
    if shared is not None:  # the generalisation split: shared images train, own images test
        meta["split"] = np.where(np.isin(images, shared), "train", "test")
    if stim_info is not None:
        info = stim_info.set_index("nsdId").reindex(images)
        for column in ("cocoId", "cocoSplit"):
            if column in info:
                meta[column] = info[column].to_numpy()
    content = f"{path.name}:{path.stat().st_size}:{shape}"
    return StimulusSet(identifier, ids, load, meta, content_id=content)


def _read_stim_info(root: Path) -> Any:
    path = root / STIM_INFO
    if not path.is_file():
        return None
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except Exception as exc:
        raise InputError(f"cannot read {path} ({exc}); delete it or download it again.") from exc
    if "nsdId" not in table:
        raise InputError(f"{path} has no nsdId column; is it nsd_stim_info_merged.csv?")
    return table


def _cross_check(stim_info: Any, design: Design, plans: dict[str, Any], path: Path) -> None:
    """The image table and the design must agree on the shared images and on the trials of
    every repetition (``subjectK_repR`` holds 1-based global trial numbers)."""
    if "shared1000" in stim_info:
        flagged = set(stim_info.loc[stim_info["shared1000"].astype(bool), "nsdId"].astype(int))
        if flagged != set((design.sharedix - 1).tolist()):
            raise InputError(
                f"{path} and nsd_expdesign.mat disagree on the shared images "
                f"({len(flagged)} flagged shared1000 vs {design.sharedix.size} in sharedix); the two "
                "files come from different releases or one is damaged."
            )
    table = stim_info.set_index("nsdId")
    for subject, (images, occurrences) in plans.items():
        number = int(subject[4:])
        for rep in range(N_REPETITIONS):
            column = f"subject{number}_rep{rep}"
            if column not in table:
                continue
            listed = table[column].reindex(images).to_numpy()
            ours = np.array(
                [
                    occurrences[int(i)][rep] + 1 if len(occurrences[int(i)]) > rep else 0
                    for i in images
                ]
            )
            usable = ours > 0
            if not np.array_equal(listed[usable].astype(np.int64), ours[usable]):
                bad = images[usable][listed[usable].astype(np.int64) != ours[usable]]
                raise InputError(
                    f"{path} ({column}) and nsd_expdesign.mat place repetition {rep} of "
                    f"{bad.size} images of {subject} on different trials (e.g. NSD id "
                    f"{int(bad[0])}); the two files come from different releases or one is "
                    "damaged."
                )


def build(
    root: Path,
    *,
    split: str = "shared1000",
    subjects: Any = COMPLETE_SUBJECTS,
    rois: Any = DEFAULT_ROIS,
    selection: str | None = "ncsnr",
    threshold: float | None = None,
    betas_format: str = "auto",
    trials_per_session: int = TRIALS_PER_SESSION,
    sessions: int | None = None,
    missing_repetitions: str = "error",
    zscore: bool = True,
    n_images: int = 1000,
    reliability_images: int = 1000,
    identifier: str | None = None,
    cache: bool = True,
) -> RealDataset:
    """Read NSD from ``root`` (see the module docstring for every option)."""
    if split not in ("shared1000", "generalisation"):
        raise InputError(f"split must be 'shared1000' or 'generalisation', got {split!r}.")
    if selection not in (*SELECTIONS, None, "none"):
        raise InputError(
            f"selection must be one of {SELECTIONS} or None, got {selection!r} ('ncsnr': the "
            "paper's ncsnr >= 1/3; 'ncsnr-deepnsd': DeepNSD's looser ncsnr >= 0.2)."
        )
    selection = None if selection == "none" else selection
    threshold = (
        float(threshold) if threshold is not None else DEFAULT_THRESHOLDS.get(selection or "", 0.0)
    )
    if betas_format not in ("auto", "hdf5", "nifti"):
        raise InputError(f"betas_format must be 'auto', 'hdf5' or 'nifti', got {betas_format!r}.")
    if missing_repetitions not in ("error", "drop"):
        raise InputError("missing_repetitions must be 'error' or 'drop'.")
    subjects = parse_subjects(subjects, ALL_SUBJECTS, subject_name)
    if split == "generalisation" and len(subjects) != 1:
        raise InputError("the generalisation split is per subject: give exactly one subject.")
    identifier = identifier or (
        IDENTIFIER if split == "shared1000" else f"nsd/generalisation:{subjects[0]}"
    )
    require(identifier, root, [f for f in files(root, subjects) if f.path in (EXPDESIGN, STIMULI)])
    design = read_design(root)
    stim_info = _read_stim_info(root)

    # plan: images, trials and session files of each subject
    plans: dict[str, tuple[np.ndarray, dict[int, list[int]], str]] = {}
    independents: dict[str, np.ndarray] = {}
    incomplete: dict[str, tuple[list[int], list[int], str]] = {}
    n_independent = int(reliability_images) if selection == "single-trial" else 0
    for subject in subjects:
        images, occ, present, missing, fmt, independents[subject] = _plan_subject(
            root,
            design,
            subject,
            split,
            n_images,
            trials_per_session,
            sessions,
            betas_format,
            n_independent,
        )
        if not present:
            folder = root / BETAS_DIR.format(subject=subject)
            raise DataUnavailableError(
                f"no betas session file of NSD {subject} in {folder} (expected "
                f"{Path(betas_path(subject, 1, fmt)).name} ...). Download them with `brainrank "
                f"data download nsd/shared1000 --subjects {int(subject[4:])}`."
            )
        atlases = {a for parts in resolve_rois(rois, root, subject).values() for a, _ in parts}
        needed = [f"{BETAS_DIR.format(subject=subject)}/ncsnr.nii.gz"] + [
            f"{ROI_DIR.format(subject=subject)}/{atlas}.nii.gz" for atlas in sorted(atlases)
        ]
        require(identifier, root, [f for f in files(root, [subject], fmt) if f.path in needed])
        short = [int(i) for i in images if len(occ[int(i)]) < N_REPETITIONS]
        if short:
            incomplete[subject] = (short, missing, fmt)
        plans[subject] = (images, occ, fmt)
    if incomplete:
        if missing_repetitions == "error":
            subject, (short, missing, fmt) = next(iter(incomplete.items()))
            raise InputError(
                _incomplete_message(root, subject, short, plans[subject][0].size, missing, fmt)
            )
        dropped = set().union(*(set(v[0]) for v in incomplete.values()))
        for subject, (images, occ, fmt) in list(plans.items()):
            plans[subject] = (np.array([i for i in images if int(i) not in dropped]), occ, fmt)
        log.warning(
            "NSD: dropped %d images that not every selected subject saw %d times",
            len(dropped), N_REPETITIONS,
        )  # fmt: skip
    if any(p[0].size == 0 for p in plans.values()):
        raise InputError("no image is left with all repetitions for every selected subject.")
    if stim_info is not None:
        _cross_check(
            stim_info, design, {s: (p[0], p[1]) for s, p in plans.items()}, root / STIM_INFO
        )

    images = next(iter(plans.values()))[0]
    stimuli = _stimulus_set(
        root, identifier, images, stim_info,
        design.sharedix - 1 if split == "generalisation" else None,
    )  # fmt: skip
    cache_path = None
    if cache:
        used = [root / EXPDESIGN]
        for subject, (_, occ, fmt) in plans.items():
            sessions_used = sorted({t // trials_per_session + 1 for ts in occ.values() for t in ts})
            used += [root / betas_path(subject, k, fmt) for k in sessions_used]
            used.append(root / BETAS_DIR.format(subject=subject) / "ncsnr.nii.gz")
            used += [root / ROI_DIR.format(subject=subject) / f"{a}.nii.gz" for a in ATLASES]
            used += [root / CTAB_DIR.format(subject=subject) / f"{a}.mgz.ctab" for a in ATLASES]
        payload = {
            "version": CACHE_VERSION, "identifier": identifier, "split": split,
            "subjects": list(plans), "rois": list(rois) if not isinstance(rois, str) else [rois],
            "selection": selection, "threshold": threshold, "zscore": zscore,
            "trials_per_session": trials_per_session,
            "images": {s: p[0].tolist() for s, p in plans.items()},
            "independent": {s: v.tolist() for s, v in independents.items()},
            "files": file_stamp(used, root),
        }  # fmt: skip
        cache_path = processed_cache_path("nsd", payload)
        cached = load_processed(cache_path, identifier)
        if cached is not None:
            log.info("NSD: processed responses read from the cache %s", cache_path)
            responses, info = cached
            info = {**info, "cache": str(cache_path), "volumes": _volumes(root, list(plans))}
            return _dataset(identifier, stimuli, responses, split, info, design)
    loaded = []
    for subject, (subject_images, occ, fmt) in plans.items():
        result = _load_subject(
            root, subject, subject_images, occ, fmt, rois, selection, threshold,
            trials_per_session, zscore, independents[subject],
        )  # fmt: skip
        log.info("NSD %s voxels: %s", subject, format_counts(result.counts))
        loaded.append(result)
    responses, info = _assemble(identifier, stimuli, loaded, split, selection, threshold, zscore)
    if cache_path is not None:
        save_processed(cache_path, responses, info)
    info = {**info, "volumes": _volumes(root, list(plans))}
    return _dataset(identifier, stimuli, responses, split, info, design)


def _volumes(root: Path, subjects: list[str]) -> dict[str, dict[str, Any]]:
    """Per subject, the func1pt8mm volume the voxel indices (``voxel_i``, ``voxel_j``,
    ``voxel_k``) refer to: its ``shape`` and ``affine`` (from the ncsnr file's header), so a
    per-voxel quantity goes back into a NIfTI of the subject's space."""
    from brainrank.data.readers import Nifti

    out = {}
    for subject in subjects:
        image = Nifti(root / BETAS_DIR.format(subject=subject) / "ncsnr.nii.gz", "NSD ncsnr volume")
        out[subject] = {"shape": list(image.shape[:3]),
                        "affine": np.asarray(image.image.affine, dtype=float).tolist()}  # fmt: skip
    return out


def _assemble(
    identifier: str, stimuli: StimulusSet, loaded: list[_Subject], split: str,
    selection: str | None, threshold: float, zscore: bool,
) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    from brainrank.core.stats import ncsnr_noise_ceiling

    columns, ids, subjects, regions, ijk, ncsnr, rel = [], [], [], [], [], [], []
    for s in loaded:
        for roi, positions in s.regions.items():
            if positions.size == 0:
                log.warning("NSD %s: no voxel of %s passes the selection", s.name, roi)
                continue
            columns.append(s.averaged[:, positions])
            v = s.voxels[positions]
            ids += [f"{s.name}/{roi}/{a}-{b}-{c}" for a, b, c in v]
            subjects += [s.name] * positions.size
            regions += [roi] * positions.size
            ijk.append(v)
            ncsnr.append(s.ncsnr[positions])
            rel.append(
                s.reliability[positions]
                if s.reliability is not None
                else np.full(positions.size, np.nan)
            )
    if not columns:
        raise InputError(
            f"no voxel passes the {selection} selection (threshold {threshold}) in the chosen ROIs; "
            "lower the threshold or choose other ROIs."
        )
    ijk_all = np.concatenate(ijk)
    ncsnr_all = np.concatenate(ncsnr)
    noise_ceiling = ncsnr_noise_ceiling(ncsnr_all, N_REPETITIONS)
    neuroid_coords = {
        "voxel_i": ijk_all[:, 0],
        "voxel_j": ijk_all[:, 1],
        "voxel_k": ijk_all[:, 2],
        "ncsnr": ncsnr_all,
        "noise_ceiling": noise_ceiling,
    }
    if any(s.reliability is not None for s in loaded):
        name = "single_trial_r" if selection == "single-trial" else "split_half"
        neuroid_coords[name] = np.concatenate(rel)
    responses = make_responses(
        np.concatenate(columns, axis=1).astype(np.float32),
        stimulus_id=list(stimuli.stimulus_ids),
        neuroid_id=ids,
        subject=np.asarray(subjects, dtype=object),
        region=np.asarray(regions, dtype=object),
        presentation_coords={"n_repetitions": np.full(len(stimuli), N_REPETITIONS)},
        neuroid_coords=neuroid_coords,
        name=identifier,
    )
    info = {
        "split": split,
        "selection": selection,
        "threshold": threshold,
        "zscore_per_session": zscore,
        "voxels": {s.name: s.counts for s in loaded},
        "n_neuroids": int(responses.sizes["neuroid"]),
    }
    return responses, info


class NSDDataset(RealDataset):
    """An NSD dataset; the generalisation datasets carry the paper's train/test split."""

    def __init__(self, *args: Any, split_ids: tuple[list[str], list[str]] | None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._split_ids = split_ids

    def train_test_split(self) -> tuple[list[str], list[str]] | None:
        """``nsd/generalisation:subjXX``: the shared images (training) and the subject's
        own images (test), as in Conwell et al.'s generalisation test; ``None`` for
        ``nsd/shared1000``, which has no split of its own.

        Returns
        -------
        tuple of (list of str, list of str) or None
            Training and test stimulus ids, disjoint, all with responses.
        """
        if self._split_ids is None:
            return None
        return list(self._split_ids[0]), list(self._split_ids[1])


def _dataset(
    identifier: str, stimuli: StimulusSet, responses: Any, split: str, info: dict[str, Any],
    design: Design,
) -> NSDDataset:  # fmt: skip
    ceilings = {}
    if split == "shared1000" and len(set(responses["subject"].values.tolist())) > 1:
        ceilings["rsa"] = lambda: intersubject_rdm_ceiling(responses)
    split_ids = None
    if split == "generalisation":
        shared = {f"nsd{int(i) - 1:05d}" for i in design.sharedix}
        ids = [str(s) for s in stimuli.stimulus_ids]
        split_ids = ([s for s in ids if s in shared], [s for s in ids if s not in shared])
        if not split_ids[0] or not split_ids[1]:
            raise InputError(
                f"{identifier}: the generalisation split needs shared (training) and own (test) "
                f"images with all {N_REPETITIONS} repetitions; found {len(split_ids[0])} and "
                f"{len(split_ids[1])}. Download the missing sessions or use another subject."
            )
    return NSDDataset(
        identifier,
        stimuli,
        _metadata(split),
        responses=responses,
        reliability=np.asarray(responses["noise_ceiling"].values, dtype=np.float64),
        ceilings=ceilings,
        info=info,
        split_ids=split_ids,
    )


# --------------------------------------------------------------------------- specs

IDENTIFIER = "nsd/shared1000"
#: the shared images in NSD's nsdgeneral mask (the posterior cortex NSD's authors drew for
#: visual responses), one region, every voxel that passes the selection
NSDGENERAL = "nsd/nsdgeneral"


def _metadata(split: str) -> DatasetMetadata:
    shared = split == "shared1000"
    return DatasetMetadata(
        species="human",
        modality="fMRI (7T, 1.8 mm, GLMsingle betas_fithrf_GLMdenoise_RR)",
        regions=DEFAULT_ROIS,
        n_stimuli=1000 if shared else 2000,
        citation=CITATION,
        licence=LICENCE,
        description=(
            (
                "NSD shared1000: 1000 COCO images seen 3 times by subjects 01, 02, 05, 07; "
                if shared
                else "NSD generalisation split of one subject: the shared 1000 images "
                "(training) and 1000 of the subject's own images (test), each seen 3 times; "
                "train_test_split() returns them for metrics that fit on one set and score on "
                "the other (versa:generalisation); "
            )
            + "betas z-scored per session and averaged over repetitions; voxels with ncsnr >= "
            "1/3 (the paper's single-trial r > 0.1; selection='ncsnr-deepnsd' keeps DeepNSD's "
            "ncsnr >= 0.2) in 16 ROIs by default; the counts per subject and step are in "
            "dataset.info (for comparison, DeepNSD's OTC sets at ncsnr >= 0.2 hold 8088, 7528, "
            "8015 and 5849 voxels for subjects 1, 2, 5, 7). Ceilings: ncsnr noise ceiling per "
            "voxel (encoding)"
            + (", inter-subject RDM correlation per ROI (rsa)." if shared else ".")
        ),
    )


def _nsdgeneral_metadata() -> DatasetMetadata:
    import dataclasses

    shared = _metadata("shared1000")
    return dataclasses.replace(
        shared,
        regions=("nsdgeneral",),
        description=(
            "NSD shared1000 in one region, nsdgeneral (NSD's posterior-cortex mask of visually "
            "responsive voxels, func1pt8mm): the 1000 COCO images seen 3 times by subjects 01, "
            "02, 05, 07, betas z-scored per session and averaged over repetitions, voxels with "
            "ncsnr >= 1/3 (selection= and threshold= as for nsd/shared1000); voxel indices and "
            "the volume's affine kept for brain maps (dataset.info['volumes']). Ceilings: "
            "ncsnr noise ceiling per voxel (encoding), inter-subject RDM correlation (rsa)."
        ),
    )


FACTORY = DatasetFactory(build, SOURCE)


def _generalisation_source(subject: str) -> DataSource:
    return DataSource(
        folder=FOLDER,
        files=lambda root, subjects=None: files(root, [subject] if subjects is None else subjects),
        terms=TERMS,
        subjects_help=SOURCE.subjects_help,
    )


@hookimpl
def brainrank_datasets() -> list[DatasetSpec]:
    specs = [DatasetSpec(IDENTIFIER, FACTORY, _metadata("shared1000"), available=FACTORY.available)]
    general = DatasetFactory(build, SOURCE, {"rois": ("nsdgeneral",), "identifier": NSDGENERAL})
    specs.append(DatasetSpec(NSDGENERAL, general, _nsdgeneral_metadata(),
                             available=general.available))  # fmt: skip
    for subject in COMPLETE_SUBJECTS:
        factory = DatasetFactory(
            build,
            _generalisation_source(subject),
            {"split": "generalisation", "subjects": [subject]},
        )
        specs.append(
            DatasetSpec(
                f"nsd/generalisation:{subject}",
                factory,
                _metadata("generalisation"),
                available=factory.available,
            )
        )
    return specs
