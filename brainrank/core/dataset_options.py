"""Datasets built with options: ``--dataset-option NAME.KEY=VALUE`` and ``[dataset_options]``.

A dataset factory takes keyword options (``allen/natural-scenes``: ``reliability_threshold``,
``cre_lines``, ``running_p``...). A dataset built with options other than its factory's
defaults is a dataset of its own: its identifier names them in parentheses, keys sorted,
values as JSON (a plain word or a number bare):

    allen/natural-scenes(reliability_threshold=0.5)
    allen/natural-scenes(cre_lines=["Cux2-CreERT2"],reliability_threshold=0.7)

That identifier is the dataset's leaderboard entry and enters its data hash (which covers
the identifier), so datasets built with different options are never mixed or reused for one
another. An option given with its default value is no option: the dataset is the base one.

Options are checked before any work (:func:`check_dataset_options`): the key must be a
keyword the factory takes, and the value must be of the type its annotation or default says
(``float | None``: a number or null). What the factory finds wrong in a value when it builds
the dataset is reported as an error of that option (:func:`load_dataset`).
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from functools import partial
from typing import Any

from brainrank.core.errors import DataUnavailableError, InputError

#: factory parameters that are not options a user sets
_NOT_OPTIONS = {"root", "data_dir", "identifier", "self"}
_BARE = re.compile(r"^[A-Za-z0-9_.+\-]+$")


def format_value(value: Any) -> str:
    """An option value as it appears in a dataset identifier."""
    if isinstance(value, str) and _BARE.match(value) and value not in ("true", "false", "null"):
        try:
            float(value)
        except ValueError:
            return value  # a plain word: bare
        return json.dumps(value)  # "0.5" as a string stays distinct from 0.5
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def option_identifier(identifier: str, options: dict[str, Any]) -> str:
    """``identifier`` with ``options`` in parentheses (sorted keys); ``identifier`` itself
    when there are none."""
    if not options:
        return identifier
    inner = ",".join(f"{key}={format_value(options[key])}" for key in sorted(options))
    return f"{identifier}({inner})"


def _build_function(factory: Any) -> tuple[Any, dict[str, Any]]:
    """The function that builds a dataset and the options its factory fixes (a
    :class:`~brainrank.data.DatasetFactory` builds with ``build(root, **options)``)."""
    fixed: dict[str, Any] = {}
    while isinstance(factory, partial):
        fixed = {**factory.keywords, **fixed}
        factory = factory.func
    build = getattr(factory, "build", None)
    if callable(build):
        fixed = {**dict(getattr(factory, "options", {}) or {}), **fixed}
        factory = build
    return factory, fixed


def factory_options(spec: Any) -> dict[str, inspect.Parameter]:
    """The keyword options a dataset spec's factory takes, by name (its data folder and
    identifier excluded); empty when it takes none or they cannot be read."""
    function, _ = _build_function(spec.factory)
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}
    return {
        name: p
        for name, p in parameters.items()
        if name not in _NOT_OPTIONS and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def takes_any_option(spec: Any) -> bool:
    """Whether a dataset spec's factory takes ``**options`` (then any key is its to judge)."""
    function, _ = _build_function(spec.factory)
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return True  # cannot tell: let the factory decide
    return any(p.kind is p.VAR_KEYWORD for p in parameters)


def default_options(spec: Any) -> dict[str, Any]:
    """The value of each option when none is given (the factory's own, or its default)."""
    _, fixed = _build_function(spec.factory)
    out = {name: p.default for name, p in factory_options(spec).items() if p.default is not p.empty}
    out.update({k: v for k, v in fixed.items() if k not in _NOT_OPTIONS})
    return out


def _annotation(parameter: inspect.Parameter) -> str:
    annotation = parameter.annotation
    if annotation is parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")


def _describe(parameter: inspect.Parameter) -> str:
    text = _annotation(parameter)
    default = "" if parameter.default is parameter.empty else f" = {parameter.default!r}"
    return f"{parameter.name}{': ' + text if text else ''}{default}"


def _type_problem(parameter: inspect.Parameter, value: Any) -> str | None:
    """Why ``value`` cannot be the option ``parameter`` (from its annotation, else its
    default's type), or None."""
    text = _annotation(parameter)
    if not text and parameter.default is not parameter.empty and parameter.default is not None:
        text = type(parameter.default).__name__
    parts = {part.strip() for part in str(text).split("|")} - {""}
    if not parts or "Any" in parts or not parts <= {"float", "int", "bool", "str", "None"}:
        return None  # a type this check does not read: the factory decides
    if value is None:
        return None if "None" in parts else "it cannot be null"
    if isinstance(value, bool):
        return None if "bool" in parts else f"{value!r} is a boolean"
    if isinstance(value, (int, float)):
        if "float" in parts or ("int" in parts and float(value).is_integer()):
            return None
        return f"{value!r} is a number"
    if isinstance(value, str):
        return None if "str" in parts else f"{value!r} is a string"
    return f"{value!r} is a {type(value).__name__}"


def check_dataset_options(spec: Any, options: dict[str, Any], origin: str) -> dict[str, Any]:
    """The options of one dataset, checked against its factory; returns those that differ
    from the defaults (an option at its default is no option). ``origin`` names where they
    came from (``--dataset-option``, ``config.toml``) in the error messages."""
    accepted = factory_options(spec)
    names = ", ".join(_describe(p) for p in accepted.values()) or "none"
    unknown = sorted(set(options) - set(accepted))
    if unknown and not takes_any_option(spec):
        raise InputError(
            f"{origin}: dataset {spec.identifier!r} takes no option "
            f"{', '.join(map(repr, unknown))}. Its options: {names}."
        )
    defaults = default_options(spec)
    out = {}
    for key, value in options.items():
        problem = _type_problem(accepted[key], value) if key in accepted else None
        if problem:
            raise InputError(
                f"{origin} {spec.identifier}.{key}={json.dumps(value)}: {problem}, which "
                f"{key!r} cannot be ({_describe(accepted[key])}). Its options: {names}."
            )
        if key in defaults and _same(defaults[key], value):
            continue
        out[key] = value
    return out


def _same(default: Any, value: Any) -> bool:
    if isinstance(default, tuple):
        default = list(default)
    try:
        return json.dumps(default, sort_keys=True) == json.dumps(value, sort_keys=True)
    except TypeError:
        return False


def load_dataset(spec: Any, options: dict[str, Any], data_dir: Any = None) -> Any:
    """The dataset of ``spec`` built with ``options`` (checked ones), named by them
    (:func:`option_identifier`). A value the factory refuses raises :class:`InputError`
    naming the option; missing data stays a :class:`DataUnavailableError`."""
    if not options:
        return spec.load(data_dir=data_dir)
    try:
        dataset = spec.load(data_dir=data_dir, **options)
    except DataUnavailableError:
        raise
    except (InputError, TypeError, ValueError) as exc:
        given = ", ".join(f"{spec.identifier}.{k}={json.dumps(v)}" for k, v in options.items())
        raise InputError(f"dataset {spec.identifier!r} built with {given}: {exc}") from exc
    named = copy.copy(dataset)  # the factory may hand out one object: never rename it
    named.identifier = option_identifier(spec.identifier, options)
    return named
