"""The energy model: a pure function from (ledger, preset) to joules and seconds."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from nonvon.energy_models.catalog import TIME_UNIT, get_op_kind
from nonvon.energy_models.ledger import OpLedger
from nonvon.energy_models.preset import SERIAL, Preset
from nonvon.errors import IncompatibleError

__all__ = ["EnergyReport", "price", "landauer_j", "BOLTZMANN_J_PER_K"]

PJ = 1e-12
BOLTZMANN_J_PER_K = 1.380649e-23  # exact, SI 2019
STATIC = "static"


@dataclasses.dataclass(frozen=True)
class EnergyReport:
    """Energy and modelled latency per inference on one preset.

    ``breakdown_j`` maps each op kind (and ``"static"``) to joules per inference;
    ``low_j``/``high_j`` price every op at its preset bound.
    """

    preset: str
    energy_j: float
    low_j: float
    high_j: float
    breakdown_j: dict[str, float]
    latency_s: float | None
    assumptions: tuple[str, ...]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["assumptions"] = list(self.assumptions)
        return d


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
    per_inf = ledger.per_inference()
    # Low and high are summed like the nominal total (fsum), so low <= nominal <= high holds
    # exactly when the bounds equal the nominal value.
    breakdown, low, high = {}, [], []
    for kind_name, count in per_inf.items():
        p = preset.ops[kind_name]
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
    assumptions = tuple(f"{k}: {preset.ops[k].source}" for k in sorted(per_inf))
    if STATIC in breakdown:
        assumptions += (f"static {preset.static_power_w} W over the modelled latency: "
                        f"{preset.static_source}",)
    return EnergyReport(preset.name, total, math.fsum(low), math.fsum(high), breakdown, latency,
                        assumptions)


def landauer_j(ledger: OpLedger | Mapping[str, float], temperature_k: float = 300.0) -> float:
    """Landauer lower bound per inference: kT ln 2 for each output bit overwritten.

    Args:
        ledger: a ledger, or its per-inference counts (as stored in result rows).
    """
    counts = ledger.per_inference() if isinstance(ledger, OpLedger) else ledger
    bits = sum(c * get_op_kind(k).output_bits for k, c in counts.items())
    return bits * BOLTZMANN_J_PER_K * temperature_k * math.log(2)
