"""Feature spaces from several models: what a ``spaces`` parameter names, how a combination of
spaces is identified, and the features a metric that scores a combination receives.

A *space* is one model's features: ``MODEL:LAYER`` (one layer), ``MODEL:PATTERN`` (a shell
pattern over the model's layer names, ``*`` ``?`` ``[...]``: every matching layer is a space
of its own, in layer order) or a bare ``MODEL`` (the model's best layer, which the metric
chooses per subject and region on its training stimuli only). Model identifiers may contain
colons themselves (``torchvision/alexnet:random``) and layer names may too (a module called
twice gives ``layer1.0.relu:2``), so the model is the *longest* prefix of the text, cut at a
colon, that is a known model: ``timm/resnet18:random:layer1.0.act1:2`` is layer
``layer1.0.act1:2`` of ``timm/resnet18:random``.

A *combination* of spaces is scored as one entry of the leaderboard: its model identifier is
``stack/<12 hex digits>``, a hash of the sorted space labels (:func:`combination_identifier`),
so the same spaces give the same identifier in every run and in every order. The models
table keeps the spaces and their models under ``details["spaces"]`` (see
:func:`combination_metadata`); the plan hash of each of its results covers every member's
identifier, options (weights file content), and plugin code, as one model's do.

A metric that takes spaces (:attr:`brainrank.core.metric.Metric.takes_spaces`) receives a
list of :class:`FeatureSpace`: each with its label, model, layer (``None`` for a best-layer
space) and the model's :class:`~brainrank.core.scores.FeatureSet` (only the layers the space
needs).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from brainrank.core.errors import InputError
from brainrank.core.scores import FeatureSet

#: the source of every combination's model identifier (``stack/<hash>``)
COMBINATION_SOURCE = "stack"

_PATTERN_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class Space:
    """One feature space: ``layer`` of ``model`` (a name or a shell pattern), or the model's
    best layer (``layer=None``)."""

    model: str
    layer: str | None = None

    @property
    def label(self) -> str:
        """``MODEL:LAYER``, or ``MODEL`` for the best layer."""
        return self.model if self.layer is None else f"{self.model}:{self.layer}"

    @property
    def is_pattern(self) -> bool:
        return self.layer is not None and bool(_PATTERN_CHARACTERS & set(self.layer))


@dataclass
class FeatureSpace:
    """A space as a metric receives it: ``features`` holds the layers it needs (the one
    layer; every layer of the model when ``layer`` is ``None``)."""

    label: str
    model: str
    layer: str | None
    features: FeatureSet

    @property
    def layers(self) -> list[str]:
        """The candidate layers: the one layer, or every layer of the model."""
        return [self.layer] if self.layer is not None else self.features.layer_names


def split_texts(value: str | Iterable[str] | None) -> list[str]:
    """The space texts of a ``spaces`` value: a comma-separated string or a list of strings
    (each of which may hold commas), stripped, empty items dropped."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InputError(
                f"a feature space is written MODEL[:LAYER] as a string, got {item!r} "
                f"({type(item).__name__})."
            )
        out += [part.strip() for part in item.split(",") if part.strip()]
    return out


