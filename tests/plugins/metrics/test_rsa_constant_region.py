"""One region with constant responses does not fail RSA for the others (issue 13, item 10):
it gets NaN rows with a reason, the other regions their usual scores.

docs/reliability.md lists it with the other faults of issue 13.
"""

from __future__ import annotations

import numpy as np

from brainrank.core.scores import FeatureSet, LayerFeatures


def _regions_dataset(constant_region: str = "V4"):
    from brainrank.core.dataset import Dataset
    from brainrank.core.responses import make_responses
    from brainrank.core.specs import DatasetMetadata
    from brainrank.core.stimuli import StimulusSet

    rng = np.random.default_rng(0)
    reps, n, per_region = 2, 12, 6
    regions = ["V1", "V4", "IT"]
    signal = rng.standard_normal((n, per_region * len(regions)))
    trials = signal + 0.3 * rng.standard_normal((reps, n, signal.shape[1]))
    column = regions.index(constant_region) * per_region
    trials[:, :, column : column + per_region] = 1.0  # the same value everywhere
    ids = [f"s{i:03d}" for i in range(n)]
    responses = make_responses(
        trials.reshape(reps * n, -1),
        stimulus_id=ids * reps,
        repetition=np.repeat(np.arange(reps), n),
        neuroid_id=[f"n{i}" for i in range(signal.shape[1])],
        subject="subj",
        region=[r for r in regions for _ in range(per_region)],
    )
    images = {s: np.zeros((4, 4, 3), np.uint8) for s in ids}
    stimuli = StimulusSet("const-test", ids, images.__getitem__)
    dataset = Dataset(
        "test/const", stimuli, DatasetMetadata("none", "synthetic"), responses=responses
    )
    return dataset, signal


def test_a_constant_region_gets_a_nan_row_with_a_reason_and_the_others_are_scored():
    """Was: ``InputError: the brain RDM contains NaN`` for the whole combination."""
    from brainrank.core.rsa import compare, rdm
    from brainrank.plugins.metrics.rsa import RSA

    dataset, signal = _regions_dataset("V4")
    ids = tuple(f"s{i:03d}" for i in range(signal.shape[0]))
    rng = np.random.default_rng(1)
    layer_x = signal[:, :6] + 0.5 * rng.standard_normal((len(ids), 6))
    features = FeatureSet(
        "test/model",
        ids,
        [LayerFeatures("l0", 0, 0.0, 6, (6,), {8: layer_x}, rdm=rdm(layer_x, dtype="float64"))],
    )
    rows = RSA().score(features, dataset)
    layer_rows = {r.region: r for r in rows if r.selection == "layer"}
    assert set(layer_rows) == {"V1", "V4", "IT"}
    bad = layer_rows["V4"]
    assert np.isnan(bad.value) and "constant" in bad.extra["reason"]
    assert "V4" in bad.extra["reason"]
    for region in ("V1", "IT"):
        assert np.isfinite(layer_rows[region].value)
    # the good regions' values are those of an RSA without the constant region
    from brainrank.core.responses import average_repetitions

    averaged = average_repetitions(dataset.responses())
    v1 = np.asarray(averaged.values)[:, :6]
    expected = np.ravel(
        compare(rdm(layer_x, dtype="float64")[None], rdm(v1, dtype="float64")[None])
    )[0]
    np.testing.assert_allclose(layer_rows["V1"].value, expected, rtol=1e-6)
