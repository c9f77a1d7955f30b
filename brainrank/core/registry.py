"""The plugin contract: pluggy hook specifications, discovery and lookup.

A plugin is a module (or any object) that implements some of these hooks with
``@brainrank.plugin.hookimpl``::

    from brainrank.plugin import ModelMetadata, ModelSpec, hookimpl

    @hookimpl
    def brainrank_models():
        return [ModelSpec("mylab/mynet", factory=build, metadata=ModelMetadata(...))]

Plugins are discovered through the entry-point group ``brainrank`` (the built-in plugins
use the same group) and, for development, from files passed with ``--plugin FILE``.
Listing only collects specs: no network is built and no data is read. A plugin that
implements a hook brainrank does not define (a misspelt ``brainrank_model``) is not
registered: it is a load error naming the unknown hook and the known ones.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import importlib.metadata
import importlib.util
import logging
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pluggy

from brainrank.core.checkpoints import user_checkpoint_spec
from brainrank.core.errors import DuplicateIdentifierError, PluginError, UnknownIdentifierError
from brainrank.core.identifiers import check_identifier, split_checkpoint
from brainrank.core.model_sets import ModelSet
from brainrank.core.specs import DatasetSpec, MetricSpec, ModelSpec

PROJECT = "brainrank"
ENTRY_POINT_GROUP = "brainrank"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

log = logging.getLogger(__name__)


class HookSpecs:
    """The hooks a brainrank plugin may implement."""

    @hookspec
    def brainrank_models(self) -> Sequence[ModelSpec]:
        """Return the models this plugin offers (lazy specs, nothing built)."""

    @hookspec
    def brainrank_datasets(self) -> Sequence[DatasetSpec]:
        """Return the datasets this plugin offers (lazy specs, nothing read)."""

    @hookspec
    def brainrank_metrics(self) -> Sequence[MetricSpec]:
        """Return the metrics this plugin offers."""

    @hookspec
    def brainrank_model_sets(self) -> Sequence[ModelSet]:
        """Return named model selections (``@name``: a paper's model set)."""

    @hookspec(firstresult=True)
    def brainrank_resolve_model(self, identifier: str) -> ModelSpec | None:
        """Return a spec for ``identifier`` if this plugin serves an open family of models
        (for example any timm name) and the identifier belongs to it, else ``None``."""


#: the hooks a plugin may implement
HOOKS = tuple(name for name in vars(HookSpecs) if name.startswith("brainrank_"))

KINDS = {
    "model": ("brainrank_models", ModelSpec),
    "dataset": ("brainrank_datasets", DatasetSpec),
    "metric": ("brainrank_metrics", MetricSpec),
}


@dataclass(frozen=True)
class PluginLoadError:
    """A plugin that failed to import or register; the other plugins still work."""

    name: str
    source: str
    error: str
    traceback: str


class Registry:
    """Discovers plugins and looks up models, datasets and metrics by identifier.

    ``entry_points=False`` skips entry-point discovery (then only ``plugins`` and
    ``plugin_files`` are registered), which tests use to build isolated registries.
    """

    def __init__(
        self,
        plugin_files: Iterable[str | Path] = (),
        plugins: Iterable[Any] = (),
        entry_points: bool = True,
    ):
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(HookSpecs)
        self.load_errors: list[PluginLoadError] = []
        self._specs: dict[str, dict[str, Any]] = {}
        #: identifiers registered by more than one plugin: kind -> {identifier: message}
        self.duplicates: dict[str, dict[str, str]] = {}
        if entry_points:
            self._load_entry_points()
        for path in plugin_files:
            self.register_file(path)
        for plugin in plugins:
            name = getattr(plugin, "__name__", None) or repr(plugin)
            try:
                self.register(plugin)
            except (Exception, SystemExit) as exc:
                self._record_load_error(name, f"object {name}", exc)

    # ------------------------------------------------------------------ registration

    def register(self, plugin: Any, name: str | None = None) -> None:
        """Register ``plugin``; raises :class:`PluginError` (and registers nothing) when it
        implements a hook brainrank does not define (pluggy's ``check_pending``)."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        if self.pm.has_plugin(name) or self.pm.is_registered(plugin):
            return
        self.pm.register(plugin, name=name)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            callers = self.pm.get_hookcallers(plugin) or ()
            unknown = sorted(c.name for c in callers if not c.has_spec()) or [str(exc)]
            self.pm.unregister(plugin)
            close = difflib.get_close_matches(unknown[0], HOOKS, n=1)
            raise PluginError(
                f"plugin {name!r} implements {', '.join(map(repr, unknown))}, which "
                f"{'is' if len(unknown) == 1 else 'are'} not a brainrank hook"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + f"; the hooks are {', '.join(HOOKS)}. Rename the function (or drop its "
                "@hookimpl); the plugin is not registered until then."
            ) from None
        self._specs.clear()

    def _load_entry_points(self) -> None:
        seen: set[str] = set()
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            source = f"{dist.name} {dist.version}" if dist is not None else ep.value
            key = f"{ep.name}={ep.value}"
            if key in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(key)
            try:
                plugin = ep.load()
                self.register(plugin, name=ep.name)
            except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() is a bug too
                self._record_load_error(ep.name, f"entry point {ep.value} ({source})", exc)

    def register_file(self, path: str | Path) -> None:
        """Import a plugin from a Python file (``--plugin FILE``) and register it."""
        path = Path(path).expanduser().resolve()
        name = f"brainrank_local_plugin_{path.stem}"
        if not path.is_file():
            raise PluginError(f"plugin file {path} does not exist.")
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise PluginError(f"cannot import {path}: not a Python file.")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            self.register(module, name=str(path))
        except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() is a bug too
            sys.modules.pop(name, None)
            self._record_load_error(str(path), f"file {path}", exc)

    def _record_load_error(self, name: str, source: str, exc: BaseException) -> None:
        error = PluginLoadError(
            name=name,
            source=source,
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exception(exc)),
        )
        self.load_errors.append(error)
        log.warning("plugin %s (%s) failed to load and is skipped: %s", name, source, error.error)

    @property
    def plugin_names(self) -> list[str]:
        return [name for name, _ in self.pm.list_name_plugin()]

    # ------------------------------------------------------------------ specs

    def specs(self, kind: str) -> dict[str, Any]:
        """``{identifier: spec}`` for ``kind`` in ``model``, ``dataset``, ``metric``."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
        if kind not in self._specs:
            self._specs[kind] = self._collect(kind)
        return self._specs[kind]

    def _duplicates(self, kind: str) -> dict[str, str]:
        self.specs(kind)
        return self.duplicates.get(kind, {})

    def _collect(self, kind: str) -> dict[str, Any]:
        hook_name, spec_type = KINDS[kind]
        caller = getattr(self.pm.hook, hook_name)
        found: dict[str, Any] = {}
        clashes: dict[str, list[str]] = {}  # identifier -> every plugin that registers it
        for impl in caller.get_hookimpls():
            try:
                result = impl.function()
            except (Exception, SystemExit) as exc:
                self._record_load_error(impl.plugin_name, f"hook {hook_name}", exc)
                continue
            for spec in result or ():
                if not isinstance(spec, spec_type):
                    self._record_load_error(
                        impl.plugin_name,
                        f"hook {hook_name}",
                        TypeError(f"returned {type(spec).__name__}, not {spec_type.__name__}"),
                    )
                    continue
                spec = replace(spec, plugin=impl.plugin_name)
                if spec.identifier in clashes:
                    clashes[spec.identifier].append(spec.plugin)
                elif spec.identifier in found:
                    clashes[spec.identifier] = [found.pop(spec.identifier).plugin, spec.plugin]
                else:
                    found[spec.identifier] = spec
        # a duplicate fails only the commands that use it; the rest of the plugins work
        duplicates = self.duplicates.setdefault(kind, {})
        duplicates.clear()
        for identifier, plugins in clashes.items():
            message = (
                f"{kind} {identifier!r} is registered by {len(plugins)} plugins: "
                f"{' and '.join(repr(p) for p in plugins)}. Uninstall or rename one of them."
            )
            duplicates[identifier] = message
            self._record_load_error(
                " and ".join(plugins), f"hook {hook_name}", DuplicateIdentifierError(message)
            )
        return found

    def identifiers(self, kind: str) -> list[str]:
        return sorted(self.specs(kind))

    def get(self, kind: str, identifier: str) -> Any:
        """The spec registered for ``identifier``; raises with the closest known ones."""
        specs = self.specs(kind)
        if identifier in specs:
            return specs[identifier]
        if identifier in self._duplicates(kind):
            raise DuplicateIdentifierError(self._duplicates(kind)[identifier])
        if kind == "model":
            spec = self.pm.hook.brainrank_resolve_model(identifier=identifier)
            if spec is not None:
                return replace(spec, plugin=spec.plugin or "resolver")
            spec = self._user_checkpoint(identifier)
            if spec is not None:
                return spec
        raise UnknownIdentifierError(kind, identifier, self.suggest(kind, identifier))

    def _user_checkpoint(self, identifier: str) -> ModelSpec | None:
        """``BASE@TAG`` that no plugin registers: a user's checkpoint of ``BASE``'s
        architecture (see :mod:`brainrank.core.checkpoints`), when ``BASE`` (or a registered
        ``BASE@OTHER``) is a model that loads trained weights."""
        base_id, tag = split_checkpoint(identifier)
        if tag is None or "@" in base_id:
            return None
        check_identifier(identifier, "model")
        candidates = []
        with contextlib.suppress(PluginError):
            candidates.append(self.get("model", base_id))
        known = self.specs("model")
        candidates += [known[k] for k in sorted(known) if k.startswith(base_id + "@")]
        for base in candidates:
            if base.metadata.trained and _takes_weights(base.factory):
                return user_checkpoint_spec(base, identifier, tag)
        return None

    def model_sets(self) -> dict[str, ModelSet]:
        """``{name: ModelSet}`` of every registered model set."""
        sets: dict[str, ModelSet] = {}
        for impl in self.pm.hook.brainrank_model_sets.get_hookimpls():
            try:
                result = impl.function()
            except (Exception, SystemExit) as exc:
                self._record_load_error(impl.plugin_name, "hook brainrank_model_sets", exc)
                continue
            for item in result or ():
                if isinstance(item, ModelSet) and item.name not in sets:
                    sets[item.name] = replace(item, plugin=impl.plugin_name)
        return sets

    def model_set(self, name: str) -> ModelSet:
        """The model set ``name`` (with or without its leading ``@``)."""
        sets = self.model_sets()
        key = name.lstrip("@")
        if key not in sets:
            raise UnknownIdentifierError(
                "model set", "@" + key, [f"@{n}" for n in difflib.get_close_matches(key, sets)]
            )
        return sets[key]

    def suggest(self, kind: str, identifier: str, n: int = 5) -> list[str]:
        known = self.identifiers(kind)
        close = difflib.get_close_matches(identifier, known, n=n, cutoff=0.5)
        if not close:  # fall back to a match on the part after the source
            tail = identifier.split("/")[-1]
            close = [k for k in known if tail and tail.split(":")[0] in k][:n]
        return close

    def select(
        self, kind: str, patterns: Iterable[str] | str | None, skip_duplicates: bool = False
    ) -> list[str]:
        """Identifiers matching shell-style ``patterns`` (comma-separated allowed).

        A pattern without wildcards must name a known identifier (or one an open family
        resolves), so a typo gives an error with suggestions instead of an empty run. An
        identifier two plugins register raises DuplicateIdentifierError when a pattern
        selects it, unless ``skip_duplicates`` (listings, which show it apart).
        """
        if patterns is None:
            return self.identifiers(kind)
        if isinstance(patterns, str):
            patterns = [patterns]
        chosen: list[str] = []
        known = self.identifiers(kind)
        for pattern in (p.strip() for group in patterns for p in group.split(",")):
            if not pattern:
                continue
            if kind == "model" and pattern.startswith("@"):  # a named set (a paper's models)
                chosen.extend(m for m in self.model_set(pattern).identifiers() if m not in chosen)
                continue
            if any(ch in pattern for ch in "*?["):
                matches = [k for k in known if fnmatch.fnmatchcase(k, pattern)]
                clashing = [d for d in self._duplicates(kind) if fnmatch.fnmatchcase(d, pattern)]
                if clashing and not skip_duplicates:  # asks for one two plugins claim
                    raise DuplicateIdentifierError(self._duplicates(kind)[clashing[0]])
                if not matches:
                    raise UnknownIdentifierError(kind, pattern, self.suggest(kind, pattern))
            elif skip_duplicates and pattern in self._duplicates(kind):
                continue
            else:
                self.get(kind, pattern)
                matches = [pattern]
            chosen.extend(m for m in matches if m not in chosen)
        return chosen


def _takes_weights(factory: Any) -> bool:
    """Whether a model factory accepts ``weights=`` (or ``**options``)."""
    import inspect
    from functools import partial

    while isinstance(factory, partial):
        if "weights" in factory.keywords:
            return True
        factory = factory.func
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD or p.name == "weights" for p in parameters)


_default: Registry | None = None


def get_registry(plugin_files: Iterable[str | Path] = ()) -> Registry:
    """The process-wide registry (entry points + the given plugin files)."""
    global _default
    if _default is None:
        _default = Registry()
    for path in plugin_files:
        _default.register_file(path)
    return _default


def reset_registry() -> None:
    """Forget the process-wide registry (plugins installed since are then discovered)."""
    global _default
    _default = None