def canonical_texts(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """The space texts of ``value`` sorted and without repeats (a ``spaces`` parameter's
    stored form: the same spaces in any order are one configuration)."""
    texts = split_texts(value)
    return tuple(sorted(dict.fromkeys(texts)))


def parse_space(text: str, is_model: Callable[[str], bool]) -> Space:
    """The :class:`Space` ``text`` names: the longest prefix cut at a colon that
    ``is_model`` accepts is the model, the rest the layer (see the module docstring).
    Raises :class:`InputError` when no prefix is a model."""
    text = text.strip()
    if not text:
        raise InputError("an empty feature space; write MODEL[:LAYER].")
    cuts = [i for i, c in enumerate(text) if c == ":"] + [len(text)]
    for cut in sorted(cuts, reverse=True):
        head, tail = text[:cut], text[cut + 1 :]
        if cut < len(text) and not tail:
            continue
        if head and is_model(head):
            return Space(head, tail if cut < len(text) else None)
    raise InputError(
        f"feature space {text!r} names no known model: write MODEL[:LAYER] with a model "
        "identifier of `brainrank models` (e.g. torchvision/alexnet:features.3, or "
        "torchvision/alexnet for its best layer)."
    )


def parse_spaces(texts: Sequence[str], is_model: Callable[[str], bool]) -> tuple[Space, ...]:
    """Every text parsed (:func:`parse_space`), in order; the same space twice is an error."""
    spaces = tuple(parse_space(t, is_model) for t in texts)
    labels = [s.label for s in spaces]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise InputError(f"the feature space(s) {', '.join(twice)} are given more than once.")
    return spaces


def combination_identifier(spaces: Sequence[Space]) -> str:
    """``stack/<12 hex digits>``: the sha256 of the sorted space labels. The weights and code
    of the members are not part of it (as a model's identifier does not change with its
    weights): they are in the plan hash of every result, so new weights rescore it."""
    labels = sorted(s.label for s in spaces)
    digest = hashlib.sha256(json.dumps(labels).encode()).hexdigest()[:12]
    return f"{COMBINATION_SOURCE}/{digest}"


def is_combination(model: str) -> bool:
    """Whether a leaderboard model identifier names a combination of spaces."""
    return str(model).startswith(COMBINATION_SOURCE + "/")


def members(spaces: Sequence[Space]) -> list[str]:
    """The distinct models of ``spaces``, in the order they first appear."""
    return list(dict.fromkeys(s.model for s in spaces))


# --------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class LayerCatalogue:
    """The layers a model's features will have on a stimulus set (``names``, in order) and
    why other layer names are not among them: ``duplicates`` (a layer whose activations
    repeat an earlier layer's, kept under that name) and ``constant`` (one value everywhere,
    left out)."""

    names: tuple[str, ...]
    duplicates: Mapping[str, str]
    constant: tuple[str, ...] = ()

    @classmethod
    def of(cls, features: FeatureSet) -> LayerCatalogue:
        info = features.info or {}
        return cls(
            tuple(features.layer_names),
            dict(info.get("duplicates") or {}),
            tuple(info.get("constant_layers") or ()),
        )


def expand(space: Space, catalogue: LayerCatalogue) -> list[Space]:
    """The concrete spaces of ``space`` on a model whose layers ``catalogue`` lists: itself
    for a best-layer space or a layer name, one space per matching layer (in layer order) for
    a pattern. Raises :class:`InputError`, naming the closest layers, when a name is not a
    layer of the model or a pattern matches none."""
    if space.layer is None:
        return [space]
    names = list(catalogue.names)
    if space.is_pattern:
        matched = [n for n in names if fnmatch.fnmatchcase(n, space.layer)]
        if not matched:
            raise InputError(
                f"feature space {space.label!r}: the pattern {space.layer!r} matches none of "
                f"the {len(names)} layers of {space.model!r} ({_some(names)}); run `brainrank "
                f"show {space.model}` or `brainrank extract` to list them."
            )
        return [Space(space.model, n) for n in matched]
    if space.layer in names:
        return [space]
    if space.layer in catalogue.duplicates:
        original = catalogue.duplicates[space.layer]
        raise InputError(
            f"feature space {space.label!r}: layer {space.layer!r} repeats the activations of "
            f"layer {original!r} of {space.model!r} and is kept under that name; write "
            f"{space.model}:{original}."
        )
    if space.layer in catalogue.constant:
        raise InputError(
            f"feature space {space.label!r}: layer {space.layer!r} of {space.model!r} is one "
            "constant value on these stimuli (it carries nothing and has no features); choose "
            "another layer."
        )
    import difflib

    close = difflib.get_close_matches(space.layer, names, n=5, cutoff=0.5)
    hint = f" Closest: {', '.join(close)}." if close else ""
    raise InputError(
        f"feature space {space.label!r}: {space.model!r} has no layer {space.layer!r}.{hint} "
        f"Its layers: {_some(names)}."
    )


def _some(names: Sequence[str], n: int = 8) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" ... ({len(names)} in all)" if len(names) > n else "")


def expand_all(spaces: Sequence[Space], catalogues: Mapping[str, LayerCatalogue]) -> list[Space]:
    """Every space expanded (:func:`expand`) against its model's catalogue, in order; a layer
    named twice (directly and through a pattern) counts once."""
    out: list[Space] = []
    for space in spaces:
        for concrete in expand(space, catalogues[space.model]):
            if concrete not in out:
                out.append(concrete)
    return out


def feature_spaces(
    spaces: Sequence[Space], features: Mapping[str, FeatureSet]
) -> list[FeatureSpace]:
    """What a metric receives: every space expanded against its model's features, each with
    the features it needs (one layer, or all of them for a best-layer space)."""
    catalogues = {model: LayerCatalogue.of(f) for model, f in features.items()}
    out = []
    for space in expand_all(spaces, catalogues):
        full = features[space.model]
        if space.layer is None:
            kept = full
        else:
            kept = FeatureSet(full.model, full.stimulus_ids, [full[space.layer]], full.key,
                              dict(full.info))  # fmt: skip
        out.append(FeatureSpace(space.label, space.model, space.layer, kept))
    return out


def combination_metadata(
    identifier: str,
    spaces: Sequence[Space],
    member_metadata: Mapping[str, Any],
    member_weights: Mapping[str, str],
) -> dict[str, Any]:
    """The keyword arguments of the :class:`~brainrank.core.specs.ModelMetadata` of a
    combination: source ``stack``, the spaces and each member's identity in ``extra``
    (stored as the models table's ``details``), trained when every member is."""
    described = {}
    for model in members(spaces):
        meta = member_metadata[model]
        described[model] = {
            "architecture": getattr(meta, "architecture", None),
            "family": getattr(meta, "family", None),
            "task": getattr(meta, "task", None),
            "training_data": getattr(meta, "training_data", None),
            "training_method": getattr(meta, "training_method", None),
            "trained": getattr(meta, "trained", None),
            "weights_hash": member_weights.get(model),
        }
    labels = [s.label for s in spaces]
    return {
        "source": COMBINATION_SOURCE,
        "architecture": f"combination of {len(labels)} feature spaces",
        "family": "other",
        "trained": all(bool(d["trained"]) for d in described.values()),
        "description": "feature spaces: " + ", ".join(labels),
        "extra": {"combination": identifier, "spaces": labels, "members": described},
    }


def combined_hash(parts: Mapping[str, str | None]) -> str:
    """One hash over the members' hashes (weights, feature keys): ``{model: hash}``."""
    payload = json.dumps({k: parts[k] for k in sorted(parts)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()
