"""The op catalog: every operation kind a simulator may count, with its unit.

A ledger may only hold kinds listed here, and a preset may only price kinds
listed here, so a typo is an error rather than a silently unpriced operation.
Paradigm plugins add their kinds with :func:`register_op_kind` (in the module
that defines the simulator) or by adding them to ``_BUILTIN`` below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from nonvon.errors import ConfigError, unknown

__all__ = ["OpKind", "CATALOG", "get_op_kind", "register_op_kind", "TIME_UNIT"]

TIME_UNIT = "s"  # kinds in seconds are device time, priced by a power in watts


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
    """

    name: str
    unit: str
    description: str
    output_bits: int = 0


_BITS = {"fp32": 32, "fp16": 16, "bf16": 16, "int8": 8, "int32": 32}


def _arithmetic() -> list[OpKind]:
    kinds = []
    for dt, bits in _BITS.items():
        kinds += [
            OpKind(f"mac_{dt}", "op", f"{dt} multiply-accumulate (one multiply and one add)", bits),
            OpKind(f"mul_{dt}", "op", f"{dt} multiply", bits),
            OpKind(f"add_{dt}", "op", f"{dt} add or subtract", bits),
            OpKind(f"cmp_{dt}", "op", f"{dt} compare or max (ReLU, max-pooling)", bits),
        ]
    return kinds


_BUILTIN: list[OpKind] = [
    *_arithmetic(),
    OpKind("sram_byte", "byte", "on-chip SRAM / cache access, per byte read or written", 8),
    OpKind("dram_byte", "byte", "off-chip DRAM or HBM access, per byte read or written", 8),
    OpKind("kernel_launch", "event", "one accelerator kernel launch (fixed per-layer overhead)"),
    # -- spiking neuromorphic --------------------------------------------------------
    # -- forward optical -------------------------------------------------------------
    # -- hyperdimensional ------------------------------------------------------------
    # -- variational quantum ---------------------------------------------------------
]

_catalog: dict[str, OpKind] = {k.name: k for k in _BUILTIN}
CATALOG: Mapping[str, OpKind] = MappingProxyType(_catalog)


def get_op_kind(name: str) -> OpKind:
    try:
        return _catalog[name]
    except KeyError:
        raise unknown("op kind", name, list(_catalog)) from None


def register_op_kind(kind: OpKind) -> OpKind:
    """Add a kind to the catalog (idempotent for an identical definition)."""
    old = _catalog.get(kind.name)
    if old is not None and old != kind:
        raise ConfigError(f"op kind {kind.name!r} is already defined differently: {old}",
                          "pick another name or reuse the existing kind")
    if kind.unit not in ("op", "byte", "bit", "event", TIME_UNIT):
        raise ConfigError(f"op kind {kind.name!r} has unknown unit {kind.unit!r}",
                          "use one of op, byte, bit, event, s")
    _catalog[kind.name] = kind
    return kind
