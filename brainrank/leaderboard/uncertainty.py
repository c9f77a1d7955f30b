"""Rank uncertainty: a paired bootstrap of the ranking's values over neuroids and subjects,
rank intervals, pairwise tests with multiple-comparison control, and ``brainrank compare``.

What is resampled, per ranking column (dataset, metric configuration)
---------------------------------------------------------------------
The ranking's value of a model is the mean over columns of the mean over regions of the
subject-averaged cell values (:mod:`brainrank.leaderboard.ranking`). Its sampling error is
estimated by resampling what the leaderboard stores, the same draw for every model (a
*paired* bootstrap: differences between models keep their correlation):

- **subjects**, when a column has at least :data:`MIN_SUBJECTS` (5) subjects: each draw
  resamples the dataset's subjects with replacement (one draw per dataset, shared by its
  columns); the population of inference is subjects. Any metric.
- **neuroids**, when a column has fewer subjects and every cell stores per-neuroid values
  (``srp-ridge``, ``encoding:taskonomy``, ``stacking``: each neuroid's held-out or
  leave-one-out r; the values of a summary row are those of its layer's row, and a
  ``heldout`` row that chose two layers takes the mean of both layers' values): each draw
  resamples the neuroids of every (subject, region) cell with replacement, subjects held
  fixed; the cell's draw is its ranked value plus the resampled mean's deviation from the
  full mean (scaled by the cell's ceiling normalisation), so a held-out or normalised value
  keeps its level. The population of inference is the neuroids of these subjects' regions.
- **nothing**, otherwise (``rsa``, ``versa`` and other population-level metrics with one to
  four subjects: one number per cell, no unit to resample): the column is held fixed, and
  the notes say so. Rank intervals then understate the uncertainty of such columns; a
  comparison that rests on them alone is not tested.

Stimuli are not resampled: the leaderboard stores no per-stimulus predictions (storing them
would take stimuli x neuroids numbers per row), so every interval and test is conditional
on the stimulus set. Two models that differ only in how well they happen to fit these
images can differ significantly here.

Large cells (models x neuroids x draws above :data:`EXACT_LIMIT`) draw their neuroid means
from the bootstrap's normal limit (mean, covariance over neuroids / n) instead of
multinomial counts; :func:`bootstrap` says which in its notes. Tested equal in distribution
on cells small enough for both.

Tests
-----
The pairwise test of two models is a t test of their difference with the bootstrap's
standard error: per column, the variance of the drawn differences times ``n / (n - 1)`` (the
bootstrap's variance of a mean over n units is ``(n - 1) / n`` of the unbiased one), with
``n - 1`` degrees of freedom (n: subjects, or the neuroids of the column's smallest cell);
columns combined with Welch-Satterthwaite degrees of freedom. With subjects as units this is
the paired t test over subjects of their per-subject differences. p-values of all pairs are
adjusted together, by Holm's step-down (family-wise error; default) or Benjamini-Hochberg
(false discovery rate). Calibrated: on data where two models are equal by construction the
false-positive rate at p < .05 is nominal (``tests/leaderboard/test_uncertainty.py``).

Rank intervals: per model, the ``ci`` percentile interval of its rank (1 = best; ties share
the better rank) over the draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from brainrank.core import stats
from brainrank.core.errors import InputError

#: fewest subjects for subjects to be the resampling unit of a column
MIN_SUBJECTS = stats.MIN_UNITS
#: above this many models x neuroids x draws, a cell's neuroid means come from the normal
#: limit of the bootstrap instead of multinomial counts
EXACT_LIMIT = 50_000_000
#: multiple-comparison corrections of the pairwise tests
CORRECTIONS = ("holm", "bh")

SUBJECTS = "subjects"
NEUROIDS = "neuroids"
FIXED = "none"

CellKey = tuple[str, str, str, str, str]  # model, dataset, config, region, subject


@dataclass
class NeuroidValues:
    """The per-neuroid values behind one ranked cell: ``ids`` and ``values`` aligned, and
    ``scale``: the factor from the stored score to the ranked value (1 / ceiling where the
    cell is ceiling-normalised, else 1)."""

    ids: np.ndarray
    values: np.ndarray
    scale: float = 1.0


@dataclass
class Draws:
    """Paired bootstrap draws of every model's ranked value.

    ``observed`` (M,) and ``draws`` (B, M): the ranked value (mean over columns) of each of
    ``models``; ``column_draws[c]`` (B, M) and ``column_observed[c]`` (M,) per column.
    ``plan``: per column the unit resampled (``subjects``, ``neuroids`` or ``none``), the
    number of units, the degrees of freedom and the variance factor of its tests, and why.
    """

    models: list[str]
    observed: np.ndarray
    draws: np.ndarray
    columns: list[str]
    column_observed: dict[str, np.ndarray]
    column_draws: dict[str, np.ndarray]
    plan: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    n_boot: int = 0

    @property
    def plan_of(self) -> dict[str, tuple[str, float, float]]:
        """column -> (unit, variance factor, degrees of freedom)."""
        if getattr(self, "_plan_of", None) is None:
            self._plan_of = {
                str(c): (str(u), float(f), float(d))
                for c, u, f, d in zip(self.plan["column"], self.plan["unit"],
                                      self.plan["factor"], self.plan["df"], strict=True)
            }  # fmt: skip
        return self._plan_of

    @property
    def tested(self) -> bool:
        """Whether any column has a unit to resample."""
        return bool((self.plan["unit"] != FIXED).any()) if not self.plan.empty else False


# --------------------------------------------------------------------------- the plan


def _column_of(dataset: str, config: str) -> str:
    return f"{dataset}/{config}"


def resampling_plan(
    cells: pd.DataFrame,
    arrays: Mapping[CellKey, NeuroidValues] | None = None,
    *,
    min_subjects: int = MIN_SUBJECTS,
    _memo: dict | None = None,
) -> pd.DataFrame:
    """Per column of ``cells`` (rows of :attr:`brainrank.leaderboard.ranking.Ranking.cells`):
    the unit resampled and why (see the module docstring). Columns: column, dataset, config,
    unit, n_units (subjects, or the neuroids of the smallest cell), n_subjects, df, factor
    (the bootstrap variance correction ``n / (n - 1)``), reason."""
    arrays = arrays or {}
    rows = []
    for (dataset, config), part in cells.groupby(["dataset", "config"], sort=True):
        subjects = sorted(set(part["subject"].astype(str)))
        keys = [
            (str(r.model), str(r.dataset), str(r.config), str(r.region), str(r.subject))
            for r in part.itertuples()
        ]
        have = [k in arrays for k in keys]
        row = {"column": _column_of(str(dataset), str(config)), "dataset": str(dataset),
               "config": str(config), "n_subjects": len(subjects)}  # fmt: skip
        if len(subjects) >= min_subjects:
            n = len(subjects)
            row.update(unit=SUBJECTS, n_units=n, df=n - 1.0, factor=n / (n - 1.0),
                       reason=f"{n} subjects resampled")  # fmt: skip
        elif have and all(have):
            sizes = [_common_size(arrays, part, cell, _memo) for cell in _cells_of(part)]
            n = int(min(sizes)) if sizes else 0
            if n >= 2:
                row.update(
                    unit=NEUROIDS, n_units=n, df=float(n - 1), factor=n / (n - 1.0),
                    reason=(f"neuroids resampled within each (subject, region); "
                            f"{len(subjects)} subject(s) held fixed"),
                )  # fmt: skip
            else:
                row.update(unit=FIXED, n_units=n, df=np.nan, factor=np.nan,
                           reason="fewer than 2 neuroids in a cell")  # fmt: skip
        else:
            why = (
                "no per-neuroid values stored"
                if not any(have)
                else f"per-neuroid values missing for {have.count(False)} of {len(have)} cells"
            )
            row.update(
                unit=FIXED, n_units=len(subjects), df=np.nan, factor=np.nan,
                reason=f"{len(subjects)} subject(s) (fewer than {min_subjects}) and {why}",
            )  # fmt: skip
        rows.append(row)
    columns = ["column", "dataset", "config", "unit", "n_units", "n_subjects", "df", "factor",
               "reason"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _cells_of(part: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted({(str(r), str(s)) for r, s in zip(part["region"], part["subject"], strict=True)})


def _common_ids(arrays: Mapping[CellKey, NeuroidValues], part: pd.DataFrame,
                cell: tuple[str, str], memo: dict | None = None) -> np.ndarray:  # fmt: skip
    """The neuroid ids every model of ``part`` has a finite value for in ``cell`` (sorted;
    kept in ``memo`` when given)."""
    region, subject = cell
    models = tuple(sorted(set(part["model"].astype(str))))
    dataset, config = str(part["dataset"].iloc[0]), str(part["config"].iloc[0])
    memo = {} if memo is None else memo
    key = (models, dataset, config, region, subject)
    if key in memo:
        return memo[key]
    common: set[str] | None = None
    out = np.array([], dtype=object)
    for model in models:
        found = arrays.get((model, dataset, config, region, subject))
        if found is None:
            common = None
            break
        finite = set(np.asarray(found.ids)[np.isfinite(found.values)].astype(str).tolist())
        common = finite if common is None else common & finite
    else:
        out = np.array(sorted(common or ()), dtype=object)
    memo[key] = out
    return out


def _common_size(arrays: Mapping[CellKey, NeuroidValues], part: pd.DataFrame,
                 cell: tuple[str, str], memo: dict | None = None) -> int:  # fmt: skip
    return int(_common_ids(arrays, part, cell, memo).size)


# --------------------------------------------------------------------------- the bootstrap


def bootstrap(
    cells: pd.DataFrame,
    arrays: Mapping[CellKey, NeuroidValues] | None = None,
    *,
    models: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    min_subjects: int = MIN_SUBJECTS,
) -> Draws:
    """Paired bootstrap draws of the ranked values of ``models`` (default: every model of
    ``cells``) from the ranked ``cells`` (model, dataset, config, region, subject, value:
    :attr:`Ranking.cells`) and, for the columns resampled over neuroids, their per-neuroid
    values ``arrays`` (see :func:`neuroid_arrays`). See the module docstring."""
    if n_boot < 100:
        raise InputError(f"n_boot must be at least 100 for percentile intervals, got {n_boot}.")
    if cells.empty:
        raise InputError("no ranked cells to resample.")
    arrays = arrays or {}
    models = sorted(set(cells["model"].astype(str))) if models is None else list(models)
    cells = cells[cells["model"].astype(str).isin(models)].copy()
    for column in ("model", "dataset", "config", "region", "subject"):
        cells[column] = cells[column].astype(str)
    memo: dict = {}  # common neuroid ids per cell, found once
    plan = resampling_plan(cells, arrays, min_subjects=min_subjects, _memo=memo)
    rng = np.random.default_rng(seed)
    m = len(models)
    position = {name: i for i, name in enumerate(models)}
    # one subject draw per dataset, shared by its columns
    subject_draws: dict[str, tuple[list[str], np.ndarray]] = {}
    for dataset in sorted(set(plan.loc[plan["unit"] == SUBJECTS, "dataset"])):
        subjects = sorted(set(cells.loc[cells["dataset"] == dataset, "subject"]))
        subject_draws[dataset] = (
            subjects,
            rng.integers(0, len(subjects), size=(n_boot, len(subjects))),
        )
    column_draws: dict[str, np.ndarray] = {}
    column_observed: dict[str, np.ndarray] = {}
    approximated = []
    for row in plan.itertuples():
        part = cells[(cells["dataset"] == row.dataset) & (cells["config"] == row.config)]
        regions = sorted(set(part["region"]))
        subjects = sorted(set(part["subject"]))
        # (models, regions, subjects) cell values; NaN where a region lacks a subject
        table = np.full((m, len(regions), len(subjects)), np.nan)
        ri = {r: i for i, r in enumerate(regions)}
        si = {s: i for i, s in enumerate(subjects)}
        for r in part.itertuples():
            table[position[r.model], ri[r.region], si[r.subject]] = float(r.value)
        observed = _column_value(table)
        column_observed[row.column] = observed
        if row.unit == SUBJECTS:
            names, index = subject_draws[row.dataset]
            columns = np.array([si.get(s, -1) for s in names])
            chosen = columns[index]  # (B, S) positions in this column's subjects (-1: none)
            padded = np.concatenate([table, np.full((m, len(regions), 1), np.nan)], axis=2)
            # (M, R, B, S) -> (B, M, R, S); -1 picks the NaN column: a subject not in it
            draws = _column_value(np.moveaxis(padded[:, :, chosen], 2, 0))
        elif row.unit == NEUROIDS:
            deviation = np.zeros((n_boot, m, len(regions), len(subjects)))
            for region, subject in _cells_of(part):
                ids = _common_ids(arrays, part, (region, subject), memo)
                matrix, scales = _aligned(arrays, models, row.dataset, row.config, region,
                                          subject, ids)  # fmt: skip
                means, exact = _resampled_means(matrix, n_boot, rng)
                if not exact:
                    approximated.append(f"{row.column}/{region}/{subject}")
                shift = (means - matrix.mean(axis=1)[None, :]) * scales[None, :]
                deviation[:, :, ri[region], si[subject]] = shift
            draws = _column_value(table[None] + deviation)
        else:
            draws = np.repeat(observed[None, :], n_boot, axis=0)
        column_draws[row.column] = draws
    columns = list(plan["column"])
    observed = np.mean([column_observed[c] for c in columns], axis=0)
    totals = np.mean([column_draws[c] for c in columns], axis=0)
    notes = describe_plan(plan, n_boot)
    if approximated:
        notes.append(
            f"Neuroid means of {len(approximated)} large cells drawn from the bootstrap's "
            "normal limit (mean, covariance over neuroids / n) rather than multinomial counts."
        )
    return Draws(models, observed, totals, columns, column_observed, column_draws, plan, notes,
                 n_boot)  # fmt: skip


def _column_value(table: np.ndarray) -> np.ndarray:
    """(..., models, regions, subjects) -> (..., models): the mean over regions of the mean
    over each region's subjects (NaN ignored)."""
    with np.errstate(invalid="ignore"), _quiet():
        return np.nanmean(np.nanmean(table, axis=-1), axis=-1)


