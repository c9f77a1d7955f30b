"""``brainrank export``: write what brainrank computes in other tools' formats. Each kind of
export is a command of this group in a module of its own (``export_rdms``: RDMs as
rsatoolbox objects)."""

from __future__ import annotations

from brainrank.cli import main


@main.group("export")
def export_group() -> None:
    """Export brain and model data in other tools' formats."""
