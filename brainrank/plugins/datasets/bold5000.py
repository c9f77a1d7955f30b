"""``bold5000``: BOLD5000 (Chang et al. 2019), the ROI release used by Neural Taskonomy.

Files (under ``<data_dir>/bold5000``, as unpacked from the release's ``BOLD5000_ROIs.zip``
and ``BOLD5000_Stimuli.zip``)::

    ROIs/CSI{N}/mat/CSI{N}_ROIs_TR{1,2,3,4,5,34}.mat   (or ROIs/CSI{N}/h5/..._TR*.h5)
    ROIs/stim_lists/CSI0{N}_stim_lists.txt             (note the zero-padded CSI01)
    BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli/{COCO,ImageNet,Scene}/<image>

Each ROI file holds 10 arrays ``{LH,RH}{EarlyVis,LOC,OPA,PPA,RSC}`` of shape (trials,
voxels), rows in presentation order, matching the lines of the subject's stimulus list.
Repeated presentations are listed with a ``rep_`` prefix.

How it is read
    - ``tr="34"`` (default, Neural Taskonomy's "TRavg"): the mean of the TR3 and TR4 files
      (the TR34 file when either is absent); ``tr="1"`` ... ``"5"`` picks one TR;
    - the ``rep_`` prefix is stripped and the rows of the same image averaged (113 images
      have 3-4 presentations, the other 4803 one);
    - voxels with a NaN in any row are dropped (with a count in ``dataset.info``);
    - subjects CSI1, CSI2, CSI3 (4916 images each) by default; CSI4 saw only 2952 of them:
      with CSI4 selected, the images every selected subject saw are kept;
    - regions EarlyVis, LOC, OPA, PPA, RSC with both hemispheres pooled (coordinate
      ``hemisphere``), or per hemisphere (``LHPPA``...) with ``hemispheres="separate"``;
    - values as released (no z-scoring unless ``zscore=True``, which z-scores each voxel
      over images).

Ceilings
    - ``ceiling("encoding")``: cross-subject prediction (Neural Taskonomy's noise ceiling),
      per (subject, region) the mean over voxels of the LOO Pearson r of a ridge regression
      from the other subjects' voxels of the same region; per voxel (clipped at 0, squared)
      through :meth:`neuroid_reliability`. Needs 2 subjects or more.
    - ``ceiling("rsa")``: the inter-subject RDM correlation per region.

Terms: BOLD5000's fMRI data are CC0; the images keep the terms of COCO, ImageNet and SUN.
"""

from __future__ import annotations

import logging
import re
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
    cross_subject_prediction,
    format_counts,
    intersubject_rdm_ceiling,
    mean_by_group,
    parse_subjects,
)

log = logging.getLogger("brainrank.datasets.bold5000")

IDENTIFIER = "bold5000"
FOLDER = "bold5000"
SUBJECTS = ("CSI1", "CSI2", "CSI3", "CSI4")
DEFAULT_SUBJECTS = ("CSI1", "CSI2", "CSI3")
ROIS = ("EarlyVis", "LOC", "OPA", "PPA", "RSC")
HEMISPHERES = ("LH", "RH")
TRS = ("1", "2", "3", "4", "5", "34")
STIMULUS_DIR = "BOLD5000_Stimuli/Scene_Stimuli/Presented_Stimuli"
SOURCES = ("COCO", "ImageNet", "Scene")
REPEAT_PREFIX = "rep_"

ROI_ARCHIVE = RemoteFile(
    "downloads/BOLD5000_ROIs.zip",
    ("https://ndownloader.figshare.com/files/12965447",),
    description="BOLD5000 release 1 ROI data (figshare, about 4 GB)",
)
STIMULI_ARCHIVE = RemoteFile(
    "downloads/BOLD5000_Stimuli.zip",
    ("https://www.dropbox.com/s/5ie18t4rjjvsl47/BOLD5000_Stimuli.zip?dl=1",),
    description="BOLD5000 images (bold5000.org)",
)

CITATION = (
    "Chang N, Pyles JA, Marcus A, Gupta A, Tarr MJ, Aminoff EM (2019) BOLD5000, a public fMRI "
    "dataset while viewing 5000 visual images. Scientific Data 6:49. Used as in Wang AY, Tarr "
    "MJ, Wehbe L (2019) Neural Taskonomy, NeurIPS."
)
LICENCE = "CC0 for the fMRI data (BOLD5000 terms); images under the terms of COCO, ImageNet, SUN."


