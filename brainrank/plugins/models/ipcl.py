"""IPCL AlexNet-GN (Konkle & Alvarez 2022, "A self-supervised domain-general learning
framework for human ventral stream representation").

``ipcl/alexnet-gn@<tag>`` is the AlexNet variant of the IPCL release
(https://github.com/harvard-visionlab/open_ipcl, ``models/alexnet_gn.py`` and
``hubconf.py``): five convolution blocks with group normalisation (32 groups) and no conv
bias, an adaptive 6 x 6 average pool, ``fc6`` and ``fc7`` (linear, batch norm, ReLU) and
``fc8`` to a 128-d embedding followed by L2 normalisation (IPCL models) or to the 1000
ImageNet classes (the category-supervised control). brainrank writes the architecture
itself, with the release's module names, so the checkpoints load strictly.

Tags (the release's reference numbers): ``ipcl-imagenet`` (Ref#1), ``ipcl-openimages``
(Ref#7), ``ipcl-places`` (Ref#8, Places2), ``ipcl-vggface2`` (Ref#9), ``ipcl-fpo`` (Ref#10,
faces-places-objects), ``supervised-imagenet`` (Ref#12, category supervision with the same
augmentations). ``ipcl/alexnet-gn:random`` is the IPCL architecture at seed 0.

Checkpoint layout: a ``.pth.tar`` holding ``{"state_dict": {"module.conv_block_1.0.weight",
...}}`` (DataParallel prefixes, removed as ``hubconf.py`` does). Preprocessing as the
release's ``_transform``: shorter side to 256, centre crop 224, then ImageNet mean and std
(Ref#1, Ref#12) or mean 0.5 and std 0.2 (the visual-diet set, Ref#6 to Ref#11).

Weights: ``weights=PATH``, else ``$TORCH_HOME/hub/checkpoints/<cache file name>``, the name
``hubconf.py`` gives the download (``alexnetgn_ipcl_ref01-51bcc71556.pth.tar``...).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from brainrank.plugin import RANDOM_SEED, Model, ModelMetadata, ModelSpec, hookimpl, seeded
from brainrank.plugins.models._common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImagePreprocess,
    hub_weights_missing,
    load_state,
    load_torch_hub_weights,
    with_loaded_facts,
)

S3 = "https://visionlab-pretrainedmodels.s3.amazonaws.com/project_instancenet/ipcl/"
DIET_MEAN = (0.5, 0.5, 0.5)
DIET_STD = (0.2, 0.2, 0.2)


@dataclass(frozen=True)
class Release:
    tag: str
    ref: str
    checkpoint: str  # the file name on the server
    cache: str  # the file name hubconf.py gives it in the torch-hub cache
    data: str
    supervised: bool = False
    diet: bool = False  # the visual-diet set: mean 0.5, std 0.2

    @property
    def url(self) -> str:
        return S3 + self.checkpoint


RELEASES: tuple[Release, ...] = (
    Release("ipcl-imagenet", "Ref#1", "06_instance_imagenet_AlexNet_n5_lr03_pct40_t07_div1000_"
            "e100_bs128_bm20_gn_stack_final_weights_only.pth.tar",
            "alexnetgn_ipcl_ref01-51bcc71556.pth.tar", "ImageNet-1k"),
    Release("ipcl-openimages", "Ref#7", "alexnet_gn_u128_openimagesv6_final_weights_only.pth.tar",
            "alexnetgn_ipcl_ref07_diet_openimagesv6-79a120b915.pth.tar", "OpenImages", diet=True),
    Release("ipcl-places", "Ref#8", "alexnet_gn_u128_places2_final_weights_only.pth.tar",
            "alexnetgn_ipcl_ref08_diet_places2-343c15875d.pth.tar", "Places365", diet=True),
    Release("ipcl-vggface2", "Ref#9", "alexnet_gn_u128_vggface2_lr001_final_weights_only.pth.tar",
            "alexnetgn_ipcl_ref09_diet_vggface2-23ef0936c4.pth.tar", "VGGFace2", diet=True),
    Release("ipcl-fpo", "Ref#10",
            "alexnet_gn_u128_FacesPlacesObjects1281167_final_weights_only.pth.tar",
            "alexnetgn_ipcl_ref10_diet_FacesPlacesObjects1281167-25e539c255.pth.tar",
            "FacesPlacesObjects", diet=True),
    Release("supervised-imagenet", "Ref#12",
            "alexnet_gn_s1000_imagenet_wus_aug_final_weights_only.pth.tar",
            "alexnetgn_supervised_ref12_augset1_5x-3a41dd57b4.pth.tar", "ImageNet-1k",
            supervised=True),
)  # fmt: skip
BY_TAG = {r.tag: r for r in RELEASES}


def alexnet_gn(out_dim: int = 128, l2norm: bool = True):
    """IPCL's AlexNet with group normalisation, module names as in the release."""
    import torch
    from torch import nn

    class L2Norm(nn.Module):
        """Divide each row by its L2 norm (IPCL's embedding normalisation)."""

        def forward(self, x):
            return x / x.pow(2).sum(1, keepdim=True).sqrt()

    def conv(cin: int, cout: int, k: int, s: int, p: int, pool: bool) -> nn.Sequential:
        layers = [nn.Conv2d(cin, cout, k, s, p, bias=False), nn.GroupNorm(32, cout),
                  nn.ReLU(inplace=True)]  # fmt: skip
        return nn.Sequential(*layers, *([nn.MaxPool2d(3, 2)] if pool else []))

    class AlexNetGN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv_block_1 = conv(3, 96, 11, 4, 2, True)
            self.conv_block_2 = conv(96, 256, 5, 1, 2, True)
            self.conv_block_3 = conv(256, 384, 3, 1, 1, False)
            self.conv_block_4 = conv(384, 384, 3, 1, 1, False)
            self.conv_block_5 = conv(384, 256, 3, 1, 1, True)
            self.ave_pool = nn.AdaptiveAvgPool2d((6, 6))
            self.fc6 = nn.Sequential(nn.Linear(256 * 6 * 6, 4096), nn.BatchNorm1d(4096),
                                     nn.ReLU(inplace=True))  # fmt: skip
            self.fc7 = nn.Sequential(nn.Linear(4096, 4096), nn.BatchNorm1d(4096),
                                     nn.ReLU(inplace=True))  # fmt: skip
            self.fc8 = nn.Sequential(nn.Linear(4096, out_dim))
            self.l2norm = L2Norm() if l2norm else None

        def forward(self, x):
            for block in (self.conv_block_1, self.conv_block_2, self.conv_block_3,
                          self.conv_block_4, self.conv_block_5):  # fmt: skip
                x = block(x)
            x = torch.flatten(self.ave_pool(x), 1)
            x = self.fc8(self.fc7(self.fc6(x)))
            return self.l2norm(x) if self.l2norm is not None else x

    return AlexNetGN()


