"""Plugin identifiers: lowercase ``source/name`` strings with an optional ``:variant``."""

from __future__ import annotations

import re

from brainrank.core.errors import InputError

_PART = r"[a-z0-9][a-z0-9_.+\-]*"
IDENTIFIER_PATTERN = re.compile(rf"^{_PART}(/{_PART})*(:{_PART})?$")


def check_identifier(identifier: str, kind: str = "plugin") -> str:
    """Return ``identifier`` if it is a valid brainrank identifier, else raise.

    Identifiers are lowercase ``source/name`` strings with an optional ``:variant``,
    e.g. ``torchvision/alexnet:random`` or ``simulated``.
    """
    if not isinstance(identifier, str) or not IDENTIFIER_PATTERN.match(identifier):
        raise InputError(
            f"invalid {kind} identifier {identifier!r}: identifiers are lowercase "
            "'source/name' strings with an optional ':variant', made of a-z, 0-9 and "
            "'_.+-' (for example 'torchvision/alexnet:random')."
        )
    return identifier


def split_variant(identifier: str) -> tuple[str, str | None]:
    """``'timm/resnet18:random'`` -> ``('timm/resnet18', 'random')``."""
    base, sep, variant = identifier.partition(":")
    return base, (variant if sep else None)
