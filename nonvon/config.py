"""Checks for simulator configs: one style, one error.

Each check takes the option's ``name`` and ``value`` (and an ``example`` of a good value),
returns the value (normalized: a list becomes a tuple) and raises :class:`ConfigError`
naming the option, the bad value and the fix. Numbers must be finite: NaN and infinity
are refused everywhere. A config's ``__post_init__`` is a list of these calls::

    @dataclasses.dataclass(frozen=True)
    class MyConfig:
        width: int = 128
        lr: float = 1e-3
        hidden: tuple[int, ...] = (64,)

        def __post_init__(self):
            positive_int("width", self.width, example=128)
            positive("lr", self.lr, example=1e-3)
            set_tuple(self, "hidden", ints("hidden", self.hidden, example="(64,)", nonempty=True))

:func:`fixed_options` checks the options a simulator class fixes (its model): a variant of
a simulator is chosen by its class, never by overriding a string.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nonvon.errors import ConfigError

__all__ = ["integer", "positive_int", "number", "positive", "non_negative", "fraction", "choice",
           "flag", "optional", "numbers_of", "ints", "set_tuple", "DEVICES", "device",
           "fixed_options"]

DEVICES = ("auto", "cpu", "cuda")


def _eg(name: str, example: Any) -> str:
    return f"e.g. {name}={example}"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(name: str, value: Any, lo: int | None = None, hi: int | None = None, *,
            example: Any = None) -> int:
    """An integer (bools refused) in ``[lo, hi]`` (either bound may be ``None``)."""
    if not _is_int(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            rng = f"an integer in [{lo}, {hi}]"
        elif lo == 1:
            rng = "a positive integer"
        elif lo is not None or hi is not None:
            rng = f"an integer >= {lo}" if lo is not None else f"an integer <= {hi}"
        else:
            rng = "an integer"
        raise ConfigError(f"{name}={value!r} must be {rng}",
                          _eg(name, example if example is not None else (lo if lo is not None else 0)))
    return value


def positive_int(name: str, value: Any, *, example: Any = 1) -> int:
    """An integer >= 1."""
    return integer(name, value, 1, example=example)


def number(name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
           example: Any, lo_open: bool = False, hi_open: bool = False, what: str = "") -> float:
    """A finite real number (NaN and infinity refused; bools refused) between ``lo`` and
    ``hi``, each bound closed unless ``lo_open`` / ``hi_open``; ``what`` adds a reason."""
    ok = _is_real(value) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        if lo is not None and hi is not None:
            rng = f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        elif lo is not None:
            rng = f" {'>' if lo_open else '>='} {lo:g}"
        elif hi is not None:
            rng = f" {'<' if hi_open else '<='} {hi:g}"
        else:
            rng = ""
        raise ConfigError(f"{name}={value!r} must be a finite number{rng}{what}", _eg(name, example))
    return value


def positive(name: str, value: Any, *, example: Any, what: str = "") -> float:
    """A finite number > 0."""
    return number(name, value, 0, example=example, lo_open=True, what=what)


def non_negative(name: str, value: Any, *, example: Any, what: str = "") -> float:
    """A finite number >= 0."""
    return number(name, value, 0, example=example, what=what)


def fraction(name: str, value: Any, *, example: Any, hi_open: bool = False) -> float:
    """A finite number in [0, 1] (``hi_open``: [0, 1)), e.g. a probability or a rate."""
    return number(name, value, 0, 1, example=example, hi_open=hi_open)


def choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """One of ``choices`` (a mapping's keys, e.g. a name -> class table, count as choices)."""
    choices = list(choices)
    if value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = (f"did you mean {close[0]!r}? " if close else "") + \
            f"use one of: {', '.join(repr(c) for c in choices)}"
        raise ConfigError(f"unknown {name} {value!r}", hint)
    return value


def device(value: Any) -> str:
    """Where a simulator runs: ``auto`` (CUDA when present), ``cpu`` or ``cuda``."""
    return choice("device", value, DEVICES)


def flag(name: str, value: Any) -> bool:
    """``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be True or False", f"e.g. {name}=True")
    return value


def optional(check: Callable[..., Any], name: str, value: Any, *args: Any, **kwargs: Any) -> Any:
    """``None``, or what ``check(name, value, *args, **kwargs)`` accepts."""
    return None if value is None else check(name, value, *args, **kwargs)


def numbers_of(name: str, value: Any, check: Callable[..., Any] = positive, *, example: str,
               nonempty: bool = False, **kwargs: Any) -> tuple:
    """A tuple whose every entry passes ``check`` (called as ``check(f"{name} entry", v,
    **kwargs)``); with ``nonempty``, at least one entry."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(f"{name}={value!r} must be a sequence", _eg(name, example))
    out = tuple(value)
    if nonempty and not out:
        raise ConfigError(f"{name} is empty", f"give at least one entry, {_eg(name, example)}")
    for v in out:
        try:
            check(f"{name} entry", v, example=example, **kwargs)
        except ConfigError as e:  # the fix is for the whole option, not one entry
            raise ConfigError(e.message, _eg(name, example)) from None
    return out


def ints(name: str, value: Any, *, example: str, nonempty: bool = False) -> tuple[int, ...]:
    """A tuple of positive integers (layer widths, batch sizes)."""
    return numbers_of(name, value, positive_int, example=example, nonempty=nonempty)


def set_tuple(config: Any, name: str, value: tuple) -> None:
    """Store the normalized ``value`` on a frozen config (a list given becomes a tuple, so
    the config hashes and keys alike)."""
    object.__setattr__(config, name, value)


# -- options a simulator class fixes -------------------------------------------------------------
def _fixed_value(cls: type, option: str) -> Any:
    if option in cls.defaults:
        return cls.defaults[option]
    field = {f.name: f for f in dataclasses.fields(cls.Config)}[option]
    return field.default


def fixed_options(cls: type, values: Mapping[str, Any],
                  simulators: Callable[[], Mapping[str, Any]]) -> None:
    """Refuse ``values`` (option -> the value asked for) that change an option ``cls`` fixes
    (``cls.fixed``: its model, chosen by the class). The error names the registered
    simulator that has the values wanted; ``simulators()`` gives the registry's name ->
    class table (asked only then)."""
    wrong = {o: values[o] for o in cls.fixed if values[o] != _fixed_value(cls, o)}
    if not wrong:
        return
    table = simulators()
    own = next((n for n, c in sorted(table.items()) if c is cls), cls.__name__)
    fits = []
    for n, c in sorted(table.items()):
        if not (isinstance(c, type) and getattr(c, "Config", None) is cls.Config
                and getattr(c, "fixed", ())):
            continue
        opts = set(c.fixed) | set(cls.fixed)
        if all(_fixed_value(c, o) == values.get(o, _fixed_value(cls, o)) for o in opts):
            fits.append((-len(c.fixed), n))  # the most specific variant first
    what = ", ".join(f"{o}={v!r}" for o, v in wrong.items())
    fixed = ", ".join(f"{o}={_fixed_value(cls, o)!r}" for o in cls.fixed)
    hint = (f"use {min(fits)[1]}" if fits else
            f"leave {' and '.join(wrong)} unset: no registered simulator has {what}")
    raise ConfigError(f"{own}'s {' and '.join(cls.fixed)} {'is' if len(cls.fixed) == 1 else 'are'} "
                      f"fixed ({fixed}); {what} is another simulator", hint)
