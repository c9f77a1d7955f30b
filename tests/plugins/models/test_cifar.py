"""The CIFAR-10 ResNets written here, loaded with the real trained weights of the shared
folder (skipped without it)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import brainrank
from brainrank.core.errors import WeightsUnavailableError
from brainrank.core.extraction import extract_features
from brainrank.core.scores import FeatureRequest
from brainrank.plugins.models.cifar import CHECKPOINTS, CIFAR10_CLASSES, resnet_cifar


@pytest.fixture
def cifar_weights(shared_dir):
    folder = shared_dir / "weights" / "cifar-resnet"
    if not folder.is_dir():
        pytest.skip(f"{folder} is not present")
    return folder


def test_architecture_layers_and_parameters():
    for depth, blocks in ((20, 3), (32, 5), (44, 7), (56, 9)):
        net = resnet_cifar(depth)
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) == 1 + 6 * blocks  # option A: no projection convolutions
        with torch.no_grad():
            assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    # He et al. (2016), table 6: ResNet-20 has 0.27M parameters, ResNet-56 0.85M
    assert round(sum(p.numel() for p in resnet_cifar(20).parameters()) / 1e6, 2) == 0.27
    assert round(sum(p.numel() for p in resnet_cifar(56).parameters()) / 1e6, 2) == 0.85
    with pytest.raises(ValueError, match="6 n \\+ 2"):
        resnet_cifar(21)


def test_layer_names_order_and_depth(stimuli_factory):
    model = brainrank.load_model("cifar/resnet20:random")
    features = extract_features(
        model, stimuli_factory(n=4, size=32), FeatureRequest(frozenset({8}), rdm=True)
    )
    # conv1, bn1, relu, 9 blocks x (conv1, bn1, relu1, conv2, bn2, relu2), avgpool, linear
    assert len(features) == 3 + 9 * 6 + 2
    assert features.layer_names[:9] == [
        "conv1", "bn1", "relu", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu1",
        "layer1.0.conv2", "layer1.0.bn2", "layer1.0.relu2",
    ]  # fmt: skip
    assert features.layer_names[-2:] == ["avgpool", "linear"]
    assert features.info["duplicates"] == {"output": "linear"}
    assert features["layer2.0.conv1"].shape == (32, 16, 16)
    assert features["layer3.2.relu2"].shape == (64, 8, 8)
    assert features["linear"].relative_depth == 1.0 and features["conv1"].relative_depth == 0.0


def sketches(seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Crude 32 x 32 scene sketches of six CIFAR-10 classes, 10 each with random colours,
    positions and noise: a plane (grey cross) on sky, a ship (hull and cabin) on sea under
    sky, a frog (green blob) on green, a car (coloured body, dark wheels) on a road, a horse
    (brown body on legs) on grass under sky, a deer (brown blob) on greenery."""
    rng = np.random.default_rng(seed)

    def jitter():
        return rng.uniform(-15, 15, 3)

    def canvas(top, bottom, split=16):
        img = np.zeros((32, 32, 3))
        img[:split], img[split:] = top, bottom
        return img

    def ellipse(img, cy, cx, ry, rx, color):
        y, x = np.mgrid[:32, :32]
        img[((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1] = color
        return img

    def draw(cls):
        if cls == "airplane":
            img = canvas(np.array([150, 180, 215]) + jitter(), np.array([160, 190, 220]) + jitter())
            cy, cx = rng.integers(12, 20), rng.integers(12, 20)
            img[cy - 1 : cy + 2, cx - 10 : cx + 10] = [200, 200, 205]
            img[cy - 7 : cy + 8, cx - 2 : cx + 1] = [200, 200, 205]
        elif cls == "ship":
            h = rng.integers(14, 19)
            img = canvas(
                np.array([170, 195, 225]) + jitter(), np.array([40, 70, 120]) + jitter(), h
            )
            cx = rng.integers(12, 20)
            img[h - 4 : h + 2, cx - 10 : cx + 10] = [90, 90, 95]
            img[h - 8 : h - 4, cx - 3 : cx + 3] = [220, 220, 220]
        elif cls == "frog":
            img = canvas(np.array([90, 110, 60]) + jitter(), np.array([80, 100, 50]) + jitter())
            img = ellipse(img, rng.integers(14, 18), rng.integers(14, 18), 7, 10,
                          np.array([110, 120, 50]) + jitter())  # fmt: skip
        elif cls == "automobile":
            img = canvas(
                np.array([160, 160, 160]) + jitter(), np.array([90, 90, 90]) + jitter(), 20
            )
            color = np.array([[200, 30, 30], [30, 30, 200], [230, 230, 230]][rng.integers(3)])
            cx = rng.integers(13, 19)
            img[12:22, cx - 11 : cx + 11] = color
            img[8:13, cx - 6 : cx + 6] = color * 0.8
            img[9:12, cx - 5 : cx + 5] = [60, 70, 80]
            img = ellipse(img, 22, cx - 7, 3, 3, [20, 20, 20])
            img = ellipse(img, 22, cx + 7, 3, 3, [20, 20, 20])
        elif cls == "horse":
            img = canvas(
                np.array([140, 170, 200]) + jitter(), np.array([90, 130, 60]) + jitter(), 18
            )
            cx = rng.integers(12, 20)
            img[10:18, cx - 8 : cx + 6] = [110, 70, 40]
            img[18:27, cx - 7 : cx - 5] = [100, 60, 35]
            img[18:27, cx + 3 : cx + 5] = [100, 60, 35]
            img[5:12, cx + 5 : cx + 9] = [110, 70, 40]
        else:  # deer
            img = canvas(
                np.array([80, 100, 60]) + jitter(), np.array([100, 110, 60]) + jitter(), 18
            )
            img = ellipse(img, rng.integers(13, 18), rng.integers(13, 19), 6, 8,
                          np.array([140, 100, 60]) + jitter())  # fmt: skip
        return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)

    classes = ["airplane", "ship", "frog", "automobile", "horse", "deer"]
    images, labels = [], []
    for cls in classes:
        for _ in range(10):
            images.append(draw(cls))
            labels.append(CIFAR10_CLASSES.index(cls))
    return images, np.array(labels)


def accuracy(model, images, labels) -> float:
    x = torch.stack([model.preprocess(image) for image in images])
    with torch.no_grad():
        return float((model.module(x).argmax(1).numpy() == labels).mean())


def test_trained_networks_beat_chance_on_sketches(cifar_weights):
    images, labels = sketches()
    chance = 1 / len(CIFAR10_CLASSES)
    random_accuracy = accuracy(brainrank.load_model("cifar/resnet20:random"), images, labels)
    for depth, (filename, _, _) in CHECKPOINTS.items():
        model = brainrank.load_model(f"cifar/resnet{depth}", weights=str(cifar_weights / filename))
        assert model.metadata.trained and model.metadata.training_data == "CIFAR-10"
        score = accuracy(model, images, labels)
        # 60 sketches: 12 or more right is above chance at p < 0.01 (binomial, p = 0.1)
        assert score >= 0.2 > chance, (depth, score)
        assert score > random_accuracy, (depth, score, random_accuracy)


def test_trained_features_differ_from_random_ones(cifar_weights, torch_home, stimuli_factory):
    shutil.copy(cifar_weights / "resnet20-12fca82f.th", torch_home)  # the torch-hub cache path
    trained = brainrank.load_model("cifar/resnet20")
    random = brainrank.load_model("cifar/resnet20:random")
    stimuli = stimuli_factory(n=6, size=32)
    request = FeatureRequest(frozenset({32}), rdm=True)
    a = extract_features(trained, stimuli, request)
    b = extract_features(random, stimuli, request)
    assert a.layer_names == b.layer_names
    for x, y in zip(a, b, strict=True):
        assert not np.allclose(x.rdm, y.rdm, atol=1e-3), x.name


def test_a_wrong_file_under_the_expected_name_is_refused(cifar_weights, torch_home):
    shutil.copy(cifar_weights / "resnet32-d509ac18.th", torch_home / "resnet20-12fca82f.th")
    with pytest.raises(WeightsUnavailableError, match="not the expected 12fca82f"):
        brainrank.load_model("cifar/resnet20")
    # an explicit file is taken as given, but must fit the architecture
    with pytest.raises(WeightsUnavailableError, match="does not fit 'cifar/resnet20'"):
        brainrank.load_model("cifar/resnet20", weights=str(cifar_weights / "resnet32-d509ac18.th"))
