"""The open list of paradigms: each a name, a display order, colours, a label and the presets
its headline figure is quoted on.

Plugins declare paradigms through the entry-point group ``nonvon.paradigms`` (the object is
a :class:`Paradigm`, a list of them, or a callable returning either), exactly as the five
built-ins do from their own packages (``simulators/<paradigm>/__init__.py``), or in-process
with :func:`register_paradigm` (as :func:`~nonvon.energy_models.register_op_kind` extends the
op catalog). Nothing here names a paradigm: presets, simulators and reports ask this module.

Example (a third party's ``pyproject.toml``)::

    [project.entry-points."nonvon.paradigms"]
    analog = "my_plugin:PARADIGM"

with ``PARADIGM = Paradigm("analog", label="analog in-memory computing", order=50,
colours=("#8c564b",), headline_presets=("my-crossbar",))`` in ``my_plugin``.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterable
from importlib.metadata import entry_points

from nonvon.errors import ConfigError

__all__ = ["Paradigm", "register_paradigm", "paradigms", "get_paradigm", "paradigm_names",
           "broken_paradigms", "PARADIGMS_GROUP", "DEFAULT_COLOUR"]

PARADIGMS_GROUP = "nonvon.paradigms"
#: The colour of a paradigm nothing declares (a row read from a file whose plugin is absent).
DEFAULT_COLOUR = "#777777"
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclasses.dataclass(frozen=True)
class Paradigm:
    """A family of devices that rows are grouped, ordered and coloured by.

    Args:
        name: what simulators put in ``paradigm`` and presets list in ``paradigms``
            (lower case, e.g. ``"analog"``).
        label: how reports and legends name it, e.g. ``"analog in-memory computing"``.
        order: position in tables and figures (smaller first; ties by name).
        colours: ``#rrggbb`` shades, the first the paradigm's main colour; simulators of the
            paradigm take them in turn.
        headline_presets: presets a simulator of this paradigm is quoted on in the headline
            table, most preferred first (a row on none of them falls back to its first preset).
        landauer_floor: whether the Landauer bound of its digital ledger is the floor of its
            networks (``False`` where the energy is in something else, e.g. light).
        reference_simulator: a simulator of this paradigm that event-driven rows of other
            paradigms are held against (the report's break-even spike rate), e.g. the
            matched-precision int8 baseline; ``""``: none.
    """

    name: str
    label: str
    order: int
    colours: tuple[str, ...]
    headline_presets: tuple[str, ...] = ()
    landauer_floor: bool = True
    reference_simulator: str = ""

    def __post_init__(self) -> None:
        where = f"paradigm {self.name!r}"
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigError(f"{where}: the name must be lower case letters, digits, - or _",
                              'e.g. Paradigm("analog", ...)')
        if not isinstance(self.label, str) or not self.label.strip():
            raise ConfigError(f"{where}: no label", 'give label="what a reader calls it"')
        if isinstance(self.order, bool) or not isinstance(self.order, int):
            raise ConfigError(f"{where}: order={self.order!r} is not an integer",
                              "the built-ins use 0..40; pick e.g. order=50 to come after them")
        colours = tuple(self.colours) if not isinstance(self.colours, str) else (self.colours,)
        if not colours or not all(isinstance(c, str) and _COLOUR.fullmatch(c) for c in colours):
            raise ConfigError(f"{where}: colours={self.colours!r}",
                              'give one or more "#rrggbb" colours, the main one first')
        object.__setattr__(self, "colours", colours)
        heads = tuple(self.headline_presets)
        if not all(isinstance(h, str) and h for h in heads):
            raise ConfigError(f"{where}: headline_presets={self.headline_presets!r}",
                              "give preset names, most preferred first")
        object.__setattr__(self, "headline_presets", heads)

    @property
    def colour(self) -> str:
        return self.colours[0]


_lock = threading.Lock()
_registered: dict[str, Paradigm] = {}
_broken: list[tuple[str, str]] = []
_discovered = False


def register_paradigm(paradigm: Paradigm) -> Paradigm:
    """Add ``paradigm`` (idempotent for an identical definition)."""
    if not isinstance(paradigm, Paradigm):
        raise ConfigError(f"register_paradigm got {type(paradigm).__name__}",
                          "pass a nonvon.paradigms.Paradigm")
    with _lock:
        old = _registered.get(paradigm.name)
        if old is not None and old != paradigm:
            raise ConfigError(f"paradigm {paradigm.name!r} is already declared differently: {old}",
                              "pick another name, or declare it once")
        _registered[paradigm.name] = paradigm
    return paradigm


def _from(obj) -> list[Paradigm]:
    if callable(obj) and not isinstance(obj, Paradigm):
        obj = obj()
    if isinstance(obj, Paradigm):
        return [obj]
    if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        return [p for item in obj for p in _from(item)]
    raise ConfigError(f"a {PARADIGMS_GROUP} entry point gave {type(obj).__name__}",
                      "point it at a Paradigm, a list of them, or a callable returning them")


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True  # before loading: a plugin's import may ask for paradigms itself
    for ep in entry_points(group=PARADIGMS_GROUP):
        try:
            for p in _from(ep.load()):
                register_paradigm(p)
        except Exception as e:  # a broken plugin must not take the others down
            _broken.append((ep.name, f"{type(e).__name__}: {e}"))


def paradigms() -> dict[str, Paradigm]:
    """Every declared paradigm by name, in display order."""
    _discover()
    return dict(sorted(_registered.items(), key=lambda kv: (kv[1].order, kv[0])))


def paradigm_names() -> list[str]:
    return list(paradigms())


def broken_paradigms() -> list[tuple[str, str]]:
    """``(entry point name, error)`` of each paradigm entry point that failed to load."""
    _discover()
    return list(_broken)


def get_paradigm(name: str) -> Paradigm | None:
    """The declared paradigm ``name``, or ``None`` (e.g. a row whose plugin is not installed)."""
    return paradigms().get(name)
