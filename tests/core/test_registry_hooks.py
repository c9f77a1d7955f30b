"""A plugin that implements a hook brainrank does not define (a misspelt
``brainrank_model``) is a plugin load error naming the unknown hook and the known ones,
recorded like the other load errors: the rest of the plugins work, ``brainrank run``
records it as a plugin failure, and ``brainrank plugin check`` fails on it."""

from __future__ import annotations

import textwrap

from click.testing import CliRunner

from brainrank.cli import main
from brainrank.core.registry import HOOKS, Registry
from brainrank.grid import MemoryStore, run_grid

TYPO = textwrap.dedent(
    """
    from brainrank.plugin import ModelMetadata, ModelSpec, hookimpl

    @hookimpl
    def brainrank_model():  # should be brainrank_models
        return [ModelSpec("typo/net", lambda: None, ModelMetadata(source="t", architecture="t"))]

    @hookimpl
    def brainrank_datasets():
        return []
    """
)


def typo_plugin(tmp_path):
    path = tmp_path / "typo_plugin.py"
    path.write_text(TYPO)
    return path


def test_a_misspelt_hook_is_a_load_error_naming_it_and_the_known_hooks(tmp_path):
    path = typo_plugin(tmp_path)
    registry = Registry(plugin_files=[path])
    [error] = [e for e in registry.load_errors if e.name == str(path)]
    assert "'brainrank_model'" in error.error and "did you mean 'brainrank_models'" in error.error
    assert all(hook in error.error for hook in HOOKS)
    assert str(path) not in registry.plugin_names  # not registered at all
    assert "typo/net" not in registry.identifiers("model")
    assert "baseline/pixels" in registry.identifiers("model")  # the others still work


def test_a_plugin_object_with_a_misspelt_hook_is_recorded_too():
    class Typo:
        __name__ = "typo-object"

        from brainrank.plugin import hookimpl

        @staticmethod
        @hookimpl
        def brainrank_metric():
            return []

    registry = Registry(plugins=[Typo()], entry_points=False)
    [error] = registry.load_errors
    assert "'brainrank_metric'" in error.error and "brainrank_metrics" in error.error


def test_the_run_records_it_as_a_plugin_failure(tmp_path, tiny_plugin_path):
    store = MemoryStore()
    summary = run_grid(registry=Registry(plugin_files=[tiny_plugin_path, typo_plugin(tmp_path)]),
                       store=store, models=["tiny/net"], datasets=["tiny/data"],
                       metrics=["rsa"], progress=False)  # fmt: skip
    assert summary.complete  # a plugin the run does not use does not count against it
    [failure] = [f for f in store.failures if f["stage"] == "plugin"]
    assert "brainrank_model" in str(failure["error"])


def test_plugin_check_fails_on_it(tmp_path):
    result = CliRunner().invoke(main, ["plugin", "check", str(typo_plugin(tmp_path)), "--no-lazy"])
    assert result.exit_code != 0
    assert "'brainrank_model'" in result.output and "brainrank_models" in result.output
