"""The energy model: a pure function from (ledger, preset) to joules and seconds."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from nonvon.energy_models.catalog import COST_CLASSES, TIME_UNIT, get_op_kind
from nonvon.energy_models.ledger import OpLedger
from nonvon.energy_models.preset import SERIAL, OpPrice, Preset
from nonvon.errors import IncompatibleError

__all__ = ["EnergyReport", "Placement", "place_memory", "price", "landauer_j",
           "BOLTZMANN_J_PER_K"]

PJ = 1e-12
BOLTZMANN_J_PER_K = 1.380649e-23  # exact, SI 2019
STATIC = "static"


@dataclasses.dataclass(frozen=True)
class EnergyReport:
    """Energy and modelled latency per inference on one preset.

    ``breakdown_j`` maps each op kind (and ``"static"``) to joules per inference;
    ``energy_by_class_j`` sums it by cost class (all five keys, DESIGN.md 2b);
    ``low_j``/``high_j`` price every op at its preset bound; ``boundary`` is the preset's;
    ``placement`` says where the resident data went (see :func:`place_memory`).
    """

    preset: str
    energy_j: float
    low_j: float
    high_j: float
    breakdown_j: dict[str, float]
    latency_s: float | None
    assumptions: tuple[str, ...]
    boundary: str = "core"
    energy_by_class_j: dict[str, float] = dataclasses.field(default_factory=dict)
    placement: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["assumptions"] = list(self.assumptions)
        return d


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a ledger's resident data lives on one preset.

    ``spilled_fraction`` of the on-chip accesses go to off-chip memory (``dram_byte``)
    because ``resident_bytes`` exceeds ``onchip_bytes``; ``sram_array_bytes`` is the SRAM
    array size whose energy prices the rest (None: the preset's nominal ``sram_byte``).
    """

    resident_bytes: float
    onchip_bytes: float | None
    spilled_fraction: float
    sram_array_bytes: float | None
    sram_price: OpPrice | None

    def to_dict(self) -> dict[str, float]:
        d = {"resident_bytes": self.resident_bytes, "spilled_fraction": self.spilled_fraction}
        if self.onchip_bytes is not None:
            d["onchip_bytes"] = self.onchip_bytes
        if self.sram_array_bytes is not None:
            d["sram_array_bytes"] = self.sram_array_bytes
        return d


def place_memory(resident_bytes: float, preset: Preset) -> Placement:
    """Place ``resident_bytes`` in ``preset``'s on-chip memory.

    What fits is priced on chip, at the smallest SRAM array (``sram_tiers``) that holds it,
    or the largest array when none does (a big memory is banked into arrays of that size).
    What does not fit spills: that share of every on-chip access is charged as off-chip
    memory. Without ``onchip_bytes`` the preset does not model capacity and nothing spills.
    """
    cap = preset.onchip_bytes
    spilled = 0.0
    if cap is not None and resident_bytes > cap:
        spilled = 1.0 - cap / resident_bytes
    sram_price, array = None, None
    # resident_bytes == 0: the ledger does not say what it holds; the nominal price stands
    if preset.sram_tiers and "sram_byte" in preset.ops and resident_bytes > 0:
        held = resident_bytes if cap is None else min(resident_bytes, cap)
        array, pj = next(((a, e) for a, e in preset.sram_tiers if a >= held), preset.sram_tiers[-1])
        nominal = preset.ops["sram_byte"]
        sram_price = dataclasses.replace(
            nominal, value=pj, low=pj, high=pj,
            source=f"{preset.memory_source} (the {array:,.0f}-byte array holding "
                   f"{held:,.0f} resident bytes)")
    return Placement(resident_bytes, cap, spilled, array, sram_price)


def _placed_counts(per_inf: dict[str, float], place: Placement, preset: Preset) -> dict[str, float]:
    """Move the spilled share of every on-chip memory access (bytes or bits) to ``dram_byte``."""
    onchip = {k: c for k, c in per_inf.items() if c and get_op_kind(k).memory_level == "onchip"}
    if not place.spilled_fraction or not onchip:
        return per_inf
    if "dram_byte" not in preset.ops:
        raise IncompatibleError(
            f"the network holds {place.resident_bytes:,.0f} bytes of weights and state; preset "
            f"{preset.name!r} has {place.onchip_bytes:,.0f} bytes on chip and prices no off-chip "
            "memory (dram_byte) to spill to",
            "use a smaller network or lower weight precision, a preset with off-chip memory, "
            "or several chips where the preset models chip-to-chip links")
    out = dict(per_inf)
    for kind, count in onchip.items():
        moved = count * place.spilled_fraction
        out[kind] -= moved
        out["dram_byte"] = out.get("dram_byte", 0.0) + (moved / 8 if get_op_kind(kind).unit == "bit"
                                                        else moved)
    return out


