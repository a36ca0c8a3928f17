"""Weights on crossbar tiles: the mapping, the programmed conductances and the analog MVM.

A layer's weight matrix ``W`` (``out x in``) is cut into row slices of at most ``tile_rows``
inputs, split evenly as IBM's aihwkit-lightning splits them (``AnalogLinear.get_split_sizes``),
and column blocks of at most ``tile_cols`` outputs; each (slice, block) pair is one tile. A
signed weight is a differential pair of devices, ``w = (G+ - G-) / g_max * w_max``, with
``w_max`` the largest magnitude in its column of its slice (the per-column scale the digital
periphery undoes after the ADC).

One MVM of an input vector through a tile (:func:`analog_linear`):

1. the slice's inputs are clipped to the learned input range ``r`` and quantized by a
   ``dac_bits`` DAC (``2^b - 1`` levels over ``[-r, r]``), encoded as pulse widths;
2. the column currents sum the products with the conductances read at that time;
3. per-MVM output noise (circuit and short-term read noise) is added;
4. each column is digitized by an ``adc_bits`` ADC over ``[-B, B]``, ``B = r * adc_range *
   w_max`` (``2^b - 1`` levels, clipped);
5. the periphery scales by the global drift compensation and accumulates the slices.

With noise and drift switched off this is exactly aihwkit-lightning's ``AnalogLinear`` in
evaluation mode with the same DAC, ADC, bound and tile size (tests/test_analog_toolkit.py).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from nonvon.simulators.analog.devices import DeviceModel, at_time, program, quantize_levels

__all__ = ["split_sizes", "TileMap", "ProgrammedLayer", "program_layer", "read_layer",
           "analog_linear", "quantize_symmetric"]


def split_sizes(size: int, max_size: int) -> list[int]:
    """``size`` cut into the fewest near-equal parts of at most ``max_size``."""
    n = -(-size // max_size)
    base, extra = divmod(size, n)
    return [base + (i < extra) for i in range(n)]


@dataclasses.dataclass(frozen=True)
class TileMap:
    """How one ``in_features x out_features`` layer lies on ``tile_rows x tile_cols`` tiles,
    and what one input vector through it costs in tile operations."""

    in_features: int
    out_features: int
    tile_rows: int
    tile_cols: int

    @property
    def row_slices(self) -> list[int]:
        return split_sizes(self.in_features, self.tile_rows)

    @property
    def col_blocks(self) -> list[int]:
        return split_sizes(self.out_features, self.tile_cols)

    @property
    def n_tiles(self) -> int:
        return len(self.row_slices) * len(self.col_blocks)

    def counts(self) -> dict[str, int]:
        """Per input vector: tile MVMs, DAC conversions (every used row of every tile), ADC
        conversions (every used column of every tile), partial sums accumulated across row
        slices, and the outputs."""
        ns, nb = len(self.row_slices), len(self.col_blocks)
        return {"tile_mvm": ns * nb, "dac": self.in_features * nb, "adc": self.out_features * ns,
                "accumulate": self.out_features * (ns - 1), "outputs": self.out_features}


def quantize_symmetric(x: torch.Tensor, bound: torch.Tensor | float, bits: int) -> torch.Tensor:
    """Round to ``2^bits - 1`` levels over ``[-bound, bound]`` and clip (aihwkit-lightning's
    ``UniformQuantize`` with ``res = 2^bits - 2`` followed by its clamp)."""
    step = 2 * bound / (2**bits - 2)
    if isinstance(step, torch.Tensor):
        step = step.clamp_min(torch.finfo(x.dtype).tiny)
    q = torch.round(x / step) * step
    return torch.minimum(torch.maximum(q, -bound), bound) if isinstance(bound, torch.Tensor) \
        else q.clamp(-bound, bound)


@dataclasses.dataclass
class ProgrammedLayer:
    """One layer's devices after programming: per row slice, the G+ and G- arrays (µS), their
    drift state, the per-column scale ``w_max``, and the input range."""

    tiles: TileMap
    g_prog: list[tuple[torch.Tensor, torch.Tensor]]
    state: list[tuple[torch.Tensor, torch.Tensor]]
    w_max: list[torch.Tensor]
    input_range: torch.Tensor
    bias: torch.Tensor | None


def program_layer(weight: torch.Tensor, bias: torch.Tensor | None, input_range: torch.Tensor,
                  device: DeviceModel, *, tile_rows: int, tile_cols: int, levels: int,
                  gen: torch.Generator, prog_scale: float = 1.0,
                  drift_scale: float = 1.0) -> ProgrammedLayer:
    """Map ``weight`` onto differential pairs of ``device`` and program them once."""
    tiles = TileMap(weight.shape[1], weight.shape[0], tile_rows, tile_cols)
    g_prog, state, w_max = [], [], []
    lo = 0
    for rows in tiles.row_slices:
        w = weight[:, lo:lo + rows].detach().double()
        wm = w.abs().amax(dim=1, keepdim=True)
        wm = torch.where(wm > 0, wm, torch.ones_like(wm))
        g = device.g_max_us
        pair = [quantize_levels(w.clamp(min=0) / wm * g, g, levels),
                quantize_levels((-w).clamp(min=0) / wm * g, g, levels)]
        progs = [program(device, t, gen, prog_scale=prog_scale, drift_scale=drift_scale)
                 for t in pair]
        g_prog.append((progs[0][0], progs[1][0]))
        state.append((progs[0][1], progs[1][1]))
        w_max.append(wm)
        lo += rows
    return ProgrammedLayer(tiles, g_prog, state, w_max, input_range.detach().double(),
                           None if bias is None else bias.detach().double())


def read_layer(layer: ProgrammedLayer, device: DeviceModel, t_s: float | None,
               gen: torch.Generator, *, read_scale: float = 1.0,
               prog_scale: float = 1.0) -> list[torch.Tensor]:
    """The effective weights of each row slice read ``t_s`` seconds after programming
    (``None``: the programmed conductances, no drift or read noise)."""
    out = []
    for (gp, gm), (sp, sm), wm in zip(layer.g_prog, layer.state, layer.w_max, strict=True):
        if t_s is not None:
            gp = at_time(device, gp, sp, t_s, gen, read_scale=read_scale, prog_scale=prog_scale)
            gm = at_time(device, gm, sm, t_s, gen, read_scale=read_scale, prog_scale=prog_scale)
        out.append((gp - gm) / device.g_max_us * wm)
    return out


def analog_linear(x: torch.Tensor, weights: list[torch.Tensor], layer: ProgrammedLayer, *,
                  dac_bits: int | None, adc_bits: int | None, adc_range: float,
                  out_noise: float = 0.0, gdc: list[float] | None = None,
                  gen: torch.Generator | None = None) -> torch.Tensor:
    """``x`` (batch x in) through the layer's tiles, read as ``weights`` (one per row slice).

    ``gdc``: the global drift compensation factor of each row slice (1: none). ``out_noise``:
    the per-MVM output noise, relative to ``w_max * r`` per slice and divided by
    sqrt(row slices), as in aihwkit-lightning's training-time ``out_noise``."""
    out = 0.0
    lo = 0
    n_slices = len(weights)
    for s, (w, wm) in enumerate(zip(weights, layer.w_max, strict=True)):
        rows = w.shape[1]
        r = layer.input_range[s]
        xs = x[:, lo:lo + rows].clamp(-r, r)
        if dac_bits is not None:
            xs = quantize_symmetric(xs, r, dac_bits)
        y = xs @ w.T
        if out_noise > 0:
            y = y + wm.view(1, -1) * (out_noise / math.sqrt(n_slices) * r) * torch.randn(
                y.shape, generator=gen, dtype=y.dtype)
        if adc_bits is not None:
            y = quantize_symmetric(y, r * adc_range * wm.view(1, -1), adc_bits)
        if gdc is not None:
            y = y * gdc[s]
        out = out + y
        lo += rows
    return out + layer.bias if layer.bias is not None else out
