"""Neural responses and RDMs.

- Responses: an :class:`xarray.DataArray` with dims ``(presentation, neuroid)``, built and
  checked by :func:`make_responses` / :func:`check_responses`; :func:`average_repetitions`
  and :func:`neuroid_groups` for the metrics.
- :class:`RDMSet`: brain RDMs for datasets that publish RDMs only.
- Behavioural trials: a table with one row per trial (stimulus, subject, choice, correct
  label, condition), built and checked by :func:`make_trials` / :func:`check_trials`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from brainrank.core.errors import InputError

# --------------------------------------------------------------------------- responses

PRESENTATION = "presentation"
NEUROID = "neuroid"


def make_responses(
    data: Any,
    *,
    stimulus_id: Sequence[str],
    neuroid_id: Sequence[str],
    subject: Sequence[str] | str,
    region: Sequence[str] | str,
    repetition: Sequence[int] | None = None,
    presentation_coords: Mapping[str, Sequence[Any]] | None = None,
    neuroid_coords: Mapping[str, Sequence[Any]] | None = None,
    name: str = "responses",
):
    """Build a responses DataArray ``(presentation, neuroid)`` with the standard coords."""
    import xarray as xr

    values = np.asarray(data)
    if values.ndim != 2:
        raise InputError(f"responses must be 2-D (presentation, neuroid); got {values.shape}.")
    n_pres, n_neur = values.shape

    def per(value: Any, n: int, what: str) -> np.ndarray:
        if isinstance(value, str):
            return np.full(n, value, dtype=object)
        arr = np.asarray(value)
        if arr.shape != (n,):
            raise InputError(f"{what} has {arr.shape[0] if arr.ndim else 0} entries; need {n}.")
        return arr

    pcoords: dict[str, Any] = {
        "stimulus_id": (
            PRESENTATION,
            per(stimulus_id, n_pres, "stimulus_id").astype(str).astype(object),
        )
    }
    if repetition is not None:
        pcoords["repetition"] = (PRESENTATION, per(repetition, n_pres, "repetition").astype(int))
    for key, value in (presentation_coords or {}).items():
        pcoords[key] = (PRESENTATION, per(value, n_pres, key))
    ncoords: dict[str, Any] = {
        "neuroid_id": (NEUROID, per(neuroid_id, n_neur, "neuroid_id").astype(str).astype(object)),
        "subject": (NEUROID, per(subject, n_neur, "subject").astype(str).astype(object)),
        "region": (NEUROID, per(region, n_neur, "region").astype(str).astype(object)),
    }
    for key, value in (neuroid_coords or {}).items():
        ncoords[key] = (NEUROID, per(value, n_neur, key))
    da = xr.DataArray(
        values, dims=(PRESENTATION, NEUROID), coords={**pcoords, **ncoords}, name=name
    )
    check_responses(da)
    return da


def check_responses(responses: Any, what: str = "responses") -> None:
    """Raise :class:`InputError` unless ``responses`` follows the responses convention."""
    import xarray as xr

    if not isinstance(responses, xr.DataArray):
        raise InputError(f"{what} must be an xarray.DataArray, got {type(responses).__name__}.")
    if tuple(responses.dims) != (PRESENTATION, NEUROID):
        raise InputError(
            f"{what} has dims {tuple(responses.dims)}; expected ('presentation', 'neuroid')."
        )
    for coord, dim in (("stimulus_id", PRESENTATION), ("neuroid_id", NEUROID),
                       ("subject", NEUROID), ("region", NEUROID)):  # fmt: skip
        if coord not in responses.coords or responses.coords[coord].dims != (dim,):
            raise InputError(f"{what} lacks the coordinate {coord!r} along {dim!r}.")
    ids = responses["neuroid_id"].values
    if len(set(ids.tolist())) != len(ids):
        raise InputError(f"{what} has duplicated neuroid_id values; they must be unique.")
    values = np.asarray(responses.values)
    if not np.issubdtype(values.dtype, np.number):
        raise InputError(f"{what} must be numeric; got dtype {values.dtype}.")
    bad = ~np.isfinite(values)
    if bad.any():
        cols = np.flatnonzero(bad.any(axis=0))
        raise InputError(
            f"{what} contain {int(bad.sum())} NaN or infinite values in {cols.size} neuroids "
            f"(e.g. {[str(ids[c]) for c in cols[:3]]}); drop or impute them in the dataset "
            "loader."
        )


def average_repetitions(responses: Any):
    """Mean over presentations of the same stimulus, in order of first appearance.

    Returns a DataArray ``(presentation, neuroid)`` with one presentation per stimulus, the
    ``stimulus_id`` coordinate and an ``n_repetitions`` coordinate.
    """
    import xarray as xr

    check_responses(responses)
    ids = np.asarray(responses["stimulus_id"].values).astype(str)
    unique, first, inverse, counts = np.unique(
        ids, return_index=True, return_inverse=True, return_counts=True
    )
    order = np.argsort(first)
    values = np.asarray(responses.values, dtype=np.float64)
    sums = np.zeros((unique.size, values.shape[1]))
    np.add.at(sums, inverse, values)
    means = (sums / counts[:, None])[order].astype(responses.dtype, copy=False)
    coords = {k: v for k, v in responses.coords.items() if v.dims == (NEUROID,)}
    out = xr.DataArray(
        means,
        dims=(PRESENTATION, NEUROID),
        coords={
            **coords,
            "stimulus_id": (PRESENTATION, unique[order].astype(object)),
            "n_repetitions": (PRESENTATION, counts[order]),
        },
        name=responses.name,
    )
    return out


def neuroid_groups(responses: Any) -> list[tuple[tuple[str, str], np.ndarray]]:
    """``[((subject, region), neuroid positions), ...]`` in order of first appearance."""
    subjects = np.asarray(responses["subject"].values).astype(str)
    regions = np.asarray(responses["region"].values).astype(str)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(subjects, regions, strict=True)):
        groups.setdefault(key, []).append(i)
    return [(key, np.asarray(idx)) for key, idx in groups.items()]


# --------------------------------------------------------------------------- RDMs


@dataclass
class RDMSet:
    """A stack of RDMs ``(m, n, n)`` over the same ``n`` stimuli with per-RDM descriptors.

    ``descriptors`` has one dict per RDM with at least ``subject`` and ``region``.
    ``distance`` says what the dissimilarities are: ``"correlation"`` (1 - Pearson r, the
    default), ``"euclidean"`` (squared Euclidean per channel, rsatoolbox's), ``"crossnobis"``,
    or any other description (behavioural judgements...). The RSA metric compares a model
    RDM of the same distance where it can compute one (and refuses another, saying which to
    ask for), and records both with every score.
    """

    dissimilarities: np.ndarray
    stimulus_ids: tuple[str, ...]
    descriptors: list[dict[str, Any]]
    distance: str = "correlation"

    def __post_init__(self) -> None:
        d = np.asarray(self.dissimilarities, dtype=np.float64)
        if d.ndim == 2:
            d = d[None]
        n = len(self.stimulus_ids)
        if d.ndim != 3 or d.shape[1:] != (n, n):
            raise InputError(f"RDMs have shape {d.shape}; expected (m, {n}, {n}).")
        if len(self.descriptors) != d.shape[0]:
            raise InputError(
                f"{len(self.descriptors)} descriptors for {d.shape[0]} RDMs; give one per RDM."
            )
        for desc in self.descriptors:
            if "subject" not in desc or "region" not in desc:
                raise InputError("every RDM descriptor needs 'subject' and 'region'.")
        self.dissimilarities = d
        self.stimulus_ids = tuple(str(s) for s in self.stimulus_ids)

    def __len__(self) -> int:
        return self.dissimilarities.shape[0]


# --------------------------------------------------------------------------- behavioural trials

#: the columns every trial table has (:func:`make_trials`)
TRIAL_COLUMNS = ("stimulus_id", "subject", "choice", "truth", "condition")


def make_trials(
    *,
    stimulus_id: Sequence[str],
    subject: Sequence[str] | str,
    choice: Sequence[Any],
    truth: Sequence[Any],
    condition: Sequence[Any] | str = "behaviour",
    **columns: Sequence[Any],
):
    """Build a table of trial-level behavioural data: one row per trial.

    Parameters
    ----------
    stimulus_id : sequence of str
        The stimulus shown on each trial (an id of the dataset's stimulus set).
    subject : sequence of str or str
        Who responded on each trial (one name for all trials is allowed).
    choice : sequence
        The label the subject chose (e.g. ``"dog"``); compared as strings.
    truth : sequence
        The correct label of the trial's stimulus (the same for every trial of a stimulus
        within a condition).
    condition : sequence or str
        The task or condition of each trial (default ``"behaviour"``): metrics score each
        subject per condition and the condition is the score's *region*.
    **columns
        Anything else worth keeping (reaction times, sessions...), one value per trial.

    Returns
    -------
    pandas.DataFrame
        Columns ``stimulus_id``, ``subject``, ``choice``, ``truth``, ``condition`` (strings)
        plus ``columns``; checked by :func:`check_trials`.
    """
    import pandas as pd

    n = len(stimulus_id)

    def per(value: Any, what: str) -> np.ndarray:
        if isinstance(value, str):
            return np.full(n, value, dtype=object)
        arr = np.asarray(value)
        if arr.shape != (n,):
            raise InputError(f"{what} has {arr.shape[0] if arr.ndim else 0} entries; need {n}.")
        return arr

    table = {
        "stimulus_id": per(stimulus_id, "stimulus_id"),
        "subject": per(subject, "subject"),
        "choice": per(choice, "choice"),
        "truth": per(truth, "truth"),
        "condition": per(condition, "condition"),
    }
    for name in TRIAL_COLUMNS:
        table[name] = np.asarray([str(v) for v in table[name]], dtype=object)
    for key, value in columns.items():
        if key in table:
            raise InputError(f"column {key!r} is a standard trial column; pass it by name.")
        table[key] = per(value, key)
    trials = pd.DataFrame(table)
    check_trials(trials)
    return trials


def check_trials(trials: Any, what: str = "trials") -> None:
    """Raise :class:`InputError` unless ``trials`` is a trial table as :func:`make_trials`
    makes: a non-empty DataFrame with the standard columns, no missing values in them, and
    one ``truth`` per stimulus within a condition."""
    import pandas as pd

    if not isinstance(trials, pd.DataFrame):
        raise InputError(
            f"{what} must be a pandas DataFrame (see make_trials), got {type(trials).__name__}."
        )
    missing = [c for c in TRIAL_COLUMNS if c not in trials.columns]
    if missing:
        raise InputError(f"{what} lacks the columns {missing}; build it with make_trials().")
    if trials.empty:
        raise InputError(f"{what} has no trials.")
    blank = trials[list(TRIAL_COLUMNS)].isna().any(axis=1)
    if blank.any():
        raise InputError(
            f"{what} has {int(blank.sum())} trials with a missing stimulus, subject, choice, "
            "truth or condition; drop them (a trial without a response has no choice)."
        )
    truths = trials.groupby(["condition", "stimulus_id"])["truth"].nunique()
    mixed = truths[truths > 1]
    if len(mixed):
        condition, stimulus = mixed.index[0]
        raise InputError(
            f"{what}: {len(mixed)} stimuli have more than one correct label within a condition "
            f"(e.g. {stimulus!r} in {condition!r}); a stimulus's truth must be one label."
        )
