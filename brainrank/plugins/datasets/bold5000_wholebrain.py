"""``bold5000/wholebrain``: BOLD5000 release 2.0 (GLMsingle betas), every voxel of the brain.

Neural Taskonomy fits encoding models on about 55,000 voxels per subject and shows their
scores as brain maps; ``bold5000`` (release 1) has the five ROI files only. This dataset
reads the whole-brain single-trial betas of release 2.0 and keeps each voxel's position, so
per-voxel scores map back into the subject's volume.

What the release is (checked on 2026-12-03 in the BOLD5000 repository's README,
github.com/BOLD5000-dataset/BOLD5000, "Summary of data versions available in Release 2.0",
and in tarrlab/BOLD5000-GLMs ``save_BOLD5000_session_niftis.m``)
    - four GLM versions, one ``.nii.gz`` per subject and session; the recommended one (read
      here) is ``CSI{N}_GLMbetas-TYPED-FITHRF-GLMDENOISE-RR_ses-{XX}.nii.gz`` (HRF fitted per
      voxel, GLMdenoise, fractional ridge), XX = 01 .. 15 (CSI4: 01 .. 09);
    - each holds ``(X, Y, Z, images of the session)`` float32 betas in percent signal
      change, 2 mm isotropic voxels in the subject's functional space, of shape CSI1
      (71, 89, 72), CSI2 (72, 92, 70), CSI3 (72, 88, 67), CSI4 (70, 89, 70);
    - a session has 9 or 10 runs of 37 images (333 or 370 betas); CSI1-3 have 5254 trials in
      15 sessions, CSI4 3108 in 9;
    - the README recommends z-scoring each voxel within each session.

What is assumed (not stated by the release; checked by the loader where it can be)
    - the betas of the sessions, concatenated in session order, are the trials in the order
      of release 1's trial list ``ROIs/stim_lists/CSI0{N}_stim_lists.txt`` (chronological,
      ``rep_`` marking repetitions): the loader checks that the numbers of trials agree and
      reads only that many lines when fewer sessions are read (``sessions=``);
    - the release hosts the files on figshare without a fixed folder layout: they are read
      from ``<data_dir>/bold5000/GLMsingle/`` (or the dataset folder itself);
    - the brain mask: ``CSI{N}_brainmask.nii.gz`` next to the betas when present (nonzero =
      brain; the name is ours, any mask in the subject's grid will do), otherwise every voxel
      whose betas are finite and not constant in every session (GLMsingle writes 0 outside
      the brain mask it fitted in);
    - the affine is the one in the betas' NIfTI header (all sessions must agree).

How it is read
    - per session, each voxel z-scored over the session's trials (``zscore=True``, the
      README's advice; ``False`` keeps percent signal change);
    - the ``rep_`` prefix stripped and the presentations of each image averaged (4916 images
      for CSI1-3; with CSI4 selected, the images every selected subject saw);
    - voxels: the brain mask, minus voxels with non-finite or constant betas in a session
      (counts in ``dataset.info["voxels"]``);
    - reliability (coordinate ``split_half``): on the images shown more than once (113 images
      3-4 times), the Pearson r over images between the mean of the even-numbered and of the
      odd-numbered presentations, Spearman-Brown corrected (factor 2). Neural Taskonomy keeps
      every voxel and masks non-significant ones afterwards; ``reliability_threshold=R``
      keeps only voxels with ``split_half >= R`` (the split-half selection of the mouse and
      NSD papers: settable from the command line,
      ``--dataset-option bold5000/wholebrain.reliability_threshold=0.1``);
    - one region, ``wholebrain``; neuroid ids ``CSI1/wholebrain/i-j-k``; coordinates
      ``voxel_i``, ``voxel_j``, ``voxel_k`` (indices into the subject's volume) and
      ``split_half``; ``dataset.info["volumes"][subject]`` holds the volume's ``shape`` and
      ``affine`` (voxel indices to millimetres), so a per-voxel score goes back into a NIfTI
      volume of the subject's space.

Size: 3 subjects x ~50,000 voxels x 4916 images is about 3 GB of float32 responses; the
ridge fits targets in batches (``bench/wholebrain.py`` measures a 50,000-voxel fit). No
ceiling is computed (cross-subject prediction over the whole brain would cost more than
the scores).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.data.files import DataSource, RemoteFile, require
from brainrank.plugin import (
    DatasetMetadata,
    DataUnavailableError,
    InputError,
    StimulusSet,
    make_responses,
)
from brainrank.plugins.datasets import bold5000 as release1
from brainrank.plugins.datasets._common import RealDataset, format_counts, parse_subjects

log = logging.getLogger("brainrank.datasets.bold5000")

IDENTIFIER = "bold5000/wholebrain"
FOLDER = release1.FOLDER
VERSION = "TYPED-FITHRF-GLMDENOISE-RR"
BETAS_DIR = "GLMsingle"
REGION = "wholebrain"
#: sessions of each subject in release 2.0
SESSIONS = {"CSI1": 15, "CSI2": 15, "CSI3": 15, "CSI4": 9}
FIGSHARE = "https://figshare.com/s/bbaf45dca1b1b873ddfa"


def betas_name(subject: str, session: int, version: str = VERSION) -> str:
    return f"{subject}_GLMbetas-{version}_ses-{session:02d}.nii.gz"


def mask_name(subject: str) -> str:
    return f"{subject}_brainmask.nii.gz"


def _find(root: Path, name: str) -> Path:
    """``GLMsingle/<name>`` or ``<name>`` in the dataset folder (the first present; the
    first when neither is)."""
    for candidate in (root / BETAS_DIR / name, root / name):
        if candidate.is_file():
            return candidate
    return root / BETAS_DIR / name


def files(root: Path, subjects: Any = None) -> list[RemoteFile]:
    chosen = (
        release1.DEFAULT_SUBJECTS
        if subjects is None
        else parse_subjects(subjects, release1.SUBJECTS, release1.subject_name)
    )
    note = f"BOLD5000 release 2.0 on figshare ({FIGSHARE}); put it in {BETAS_DIR}/"
    out = []
    for subject in chosen:
        for session in range(1, SESSIONS[subject] + 1):
            out.append(RemoteFile(f"{BETAS_DIR}/{betas_name(subject, session)}", note=note,
                                  description=f"GLMsingle betas, session {session}"))  # fmt: skip
        out.append(RemoteFile(f"{BETAS_DIR}/{mask_name(subject)}", optional=True, note=note))
        out.append(RemoteFile(release1.stim_list(subject), archive=release1.ROI_ARCHIVE,
                              description="trial list (release 1)"))  # fmt: skip
    return out


SOURCE = DataSource(
    folder=FOLDER,
    files=files,
    terms=release1.SOURCE.terms,
    subjects_help=release1.SOURCE.subjects_help,
)


# --------------------------------------------------------------------------- reading


def _zscore(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns z-scored (population SD); constant or non-finite columns flagged and set to 0."""
    mean = block.mean(axis=0, dtype=np.float64)
    sd = block.std(axis=0, dtype=np.float64)
    constant = ~(sd > 0) | ~np.isfinite(sd)
    sd[constant] = 1.0
    z = ((block - mean) / sd).astype(np.float32)
    z[:, constant] = 0.0
    return z, constant


