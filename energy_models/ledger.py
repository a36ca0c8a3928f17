"""The ledger: what a simulation executed, counted per op kind."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from types import MappingProxyType

from nonvon.energy_models.catalog import TIME_UNIT, get_op_kind
from nonvon.errors import ConfigError

__all__ = ["OpLedger"]


@dataclasses.dataclass(frozen=True)
class OpLedger:
    """Totals of counted operations over ``n_inferences`` evaluated samples.

    Counts of ops, bytes and events are whole numbers; device-time kinds (unit
    ``s``) are seconds. Pricing uses :meth:`per_inference`, the mean over the
    evaluated samples. Ledgers are immutable; ``a + b`` merges two ledgers.

    ``resident_bytes`` is what the counted on-chip memory accesses (``sram_byte``) must hold
    resident: weights and state at their stored precision. Pricing places it in the preset's
    on-chip memory and spills what does not fit (DESIGN.md 2b); 0 means nothing resident.
    """

    totals: Mapping[str, float]
    n_inferences: int
    resident_bytes: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.n_inferences, int) or self.n_inferences < 1:
            raise ConfigError(f"ledger n_inferences={self.n_inferences!r} must be a positive int")
        clean = {}
        for name, count in self.totals.items():
            kind = get_op_kind(name)  # raises on an unknown kind
            count = float(count)
            if not math.isfinite(count) or count < 0:
                raise ConfigError(f"ledger count for {name!r} is {count}; counts are finite and >= 0")
            if kind.unit != TIME_UNIT and count != round(count):
                raise ConfigError(f"ledger count for {name!r} is {count}, not a whole number",
                                  "count totals over samples, not per-sample means")
            clean[name] = count
        object.__setattr__(self, "totals", MappingProxyType(dict(sorted(clean.items()))))
        rb = self.resident_bytes
        if isinstance(rb, bool) or not isinstance(rb, (int, float)) or not math.isfinite(rb) or rb < 0:
            raise ConfigError(f"ledger resident_bytes={rb!r} must be a finite number >= 0",
                              "give the bytes of weights and state the on-chip accesses hold")
        object.__setattr__(self, "resident_bytes", float(rb))

    @classmethod
    def empty(cls, n_inferences: int = 1) -> OpLedger:
        return cls({}, n_inferences)

    def per_inference(self) -> dict[str, float]:
        return {k: v / self.n_inferences for k, v in self.totals.items()}

    def __add__(self, other: OpLedger) -> OpLedger:
        if not isinstance(other, OpLedger):
            return NotImplemented
        merged = dict(self.totals)
        for k, v in other.totals.items():
            merged[k] = merged.get(k, 0.0) + v
        return OpLedger(merged, self.n_inferences + other.n_inferences,
                        max(self.resident_bytes, other.resident_bytes))

    def scaled(self, factor: int) -> OpLedger:
        """The same ops repeated ``factor`` times per inference (e.g. timesteps, shots)."""
        return OpLedger({k: v * factor for k, v in self.totals.items()}, self.n_inferences,
                        self.resident_bytes)

    def with_resident_bytes(self, resident_bytes: float) -> OpLedger:
        return OpLedger(self.totals, self.n_inferences, resident_bytes)

    def to_dict(self) -> dict:
        return {"totals": dict(self.totals), "n_inferences": self.n_inferences,
                "resident_bytes": self.resident_bytes}

    @classmethod
    def from_dict(cls, d: Mapping) -> OpLedger:
        try:
            return cls(dict(d["totals"]), int(d["n_inferences"]),
                       d.get("resident_bytes", 0.0))
        except (KeyError, TypeError) as e:
            raise ConfigError(f"malformed ledger: missing {e}",
                              "a ledger is {'totals': {kind: count}, 'n_inferences': N}") from None
