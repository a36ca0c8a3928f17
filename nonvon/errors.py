"""Errors that name the problem and the fix.

Every error nonvon raises on bad input is a :class:`NonvonError`; the CLI turns
it into a two-line message (what was wrong, how to fix it) and exit code 2.
"""

from __future__ import annotations


class NonvonError(Exception):
    """Base class: ``message`` says what is wrong, ``hint`` how to fix it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (fix: {self.hint})"


class ConfigError(NonvonError, ValueError):
    """An invalid configuration value or argument."""


class DataError(NonvonError, ValueError):
    """A data file is missing, corrupt, truncated or fails its checksum."""


class UnknownNameError(NonvonError, LookupError):
    """A task, simulator, preset or op kind that is not registered."""


class IncompatibleError(NonvonError, ValueError):
    """A simulator cannot run a task, or a preset cannot price a ledger."""


class PresetError(NonvonError, ValueError):
    """A preset file is malformed or lacks a required number or source."""


def unknown(kind: str, name: str, known: list[str] | tuple[str, ...]) -> UnknownNameError:
    """Build the standard 'unknown X' error with the valid choices listed."""
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    did_you_mean = f"did you mean {close[0]!r}? " if close else ""
    return UnknownNameError(
        f"unknown {kind} {name!r}",
        f"{did_you_mean}choose one of: {', '.join(sorted(known)) or '(none registered)'}",
    )


def require_positive(name: str, value, kind: type = int) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a positive ``kind`` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        raise ConfigError(f"{name}={value!r} must be a positive {kind.__name__}",
                          f"set {name} to a value > 0, e.g. {name}={kind(1)!r}")


def invalid(where: str, what: str, allowed: str, fix: str,
            error: type[NonvonError] = ConfigError) -> NonvonError:
    """The one message format for a value refused where it enters nonvon: ``where`` it came
    from (a file and key, a flag, an argument), ``what`` is wrong with it, what is
    ``allowed``, and the ``fix``::

        --set gpu-mlp.lr: NaN is not a finite number; allowed: a finite number (fix: ...)
    """
    return error(f"{where}: {what}; allowed: {allowed}", fix)
