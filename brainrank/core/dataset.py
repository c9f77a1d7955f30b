"""The :class:`Dataset` base class: stimuli, responses or RDMs, reliabilities, ceilings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from brainrank.core.blas import map_one_blas_thread
from brainrank.core.errors import InputError
from brainrank.core.identifiers import check_dataset_identifier
from brainrank.core.responses import RDMSet, check_responses, check_trials, neuroid_groups
from brainrank.core.stimuli import StimulusSet

if TYPE_CHECKING:
    from brainrank.core.specs import DatasetMetadata


# --------------------------------------------------------------------------- datasets


class Dataset:
    """A neural dataset: stimuli plus responses (or RDMs), ceilings and ground truth.

    Subclasses (or instances) provide ``responses()`` (trial-level or averaged, dims
    ``(presentation, neuroid)``), ``rdms()`` and/or ``trials()`` (behavioural choices, one
    row per trial: see :func:`brainrank.core.responses.make_trials`). ``ground_truth`` is
    only set by simulated datasets.
    """

    def __init__(
        self,
        identifier: str,
        stimuli: StimulusSet,
        metadata: DatasetMetadata,
        responses: Any = None,
        rdms: RDMSet | None = None,
        ground_truth: Mapping[str, Any] | None = None,
        trials: Any = None,
    ):
        self.identifier = check_dataset_identifier(identifier)
        self.stimuli = stimuli
        self.metadata = metadata
        self._responses = responses
        self._rdms = rdms
        self._trials = trials
        self.ground_truth = ground_truth
        if responses is not None:
            check_responses(responses, f"responses of dataset {identifier!r}")
            stimuli.index(np.unique(np.asarray(responses["stimulus_id"].values).astype(str)))
        if rdms is not None:
            stimuli.index(rdms.stimulus_ids)
        if trials is not None:
            check_trials(trials, f"trials of dataset {identifier!r}")
            stimuli.index(sorted(set(trials["stimulus_id"].astype(str))))
        if responses is None and rdms is None and trials is None:
            raise InputError(
                f"dataset {identifier!r} has neither responses, RDMs nor behavioural trials."
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identifier!r}, stimuli={len(self.stimuli)})"

    def responses(self):
        """The responses DataArray, or ``None`` for RDM-only datasets."""
        return self._responses

    def rdms(self) -> RDMSet | None:
        """Brain RDMs published with the dataset, or ``None``."""
        return self._rdms

    def trials(self) -> Any:
        """Trial-level behavioural data (a DataFrame, one row per trial, made with
        :func:`brainrank.core.responses.make_trials`: columns ``stimulus_id``, ``subject``,
        ``choice``, ``truth``, ``condition``), or ``None``."""
        return getattr(self, "_trials", None)

    def train_test_split(self) -> tuple[list[str], list[str]] | None:
        """The dataset's own split of its stimuli into training and test stimuli.

        Metrics that fit on one set of stimuli and score on another (for instance
        ``versa:generalisation``) use it: the training ids are used to fit every model
        (weights, penalties, layer choice), the test ids only to score the fitted model.
        Both sets must have responses in :meth:`responses`.

        Returns
        -------
        tuple of (list of str, list of str) or None
            ``(train_ids, test_ids)``, disjoint lists of stimulus ids; ``None`` (the
            default) when the dataset has no split of its own, in which case a metric
            chooses its own (e.g. seeded random halves).
        """
        return None

    # ------------------------------------------------------------------ ceilings

    def neuroid_reliability(self) -> np.ndarray | None:
        """Reliability of every neuroid's trial-averaged response, in neuroid order.

        A ``reliability`` neuroid coordinate is used when the dataset provides one;
        otherwise the split-half reliability over repetitions, Spearman-Brown corrected to
        the full number of repetitions (10 seeded random splits). ``None`` without responses
        or without at least 2 repetitions of every stimulus.
        """
        if getattr(self, "_reliability", None) is not None:
            return self._reliability
        responses = self.responses()
        if responses is None:
            return None
        if "reliability" in responses.coords:
            out = np.asarray(responses["reliability"].values, dtype=np.float64)
        else:
            from brainrank.core import stats

            try:
                trials, _ = stats.trials_array(responses)
            except InputError:
                return None
            if trials.shape[0] < 2:
                return None
            out = stats.split_half_reliability(trials, n_splits=10, seed=0)
            self._reliability_from_trials = True
        self._reliability = out
        return out

    @property
    def ceiling_kinds(self) -> list[str]:
        """The kinds ``ceiling(kind)`` answers for this dataset: ``"encoding"`` and
        ``"rsa"`` when it has responses; datasets with published ceilings add theirs
        (e.g. ``"rsa-pairwise"``, ``"internal-consistency"``)."""
        return ["encoding", "rsa"] if self.responses() is not None else []

    def ceiling(self, kind: str) -> dict[tuple[str, str], float]:
        """Noise ceiling per (subject, region) for a kind of metric; ``{}`` when unknown.

        - ``"encoding"``: the ceiling of a per-neuroid Pearson r averaged over the group: the
          mean over neuroids of sqrt(reliability), the correlation a perfect model reaches
          with noisy trial averages. From the trials (no reliability given by the dataset)
          it is :func:`brainrank.core.stats.mean_sqrt_reliability` of the group, which
          estimates the distribution of reliabilities over the group rather than averaging
          per-neuroid square roots (biased upwards near reliability 0); from a reliability
          the dataset provides, the mean of sqrt(max(reliability, 0)).
        - ``"rsa"``: for the RSA metric (correlation-distance RDMs compared by Pearson r):
          the expected correlation between the group's measured RDM and its noise-free
          expectation, sqrt of the RDM's reliability, estimated by
          :func:`brainrank.core.stats.rdm_ceiling` (simulation-extrapolation of the RDM's
          error variance from the trial residuals; seeded, computed once per dataset).

        Calibration (Monte Carlo with known signals; ``tests/calibration``): the encoding
        ceiling is within 0.02 of the truth for groups of reliabilities 0.05-0.9
        (tested); pure-noise neuroids bias it upwards, an identifiability limit of sqrt
        near 0: +0.02 with 12 of 60 neuroids pure noise, +0.05 for an all-noise group (the
        per-neuroid average it replaces: +0.026 and +0.14; -0.021 at reliabilities
        0.05-0.3). On ``simulated`` against the true mean sqrt(reliability): early +0.008 /
        +0.007, late +0.049 / +0.004, null +0.022 / +0.022. The RSA ceiling is within
        0.02 of the truth on the calibration problems (-0.005 to +0.022 per problem), and
        +0.012 / -0.005 / +0.015 / -0.005 on ``simulated`` (sim-01 early, late, sim-02
        early, late; 20 Monte Carlo draws with the known signals). It replaces the
        split-half Spearman-Brown RDM reliability, which noise in correlation distances
        biases (-0.040 / -0.070 / -0.036 / -0.066 against this truth; +0.04 / -0.05 against
        the generating model's own score). The generating model's score (the RDM of the
        noise-free patterns) is lower than this ceiling where noise distorts the RDM
        (0.49 vs 0.57 in ``early``): a model can beat it, so it is not a ceiling.

        Datasets with published ceilings (NSD's ncsnr, an inter-subject RDM ceiling)
        override this method.
        """
        responses = self.responses()
        if responses is None:
            return {}
        if kind == "encoding":
            reliability = self.neuroid_reliability()
            if reliability is None:
                return {}
            groups = neuroid_groups(responses)
            if getattr(self, "_reliability_from_trials", False):
                cached = getattr(self, "_encoding_ceiling", None)
                if cached is None:
                    cached = self._encoding_ceiling = _encoding_ceiling(responses, groups)
                return dict(cached)
            root = np.sqrt(np.clip(reliability, 0.0, None))
            return {key: float(np.nanmean(root[index])) for key, index in groups}
        if kind == "rsa":
            cached = getattr(self, "_rsa_ceiling", None)
            if cached is None:
                cached = self._rsa_ceiling = _rdm_ceiling(responses)
            return dict(cached)
        return {}

    def published_ceiling_kinds(self) -> list[str]:
        """The ceiling kinds whose values the dataset gives itself (read from its files or
        computed by its own code) rather than brainrank from the responses: part of the
        dataset's content hash, so a changed ceiling is scored again. By default every kind
        when :meth:`ceiling` is overridden, else none."""
        return list(self.ceiling_kinds) if type(self).ceiling is not Dataset.ceiling else []

    def ceiling_interval(
        self, kind: str, ci: float = 0.95
    ) -> dict[tuple[str, str], tuple[float, float]]:
        """A confidence interval ``(low, high)`` of :meth:`ceiling` per (subject, region),
        where one can be computed; ``{}`` otherwise (a published ceiling without an
        interval: the ranking then compares the ceiling itself with its floor).

        - ``"encoding"`` from the trials:
          :func:`brainrank.core.stats.mean_sqrt_reliability_interval` (a bootstrap of the
          group's neuroids); from a ``reliability`` the dataset provides, a bootstrap of the
          mean of sqrt(reliability) over the group's neuroids;
        - ``"rsa"`` from the trials: :func:`brainrank.core.stats.rdm_ceiling_interval`.

        Seeded, computed once per dataset. A score is divided by its ceiling only where the
        interval's lower bound clears the floor (:data:`brainrank.core.scores.CEILING_FLOOR`),
        so a group without signal, whose ceiling estimate is biased upwards (+0.05 for an
        all-noise group), never normalises a score. Datasets with published ceilings may
        override this method (or, with ``RealDataset``, give ``ceiling_intervals``).
        """
        cache = self.__dict__.setdefault("_ceiling_intervals", {})
        if (kind, ci) not in cache:
            cache[(kind, ci)] = self._ceiling_interval(kind, ci)
        return dict(cache[(kind, ci)])

    def _ceiling_interval(self, kind: str, ci: float) -> dict[tuple[str, str], tuple[float, float]]:
        from brainrank.core import stats

        responses = self.responses()
        if responses is None or kind not in ("encoding", "rsa"):
            return {}
        groups = neuroid_groups(responses)
        out: dict[tuple[str, str], tuple[float, float]] = {}
        if kind == "encoding":
            reliability = self.neuroid_reliability()
            if reliability is None:
                return {}
            if not getattr(self, "_reliability_from_trials", False):
                root = np.sqrt(np.clip(reliability, 0.0, None))
                for key, index in groups:
                    low, high = stats.mean_interval(root[index], ci=ci)
                    if np.isfinite(low):
                        out[key] = (low, high)
                return out
        try:
            trials, _ = stats.trials_array(responses)
        except InputError:
            return {}
        if trials.shape[0] < 2:
            return {}
        if kind == "encoding":
            return _per_group(
                trials, groups, lambda t: stats.mean_sqrt_reliability_interval(t, ci=ci)
            )
        for key, index in groups:
            try:
                if index.size >= 2:
                    out[key] = stats.rdm_ceiling_interval(trials[:, :, index], ci=ci)
            except InputError:
                continue
        return out

    def ceiling_with_interval(
        self, kind: str
    ) -> dict[tuple[str, str], tuple[float, float | None, float | None]]:
        """``{(subject, region): (ceiling, low, high)}`` of a kind (``None`` bounds where
        the dataset has no interval): what a metric puts on its :class:`Score` rows
        (``ceiling``, ``ceiling_low``, ``ceiling_high``)."""
        values = self.ceiling(kind)
        if not values:
            return {}
        bounds = self.ceiling_interval(kind)
        return {key: (value, *bounds.get(key, (None, None))) for key, value in values.items()}


def _encoding_ceiling(responses: Any, groups: Any) -> dict[tuple[str, str], float]:
    """Per (subject, region): :func:`brainrank.core.stats.mean_sqrt_reliability`."""
    from brainrank.core import stats

    trials, _ = stats.trials_array(responses)
    return _per_group(trials, groups, stats.mean_sqrt_reliability)


def _per_group(trials: np.ndarray, groups: Any, estimator: Callable[[np.ndarray], Any]) -> dict:
    """``{(subject, region): estimator(the group's trials)}``, groups whose estimator raises
    an :class:`InputError` left out; the groups run side by side, one BLAS thread each (the
    encoding estimators run on one BLAS thread either way, so the values are a loop's, bit
    for bit), one at a time when a group's copy of its trials is large
    (:func:`_side_by_side`)."""

    def estimate(index: np.ndarray) -> Any:
        try:
            return estimator(trials[:, :, index])
        except InputError:
            return None

    groups = list(groups)
    indices = [index for _, index in groups]
    found = map_one_blas_thread(estimate, indices, _side_by_side(trials, indices))
    return {key: v for (key, _), v in zip(groups, found, strict=True) if v is not None}


#: the largest copy of one group's trials that groups are computed side by side with (each
#: thread holds its group's copy): above it, one group at a time
SIDE_BY_SIDE_BYTES = 2**30


def _side_by_side(trials: np.ndarray, indices: list[np.ndarray]) -> int | None:
    """How many groups may run at once: any number while each group's trials are small,
    one when the largest copy exceeds :data:`SIDE_BY_SIDE_BYTES`."""
    largest = max((index.size for index in indices), default=0)
    per_group = trials.shape[0] * trials.shape[1] * largest * 8  # float64 copies
    return 1 if per_group > SIDE_BY_SIDE_BYTES else None


def _rdm_ceiling(responses: Any) -> dict[tuple[str, str], float]:
    """Per (subject, region): :func:`brainrank.core.stats.rdm_ceiling` of its trials."""
    from brainrank.core import stats

    try:
        trials, _ = stats.trials_array(responses)
    except InputError:
        return {}
    if trials.shape[0] < 2:
        return {}
    out = {}
    for key, index in neuroid_groups(responses):
        if index.size < 2:
            continue
        try:
            out[key] = stats.rdm_ceiling(trials[:, :, index], seed=0)
        except InputError:
            continue
    return out
