"""The op catalog: every operation kind a simulator may count, with its unit.

A ledger may only hold kinds listed here, and a preset may only price kinds
listed here, so a typo is an error rather than a silently unpriced operation.
Paradigm plugins add their kinds with :func:`register_op_kind` (in the module
that defines the simulator) or by adding them to ``_BUILTIN`` below; a preset may declare
the kinds it prices in its ``[kinds]`` table (energy_models.preset), so that it prices
shared results without the plugin that counts them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from nonvon.errors import ConfigError, unknown

__all__ = ["OpKind", "CATALOG", "ORIGINS", "get_op_kind", "register_op_kind", "unregister_op_kind",
           "clash", "TIME_UNIT", "COST_CLASSES", "MEMORY_LEVELS"]

TIME_UNIT = "s"  # kinds in seconds are device time, priced by a power in watts

#: Every op kind belongs to one cost class (DESIGN.md section 2b); a preset's boundary says
#: which classes it must price.
COST_CLASSES = ("compute", "memory", "interconnect", "io", "static")
#: Where a ``memory`` kind's bytes live: placement (energy_models.pricing) moves on-chip
#: accesses off chip when the data does not fit.
MEMORY_LEVELS = ("register", "onchip", "offchip")


@dataclasses.dataclass(frozen=True)
class OpKind:
    """One countable operation.

    Args:
        name: identifier used in ledgers and presets, e.g. ``"mac_fp32"``.
        unit: what one count is: ``"op"``, ``"byte"``, ``"bit"``, ``"event"`` or ``"s"``.
        description: one line for docs and reports.
        output_bits: bits of state the op irreversibly overwrites at least once;
            the Landauer bound of a ledger is ``sum(count * output_bits) * kT ln 2``.
            ``0`` for kinds with no digital meaning (analog, optical, time).
        cost_class: one of :data:`COST_CLASSES` (required: a kind with no class could not
            be checked against a preset's boundary).
        memory_level: for ``memory`` kinds, one of :data:`MEMORY_LEVELS`.
    """

    name: str
    unit: str
    description: str
    output_bits: int = 0
    cost_class: str = ""
    memory_level: str = ""


C, M, N, IO, S = COST_CLASSES  # compute, memory, interconnect, io, static

_BITS = {"fp32": 32, "fp16": 16, "bf16": 16, "int8": 8, "int32": 32}


def _arithmetic() -> list[OpKind]:
    kinds = []
    for dt, bits in _BITS.items():
        kinds += [
            OpKind(f"mac_{dt}", "op", f"{dt} multiply-accumulate (one multiply and one add)", bits, C),
            OpKind(f"mul_{dt}", "op", f"{dt} multiply", bits, C),
            OpKind(f"add_{dt}", "op", f"{dt} add or subtract", bits, C),
            OpKind(f"cmp_{dt}", "op", f"{dt} compare or max (ReLU, max-pooling)", bits, C),
        ]
    return kinds


_BUILTIN: list[OpKind] = [
    *_arithmetic(),
    # -- memory, by level (placement may move on-chip accesses off chip) ---------------
    OpKind("sram_byte", "byte", "on-chip SRAM / cache access, per byte read or written", 8, M,
           "onchip"),
    OpKind("dram_byte", "byte", "off-chip DRAM or HBM access, per byte read or written", 8, M,
           "offchip"),
    # -- host interface --------------------------------------------------------------
    # kernel_launch is a host command to the device: io, not arithmetic.
    OpKind("kernel_launch", "event", "one accelerator kernel launch (fixed per-layer overhead)",
           0, IO),
    # Moving bits over a link overwrites nothing in principle (like spike routing), so no
    # Landauer floor is charged for it.
    OpKind("host_transfer_byte", "byte", "one byte moved between the host and the device "
           "(inputs in, class scores out) over its host link (PCIe, USB, AXI)", 0, IO),
    # -- spiking neuromorphic --------------------------------------------------------
    # output_bits: a synaptic event accumulates (at least) an 8-bit weight into the target's
    # input; an active neuron update rewrites a 16-bit membrane state (narrower than most
    # chips' registers, so the Landauer floor stays a floor); routing moves bits reversibly.
    OpKind("synop", "event", "one synaptic event: a spike delivered to one synapse "
           "(weight read, accumulated into the target neuron)", 8, C),
    OpKind("neuron_update", "op", "one neuron updated in one timestep with input or non-zero "
           "state (leak, integrate, threshold)", 16, C),
    OpKind("neuron_update_idle", "op", "one neuron at rest (zero state, no input) visited in one "
           "timestep", 0, C),
    OpKind("spike_local", "event", "one spike generated and delivered to its targets' core "
           "without a router hop", 1, N),
    OpKind("spike_out", "event", "one spike emitted by a neuron (generated in the soma, before "
           "its messages are routed)", 1, C),
    OpKind("spike_hop", "event", "one spike packet crossing one router hop between cores/tiles",
           0, N),
    OpKind("input_spike", "event", "one input spike injected into the chip from the host or "
           "sensor interface (encoding and injection; moved, not erased: no Landauer floor)",
           0, IO),
    OpKind("chip_timestep", "event", "one algorithmic timestep of a synchronous chip (barrier "
           "and per-step bookkeeping; carries the time per step)", 0, C),
    OpKind("emulation_s", "s", "seconds of device time the network runs per inference "
           "(timesteps x hardware step duration), priced by the power above static", 0, C),
    # -- forward optical -------------------------------------------------------------
    OpKind("laser_optical_zj", "op", "one zeptojoule (1e-21 J) of optical energy emitted by the "
           "laser; priced as 1e-9 pJ / wall-plug efficiency", 0, C),
    # Converters are counted in conversion steps, 2^bits per sample, so their energy follows the
    # Walden figure of merit (energy per sample = FoM x 2^bits; Walden, IEEE JSAC 17, 539 (1999))
    # and a simulator's dac_bits / adc_bits change what a conversion costs.
    OpKind("dac_conversion_step", "op", "one conversion step of a digital-to-analog converter "
           "driving an optical modulator or SLM pixel (a b-bit sample is 2^b steps); priced at "
           "the Walden figure of merit", 0, IO),
    OpKind("modulator_symbol", "op", "one analog symbol written onto light by an electro-optic "
           "modulator", 0, IO),
    OpKind("photodetector_read", "op", "one photodetector + transimpedance-amplifier readout",
           0, IO),
    OpKind("adc_conversion_step", "op", "one conversion step of an analog-to-digital converter "
           "reading a detector (a b-bit sample is 2^b steps); priced at the Walden figure of "
           "merit", 0, IO),
    # Thermal tuning is power over time, so it is static, although counted per symbol period.
    OpKind("phase_shifter_hold", "op", "one phase shifter holding pi rad for one modulation "
           "symbol period (thermo-optic power grows with the phase held); priced as P_pi x "
           "symbol period", 0, S),
    OpKind("optical_pass", "event", "one input vector through one optical layer: one modulation "
           "symbol period of the optical core (carries the latency; its energy is in the other "
           "kinds)", 0, C),
    # -- hyperdimensional ------------------------------------------------------------
    OpKind("xor_bit", "bit", "one 1-bit XOR of binary hypervectors (binding, or comparing a "
           "query with a stored vector)", 1, C),
    OpKind("popcount_bit", "bit", "one bit into a population count (the adder tree that counts "
           "ones: Hamming distance or majority bundling)", 1, C),
    OpKind("hv_read_bit", "bit", "one bit of a stored hypervector read from the item or "
           "associative memory", 0, M, "onchip"),
    # -- variational quantum ---------------------------------------------------------
    # Counted per shot. A QPU preset gives each its duration (time_s) and the system's wall
    # power as static power: the energy of a shot is its time at system power. Gates are
    # unitary (no bits erased); a measurement writes one classical bit.
    OpKind("qpu_gate_1q", "op", "one physical single-qubit gate pulse on a QPU in one shot "
           "(virtual RZ frame changes excluded)", 0, C),
    OpKind("qpu_gate_2q", "op", "one two-qubit entangling gate on a QPU in one shot", 0, C),
    OpKind("qpu_layer_1q", "event", "one critical-path layer of single-qubit gates in one shot "
           "(the time of a QPU that runs gates on different qubits in parallel)", 0, C),
    OpKind("qpu_layer_2q", "event", "one critical-path layer holding a two-qubit gate in one "
           "shot", 0, C),
    OpKind("qpu_measure", "op", "one qubit measured in one shot", 1, IO),
    OpKind("qpu_readout", "event", "one readout window (all measured qubits at once) in one shot",
           0, IO),
    OpKind("qpu_shot", "event", "one shot's reset and repetition delay before the next shot",
           0, C),
]

_catalog: dict[str, OpKind] = {}
CATALOG: Mapping[str, OpKind] = MappingProxyType(_catalog)
#: Who defined each kind: ``"nonvon"`` for the built-ins, a plugin's module, or a preset file
#: (``preset NAME (PATH)``) that declared it in its ``[kinds]`` table.
_origins: dict[str, str] = {}
ORIGINS: Mapping[str, str] = MappingProxyType(_origins)


def get_op_kind(name: str) -> OpKind:
    try:
        return _catalog[name]
    except KeyError:
        raise unknown("op kind", name, list(_catalog)) from None


def clash(old: OpKind, new: OpKind) -> list[str]:
    """What two definitions of one kind disagree on that pricing depends on (unit, cost
    class, memory level); a description or Landauer bits differing is no clash."""
    return [f"{f} {getattr(old, f)!r} vs {getattr(new, f)!r}"
            for f in ("unit", "cost_class", "memory_level") if getattr(old, f) != getattr(new, f)]


def register_op_kind(kind: OpKind, origin: str | None = None) -> OpKind:
    """Add a kind to the catalog (idempotent for an identical definition).

    Args:
        kind: the definition.
        origin: who defines it, shown by ``nonvon list --ops`` and in clash errors (default:
            the calling module).
    """
    if origin is None:
        import inspect

        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        origin = caller.f_globals.get("__name__", "?") if caller is not None else "?"
    old = _catalog.get(kind.name)
    if old is not None and old != kind:
        raise ConfigError(f"op kind {kind.name!r} is already defined differently by "
                          f"{_origins.get(kind.name, '?')}: {old}",
                          "pick another name or reuse the existing kind")
    if kind.unit not in ("op", "byte", "bit", "event", TIME_UNIT):
        raise ConfigError(f"op kind {kind.name!r} has unknown unit {kind.unit!r}",
                          "use one of op, byte, bit, event, s")
    if kind.cost_class not in COST_CLASSES:
        raise ConfigError(f"op kind {kind.name!r} has cost_class {kind.cost_class!r}",
                          f"give cost_class=one of {', '.join(COST_CLASSES)} (DESIGN.md 2b)")
    if (kind.cost_class == "memory") != bool(kind.memory_level) or (
            kind.memory_level and kind.memory_level not in MEMORY_LEVELS):
        raise ConfigError(f"op kind {kind.name!r}: memory_level={kind.memory_level!r} with "
                          f"cost_class={kind.cost_class!r}",
                          f"memory kinds name a level ({', '.join(MEMORY_LEVELS)}); others none")
    _catalog[kind.name] = kind
    _origins.setdefault(kind.name, origin)
    return kind


def unregister_op_kind(name: str) -> None:
    """Remove a kind (a preset that declared it failed to load after registering it)."""
    _catalog.pop(name, None)
    _origins.pop(name, None)


for _kind in _BUILTIN:  # built-ins pass the same checks as a plugin's kinds
    register_op_kind(_kind, "nonvon")