def subject_name(value: Any) -> str:
    text = str(value).strip().upper()
    match = re.fullmatch(r"(?:CSI)?0*(\d)", text)
    if not match:
        raise InputError(f"cannot read BOLD5000 subject {value!r}; use 1..4 or 'CSI1'.")
    return f"CSI{match.group(1)}"


def roi_file(subject: str, tr: str, kind: str = "mat") -> str:
    return f"ROIs/{subject}/{kind}/{subject}_ROIs_TR{tr}.{'mat' if kind == 'mat' else 'h5'}"


def stim_list(subject: str) -> str:
    return f"ROIs/stim_lists/CSI0{subject[3:]}_stim_lists.txt"


def image_key(line: str) -> str:
    return line[len(REPEAT_PREFIX) :] if line.startswith(REPEAT_PREFIX) else line


def image_source(name: str) -> str:
    """COCO, ImageNet or Scene, from the file name."""
    if name.startswith("COCO_"):
        return "COCO"
    if re.match(r"n\d{8}_\d+\.", name):
        return "ImageNet"
    return "Scene"


def files(root: Path, subjects: Any = None) -> list[RemoteFile]:
    chosen = (
        DEFAULT_SUBJECTS if subjects is None else parse_subjects(subjects, SUBJECTS, subject_name)
    )
    out = []
    for subject in chosen:
        for tr in ("3", "4"):
            out.append(
                RemoteFile(
                    roi_file(subject, tr), archive=ROI_ARCHIVE, description=f"ROI data TR{tr}"
                )
            )
        out.append(RemoteFile(roi_file(subject, "34"), archive=ROI_ARCHIVE, optional=True))
        out.append(RemoteFile(stim_list(subject), archive=ROI_ARCHIVE, description="trial list"))
    names: dict[str, None] = {}
    for subject in chosen:
        path = root / stim_list(subject)
        if path.is_file():
            for line in path.read_text(errors="replace").split():
                names[image_key(line.strip())] = None
    if names:
        for name in names:
            out.append(
                RemoteFile(f"{STIMULUS_DIR}/{image_source(name)}/{name}", archive=STIMULI_ARCHIVE)
            )
    else:  # the image list is known once the trial lists are present
        out.append(
            RemoteFile(
                "BOLD5000_Stimuli/Scene_Stimuli/repeated_stimuli_113_list.txt",
                archive=STIMULI_ARCHIVE,
                description="images (the full list is known once the trial lists are present)",
            )
        )
    return out


SOURCE = DataSource(
    folder=FOLDER,
    files=files,
    terms="BOLD5000: fMRI data CC0; images keep their sources' terms (COCO, ImageNet, SUN).",
    subjects_help="BOLD5000 subjects CSI1..CSI4 (default CSI1 CSI2 CSI3)",
)


# --------------------------------------------------------------------------- reading


def _read_roi_file(root: Path, subject: str, tr: str) -> tuple[dict[str, np.ndarray], Path] | None:
    mat = root / roi_file(subject, tr, "mat")
    h5 = root / roi_file(subject, tr, "h5")
    from brainrank.data.readers import numeric_array

    if mat.is_file():
        from brainrank.data.readers import load_mat

        content = load_mat(mat, "BOLD5000 ROI file")
        return {k: numeric_array(v, k, mat) for k, v in content.items()}, mat
    if h5.is_file():
        from brainrank.data.readers import open_hdf5, read_hdf5

        with open_hdf5(h5, "BOLD5000 ROI file") as handle:
            return {k: numeric_array(read_hdf5(handle[k], (), h5), k, h5) for k in handle}, h5
    return None


def _roi_data(root: Path, subject: str, tr: str) -> tuple[dict[str, np.ndarray], list[Path]]:
    if tr == "34":
        parts = [_read_roi_file(root, subject, t) for t in ("3", "4")]
        if all(p is not None for p in parts):
            (a, path_a), (b, path_b) = parts  # type: ignore[misc]
            out = {}
            for key in sorted(set(a) | set(b)):
                if key not in a or key not in b or a[key].shape != b[key].shape:
                    raise InputError(
                        f"{key} differs between {path_a.name} ({a.get(key, np.empty(0)).shape}) and "
                        f"{path_b.name} ({b.get(key, np.empty(0)).shape}); both must hold the same "
                        "voxels of the same trials."
                    )
                out[key] = (a[key].astype(np.float64) + b[key].astype(np.float64)) / 2
            return out, [path_a, path_b]
    found = _read_roi_file(root, subject, tr)
    if found is None:
        wanted = [roi_file(subject, t) for t in (("3", "4", "34") if tr == "34" else (tr,))]
        raise DataUnavailableError(
            f"BOLD5000 ROI data of {subject} for TR{tr} is missing: expected "
            + " or ".join(str(root / w) for w in wanted)
            + " (or the .h5 twins). Run `brainrank data download bold5000`."
        )
    data, path = found
    return {k: v.astype(np.float64) for k, v in data.items()}, [path]


