"""Helpers shared by the model plugins: seeded random initialisation, preprocessing from
uint8 images, and weight files that must be found offline."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.plugin import ModelMetadata, WeightsUnavailableError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def offline() -> bool:
    """True when downloads must not even be tried (the one setting, ``BRAINRANK_OFFLINE`` or
    ``offline`` in ``config.toml``)."""
    from brainrank.data import is_offline

    return is_offline()


def count_parameters(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def with_loaded_facts(
    metadata: ModelMetadata, module: Any, input_size: int | None
) -> ModelMetadata:
    """Metadata completed with what is only known once the network is built."""
    return dataclasses.replace(
        metadata,
        n_params=count_parameters(module),
        input_size=input_size if input_size is not None else metadata.input_size,
    )


class ImagePreprocess:
    """uint8 RGB ``(H, W, 3)`` -> normalised float tensor ``(3, size, size)``.

    Resize the shorter side to ``resize`` (bilinear, antialiased), centre-crop ``size``,
    scale to [0, 1], then ``(x - mean) / std``. ``describe()`` names every parameter so the
    feature cache notices any change.
    """

    def __init__(
        self,
        size: int = 224,
        resize: int | None = 256,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        interpolation: str = "bilinear",
        bgr: bool = False,
    ):
        self.size = int(size)
        self.bgr = bool(bgr)
        self.resize = int(resize) if resize else int(size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.interpolation = interpolation

    def describe(self) -> str:
        return (
            f"resize={self.resize},crop={self.size},interp={self.interpolation},"
            f"mean={self.mean},std={self.std}" + (",channels=BGR" if self.bgr else "")
        )

    def __call__(self, image: np.ndarray):
        import torch
        import torchvision.transforms.v2.functional as F
        from torchvision.transforms import InterpolationMode

        mode = InterpolationMode(self.interpolation)
        x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(
            2, 0, 1
        )  # copy: inputs may be read-only
        x = F.resize(x, self.resize, interpolation=mode, antialias=True)
        x = F.center_crop(x, [self.size, self.size])
        x = x.float() / 255.0
        if self.bgr:  # networks trained on BGR images (Caffe2 / Detectron2 conventions)
            x = x.flip(0)
        return F.normalize(x, list(self.mean), list(self.std))


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def torch_hub_checkpoints() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def torch_hub_checkpoints_path() -> Path:
    """The torch-hub checkpoint folder as torch computes it (``$TORCH_HOME/hub/checkpoints``,
    default ``$XDG_CACHE_HOME/torch`` or ``~/.cache/torch``), without importing torch: for
    checking which weights are present."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch"
    )
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


def hub_filename(url: str, filename: str | None = None) -> str:
    return filename or os.path.basename(url.split("?")[0])


def hub_missing_message(identifier: str, url: str, filename: str | None = None) -> str:
    """What to do when a torch-hub checkpoint is not in the cache: the file, its folder, the
    URL it comes from."""
    name = hub_filename(url, filename)
    return (
        f"trained weights of {identifier!r} are not available offline. Put the file "
        f"{name} in {torch_hub_checkpoints_path()} (it comes from {url}), or pass "
        "weights=PATH (--weights MODEL=PATH on the command line)."
    )


def hub_weights_missing(identifier: str, url: str, filename: str | None = None) -> str | None:
    """None when the torch-hub cache holds the checkpoint of ``url``, else what to do."""
    if (torch_hub_checkpoints_path() / hub_filename(url, filename)).is_file():
        return None
    return hub_missing_message(identifier, url, filename)


