"""Op catalog, ledger, presets and pricing: what counted operations cost."""

from nonvon.energy_models.catalog import CATALOG, OpKind, get_op_kind, register_op_kind
from nonvon.energy_models.ledger import OpLedger
from nonvon.energy_models.preset import OpPrice, Preset, load_preset, preset_from_dict
from nonvon.energy_models.pricing import EnergyReport, landauer_j, price

__all__ = [
    "CATALOG", "OpKind", "get_op_kind", "register_op_kind", "OpLedger", "OpPrice", "Preset",
    "load_preset", "preset_from_dict", "EnergyReport", "price", "landauer_j",
]
