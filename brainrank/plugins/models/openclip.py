"""CLIP image towers through ``open_clip``.

``openclip/<architecture>:<tag>`` is the image encoder of an open_clip model with the
pretrained weights named by ``tag`` (``openclip/rn50:openai``,
``openclip/vit-b-32:laion2b_s34b_b79k``); ``openclip/<architecture>:random`` is the same
tower initialised with seed 0. Architectures are open_clip's names in lower case (``rn50``,
``rn101``, ``vit-b-32``, ``vit-b-16``, ``vit-l-14`` are listed with their main tags; any
other open_clip model and tag resolves on demand). Only the image tower is built: its layers
are the layers brainrank reads, and its output (the image embedding) is the last one.
Preprocessing is CLIP's: shorter side resized to the tower's input size (bicubic),
centre crop, and the mean and std of the tag's pretrained config.

Weights: ``weights=PATH`` (an open_clip checkpoint of the whole CLIP model, or of its
``visual.*`` part, as ``.safetensors``, ``.bin``/``.pt`` or an OpenAI TorchScript archive),
else the Hugging Face cache (``$HF_HOME/hub``, the repository of the tag's pretrained config,
file ``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``), else open_clip's
own download folder (``~/.cache/clip/<file name of the tag's URL>``), else a download from
the hub when allowed.
"""

from __future__ import annotations

import io
import os
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
    split_variant,
)
from brainrank.plugins.models._common import (
    ImagePreprocess,
    explicit_weights,
    hf_cached_file,
    hf_missing_message,
    hf_weights_file,
    load_state,
    unwrap_state_dict,
    with_loaded_facts,
)

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

#: Listed architectures (identifier name -> open_clip name) and their main pretrained tags.
CURATED: dict[str, tuple[str, tuple[str, ...]]] = {
    "rn50": ("RN50", ("openai", "yfcc15m", "cc12m")),
    "rn101": ("RN101", ("openai", "yfcc15m")),
    "vit-b-32": (
        "ViT-B-32",
        ("openai", "laion400m_e32", "laion2b_s34b_b79k", "datacomp_xl_s13b_b90k"),
    ),
    "vit-b-16": (
        "ViT-B-16",
        ("openai", "laion400m_e32", "laion2b_s34b_b88k", "datacomp_xl_s13b_b90k"),
    ),
    "vit-l-14": (
        "ViT-L-14",
        ("openai", "laion400m_e32", "laion2b_s32b_b82k", "datacomp_xl_s13b_b90k"),
    ),
}

#: Pieces of open_clip tags -> the image-text pairs the model was trained on (first match)
_TAG_DATA = (
    ("openai", "WIT-400M"),
    ("laion400m", "LAION-400M"),
    ("mscoco_finetuned_laion2b", "LAION-2B"),
    ("laion2b", "LAION-2B"),
    ("frozen_laion5b", "LAION-5B"),
    ("laion5b", "LAION-5B"),
    ("laion_aesthetic", "LAION-Aesthetics"),
    ("datacomp", "DataComp"),
    ("commonpool", "CommonPool"),
    ("yfcc15m", "YFCC-15M"),
    ("cc12m", "CC-12M"),
    ("metaclip", "MetaCLIP"),
    ("dfn", "DFN"),
    ("webli", "WebLI"),
)


def training_data_of(tag: str) -> str:
    """The training data (a value of brainrank's vocabulary) an open_clip tag names;
    ``other`` for tags of other or mixed data (``merged2b``, ``meta``...)."""
    for piece, data in _TAG_DATA:
        if tag.startswith(piece):
            return data
    return "other"


def _family(arch: str) -> str:
    return "convnet" if arch.lower().startswith(("rn", "convnext")) else "transformer"


def _metadata(name: str, arch: str, tag: str | None) -> ModelMetadata:
    trained = tag is not None
    if not trained:
        return ModelMetadata(
            source="openclip",
            architecture=arch,
            family=_family(arch),
            trained=False,
            description=f"open_clip {arch} image tower, random initialisation (seed {RANDOM_SEED})",
        )
    return ModelMetadata(
        source="openclip",
        architecture=arch,
        family=_family(arch),
        task="language-image",
        training_method="clip",
        training_data=training_data_of(tag),
        trained=True,
        description=f"open_clip {arch} image tower, pretrained {tag}",
        extra={"pretrained_tag": tag},
    )


def _identifier(name: str, tag: str | None) -> str:
    return f"openclip/{name}:{tag or 'random'}"


def _vision_tower(open_clip: Any, arch: str, quick_gelu: bool):
    """The image tower alone (the text tower is never built)."""
    config = open_clip.get_model_config(arch)
    if config is None:
        raise WeightsUnavailableError(f"open_clip has no model configuration {arch!r}.")
    try:
        from open_clip.model import _build_vision_tower
    except ImportError:  # other open_clip versions: build the whole model, keep its tower
        return open_clip.create_model(arch, pretrained=None, force_quick_gelu=quick_gelu).visual
    return _build_vision_tower(
        config["embed_dim"],
        config["vision_cfg"],
        quick_gelu=quick_gelu or config.get("quick_gelu", False),
    )


