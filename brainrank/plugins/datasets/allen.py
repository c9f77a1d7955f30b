"""``allen/natural-scenes``: Allen Brain Observatory Visual Coding 2-photon, natural scenes.

Mouse visual cortex, 118 natural images each shown 50 times for 250 ms (session type
``three_session_B``), as used by Conwell et al. (2021), "Neural regression, representational
similarity, model zoology & neural taskonomy at scale in rodent visual cortex".

Files (under ``<data_dir>/allen-brain-observatory``, the layout of AllenSDK's
``BrainObservatoryCache`` manifest folder)::

    cell_specimens.json                      per-cell metadata and metrics (ApiCamCellMetric)
    ophys_experiments.json                   (optional) experiments, used to find downloads
    ophys_experiment_data/<experiment>.nwb   NWB 1.x files, read with h5py

From each NWB file: the dF/F traces (``processing/brain_observatory_pipeline/DfOverF/
imaging_plane_1/data``, cells x 2-photon frames), the cell ids (``.../ImageSegmentation/
cell_specimen_ids``), the natural-scenes stimulus table (``stimulus/presentation/
natural_scenes_stimulus``: image index per sweep, -1 = blank; start and end 2-photon frames)
and the images (``stimulus/templates/natural_scenes_image_stack``, 118 x 918 x 1174
greyscale).

How it is read
    - response of a cell to a sweep: the mean dF/F over AllenSDK's natural-scenes response
      window, frames ``[start, start + 2 * sweeplength)`` with ``sweeplength`` = end - start
      of the table's second sweep (about 7 frames, so 0.5 s). AllenSDK's own
      ``mean_sweep_response`` applies that window to a sweep-wise re-baselined fluorescence;
      here it is applied to the released dF/F trace;
    - repetitions: the k-th showing of an image is repetition k (50 per image); every image
      must have the same number of repetitions in every experiment;
    - cells kept (defaults as in the paper): excitatory Cre lines (Emx1, Slc17a7, Cux2, Rorb,
      Scnn1a, Nr5a1, Rbp4, Fezf2, Tlx3, Ntsr1, by prefix; ``cre_lines``), not running
      modulated (``p_run_mod_ns`` >= 0.05 or unknown; ``running_p``), split-half
      reliability >= 0.8 (``reliability_threshold``): the Pearson r over stimuli between the
      means of the even and the odd repetitions (25/25), Spearman-Brown corrected; each
      filter's count is in ``dataset.info``;
    - neuroids: one per cell, ``region`` = visual area (VISp, VISl, VISal, VISpm, VISrl,
      VISam), ``subject`` = ``pooled`` (the paper pools the mice of an area); coordinates
      ``cre_line``, ``depth``, ``area``, ``experiment``, ``container``, ``reliability``;
    - stimuli ``ns000`` ... ``ns117`` (the NWB's 0-based image index); ``include_blank=True``
      adds the blank sweeps as stimulus ``blank`` (a uniform grey image, 127).

Ceilings: per cell, the split-half reliability (``reliability`` coordinate); the encoding
ceiling of an area is the mean of its square root; the RSA ceiling is the split-half RDM
reliability over repetitions.

Terms: Allen Institute Terms of Use (https://alleninstitute.org/terms-of-use/): free use
with citation.
"""

from __future__ import annotations

import json
import logging
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
from brainrank.plugins.datasets._common import RealDataset, format_counts

log = logging.getLogger("brainrank.datasets.allen")

IDENTIFIER = "allen/natural-scenes"
FOLDER = "allen-brain-observatory"
AREAS = ("VISp", "VISl", "VISal", "VISpm", "VISrl", "VISam")
EXCITATORY = (
    "Emx1",
    "Slc17a7",
    "Cux2",
    "Rorb",
    "Scnn1a",
    "Nr5a1",
    "Rbp4",
    "Fezf2",
    "Tlx3",
    "Ntsr1",
)
INHIBITORY = ("Sst", "Vip", "Pvalb")
SESSION_TYPE = "three_session_B"
BLANK_ID = "blank"
BLANK_LEVEL = 127