def modelled_latency_s(per_inf: dict[str, float], preset: Preset) -> float | None:
    """Latency per inference: parallel resources overlap (max), serial ones add.

    ``None`` when neither the preset nor the ledger says anything about time (a
    price list with no timing), rather than a misleading zero.

    Ops on one named resource take ``count * time_s`` in sequence; different
    resources overlap (a roofline: compute and memory proceed together); ops on
    the ``"serial"`` resource and device-time kinds (seconds) add to the total.
    """
    by_resource: dict[str, float] = {}
    serial = 0.0
    timed = not per_inf  # an empty ledger takes no time
    for kind_name, count in per_inf.items():
        if get_op_kind(kind_name).unit == TIME_UNIT:
            serial += count
            timed = True
            continue
        p = preset.ops[kind_name]
        if p.time_s is None:
            continue
        timed = True
        if p.resource == SERIAL:
            serial += count * p.time_s
        else:
            by_resource[p.resource] = by_resource.get(p.resource, 0.0) + count * p.time_s
    return serial + max(by_resource.values(), default=0.0) if timed else None


def price(ledger: OpLedger, preset: Preset) -> EnergyReport:
    """Price ``ledger`` on ``preset``.

    Raises:
        IncompatibleError: the preset has no price for some op kind in the ledger
            (an op is never priced at zero by omission).
    """
    missing = preset.can_price(ledger.totals)
    if missing:
        raise IncompatibleError(
            f"preset {preset.name!r} cannot price op kinds {missing}",
            f"add [ops.<kind>] entries to {preset.path or 'the preset'} or choose a preset that "
            "prices them (`nonvon list`)")
    place = place_memory(ledger.resident_bytes, preset)
    per_inf = _placed_counts(ledger.per_inference(), place, preset)
    prices = dict(preset.ops)
    if place.sram_price is not None:
        prices["sram_byte"] = place.sram_price
    # Low and high are summed like the nominal total (fsum), so low <= nominal <= high holds
    # exactly when the bounds equal the nominal value.
    breakdown, low, high = {}, [], []
    for kind_name, count in per_inf.items():
        p = prices[kind_name]
        scale = 1.0 if get_op_kind(kind_name).unit == TIME_UNIT else PJ  # W*s or pJ
        breakdown[kind_name] = count * p.value * scale
        low.append(count * p.low * scale)
        high.append(count * p.high * scale)
    latency = modelled_latency_s(per_inf, preset)
    if (preset.static_power_w or preset.static_high_w) and latency is None:
        raise IncompatibleError(
            f"preset {preset.name!r} has static power but no timing for this ledger's ops",
            "give time_s for the op kinds, so static energy can be charged over the latency")
    if preset.static_power_w or preset.static_high_w:
        breakdown[STATIC] = preset.static_power_w * latency
        low.append(preset.static_low_w * latency)
        high.append(preset.static_high_w * latency)
    total = math.fsum(breakdown.values())
    by_class = {c: [] for c in COST_CLASSES}
    for kind_name, joules in breakdown.items():
        by_class[STATIC if kind_name == STATIC else get_op_kind(kind_name).cost_class].append(joules)
    assumptions = tuple(f"{k}: {prices[k].source}" for k in sorted(per_inf))
    if STATIC in breakdown:
        assumptions += (f"static {preset.static_power_w} W over the modelled latency: "
                        f"{preset.static_source}",)
    if place.spilled_fraction:
        assumptions += (f"memory: {place.resident_bytes:,.0f} resident bytes exceed the "
                        f"{place.onchip_bytes:,.0f} on chip; {place.spilled_fraction:.1%} of "
                        f"on-chip accesses spilled to dram_byte ({preset.memory_source})",)
    assumptions += tuple(f"{c} absent: {r}" for c, r in sorted(preset.absent.items()))
    return EnergyReport(preset.name, total, math.fsum(low), math.fsum(high), breakdown, latency,
                        assumptions, preset.boundary,
                        {c: math.fsum(v) for c, v in by_class.items()}, place.to_dict())


def landauer_j(ledger: OpLedger | Mapping[str, float], temperature_k: float = 300.0) -> float:
    """Landauer lower bound per inference: kT ln 2 for each output bit overwritten.

    Args:
        ledger: a ledger, or its per-inference counts (as stored in result rows).
    """
    counts = ledger.per_inference() if isinstance(ledger, OpLedger) else ledger
    bits = sum(c * get_op_kind(k).output_bits for k, c in counts.items())
    return bits * BOLTZMANN_J_PER_K * temperature_k * math.log(2)
