"""The layers hold: import-linter's contracts (pyproject.toml), and an AST check that the
built-in plugins, the plugin templates and the README's examples import only the public
plugin API, the core and the dataset file helpers, never the package root."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "brainrank"
ALLOWED = ("brainrank.plugin", "brainrank.core", "brainrank.data", "brainrank.plugins")


def imported(source: str) -> list[str]:
    """Every brainrank module a source imports (``from brainrank import x`` -> ``brainrank``)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
    return [m for m in out if m == "brainrank" or m.startswith("brainrank.")]


def offending(modules: list[str], allowed: tuple[str, ...] = ALLOWED) -> list[str]:
    return [m for m in modules if not any(m == a or m.startswith(a + ".") for a in allowed)]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    out = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.glob("plugins/**/*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_built_in_plugins_import_only_the_plugin_api_and_the_core(path):
    assert offending(imported(path.read_text())) == []


def test_plugins_of_one_kind_do_not_import_plugins_of_another():
    paths = sorted(PACKAGE.glob("plugins/*/*.py"))
    assert paths, f"no plugin modules found under {PACKAGE / 'plugins'}"
    checked = 0
    for path in paths:
        kind = path.parent.name
        for module in imported(path.read_text()):
            if module.startswith("brainrank.plugins."):
                assert (module + ".").startswith(f"brainrank.plugins.{kind}."), (path, module)
                checked += 1
    assert checked, "no plugin imports another plugin module: the check above never ran"


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.glob("templates/plugin/*/module.py.tmpl")), ids=lambda p: p.parent.name
)
def test_templates_import_only_the_plugin_api(path):
    source = re.sub(r"\$\{(\w+)\}", r"\1", path.read_text())  # ${identifier} -> identifier
    assert offending(imported(source), ("brainrank.plugin",)) == []


def test_readme_examples_for_plugins_import_the_plugin_api():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks
    for block in blocks:
        for module in imported(block):
            # the Python API (brainrank.score...) and the leaderboard are for users; what a
            # plugin builds (Model, metadata...) comes from brainrank.plugin
            assert module in ("brainrank", "brainrank.plugin", "brainrank.leaderboard"), module
        for line in block.splitlines():
            assert not re.match(r"from brainrank import .*(Model|Metadata|Spec|hookimpl)", line), (
                line
            )


def test_the_checker_catches_a_forbidden_import():
    assert offending(imported("from brainrank import load_model")) == ["brainrank"]
    assert offending(imported("import brainrank.leaderboard.store")) == [
        "brainrank.leaderboard.store"
    ]
    assert offending(imported("from brainrank.plugin import Model")) == []


@pytest.mark.parametrize("folder", ["core", "grid", "leaderboard", "data", "plugins"])
def test_no_layer_below_the_top_imports_the_package_root(folder):
    """`from brainrank import ...` would pull the whole public API (and the grid) in; the
    layers below the command line import the module they need."""
    paths = sorted((PACKAGE / folder).rglob("*.py"))
    assert paths
    for path in paths:
        assert "brainrank" not in imported(path.read_text()), path
    for name in ("settings.py", "plugin.py"):
        assert "brainrank" not in imported((PACKAGE / name).read_text()), name
