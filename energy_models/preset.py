"""Presets: a named device's price list, read from TOML, every number sourced.

A preset file looks like this (see ``docs/energy-model.md``)::

    name = "cmos-45nm"
    description = "Digital CMOS at 45 nm, 0.9 V"
    paradigms = ["gpu", "hdc"]   # registered paradigms (nonvon.paradigms) it prices
    boundary = "core"        # core, chip or system: which cost classes it must price
    bound = false            # optional: true for a physical bound, not a device (drawn apart)

    [absent]                 # a class the boundary includes but the device truly lacks
    static = "reason, with its source"

    [memory]                 # optional: on-chip capacity and SRAM energy by array size
    onchip_bytes = 4.0e6     # beyond this, on-chip accesses spill to dram_byte
    sram_tiers = [[8192, 0.94], [32768, 1.06], [1048576, 1.75]]   # [array bytes, pJ/byte]
    source = "..."

    [static]                 # optional: static power over the modelled latency
    power_w = 0.0
    source = "..."

    [kinds.dendrite_event]   # optional: op kinds it prices that no installed plugin may define
    unit = "event"           # op, byte, bit, event or s
    cost_class = "compute"   # compute, memory (then memory_level), interconnect, io, static
    description = "one dendritic plateau event"

    [ops.mac_fp32]
    energy_pj = 4.6          # nominal energy per count (pJ); for kinds in seconds: power_w
    low_pj = 3.0             # optional bounds (default: the nominal value)
    high_pj = 6.0
    time_s = 1.5e-14         # optional: seconds per count on `resource`
    resource = "compute"     # resources run in parallel; "serial" ones add up
    source = "Horowitz, ISSCC 2014, Fig. 1.1.9: fp32 mult 3.7 pJ + add 0.9 pJ"
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from nonvon.energy_models.catalog import (
    CATALOG,
    COST_CLASSES,
    ORIGINS,
    TIME_UNIT,
    OpKind,
    clash,
    get_op_kind,
    register_op_kind,
    unregister_op_kind,
)
from nonvon.errors import NonvonError, PresetError, invalid

__all__ = ["OpPrice", "Preset", "load_preset", "BOUNDARIES", "classes_within"]

SERIAL = "serial"

#: What each boundary includes (DESIGN.md section 2b). ``chip`` adds interconnect, on-chip io
#: and the chip's static power to ``core``; ``system`` adds off-chip memory, host io, power
#: delivery, cooling and cryostats, which price through the same five classes.
BOUNDARIES = ("core", "chip", "system")
_CLASSES_WITHIN = {
    "core": ("compute", "memory"),
    "chip": COST_CLASSES,
    "system": COST_CLASSES,
}


def classes_within(boundary: str) -> tuple[str, ...]:
    """The cost classes a preset at ``boundary`` must price or declare absent."""
    return _CLASSES_WITHIN[boundary]


@dataclasses.dataclass(frozen=True)
class OpPrice:
    """The price of one op kind on one device (energies in pJ, or W for time kinds)."""

    value: float
    low: float
    high: float
    source: str
    time_s: float | None = None
    resource: str = SERIAL
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Preset:
    """A device's price list at a declared boundary.

    ``absent`` maps a cost class the boundary includes but the device lacks to the reason;
    ``onchip_bytes`` (None: not modelled) and ``sram_tiers`` (``(array_bytes, pJ/byte)``,
    ascending) drive memory placement in :func:`~nonvon.energy_models.price`. ``bound``
    marks a physical bound rather than a device (e.g. the optical shot-noise limit): its rows
    are drawn hollow and kept off Pareto fronts, headlines and breakdowns.
    """

    name: str
    description: str
    paradigms: tuple[str, ...]
    ops: Mapping[str, OpPrice]
    boundary: str = "core"
    absent: Mapping[str, str] = dataclasses.field(default_factory=dict)
    onchip_bytes: float | None = None
    sram_tiers: tuple[tuple[float, float], ...] = ()
    memory_source: str = ""
    static_power_w: float = 0.0
    static_low_w: float = 0.0
    static_high_w: float = 0.0
    static_source: str = ""
    path: str = ""
    bound: bool = False
    #: ``{distribution: version}`` of the installed distribution whose entry point gave it
    #: (empty for a preset read from a file by path); rows priced on it record this.
    provided_by: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: The op kinds its ``[kinds]`` table declares (a self-describing preset).
    declared_kinds: Mapping[str, OpKind] = dataclasses.field(default_factory=dict)

    def can_price(self, op_kinds) -> list[str]:
        """The kinds in ``op_kinds`` this preset has no price for (empty if it prices all)."""
        return sorted(set(op_kinds) - set(self.ops))

    def check_latency_model(self, op_kinds, who: str) -> None:
        """Refuse, before any work, to price ``who``'s kinds with static power but no timing.

        Static energy is power x the modelled latency; when none of the kinds ``who`` counts
        has a ``time_s`` here (and none is a device-time kind), there is no latency to charge.
        """
        if not (self.static_power_w or self.static_high_w):
            return
        if any(get_op_kind(k).unit == TIME_UNIT or (k in self.ops and self.ops[k].time_s is not None)
               for k in op_kinds):
            return
        where = self.path or f"preset {self.name!r}"
        raise PresetError(
            f"{where}: [static] power_w = {self.static_power_w} W, but none of the op kinds "
            f"{who} counts ({', '.join(sorted(op_kinds))}) has a time_s, so no latency exists to "
            "charge it over",
            "give time_s (seconds per op) to the kinds that set the device's latency, e.g. "
            "[ops.chip_timestep] time_s = 1e-3")

    @property
    def priced_classes(self) -> frozenset[str]:
        """The cost classes some entry of this preset prices (static power counts as static)."""
        classes = {get_op_kind(k).cost_class for k in self.ops}
        if self.static_power_w or self.static_high_w:
            classes.add("static")
        return frozenset(classes)

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "paradigms": list(self.paradigms), "boundary": self.boundary,
                "absent": dict(self.absent), "onchip_bytes": self.onchip_bytes,
                "ops": sorted(self.ops), "path": self.path, "bound": self.bound}


#: The largest value each kind of preset entry may hold. Not physical claims: each is orders
#: of magnitude above anything a device in nonvon's presets reaches (the largest there: 5.1e4
#: pJ per count, 4e4 W of static power, 1/60 s per count, 5e8 bytes on chip), and far below
#: where pricing a large ledger overflows to infinity (1e308 would, and then no result could
#: be written). A value above one is a typo or a unit slip (J written as pJ).
LIMITS = {"pj": (1e15, "pJ (1 kJ per count)"), "w": (1e8, "W (100 MW)"),
          "s": (1e4, "s per count (about three hours)"), "bytes": (1e18, "bytes (an exabyte)")}
_UNIT_OF = {"time_s": "s", "onchip_bytes": "bytes"}


def _unit(key: str) -> str:
    return _UNIT_OF.get(key) or ("w" if key.endswith("_w") else "pj")


def _number(table: Mapping, key: str, where: str, *, required: bool = True,
            default: float | None = None) -> float | None:
    if key not in table:
        if required:
            raise PresetError(f"{where}: missing {key!r}", f"add `{key} = <number>` with its source")
        return default
    v = table[key]
    top, unit = LIMITS[_unit(key)]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise invalid(f"{where}, key {key!r}", f"{key} = {v!r} is not a finite non-negative "
                      "number", f"a number in [0, {top:g}] {unit}",
                      f"write {key} as a number >= 0, with its source", PresetError)
    if v > top:
        raise invalid(f"{where}, key {key!r}", f"{key} = {v!r} is beyond any device",
                      f"a number in [0, {top:g}] {unit}",
                      f"check the unit of {key} (e.g. J written as pJ) against its source",
                      PresetError)
    return float(v)


def _bounds(table: Mapping, nominal: float, unit: str, where: str) -> tuple[float, float]:
    low = _number(table, f"low_{unit}", where, required=False, default=nominal)
    high = _number(table, f"high_{unit}", where, required=False, default=nominal)
    if not low <= nominal <= high:
        raise PresetError(f"{where}: bounds must satisfy low <= nominal <= high, got "
                          f"{low} <= {nominal} <= {high}")
    return low, high


def _reject_unknown_keys(table: Mapping, allowed: set[str], where: str) -> None:
    """A typo (``hihg_pj``) must not silently fall back to a default."""
    import difflib

    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            raise PresetError(f"{where}: unknown key {key!r}",
                              f"did you mean {close[0]!r}?" if close
                              else f"allowed keys: {', '.join(sorted(allowed))}")


def _source(table: Mapping, where: str) -> str:
    src = table.get("source")
    if not isinstance(src, str) or not src.strip():
        raise PresetError(f"{where}: no 'source'",
                          "every number needs `source = \"paper, table or datasheet\"`")
    return src


def preset_from_dict(data: Mapping, path: str = "") -> Preset:
    """Validate a parsed preset table and build a :class:`Preset`."""
    where = f"preset {path or data.get('name', '?')}"
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise PresetError(f"{where}: missing 'name'", 'add `name = "my-device"` at the top')
    where = f"preset {name!r}" + (f" ({path})" if path else "")
    _reject_unknown_keys(data, {"name", "description", "paradigms", "boundary", "absent", "memory",
                                "source", "static", "ops", "bound", "kinds"}, where)
    declared = _declared_kinds(data.get("kinds", {}), where)
    paradigms = _paradigms(data.get("paradigms"), where, self_describing=bool(declared))
    added = []
    try:
        for kind in declared.values():  # before the ops are read; taken back if refused
            if kind.name not in CATALOG:
                try:
                    register_op_kind(kind, where)
                except NonvonError as e:
                    raise PresetError(f"{where}, [kinds.{kind.name}]: {e.message}", e.hint) from None
                added.append(kind)
        preset = _build(data, name, where, path, paradigms, declared)
    except BaseException:
        for kind in added:
            unregister_op_kind(kind.name)
        raise
    return preset


def _build(data: Mapping, name: str, where: str, path: str, paradigms, declared) -> Preset:
    bound = data.get("bound", False)
    if not isinstance(bound, bool):
        raise PresetError(f"{where}: bound = {bound!r} is not true or false",
                          "write `bound = true` for a physical bound (not a device), else leave it out")
    ops_table = data.get("ops")
    if not isinstance(ops_table, dict) or not ops_table:
        raise PresetError(f"{where}: no [ops.<kind>] tables", "price at least one op kind")
    ops = {}
    for kind_name, t in ops_table.items():
        w = f"{where}, [ops.{kind_name}]"
        try:
            kind = get_op_kind(kind_name)
        except NonvonError as e:
            raise PresetError(f"{w}: {e.message}", e.hint) from None
        if not isinstance(t, dict):
            raise PresetError(f"{w}: expected a table", f"write [ops.{kind_name}] with energy_pj and source")
        unit = "w" if kind.unit == TIME_UNIT else "pj"
        key = "power_w" if unit == "w" else "energy_pj"
        _reject_unknown_keys(t, {key, f"low_{unit}", f"high_{unit}", "time_s", "resource", "source",
                                 "note"}, w)
        value = _number(t, key, w)
        low, high = _bounds(t, value, unit, w)
        time_s = _number(t, "time_s", w, required=False)
        resource = t.get("resource", SERIAL)
        if not isinstance(resource, str):
            raise PresetError(f"{w}: resource must be a string", 'e.g. resource = "compute"')
        ops[kind_name] = OpPrice(value, low, high, _source(t, w), time_s, resource,
                                 str(t.get("note", "")))
    static = data.get("static", {})
    if not isinstance(static, dict):
        raise PresetError(f"{where}: [static] must be a table", "write [static] with power_w and source")
    if static:
        w = f"{where}, [static]"
        _reject_unknown_keys(static, {"power_w", "low_w", "high_w", "source", "note"}, w)
        power = _number(static, "power_w", w)
        s_low, s_high = _bounds(static, power, "w", w)
        s_src = _source(static, w)
    else:
        power = s_low = s_high = 0.0
        s_src = ""
    boundary = data.get("boundary")
    if boundary not in BOUNDARIES:
        raise PresetError(f"{where}: boundary = {boundary!r}",
                          f"declare what the preset models: boundary = one of {list(BOUNDARIES)} "
                          "(core: compute + on-chip memory; chip: + interconnect, on-chip io, "
                          "static power; system: + off-chip memory, host io, cooling)")
    absent = _absent(data.get("absent", {}), where)
    onchip, tiers, mem_src = _memory(data.get("memory", {}), where)
    preset = Preset(name=name, description=str(data.get("description", "")),
                    paradigms=tuple(paradigms), ops=MappingProxyType(ops), boundary=boundary,
                    absent=MappingProxyType(absent), onchip_bytes=onchip, sram_tiers=tiers,
                    memory_source=mem_src, static_power_w=power, static_low_w=s_low,
                    static_high_w=s_high, static_source=s_src, path=path, bound=bound,
                    declared_kinds=MappingProxyType(declared))
    _check_boundary(preset, where)
    return preset


#: Keys of a ``[kinds.<name>]`` table and the OpKind field each fills.
_KIND_KEYS = {"unit", "cost_class", "description", "output_bits", "memory_level"}


def _declared_kinds(table, where: str) -> dict[str, OpKind]:
    """The op kinds a self-describing preset declares (``[kinds.<name>]`` with unit, cost
    class and description), each checked like a plugin's and against the catalog: a kind
    already defined must agree on unit, cost class and memory level."""
    if not isinstance(table, dict):
        raise PresetError(f"{where}: [kinds] must be a table",
                          'write [kinds.<name>] tables with unit, cost_class and description')
    out = {}
    for name, t in table.items():
        w = f"{where}, [kinds.{name}]"
        if not isinstance(t, dict):
            raise PresetError(f"{w}: expected a table",
                              f'write [kinds.{name}] with unit, cost_class and description')
        _reject_unknown_keys(t, _KIND_KEYS, w)
        for key in ("unit", "cost_class", "description"):
            if not isinstance(t.get(key), str) or not t[key].strip():
                raise PresetError(f"{w}: missing {key!r}",
                                  f"add `{key} = \"...\"` (see `nonvon list --ops` for the "
                                  "catalog's kinds)")
        bits = t.get("output_bits", 0)
        if isinstance(bits, bool) or not isinstance(bits, int) or bits < 0:
            raise PresetError(f"{w}: output_bits = {bits!r}",
                              "bits the op overwrites, an integer >= 0 (0: no Landauer floor)")
        kind = OpKind(name, t["unit"], t["description"].strip(), bits, t["cost_class"],
                      t.get("memory_level", ""))
        old = CATALOG.get(name)
        if old is not None:
            differ = clash(old, kind)
            if differ:
                raise PresetError(
                    f"{w}: op kind {name!r} clashes with its definition by "
                    f"{ORIGINS.get(name, '?')} ({'; '.join(differ)})",
                    f"match the catalog (unit {old.unit!r}, cost_class {old.cost_class!r}"
                    + (f", memory_level {old.memory_level!r}" if old.memory_level else "")
                    + "), or give your kind another name (`nonvon list --ops` lists them)")
            out[name] = old
            continue
        out[name] = kind
    return out


def _paradigms(value, where: str, self_describing: bool = False) -> tuple[str, ...]:
    """The preset's paradigms, each one a plugin declared (nonvon.paradigms). A preset that
    declares its op kinds may also name a paradigm whose plugin is not installed here (it
    prices results shared from elsewhere)."""
    from nonvon.paradigms import broken_paradigms, paradigm_names

    known = paradigm_names()
    if not isinstance(value, list) or not value or not all(isinstance(p, str) for p in value):
        raise PresetError(f"{where}: paradigms = {value!r}",
                          f"give a non-empty list of paradigm names, e.g. {known[:2]}")
    unknown = [p for p in value if p not in known]
    if unknown and not self_describing:
        hint = (f"known paradigms: {', '.join(known)}; list one of these, or declare "
                f"{unknown[0]!r} with a Paradigm in the nonvon.paradigms entry-point group of the "
                "plugin that brings it (docs/adding-a-device.md)")
        broken = [f"{n} ({e})" for n, e in broken_paradigms()]
        if broken:
            hint += "; paradigm plugins that failed to load: " + "; ".join(broken)
        raise PresetError(f"{where}: unknown paradigm(s) {unknown}", hint)
    return tuple(value)


def _absent(table, where: str) -> dict[str, str]:
    if not isinstance(table, dict):
        raise PresetError(f"{where}: [absent] must be a table",
                          'write [absent] with lines like static = "reason, with its source"')
    out = {}
    for cls, reason in table.items():
        if cls not in COST_CLASSES:
            raise PresetError(f"{where}, [absent]: unknown cost class {cls!r}",
                              f"use one of {', '.join(COST_CLASSES)}")
        if not isinstance(reason, str) or len(reason.strip()) < 10:
            raise PresetError(f"{where}, [absent]: {cls} = {reason!r} gives no reason",
                              f'say why the device has no {cls} cost, with its source')
        out[cls] = reason.strip()
    return out


def _memory(table, where: str) -> tuple[float | None, tuple[tuple[float, float], ...], str]:
    if not isinstance(table, dict):
        raise PresetError(f"{where}: [memory] must be a table",
                          "write [memory] with onchip_bytes and/or sram_tiers, and source")
    if not table:
        return None, (), ""
    w = f"{where}, [memory]"
    _reject_unknown_keys(table, {"onchip_bytes", "sram_tiers", "source", "note"}, w)
    onchip = _number(table, "onchip_bytes", w, required=False)
    if onchip is not None and onchip <= 0:
        raise PresetError(f"{w}: onchip_bytes = {onchip} must be > 0",
                          "leave it out if the preset does not model on-chip capacity")
    tiers = table.get("sram_tiers", [])
    ok = isinstance(tiers, list) and all(
        isinstance(t, list) and len(t) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and 0 < v <= LIMITS[unit][0] for v, unit in zip(t, ("bytes", "pj"), strict=True))
        for t in tiers)
    if not ok or [t[0] for t in tiers] != sorted({t[0] for t in tiers}):
        raise PresetError(f"{w}: sram_tiers = {tiers!r}",
                          "give [[array_bytes, energy_pj_per_byte], ...] with positive numbers "
                          f"(at most {LIMITS['bytes'][0]:g} bytes and {LIMITS['pj'][0]:g} pJ), "
                          "array sizes strictly ascending")
    return onchip, tuple((float(a), float(e)) for a, e in tiers), _source(table, w)


def _check_boundary(preset: Preset, where: str) -> None:
    """A preset may not claim a boundary without pricing (or declaring absent) every class in it."""
    priced = preset.priced_classes
    both = sorted(c for c in preset.absent if c in priced)
    if both:
        raise PresetError(f"{where}: [absent] lists {both}, which the preset prices",
                          "remove them from [absent], or remove the entries that price them")
    missing = [c for c in classes_within(preset.boundary)
               if c not in priced and c not in preset.absent]
    if missing:
        raise PresetError(
            f"{where}: boundary = {preset.boundary!r} includes cost classes {missing} that the "
            "preset neither prices nor declares absent",
            "price them ([ops.<kind>] of that class, or [static] power), declare each under "
            "[absent] with a sourced reason, or claim a smaller boundary")
    if preset.sram_tiers and "sram_byte" not in preset.ops:
        raise PresetError(f"{where}: [memory] sram_tiers without [ops.sram_byte]",
                          "price sram_byte (its nominal value) or drop sram_tiers")


def load_preset(path: str | Path) -> Preset:
    """Read and validate a preset TOML file (data only: nothing in it is executed)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"preset file {path} does not exist",
                          "check the path, or run `nonvon list` for registered presets") from None
    except OSError as e:
        raise PresetError(f"cannot read preset file {path}: {e.strerror}",
                          "give the path of a .toml file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise PresetError(f"preset file {path} is not valid TOML: {e}",
                          "fix the syntax at the position shown") from None
    return preset_from_dict(data, str(path))
