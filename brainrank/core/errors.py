"""Errors a user can cause, each with a message that says what was wrong and what to do.

Everything a user can get wrong raises a subclass of :class:`BrainrankError`. The command
line prints the message of these without a traceback; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class BrainrankError(Exception):
    """Base class of every error brainrank raises on purpose."""


class InputError(BrainrankError, ValueError):
    """Data or arguments of the wrong shape, type or content."""


class PluginError(BrainrankError):
    """A plugin could not be loaded or is inconsistent with another plugin."""


class UnknownIdentifierError(PluginError, LookupError):
    """No plugin registers the requested identifier."""

    def __init__(self, kind: str, identifier: str, suggestions: list[str]):
        self.kind = kind
        self.identifier = identifier
        self.suggestions = suggestions
        message = f"unknown {kind} {identifier!r}."
        if suggestions:
            message += " Closest known: " + ", ".join(suggestions) + "."
        message += f" Run `brainrank {kind}s` to list every {kind}."
        super().__init__(message)

    def __str__(self) -> str:  # LookupError would otherwise quote the message
        return str(self.args[0])


class DuplicateIdentifierError(PluginError):
    """Two plugins register the same identifier."""


class WeightsUnavailableError(BrainrankError):
    """Trained weights are neither in a local file nor in a cache, and cannot be downloaded."""


class DataUnavailableError(BrainrankError):
    """Files a dataset needs are missing."""


class NotApplicableError(BrainrankError):
    """A metric does not apply to a dataset (for example regression on an RDM-only dataset)."""


class ResultError(BrainrankError):
    """A metric returned something that is not a usable score (wrong type, empty, all NaN)."""


class StoreError(BrainrankError):
    """The leaderboard database cannot be opened or written."""


class RemovedAPIWarning(FutureWarning):
    """A plugin uses an import that brainrank removed; the message names the replacement.
    It still works for now, but ``brainrank plugin check`` fails on it."""
