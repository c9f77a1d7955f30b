"""Features of a model and the scores computed from them.

- :class:`FeatureRequest`: what a metric needs extracted (projections, exact RDMs);
- :class:`FeatureSet` / :class:`LayerFeatures`: every layer's projected features and RDM;
- :class:`Score`: one leaderboard number with everything that identifies it;
- layer selection: :func:`best_layer_scores` (max) and :func:`heldout_layer_scores`
  (chosen on one half of the stimuli, scored on the other), with :func:`split_halves`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainrank.core.errors import InputError

# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class FeatureRequest:
    """What a metric needs from feature extraction: projections of given dimensions, exact
    RDMs and/or exact Gram matrices. Requests of several metrics are merged so features are
    extracted once."""

    projection_dims: frozenset[int] = frozenset()
    rdm: bool = False
    #: the exact column-centred Gram matrix of every layer's full activations (what linear
    #: kernel methods need: CKA, and PLS / ridge through principal components); it needs
    #: the same memory-budgeted passes as exact RDMs
    gram: bool = False

    def __or__(self, other: FeatureRequest) -> FeatureRequest:
        return FeatureRequest(
            self.projection_dims | other.projection_dims,
            self.rdm or other.rdm,
            self.gram or other.gram,
        )


@dataclass
class LayerFeatures:
    """Features of one layer: projections ``{k: (n, min(k, p))}``, the exact RDM and the exact
    column-centred Gram matrix ``gram`` ``(n, n)`` float64, ``sum_f (a_if - m_f)(a_jf - m_f)``
    over the layer's p features with ``m_f`` each feature's mean over the n stimuli."""

    name: str
    index: int
    relative_depth: float
    n_features: int
    shape: tuple[int, ...]
    projections: dict[int, np.ndarray] = field(default_factory=dict)
    rdm: np.ndarray | None = None
    gram: np.ndarray | None = None


@dataclass
class FeatureSet:
    """Every layer's features for one model on one stimulus set, in depth order."""

    model: str
    stimulus_ids: tuple[str, ...]
    layers: list[LayerFeatures]
    key: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[LayerFeatures]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def __getitem__(self, name: str) -> LayerFeatures:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"model {self.model!r} has no layer {name!r}")

    def rows_for(self, stimulus_ids: Sequence[str]) -> np.ndarray:
        """Row positions of ``stimulus_ids`` in this feature set (raises when missing)."""
        position = {s: i for i, s in enumerate(self.stimulus_ids)}
        missing = [str(s) for s in stimulus_ids if s not in position]
        if missing:
            raise InputError(
                f"{len(missing)} stimulus ids have no features for model {self.model!r} "
                f"(e.g. {missing[:3]}); the features were extracted on other stimuli."
            )
        return np.array([position[s] for s in stimulus_ids], dtype=np.int64)


# --------------------------------------------------------------------------- metrics and scores


