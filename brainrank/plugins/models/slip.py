"""SLIP's ViTs (Mu et al. 2022): SLIP, CLIP and SimCLR objectives on YFCC-15M (and CC12M).

``slip/vit-<s|b|l>16@<objective>`` is the image encoder of a model released with SLIP
(https://github.com/facebookresearch/SLIP, ``models.py`` and ``README.md``):

- the architecture is timm's ViT as SLIP builds it, without a classifier (``num_classes=0``):
  ViT-S/16 is SLIP's ``vit_small_mocov3_patch16_224`` (384 wide, 12 heads, unlike timm's
  6-head ViT-S), ViT-B/16 ``vit_base_patch16_224``, ViT-L/16 ``vit_large_patch16_224``;
- for the CLIP and SLIP objectives the image projection (``image_projection``, width x 512)
  follows the ViT: the image embedding the objective aligns with text is the last layer. The
  SimCLR objective's MLP head (``image_mlp``) and the text tower are training-only parts and
  are not built;
- tags: ``slip``, ``clip``, ``simclr`` (25 epochs on YFCC-15M), ``slip-100ep`` (100 epochs),
  and for ViT-B ``clip-cc12m``, ``slip-cc12m`` (35 epochs on CC12M).

Checkpoint layout (``main.py`` saves it, ``eval_zeroshot.py`` reads it): a ``.pt`` file
holding ``{"state_dict": {...}, "args": argparse.Namespace, "epoch": ...}`` (plus the
optimizer's state in some), keys prefixed ``module.`` (DistributedDataParallel):
``module.visual.<timm ViT keys>``, ``module.image_projection``, ``module.transformer.*``,
``module.image_mlp.*``... brainrank reads it without running code from the file (tensors,
plain containers and ``argparse.Namespace`` only). Preprocessing: SLIP's evaluation
transform (shorter side to 224, centre crop 224, ImageNet mean and std).

Metadata: task ``language-image`` (CLIP, SLIP) or ``contrastive self-supervision`` (SimCLR);
training method ``clip``, ``slip`` or ``simclr``; data YFCC-15M (or CC-12M); the zero-shot
and linear-probe ImageNet top-1 of SLIP's README in ``extra``.

Weights: ``weights=PATH``, else ``$TORCH_HOME/hub/checkpoints/<file name of the URL>``
(``slip_base_25ep.pt``...).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from brainrank.plugin import (
    RANDOM_SEED,
    Model,
    ModelMetadata,
    ModelSpec,
    WeightsUnavailableError,
    hookimpl,
    seeded,
)
from brainrank.plugins.models._common import (
    ImagePreprocess,
    hub_weights_missing,
    load_state,
    load_torch_hub_weights,
    read_torch_file,
    strip_prefixes,
    with_loaded_facts,
)

BASE_URL = "https://dl.fbaipublicfiles.com/slip/"
EMBED_DIM = 512

#: size -> (timm architecture, width, heads)
SIZES: dict[str, tuple[str, int, int]] = {
    "s16": ("vit_small_patch16_224", 384, 12),
    "b16": ("vit_base_patch16_224", 768, 12),
    "l16": ("vit_large_patch16_224", 1024, 16),
}
_FILE_SIZE = {"s16": "small", "b16": "base", "l16": "large"}


@dataclass(frozen=True)
class Release:
    size: str
    tag: str
    file: str
    zero_shot: float | None
    linear: float

    @property
    def identifier(self) -> str:
        return f"slip/vit-{self.size}@{self.tag}"

    @property
    def objective(self) -> str:
        return self.tag.split("-")[0]

    @property
    def url(self) -> str:
        return BASE_URL + self.file

    @property
    def data(self) -> str:
        return "CC-12M" if self.tag.endswith("cc12m") else "YFCC-15M"


def _releases() -> tuple[Release, ...]:
    table = {  # README: (0-shot, linear) ImageNet top-1
        "s16": {"clip": (32.7, 59.3), "simclr": (None, 58.1), "slip": (38.3, 66.4),
                "slip-100ep": (39.5, 68.3)},
        "b16": {"clip": (37.6, 66.5), "simclr": (None, 64.0), "slip": (42.8, 72.1),
                "slip-100ep": (45.0, 73.6), "clip-cc12m": (36.5, 69.0),
                "slip-cc12m": (40.7, 73.7)},
        "l16": {"clip": (40.4, 70.5), "simclr": (None, 66.7), "slip": (46.2, 76.0),
                "slip-100ep": (47.9, 75.1)},
    }  # fmt: skip
    out = []
    for size, tags in table.items():
        for tag, (zero_shot, linear) in tags.items():
            objective, _, rest = tag.partition("-")
            epochs = {"": "25ep", "100ep": "100ep", "cc12m": "cc12m_35ep"}[rest]
            file = f"{objective}_{_FILE_SIZE[size]}_{epochs}.pt"
            out.append(Release(size, tag, file, zero_shot, linear))
    return tuple(out)


RELEASES = _releases()
BY_ID = {r.identifier: r for r in RELEASES}


def _encoder_class():
    """The encoder module class (defined here so that listing never imports torch)."""
    import torch

    class _Encoder(torch.nn.Module):
        """SLIP's ``visual`` ViT, then (CLIP and SLIP objectives) its image projection."""

        def __init__(self, visual: Any, width: int, projection: bool):
            super().__init__()
            self.visual = visual
            self.image_projection = (
                torch.nn.Linear(width, EMBED_DIM, bias=False) if projection else None
            )

        def forward(self, x):
            x = self.visual(x)
            return self.image_projection(x) if self.image_projection is not None else x

    return _Encoder


