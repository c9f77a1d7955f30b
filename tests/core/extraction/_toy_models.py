"""A small network whose every layer is known, and images for it: what the extraction
tests run (tests/core/extraction/)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from brainrank.core.specs import Model, ModelMetadata
from brainrank.core.stimuli import StimulusSet


class Block(nn.Module):
    """A residual block that calls its ReLU twice and adds in place (like torchvision's)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        out = self.relu(self.conv1(x))
        out = self.conv2(out)
        out += x
        return self.relu(out)


class ConvNorm(nn.Module):
    """A convolution, an eval-mode batch norm with non-trivial statistics, a ReLU."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.bn.running_mean.normal_()
        self.bn.running_var.uniform_(0.2, 5.0)
        self.bn.weight.data.normal_()  # some slopes negative
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)

    def forward(self, x):
        return self.pool(self.relu(self.bn(self.conv(x))))


def toy_module() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(3, 4, 3, padding=1),
            act=nn.ReLU(inplace=True),
            block=Block(4),
            drop=nn.Dropout(0.5),
            pool=nn.AdaptiveAvgPool2d(3),
            flat=nn.Flatten(),
            fc=nn.Linear(36, 7),
        )
    ).eval()


def preprocess(image):
    return torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1.0


def toy_model(module=None) -> Model:
    return Model(
        identifier="test/toy",
        module=module or toy_module(),
        preprocess=preprocess,
        preprocess_id="toy",
        metadata=ModelMetadata(source="test", architecture="toy"),
    )


def stimuli(n=10, size=6) -> StimulusSet:
    rng = np.random.default_rng(0)
    images = {f"s{i}": rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(n)}
    return StimulusSet("toy", list(images), images.__getitem__)


def reference_activations(module, batch):
    """The activations computed by hand, in the order the layers run."""
    with torch.no_grad():
        conv = module.conv(batch)
        act = torch.relu(conv)
        b = module.block
        c1 = b.conv1(act)
        r1 = torch.relu(c1)
        c2 = b.conv2(r1)
        r2 = torch.relu(c2 + act)
        pool = module.pool(r2)
        fc = module.fc(pool.flatten(1))
    return OrderedDict(
        [("conv", conv), ("act", act), ("block.conv1", c1), ("block.relu", r1),
         ("block.conv2", c2), ("block.relu:2", r2), ("pool", pool), ("fc", fc)]
    )  # fmt: skip


def batch_of(stim: StimulusSet) -> torch.Tensor:
    return torch.stack([preprocess(stim.image(s)) for s in stim.stimulus_ids])
