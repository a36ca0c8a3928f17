"""Bring your own network: one call turns a network trained elsewhere into a simulator.

:func:`load_network` takes an object (a ``torch.nn.Module``, a NIR graph, a qiskit
``QuantumCircuit``, a torchhd encoder and classifier) or a file (``.nir``, ``.qasm``, ...)
and returns a :class:`~nonvon.simulator.Simulator` whose ``evaluate(task)`` counts what the
network executes on the chosen device and, given a ``preset``, returns the priced
:class:`~nonvon.result.Result`. The network is not retrained: ``fit`` only checks that it
takes the task's inputs and classes (and fits what the device's host side needs, such as a
PCA front end of a circuit), and ``evaluate`` calls it when it has not been called.

The core names no ecosystem. Each paradigm's package declares its importers in the
entry-point group ``nonvon.importers``; an entry point gives an :class:`Importer` (or a list
of them, or a callable returning either)::

    [project.entry-points."nonvon.importers"]
    torch = "nonvon.simulators.gpu.imported:IMPORTER"

:func:`load_network` asks each importer whether it accepts the object (``accepts`` answers
from the type or the file suffix, without importing the ecosystem's library unless the
object already comes from it) and uses the one that does; ``importer="name"`` picks one.

Example:
    >>> import nonvon
    >>> sim = nonvon.load_network(my_module, device="gpu-h100")   # a trained torch model
    >>> result = sim.evaluate(nonvon.registry().task("digits"))   # priced on gpu-h100
    >>> result.accuracy, result.energy.energy_j
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from nonvon.errors import ConfigError, unknown

__all__ = ["Importer", "IMPORTERS_GROUP", "importers", "broken_importers", "load_network",
           "find_importer", "Imported"]

IMPORTERS_GROUP = "nonvon.importers"


@dataclasses.dataclass(frozen=True)
class Importer:
    """One ecosystem's way into nonvon.

    Args:
        name: what ``load_network(..., importer=name)`` and error messages call it.
        accepts: ``accepts(obj) -> bool``: whether this importer takes ``obj`` (an object, or
            a :class:`~pathlib.Path` to a file). Cheap, and it must not raise.
        load: ``load(obj, **options) -> Simulator``; options are the importer's own
            (``device=`` the target, ``preset=`` the price list, and ecosystem settings).
        describes: one line for errors and ``nonvon list``: what it accepts, onto what.
        suffixes: file suffixes it reads (``(".nir",)``), listed in errors.
    """

    name: str
    accepts: Callable[[Any], bool]
    load: Callable[..., Any]
    describes: str
    suffixes: tuple[str, ...] = ()


def _importers_from(obj, origin: str) -> list[Importer]:
    if callable(obj) and not isinstance(obj, Importer):
        obj = obj()
    if isinstance(obj, Importer):
        return [obj]
    if isinstance(obj, Iterable):
        return [i for item in obj for i in _importers_from(item, origin)]
    raise ConfigError(f"importer entry point {origin} gave {type(obj).__name__}",
                      "return an Importer, a list of them, or a callable returning either")


@functools.cache
def _discover() -> tuple[dict[str, Importer], tuple[tuple[str, str], ...]]:
    found: dict[str, Importer] = {}
    broken: list[tuple[str, str]] = []
    for ep in entry_points(group=IMPORTERS_GROUP):
        try:
            for imp in _importers_from(ep.load(), f"{ep.name} = {ep.value}"):
                if imp.name in found:
                    raise ConfigError(f"importer name {imp.name!r} defined twice",
                                      "give each importer its own name")
                found[imp.name] = imp
        except Exception as e:  # a broken plugin must not take the others down
            broken.append((ep.name, f"{type(e).__name__}: {e}"))
    return found, tuple(broken)


def importers() -> dict[str, Importer]:
    """The importers the installed plugins declare, by name."""
    return dict(_discover()[0])


def broken_importers() -> list[tuple[str, str]]:
    """``(entry point, error)`` for each importer plugin that failed to load."""
    return list(_discover()[1])


def _describe(obj) -> str:
    if isinstance(obj, Path):
        return f"file {str(obj)!r}"
    return f"a {type(obj).__module__}.{type(obj).__qualname__}"


def find_importer(obj, importer: str | None = None) -> Importer:
    """The importer that takes ``obj`` (or the one named ``importer``).

    Raises:
        UnknownNameError: ``importer`` names none installed.
        ConfigError: no importer, or more than one, accepts ``obj`` (a missing file too).
    """
    known = importers()
    if importer is not None:
        if importer not in known:
            raise unknown("importer", importer, list(known))
        return known[importer]
    if isinstance(obj, Path) and not obj.exists():
        raise ConfigError(f"no file {str(obj)!r}", "give the path of an exported network")
    takers = [imp for imp in known.values() if imp.accepts(obj)]
    if len(takers) == 1:
        return takers[0]
    what = "\n".join(f"  {i.name}: {i.describes}" for i in known.values()) or "  (none installed)"
    broken = "".join(f"; importer plugin {n} failed to load: {e}" for n, e in broken_importers())
    if not takers:
        raise ConfigError(f"no importer takes {_describe(obj)}{broken}",
                          f"give one of these, or name the importer (importer=...):\n{what}")
    raise ConfigError(f"several importers take {_describe(obj)}: "
                      f"{', '.join(i.name for i in takers)}", "name one with importer=...")


def load_network(obj_or_path, *, importer: str | None = None, **options) -> Any:
    """A :class:`~nonvon.simulator.Simulator` running a network trained elsewhere.

    Args:
        obj_or_path: the network: an object of a supported ecosystem, or the path of a
            file one writes (a ``str`` or ``os.PathLike``).
        importer: the importer's name, when more than one could take the object.
        **options: the importer's options; every importer takes ``device`` (the simulator
            or preset it runs on) and ``preset`` (the price list ``evaluate`` prices with;
            ``None``: the result is left unpriced, to be priced with ``result.priced``).

    Returns:
        A simulator; ``sim.evaluate(task)`` checks the task, counts and (with a preset)
        prices one inference of every test sample.

    Raises:
        NonvonError: nothing takes the input, or the network holds something the device
            cannot run (a layer nonvon cannot count, a node a chip lacks, an unsupported
            gate): named, with the fix, before any work.
    """
    obj = Path(obj_or_path) if isinstance(obj_or_path, (str, os.PathLike)) else obj_or_path
    chosen = find_importer(obj, importer)
    try:
        return chosen.load(obj, **options)
    except TypeError as e:
        if "unexpected keyword" not in str(e):
            raise
        raise ConfigError(f"importer {chosen.name!r}: {e}",
                          f"see the {chosen.name} importer's options in docs/bring-your-own.md") from None


class Imported:
    """Mixin for a simulator that runs a network trained elsewhere (put it first in the
    bases): ``evaluate`` fits (checks) on the task when it was not fitted, and prices the
    result on ``self.preset`` when one was given."""

    preset = None  # a Preset, or None: unpriced

    def evaluate(self, task, *, split: str = "test", limit: int | None = None, context=None):
        if self._fitted_on is None:
            self.fit(task)
        result = super().evaluate(task, split=split, limit=limit, context=context)
        return result.priced(self.preset) if self.preset is not None else result


def resolve_preset(preset, default: str | None) -> Any:
    """``preset`` as a :class:`~nonvon.energy_models.Preset`: a Preset, a registered name or
    a TOML path; ``"default"`` takes ``default``; ``None`` stays ``None``."""
    from nonvon.energy_models import Preset
    from nonvon.registry import registry

    if preset is None or isinstance(preset, Preset):
        return preset
    if preset == "default":
        if default is None:
            raise ConfigError("this device has no default preset", "pass preset='<name>'")
        preset = default
    if not isinstance(preset, str):
        raise ConfigError(f"preset={preset!r} is not a preset", "give a Preset, a name or a TOML path")
    return registry().preset(preset)


def check_options(where: str, options: dict, allowed: Iterable[str]) -> None:
    """Refuse options the importer does not take, naming the valid ones."""
    allowed = set(allowed)
    bad = sorted(set(options) - allowed)
    if bad:
        raise ConfigError(f"{where} takes no option(s) {bad}",
                          f"valid options: {', '.join(sorted(allowed))}")