PIPELINE = "processing/brain_observatory_pipeline"
DFF = f"{PIPELINE}/DfOverF/imaging_plane_1/data"
CELL_IDS = f"{PIPELINE}/ImageSegmentation/cell_specimen_ids"
STIMULUS = "stimulus/presentation/natural_scenes_stimulus"
TEMPLATES = "stimulus/templates/natural_scenes_image_stack/data"

API = "http://api.brain-map.org"
RMA_OPTIONS = "rma::options[num_rows$eq'all'][count$eqfalse]"
EXPERIMENTS_QUERY = (
    f"{API}/api/v2/data/query.json?q=model::OphysExperiment,rma::include,"
    "well_known_files(well_known_file_type),targeted_structure,"
    f"specimen(donor(transgenic_lines[transgenic_line_type_code$eqD])),{RMA_OPTIONS}"
)
CELLS_QUERY = f"{API}/api/v2/data/query.json?q=model::ApiCamCellMetric,{RMA_OPTIONS}"

CITATION = (
    "de Vries SEJ, Lecoq JA, Buice MA, et al. (2020) A large-scale standardized physiological "
    "survey reveals functional organization of the mouse visual cortex. Nature Neuroscience "
    "23:138-151. Selection as in Conwell C, Mayo D, Buice MA, Katz B, Alvarez GA, Barbu A "
    "(2021) Neural regression, representational similarity, model zoology & neural taskonomy "
    "at scale in rodent visual cortex. NeurIPS."
)
LICENCE = "Allen Institute Terms of Use (free use with citation): https://alleninstitute.org/terms-of-use/"

METADATA = DatasetMetadata(
    species="mouse",
    modality="2-photon calcium imaging (GCaMP6, dF/F), Allen Brain Observatory Visual Coding",
    regions=AREAS,
    n_stimuli=118,
    citation=CITATION,
    licence=LICENCE,
    description=(
        "118 natural scenes x 50 repetitions; excitatory Cre lines, running-modulated cells "
        "removed, split-half reliability >= 0.8 (the paper keeps 6619 neurons); areas VISp, "
        "VISl, VISal, VISpm, VISrl, VISam; neuroids pooled over mice per area. Ceilings: "
        "split-half reliability per cell (encoding), split-half RDM reliability (rsa)."
    ),
)


# --------------------------------------------------------------------------- files


def _records(path: Path, what: str) -> list[dict[str, Any]]:
    """A JSON list of records, or an RMA response ``{"msg": [...]}``."""
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read {what} {path} ({exc}); delete it and download it again."
        ) from exc
    if isinstance(content, dict) and isinstance(content.get("msg"), list):
        content = content["msg"]
    if not isinstance(content, list):
        raise InputError(f"{path} is not a list of records; is it the {what}?")
    return content


def _experiment_session(record: dict[str, Any]) -> str:
    return str(record.get("session_type") or record.get("stimulus_name") or "")


def _nwb_link(record: dict[str, Any]) -> str | None:
    for entry in record.get("well_known_files") or []:
        kind = entry.get("well_known_file_type") or {}
        if kind.get("name") == "NWBOphys" and entry.get("download_link"):
            return f"{API}{entry['download_link']}"
    return None


def files(root: Path, subjects: Any = None) -> list[RemoteFile]:
    out = [
        RemoteFile("cell_specimens.json", (CELLS_QUERY,), description="cell metrics (about 60 MB)"),
        RemoteFile(
            "ophys_experiments.json",
            (EXPERIMENTS_QUERY,),
            description="experiments (lists the NWB files)",
            optional=True,
        ),
    ]
    wanted = None if subjects is None else {str(s) for s in subjects}
    experiments = root / "ophys_experiments.json"
    if experiments.is_file():
        for record in _records(experiments, "experiment table"):
            if _experiment_session(record) != SESSION_TYPE:
                continue
            if wanted is not None and str(record.get("id")) not in wanted:
                continue
            link = _nwb_link(record)
            out.append(
                RemoteFile(
                    f"ophys_experiment_data/{record['id']}.nwb",
                    (link,) if link else (),
                    description=f"{SESSION_TYPE} session",
                    note="" if link else "no NWBOphys file listed for this experiment",
                )
            )
    return out


SOURCE = DataSource(
    folder=FOLDER,
    files=files,
    terms=LICENCE,
    subjects_help="Allen: ophys experiment ids (default: every three_session_B experiment)",
)