def encoder(size: str, projection: bool):
    import timm

    arch, width, heads = SIZES[size]
    with seeded(RANDOM_SEED):
        visual = timm.create_model(arch, pretrained=False, num_classes=0, num_heads=heads)
        return _encoder_class()(visual, width, projection)


def image_state(checkpoint: Any, projection: bool) -> dict[str, Any]:
    """The image encoder's state from a SLIP checkpoint, with this module's names."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise WeightsUnavailableError("the checkpoint holds no 'state_dict'.")
    state = strip_prefixes(dict(state), ("module.",))
    out = {k: v for k, v in state.items() if k.startswith("visual.")}
    if not out:
        raise WeightsUnavailableError(
            "the checkpoint has no image encoder ('module.visual.*' entries); it is not a SLIP "
            "checkpoint."
        )
    if projection:
        if "image_projection" not in state:
            raise WeightsUnavailableError(
                "the checkpoint has no 'image_projection' (a CLIP or SLIP model has one)."
            )
        out["image_projection.weight"] = state["image_projection"].t().contiguous()
    return out


def _read(identifier: str, path: Path) -> Any:
    import argparse

    return read_torch_file(identifier, path, safe_globals=[argparse.Namespace])


def _metadata(size: str, release: Release | None) -> ModelMetadata:
    arch = SIZES[size][0]
    if release is None:
        return ModelMetadata(
            source="slip",
            architecture=f"vit-{size}",
            family="transformer",
            trained=False,
            input_size=224,
            description=f"SLIP's ViT-{size.upper()} image encoder ({arch}, {SIZES[size][2]} "
            f"heads), random initialisation (seed {RANDOM_SEED})",
        )
    simclr = release.objective == "simclr"
    return ModelMetadata(
        source="slip",
        architecture=f"vit-{size}",
        family="transformer",
        task="contrastive self-supervision" if simclr else "language-image",
        training_method=release.objective,
        training_data=release.data,
        trained=True,
        input_size=224,
        description=f"SLIP release: ViT-{size.upper()} trained with the {release.objective} "
        f"objective on {release.data} ({release.file})",
        extra={
            "checkpoint": {"tag": release.tag, "url": release.url},
            "zero_shot_top1": release.zero_shot,
            "linear_probe_top1": release.linear,
            "top1_source": "SLIP README (ImageNet-1k zero-shot and linear probe)",
        },
    )


def preprocess() -> ImagePreprocess:
    return ImagePreprocess(size=224, resize=224)


def build(size: str, identifier: str | None, weights: str | Path | None = None) -> Model:
    release = BY_ID.get(identifier) if identifier else None
    name = identifier or f"slip/vit-{size}:random"
    if release is None and weights is not None:
        raise ValueError(f"{name} takes no weights file: it is a random initialisation.")
    projection = release is None or release.objective != "simclr"
    module = encoder(size, projection)
    if release is not None:
        checkpoint, path = load_torch_hub_weights(name, release.url, weights, reader=_read)
        try:
            state = image_state(checkpoint, projection)
        except WeightsUnavailableError as exc:
            raise WeightsUnavailableError(f"the weights file {path} of {name!r}: {exc}") from exc
        load_state(module, state, name, path)
    module.eval()
    prep = preprocess()
    return Model(
        identifier=name,
        module=module,
        preprocess=prep,
        preprocess_id=prep.describe(),
        metadata=with_loaded_facts(_metadata(size, release), module, 224),
    )


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    specs = [
        ModelSpec(
            r.identifier,
            partial(build, r.size, r.identifier),
            _metadata(r.size, r),
            weights_missing=partial(hub_weights_missing, r.identifier, r.url),
        )
        for r in RELEASES
    ]
    specs += [
        ModelSpec(f"slip/vit-{size}:random", partial(build, size, None), _metadata(size, None))
        for size in SIZES
    ]
    return specs
