"""Named selections of models: a paper's model set, selected with ``@name``.

A :class:`ModelSet` lists the models a paper used, each by the name the paper gives it and
the brainrank identifier that builds it, and names every model that cannot be built here
with the reason. Plugins register sets through the ``brainrank_model_sets`` hook;
``--models @mouse2021`` (wherever models are selected) expands to the set's buildable
identifiers, and ``brainrank models @mouse2021`` shows each member's status:

- ``present``: the model can be built here now (its trained weights are found, or it needs
  none);
- ``absent``: it can be built, but its weights are missing (the status says which file
  belongs in which folder, and where it comes from);
- ``unsupported``: brainrank cannot build it (the reason is given).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUSES = ("present", "absent", "unsupported", "unknown")


@dataclass(frozen=True)
class SetMember:
    """One model of a paper.

    ``paper_name`` is how the paper (or, where the paper does not name it, the authors'
    code) calls it; ``identifier`` the brainrank model (``None`` when there is none);
    ``unsupported`` why it cannot be built here (empty when it can); ``named_in`` where the
    name comes from (``"text"``: the paper's text or tables; ``"code"``: the authors' model
    list, for models the paper counts but does not name).
    """

    paper_name: str
    identifier: str | None
    unsupported: str = ""
    named_in: str = "text"
    note: str = ""

    def __post_init__(self) -> None:
        if self.identifier is None and not self.unsupported:
            raise ValueError(f"set member {self.paper_name!r} has no identifier and no reason.")
        if self.named_in not in ("text", "code"):
            raise ValueError(f"named_in must be 'text' or 'code', got {self.named_in!r}.")


@dataclass(frozen=True)
class ModelSet:
    """A named selection of models (``@name``)."""

    name: str
    title: str
    citation: str
    members: tuple[SetMember, ...]
    description: str = ""
    plugin: str = field(default="", compare=False)

    def identifiers(self) -> list[str]:
        """The buildable members' identifiers, in the set's order, each once."""
        out: list[str] = []
        for member in self.members:
            if member.identifier and not member.unsupported and member.identifier not in out:
                out.append(member.identifier)
        return out

    def unsupported(self) -> list[SetMember]:
        return [m for m in self.members if m.unsupported]


def member_status(member: SetMember, get_spec: Any) -> tuple[str, str]:
    """``(status, detail)`` of one member: ``unsupported`` with the reason; ``absent`` with
    what to do (which file, which folder, which URL); ``present``; or ``unknown`` when its
    plugin cannot tell without building it. ``get_spec(identifier)`` returns the model's
    spec (``Registry.get`` for models). Nothing is built or downloaded."""
    if member.unsupported:
        return "unsupported", member.unsupported
    try:
        spec = get_spec(member.identifier)
    except Exception as exc:  # a set naming a model no installed plugin offers
        return "unsupported", f"{type(exc).__name__}: {exc}"
    if not spec.metadata.trained:
        return "present", "no weights needed"
    if spec.weights_missing is None:
        return "unknown", "its plugin cannot tell whether the weights are here without building it"
    try:
        missing = spec.weights_missing()
    except Exception as exc:
        return "unknown", f"checking its weights failed: {type(exc).__name__}: {exc}"
    return ("present", "weights found") if missing is None else ("absent", missing)
