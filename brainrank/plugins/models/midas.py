"""MiDaS monocular depth networks (Ranftl et al. 2020).

``midas/midas-v21`` is MiDaS v2.1 (``midas_v21_384.pt`` of https://github.com/isl-org/MiDaS,
its ``hubconf.py`` entry ``MiDaS``): an encoder, torchvision's ResNeXt-101-32x8d (the WSL
weights' architecture), and the RefineNet-style decoder of ``midas/midas_net.py`` and
``midas/blocks.py``, written here with the release's module names: ``pretrained.layer1`` (the
stem and the first stage), ``pretrained.layer2`` to ``layer4``; ``scratch.layer1_rn`` to
``layer4_rn`` (3 x 3 convolutions to 256 channels), ``scratch.refinenet4`` to ``refinenet1``
(feature fusion: two residual convolution units, bilinear upsampling by 2) and
``scratch.output_conv`` (convolutions to a one-channel, non-negative inverse depth map at
the input's resolution). Every module, encoder and decoder, is a layer for brainrank: the
depth network's representation is the whole image-to-depth computation.
``midas/midas-v21:random`` is the same network at seed 0.

Checkpoint layout: a state dict of the whole network (``pretrained.*``, ``scratch.*``),
possibly inside ``{"model": ..., "optimizer": ...}`` (``midas/base_model.py`` reads both).

Preprocessing: MiDaS v2.1 works at 384: the shorter side resized to 384 (bicubic) and, unlike
MiDaS's own transform (which keeps the aspect ratio, the longer side a multiple of 32), a
centre crop of 384 x 384 so that every image gives the same features; ImageNet mean and std.
Metadata: task depth, supervised, MiDaS's mixture of depth data sets.

Not built here (listed in the ``@midas`` model set with their reasons): ``MiDaS_small``
(encoder: gen-efficientnet-pytorch's exportable EfficientNet-Lite3, whose padding and
activations timm does not reproduce exactly) and the DPT models ``DPT_Large`` /
``DPT_Hybrid`` (their ViT reassembly and readout blocks would have to be rewritten).

Weights: ``weights=PATH``, else ``$TORCH_HOME/hub/checkpoints/midas_v21_384.pt``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from brainrank.plugin import (
    RANDOM_SEED,
    Model,
    ModelMetadata,
    ModelSet,
    ModelSpec,
    SetMember,
    hookimpl,
    seeded,
)
from brainrank.plugins.models._common import (
    ImagePreprocess,
    hub_weights_missing,
    load_state,
    load_torch_hub_weights,
    with_loaded_facts,
)

URL = "https://github.com/isl-org/MiDaS/releases/download/v2_1/midas_v21_384.pt"
SIZE = 384
FEATURES = 256

#: MiDaS releases brainrank does not build, with the reason
UNSUPPORTED: dict[str, str] = {
    "MiDaS_small": "its encoder is gen-efficientnet-pytorch's exportable EfficientNet-Lite3 "
    "(static 'same' padding, ReLU6), which timm's tf_efficientnet_lite3 does not reproduce "
    "exactly, and its decoder uses MiDaS's custom fusion blocks; not converted",
    "DPT_Large": "DPT's ViT-L/16 reassembly and readout blocks (midas/dpt_depth.py, "
    "midas/backbones/vit.py) would have to be rewritten; not done",
    "DPT_Hybrid": "DPT's ViT-hybrid (ResNet-50 stem + ViT-B/16) reassembly and readout blocks "
    "would have to be rewritten; not done",
}


def midas_net(encoder_arch: str = "resnext101_32x8d", features: int = FEATURES):
    """MiDaS v2.1's network: a torchvision ResNet-family encoder and the RefineNet decoder,
    module names as in the release (``encoder_arch`` and ``features`` other than the
    defaults only to test the decoder at a small size)."""
    import torch
    import torchvision.models as tvm
    from torch import nn

    class Interpolate(nn.Module):
        def __init__(self, scale_factor: float, mode: str):
            super().__init__()
            self.scale_factor, self.mode = scale_factor, mode

        def forward(self, x):
            return nn.functional.interpolate(
                x, scale_factor=self.scale_factor, mode=self.mode, align_corners=False
            )

    class ResidualConvUnit(nn.Module):
        def __init__(self, channels: int):
            super().__init__()
            self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=True)
            self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=True)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            # as MiDaS: the in-place ReLU also rectifies the skip connection's x
            out = self.conv2(self.relu(self.conv1(self.relu(x))))
            return out + x

    class FeatureFusionBlock(nn.Module):
        def __init__(self, channels: int):
            super().__init__()
            self.resConfUnit1 = ResidualConvUnit(channels)
            self.resConfUnit2 = ResidualConvUnit(channels)

        def forward(self, *xs):
            output = xs[0]
            if len(xs) == 2:
                output = output + self.resConfUnit1(xs[1])
            output = self.resConfUnit2(output)
            return nn.functional.interpolate(
                output, scale_factor=2, mode="bilinear", align_corners=True
            )

    class MidasNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            resnet = tvm.get_model(encoder_arch, weights=None)
            widths = [
                getattr(layer[-1], "conv3", layer[-1].conv2).out_channels
                for layer in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
            ]
            self.pretrained = nn.Module()
            self.pretrained.layer1 = nn.Sequential(
                resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool, resnet.layer1
            )
            self.pretrained.layer2 = resnet.layer2
            self.pretrained.layer3 = resnet.layer3
            self.pretrained.layer4 = resnet.layer4
            self.scratch = nn.Module()
            for i, width in enumerate(widths, start=1):
                setattr(self.scratch, f"layer{i}_rn",
                        nn.Conv2d(width, features, 3, 1, 1, bias=False))  # fmt: skip
            for i in (4, 3, 2, 1):
                setattr(self.scratch, f"refinenet{i}", FeatureFusionBlock(features))
            self.scratch.output_conv = nn.Sequential(
                nn.Conv2d(features, 128, 3, 1, 1),
                Interpolate(2, "bilinear"),
                nn.Conv2d(128, 32, 3, 1, 1),
                nn.ReLU(True),
                nn.Conv2d(32, 1, 1, 1, 0),
                nn.ReLU(True),
            )

        def forward(self, x):
            p, s = self.pretrained, self.scratch
            l1 = p.layer1(x)
            l2 = p.layer2(l1)
            l3 = p.layer3(l2)
            l4 = p.layer4(l3)
            path = s.refinenet4(s.layer4_rn(l4))
            path = s.refinenet3(path, s.layer3_rn(l3))
            path = s.refinenet2(path, s.layer2_rn(l2))
            path = s.refinenet1(path, s.layer1_rn(l1))
            return torch.squeeze(s.output_conv(path), dim=1)

    return MidasNet()


def _metadata(trained: bool) -> ModelMetadata:
    if not trained:
        return ModelMetadata(
            source="midas",
            architecture="midas-v21",
            family="convnet",
            trained=False,
            input_size=SIZE,
            description=f"MiDaS v2.1 (ResNeXt-101 encoder, RefineNet decoder), random "
            f"initialisation (seed {RANDOM_SEED})",
        )
    return ModelMetadata(
        source="midas",
        architecture="midas-v21",
        family="convnet",
        task="depth",
        training_method="supervised",
        training_data="MiDaS-mix",
        trained=True,
        input_size=SIZE,
        description="MiDaS v2.1 monocular depth network (ResNeXt-101-32x8d WSL encoder, "
        "RefineNet decoder), trained on a mixture of depth data sets",
        extra={"checkpoint": {"url": URL}, "encoder_pretrained_on": "Instagram-3.5B (WSL)"},
    )


def build(trained: bool, weights: str | Path | None = None) -> Model:
    identifier = "midas/midas-v21" + ("" if trained else ":random")
    if not trained and weights is not None:
        raise ValueError(f"{identifier} takes no weights file: it is a random initialisation.")
    with seeded(RANDOM_SEED):
        module = midas_net()
    if trained:
        checkpoint, path = load_torch_hub_weights(identifier, URL, weights)
        load_state(module, checkpoint, identifier, path)  # a state dict, or {"model": ...}
    module.eval()
    prep = ImagePreprocess(size=SIZE, resize=SIZE, interpolation="bicubic")
    return Model(
        identifier=identifier,
        module=module,
        preprocess=prep,
        preprocess_id=prep.describe(),
        metadata=with_loaded_facts(_metadata(trained), module, SIZE),
    )


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            "midas/midas-v21",
            partial(build, True),
            _metadata(True),
            weights_missing=partial(hub_weights_missing, "midas/midas-v21", URL),
        ),
        ModelSpec("midas/midas-v21:random", partial(build, False), _metadata(False)),
    ]


@hookimpl
def brainrank_model_sets() -> list[ModelSet]:
    """``@midas``: the MiDaS hub models, with those brainrank does not build."""
    members = [SetMember("MiDaS", "midas/midas-v21")]
    members += [SetMember(name, None, reason) for name, reason in UNSUPPORTED.items()]
    return [
        ModelSet(
            name="midas",
            title="MiDaS depth networks (isl-org/MiDaS hubconf.py)",
            citation="Ranftl, Lasinger, Hafner, Schindler & Koltun (2020), Towards robust "
            "monocular depth estimation, TPAMI; Ranftl, Bochkovskiy & Koltun (2021), Vision "
            "transformers for dense prediction, ICCV",
            members=tuple(members),
            description="The MiDaS v2.1 and DPT hub models; MiDaS_small and DPT are not built.",
        )
    ]