def _read_checkpoint(identifier: str, path: Path) -> dict[str, Any]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if _is_torchscript(path):
        # OpenAI's released CLIP .pt files are TorchScript archives. torch.jit.load would run
        # the code stored in the archive, so only its tensors are read (no code, no classes).
        return unwrap_state_dict(_torchscript_tensors(identifier, path))
    try:  # tensors only: never unpickles objects, so no code runs from the file
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsUnavailableError(
            f"cannot read the weights file {path} of {identifier!r} ({exc}); it is damaged "
            "or not a state dict of tensors. brainrank reads only tensors (weights_only): "
            "save the checkpoint with torch.save(model.state_dict(), PATH) or as "
            ".safetensors, and pass that file."
        ) from exc
    return unwrap_state_dict(checkpoint)


#: the storage classes a TorchScript archive's data.pkl names, and their dtypes
_STORAGES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}


class _ScriptObject:
    """A module object of a TorchScript archive, as plain data: its attributes only (the
    class named in the archive is never imported and its code never run)."""

    def __init__(self, *args: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _torchscript_tensors(identifier: str, path: Path) -> dict[str, Any]:
    """The parameters and buffers of a TorchScript archive, ``{dotted.name: tensor}``, read
    from its ``data.pkl`` with an unpickler that knows only tensors, storages and plain
    containers; any other object in the archive refuses the file."""
    import collections
    import pickle
    import zipfile

    import torch

    def refuse(reason: str) -> WeightsUnavailableError:
        return WeightsUnavailableError(
            f"the weights file {path} of {identifier!r} is a TorchScript archive that brainrank "
            f"cannot read without running its code ({reason}). Convert it once, where you "
            'trust the file, to a state dict: python -c "import torch; torch.save(torch.jit.'
            f"load('{path}', map_location='cpu').state_dict(), 'clip_state.pt')\" and pass "
            "weights=clip_state.pt (--weights MODEL=PATH)."
        )

    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise refuse(f"{type(exc).__name__}: {exc}") from exc
    with archive:
        names = archive.namelist()
        data_pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(data_pkl) != 1:
            raise refuse("no single data.pkl in the archive")
        prefix = data_pkl[0][: -len("data.pkl")]
        storages: dict[str, Any] = {}

        def build_list(items: Any) -> list:
            return list(items)

        allowed = {
            ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch.jit._pickle", "build_intlist"): build_list,
            ("torch.jit._pickle", "build_doublelist"): build_list,
            ("torch.jit._pickle", "build_boollist"): build_list,
            ("torch.jit._pickle", "build_tensorlist"): build_list,
            ("torch.jit._pickle", "build_stringlist"): build_list,
        }

        class Unpickler(pickle.Unpickler):
            def find_class(self, module: str, name: str) -> Any:
                if module.startswith("__torch__.") or module == "__torch__":
                    return type(name, (_ScriptObject,), {})
                if module == "torch" and name in _STORAGES:
                    return name
                if (module, name) in allowed:
                    return allowed[(module, name)]
                raise pickle.UnpicklingError(f"the archive holds a {module}.{name} object")

            def persistent_load(self, pid: Any) -> Any:
                if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
                    raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
                _, kind, key, _location, numel = pid
                if kind not in _STORAGES:
                    raise pickle.UnpicklingError(f"unknown storage type {kind!r}")
                if key not in storages:
                    dtype = getattr(torch, _STORAGES[kind])
                    raw = bytearray(archive.read(f"{prefix}data/{key}"))
                    flat = (
                        torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
                    )
                    if flat.numel() < int(numel):
                        raise pickle.UnpicklingError(f"storage {key} is truncated")
                    storages[key] = torch.storage.TypedStorage(
                        wrap_storage=flat.untyped_storage(), dtype=dtype, _internal=True
                    )
                return storages[key]

        try:
            root = Unpickler(io.BytesIO(archive.read(data_pkl[0]))).load()
        except Exception as exc:
            raise refuse(f"{type(exc).__name__}: {exc}") from exc

    out: dict[str, Any] = {}

    def walk(obj: Any, prefix: str) -> None:
        state = getattr(obj, "state", None) if isinstance(obj, _ScriptObject) else obj
        if not isinstance(state, dict):
            return
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                out[prefix + str(name)] = value
            elif isinstance(value, _ScriptObject):
                walk(value, f"{prefix}{name}.")

    walk(root, "")
    if not out:
        raise refuse("it holds no tensors")
    return out


def _is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip holding ``code/`` or
    ``constants.pkl``), found by reading the zip's directory only."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any(
        "/code/" in name or name.endswith("/constants.pkl") or name == "constants.pkl"
        for name in names
    )


def _tower_state(identifier: str, path: Path) -> dict[str, Any]:
    state = _read_checkpoint(identifier, path)
    tower = {k[len("visual.") :]: v for k, v in state.items() if k.startswith("visual.")}
    if not tower:
        raise WeightsUnavailableError(
            f"the weights file {path} holds no CLIP image tower (no 'visual.*' entries) for "
            f"{identifier!r}."
        )
    return tower