# --------------------------------------------------------------------------- NWB


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value[()])
    return str(value)


def _optional(handle: Any, key: str) -> str:
    return _text(handle[key][()]) if key in handle else ""


def read_experiment(path: Path, include_blank: bool) -> dict[str, Any] | None:
    """The trial responses of one NWB file, or None when it has no natural-scenes stimulus."""
    from brainrank.data.readers import hdf5_dataset, open_hdf5, read_hdf5

    with open_hdf5(path, "Allen NWB file") as handle:
        if STIMULUS not in handle:
            return None
        dff = read_hdf5(hdf5_dataset(handle, DFF, path), (), path)
        cells = read_hdf5(hdf5_dataset(handle, CELL_IDS, path), (), path).astype(np.int64)
        frames = read_hdf5(hdf5_dataset(handle, f"{STIMULUS}/data", path), (), path)
        durations = read_hdf5(hdf5_dataset(handle, f"{STIMULUS}/frame_duration", path), (), path)
        meta = {
            "session_type": _optional(handle, "general/session_type"),
            "genotype": _optional(handle, "general/subject/genotype"),
            "location": _optional(handle, "general/optophysiology/imaging_plane_1/location"),
            "depth": _optional(handle, "general/optophysiology/imaging_plane_1/imaging depth"),
            "container": _optional(handle, "general/experiment_container_id"),
            "n_templates": int(handle[TEMPLATES].shape[0]) if TEMPLATES in handle else 0,
        }
    if dff.ndim != 2 or dff.shape[0] != cells.size:
        raise InputError(
            f"{path}: dF/F has shape {dff.shape} but there are {cells.size} cell ids; the rows of "
            "DfOverF and ImageSegmentation/cell_specimen_ids must match."
        )
    if durations.ndim != 2 or durations.shape != (frames.size, 2):
        raise InputError(
            f"{path}: the natural-scenes table has {frames.size} sweeps but frame_duration has "
            f"shape {durations.shape}; expected ({frames.size}, 2)."
        )
    order = np.argsort(durations[:, 0], kind="stable")
    images = np.rint(frames[order]).astype(np.int64)
    start = durations[order, 0].astype(np.int64)
    end = durations[order, 1].astype(np.int64)
    if start.size < 2:
        raise InputError(f"{path}: the natural-scenes table has fewer than 2 sweeps.")
    sweeplength = int(end[1] - start[1])
    stop = np.minimum(start + 2 * sweeplength, dff.shape[1])
    if sweeplength < 1 or np.any(stop <= start) or start.min() < 0:
        raise InputError(
            f"{path}: sweep windows fall outside the {dff.shape[1]} frames of the dF/F trace "
            "(start/end in frame_duration must be 2-photon frame indices)."
        )
    cumulative = np.zeros((dff.shape[0], dff.shape[1] + 1))
    np.cumsum(dff, axis=1, out=cumulative[:, 1:])
    sweeps = (cumulative[:, stop] - cumulative[:, start]) / (stop - start)  # (cells, sweeps)
    keep = images >= 0 if not include_blank else images >= -1
    stimuli = sorted(set(images[keep].tolist()))
    counts = {s: int((images == s).sum()) for s in stimuli}
    if len(set(counts.values())) != 1:
        short = {
            f"{'blank' if s < 0 else s}": c for s, c in counts.items() if c != max(counts.values())
        }
        raise InputError(
            f"{path}: not every image has all repetitions ({max(counts.values())}); fewer for "
            f"{dict(list(short.items())[:5])}. The file is incomplete or not a full "
            f"{SESSION_TYPE} session."
        )
    reps = next(iter(counts.values()))
    trials = np.empty((reps, len(stimuli), cells.size), dtype=np.float32)
    for column, s in enumerate(stimuli):
        trials[:, column, :] = sweeps[:, images == s].T
    return {"trials": trials, "stimuli": stimuli, "cells": cells, "meta": meta, "path": path}


def split_half_even_odd(trials: np.ndarray) -> np.ndarray:
    """Pearson r over stimuli between the mean of the even and of the odd repetitions,
    Spearman-Brown corrected; ``trials`` is (repetitions, stimuli, cells)."""
    from brainrank.core.stats import pearson_columns, spearman_brown

    return spearman_brown(pearson_columns(trials[0::2].mean(0), trials[1::2].mean(0)))


