"""Exceptions raised by fxnas; each names what was wrong and what would be valid."""

from __future__ import annotations


class FxnasError(Exception):
    """Base class of every error fxnas raises on bad input."""


class TraceError(FxnasError):
    """A model could not be traced to an fx graph."""


class PatternError(FxnasError):
    """A pattern is unknown or matched nothing."""


class RegistryError(FxnasError, KeyError):
    """A name is not in a registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ConfigError(FxnasError):
    """An experiment config or arch description is malformed."""


class UnknownComponentError(ConfigError, RegistryError):
    """A config or build call names a component no registry has (the message names the key path)."""


class ShapeError(FxnasError):
    """A candidate cannot produce the shape its slot needs."""


class ModelError(ConfigError):
    """A model source (model file, torchvision builder, weights file) cannot be loaded."""


class DivergedError(FxnasError):
    """Training diverged: too many steps in a row had a non-finite loss or gradient."""


def missing_file(what: str, path: object, error: type[FxnasError] = ConfigError) -> FxnasError:
    """The error for a file that is not there: ``what 'path' does not exist``, plus the absolute path looked
    at when ``path`` is relative (it resolved against the working directory, which the user may not expect)."""
    import os

    shown = os.fspath(path)  # type: ignore[call-overload]
    where = "" if os.path.isabs(shown) else f" (looked at {os.path.abspath(shown)})"
    return error(f"{what} {shown!r} does not exist{where}")


class HiddenByLeafWarning(UserWarning):
    """Modules a pattern would match sit inside a trace leaf (a module traced as one call), so no slot reaches
    them; the message names each leaf, the rule or type that made it one, and what it hides."""


class WeightsReadWarning(UserWarning):
    """A module a pattern selects is left as it is because the forward reads its weights as values outside its
    call (a slot's candidates may have no such weights); the message names each one."""