def _weights_file(identifier: str, cfg: dict[str, Any]) -> Path:
    hub = cfg.get("hf_hub", "")
    url = cfg.get("url", "")
    # 'org/repo/' means the default file names; 'org/repo/file.bin' names the file
    repo, filename = (hub.rstrip("/"), "") if hub.endswith("/") else os.path.split(hub)
    filenames = (
        (filename,) if filename else ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    )
    if repo:
        cached = hf_cached_file(repo, filenames)
        if cached is not None:
            return cached
    if url:
        legacy = Path("~/.cache/clip").expanduser() / os.path.basename(url)
        if legacy.is_file():
            return legacy
    if not repo:
        raise WeightsUnavailableError(
            f"trained weights of {identifier!r} are not available offline: put the file "
            f"{os.path.basename(url)} in {Path('~/.cache/clip').expanduser()} (from {url}) or "
            "pass weights=PATH (--weights MODEL=PATH)."
        )
    try:
        return hf_weights_file(identifier, repo, filenames)
    except WeightsUnavailableError as exc:
        if url:
            raise WeightsUnavailableError(
                f"{exc} open_clip's download folder {Path('~/.cache/clip').expanduser()} "
                f"holding {os.path.basename(url)} (from {url}) works too."
            ) from None
        raise


def build(name: str, arch: str, tag: str | None, weights: str | Path | None = None) -> Model:
    import open_clip

    identifier = _identifier(name, tag)
    cfg: dict[str, Any] = {}
    if tag is not None:
        cfg = open_clip.get_pretrained_cfg(arch, tag) or {}
        if not cfg and weights is None:
            raise WeightsUnavailableError(
                f"open_clip has no pretrained tag {tag!r} for {arch}; its tags: "
                f"{open_clip.list_pretrained_tags_by_model(arch)}."
            )
    with seeded(RANDOM_SEED):
        module = _vision_tower(open_clip, arch, bool(cfg.get("quick_gelu", False)))
    if tag is not None:
        path = explicit_weights(identifier, weights) if weights else _weights_file(identifier, cfg)
        load_state(module, _tower_state(identifier, path), identifier, path)
    elif weights is not None:
        raise ValueError(f"{identifier} takes no weights file.")
    module.eval()
    size = module.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    prep = ImagePreprocess(
        size=size,
        resize=size,
        mean=cfg.get("mean", OPENAI_MEAN),
        std=cfg.get("std", OPENAI_STD),
        interpolation=cfg.get("interpolation", "bicubic"),
    )
    return Model(
        identifier=identifier,
        module=module,
        preprocess=prep,
        preprocess_id=prep.describe(),
        metadata=with_loaded_facts(_metadata(name, arch, tag), module, size),
    )


def _spec(name: str, arch: str, tag: str | None) -> ModelSpec:
    return ModelSpec(
        identifier=_identifier(name, tag),
        factory=partial(build, name, arch, tag),
        metadata=_metadata(name, arch, tag),
        weights_missing=partial(weights_missing, name, arch, tag) if tag else None,
    )


def weights_missing(name: str, arch: str, tag: str) -> str | None:
    """None when the tag's weights are in the Hugging Face cache or open_clip's download
    folder, else where they belong."""
    import open_clip

    identifier = _identifier(name, tag)
    cfg = open_clip.get_pretrained_cfg(arch, tag) or {}
    hub = cfg.get("hf_hub", "")
    url = cfg.get("url", "")
    repo, filename = (hub.rstrip("/"), "") if hub.endswith("/") else os.path.split(hub)
    filenames = (
        (filename,) if filename else ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    )
    if repo and hf_cached_file(repo, filenames) is not None:
        return None
    legacy = Path("~/.cache/clip").expanduser() / os.path.basename(url) if url else None
    if legacy is not None and legacy.is_file():
        return None
    if repo:
        return hf_missing_message(identifier, repo, filenames)
    return (
        f"trained weights of {identifier!r} are not available offline: put the file "
        f"{os.path.basename(url)} in {Path('~/.cache/clip').expanduser()} (from {url}) or pass "
        "weights=PATH (--weights MODEL=PATH)."
    )


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    specs = []
    for name, (arch, tags) in CURATED.items():
        specs.extend(_spec(name, arch, tag) for tag in tags)
        specs.append(_spec(name, arch, None))
    return specs


@hookimpl
def brainrank_resolve_model(identifier: str) -> ModelSpec | None:
    base, variant = split_variant(identifier)
    if not base.startswith("openclip/") or not variant:
        return None
    name = base[len("openclip/") :]
    import open_clip

    arch = next((m for m in open_clip.list_models() if m.lower() == name), None)
    if arch is None:
        return None
    if variant == "random":
        return _spec(name, arch, None)
    tags = {t.lower(): t for t in open_clip.list_pretrained_tags_by_model(arch)}
    if variant not in tags:
        return None
    return _spec(name, arch, tags[variant])
