"""``majajhong2015/public`` and ``majajhong2015/private``: Brain-Score's HvM recordings.

Macaque V4 and IT multi-unit responses (Utah arrays, 2 monkeys) to the HvM object images
(Majaj, Hong, Solomon & DiCarlo 2015), as packaged by Brain-Score/brainio: ``public`` = the
images of variations 0 and 3 (3200 images), ``private`` = variation 6 (2560 images).

Files (under ``<data_dir>/majajhong2015``, brainio's names)::

    assy_dicarlo_MajajHong2015_public.nc     netCDF-4 assembly (presentation, neuroid, time_bin)
    stimulus_dicarlo_hvm-public.csv          stimulus table (image_file_name or filename)
    stimulus_dicarlo_hvm-public.zip          the images (PNG, 256 px)
    (and the same with "private"; the legacy names image_dicarlo_hvm-public.* are accepted)

How it is read (as Brain-Score's benchmark does)
    - the single data variable of the file, its coordinates stored without index variables;
      ``image_id`` (legacy files) stands for ``stimulus_id``; the single 70-170 ms time bin
      is squeezed;
    - the 40 ``Tito_L_P_*`` sites Brain-Score's packaging removes are removed if present;
      presentations of other variations than the split's are removed if present;
    - regions IT (168 sites) and V4 (88), ``subject`` = ``pooled`` (both monkeys, coordinate
      ``animal``); trial-level responses with their ``repetition`` coordinate (about 50
      repetitions per image; metrics average them);
    - sites with non-finite values are dropped (counted in ``dataset.info``).

Ceilings: Brain-Score's internal consistency: 10 random halves of the repetition values
(scikit-learn ``ShuffleSplit(train_size=0.5, random_state=1)``), each half averaged per
image, Pearson r per site across images, Spearman-Brown (n = 2), median over the region's
sites, mean over splits: ``ceiling("internal-consistency")`` (Brain-Score's reference values
for the private data: V4 0.895, IT 0.822). Brain-Score divides r by it; in brainrank's
convention a ceiling is the r a perfect model reaches, so ``ceiling("encoding")`` is its
square root. Per site (mean over splits): :meth:`neuroid_reliability`. ``ceiling("rsa")``:
the same splits applied to the region's RDM (split-half RDM r, Spearman-Brown, square root).

Licence: Brain-Score's public data (MIT-licensed project); cite Majaj et al. 2015 and
Schrimpf et al. 2018. The private split is kept private by Brain-Score for its leaderboard.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.data.files import DatasetFactory, DataSource, RemoteFile
from brainrank.plugin import (
    DatasetMetadata,
    DatasetSpec,
    DataUnavailableError,
    InputError,
    StimulusSet,
    hookimpl,
    make_responses,
)
from brainrank.plugins.datasets._common import RealDataset

log = logging.getLogger("brainrank.datasets.majajhong2015")

FOLDER = "majajhong2015"
REGIONS = ("IT", "V4")
VARIATIONS = {"public": (0, 3), "private": (6,)}
N_IMAGES = {"public": 3200, "private": 2560}
DROPPED_PREFIX = "Tito_L_P_"
STORAGE = (
    "https://brainscore-storage.s3.amazonaws.com/brainio-brainscore",
    "https://brainio-brainscore.s3.amazonaws.com",
)
#: sha1 of the released files (Brain-Score's data registry)
SHA1 = {
    "assy_dicarlo_MajajHong2015_public.nc": "13d28ca0ce88ee550b54db3004374ae19096e9b9",
    "stimulus_dicarlo_hvm-public.csv": "5ca7a3da00d8e9c694a9cd725df5ba0ad6d735af",
    "stimulus_dicarlo_hvm-public.zip": "8aa44e038d7b551efa8077467622f9d48d72e473",
    "assy_dicarlo_MajajHong2015_private.nc": "7a40d16148d6f82939155f0bd976d310857fb156",
    "stimulus_dicarlo_hvm-private.csv": "6ff4981722fa05feb73a2bd26bbbba8b50dc29a6",
    "stimulus_dicarlo_hvm-private.zip": "d7b1ca1876dad87e15b0242b4c82c0203ff3cbd3",
}
LEGACY_URL = "https://brainio.dicarlo.s3.amazonaws.com/assy_dicarlo_MajajHong2015_public.nc"

CITATION = (
    "Majaj NJ, Hong H, Solomon EA, DiCarlo JJ (2015) Simple learned weighted sums of inferior "
    "temporal neuronal firing rates accurately predict human core object recognition "
    "performance. J Neurosci 35(39):13402-13418. Packaged by Brain-Score (Schrimpf et al. 2018)."
)
LICENCE = "Brain-Score public data (cite Majaj et al. 2015 and Schrimpf et al. 2018)."


def names(split: str) -> dict[str, str]:
    return {
        "assembly": f"assy_dicarlo_MajajHong2015_{split}.nc",
        "csv": f"stimulus_dicarlo_hvm-{split}.csv",
        "zip": f"stimulus_dicarlo_hvm-{split}.zip",
    }


def _legacy(name: str) -> str:
    return name.replace("stimulus_", "image_", 1)


def files_for(split: str):
    def files(root: Path, subjects: Any = None) -> list[RemoteFile]:
        out = []
        for kind, name in names(split).items():
            urls = tuple(f"{base}/{name}" for base in STORAGE)
            if name == "assy_dicarlo_MajajHong2015_public.nc":
                urls += (LEGACY_URL,)
            note = (
                "Brain-Score keeps the private split for its own benchmarks; it may not be "
                "publicly downloadable"
                if split == "private"
                else ""
            )
            # brainio's older local name (image_...) counts as the same file
            local = _legacy(name) if (root / _legacy(name)).is_file() else name
            out.append(
                RemoteFile(local, urls, checksum=("sha1", SHA1[name]), description=kind, note=note)
            )
        return out

    return files


def _locate(root: Path, name: str) -> Path | None:
    for candidate in (name, _legacy(name)):
        if (root / candidate).is_file():
            return root / candidate
    return None


def _read_assembly(path: Path) -> Any:
    import xarray as xr

    from brainrank.data.readers import REDOWNLOAD

    try:
        with xr.open_dataarray(path) as array:
            return array.load()
    except ValueError as exc:
        if "data variable" not in str(exc):  # not a netCDF file xarray can open at all
            raise InputError(
                f"cannot read the netCDF assembly {path} ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())}); {REDOWNLOAD.replace('DATASET', 'majajhong2015')}."
            ) from exc
        raise InputError(
            f"{path} is not a single-variable brainio assembly ({exc}); expected one data "
            "variable ('data' or '__xarray_dataarray_variable__')."
        ) from exc
    except Exception as exc:
        raise InputError(
            f"cannot read the netCDF assembly {path} ({type(exc).__name__}: {exc}); "
            f"{REDOWNLOAD.replace('DATASET', 'majajhong2015')}."
        ) from exc


def _coordinate(array: Any, *candidates: str) -> np.ndarray | None:
    for name in candidates:
        if name in array.coords:
            return np.asarray(array[name].values)
    return None


def internal_consistency(
    values: np.ndarray,
    stimulus: np.ndarray,
    repetition: np.ndarray,
    n_splits: int = 10,
    seed: int = 1,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Per neuroid, the Spearman-Brown corrected split-half r for each split over repetition
    values (:func:`brainrank.core.stats.internal_consistency`): returns ``(r (n_splits,
    n_neuroids), [(half_a, half_b) means per split])``."""
    from brainrank.core.splits import repetition_halves
    from brainrank.core.stats import internal_consistency as consistency

    if np.unique(repetition).size < 2:
        raise InputError("the internal-consistency ceiling needs at least 2 repetition values.")
    halves = [
        (a, b)
        for _, a, b in repetition_halves(values, stimulus, repetition, n_splits=n_splits, seed=seed)
    ]
    return consistency(values, stimulus, repetition, n_splits=n_splits, seed=seed), halves


