"""Plugin discovery through real entry points, plugin files, lookups and their errors."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pytest

from brainrank.core.errors import DuplicateIdentifierError, UnknownIdentifierError
from brainrank.core.registry import Registry
from brainrank.core.specs import ModelSpec
from brainrank.grid import run_grid
from brainrank.leaderboard import open_store, scores


def install_distribution(site, name: str, module: str, source: str, monkeypatch) -> None:
    """Make a distribution visible to importlib.metadata the way pip would: a
    ``*.dist-info`` folder with ``entry_points.txt`` on ``sys.path``."""
    dist = site / f"{name}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[brainrank]\n{name} = {module}\n")
    (site / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()


def test_builtin_plugins_come_through_entry_points():
    registry = Registry()
    assert not registry.load_errors
    assert {"torchvision", "timm", "baselines", "simulated", "srp-ridge", "rsa"} <= set(
        registry.plugin_names
    )
    models = registry.identifiers("model")
    assert {
        "torchvision/alexnet",
        "torchvision/alexnet:random",
        "timm/resnet18:random",
        "baseline/pixels",
    } <= set(models)
    assert registry.identifiers("dataset") == ["simulated"] or "simulated" in registry.identifiers(
        "dataset"
    )
    assert {"srp-ridge", "rsa"} <= set(registry.identifiers("metric"))


def test_listing_is_lazy():
    """Listing every plugin neither builds a network nor reads data: torch is not even
    imported (checked in a fresh interpreter)."""
    code = (
        "import sys, brainrank\n"
        "brainrank.list_models(); brainrank.list_datasets(); brainrank.list_metrics()\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'timm', 'open_clip') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_external_plugin_through_a_real_entry_point(tmp_path, monkeypatch, tiny_plugin_path):
    install_distribution(
        tmp_path / "site", "brk-tiny", "brk_tiny_plugin", tiny_plugin_path.read_text(), monkeypatch
    )
    registry = Registry()
    assert "brk-tiny" in registry.plugin_names
    assert registry.get("model", "tiny/net").plugin == "brk-tiny"
    assert "tiny/data" in registry.identifiers("dataset")
    # and it is scored like a built-in
    store = open_store(str(tmp_path / "lb.db"))
    summary = run_grid(registry=registry, store=store, models=["tiny/net"], datasets=["tiny/data"],
                       metrics=["srp-ridge", "rsa"], progress=False)  # fmt: skip
    assert not summary.failures
    frame = scores(store, selection="max")
    assert set(frame["model"]) == {"tiny/net"} and set(frame["metric"]) == {"srp-ridge", "rsa"}
    sys.modules.pop("brk_tiny_plugin", None)


def test_plugin_file(tiny_plugin_path):
    registry = Registry(plugin_files=[tiny_plugin_path])
    assert "tiny/net" in registry.identifiers("model")


def test_plugin_that_fails_to_import_is_reported_and_the_rest_still_loads(tmp_path, monkeypatch):
    install_distribution(
        tmp_path / "site",
        "brk-broken",
        "brk_broken_plugin",
        "raise ImportError('no such backend: quantum')\n",
        monkeypatch,
    )
    registry = Registry()
    [error] = [e for e in registry.load_errors if e.name == "brk-broken"]
    assert "ImportError: no such backend: quantum" in error.error
    assert "Traceback" in error.traceback
    assert "torchvision/alexnet" in registry.identifiers("model")


def test_unknown_identifier_lists_the_closest(monkeypatch):
    registry = Registry()
    with pytest.raises(UnknownIdentifierError) as info:
        registry.get("model", "torchvision/alexnett")
    message = str(info.value)
    assert "unknown model 'torchvision/alexnett'" in message
    assert "torchvision/alexnet" in message and "brainrank models" in message
    with pytest.raises(UnknownIdentifierError, match=r"unknown metric .srp_ridge..*srp-ridge"):
        registry.get("metric", "srp_ridge")
    with pytest.raises(UnknownIdentifierError):
        registry.select("dataset", "nowhere*")  # a pattern that matches nothing


def test_duplicate_identifier_names_both_plugins(tmp_path):
    source = textwrap.dedent(
        """
        from brainrank import ModelMetadata, ModelSpec, hookimpl

        @hookimpl
        def brainrank_models():
            return [ModelSpec("baseline/pixels", lambda: None, ModelMetadata(source="x", architecture="x"))]
        """
    )
    path = tmp_path / "copycat.py"
    path.write_text(source)
    registry = Registry(plugin_files=[path])
    assert "baseline/gabor" in registry.identifiers("model")  # the others still work
    with pytest.raises(DuplicateIdentifierError) as info:
        registry.get("model", "baseline/pixels")  # only its use fails
    message = str(info.value)
    assert "'baseline/pixels'" in message and "'baselines'" in message and str(path) in message


def test_open_family_resolves_any_timm_name():
    registry = Registry()
    spec = registry.get("model", "timm/mobilenetv3_small_050:random")
    assert isinstance(spec, ModelSpec) and spec.metadata.trained is False
    assert "timm/mobilenetv3_small_050:random" not in registry.identifiers("model")
    with pytest.raises(UnknownIdentifierError):
        registry.get("model", "timm/not_a_real_net")


def test_select_patterns():
    registry = Registry()
    chosen = registry.select("model", ["baseline/*", "torchvision/alexnet:random"])
    baselines = registry.select("model", "baseline/*")
    assert {"baseline/gabor", "baseline/pixels"} <= set(baselines)
    assert chosen == [*baselines, "torchvision/alexnet:random"]
    assert registry.select("model", "baseline/pixels,baseline/gabor") == [
        "baseline/pixels",
        "baseline/gabor",
    ]
