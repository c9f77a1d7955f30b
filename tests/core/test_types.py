"""Responses, stimulus sets and identifiers: the conventions and their error messages."""

from __future__ import annotations

import numpy as np
import pytest

from brainrank.core.dataset import Dataset
from brainrank.core.errors import InputError
from brainrank.core.identifiers import check_identifier
from brainrank.core.responses import RDMSet, average_repetitions, make_responses, neuroid_groups
from brainrank.core.scores import Score, best_layer_scores
from brainrank.core.specs import DatasetMetadata
from brainrank.core.stimuli import StimulusSet


def responses(values=None):
    values = np.arange(24, dtype=float).reshape(6, 4) if values is None else values
    return make_responses(
        values,
        stimulus_id=["a", "b", "c", "a", "b", "c"],
        repetition=[0, 0, 0, 1, 1, 1],
        neuroid_id=["n0", "n1", "n2", "n3"],
        subject=["s1", "s1", "s2", "s2"],
        region=["V1", "IT", "V1", "V1"],
        neuroid_coords={"depth": [100, 200, 300, 400]},
    )


def test_make_responses_and_average():
    r = responses()
    assert r.dims == ("presentation", "neuroid")
    avg = average_repetitions(r)
    assert list(avg["stimulus_id"].values) == ["a", "b", "c"]
    np.testing.assert_allclose(avg.values[0], (r.values[0] + r.values[3]) / 2)
    assert list(avg["n_repetitions"].values) == [2, 2, 2]
    assert list(avg["depth"].values) == [100, 200, 300, 400]
    groups = dict(neuroid_groups(avg))
    assert list(groups) == [("s1", "V1"), ("s1", "IT"), ("s2", "V1")]
    np.testing.assert_array_equal(groups[("s2", "V1")], [2, 3])


def test_responses_with_nan_are_refused_with_counts():
    values = np.ones((6, 4))
    values[1, 2] = np.nan
    values[4, 2] = np.inf
    with pytest.raises(
        InputError, match=r"2 NaN or infinite values in 1 neuroids \(e.g. \['n2'\]\)"
    ):
        responses(values)


def test_responses_shape_errors():
    with pytest.raises(InputError, match="stimulus_id has 2 entries; need 6"):
        make_responses(
            np.ones((6, 1)), stimulus_id=["a", "b"], neuroid_id=["n"], subject="s", region="r"
        )
    with pytest.raises(InputError, match="duplicated neuroid_id"):
        make_responses(
            np.ones((2, 2)), stimulus_id=["a", "b"], neuroid_id=["n", "n"], subject="s", region="r"
        )


def test_dataset_checks_stimulus_ids_against_the_stimuli():
    images = {s: np.zeros((4, 4, 3), np.uint8) for s in ["a", "b"]}
    stim = StimulusSet("x", ["a", "b"], images.__getitem__)
    with pytest.raises(
        InputError, match=r"1 stimulus ids are not in stimulus set 'x' \(e.g. \['c'\]\)"
    ):
        Dataset("x", stim, DatasetMetadata("none", "none"), responses=responses())


def test_stimulus_set_validates_ids_and_images():
    with pytest.raises(InputError, match="duplicated stimulus ids"):
        StimulusSet("x", ["a", "a"], lambda s: None)
    stim = StimulusSet("x", ["f", "g", "r"], {
        "f": np.zeros((4, 4, 3), np.float32),
        "g": np.zeros((4, 4), np.uint8),
        "r": np.zeros((4, 4, 4), np.uint8),
    }.__getitem__)  # fmt: skip
    with pytest.raises(InputError, match="dtype float32; stimuli must be uint8"):
        stim.image("f")
    assert stim.image("g").shape == (4, 4, 3)
    assert stim.image("r").shape == (4, 4, 3)
    good = stim.subset(["g", "r"])
    assert len(good.content_hash()) == 64
    assert good.content_hash() != stim.subset(["r", "g"]).content_hash()


def test_rdm_set_validation():
    with pytest.raises(InputError, match="expected"):
        RDMSet(np.zeros((2, 3, 3)), ("a", "b"), [{"subject": "s", "region": "r"}] * 2)
    with pytest.raises(InputError, match="'subject' and 'region'"):
        RDMSet(np.zeros((1, 2, 2)), ("a", "b"), [{"subject": "s"}])


def test_best_layer_scores_pick_the_max_per_group_and_skip_nan():
    rows = [
        Score("s", "V1", "l1", 0.2), Score("s", "V1", "l2", 0.5), Score("s", "V1", "l3", float("nan")),
        Score("s", "IT", "l1", 0.1), Score("s", "IT", "l2", 0.05),
    ]  # fmt: skip
    best = {(b.region, b.layer): b.value for b in best_layer_scores(rows)}
    assert best == {("V1", "l2"): 0.5, ("IT", "l1"): 0.1}
    assert all(b.selection == "max" for b in best_layer_scores(rows))


@pytest.mark.parametrize(
    "good",
    ["simulated", "torchvision/alexnet:random", "timm/resnet50.a1_in1k", "openclip/rn50:openai"],
)
def test_valid_identifiers(good):
    assert check_identifier(good) == good


@pytest.mark.parametrize("bad", ["AlexNet", "torchvision/", "a b", "x:y:z", "", "/x"])
def test_invalid_identifiers(bad):
    with pytest.raises(InputError, match="invalid"):
        check_identifier(bad)
