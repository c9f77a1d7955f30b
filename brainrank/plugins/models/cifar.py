"""ResNets for CIFAR-10 (He et al. 2016, section 4.2): ResNet-20, -32, -44 and -56.

``cifar/resnet<depth>`` loads trained CIFAR-10 weights; ``cifar/resnet<depth>:random`` is the
same network initialised with seed 0. The network is written here from the paper's
description: a 3x3 convolution with 16 channels, three stages of ``(depth - 2) / 6`` basic
blocks (two 3x3 convolutions each) with 16, 32 and 64 channels, the first block of stages 2
and 3 halving the resolution, global average pooling and a 64 -> 10 linear classifier. The
shortcut is the paper's parameter-free "option A": identity, or where the shape changes,
subsampling by 2 and zero channels appended on both sides.

Weights: ``weights=PATH`` (``--weights cifar/resnet20=PATH``), else the torch-hub checkpoint
folder ``$TORCH_HOME/hub/checkpoints/`` under the file names of the published checkpoints
(``resnet20-12fca82f.th`` ...; a checkpoint is ``{"state_dict": ...}`` with keys prefixed
``module.``, or a plain state dict). Inputs: 32 x 32 RGB, ImageNet mean and std (the
normalisation these checkpoints were trained with).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from brainrank.plugin import RANDOM_SEED, Model, ModelMetadata, ModelSpec, hookimpl, seeded
from brainrank.plugins.models._common import (
    ImagePreprocess,
    hub_weights_missing,
    load_state,
    load_torch_hub_weights,
    with_loaded_facts,
)

INPUT_SIZE = 32
_BASE_URL = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/"

#: depth -> (checkpoint file name, its sha256 prefix, CIFAR-10 top-1 reported in the file)
CHECKPOINTS: dict[int, tuple[str, str, float]] = {
    20: ("resnet20-12fca82f.th", "12fca82f", 91.78),
    32: ("resnet32-d509ac18.th", "d509ac18", 92.78),
    44: ("resnet44-014dd654.th", "014dd654", 93.14),
    56: ("resnet56-4bfd9763.th", "4bfd9763", 93.62),
}

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def resnet_cifar(depth: int, n_classes: int = 10):
    """The CIFAR ResNet of ``depth`` layers (6 n + 2), randomly initialised (He init for the
    convolutions, as in the paper)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    if (depth - 2) % 6 != 0 or depth < 8:
        raise ValueError(f"CIFAR ResNets have 6 n + 2 layers (20, 32, 44, 56...), not {depth}.")
    blocks_per_stage = (depth - 2) // 6

    class Block(nn.Module):
        """Two 3x3 convolutions with batch norm; the input is added back before the last
        ReLU, through the option-A shortcut when the shape changes."""

        def __init__(self, in_channels: int, channels: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)
            self.relu2 = nn.ReLU()
            self.stride = stride
            self.extra = channels - in_channels

        def shortcut(self, x: torch.Tensor) -> torch.Tensor:
            if self.stride != 1:
                x = x[:, :, :: self.stride, :: self.stride]
            if self.extra:
                half = self.extra // 2
                x = F.pad(x, (0, 0, 0, 0, half, self.extra - half))
            return x

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.relu1(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu2(out + self.shortcut(x))

    class CifarResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU()
            stages = []
            in_channels = 16
            for index, channels in enumerate((16, 32, 64)):
                blocks = []
                for b in range(blocks_per_stage):
                    stride = 2 if index > 0 and b == 0 else 1
                    blocks.append(Block(in_channels, channels, stride))
                    in_channels = channels
                stages.append(nn.Sequential(*blocks))
            self.layer1, self.layer2, self.layer3 = stages
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.linear = nn.Linear(64, n_classes)
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(module.weight)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.linear(self.avgpool(x).flatten(1))

    return CifarResNet()


def _metadata(depth: int, trained: bool) -> ModelMetadata:
    top1 = CHECKPOINTS[depth][2]
    return ModelMetadata(
        source="cifar",
        architecture=f"resnet{depth}",
        family="convnet",
        task="classification" if trained else None,
        training_method="supervised" if trained else None,
        training_data="CIFAR-10" if trained else None,
        trained=trained,
        input_size=INPUT_SIZE,
        description=f"CIFAR-10 ResNet-{depth} (He et al. 2016, option-A shortcuts), "
        + (
            f"trained weights ({top1:.2f}% top-1 on CIFAR-10)"
            if trained
            else f"random initialisation (seed {RANDOM_SEED})"
        ),
        extra={"classes": list(CIFAR10_CLASSES)},
    )


def preprocess() -> ImagePreprocess:
    return ImagePreprocess(size=INPUT_SIZE, resize=INPUT_SIZE)


def build(depth: int, trained: bool, weights: str | Path | None = None) -> Model:
    identifier = f"cifar/resnet{depth}" + ("" if trained else ":random")
    with seeded(RANDOM_SEED):
        module = resnet_cifar(depth)
    if trained:
        filename, sha_prefix, _ = CHECKPOINTS[depth]
        checkpoint, path = load_torch_hub_weights(
            identifier, _BASE_URL + filename, weights, sha256_prefix=sha_prefix
        )
        load_state(module, checkpoint, identifier, path)
    elif weights is not None:
        raise ValueError(f"{identifier} takes no weights file.")
    module.eval()
    prep = preprocess()
    return Model(
        identifier=identifier,
        module=module,
        preprocess=prep,
        preprocess_id=prep.describe(),
        metadata=with_loaded_facts(_metadata(depth, trained), module, INPUT_SIZE),
    )


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            identifier=f"cifar/resnet{depth}" + ("" if trained else ":random"),
            factory=partial(build, depth, trained),
            metadata=_metadata(depth, trained),
            weights_missing=(
                partial(
                    hub_weights_missing, f"cifar/resnet{depth}", _BASE_URL + CHECKPOINTS[depth][0]
                )
                if trained
                else None
            ),
        )
        for depth in CHECKPOINTS
        for trained in (True, False)
    ]
