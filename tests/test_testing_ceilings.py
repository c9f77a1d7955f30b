"""The plugin check warns when a dataset has neither a reliability nor a ceiling (e.g. its
responses are already repeat-averaged), and a dataset plugin can declare either."""

from __future__ import annotations

import numpy as np
import pytest

import brainrank.testing as bt
from brainrank.plugins.datasets._common import RealDataset


def _averaged(**options):
    """The example dataset with one presentation per stimulus (repeat-averaged data)."""
    data = bt.example_dataset(n_repetitions=1)
    return RealDataset(
        data.identifier, data.stimuli, data.metadata, responses=data.responses(), **options
    )


def test_repeated_presentations_give_a_ceiling_and_no_warning():
    assert bt.ceiling_warning(bt.example_dataset(n_repetitions=2)) is None


def test_repeat_averaged_data_without_a_declared_ceiling_warns():
    dataset = _averaged()
    reason = bt.ceiling_warning(dataset)
    assert reason is not None and "no reliability and no noise ceiling" in reason
    assert "reliability=" in reason and "ceilings=" in reason  # says how to give one
    with pytest.warns(bt.CeilingWarning, match="repeat-averaged"):
        bt.check_dataset(dataset)


def test_a_reliability_coordinate_or_an_overridden_ceiling_silences_it():
    """The public plugin API's ways (brainrank.plugin): a 'reliability' neuroid coordinate,
    or a Dataset subclass whose ceiling() returns a published ceiling."""
    from brainrank.plugin import Dataset, make_responses

    data = bt.example_dataset(n_repetitions=1)
    raw = data.responses()
    coords = {k: raw[k].values for k in ("neuroid_id", "subject", "region")}
    responses = make_responses(
        raw.values,
        stimulus_id=raw["stimulus_id"].values,
        **coords,
        neuroid_coords={"reliability": np.full(raw.sizes["neuroid"], 0.4)},
    )
    with_coord = Dataset(data.identifier, data.stimuli, data.metadata, responses=responses)
    assert bt.ceiling_warning(with_coord) is None

    class Published(Dataset):
        def ceiling(self, kind):
            return {("s1", "early"): 0.7} if kind == "rsa" else {}

    published = Published(data.identifier, data.stimuli, data.metadata, responses=raw)
    assert bt.ceiling_warning(published) is None


def test_a_declared_reliability_or_published_ceiling_silences_it():
    n = _averaged().responses().sizes["neuroid"]
    assert bt.ceiling_warning(_averaged(reliability=np.full(n, 0.5))) is None
    published = {"encoding": lambda: {("s1", "early"): 0.6}}
    assert bt.ceiling_warning(_averaged(ceilings=published)) is None
    assert bt.ceiling_warning(_averaged(ceilings={"encoding": lambda: {("s1", "early"): np.nan}}))
