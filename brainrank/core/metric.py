"""The :class:`Metric` base class."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from brainrank.core.scores import FeatureRequest, FeatureSet, Score

if TYPE_CHECKING:
    from brainrank.core.dataset import Dataset


class Metric:
    """Base class of metrics: turn a model's features and a dataset into per-layer scores.

    Subclasses set the class attributes below, pass every parameter that changes the
    result to ``super().__init__(**parameters)`` (they are part of :attr:`config_hash`, so
    two settings of one metric are two configurations on the leaderboard), and implement
    :meth:`feature_request` and :meth:`score`. Override :meth:`check_applicable` to refuse
    datasets up front (too few stimuli...), calling ``super().check_applicable`` first.

    Attributes
    ----------
    identifier : str
        The metric's identifier (``source/name`` or a name such as ``srp-ridge``).
    version : str
        Bump it when the computation changes: stored scores of the old version are then
        scored again.
    needs : {"responses", "rdms", "either", "trials"}
        What the metric needs from a dataset: neuroid responses (regression metrics), RDMs
        (computed from responses when the dataset has them, or published ones), either, or
        behavioural trials (:meth:`Dataset.trials`).
        The one declaration of it; ``MetricMetadata.needs``, when given, must agree.
    parameters : dict
        The metric's parameters (JSON-serialisable values).
    device : str
        A run setting, not a parameter: the torch device (``"cpu"``, ``"cuda"``,
        ``"cuda:N"``, ``"mps"``) the runner asks the metric to compute on, set before
        :meth:`score` is called. A metric may ignore it (the score must not depend on it
        beyond float32 rounding); it is not part of :attr:`config_hash`.
    """

    identifier: str = ""
    version: str = "1"
    needs: str = "responses"
    device: str = "cpu"

    def __init__(self, **parameters: Any):
        self.parameters: dict[str, Any] = dict(parameters)

    def check_applicable(self, dataset: Dataset) -> None:
        """Raise :class:`~brainrank.core.errors.NotApplicableError` (with the reason and what
        would apply) when the metric cannot score ``dataset``; called before any feature is
        extracted. The default checks :attr:`needs`."""
        from brainrank.core.errors import NotApplicableError

        has_trials = getattr(dataset, "trials", lambda: None)() is not None
        if self.needs == "responses" and dataset.responses() is None:
            has = "RDMs only" if dataset.rdms() is not None else "behavioural trials only"
            use = "an RSA metric" if dataset.rdms() is not None else "a behavioural metric"
            raise NotApplicableError(
                f"metric {self.identifier!r} needs neuroid responses, but dataset "
                f"{dataset.identifier!r} publishes {has}; use {use} for it."
            )
        if self.needs == "rdms" and dataset.responses() is None and dataset.rdms() is None:
            raise NotApplicableError(
                f"metric {self.identifier!r} needs responses or RDMs from {dataset.identifier!r}."
            )
        if self.needs == "trials" and not has_trials:
            raise NotApplicableError(
                f"metric {self.identifier!r} needs behavioural trials (choices per stimulus), "
                f"but dataset {dataset.identifier!r} has none."
            )

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        """What to extract for ``dataset``: projection dimensions and/or exact RDMs.

        Parameters
        ----------
        dataset : Dataset
            The dataset that will be scored (its number of stimuli typically sets the
            projection dimension).

        Returns
        -------
        FeatureRequest
            Merged with the other metrics' requests, so features are extracted once.
        """
        raise NotImplementedError

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        """Score every layer of ``features`` on ``dataset``.

        Parameters
        ----------
        features : FeatureSet
            Every layer's features on the dataset's stimuli: ``layer.projections[k]`` is a
            float32 array ``(n_stimuli, min(k, n_features))``, ``layer.rdm`` a float array
            ``(n_stimuli, n_stimuli)`` of correlation distances (1 - Pearson r), both in the
            order of ``features.stimulus_ids`` (use :meth:`FeatureSet.rows_for` to align
            them with the responses).
        dataset : Dataset
            The dataset: :meth:`Dataset.responses` ``(presentation, neuroid)`` or
            :meth:`Dataset.rdms`, its ceilings and its train/test split.

        Returns
        -------
        list of Score
            One row per layer and (subject, region) with ``selection="layer"``, plus any
            summary rows of the metric's own (``heldout``, ``stacked``...). The runner adds
            the best-layer ``max`` rows when there are none. A result that is empty, all
            NaN or not a list of :class:`Score` with real-number values is a failure, never
            stored.
        """
        raise NotImplementedError

    @property
    def config_hash(self) -> str:
        """A short hash of identifier, version and parameters: scores are keyed on it."""
        import json

        payload = json.dumps(
            {"id": self.identifier, "version": self.version, "parameters": self.parameters},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