def explicit_weights(identifier: str, weights: str | Path) -> Path:
    """``weights=PATH`` checked: the file must exist."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(
            f"weights file {path} for model {identifier!r} does not exist; check the path "
            "given with weights=PATH (--weights MODEL=PATH)."
        )
    return path


def read_torch_file(identifier: str, path: Path, safe_globals: Sequence[Any] = ()) -> Any:
    """``torch.load`` of a weight file (tensors and plain containers only: no code runs from
    the file), with a clear error for bad files. ``safe_globals`` names harmless classes a
    released checkpoint pickles besides tensors (e.g. ``argparse.Namespace`` for its training
    arguments). Old (non-zip) files written by Python 2 are read with latin-1 strings."""
    import torch

    def load(**kwargs: Any) -> Any:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True, **kwargs)

    try:
        try:
            return load()
        except UnicodeDecodeError:
            return load(encoding="latin1")
    except Exception as exc:
        raise WeightsUnavailableError(
            f"cannot read the weights file {path} of model {identifier!r} ({exc}); it is "
            "damaged or not a PyTorch checkpoint of tensors. Delete it or pass another file."
        ) from exc


def unwrap_state_dict(checkpoint: Any) -> dict[str, Any]:
    """The state dict inside a checkpoint: the value of a ``state_dict`` (or ``model``)
    entry when there is one, with the ``module.`` prefix of ``nn.DataParallel`` removed."""
    state = checkpoint
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise WeightsUnavailableError(
            f"the checkpoint holds a {type(checkpoint).__name__}, not a state dict."
        )
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


#: names of classifier heads a trunk-only checkpoint may lack (self-supervised ResNets have
#: no ``fc``; DINO and SLIP ViTs no ``head``)
HEAD_NAMES = ("fc", "classifier", "head", "last_linear")


def _examples(keys: Sequence[str], n: int = 4) -> str:
    shown = ", ".join(repr(k) for k in list(keys)[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")


def fit_state(module: Any, state: dict[str, Any], identifier: str, path: str | Path) -> list[str]:
    """Make ``module`` take ``state``: when the checkpoint holds the trunk only (every key the
    architecture has but the file lacks belongs to a classifier head of :data:`HEAD_NAMES`),
    the head is replaced by an identity. Returns the heads removed. Raises when keys really
    mismatch, naming them and what to do."""
    import torch

    expected = module.state_dict()
    # torch fills in a missing batch-norm counter itself (files of older PyTorch have none)
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    removed: list[str] = []
    if missing and not unexpected:
        heads = {k.split(".", 1)[0] for k in missing}
        lacks_whole_heads = heads <= set(HEAD_NAMES) and not any(
            k.split(".", 1)[0] in heads for k in state
        )
        if lacks_whole_heads and all(hasattr(module, h) for h in heads):
            for head in sorted(heads):
                setattr(module, head, torch.nn.Identity())
            removed = sorted(heads)
            missing = []
    if missing or unexpected:
        lacking = (
            f"{len(missing)} tensors the architecture needs are not in the file "
            f"({_examples(missing)}); "
            if missing
            else ""
        )
        extra = (
            f"{len(unexpected)} tensors in the file are not in the architecture "
            f"({_examples(unexpected)}); "
            if unexpected
            else ""
        )
        raise WeightsUnavailableError(
            f"the weights file {path} does not fit {identifier!r}: {lacking}{extra}"
            "check that the file is a checkpoint of this architecture. brainrank already "
            "removes a 'state_dict' or 'model' wrapper and DataParallel's 'module.' prefix, "
            "and loads a checkpoint without its classifier head (the head is dropped); a file "
            "in another layout (other key names, extra projection heads) needs the plugin of "
            "its family (see `brainrank models`) or converting its keys to this "
            "architecture's names."
        )
    return removed


def load_state(module: Any, checkpoint: Any, identifier: str, path: str | Path) -> list[str]:
    """Load ``checkpoint`` (a state dict, or a checkpoint holding one) into ``module``; a file
    whose tensors do not fit the architecture is reported as such, naming the file and the
    keys. A trunk-only checkpoint (no classifier head) loads into the architecture without
    its head; the heads removed are returned."""
    try:
        state = unwrap_state_dict(checkpoint)
        removed = fit_state(module, state, identifier, path)
        module.load_state_dict(state)
    except RuntimeError as exc:  # shapes that differ
        raise WeightsUnavailableError(
            f"the weights file {path} does not fit {identifier!r}: {exc} Check that the file "
            "is a checkpoint of this architecture (same widths, depth and number of classes)."
        ) from exc
    except WeightsUnavailableError as exc:
        if str(path) in str(exc):
            raise
        raise WeightsUnavailableError(
            f"the weights file {path} does not fit {identifier!r}: {exc}"
        ) from exc
    return removed


def load_torch_hub_weights(
    identifier: str,
    url: str,
    weights: str | Path | None = None,
    sha256_prefix: str | None = None,
    filename: str | None = None,
    reader: Any = None,
    download: bool = True,
):
    """The checkpoint for ``url`` and its path: from ``weights`` if given, else the torch-hub
    cache (``$TORCH_HOME/hub/checkpoints/<file name of the URL>``), else a download. Without
    network and without the file, the error says which file to put where.

    ``sha256_prefix`` (checked on cached and downloaded files, not on explicit ones) guards
    against a damaged or wrong file under the expected name. ``filename`` names the cached
    file when it is not the URL's last part (files of one release that share a name);
    ``reader(identifier, path)`` reads it (default :func:`read_torch_file`).
    ``download=False`` for files that cannot be downloaded as they are (the URL then says
    where the release is).
    """
    import torch

    read = reader or read_torch_file
    if weights is not None:
        path = explicit_weights(identifier, weights)
        return read(identifier, path), path
    filename = hub_filename(url, filename)
    path = torch_hub_checkpoints() / filename
    if not path.is_file():
        hint = hub_missing_message(identifier, url, filename)
        if not download:
            raise WeightsUnavailableError(hint)
        if offline():
            raise WeightsUnavailableError(hint + " (BRAINRANK_OFFLINE is set.)")
        if not reachable(url):
            raise WeightsUnavailableError(hint + " (the host of that URL cannot be reached.)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(path), progress=False)
        except Exception as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            raise WeightsUnavailableError(f"{hint} The download failed: {exc}") from exc
    if sha256_prefix is not None:
        digest = sha256_file(path)
        if not digest.startswith(sha256_prefix):
            raise WeightsUnavailableError(
                f"the weights file {path} of {identifier!r} has sha256 {digest[:16]}..., not "
                f"the expected {sha256_prefix}...: it is damaged or another file. Delete it "
                f"and put the file from {url} there, or pass weights=PATH."
            )
    return read(identifier, path), path


# --------------------------------------------------------------------------- Hugging Face

HF_ENDPOINT = "https://huggingface.co"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder, read from the environment now (``HF_HUB_CACHE``,
    else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``), not when the client was
    imported."""
    env = os.environ
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(name):
            return Path(env[name]).expanduser()
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hf_cached_file(repo: str, filenames: Sequence[str]) -> Path | None:
    """The first of ``filenames`` of the hub repository ``repo`` already in the cache."""
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        path = try_to_load_from_cache(repo, filename, cache_dir=str(hf_hub_cache()))
        if isinstance(path, str) and os.path.isfile(path):
            return Path(path)
    return None


