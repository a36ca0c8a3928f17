"""Plugin discovery through entry points; built-ins come in the same way.

Groups:
    ``nonvon.simulators``: a :class:`~nonvon.simulator.Simulator` subclass (or a
        factory taking config overrides as keyword arguments).
    ``nonvon.tasks``: a loader ``f(data_dir=None, *, download=True, progress=True) -> Task``.
    ``nonvon.presets``: a :class:`~nonvon.energy_models.Preset`, a path to a preset
        TOML file or a folder of them, or a callable returning any of these.
    ``nonvon.paradigms``: a :class:`~nonvon.paradigms.Paradigm` (or a list, or a callable
        returning them): name, display order, colours, label, headline presets.
    ``nonvon.report_sections``: a callable ``f(rows, out_dir) -> ReportSection | list | None``
        adding a section (figures and blocks) to ``report.md`` / ``report.html``
        (see :mod:`nonvon.report`).

A plugin that fails to import is recorded in :attr:`Registry.broken` and the
others keep working.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from pathlib import Path

from nonvon.energy_models.preset import Preset, load_preset
from nonvon.errors import NonvonError, PresetError, unknown
from nonvon.paradigms import PARADIGMS_GROUP, Paradigm, broken_paradigms, paradigms

__all__ = ["Registry", "Broken", "registry", "SIMULATORS", "TASKS", "PRESETS", "PARADIGMS",
           "REPORT_SECTIONS"]

SIMULATORS, TASKS, PRESETS = "nonvon.simulators", "nonvon.tasks", "nonvon.presets"
PARADIGMS, REPORT_SECTIONS = PARADIGMS_GROUP, "nonvon.report_sections"


@dataclasses.dataclass(frozen=True)
class Broken:
    group: str
    name: str
    error: str


def _presets_from(obj, origin: str) -> list[Preset]:
    if callable(obj) and not isinstance(obj, (Preset, str, os.PathLike)):
        obj = obj()
    if isinstance(obj, Preset):
        return [obj]
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
        return [load_preset(f) for f in files]
    if isinstance(obj, Iterable):
        return [p for item in obj for p in _presets_from(item, origin)]
    raise PresetError(f"preset entry point {origin} gave {type(obj).__name__}",
                      "return a Preset, a path to a TOML file or folder, or a list of these")


@dataclasses.dataclass
class Registry:
    simulators: dict[str, Callable] = dataclasses.field(default_factory=dict)
    tasks: dict[str, Callable] = dataclasses.field(default_factory=dict)
    presets: dict[str, Preset] = dataclasses.field(default_factory=dict)
    paradigms: dict[str, Paradigm] = dataclasses.field(default_factory=dict)
    report_sections: dict[str, Callable] = dataclasses.field(default_factory=dict)
    broken: list[Broken] = dataclasses.field(default_factory=list)

    @classmethod
    def discover(cls) -> Registry:
        reg = cls()
        # paradigms first: presets are checked against them as they load
        reg.paradigms = paradigms()
        reg.broken += [Broken(PARADIGMS, name, err) for name, err in broken_paradigms()]
        for group, target in ((SIMULATORS, reg.simulators), (TASKS, reg.tasks),
                              (REPORT_SECTIONS, reg.report_sections)):
            for ep in entry_points(group=group):
                try:
                    target[ep.name] = ep.load()
                except Exception as e:  # a broken plugin must not take the others down
                    reg.broken.append(Broken(group, ep.name, f"{type(e).__name__}: {e}"))
        for ep in entry_points(group=PRESETS):
            try:
                for p in _presets_from(ep.load(), f"{ep.name} = {ep.value}"):
                    if ep.dist is not None:  # rows record which distribution priced them
                        p = dataclasses.replace(p, provided_by={ep.dist.name: ep.dist.version})
                    if p.name in reg.presets:
                        raise PresetError(f"preset name {p.name!r} defined twice "
                                          f"({reg.presets[p.name].path} and {p.path})")
                    reg.presets[p.name] = p
            except Exception as e:
                reg.broken.append(Broken(PRESETS, ep.name, f"{type(e).__name__}: {e}"))
        reg.paradigms = paradigms()  # and any a simulator's module registered as it loaded
        return reg

    # -- lookups with helpful errors -------------------------------------------
    def simulator(self, name: str, **overrides):
        """Build the simulator registered as ``name`` with config ``overrides``."""
        if name not in self.simulators:
            raise self._unknown("simulator", name, self.simulators)
        sim = self.simulators[name](**overrides)
        sim.name = name
        return sim

    def task(self, name: str, **kwargs):
        if name not in self.tasks:
            raise self._unknown("task", name, self.tasks)
        return self.tasks[name](**kwargs)

    def preset(self, name_or_path: str) -> Preset:
        """A registered preset by name, or a preset TOML file by path."""
        if name_or_path in self.presets:
            return self.presets[name_or_path]
        if name_or_path.endswith(".toml") or os.sep in name_or_path:
            return load_preset(name_or_path)
        raise self._unknown("preset", name_or_path, self.presets)

    def _unknown(self, kind: str, name: str, known) -> NonvonError:
        err = unknown(kind, name, list(known))
        broken = [b for b in self.broken if b.name == name]
        if broken:
            err.hint = f"the plugin {name!r} is installed but failed to load: {broken[0].error}"
        return err

    def headline_rank(self, paradigm: str) -> dict[str, int]:
        """Preset name -> preference for quoting a ``paradigm`` row in a headline (0 first);
        empty for a paradigm nothing declares here."""
        p = self.paradigms.get(paradigm)
        return {name: i for i, name in enumerate(p.headline_presets)} if p else {}

    def presets_for(self, paradigm: str, op_kinds: Iterable[str] = ()) -> list[Preset]:
        """Registered presets declared for ``paradigm`` that price every kind in ``op_kinds``."""
        kinds = list(op_kinds)
        return [p for p in self.presets.values()
                if paradigm in p.paradigms and not p.can_price(kinds)]


@functools.cache
def registry() -> Registry:
    """The process-wide registry, discovered once (``registry.cache_clear()`` to rescan)."""
    return Registry.discover()