class _quiet:
    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)


def _aligned(arrays: Mapping[CellKey, NeuroidValues], models: Sequence[str], dataset: str,
             config: str, region: str, subject: str,
             ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(models, neuroids) per-neuroid values on ``ids``, and each model's scale."""
    matrix = np.empty((len(models), ids.size))
    scales = np.empty(len(models))
    for i, model in enumerate(models):
        found = arrays[(model, dataset, config, region, subject)]
        position = {str(v): j for j, v in enumerate(np.asarray(found.ids).astype(str))}
        matrix[i] = np.asarray(found.values, dtype=np.float64)[[position[v] for v in ids]]
        scales[i] = found.scale
    return matrix, scales


def _resampled_means(matrix: np.ndarray, n_boot: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, bool]:  # fmt: skip
    """(B, models) means over neuroids resampled with replacement (the same draw for every
    model), and whether they are exact multinomial draws (else from the normal limit)."""
    m, v = matrix.shape
    if m * v * n_boot <= EXACT_LIMIT:
        counts = np.empty((n_boot, v))
        block = max(1, 2**22 // v)  # draws counted at once (32 MB of indices)
        for start in range(0, n_boot, block):
            b = min(block, n_boot - start)
            index = rng.integers(0, v, size=(b, v)) + (np.arange(b) * v)[:, None]
            counts[start : start + b] = np.bincount(index.ravel(), minlength=b * v).reshape(b, v)
        return counts @ matrix.T / v, True
    centre = matrix.mean(axis=1)
    covariance = np.atleast_2d(np.cov(matrix, ddof=0)) / v  # the bootstrap's own variance
    root = _psd_root(covariance)
    return centre[None, :] + rng.standard_normal((n_boot, m)) @ root.T, False


def _psd_root(covariance: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    return vectors * np.sqrt(np.clip(values, 0.0, None))[None, :]


def describe_plan(plan: pd.DataFrame, n_boot: int) -> list[str]:
    """The notes that say what a bootstrap resampled and what it held fixed."""
    notes = []
    by_unit = {u: list(plan.loc[plan["unit"] == u, "column"]) for u in (SUBJECTS, NEUROIDS, FIXED)}
    resampled = []
    if by_unit[SUBJECTS]:
        resampled.append(f"subjects ({', '.join(by_unit[SUBJECTS])})")
    if by_unit[NEUROIDS]:
        resampled.append(
            f"neuroids within each subject and region ({', '.join(by_unit[NEUROIDS])})"
        )
    if resampled:
        notes.append(
            f"Uncertainty: {n_boot} paired bootstrap draws (the same draw for every model) of "
            f"{'; '.join(resampled)}. Stimuli are not resampled (no per-stimulus values are "
            "stored): intervals and tests are conditional on these images."
        )
    if by_unit[FIXED]:
        reasons = plan.loc[plan["unit"] == FIXED, ["column", "reason"]]
        listed = "; ".join(f"{c}: {r}" for c, r in zip(reasons["column"], reasons["reason"],
                                                        strict=True))  # fmt: skip
        notes.append(
            "Held fixed in the bootstrap (no unit to resample; the intervals understate their "
            f"uncertainty): {listed}."
        )
    return notes


# --------------------------------------------------------------------------- rank intervals


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks of the rows of ``values`` (..., M): 1 for the highest; ties share the better
    rank; NaN ranks last."""
    v = np.where(np.isfinite(values), values, -np.inf)
    # rank = 1 + the number of models strictly better (sorted once per row, not M x M)
    flat = v.reshape(-1, v.shape[-1])
    ordered = np.sort(flat, axis=1)
    better = np.stack([flat.shape[1] - np.searchsorted(o, row, side="right")
                       for o, row in zip(ordered, flat, strict=True)])  # fmt: skip
    return (1 + better).reshape(v.shape)


def rank_intervals(draws: Draws, ci: float = 0.95) -> pd.DataFrame:
    """Per model its observed rank and the ``ci`` percentile interval of its rank over the
    draws (``rank_low`` the best, ``rank_high`` the worst end)."""
    if not 0 < ci < 1:
        raise InputError(f"ci must be in (0, 1), got {ci}.")
    drawn = ranks(draws.draws)  # (B, M)
    alpha = (1 - ci) / 2
    low = np.quantile(drawn, alpha, axis=0, method="lower")
    high = np.quantile(drawn, 1 - alpha, axis=0, method="higher")
    return pd.DataFrame({"model": draws.models, "rank": ranks(draws.observed),
                         "rank_low": low.astype(int), "rank_high": high.astype(int)})  # fmt: skip


# --------------------------------------------------------------------------- tests


@dataclass
class _Test:
    difference: float
    se: float
    df: float
    t: float
    p: float


def _difference_test(draws: Draws, a: int, b: int, columns: Sequence[str] | None = None) -> _Test:
    """t test of model a minus model b on ``columns`` (default: all; their mean)."""
    columns = list(draws.columns if columns is None else columns)
    plan = draws.plan_of
    diff = float(np.mean([draws.column_observed[c][a] - draws.column_observed[c][b]
                          for c in columns]))  # fmt: skip
    variances, dfs = [], []
    for c in columns:
        unit, factor, df = plan[c]
        if unit == FIXED:
            continue
        d = draws.column_draws[c][:, a] - draws.column_draws[c][:, b]
        variances.append(float(np.var(d, ddof=1)) * factor / len(columns) ** 2)
        dfs.append(df)
    nan = float("nan")
    if not variances:
        return _Test(diff, nan, nan, nan, nan)
    total = sum(variances)
    if total <= 0:
        return _Test(diff, 0.0, nan, nan, nan if diff == 0 else 0.0)
    df = total**2 / sum(v**2 / d for v, d in zip(variances, dfs, strict=True) if v > 0)
    se = math.sqrt(total)
    t = diff / se
    p = float(_p_value(t, df))
    return _Test(diff, se, df, t, p)


def _p_value(t: Any, df: Any) -> Any:
    """Two-sided p-value of t with df degrees of freedom (Student's t distribution)."""
    with np.errstate(invalid="ignore"):
        return 2 * stats._sps().t.sf(np.abs(t), df)


def adjust(p_values: Any, correction: str = "holm") -> np.ndarray:
    """Holm (family-wise error) or Benjamini-Hochberg (false discovery rate) adjusted
    p-values; NaN (tests not done) left out of the family."""
    if correction not in CORRECTIONS:
        raise InputError(f"correction must be one of {CORRECTIONS}, got {correction!r}.")
    if correction == "holm":
        return stats.holm(p_values)[0]
    return stats.fdr_bh(p_values)[0]


def pairwise_tests(draws: Draws, *, correction: str = "holm", alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of models: ``difference`` (a - b in the ranked value), its standard error,
    ``t``, ``df``, ``p`` and ``p_adjusted`` (over all pairs, ``correction``), and whether a
    beats b (``a_better``: adjusted p < ``alpha`` and difference > 0) or b beats a."""
    m, c = len(draws.models), len(draws.columns)
    first, second = np.triu_indices(m, k=1)
    observed = np.mean([draws.column_observed[col] for col in draws.columns], axis=0)
    difference = observed[first] - observed[second]
    # per column the variance of every pair's drawn difference, from the draws' covariance
    variances, dfs = [], []
    for col in draws.columns:
        unit, factor, df = draws.plan_of[col]
        if unit == FIXED:
            continue
        cov = np.atleast_2d(np.cov(draws.column_draws[col].T, ddof=1))
        pair = cov[first, first] + cov[second, second] - 2 * cov[first, second]
        variances.append(np.clip(pair, 0.0, None) * factor / c**2)
        dfs.append(df)
    nan = np.full(first.size, np.nan)
    if variances:
        v = np.stack(variances)  # (columns, pairs)
        total = v.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            df = total**2 / (v**2 / np.asarray(dfs)[:, None]).sum(axis=0)
            se = np.sqrt(total)
            t = difference / se
        p = np.where(total > 0, _p_value(t, df), np.where(difference == 0, np.nan, 0.0))
        se, t, df = np.where(total > 0, se, 0.0), np.where(total > 0, t, nan), np.where(
            total > 0, df, nan)  # fmt: skip
    else:
        se, t, df, p = nan, nan, nan, nan
    models = np.asarray(draws.models, dtype=object)
    table = pd.DataFrame({"a": models[first], "b": models[second], "difference": difference,
                          "se": se, "t": t, "df": df, "p": p},
                         columns=["a", "b", "difference", "se", "t", "df", "p"])  # fmt: skip
    table["p_adjusted"] = adjust(table["p"].to_numpy(dtype=np.float64), correction) if len(
        table) else []  # fmt: skip
    with np.errstate(invalid="ignore"):
        significant = table["p_adjusted"].to_numpy(dtype=np.float64) < alpha
    table["verdict"] = [
        (f"{a} > {b}" if d > 0 else f"{b} > {a}") if s else "no difference shown"
        for a, b, d, s in zip(table["a"], table["b"], table["difference"], significant,
                              strict=True)
    ]  # fmt: skip
    table.attrs["correction"] = correction
    table.attrs["notes"] = [
        f"Pairwise t tests of the difference in ranked value with the bootstrap's standard error; "
        f"p adjusted over the {len(table)} pairs by "
        + ("Holm's step-down (family-wise error)" if correction == "holm"
           else "Benjamini-Hochberg (false discovery rate)")
        + f"; verdict at adjusted p < {alpha}."
    ]  # fmt: skip
    return table


# --------------------------------------------------------------------------- reading the store


def neuroid_arrays(
    store: Any, cells: pd.DataFrame, rows: pd.DataFrame, selection: str | None = None
) -> dict[CellKey, NeuroidValues]:
    """The per-neuroid values behind each ranked cell, from the store.

    ``cells``: :attr:`Ranking.cells`; ``rows``: the rows the ranking was computed from (rows
    of :func:`brainrank.leaderboard.scores`, with ``score_id``, ``layer``, ``details`` and
    ``config``), ranked with ``selection`` (None: each metric's headline row). A summary
    row's values are its own, else those of its layer's row (the store keeps them once); a
    ``heldout`` row whose two halves chose different layers (``details["layers"]``) takes
    the mean of the two layers' values. Cells without values are left out (their column is
    then held fixed, see :func:`resampling_plan`)."""
    from brainrank.leaderboard.ranking import _headline

    if cells.empty or rows.empty or "score_id" not in rows.columns:
        return {}
    rows = rows.assign(subject=rows["subject"].astype(str), region=rows["region"].astype(str),
                       dataset=rows["dataset"].astype(str))  # fmt: skip
    chosen, _ = _headline(rows, selection)
    keys = ["model", "dataset", "config", "region", "subject"]
    chosen = chosen.merge(cells[keys].drop_duplicates(), on=keys, how="inner")
    if chosen.empty:
        return {}
    own = store.neuroid_values(chosen["score_id"].astype(int).tolist())
    wanted_layers: dict[tuple, list[str]] = {}
    for r in chosen.itertuples():
        if int(r.score_id) in own:
            continue
        details = r.details if isinstance(r.details, dict) else {}
        layers = [str(x) for x in details.get("layers", [])] or [str(r.layer)]
        wanted_layers[(r.model, r.dataset, r.metric, r.metric_hash, r.subject, r.region)] = sorted(
            set(layers)
        )
    layer_arrays: dict[tuple, tuple[list[str], np.ndarray]] = {}
    if wanted_layers:
        models = sorted({k[0] for k in wanted_layers})
        datasets = sorted({k[1] for k in wanted_layers})
        layer_rows = store.scores_frame(model=",".join(models), dataset=",".join(datasets),
                                        selection="layer")  # fmt: skip
        layer_rows = layer_rows[layer_rows["selection"] == "layer"]
        index = {}
        for r in layer_rows.itertuples():
            index[(r.model, r.dataset, r.metric, r.metric_hash, str(r.subject), str(r.region),
                   str(r.layer))] = int(r.score_id)  # fmt: skip
        needed = [index[(*k, layer)] for k, layers in wanted_layers.items() for layer in layers
                  if (*k, layer) in index]  # fmt: skip
        found = store.neuroid_values(needed)
        for key, score_id in index.items():
            if score_id in found:
                layer_arrays[key] = found[score_id]
    out: dict[CellKey, NeuroidValues] = {}
    values_of = dict(zip(map(tuple, cells[keys].astype(str).to_numpy()), cells["value"],
                         strict=True))  # fmt: skip
    for r in chosen.itertuples():
        key = (str(r.model), str(r.dataset), str(r.config), str(r.region), str(r.subject))
        if int(r.score_id) in own:
            ids, values = own[int(r.score_id)]
            ids, values = np.asarray(ids).astype(str), np.asarray(values, dtype=np.float64)
        else:
            base = (r.model, r.dataset, r.metric, r.metric_hash, r.subject, r.region)
            parts = [layer_arrays.get((*base, layer)) for layer in wanted_layers.get(base, [])]
            if not parts or any(p is None for p in parts):
                continue
            ids, values = _mean_aligned(parts)
        score = float(r.score) if r.score is not None else float("nan")
        value = float(values_of.get(key, np.nan))
        scale = value / score if np.isfinite(score) and score != 0 and np.isfinite(value) else 1.0
        out[key] = NeuroidValues(ids, values, scale)
    return out


def _mean_aligned(parts: list[tuple[list[str], np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    ids = [np.asarray(p[0]).astype(str) for p in parts]
    common = sorted(set.intersection(*(set(i.tolist()) for i in ids)))
    stacked = []
    for (_names, values), these in zip(parts, ids, strict=True):
        position = {v: j for j, v in enumerate(these)}
        stacked.append(np.asarray(values, dtype=np.float64)[[position[v] for v in common]])
    return np.asarray(common, dtype=object), np.mean(stacked, axis=0)


# --------------------------------------------------------------------------- for the ranking


def interval_source(
    store: Any, *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> Callable[[Any, pd.DataFrame, str | None], tuple[pd.DataFrame, list[str]]]:
    """What :func:`brainrank.leaderboard.ranking.rank_models` calls (``rank_intervals=``) to
    give each ranked model ``rank_low`` and ``rank_high``: the bootstrap of this module on
    the ranking's cells and the per-neuroid values ``store`` holds for them."""

    def source(ranking: Any, rows: pd.DataFrame, selection: str | None):
        empty = pd.DataFrame(columns=["model", "rank_low", "rank_high"])
        table = ranking.table
        ranked = [str(m) for m in table.loc[table["rank"].notna(), "model"]]
        if len(ranked) < 2 or ranking.cells is None or ranking.cells.empty:
            return empty, []
        cells = ranking.cells[ranking.cells["model"].astype(str).isin(ranked)]
        arrays = neuroid_arrays(store, cells, rows, selection)
        draws = bootstrap(cells, arrays, models=ranked, n_boot=n_boot, seed=seed)
        if not draws.tested:
            return empty, [
                "No rank intervals: no ranked column has a unit to resample ("
                + "; ".join(draws.plan["reason"])
                + ")."
            ]
        intervals = rank_intervals(draws, ci)
        note = (
            f"rank_low-rank_high: the {round(ci * 100)}% percentile interval of each model's "
            "rank over the draws (1 = best)."
        )
        return intervals[["model", "rank_low", "rank_high"]], [*draws.notes, note]

    return source


# --------------------------------------------------------------------------- compare A B


@dataclass
class Comparison:
    """``brainrank compare A B``: does A beat B here?

    ``columns``: one row per data group and (dataset, configuration) column: the unit
    resampled, each model's ranked value, the difference (a - b), its standard error, t,
    df, p, ``p_adjusted`` (over the columns of the data group, ``correction``), the
    standardised effect ``d_z`` (mean over SD of the per-unit differences: per subject, or
    per neuroid pooled over the column's cells) and the verdict. ``overall``: per data group
    the same test of the ranked value (the mean over columns), the primary question, not
    adjusted. ``notes``: what was resampled and held fixed, the correction."""

    a: str
    b: str
    columns: pd.DataFrame
    overall: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    correction: str = "holm"


def compare_models(
    db: Any,
    a: str,
    b: str,
    *,
    selection: str | None = None,
    value: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    correction: str = "holm",
    alpha: float = 0.05,
    **filters: Any,
) -> Comparison:
    """Whether model ``a`` beats model ``b`` on the leaderboard ``db`` (a path, URL or
    Store): per (dataset, configuration) column and overall, on the cells both have, ranked
    as the leaderboard ranks them (``selection``, ``value``, ``filters`` as for
    :func:`brainrank.leaderboard.rankings`); the paired bootstrap and t tests of this module.
    """
    from brainrank.leaderboard.query import _store, rankings

    if a == b:
        raise InputError(f"compare two different models, not {a!r} with itself.")
    if correction not in CORRECTIONS:
        raise InputError(f"correction must be one of {CORRECTIONS}, got {correction!r}.")
    store = _store(db)
    stored = set(store.distinct_values()["model"])
    for name in (a, b):
        if name not in stored:
            import difflib

            close = difflib.get_close_matches(name, sorted(stored), n=5, cutoff=0.6)
            hint = f" Closest stored: {', '.join(close)}." if close else ""
            raise InputError(
                f"the leaderboard at {store.display_url} has no scores of model {name!r}.{hint}"
            )
    if filters.pop("model", None) is not None:
        raise InputError("compare names its two models itself; drop the model filter.")
    captured: list[tuple[Any, pd.DataFrame, str | None]] = []

    def capture(ranking: Any, rows: pd.DataFrame, chosen: str | None):
        captured.append((ranking, rows, chosen))
        return pd.DataFrame(columns=["model", "rank_low", "rank_high"]), []

    rankings(store, selection, value=value, ci=None, n_boot=n_boot, seed=seed,
             intervals=capture, model=f"{a},{b}", **filters)  # fmt: skip
    column_rows, overall_rows, notes = [], [], []
    for ranking, rows, chosen in captured:
        ranked = set(ranking.table.loc[ranking.table["rank"].notna(), "model"].astype(str))
        if not {a, b} <= ranked:
            lacking = sorted({a, b} - ranked)
            notes.append(
                f"[{ranking.title}] not compared: no shared ranked cells for "
                f"{', '.join(lacking)} ({'; '.join(ranking.notes[-2:])})."
            )
            continue
        cells = ranking.cells[ranking.cells["model"].astype(str).isin([a, b])]
        arrays = neuroid_arrays(store, cells, rows, chosen)
        draws = bootstrap(cells, arrays, models=[a, b], n_boot=n_boot, seed=seed)
        plan = draws.plan.set_index("column")
        part = []
        for column in draws.columns:
            test = _difference_test(draws, 0, 1, [column])
            part.append({
                "data": ranking.group, "column": column, "unit": plan.loc[column, "unit"],
                "n_units": plan.loc[column, "n_units"], "a": draws.column_observed[column][0],
                "b": draws.column_observed[column][1], "difference": test.difference,
                "se": test.se, "t": test.t, "df": test.df, "p": test.p,
                "d_z": _effect(cells, arrays, plan.loc[column], a, b),
            })  # fmt: skip
        adjusted = adjust([r["p"] for r in part], correction)
        for row, p_adj in zip(part, adjusted, strict=True):
            row["p_adjusted"] = p_adj
            row["verdict"] = _verdict(a, b, row["difference"], p_adj, alpha, row["unit"])
        column_rows += part
        test = _difference_test(draws, 0, 1)
        overall_rows.append({
            "data": ranking.group, "n_columns": len(draws.columns), "a": draws.observed[0],
            "b": draws.observed[1], "difference": test.difference, "se": test.se, "t": test.t,
            "df": test.df, "p": test.p,
            "verdict": _verdict(a, b, test.difference, test.p, alpha, FIXED if np.isnan(test.p)
                                else "tested"),
        })  # fmt: skip
        prefix = f"[{ranking.title}] " if len(captured) > 1 else ""
        notes += [prefix + n for n in draws.notes]
    if not column_rows and not notes:
        raise InputError(f"no ranked scores of {a!r} and {b!r} match these filters.")
    family = "Holm's step-down (family-wise error)" if correction == "holm" else (
        "Benjamini-Hochberg (false discovery rate)")  # fmt: skip
    notes.append(
        "Test: t test of the difference in ranked value (a - b) with the paired bootstrap's "
        "standard error (df: subjects - 1, or neuroids - 1; Welch-Satterthwaite over "
        f"columns). Per-column p-values adjusted over the columns of each data group by {family}; "
        f"the overall test (the ranked value, the mean over columns) is the primary one and "
        f"is not adjusted. Verdicts at p < {alpha}."
    )
    columns = ["data", "column", "unit", "n_units", "a", "b", "difference", "se", "t", "df",
               "p", "p_adjusted", "d_z", "verdict"]  # fmt: skip
    overall = ["data", "n_columns", "a", "b", "difference", "se", "t", "df", "p", "verdict"]
    return Comparison(a, b, pd.DataFrame(column_rows, columns=columns),
                      pd.DataFrame(overall_rows, columns=overall), notes, correction)  # fmt: skip


def _verdict(a: str, b: str, difference: float, p: float, alpha: float, unit: str) -> str:
    if unit == FIXED or not np.isfinite(p):
        return "not tested (nothing to resample)"
    if p < alpha:
        return f"{a} better" if difference > 0 else f"{b} better"
    return "no difference shown"


def _effect(cells: pd.DataFrame, arrays: Mapping[CellKey, NeuroidValues], plan_row: Any,
            a: str, b: str) -> float:  # fmt: skip
    """d_z of one column: mean over SD of the per-unit differences (per subject: the
    subject's mean over regions; per neuroid: pooled over the cells, on the ranked scale)."""
    dataset, config = str(plan_row["dataset"]), str(plan_row["config"])
    part = cells[
        (cells["dataset"].astype(str) == dataset) & (cells["config"].astype(str) == config)
    ]
    if plan_row["unit"] == SUBJECTS:
        table = part.pivot_table(index="subject", columns="model", values="value", aggfunc="mean")
        d = (table[a] - table[b]).to_numpy(dtype=np.float64)
    elif plan_row["unit"] == NEUROIDS:
        pieces = []
        for region, subject in _cells_of(part):
            ids = _common_ids(arrays, part, (region, subject))
            matrix, scales = _aligned(arrays, [a, b], dataset, config, region, subject, ids)
            pieces.append(matrix[0] * scales[0] - matrix[1] * scales[1])
        d = np.concatenate(pieces) if pieces else np.array([])
    else:
        return float("nan")
    d = d[np.isfinite(d)]
    if d.size < 2 or d.std(ddof=1) == 0:
        return float("nan")
    return float(d.mean() / d.std(ddof=1))


def ranked_draws(
    db: Any,
    selection: str | None = None,
    *,
    value: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    **filters: Any,
) -> list[tuple[Any, Draws]]:
    """Per ranking of the leaderboard ``db`` (real data, simulated data; as
    :func:`brainrank.leaderboard.rankings` with ``filters``), the ranking and the paired
    bootstrap draws of its ranked models (rankings with fewer than 2 ranked models left
    out)."""
    from brainrank.leaderboard.query import _store, rankings

    store = _store(db)
    captured: list[tuple[Any, pd.DataFrame, str | None]] = []

    def capture(ranking: Any, rows: pd.DataFrame, chosen: str | None):
        captured.append((ranking, rows, chosen))
        return pd.DataFrame(columns=["model", "rank_low", "rank_high"]), []

    rankings(store, selection, value=value, ci=None, n_boot=n_boot, seed=seed,
             intervals=capture, **filters)  # fmt: skip
    out = []
    for ranking, rows, chosen in captured:
        table = ranking.table
        ranked = [str(m) for m in table.loc[table["rank"].notna(), "model"]]
        if len(ranked) < 2:
            continue
        cells = ranking.cells[ranking.cells["model"].astype(str).isin(ranked)]
        arrays = neuroid_arrays(store, cells, rows, chosen)
        out.append((ranking, bootstrap(cells, arrays, models=ranked, n_boot=n_boot, seed=seed)))
    return out


def pairwise_report(
    db: Any,
    models: Sequence[str] | None = None,
    *,
    selection: str | None = None,
    value: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    correction: str = "holm",
    alpha: float = 0.05,
    **filters: Any,
) -> tuple[pd.DataFrame, list[str]]:
    """Every pair of ``models`` (default: every ranked model) tested on the leaderboard
    ``db``, per data group: :func:`pairwise_tests` with a ``data`` column, and the notes."""
    if models is not None:
        if filters.pop("model", None) is not None:
            raise InputError("name the models or filter them, not both.")
        filters["model"] = ",".join(models)
    parts, notes = [], []
    found = ranked_draws(db, selection, value=value, n_boot=n_boot, seed=seed, **filters)
    for ranking, draws in found:
        table = pairwise_tests(draws, correction=correction, alpha=alpha)
        parts.append(table.assign(data=ranking.group))
        prefix = f"[{ranking.title}] " if len(found) > 1 else ""
        notes += [prefix + n for n in [*draws.notes, *table.attrs["notes"]]]
    if not parts:
        raise InputError("fewer than 2 ranked models match; nothing to compare.")
    table = pd.concat(parts, ignore_index=True)
    return table[["data", *[c for c in table.columns if c != "data"]]], notes
