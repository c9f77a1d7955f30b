"""NaN or infinite activations (issue 13, item 14) name the model and the layers, on every
extraction pass; large finite values are not taken for them.

docs/reliability.md lists it with the other faults of issue 13.
"""

from __future__ import annotations

import numpy as np
import pytest

from brainrank.core.scores import FeatureRequest


@pytest.mark.parametrize("rdm", [True, False])
def test_nan_activations_name_the_model_and_the_layers(rdm):
    """Was: "patterns contain NaN ..." with no model or layer named."""
    from collections import OrderedDict

    import torch
    from torch import nn

    from brainrank.core.errors import InputError
    from brainrank.core.extraction import ExtractionConfig, extract_features
    from brainrank.core.specs import Model, ModelMetadata
    from brainrank.core.stimuli import StimulusSet

    torch.manual_seed(0)
    module = nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(3, 2, 3),
            flat=nn.Flatten(),
            fc=nn.Linear(32, 5),
            out=nn.Linear(5, 3),
        )
    ).eval()
    with torch.no_grad():
        module.fc.weight[1, 0] = float("nan")  # as from a damaged weights file
    model = Model(
        identifier="test/nan-net",
        module=module,
        preprocess=lambda im: torch.from_numpy(np.asarray(im, np.float32)).permute(2, 0, 1),
        preprocess_id="plain",
        metadata=ModelMetadata(source="test", architecture="toy"),
    )
    rng = np.random.default_rng(0)
    images = {f"s{i}": rng.integers(0, 256, (6, 6, 3), dtype=np.uint8) for i in range(6)}
    stimuli = StimulusSet("nan-test", list(images), images.__getitem__)
    with pytest.raises(InputError) as caught:
        extract_features(
            model, stimuli, FeatureRequest(frozenset({4}), rdm=rdm), ExtractionConfig()
        )
    message = str(caught.value)
    assert "'test/nan-net'" in message and "'fc' (1 features)" in message and "'out'" in message
    assert "'conv'" not in message


def test_large_finite_activations_are_not_taken_for_nan():
    """The cheap check (a float32 column sum) overflows on huge finite values; those columns
    are checked element by element, so only real NaN/inf is refused."""
    from brainrank.core.errors import InputError
    from brainrank.core.extraction.capture import _check_finite
    from brainrank.core.extraction.planning import _Slice

    block = np.ones((6, 4), np.float32)  # feature-major, as the pass buffers are
    block[2] = 3e38  # finite, but four of them sum to inf in float32
    _check_finite("m", [_Slice("a", 0, 6)], {"a": block})
    block[4, 1] = np.inf
    with pytest.raises(InputError, match=r"'a' \(1 features\)"):
        _check_finite("m", [_Slice("a", 0, 6)], {"a": block})
