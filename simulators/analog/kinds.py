"""The analog in-memory computing op kinds, registered in the catalog on import.

A crossbar tile computes one matrix-vector multiplication (MVM) in one read: every input row
is driven by a DAC (here a pulse-width-encoded voltage), the column currents sum by Kirchhoff's
law and every used column is digitized by an ADC. The tile read, the converters, the network
between tiles and the pass through a layer are this paradigm's own kinds; the digital
periphery (accumulating partial sums across tiles, scaling, activations) and the activation
buffer use the catalog's digital kinds (``add_int32``, ``mul_int32``, ``cmp_int8``,
``sram_byte``) and the host link ``host_transfer_byte``.
"""

from __future__ import annotations

from nonvon.energy_models import OpKind, register_op_kind

__all__ = ["TILE_MVM", "DAC", "ADC", "LINK", "LAYER_PASS", "KINDS"]

TILE_MVM = "aimc_tile_mvm"
DAC = "aimc_dac_conversion"
ADC = "aimc_adc_conversion"
LINK = "aimc_link_byte"
LAYER_PASS = "aimc_layer_pass"

KINDS = (
    # An analog MVM computes in place: no digital state is overwritten, so no Landauer floor.
    OpKind(TILE_MVM, "event", "one matrix-vector multiplication on one analog crossbar tile "
           "(word lines driven, column currents integrated), whatever the share of its rows and "
           "columns the layer uses", 0, "compute"),
    OpKind(DAC, "op", "one input row of a crossbar tile driven for one MVM (digital input code to "
           "a pulse-width-modulated word-line voltage)", 0, "io"),
    OpKind(ADC, "op", "one crossbar column current digitized for one MVM (column ADC)", 8, "io"),
    OpKind(LINK, "byte", "one byte moved between crossbar cores over the on-chip network "
           "(partial sums to the accumulator, activations to the next layer's tiles)", 0,
           "interconnect"),
    OpKind(LAYER_PASS, "event", "one input vector through one layer: all of its tiles run their "
           "MVM in parallel (carries the latency; its energy is in the other kinds)", 0, "compute"),
)

for _kind in KINDS:
    register_op_kind(_kind)
