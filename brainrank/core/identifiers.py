"""Plugin identifiers: lowercase ``source/name`` strings with an optional ``:variant`` and,
for models, an optional ``@checkpoint``.

``torchvision/resnet50`` is a model, ``torchvision/resnet50:random`` a variant of it (same
architecture, no training), and ``torchvision/resnet50@barlowtwins`` a checkpoint of its
architecture: another set of weights, hence a model of its own in the leaderboard, with its
own metadata. A family plugin registers the checkpoints it knows; any other ``BASE@TAG``
names a user's checkpoint of ``BASE``'s architecture, loaded from ``weights=PATH``.
"""

from __future__ import annotations

import re

from brainrank.core.errors import InputError

_PART = r"[a-z0-9][a-z0-9_.+\-]*"
IDENTIFIER_PATTERN = re.compile(rf"^{_PART}(/{_PART})*(:{_PART})?(@{_PART})?$")


def check_identifier(identifier: str, kind: str = "plugin") -> str:
    """Return ``identifier`` if it is a valid brainrank identifier, else raise.

    Identifiers are lowercase ``source/name`` strings with an optional ``:variant`` and an
    optional ``@checkpoint``, e.g. ``torchvision/alexnet:random``,
    ``torchvision/resnet50@barlowtwins`` or ``simulated``. A model (``kind="model"``) must
    have its ``source/``; a dataset or a metric may be one name (``simulated``, ``rsa``).
    The same check runs for built-in and third-party plugins (every spec checks its
    identifier when it is made) and in ``brainrank plugin new``.
    """
    if not isinstance(identifier, str) or not IDENTIFIER_PATTERN.match(identifier):
        raise InputError(
            f"invalid {kind} identifier {identifier!r}: identifiers are lowercase "
            "'source/name' strings with an optional ':variant' and, for models, an optional "
            "'@checkpoint', made of a-z, 0-9 and '_.+-' (for example "
            "'torchvision/alexnet:random' or 'torchvision/resnet50@barlowtwins')."
        )
    if kind == "model" and "/" not in identifier.split(":")[0].split("@")[0]:
        raise InputError(
            f"invalid model identifier {identifier!r}: a model is named 'source/name' (who "
            "made or trained it, then the network: 'mylab/mynet', 'torchvision/alexnet'); add "
            f"a source, e.g. 'mylab/{identifier}'."
        )
    return identifier


def check_dataset_identifier(identifier: str) -> str:
    """A dataset object's identifier: a registered dataset's identifier, optionally followed
    by the options it was built with in parentheses (``allen/natural-scenes(cre_lines=all)``,
    see :mod:`brainrank.core.dataset_options`); the part before them is checked as
    :func:`check_identifier` does."""
    if isinstance(identifier, str) and identifier.endswith(")") and "(" in identifier:
        base = identifier[: identifier.index("(")]
        check_identifier(base, "dataset")
        return identifier
    return check_identifier(identifier, "dataset")


def split_variant(identifier: str) -> tuple[str, str | None]:
    """``'timm/resnet18:random'`` -> ``('timm/resnet18', 'random')``."""
    base, sep, variant = identifier.partition(":")
    return base, (variant if sep else None)


def split_checkpoint(identifier: str) -> tuple[str, str | None]:
    """``'torchvision/resnet50@barlowtwins'`` -> ``('torchvision/resnet50', 'barlowtwins')``;
    an identifier without ``@`` -> ``(identifier, None)``."""
    base, sep, tag = identifier.rpartition("@")
    return (base, tag) if sep else (identifier, None)
