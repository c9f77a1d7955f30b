"""Two plugins registering one identifier (issue 13, item 14) fail only where it is used.

docs/reliability.md lists it with the other faults of issue 13.
"""

from __future__ import annotations

import pytest

COPYCAT = """
from brainrank import ModelMetadata, ModelSpec, hookimpl

@hookimpl
def brainrank_models():
    return [ModelSpec("baseline/pixels", lambda: None, ModelMetadata(source="x", architecture="x"))]
"""


def test_a_duplicate_identifier_fails_only_where_it_is_used(tmp_path):
    """Was: every lookup of any model raised DuplicateIdentifierError."""
    from click.testing import CliRunner

    from brainrank.cli import main
    from brainrank.core.errors import DuplicateIdentifierError
    from brainrank.core.registry import Registry

    path = tmp_path / "copycat.py"
    path.write_text(COPYCAT)
    registry = Registry(plugin_files=[path])
    assert registry.select("model", "baseline/gabor") == ["baseline/gabor"]
    assert "baseline/gabor" in registry.identifiers("model")
    with pytest.raises(DuplicateIdentifierError, match=r"'baseline/pixels'.*'baselines'"):
        registry.get("model", "baseline/pixels")
    with pytest.raises(DuplicateIdentifierError, match=str(path)):
        registry.select("model", "baseline/*")  # a pattern that selects it
    assert any("baseline/pixels" in e.error for e in registry.load_errors)

    runner = CliRunner()
    listing = runner.invoke(main, ["models", "baseline/*", "--plugin", str(path)])
    assert listing.exit_code == 0, listing.output
    assert "baseline/gabor" in listing.output
    assert "DUPLICATE" in listing.output and "registered by 2 plugins" in listing.output
    other = runner.invoke(main, ["datasets", "--plugin", str(path)])
    assert other.exit_code == 0, other.output