def build(
    root: Path,
    *,
    split: str = "public",
    regions: Any = REGIONS,
    identifier: str | None = None,
) -> RealDataset:
    """Read the HvM assembly of ``split`` from ``root`` (see the module docstring)."""

    if split not in VARIATIONS:
        raise InputError(f"split must be 'public' or 'private', got {split!r}.")
    identifier = identifier or f"majajhong2015/{split}"
    regions = [regions] if isinstance(regions, str) else list(regions)
    file_names = names(split)
    paths = {kind: _locate(root, name) for kind, name in file_names.items()}
    missing = [file_names[k] for k, p in paths.items() if p is None]
    if missing:
        from brainrank.data.files import missing_files_error

        listed = {f.path: f for f in files_for(split)(root)}  # none present: brainio names
        raise missing_files_error(identifier, root, [listed[m] for m in missing])

    array = _read_assembly(paths["assembly"])
    if "time_bin" in array.dims:
        if array.sizes["time_bin"] != 1:
            raise InputError(
                f"{paths['assembly']} has {array.sizes['time_bin']} time bins; brainrank reads the "
                "single 70-170 ms bin of MajajHong2015 (not the temporal assemblies)."
            )
        array = array.isel(time_bin=0)
    for dim in ("presentation", "neuroid"):
        if dim not in array.dims:
            raise InputError(
                f"{paths['assembly']} has dims {array.dims}; expected presentation and neuroid."
            )
    array = array.transpose("presentation", "neuroid")
    stimulus = _coordinate(array, "stimulus_id", "image_id")
    repetition = _coordinate(array, "repetition")
    neuroid_id = _coordinate(array, "neuroid_id")
    region = _coordinate(array, "region")
    if stimulus is None or repetition is None or neuroid_id is None or region is None:
        raise InputError(
            f"{paths['assembly']} lacks one of the coordinates stimulus_id/image_id, repetition, "
            "neuroid_id, region; is it a brainio neural assembly?"
        )
    stimulus = stimulus.astype(str)
    neuroid_id = neuroid_id.astype(str)
    region = region.astype(str)
    counts = {"sites": int(neuroid_id.size)}
    keep_neuroids = ~np.char.startswith(neuroid_id, DROPPED_PREFIX)
    counts[f"{DROPPED_PREFIX}* removed"] = int((~keep_neuroids).sum())
    keep_neuroids &= np.isin(region, regions)
    variation = _coordinate(array, "variation")
    keep_rows = np.ones(stimulus.size, dtype=bool)
    if variation is not None:
        keep_rows = np.isin(variation.astype(int), VARIATIONS[split])
        if not keep_rows.any():
            raise InputError(
                f"{paths['assembly']} holds variations {sorted(set(variation.tolist()))} only; "
                f"the {split} split is variation(s) {VARIATIONS[split]}."
            )
    values = np.asarray(array.values, dtype=np.float32)[np.ix_(keep_rows, keep_neuroids)]
    finite = np.isfinite(values).all(axis=0)
    counts["non-finite removed"] = int((~finite).sum())
    values = values[:, finite]
    selected = np.flatnonzero(keep_neuroids)[finite]
    counts["kept"] = int(selected.size)
    if selected.size == 0:
        raise InputError(f"no site of region(s) {regions} in {paths['assembly']}.")

    table = _read_csv(paths["csv"])
    id_column = "stimulus_id" if "stimulus_id" in table else "image_id"
    table[id_column] = table[id_column].astype(str)
    table = table.drop_duplicates(id_column).set_index(id_column)
    rows_stimulus = stimulus[keep_rows]
    order = list(dict.fromkeys(rows_stimulus.tolist()))
    unknown = [s for s in order if s not in table.index]
    if unknown:
        raise InputError(
            f"{len(unknown)} stimulus ids of {paths['assembly'].name} are not in {paths['csv'].name} "
            f"(e.g. {unknown[:3]}): the assembly and the stimulus table do not belong together."
        )
    stimuli = _stimulus_set(paths["zip"], table.loc[order], identifier)

    def neuroid_coord(name: str) -> np.ndarray | None:
        found = _coordinate(array, name)
        return None if found is None else found[selected]

    neuroid_coords = {}
    for name in ("animal", "arr", "hemisphere", "subregion", "col", "row"):
        found = neuroid_coord(name)
        if found is not None:
            neuroid_coords[name] = (
                found.astype(str).astype(object) if found.dtype.kind in "OUS" else found
            )
    presentation_coords = {}
    for name in ("object_name", "category_name", "variation"):
        found = _coordinate(array, name)
        if found is not None:
            presentation_coords[name] = found[keep_rows]
    repetition = repetition[keep_rows].astype(int)
    responses = make_responses(
        values,
        stimulus_id=rows_stimulus,
        repetition=repetition,
        neuroid_id=neuroid_id[selected],
        subject="pooled",
        region=region[selected].astype(object),
        presentation_coords=presentation_coords,
        neuroid_coords=neuroid_coords,
        name=identifier,
    )
    cache: dict[str, Any] = {}

    def consistency() -> tuple[np.ndarray, list]:
        if "ic" not in cache:
            cache["ic"] = internal_consistency(values.astype(np.float64), rows_stimulus, repetition)
        return cache["ic"]

    regions_of = region[selected]

    def ceiling_ic() -> dict[tuple[str, str], float]:
        r, _ = consistency()
        return {
            ("pooled", reg): float(np.mean(np.nanmedian(r[:, regions_of == reg], axis=1)))
            for reg in dict.fromkeys(regions_of.tolist())
        }

    def ceiling_encoding() -> dict[tuple[str, str], float]:
        return {k: float(np.sqrt(max(v, 0.0))) for k, v in ceiling_ic().items()}

    def ceiling_rsa() -> dict[tuple[str, str], float]:
        from brainrank.core.rsa import compare, rdm
        from brainrank.core.stats import spearman_brown

        _, halves = consistency()
        out = {}
        for reg in dict.fromkeys(regions_of.tolist()):
            columns = regions_of == reg
            if columns.sum() < 2:
                continue
            rs = [
                compare(rdm(a[:, columns], dtype="float64"), rdm(b[:, columns], dtype="float64"))
                for a, b in halves
            ]
            out[("pooled", reg)] = float(np.sqrt(max(float(spearman_brown(np.mean(rs))), 0.0)))
        return out

    info = {"split": split, "sites": counts, "n_images": len(order),
            "n_repetitions_per_image": int(np.bincount(np.unique(rows_stimulus, return_inverse=True)[1]).mean())}  # fmt: skip
    return RealDataset(
        identifier,
        stimuli,
        _metadata(split),
        responses=responses,
        reliability=lambda: np.nanmean(consistency()[0], axis=0),
        ceilings={
            "internal-consistency": ceiling_ic,
            "encoding": ceiling_encoding,
            "rsa": ceiling_rsa,
        },
        info=info,
    )