def _stimulus_paths(root: Path) -> dict[str, Path]:
    base = root / STIMULUS_DIR
    paths = {}
    for source in SOURCES:
        folder = base / source
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.is_file():
                    paths[entry.name] = entry
    return paths


def _load_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except Exception as exc:
        raise InputError(
            f"cannot read the image {path} ({exc}); it is damaged, restore it."
        ) from exc


def build(
    root: Path,
    *,
    subjects: Any = DEFAULT_SUBJECTS,
    tr: str = "34",
    rois: Any = ROIS,
    hemispheres: str = "pooled",
    zscore: bool = False,
    identifier: str = IDENTIFIER,
) -> RealDataset:
    """Read BOLD5000 from ``root`` (see the module docstring)."""
    import pandas as pd

    tr = str(tr).upper().removeprefix("TR")
    if tr not in TRS:
        raise InputError(
            f"tr must be one of {', '.join(TRS)} (34 = mean of TR3 and TR4), got {tr!r}."
        )
    if hemispheres not in ("pooled", "separate"):
        raise InputError("hemispheres must be 'pooled' or 'separate'.")
    rois = [rois] if isinstance(rois, str) else list(rois)
    unknown = [r for r in rois if r not in ROIS]
    if unknown:
        raise InputError(f"unknown BOLD5000 ROI(s) {unknown}; known: {', '.join(ROIS)}.")
    subjects = parse_subjects(subjects, SUBJECTS, subject_name)
    require(identifier, root, [RemoteFile(stim_list(s), archive=ROI_ARCHIVE) for s in subjects])

    from brainrank.data.readers import read_lines

    per_subject = {}
    for subject in subjects:
        lines = read_lines(root / stim_list(subject), "BOLD5000 trial list")
        if not lines:
            raise InputError(
                f"the BOLD5000 trial list {root / stim_list(subject)} lists no trials (it is "
                "empty); restore it with `brainrank data download bold5000` (check with "
                "`brainrank data check bold5000`)."
            )
        keys = [image_key(line) for line in lines]
        data, paths = _roi_data(root, subject, tr)
        order = list(dict.fromkeys(keys))
        index = {k: i for i, k in enumerate(order)}
        rows = np.array([index[k] for k in keys], dtype=np.intp)
        counts = np.bincount(rows, minlength=len(order))
        blocks = {}
        dropped = {}
        for roi in rois:
            for hemi in HEMISPHERES:
                key = f"{hemi}{roi}"
                if key not in data:
                    raise InputError(
                        f"{paths[0]} has no array {key!r} (it has {sorted(data)}); is it a BOLD5000 "
                        "ROI file?"
                    )
                values = data[key]
                if values.ndim != 2 or values.shape[0] != len(lines):
                    raise InputError(
                        f"{key} in {paths[0]} has shape {values.shape}, but "
                        f"{stim_list(subject)} lists {len(lines)} trials: the ROI data and the trial "
                        "list must come from the same subject and release (rows = trials)."
                    )
                finite = np.isfinite(values).all(axis=0)
                dropped[key] = int((~finite).sum())
                sums = np.zeros((len(order), int(finite.sum())))
                np.add.at(sums, rows, values[:, finite])
                blocks[key] = sums / counts[:, None]
        per_subject[subject] = {"order": order, "counts": counts, "blocks": blocks,
                                "dropped": dropped, "n_trials": len(lines)}  # fmt: skip
        if any(dropped.values()):
            log.warning("BOLD5000 %s: dropped NaN voxels: %s", subject, format_counts(dropped))

    common = set(per_subject[subjects[0]]["order"])
    for subject in subjects[1:]:
        common &= set(per_subject[subject]["order"])
    images = [k for k in per_subject[subjects[0]]["order"] if k in common]
    if len(common) < max(len(v["order"]) for v in per_subject.values()):
        log.warning(
            "BOLD5000: keeping the %d images every selected subject saw (of %s)",
            len(images), {s: len(v["order"]) for s, v in per_subject.items()},
        )  # fmt: skip
    if len(images) < 3:
        raise InputError(f"the selected subjects share only {len(images)} images.")

    paths = _stimulus_paths(root)
    missing = [name for name in images if name not in paths]
    if missing:
        raise DataUnavailableError(
            f"{len(missing)} of the {len(images)} BOLD5000 images are not in "
            f"{root / STIMULUS_DIR}/{{COCO,ImageNet,Scene}} (e.g. {missing[:3]}); they come from "
            f"{STIMULI_ARCHIVE.urls[0]}. Run `brainrank data download bold5000`."
        )

    columns, ids, subj, region, hemi_coord = [], [], [], [], []
    for subject, content in per_subject.items():
        position = {k: i for i, k in enumerate(content["order"])}
        take = np.array([position[k] for k in images])
        for roi in rois:
            for hemi in HEMISPHERES:
                block = content["blocks"][f"{hemi}{roi}"][take]
                if zscore:
                    sd = block.std(axis=0)
                    sd[sd == 0] = 1.0
                    block = (block - block.mean(axis=0)) / sd
                columns.append(block)
                n = block.shape[1]
                ids += [f"{subject}/{hemi}{roi}/{v}" for v in range(n)]
                subj += [subject] * n
                region += [roi if hemispheres == "pooled" else f"{hemi}{roi}"] * n
                hemi_coord += [hemi] * n
    first = per_subject[subjects[0]]
    first_position = {k: i for i, k in enumerate(first["order"])}
    reps = first["counts"][[first_position[k] for k in images]]
    responses = make_responses(
        np.concatenate(columns, axis=1).astype(np.float32),
        stimulus_id=images,
        neuroid_id=ids,
        subject=np.asarray(subj, dtype=object),
        region=np.asarray(region, dtype=object),
        presentation_coords={"n_repetitions": np.asarray(reps)},
        neuroid_coords={"hemisphere": np.asarray(hemi_coord, dtype=object)},
        name=identifier,
    )
    meta = pd.DataFrame(
        {"source": [image_source(n) for n in images]}, index=pd.Index(images, name="stimulus_id")
    )
    total = sum(paths[n].stat().st_size for n in images)
    stimuli = StimulusSet(
        identifier, images, lambda name: _load_image(paths[name]), meta,
        content_id=f"bold5000:{len(images)}:{total}",
    )  # fmt: skip

    cache: dict[str, np.ndarray] = {}

    def cross_subject() -> np.ndarray:
        if "r" not in cache:
            cache["r"] = cross_subject_prediction(responses)
        return cache["r"]

    ceilings = {}
    if len(subjects) > 1:
        ceilings = {
            "encoding": lambda: mean_by_group(responses, cross_subject()),
            "rsa": lambda: intersubject_rdm_ceiling(responses),
        }
    info = {
        "tr": tr,
        "subjects": subjects,
        "n_images": len(images),
        "dropped_nan_voxels": {s: v["dropped"] for s, v in per_subject.items()},
        "n_neuroids": int(responses.sizes["neuroid"]),
    }
    return RealDataset(
        identifier,
        stimuli,
        METADATA,
        responses=responses,
        reliability=(lambda: np.clip(cross_subject(), 0, None) ** 2) if len(subjects) > 1 else None,
        ceilings=ceilings,
        info=info,
    )


METADATA = DatasetMetadata(
    species="human",
    modality="fMRI (3T, ROI release 1, mean of TR3 and TR4 after image onset)",
    regions=ROIS,
    n_stimuli=4916,
    citation=CITATION,
    licence=LICENCE,
    description=(
        "BOLD5000: 4916 COCO, ImageNet and SUN images, subjects CSI1-3 (CSI4 partial), "
        "repetitions averaged; ROIs EarlyVis, LOC, OPA, PPA, RSC (hemispheres pooled); every "
        "ROI voxel of the release kept except voxels with NaNs (counts in dataset.info). "
        "Ceilings: cross-subject prediction (encoding), inter-subject RDM correlation (rsa)."
    ),
)

FACTORY = DatasetFactory(build, SOURCE)


@hookimpl
def brainrank_datasets() -> list[DatasetSpec]:
    from brainrank.plugins.datasets import bold5000_wholebrain as wholebrain

    factory = DatasetFactory(wholebrain.build, wholebrain.SOURCE)
    return [
        DatasetSpec(IDENTIFIER, FACTORY, METADATA, available=FACTORY.available),
        DatasetSpec(
            wholebrain.IDENTIFIER, factory, wholebrain.METADATA, available=factory.available
        ),
    ]
