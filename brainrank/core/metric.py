"""The :class:`Metric` base class."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from brainrank.core.runsettings import current_run_settings
from brainrank.core.scores import FeatureRequest, FeatureSet, Score

if TYPE_CHECKING:
    from brainrank.core.dataset import Dataset
    from brainrank.core.spaces import FeatureSpace


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
    headline : str or None
        The summary row (``selection``) that rankings take for this metric: the layer
        choice (or combination of layers) that a held-out split cannot beat by chance, e.g.
        ``"heldout"`` (layer chosen on one half of the stimuli, scored on the other, see
        :func:`~brainrank.core.scores.heldout_layer_scores`), ``"stacked"``,
        ``"generalisation"``. The metric must store rows of that selection. ``None`` (not
        declared): rankings take ``heldout`` rows where stored, else the optimistic ``max``,
        and say so.
    calibrated : bool
        Whether the metric's expected score on data without signal (pure noise, or the
        stimulus correspondence broken) is 0 for any features. A configuration that is not
        (a seed paper's exact protocol whose null is below 0, a leaky predictor) is scored
        as usual, and each of its stored scores carries its chance level (the same score
        with the stimulus labels permuted, :mod:`brainrank.core.chance`); default rankings
        leave it out. A property where it depends on the parameters.
    n_alphas : int or None
        How many penalties a grid given by name (a string ``alphas`` parameter, e.g.
        ``alphas="taskonomy"``) stands for, read by the default :meth:`count_fits`; ``None``
        counts one.
    device : str
        A run setting, not a parameter: the torch device (``"cpu"``, ``"cuda"``,
        ``"cuda:N"``, ``"mps"``) to compute on. Inside a run it is the run's device: the
        grid calls :meth:`score` within :func:`~brainrank.core.runsettings.using_run_settings`
        and never sets anything on the metric, so ``score(features, dataset)`` keeps its
        signature; outside a run it is what was assigned to it (default ``"cpu"``). The
        other run settings (batch size, memory budget, threads) are read with
        :func:`brainrank.plugin.run_settings`. A metric may ignore them (the score must not
        depend on them beyond float32 rounding); they are not part of :attr:`config_hash`.
    takes_spaces : bool
        Whether the metric can score a combination of feature spaces from several models
        (:mod:`brainrank.core.spaces`): its constructor takes ``spaces`` (``MODEL[:LAYER]``
        texts, kept in :attr:`spaces`) and it implements :meth:`score_spaces`. With spaces,
        the grid scores it once per combination of models, whose leaderboard model
        ``stack/<hash>`` names the spaces; so the spaces are that model's identity, not part
        of the metric's :attr:`parameters` and :attr:`config_hash` (combinations of other
        spaces are one configuration, compared column by column like models).
    """

    identifier: str = ""
    version: str = "1"
    needs: str = "responses"
    headline: str | None = None
    calibrated: bool = True
    n_alphas: int | None = None
    takes_spaces: bool = False
    _spaces: tuple[str, ...] = ()

    def __init__(self, **parameters: Any):
        self.parameters: dict[str, Any] = dict(parameters)

    @property
    def device(self) -> str:
        """The device to compute on: the run's (see the class docstring), else the one
        assigned to this metric, else ``"cpu"``."""
        settings = current_run_settings()
        if settings is not None:
            return settings.device
        return str(self.__dict__.get("_device", "cpu"))

    @device.setter
    def device(self, value: str) -> None:
        self._device = value

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

    def score_with_permutations(
        self, features: FeatureSet, datasets: Sequence[Dataset]
    ) -> list[list[Score]]:
        """:meth:`score` of ``features`` on each of ``datasets``: a dataset and the
        relabelled copies of it behind its chance level
        (:class:`~brainrank.core.chance.PermutedDataset`, which differ from it only in which
        stimulus each response belongs to). The runner calls it, instead of :meth:`score`,
        for configurations that are not :attr:`calibrated`.

        The default scores each one on its own. A metric whose computation can share work
        across relabellings overrides it, e.g. a leave-one-out ridge reuses the
        factorisation of each layer's features, since a relabelling only permutes the rows
        that the features are read in. An override must give what the default gives (up to
        floating-point rounding): one list per dataset, in order.
        """
        return [self.score(features, dataset) for dataset in datasets]

    @property
    def spaces(self) -> tuple[str, ...]:
        """The feature spaces this metric scores (``MODEL[:LAYER]`` texts, sorted), or ``()``
        when it scores one model's features at a time."""
        return tuple(self._spaces) if self.takes_spaces else ()

    def score_spaces(self, spaces: Sequence[FeatureSpace], dataset: Dataset) -> list[Score]:
        """Score a combination of feature spaces of several models on ``dataset`` (metrics
        with :attr:`takes_spaces`).

        Parameters
        ----------
        spaces : list of FeatureSpace
            The spaces of :attr:`spaces`, each expanded to concrete layers by the grid (a
            layer pattern gives one space per matching layer): ``label`` (``MODEL:LAYER`` or
            ``MODEL``), ``model``, ``layer`` (``None``: the metric chooses the model's best
            layer, on training stimuli only) and ``features`` (that model's
            :class:`FeatureSet`, with the layers the space needs), all on the dataset's
            stimuli.
        dataset : Dataset
            As in :meth:`score`.

        Returns
        -------
        list of Score
            Rows of the combination (their ``layer`` names a space by its label, or a summary
            such as ``"stacked"``), checked and stored as :meth:`score`'s are.
        """
        raise NotImplementedError

    def count_fits(self, scores: Sequence[Score]) -> int:
        """The regression fits behind this metric's ``scores`` of one (model, dataset),
        added to the run's statistics (a fit is one target regressed on one layer with one
        penalty, as in the seed papers' count; cross-validation folds do not multiply it).

        The default: a metric with an ``alphas`` parameter (every built-in regression
        metric) made ``n_alphas`` fits per target per layer: the number of alphas (or
        :attr:`n_alphas` for a grid given by name) x the targets of every per-layer row
        with a finite value (a constant layer is not fitted); a metric without one, or one
        that needs RDMs, makes none. Override it to count otherwise.
        """
        alphas = self.parameters.get("alphas") if self.needs != "rdms" else None
        if alphas is None:
            return 0
        if isinstance(alphas, str):  # a grid given by name: the metric may say its size
            n_alphas = int(self.n_alphas) if self.n_alphas is not None else 1
        else:
            n_alphas = 1 if isinstance(alphas, (int, float)) else len(alphas)
        targets = 0
        for score in scores:
            if score.selection != "layer" or not math.isfinite(float(score.value)):
                continue
            per = score.per_neuroid
            targets += int(per.size) if per is not None else int(score.n_neuroids)
        return n_alphas * targets

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