def _read_csv(path: Path) -> Any:
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except Exception as exc:
        raise InputError(f"cannot read the stimulus table {path} ({exc}).") from exc
    if "stimulus_id" not in table and "image_id" not in table:
        raise InputError(
            f"{path} has no stimulus_id or image_id column (columns: {list(table)[:10]})."
        )
    return table


def _stimulus_set(archive: Path, table: Any, identifier: str) -> StimulusSet:
    try:
        with zipfile.ZipFile(archive) as handle:
            members = [n for n in handle.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(
            f"{archive} is not a readable zip archive ({exc}); download it again."
        ) from exc
    by_name = {Path(m).name: m for m in members}
    column = next((c for c in ("filename", "image_file_name", "image_path") if c in table), None)
    if column is None:
        raise InputError(
            f"the stimulus table of {identifier} has no filename or image_file_name column."
        )
    member_of = {}
    missing = []
    for stimulus_id, name in zip(table.index, table[column].astype(str), strict=True):
        member = name if name in members else by_name.get(Path(name).name)
        if member is None:
            missing.append(name)
        member_of[stimulus_id] = member
    if missing:
        raise DataUnavailableError(
            f"{len(missing)} images of the stimulus table are not in {archive} (e.g. {missing[:3]}); "
            "the archive is incomplete: download it again."
        )

    def load(stimulus_id: str) -> np.ndarray:
        from PIL import Image

        with (
            zipfile.ZipFile(archive) as handle,
            handle.open(member_of[stimulus_id]) as fh,
            Image.open(fh) as image,
        ):
            return np.asarray(image.convert("RGB"))

    meta_columns = [c for c in ("object_name", "category_name", "variation") if c in table]
    meta = table[meta_columns].copy()
    meta.index.name = "stimulus_id"
    return StimulusSet(
        identifier,
        list(table.index),
        load,
        meta,
        content_id=f"{archive.name}:{archive.stat().st_size}",
    )


def _metadata(split: str) -> DatasetMetadata:
    return DatasetMetadata(
        species="macaque",
        modality="multi-unit electrophysiology (Utah arrays), mean rate 70-170 ms",
        regions=REGIONS,
        n_stimuli=N_IMAGES[split],
        citation=CITATION,
        licence=LICENCE,
        description=(
            f"HvM {split} split (variation {' and '.join(map(str, VARIATIONS[split]))}): "
            f"{N_IMAGES[split]} images, about 50 repetitions each; IT 168 and V4 88 sites "
            "(both monkeys pooled), all kept. Ceilings: Brain-Score's internal consistency "
            "(split over repetitions, Spearman-Brown, median over sites)."
        ),
    )


def _source(split: str) -> DataSource:
    return DataSource(
        folder=FOLDER,
        files=files_for(split),
        terms=LICENCE,
        subjects_help="",
    )


@hookimpl
def brainrank_datasets() -> list[DatasetSpec]:
    specs = []
    for split in VARIATIONS:
        factory = DatasetFactory(build, _source(split), {"split": split})
        specs.append(
            DatasetSpec(
                f"majajhong2015/{split}", factory, _metadata(split), available=factory.available
            )
        )
    return specs