def split_half_reliability(presentations: list[np.ndarray]) -> np.ndarray:
    """Per voxel, from the presentations of each repeated image (a list of ``(reps, v)``
    arrays, reps >= 2): Pearson r over images between the mean of the even-numbered and of
    the odd-numbered presentations, Spearman-Brown corrected (factor 2); NaN with fewer
    than 3 repeated images or a constant half."""
    from brainrank.core.stats import pearson_columns, spearman_brown

    if len(presentations) < 3:
        v = presentations[0].shape[1] if presentations else 0
        return np.full(v, np.nan)
    even = np.stack([p[0::2].mean(axis=0) for p in presentations])
    odd = np.stack([p[1::2].mean(axis=0) for p in presentations])
    return np.asarray(spearman_brown(pearson_columns(even, odd)), dtype=np.float64)


def _read_subject(root: Path, subject: str, sessions: int, zscore: bool) -> dict[str, Any]:
    from brainrank.data.readers import Nifti, read_lines

    lines = read_lines(root / release1.stim_list(subject), "BOLD5000 trial list")
    blocks, shape, affine, voxels, bad = [], None, None, None, None
    mask_path = _find(root, mask_name(subject))
    counts: dict[str, int] = {}
    for session in range(1, sessions + 1):
        path = _find(root, betas_name(subject, session))
        image = Nifti(path, "BOLD5000 GLMsingle betas")
        if len(image.shape) != 4:
            raise InputError(
                f"{path} has shape {image.shape}; GLMsingle session betas are (X, Y, Z, trials)."
            )
        if shape is None:
            shape, affine = image.shape[:3], np.asarray(image.image.affine, dtype=np.float64)
            if mask_path.is_file():
                mask_image = Nifti(mask_path, "BOLD5000 brain mask")
                if mask_image.shape[:3] != shape:
                    raise InputError(
                        f"the brain mask {mask_path} has shape {mask_image.shape}, the betas "
                        f"{shape}; both must be in the subject's functional grid."
                    )
                mask = np.asarray(mask_image.data(np.float64)).reshape(shape) > 0
                counts["in brain mask"] = int(mask.sum())
            else:
                mask = None
        elif image.shape[:3] != shape or not np.allclose(image.image.affine, affine, atol=1e-4):
            raise InputError(
                f"{path} has shape {image.shape[:3]} and affine {image.image.affine.tolist()}, "
                f"but session 1 has {shape} and {affine.tolist()}: every session of a subject "
                "must be in the same grid."
            )
        data = image.data(np.float32)
        if mask is None:  # every voxel with usable betas in the first session
            with np.errstate(invalid="ignore"):
                sd = data.std(axis=3, dtype=np.float64)  # NaN where a beta is not finite
            mask = np.isfinite(sd) & (sd > 0)
            del sd
            counts["with betas (no mask file)"] = int(mask.sum())
        if voxels is None:
            voxels = np.argwhere(mask)  # (v, 3) NIfTI indices in C order
            bad = np.zeros(len(voxels), dtype=bool)
        block = np.ascontiguousarray(data[tuple(voxels.T)].T)  # (trials, v)
        del data
        finite = np.isfinite(block).all(axis=0)
        block[:, ~finite] = 0.0
        constant = ~(block.std(axis=0) > 0)
        if zscore:
            block, _ = _zscore(block)
        bad |= ~finite | constant
        blocks.append(block)
    n_trials = sum(b.shape[0] for b in blocks)
    complete = sessions == SESSIONS[subject]
    if len(lines) < n_trials or (complete and len(lines) != n_trials):
        raise InputError(
            f"the {sessions} GLMsingle sessions of {subject} hold {n_trials} betas but "
            f"{release1.stim_list(subject)} lists {len(lines)} trials: the trial list must "
            "list the trials of the betas in order (release 1's list does)."
        )
    counts["constant or non-finite betas"] = int(bad.sum())
    keep = ~bad
    trials = np.concatenate(blocks)[:, keep]
    del blocks
    return {"keys": [release1.image_key(line) for line in lines[:n_trials]],
            "trials": trials, "voxels": voxels[keep], "shape": tuple(int(s) for s in shape),
            "affine": affine, "counts": counts}  # fmt: skip


