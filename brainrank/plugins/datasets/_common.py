"""Helpers shared by the dataset plugins that read real data: a Dataset with lazily computed
ceilings and a record of what the loader selected, inter-subject RDM ceilings, pooled RDMs.

Nothing here imports heavy libraries at module import time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.core import noise_ceiling
from brainrank.plugin import Dataset, DatasetMetadata, InputError, RDMSet, StimulusSet

log = logging.getLogger("brainrank.datasets")

CeilingFunction = Callable[[], dict[tuple[str, str], float]]


class RealDataset(Dataset):
    """A :class:`Dataset` read from files.

    - ``reliability``: per-neuroid reliability (fraction of explainable variance of the
      trial-averaged response), or a function computing it on first use; used by
      :meth:`neuroid_reliability` and, through it, by the default ``"encoding"`` ceiling (the
      mean of its square root);
    - ``ceilings``: ``{kind: function}`` computing the ceiling of a kind on first use
      (overriding the default of that kind);
    - ``info``: what the loader did (files read, neuroids selected and dropped, options).
    """

    def __init__(
        self,
        identifier: str,
        stimuli: StimulusSet,
        metadata: DatasetMetadata,
        *,
        responses: Any = None,
        rdms: RDMSet | None = None,
        reliability: np.ndarray | Callable[[], np.ndarray] | None = None,
        ceilings: Mapping[str, CeilingFunction] | None = None,
        info: Mapping[str, Any] | None = None,
    ):
        super().__init__(identifier, stimuli, metadata, responses=responses, rdms=rdms)
        self._reliability_function = reliability if callable(reliability) else None
        self._reliability = None if callable(reliability) else self._checked(reliability)
        self._ceiling_functions = dict(ceilings or {})
        self._ceiling_cache: dict[str, dict[tuple[str, str], float]] = {}
        self.info: dict[str, Any] = dict(info or {})

    def _checked(self, reliability: Any) -> np.ndarray | None:
        if reliability is None:
            return None
        reliability = np.asarray(reliability, dtype=np.float64)
        responses = self.responses()
        n = responses.sizes["neuroid"] if responses is not None else reliability.size
        if reliability.shape != (n,):
            raise InputError(f"reliability has shape {reliability.shape}; need ({n},).")
        return reliability

    def neuroid_reliability(self) -> np.ndarray | None:
        if self._reliability is None and self._reliability_function is not None:
            self._reliability = self._checked(self._reliability_function())
        return super().neuroid_reliability()

    def ceiling(self, kind: str) -> dict[tuple[str, str], float]:
        if kind in self._ceiling_functions:
            if kind not in self._ceiling_cache:
                self._ceiling_cache[kind] = dict(self._ceiling_functions[kind]())
            return dict(self._ceiling_cache[kind])
        return super().ceiling(kind)

    def published_ceiling_kinds(self) -> list[str]:
        return list(self._ceiling_functions)

    @property
    def ceiling_kinds(self) -> list[str]:
        kinds = list(self._ceiling_functions)
        if self.responses() is not None:
            kinds += [k for k in ("encoding", "rsa") if k not in kinds]
        return kinds


# --------------------------------------------------------------------------- RDM ceilings


def _vectors(rdms: np.ndarray) -> np.ndarray:
    from brainrank.core.rsa import upper_triangle

    return upper_triangle(np.asarray(rdms, dtype=np.float64))


# the Nili et al. bounds (rsatoolbox's boot_noise_ceiling) live in the core, where the RSA
# metric computes them too
pool_rdms = noise_ceiling.pool_rdms
rdm_noise_ceiling = noise_ceiling.rdm_noise_ceiling


def pairwise_rdm_ceiling(rdms: np.ndarray, method: str = "pearson") -> tuple[float, np.ndarray]:
    """The inter-subject reference of the NSD paper (Conwell et al., "5.17 billion fits"):
    the mean over pairs of subjects of the comparison of their RDMs.

    Returns ``(mean over pairs, per-RDM mean over its pairs)``; the mean of the per-RDM
    values equals the mean over pairs. Lower than the leave-one-out bound of
    :func:`rdm_noise_ceiling`, whose pooled RDM of the others averages their noise away
    (92-image human IT: 0.284 pairwise vs 0.394 leave-one-subject-out).
    """
    from brainrank.core.rsa import compare

    v = _vectors(rdms)
    m = v.shape[0]
    if m < 2:
        raise InputError("a pairwise RDM ceiling needs at least 2 RDMs.")
    table = np.full((m, m), np.nan)
    for i in range(m):
        for j in range(i + 1, m):
            table[i, j] = table[j, i] = compare(v[i], v[j], method)
    per_rdm = np.nanmean(table, axis=1)
    return float(table[np.triu_indices(m, 1)].mean()), per_rdm


def intersubject_rdm_ceiling(averaged: Any, min_neuroids: int = 2) -> dict[tuple[str, str], float]:
    """Per (subject, region): Pearson r between the subject's RDM (correlation distance of the
    trial-averaged responses) and the pooled RDM of the other subjects in the same region.

    This is the inter-subject reference of the NSD paper: how well one brain's geometry is
    predicted by the others'; a region needs at least 2 subjects (else it has no entry).
    """
    from brainrank.core.rsa import rdm
    from brainrank.plugin import neuroid_groups

    values = np.asarray(averaged.values, dtype=np.float64)
    by_region: dict[str, list[tuple[str, np.ndarray]]] = {}
    for (subject, region), index in neuroid_groups(averaged):
        if index.size >= min_neuroids:
            by_region.setdefault(region, []).append(
                (subject, rdm(values[:, index], "correlation", dtype="float64"))
            )
    out: dict[tuple[str, str], float] = {}
    for region, items in by_region.items():
        if len(items) < 2:
            continue
        stack = np.stack([m for _, m in items])
        if np.isnan(stack).any():
            log.warning("region %s has stimuli with constant patterns; no RDM ceiling", region)
            continue
        _, _, per_subject = rdm_noise_ceiling(stack, "pearson")
        for (subject, _), value in zip(items, per_subject, strict=True):
            out[(subject, region)] = float(value)
    return out


# --------------------------------------------------------------------------- encoding ceilings


def cross_subject_prediction(averaged: Any, alphas: Any = None) -> np.ndarray:
    """Per neuroid, the Pearson r with which the *other* subjects' responses in the same
    region predict it: leave-one-stimulus-out ridge from the concatenated neuroids of the
    other subjects (alpha per neuroid from ``alphas``, chosen by LOO r). NaN for neuroids
    of regions measured in one subject only.

    This is the cross-subject noise ceiling of Neural Taskonomy (Wang et al. 2019): how well
    any model could do if it were as good as another brain.
    """
    from brainrank.core.ridge import DEFAULT_ALPHAS, ridge_loo

    values = np.asarray(averaged.values, dtype=np.float64)
    subjects = np.asarray(averaged["subject"].values).astype(str)
    regions = np.asarray(averaged["region"].values).astype(str)
    out = np.full(values.shape[1], np.nan)
    for region in dict.fromkeys(regions):
        in_region = regions == region
        for subject in dict.fromkeys(subjects[in_region]):
            target = in_region & (subjects == subject)
            others = in_region & (subjects != subject)
            if not others.any():
                continue
            result = ridge_loo(
                values[:, others],
                values[:, target],
                alphas=DEFAULT_ALPHAS if alphas is None else alphas,
                scoring="pearson",
                return_predictions=False,
            )
            out[target] = result.scores
    return out


def mean_by_group(averaged: Any, per_neuroid: np.ndarray) -> dict[tuple[str, str], float]:
    from brainrank.plugin import neuroid_groups

    out = {}
    for key, index in neuroid_groups(averaged):
        values = per_neuroid[index]
        if np.isfinite(values).any():
            out[key] = float(np.nanmean(values))
    return out


# --------------------------------------------------------------------------- processed cache


def file_stamp(paths: Iterable[Path], root: Path) -> list[tuple[str, int, int]]:
    """``(relative path, size, mtime_ns)`` of each existing file: changes when a file does."""
    out = []
    for path in paths:
        if path.is_file():
            stat = path.stat()
            out.append((str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns))
    return out


def processed_cache_path(name: str, payload: Mapping[str, Any]) -> Path:
    """Where the processed responses of a load with these inputs are cached (in the
    feature cache folder, not the data folder, which may be read-only)."""
    import hashlib
    import json

    from brainrank.plugin import cache_dir

    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return cache_dir() / "datasets" / f"{name}-{digest[:24]}.nc"


def save_processed(path: Path, responses: Any, info: Mapping[str, Any]) -> None:
    """Write responses and the loader's record atomically; a failure only costs speed."""
    import json
    import os

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".part")
        out = responses.rename("responses")
        out.attrs = {"brainrank_info": json.dumps(info, default=str)}
        out.to_netcdf(temporary, engine="netcdf4")
        os.replace(temporary, path)
    except Exception as exc:  # read-only cache folder, full disk...
        log.warning("could not cache the processed dataset at %s: %s", path, exc)