def _metadata(release: Release | None) -> ModelMetadata:
    if release is None:
        return ModelMetadata(
            source="ipcl",
            architecture="alexnet-gn",
            family="convnet",
            trained=False,
            input_size=224,
            description=f"IPCL AlexNet-GN (128-d embedding), random initialisation (seed "
            f"{RANDOM_SEED})",
        )
    return ModelMetadata(
        source="ipcl",
        architecture="alexnet-gn",
        family="convnet",
        task="classification" if release.supervised else "contrastive self-supervision",
        training_method="supervised" if release.supervised else "ipcl",
        training_data=release.data,
        trained=True,
        input_size=224,
        description=f"IPCL release {release.ref}: AlexNet-GN trained "
        + ("with category supervision" if release.supervised else "with IPCL")
        + f" on {release.data}",
        extra={"checkpoint": {"tag": release.tag, "ref": release.ref, "url": release.url}},
    )


def preprocess(release: Release | None) -> ImagePreprocess:
    diet = release is not None and release.diet
    return ImagePreprocess(
        size=224,
        resize=256,
        mean=DIET_MEAN if diet else IMAGENET_MEAN,
        std=DIET_STD if diet else IMAGENET_STD,
    )


def build(tag: str | None, weights: str | Path | None = None) -> Model:
    release = BY_TAG[tag] if tag else None
    identifier = f"ipcl/alexnet-gn@{tag}" if tag else "ipcl/alexnet-gn:random"
    if release is None and weights is not None:
        raise ValueError(f"{identifier} takes no weights file: it is a random initialisation.")
    supervised = release is not None and release.supervised
    with seeded(RANDOM_SEED):
        module = alexnet_gn(out_dim=1000 if supervised else 128, l2norm=not supervised)
    if release is not None:
        checkpoint, path = load_torch_hub_weights(
            identifier, release.url, weights, filename=release.cache
        )
        state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else {}
        state = {k.replace("module.", ""): v for k, v in state.items()}  # as hubconf.py does
        load_state(module, state, identifier, path)
    module.eval()
    prep = preprocess(release)
    return Model(
        identifier=identifier,
        module=module,
        preprocess=prep,
        preprocess_id=prep.describe(),
        metadata=with_loaded_facts(_metadata(release), module, 224),
    )


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    specs = [
        ModelSpec(
            f"ipcl/alexnet-gn@{r.tag}",
            partial(build, r.tag),
            _metadata(r),
            weights_missing=partial(
                hub_weights_missing, f"ipcl/alexnet-gn@{r.tag}", r.url, r.cache
            ),
        )
        for r in RELEASES
    ]
    specs.append(ModelSpec("ipcl/alexnet-gn:random", partial(build, None), _metadata(None)))
    return specs