def _average(keys: list[str], trials: np.ndarray) -> tuple[list[str], np.ndarray, list]:
    """The images in order of first presentation, their mean responses and, for each
    image shown more than once, its presentations (most images are shown once: only the
    repeated ones are averaged, so no second copy of the trials is made)."""
    order = list(dict.fromkeys(keys))
    index = {k: i for i, k in enumerate(order)}
    rows = np.array([index[k] for k in keys], dtype=np.intp)
    counts = np.bincount(rows, minlength=len(order))
    first = np.unique(rows, return_index=True)[1]  # the first presentation of each image
    averaged = trials[first]
    repeated = []
    for i in np.flatnonzero(counts > 1):
        shown = trials[rows == i]
        averaged[i] = shown.mean(axis=0, dtype=np.float64)
        repeated.append(shown)
    return order, averaged, repeated


def build(
    root: Path,
    *,
    subjects: Any = release1.DEFAULT_SUBJECTS,
    sessions: int | None = None,
    zscore: bool = True,
    reliability_threshold: float | None = None,
    identifier: str = IDENTIFIER,
) -> RealDataset:
    """Read the whole-brain GLMsingle betas of BOLD5000 from ``root`` (see the module
    docstring). ``sessions``: read sessions 1..N only (default: all of each subject)."""
    import pandas as pd

    subjects = parse_subjects(subjects, release1.SUBJECTS, release1.subject_name)
    if sessions is not None and not 1 <= int(sessions) <= 15:
        raise InputError(f"sessions must be 1..15 (CSI4: 1..9), got {sessions!r}.")
    wanted = []
    for subject in subjects:
        n = SESSIONS[subject] if sessions is None else int(sessions)
        if n > SESSIONS[subject]:
            raise InputError(f"{subject} has {SESSIONS[subject]} sessions, not {n}.")
        wanted.append(RemoteFile(release1.stim_list(subject), archive=release1.ROI_ARCHIVE))
        missing = [s for s in range(1, n + 1) if not _find(root, betas_name(subject, s)).is_file()]
        if missing:
            raise DataUnavailableError(
                f"{identifier}: {len(missing)} GLMsingle session files of {subject} are missing "
                f"from {root / BETAS_DIR} (e.g. {betas_name(subject, missing[0])}); they come "
                f"from BOLD5000 release 2.0 ({FIGSHARE}), version {VERSION}. "
                + (
                    f"Give sessions={missing[0] - 1} to read the first ones."
                    if missing[0] > 1
                    else ""
                )
            )
    require(identifier, root, wanted)

    per_subject = {}
    for subject in subjects:
        n = SESSIONS[subject] if sessions is None else int(sessions)
        read = _read_subject(root, subject, n, zscore)
        order, averaged, repeated = _average(read.pop("keys"), read.pop("trials"))
        reliability = split_half_reliability(repeated)
        counts = read["counts"]
        keep = np.ones(averaged.shape[1], dtype=bool)
        if reliability_threshold is not None:
            if not np.isfinite(reliability).any():
                raise InputError(
                    f"{subject}: no split-half reliability (fewer than 3 images shown twice "
                    "in the sessions read); drop reliability_threshold or read more sessions."
                )
            keep = np.nan_to_num(reliability, nan=-np.inf) >= float(reliability_threshold)
            counts["below reliability threshold"] = int((~keep).sum())
        counts["kept"] = int(keep.sum())
        log.info("BOLD5000 whole brain %s voxels: %s", subject, format_counts(counts))
        per_subject[subject] = {**read, "order": order, "averaged": averaged[:, keep],
                                "voxels": read["voxels"][keep],
                                "reliability": reliability[keep]}  # fmt: skip
    common = set(per_subject[subjects[0]]["order"])
    for subject in subjects[1:]:
        common &= set(per_subject[subject]["order"])
    images = [k for k in per_subject[subjects[0]]["order"] if k in common]
    if len(images) < 3:
        raise InputError(f"the selected subjects share only {len(images)} images.")
    if not any(s["voxels"].size for s in per_subject.values()):
        raise InputError(
            f"no voxel passes the selection (reliability_threshold={reliability_threshold}); "
            "lower it."
        )
    paths = release1._stimulus_paths(root)
    missing_images = [name for name in images if name not in paths]
    if missing_images:
        raise DataUnavailableError(
            f"{len(missing_images)} of the {len(images)} BOLD5000 images are not in "
            f"{root / release1.STIMULUS_DIR}/{{COCO,ImageNet,Scene}} (e.g. {missing_images[:3]}); "
            "run `brainrank data download bold5000`."
        )

    columns, ids, subject_coord, ijk, rel = [], [], [], [], []
    for subject, content in per_subject.items():
        position = {k: i for i, k in enumerate(content["order"])}
        take = np.array([position[k] for k in images])
        columns.append(content["averaged"][take])
        v = content["voxels"]
        ids += [f"{subject}/{REGION}/{a}-{b}-{c}" for a, b, c in v]
        subject_coord += [subject] * len(v)
        ijk.append(v)
        rel.append(content["reliability"])
    ijk_all = np.concatenate(ijk).astype(np.int64)
    responses = make_responses(
        np.concatenate(columns, axis=1),
        stimulus_id=images,
        neuroid_id=ids,
        subject=np.asarray(subject_coord, dtype=object),
        region=np.full(len(ids), REGION, dtype=object),
        neuroid_coords={
            "voxel_i": ijk_all[:, 0],
            "voxel_j": ijk_all[:, 1],
            "voxel_k": ijk_all[:, 2],
            "split_half": np.concatenate(rel),
        },
        name=identifier,
    )
    meta = pd.DataFrame(
        {"source": [release1.image_source(n) for n in images]},
        index=pd.Index(images, name="stimulus_id"),
    )
    total = sum(paths[n].stat().st_size for n in images)
    stimuli = StimulusSet(
        identifier, images, lambda name: release1._load_image(paths[name]), meta,
        content_id=f"bold5000:{len(images)}:{total}",
    )  # fmt: skip
    info = {
        "version": VERSION,
        "subjects": subjects,
        "sessions": {s: SESSIONS[s] if sessions is None else int(sessions) for s in subjects},
        "zscore_per_session": zscore,
        "reliability_threshold": reliability_threshold,
        "n_images": len(images),
        "voxels": {s: c["counts"] for s, c in per_subject.items()},
        "volumes": {
            s: {"shape": list(c["shape"]), "affine": c["affine"].tolist()}
            for s, c in per_subject.items()
        },
        "n_neuroids": int(responses.sizes["neuroid"]),
    }
    return RealDataset(identifier, stimuli, METADATA, responses=responses, info=info)


METADATA = DatasetMetadata(
    species="human",
    modality="fMRI (3T, 2 mm, release 2.0 GLMsingle TYPED-FITHRF-GLMDENOISE-RR betas)",
    regions=(REGION,),
    n_stimuli=4916,
    citation=release1.CITATION,
    licence=release1.LICENCE,
    description=(
        "BOLD5000 release 2.0, whole brain: 4916 COCO, ImageNet and SUN images, subjects "
        "CSI1-3 (CSI4 partial), single-trial GLMsingle betas z-scored per session and "
        "averaged over presentations; every voxel of the brain mask with usable betas (about "
        "50,000 per subject), optionally those with split-half reliability >= "
        "reliability_threshold; voxel indices and the volume's affine kept for brain maps. "
        "No ceiling is computed (cross-subject prediction over the whole brain would cost "
        "more than the scores)."
    ),
)