def hf_missing_message(identifier: str, repo: str, filenames: Sequence[str]) -> str:
    """What to do when a file of the hub repository ``repo`` is not in the cache."""
    cache = hf_hub_cache()
    folder = cache / f"models--{repo.replace('/', '--')}"
    url = f"{HF_ENDPOINT}/{repo}/resolve/main/{filenames[0]}"
    return (
        f"trained weights of {identifier!r} are not available offline. They belong in the "
        f"Hugging Face cache {cache} (repository {repo}, file {' or '.join(filenames)}, under "
        f"{folder}; from {url}); download them where there is a network (for example "
        f"`huggingface-cli download {repo} {filenames[0]}` with HF_HOME pointing to this "
        "cache) or pass weights=PATH (--weights MODEL=PATH on the command line)."
    )


def hf_weights_file(identifier: str, repo: str, filenames: Sequence[str]) -> Path:
    """A weight file of the hub repository ``repo``: from the cache, else downloaded (only
    when allowed and the hub is reachable). The error names the cache folder and the URL."""
    cached = hf_cached_file(repo, filenames)
    if cached is not None:
        return cached
    cache = hf_hub_cache()
    url = f"{HF_ENDPOINT}/{repo}/resolve/main/{filenames[0]}"
    hint = hf_missing_message(identifier, repo, filenames)
    if offline():
        raise WeightsUnavailableError(hint + " (BRAINRANK_OFFLINE is set.)")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise WeightsUnavailableError(hint + " (HF_HUB_OFFLINE is set.)")
    if not reachable(url):
        raise WeightsUnavailableError(hint + f" ({HF_ENDPOINT} cannot be reached.)")
    from huggingface_hub import hf_hub_download

    errors = []
    for filename in filenames:
        try:
            return Path(hf_hub_download(repo, filename, cache_dir=str(cache)))
        except Exception as exc:
            errors.append(f"{filename}: {exc}")
    raise WeightsUnavailableError(f"{hint} The download failed: {'; '.join(errors)}")


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether the host of ``url`` accepts a connection (checked before downloads whose
    client would otherwise retry for a long time without a network)."""
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- checkpoint layouts


def strip_prefixes(state: dict[str, Any], prefixes: Sequence[str]) -> dict[str, Any]:
    """``state`` with any of ``prefixes`` removed from the front of every key, as long as
    all keys carry it (repeated: ``module._feature_blocks.conv1.weight`` -> ``conv1.weight``)."""
    changed = True
    while changed and state:
        changed = False
        for prefix in prefixes:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    return state


def drop_keys(state: dict[str, Any], prefixes: Sequence[str]) -> dict[str, Any]:
    """``state`` without the entries whose key starts with one of ``prefixes`` (training
    heads a feature extractor does not use)."""
    return {k: v for k, v in state.items() if not k.startswith(tuple(prefixes))}


def random_or_trained(identifier: str, trained: bool, weights: Any) -> None:
    """A random variant refuses a weights file (the same message everywhere)."""
    if not trained and weights is not None:
        raise ValueError(f"{identifier} takes no weights file: it is a random initialisation.")