@dataclass
class Score:
    """One leaderboard number.

    Attributes
    ----------
    subject, region : str
        The group of neuroids scored (metrics group neuroids by subject and region).
    layer : str
        The layer's module name (for summary rows: the layer chosen).
    value : float
        The score, in the metric's unit (a Pearson r for every built-in metric: unitless,
        in [-1, 1]); NaN when undefined (a constant layer or region).
    n_neuroids : int
        Neuroids behind ``value`` (those with a defined per-neuroid score).
    selection : str
        ``"layer"`` for a per-layer score; for summary rows the layer-choice policy
        (``"max"``: the best layer, as in the seed papers; ``"heldout"``: chosen on one
        half of the stimuli, scored on the other; ``"stacked"``...).
    layer_index, relative_depth : int, float
        The layer's position in call order and as a fraction of depth (0 first, 1 last).
    ceiling : float, optional
        The noise ceiling in the same unit as ``value``; :attr:`normalized` divides by it
        when it is usable (see :func:`ceiling_usable`).
    ceiling_low, ceiling_high : float, optional
        A confidence interval of the ceiling (``Dataset.ceiling_with_interval``), when the
        dataset has one.
    chance, chance_sd : float, optional
        For a metric configuration that is not calibrated (its expected score on data
        without signal is not 0, see :attr:`Metric.calibrated`): the mean and the standard
        deviation of the same score with the stimulus correspondence broken (the same
        protocol on the same features, the responses' stimulus labels permuted; see
        :func:`brainrank.core.chance.attach_chance_levels`). ``None`` for calibrated ones.
    ci_low, ci_high : float, optional
        A confidence interval of ``value``, when the metric computes one.
    extra : dict
        Anything else worth keeping (JSON-serialisable): chosen alphas, weights, reasons.
    per_neuroid : ndarray, optional
        ``(n,)`` per-neuroid values behind ``value`` (e.g. each voxel's r), aligned with
        ``neuroid_ids``; stored as float32.
    halves : tuple of float, optional
        The same score on each half of the stimuli (:func:`split_halves`), from which
        :func:`heldout_layer_scores` builds the ``heldout`` rows.
    """

    subject: str
    region: str
    layer: str
    value: float
    n_neuroids: int = 0
    selection: str = "layer"
    layer_index: int | None = None
    relative_depth: float | None = None
    ceiling: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: per-neuroid values behind ``value`` (e.g. each voxel's r), aligned with neuroid_ids
    per_neuroid: np.ndarray | None = None
    neuroid_ids: tuple[str, ...] | None = None
    #: the same score computed on each half of the stimuli (see :func:`split_halves`), for
    #: the held-out layer choice
    halves: tuple[float, float] | None = None
    ceiling_low: float | None = None
    ceiling_high: float | None = None
    chance: float | None = None
    chance_sd: float | None = None

    @property
    def normalized(self) -> float | None:
        """``value / ceiling`` where the ceiling is usable (:func:`ceiling_usable`), else
        ``None`` (the raw score is then what rankings use, and they say so)."""
        if not ceiling_usable(self.ceiling, self.ceiling_low):
            return None
        return self.value / self.ceiling


#: The least a ceiling's lower confidence bound (the ceiling itself where the dataset gives
#: no interval) must be for a score to be divided by it, in the ceiling's unit (a Pearson r
#: for every built-in metric). Below it, dividing amplifies a score's sampling error more
#: than tenfold, and a group without signal has a ceiling estimate of a few hundredths
#: (+0.05 for an all-noise group: an estimator that never goes below 0 cannot be unbiased
#: there), so a ratio would report noise as a fraction of a ceiling that is not there. The
#: pure-noise groups measured for docs/validation.md have upper bounds below it.
CEILING_FLOOR = 0.1


def ceiling_usable(
    ceiling: float | None, low: float | None = None, floor: float = CEILING_FLOOR
) -> bool:
    """Whether a score may be divided by ``ceiling``: it is finite and positive, and its
    lower confidence bound ``low`` (``ceiling`` itself when ``low`` is missing) is above
    ``floor``."""
    if ceiling is None or not np.isfinite(ceiling) or ceiling <= 0:
        return False
    bound = low if low is not None and np.isfinite(low) else ceiling
    return bool(bound > floor)


def ceiling_fields(
    ceilings: dict[tuple[str, str], tuple[float, float | None, float | None]],
    key: tuple[str, str],
) -> dict[str, float | None]:
    """``ceiling``, ``ceiling_low`` and ``ceiling_high`` keyword arguments of a
    :class:`Score` for group ``key`` from ``Dataset.ceiling_with_interval(kind)`` (all
    ``None`` when the group has no ceiling)."""
    value, low, high = ceilings.get(key, (None, None, None))
    return {"ceiling": value, "ceiling_low": low, "ceiling_high": high}


def split_halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of ``range(n)`` drawn with ``seed`` (sorted index arrays)."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def heldout_layer_scores(scores: Sequence[Score], selection: str = "heldout") -> list[Score]:
    """Layer choice that does not flatter: per (subject, region), the layer is chosen on one
    half of the stimuli and scored on the other, both ways (cross-fitting); the value is the
    mean of the two held-out scores. Needs ``halves`` on the per-layer rows.

    The row names the layer chosen on the first half; ``extra["layers"]`` has both choices.
    """
    groups: dict[tuple[str, str], list[Score]] = {}
    for score in scores:
        if score.selection == "layer" and score.halves is not None:
            groups.setdefault((score.subject, score.region), []).append(score)
    out = []
    for rows in groups.values():
        a = np.array([r.halves[0] for r in rows], dtype=np.float64)
        b = np.array([r.halves[1] for r in rows], dtype=np.float64)
        if not (np.isfinite(a).any() and np.isfinite(b).any()):
            continue
        pick_a = int(np.nanargmax(a))  # chosen on half A, scored on half B
        pick_b = int(np.nanargmax(b))
        value = float(np.nanmean([b[pick_a], a[pick_b]]))
        chosen = rows[pick_a]
        extra = {**chosen.extra, "layers": [rows[pick_a].layer, rows[pick_b].layer]}
        out.append(
            dataclasses.replace(
                chosen,
                selection=selection,
                value=value,
                extra=extra,
                per_neuroid=None,
                neuroid_ids=None,
            )
        )
    return out


def best_layer_scores(scores: Sequence[Score], selection: str = "max") -> list[Score]:
    """One summary row per (subject, region): the layer with the highest finite score."""
    best: dict[tuple[str, str], Score] = {}
    for score in scores:
        if score.selection != "layer" or not np.isfinite(score.value):
            continue
        key = (score.subject, score.region)
        if key not in best or score.value > best[key].value:
            best[key] = score
    return [dataclasses.replace(s, selection=selection, extra=dict(s.extra)) for s in best.values()]
