"""Brain-Score's cross-validation splits of stimuli, and split halves of repetitions.

:func:`shuffle_splits` draws the splits of Brain-Score's regression metrics (brainscore-vision
``metric_helpers/transformations.py``, class ``Split`` with its defaults): 10 random splits of
the stimuli into 90% training and 10% test stimuli, stratified by a label (the dataset's
``object_name``) when one is given, with seed 1. It is scikit-learn's
``StratifiedShuffleSplit`` (``ShuffleSplit`` without labels) with those parameters, so that
the same stimuli in the same order with the same labels give Brain-Score's splits exactly
(checked by ``tests/oracles/brainscore_oracle.py``). Brain-Score draws over the stimuli in the
order of its trial-averaged assembly, which its averaging sorts by the presentation
coordinates (``stimulus_id`` first); brainrank's metrics pass the stimuli sorted by id.

:func:`repetition_halves` splits the *repetitions* of every stimulus into two halves, as
Brain-Score's internal-consistency ceiling does (``ShuffleSplit(train_size=0.5)`` with seed 1
over the unique ``repetition`` values), and yields each half's mean response per stimulus.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from brainrank.core.errors import InputError

#: Brain-Score's defaults (``Split.Defaults``): 10 splits, 90% training stimuli, seed 1
N_SPLITS = 10
TRAIN_SIZE = 0.9
SEED = 1
#: the fewest test (and training) stimuli of a split: a Pearson r over 2 stimuli is +-1
MIN_SPLIT_STIMULI = 3


def split_sizes(n: int, train_size: float = TRAIN_SIZE) -> tuple[int, int]:
    """``(n_train, n_test)`` of a shuffle split of ``n`` stimuli (scikit-learn's rule with
    ``test_size=None``: ``floor(train_size n)`` training stimuli, the rest test stimuli)."""
    n_train = int(np.floor(train_size * n))
    return n_train, n - n_train


def check_shuffle_splits(
    n: int,
    labels: Sequence[Any] | None = None,
    *,
    train_size: float = TRAIN_SIZE,
    what: str = "the cross-validation",
) -> None:
    """Raise :class:`InputError` (with what would work) unless ``n`` stimuli, with these
    labels, can be split into training and test sets of at least 3 stimuli, stratified by
    ``labels`` when given (every label on at least 2 stimuli, and at least as many test and
    training stimuli as labels, as stratification needs)."""
    if not 0 < train_size < 1:
        raise InputError(f"train_size must be in (0, 1), got {train_size}.")
    n_train, n_test = split_sizes(n, train_size)
    if min(n_train, n_test) < MIN_SPLIT_STIMULI:
        need = MIN_SPLIT_STIMULI
        while min(split_sizes(need, train_size)) < MIN_SPLIT_STIMULI:
            need += 1
        raise InputError(
            f"{what} needs at least {MIN_SPLIT_STIMULI} test and {MIN_SPLIT_STIMULI} training "
            f"stimuli per split ({train_size:.0%} / {1 - train_size:.0%}), i.e. at least {need} "
            f"stimuli; there are {n}."
        )
    if labels is None:
        return
    labels = np.asarray(labels).astype(str)
    if labels.shape != (n,):
        raise InputError(f"{labels.size} labels for {n} stimuli; give one label per stimulus.")
    values, counts = np.unique(labels, return_counts=True)
    rare = values[counts < 2]
    if rare.size:
        raise InputError(
            f"{what} is stratified by label, and {rare.size} labels have a single stimulus "
            f"(e.g. {rare[:3].tolist()}); stratification needs at least 2 stimuli per label. "
            "Use unstratified splits (stratify_by=null) or other labels."
        )
    if values.size > min(n_train, n_test):
        raise InputError(
            f"{what} is stratified by {values.size} labels but a split has only {n_test} test "
            f"and {n_train} training stimuli; stratification needs at least one stimulus of "
            "every label on each side. Use unstratified splits (stratify_by=null) or fewer, "
            "coarser labels."
        )


def shuffle_splits(
    n: int,
    labels: Sequence[Any] | None = None,
    *,
    n_splits: int = N_SPLITS,
    train_size: float = TRAIN_SIZE,
    seed: int = SEED,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Brain-Score's splits of ``range(n)``: ``[(train positions, test positions), ...]``.

    Parameters
    ----------
    n : int
        The number of stimuli, in the order the positions refer to.
    labels : sequence, optional
        One label per stimulus (e.g. its object): the splits are stratified by it
        (scikit-learn's ``StratifiedShuffleSplit``); without, ``ShuffleSplit``.
    n_splits, train_size, seed
        Brain-Score's defaults: 10, 0.9 and 1.

    Returns
    -------
    list of (ndarray, ndarray)
        Sorted int64 positions of the training and the test stimuli of every split.
    """
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    check_shuffle_splits(n, labels, train_size=train_size)
    if n_splits < 1:
        raise InputError(f"n_splits must be >= 1, got {n_splits}.")
    placeholder = np.zeros(n)
    if labels is None:
        splitter = ShuffleSplit(n_splits=n_splits, train_size=train_size, random_state=seed)
        drawn = splitter.split(placeholder)
    else:
        splitter = StratifiedShuffleSplit(
            n_splits=n_splits, train_size=train_size, random_state=seed
        )
        drawn = splitter.split(placeholder, np.asarray(labels).astype(str))
    return [
        (np.sort(train).astype(np.int64), np.sort(test).astype(np.int64)) for train, test in drawn
    ]


def repetition_halves(
    values: np.ndarray,
    stimulus: Sequence[Any],
    repetition: Sequence[Any],
    *,
    n_splits: int = N_SPLITS,
    seed: int = SEED,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Split-half means of trial-level responses, as Brain-Score's internal consistency.

    For each of ``n_splits`` random splits of the unique ``repetition`` values into halves
    (scikit-learn's ``ShuffleSplit(train_size=0.5)`` with ``seed``), yields ``(stimuli,
    mean_a, mean_b)``: the stimuli (sorted unique ids) that have trials in both halves and
    each half's mean response per stimulus, ``(n_stimuli, n_neuroids)`` float64.

    Parameters
    ----------
    values : ndarray
        ``(n_trials, n_neuroids)`` trial-level responses.
    stimulus, repetition : sequence
        Each trial's stimulus id and repetition number.
    """
    from sklearn.model_selection import ShuffleSplit

    values = np.asarray(values, dtype=np.float64)
    stimulus = np.asarray(stimulus).astype(str)
    repetition = np.asarray(repetition)
    reps = np.unique(repetition)
    if reps.size < 2:
        raise InputError("split halves of repetitions need at least 2 repetition values.")
    unique, inverse = np.unique(stimulus, return_inverse=True)
    splitter = ShuffleSplit(n_splits=n_splits, train_size=0.5, random_state=seed)
    for a, b in splitter.split(reps):
        means = []
        for half in (reps[a], reps[b]):
            rows = np.isin(repetition, half)
            sums = np.zeros((unique.size, values.shape[1]))
            np.add.at(sums, inverse[rows], values[rows])
            counts = np.bincount(inverse[rows], minlength=unique.size)
            with np.errstate(invalid="ignore", divide="ignore"):
                means.append(sums / counts[:, None])
        both = np.isfinite(means[0][:, 0]) & np.isfinite(means[1][:, 0])
        yield unique[both], means[0][both], means[1][both]
