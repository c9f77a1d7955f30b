"""Feature spaces of several models (brainrank/core/spaces.py): parsing MODEL[:LAYER] when
model identifiers and layer names both contain colons, the combination's identifier, and
the layers a space names."""

from __future__ import annotations

import pytest

from brainrank.core.errors import InputError
from brainrank.core.scores import FeatureRequest
from brainrank.core.spaces import (
    LayerCatalogue,
    Space,
    canonical_texts,
    combination_identifier,
    expand,
    expand_all,
    feature_spaces,
    is_combination,
    parse_space,
    parse_spaces,
)

MODELS = {"torchvision/alexnet", "torchvision/alexnet:random", "timm/resnet18:random"}


def is_model(text: str) -> bool:
    return text in MODELS


def test_the_model_is_the_longest_known_prefix_at_a_colon():
    assert parse_space("torchvision/alexnet", is_model) == Space("torchvision/alexnet")
    assert parse_space("torchvision/alexnet:random", is_model) == Space(
        "torchvision/alexnet:random"
    )
    assert parse_space("torchvision/alexnet:features.3", is_model) == Space(
        "torchvision/alexnet", "features.3"
    )
    assert parse_space("torchvision/alexnet:random:features.3", is_model) == Space(
        "torchvision/alexnet:random", "features.3"
    )
    # a layer name with a colon of its own (a module called twice)
    assert parse_space("timm/resnet18:random:layer1.0.act1:2", is_model) == Space(
        "timm/resnet18:random", "layer1.0.act1:2"
    )
    assert Space("timm/resnet18:random", "layer1.0.act1:2").label == (
        "timm/resnet18:random:layer1.0.act1:2"
    )


def test_a_text_without_a_known_model_is_an_error_that_says_how_to_write_one():
    with pytest.raises(InputError, match=r"names no known model.*MODEL\[:LAYER\]"):
        parse_space("torchvision/alexnett:features.3", is_model)
    with pytest.raises(InputError, match="empty feature space"):
        parse_space("  ", is_model)
    with pytest.raises(InputError, match="more than once"):
        parse_spaces(["torchvision/alexnet", "torchvision/alexnet"], is_model)


def test_the_identifier_names_the_spaces_in_any_order_and_nothing_else():
    a = parse_spaces(["torchvision/alexnet:features.3", "timm/resnet18:random"], is_model)
    b = parse_spaces(["timm/resnet18:random", "torchvision/alexnet:features.3"], is_model)
    c = parse_spaces(["torchvision/alexnet:features.6", "timm/resnet18:random"], is_model)
    assert combination_identifier(a) == combination_identifier(b) != combination_identifier(c)
    assert combination_identifier(a).startswith("stack/") and len(combination_identifier(a)) == 18
    assert is_combination(combination_identifier(a)) and not is_combination("torchvision/alexnet")
    assert canonical_texts("b, a,a") == canonical_texts(["a", "b"]) == ("a", "b")
    with pytest.raises(InputError, match="as a string"):
        canonical_texts([1, 2])


CATALOGUE = LayerCatalogue(
    names=("conv", "relu", "pool", "fc", "fc2"), duplicates={"flatten": "pool"}, constant=("head",)
)


def test_layers_names_patterns_and_the_reason_a_name_is_not_a_layer():
    assert expand(Space("m/a", "pool"), CATALOGUE) == [Space("m/a", "pool")]
    assert expand(Space("m/a"), CATALOGUE) == [Space("m/a")]  # best layer: chosen later
    assert expand(Space("m/a", "fc*"), CATALOGUE) == [Space("m/a", "fc"), Space("m/a", "fc2")]
    with pytest.raises(InputError, match=r"has no layer 'pol'\. Closest: pool"):
        expand(Space("m/a", "pol"), CATALOGUE)
    with pytest.raises(InputError, match=r"repeats the activations of layer 'pool'.*m/a:pool"):
        expand(Space("m/a", "flatten"), CATALOGUE)
    with pytest.raises(InputError, match="one constant value"):
        expand(Space("m/a", "head"), CATALOGUE)
    with pytest.raises(InputError, match="matches none"):
        expand(Space("m/a", "block*"), CATALOGUE)
    both = expand_all([Space("m/a", "fc"), Space("m/a", "fc*")], {"m/a": CATALOGUE})
    assert both == [Space("m/a", "fc"), Space("m/a", "fc2")]  # named twice, kept once


def test_a_metric_receives_each_space_with_the_layers_it_needs():
    import brainrank.testing as bt

    dataset = bt.example_dataset(n_stimuli=10)
    a = bt.example_features(dataset, FeatureRequest(frozenset({8})), seed=0)
    b = bt.example_features(dataset, FeatureRequest(frozenset({8})), seed=1)
    spaces = feature_spaces([Space("m/a", "layer*"), Space("m/b")], {"m/a": a, "m/b": b})
    assert [s.label for s in spaces] == ["m/a:layer0", "m/a:layer1", "m/a:layer2", "m/b"]
    assert spaces[0].features.layer_names == ["layer0"] and spaces[0].layers == ["layer0"]
    assert spaces[3].layer is None and spaces[3].layers == b.layer_names