def load_processed(path: Path, name: str) -> tuple[Any, dict[str, Any]] | None:
    """``(responses, info)`` from :func:`save_processed`, or None (absent or unreadable)."""
    import json

    if not path.is_file():
        return None
    try:
        import xarray as xr

        with xr.open_dataarray(path, engine="netcdf4") as array:
            responses = array.load()
        info = json.loads(responses.attrs.get("brainrank_info", "{}"))
        responses.attrs = {}
        responses.name = name
        for coord in list(responses.coords):
            if responses[coord].dtype.kind in "SU":
                responses[coord] = responses[coord].astype(object)
        return responses, info
    except Exception as exc:
        log.warning("ignoring the unreadable cached dataset %s: %s", path, exc)
        return None


# --------------------------------------------------------------------------- small helpers


def parse_subjects(
    subjects: Iterable[Any] | Any, known: Sequence[str], normalise: Callable[[Any], str]
) -> list[str]:
    """Normalise a subject selection and check it against ``known`` (message lists them)."""
    if isinstance(subjects, (str, int)):
        subjects = [subjects]
    out = []
    for s in subjects:
        name = normalise(s)
        if name not in known:
            raise InputError(f"unknown subject {s!r}; known subjects: {', '.join(known)}.")
        if name not in out:
            out.append(name)
    if not out:
        raise InputError("no subject selected.")
    return out


def format_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())