def _cre(genotype: str) -> str:
    """``"Cux2-CreERT2/wt;Camk2a-tTA/wt;Ai93(TITL-GCaMP6f)/wt"`` -> ``"Cux2-CreERT2"``."""
    return genotype.split(";")[0].split("/")[0].strip()


def _is_excitatory(cre: str) -> bool:
    return any(cre.startswith(prefix) for prefix in EXCITATORY)


# --------------------------------------------------------------------------- building


def build(
    root: Path,
    *,
    areas: Any = AREAS,
    cre_lines: Any = "excitatory",
    reliability_threshold: float | None = 0.8,
    running_p: float | None = 0.05,
    include_blank: bool = False,
    experiments: Any = None,
    identifier: str = IDENTIFIER,
) -> RealDataset:
    """Read the natural-scenes sessions in ``root`` (see the module docstring)."""
    import pandas as pd

    areas = [areas] if isinstance(areas, str) else list(areas)
    unknown = [a for a in areas if a not in AREAS]
    if unknown:
        raise InputError(f"unknown area(s) {unknown}; known: {', '.join(AREAS)}.")
    require(identifier, root, files(root)[:1])
    cells_meta = {}
    for record in _records(root / "cell_specimens.json", "cell table (cell_specimens.json)"):
        if "cell_specimen_id" in record:
            cells_meta[int(record["cell_specimen_id"])] = record
    folder = root / "ophys_experiment_data"
    if experiments is not None:
        paths = [
            folder / f"{e}.nwb"
            for e in ([experiments] if isinstance(experiments, (int, str)) else experiments)
        ]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise DataUnavailableError(
                f"{len(missing)} NWB files are missing from {folder} (e.g. {missing[0].name}); "
                f"run `brainrank data download {identifier} --subjects {' '.join(p.stem for p in missing)}`."
            )
    else:
        paths = sorted(folder.glob("*.nwb")) if folder.is_dir() else []
    if not paths:
        raise DataUnavailableError(
            f"no NWB file in {folder}: expected <experiment id>.nwb files of {SESSION_TYPE} "
            f"sessions. Run `brainrank data download {identifier}` (it reads the experiment list "
            "from the Allen Brain Observatory API)."
        )

    counts = {"cells": 0, "not in areas": 0, "not excitatory": 0, "running modulated": 0,
              "unreliable": 0, "kept": 0}  # fmt: skip
    skipped = []
    blocks, rows = [], []
    reference: dict[str, Any] | None = None
    for path in paths:
        experiment = read_experiment(path, include_blank)
        if experiment is None:
            skipped.append(path.name)
            continue
        if reference is None:
            reference = experiment
        elif (experiment["stimuli"], experiment["trials"].shape[0]) != (
            reference["stimuli"],
            reference["trials"].shape[0],
        ):
            raise InputError(
                f"{path} has {experiment['trials'].shape[0]} repetitions of {len(experiment['stimuli'])} "
                f"stimuli but {reference['path'].name} has {reference['trials'].shape[0]} of "
                f"{len(reference['stimuli'])}; every session must show the same images equally often."
            )
        trials = experiment["trials"]
        reliability = split_half_even_odd(trials)
        meta = experiment["meta"]
        keep = np.zeros(trials.shape[2], dtype=bool)
        for n, cell in enumerate(experiment["cells"].tolist()):
            counts["cells"] += 1
            record = cells_meta.get(cell, {})
            area = str(record.get("area") or meta["location"])
            cre = str(record.get("tld1_name") or _cre(meta["genotype"]))
            p_run = record.get("p_run_mod_ns")
            if area not in areas:
                counts["not in areas"] += 1
            elif (cre_lines == "excitatory" and not _is_excitatory(cre)) or (
                cre_lines not in (None, "excitatory", "all")
                and not any(
                    cre.startswith(c)
                    for c in ([cre_lines] if isinstance(cre_lines, str) else cre_lines)
                )
            ):
                counts["not excitatory"] += 1
            elif running_p is not None and p_run is not None and float(p_run) < running_p:
                counts["running modulated"] += 1
            elif reliability_threshold is not None and not reliability[n] >= reliability_threshold:
                counts["unreliable"] += 1
            else:
                keep[n] = True
                depth = record.get("imaging_depth") or "".join(
                    ch for ch in meta["depth"] if ch.isdigit()
                )
                rows.append(
                    {
                        "neuroid_id": str(cell),
                        "region": area,
                        "cre_line": cre,
                        "depth": int(depth) if str(depth).isdigit() else -1,
                        "experiment": path.stem,
                        "container": str(
                            record.get("experiment_container_id") or meta["container"]
                        ),
                        "reliability": float(reliability[n]),
                    }
                )
        blocks.append(trials[:, :, keep])
    if reference is None:
        raise DataUnavailableError(
            f"none of the {len(paths)} NWB files in {folder} has a natural-scenes stimulus "
            f"({SESSION_TYPE} sessions have one)."
        )
    counts["kept"] = len(rows)
    if skipped:
        log.info("Allen: %d NWB files without natural scenes skipped", len(skipped))
    log.info("Allen cells: %s", format_counts(counts))
    if not rows:
        raise InputError(
            f"no cell passes the selection ({format_counts(counts)}); loosen "
            "reliability_threshold, running_p or cre_lines."
        )
    table = pd.DataFrame(rows)
    if table["neuroid_id"].duplicated().any():
        raise InputError(
            f"cells {table.loc[table['neuroid_id'].duplicated(), 'neuroid_id'].tolist()[:3]} appear "
            "in two NWB files; keep one natural-scenes session per imaging plane."
        )
    trials = np.concatenate(blocks, axis=2)  # (reps, stimuli, cells)
    n_reps, n_stim, n_cells = trials.shape
    stimulus_ids = [BLANK_ID if s < 0 else f"ns{s:03d}" for s in reference["stimuli"]]
    responses = make_responses(
        trials.reshape(n_reps * n_stim, n_cells),
        stimulus_id=np.tile(np.asarray(stimulus_ids, dtype=object), n_reps),
        repetition=np.repeat(np.arange(n_reps), n_stim),
        neuroid_id=table["neuroid_id"].tolist(),
        subject="pooled",
        region=table["region"].to_numpy(dtype=object),
        neuroid_coords={
            "area": table["region"].to_numpy(dtype=object),
            "cre_line": table["cre_line"].to_numpy(dtype=object),
            "depth": table["depth"].to_numpy(),
            "experiment": table["experiment"].to_numpy(dtype=object),
            "container": table["container"].to_numpy(dtype=object),
            "reliability": table["reliability"].to_numpy(),
        },
        name=identifier,
    )
    stimuli = _stimulus_set(reference["path"], reference["stimuli"], stimulus_ids, identifier)
    info = {"cells": counts, "skipped_files": skipped, "n_repetitions": n_reps,
            "n_experiments": len(blocks)}  # fmt: skip
    return RealDataset(identifier, stimuli, METADATA, responses=responses, info=info)


def _stimulus_set(path: Path, indices: list[int], ids: list[str], identifier: str) -> StimulusSet:
    from brainrank.data.readers import hdf5_dataset, open_hdf5, read_hdf5

    with open_hdf5(path, "Allen NWB file") as handle:
        templates = hdf5_dataset(handle, TEMPLATES, path)
        shape = tuple(templates.shape)
    images = [i for i in indices if i >= 0]
    if len(shape) != 3 or (images and max(images) >= shape[0]):
        raise InputError(
            f"{path}: the stimulus table refers to image {max(images)} but the template stack "
            f"has shape {shape} (images, height, width)."
        )
    position = dict(zip(ids, indices, strict=True))

    def load(stimulus_id: str) -> np.ndarray:
        index = position[stimulus_id]
        if index < 0:
            return np.full(shape[1:], BLANK_LEVEL, dtype=np.uint8)
        with open_hdf5(path, "Allen NWB file") as handle:
            return read_hdf5(handle[TEMPLATES], index, path)

    return StimulusSet(identifier, ids, load, content_id=f"allen-natural-scenes:{shape}")


FACTORY = DatasetFactory(build, SOURCE)


@hookimpl
def brainrank_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(IDENTIFIER, FACTORY, METADATA, available=FACTORY.available)]
