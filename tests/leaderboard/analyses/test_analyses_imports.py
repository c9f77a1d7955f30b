"""The analyses read stored results only: no module of brainrank/leaderboard/analyses/
builds a model."""

from __future__ import annotations

from brainrank.leaderboard import analyses


def test_the_analyses_layer_builds_no_model():
    """Stored results only: no module of the analyses imports a plugin, the settings, the
    extraction, the grid or the feature cache."""
    import ast
    import importlib
    import inspect
    import pkgutil

    names = [m.name for m in pkgutil.iter_modules(analyses.__path__)]
    assert {"mouse", "nsd", "taskonomy", "tables"} <= set(names)
    forbidden = ("brainrank.plugins", "brainrank.settings", "brainrank.core.extraction",
                 "brainrank.core.runner", "brainrank.grid", "brainrank.core.cache")  # fmt: skip
    for name in [analyses.__name__, *(f"{analyses.__name__}.{n}" for n in names)]:
        source = inspect.getsource(importlib.import_module(name))
        imported = {
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        }
        assert not [m for m in imported if m and m.startswith(forbidden)], name
        assert "import brainrank\n" not in source, name
