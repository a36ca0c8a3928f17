"""Conductance models of the two device families: programming noise, drift and read noise.

Pure functions of target conductances (in microsiemens) and a seeded ``torch.Generator``.

PCM follows the statistical model fitted on measured PCM devices by Nandakumar et al.,
"Phase-change memory models for deep learning training and inference", ICECS 2019
(doi:10.1109/ICECS46596.2019.8964852), with the coefficients IBM's analog toolkit uses for it
(``PCMLikeNoiseModel`` in aihwkit, src/aihwkit/inference/noise/pcm.py, read for this module;
aihwkit itself ships no wheel for our platform, so the model is rewritten here, not imported):

- programming noise ``sigma = c0 + c1 (g/g_max) + c2 (g/g_max)^2`` (µS, fitted at g_max = 25 µS);
- drift ``g(t) = g_prog (t / t0)^-nu`` with ``nu`` normal, its mean and spread functions of
  ``g/g_max``, ``t0 = 20 s`` after programming, ``t = t_inference + t0``;
- accumulated 1/f read noise ``sigma = g(t) Q_s sqrt(ln((t + t_read) / (2 t_read)))``.

RRAM follows the fit of Wan et al., Nature 608, 504 (2022) (NeuRRAM) that aihwkit ships as
``ReRamWan2022NoiseModel`` (src/aihwkit/inference/noise/reram.py): the spread of the
conductance around its target, a 4th-order polynomial in ``g/g_max`` (µS, at g_max = 40 µS),
fitted at 1 s, 1 day and 2 days after programming. RRAM does not drift in PCM's sense; its
conductances relax and spread. Between the fitted times nonvon interpolates the spread
linearly in log time; beyond 2 days it holds the 2-day spread (an assumption: no data).
"""

from __future__ import annotations

import dataclasses
import math

import torch

__all__ = ["DeviceModel", "PCM", "RRAM", "DEVICES", "quantize_levels", "pcm_program",
           "pcm_drift_coefficients", "pcm_at_time", "rram_sigma", "rram_at_time", "program",
           "at_time"]

_ZERO_CLIP = 1e-7


@dataclasses.dataclass(frozen=True)
class DeviceModel:
    """One device family's conductance model.

    Args:
        name: ``"pcm"`` or ``"rram"``.
        g_max_us: largest programmed conductance (µS), the reference of the fits.
        prog_coeff: programming-noise polynomial in ``g/g_max``, lowest order first (µS).
        source: where the model comes from.
    """

    name: str
    g_max_us: float
    prog_coeff: tuple[float, ...]
    source: str


PCM = DeviceModel("pcm", 25.0, (0.26348, 1.9650, -1.1731),
                  "Nandakumar et al., ICECS 2019; coefficients of aihwkit's PCMLikeNoiseModel")
# Wan et al. 2022 fit (aihwkit ReRamWan2022NoiseModel), lowest order first, µS at g_max = 40 µS
RRAM_FITS: dict[float, tuple[float, ...]] = {
    1.0: (0.348, 16.030, -43.853, 45.393, -16.815),
    86400.0: (0.701, 22.086, -50.773, 47.095, -16.458),
    172800.0: (0.782, 20.274, -43.507, 37.062, -11.934),
}
RRAM = DeviceModel("rram", 40.0, RRAM_FITS[1.0],
                   "Wan et al., Nature 2022 (NeuRRAM); fit of aihwkit's ReRamWan2022NoiseModel")
DEVICES = {"pcm": PCM, "rram": RRAM}

PCM_T0_S = 20.0       # first read after programming, the drift reference (aihwkit t_0)
PCM_T_READ_S = 250e-9  # 1/f noise fit parameter (aihwkit t_read)


def _poly(coeff: tuple[float, ...], g_rel: torch.Tensor) -> torch.Tensor:
    out = torch.full_like(g_rel, coeff[0])
    power = torch.ones_like(g_rel)
    for c in coeff[1:]:
        power = power * g_rel
        out = out + c * power
    return out


def quantize_levels(g: torch.Tensor, g_max: float, levels: int) -> torch.Tensor:
    """Round target conductances to ``levels`` equally spaced values in [0, g_max]
    (``levels = 0``: continuous)."""
    if levels <= 0:
        return g
    step = g_max / (levels - 1)
    return torch.round(g / step).clamp(0, levels - 1) * step


def pcm_program(g_target: torch.Tensor, gen: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    """Programmed PCM conductances: the target plus conductance-dependent Gaussian noise."""
    sigma = _poly(PCM.prog_coeff, g_target / PCM.g_max_us)
    noise = torch.randn(g_target.shape, generator=gen, dtype=g_target.dtype)
    return (g_target + scale * sigma * noise).clamp(min=0.0)


def pcm_drift_coefficients(g_target: torch.Tensor, gen: torch.Generator,
                           scale: float = 1.0) -> torch.Tensor:
    """Each device's drift exponent ``nu`` (drawn once, at programming)."""
    log_g = torch.log(torch.clamp(g_target.abs() / PCM.g_max_us, min=_ZERO_CLIP))
    mu = (-0.0155 * log_g + 0.0244).clamp(0.049, 0.1)
    sig = (-0.0125 * log_g - 0.0059).clamp(0.008, 0.045)
    nu = (mu + sig * torch.randn(g_target.shape, generator=gen, dtype=g_target.dtype)).abs()
    return nu * scale


def pcm_at_time(g_prog: torch.Tensor, nu: torch.Tensor, t_inference_s: float,
                gen: torch.Generator, read_scale: float = 1.0) -> torch.Tensor:
    """PCM conductances ``t_inference_s`` after the drift reference: drifted, plus the 1/f
    read noise accumulated since programming."""
    t = t_inference_s + PCM_T0_S
    g = g_prog * (t / PCM_T0_S) ** (-nu) if t > PCM_T0_S else g_prog
    q_s = (0.0088 / ((g_prog.abs() / PCM.g_max_us) ** 0.65).clamp(min=1e-3)).clamp(max=0.2)
    sigma = q_s * math.sqrt(math.log((t + PCM_T_READ_S) / (2 * PCM_T_READ_S)))
    noise = torch.randn(g.shape, generator=gen, dtype=g.dtype)
    return (g + g.abs() * read_scale * sigma * noise).clamp(min=0.0)


def rram_sigma(g_target: torch.Tensor, t_s: float) -> torch.Tensor:
    """The spread (µS) of RRAM conductances around their target ``t_s`` seconds after
    programming: the Wan et al. fit at 1 s, 1 day or 2 days, interpolated in log time between
    them, held outside them."""
    g_rel = g_target / RRAM.g_max_us
    times = sorted(RRAM_FITS)
    t = min(max(t_s, times[0]), times[-1])
    hi = next(i for i, tt in enumerate(times) if tt >= t)
    if times[hi] == t:
        return _poly(RRAM_FITS[t], g_rel)
    lo = hi - 1
    w = (math.log(t) - math.log(times[lo])) / (math.log(times[hi]) - math.log(times[lo]))
    return (1 - w) * _poly(RRAM_FITS[times[lo]], g_rel) + w * _poly(RRAM_FITS[times[hi]], g_rel)


def rram_at_time(g_target: torch.Tensor, t_s: float, gen: torch.Generator,
                 scale: float = 1.0) -> torch.Tensor:
    """RRAM conductances ``t_s`` seconds after programming (a fresh draw around the target, as
    in the fit: its spread grows with time)."""
    noise = torch.randn(g_target.shape, generator=gen, dtype=g_target.dtype)
    return (g_target + scale * rram_sigma(g_target, t_s) * noise).clamp(min=0.0)


def program(device: DeviceModel, g_target: torch.Tensor, gen: torch.Generator, *,
            prog_scale: float = 1.0, drift_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g_prog, drift_state)`` of freshly programmed devices: for PCM the programmed
    conductances and drift exponents; for RRAM the targets twice (its state at a time is drawn
    from the target, :func:`rram_at_time`)."""
    if device.name == "pcm":
        g_prog = pcm_program(g_target, gen, prog_scale)
        return g_prog, pcm_drift_coefficients(g_target, gen, drift_scale)
    return g_target, g_target


def at_time(device: DeviceModel, g_prog: torch.Tensor, state: torch.Tensor, t_s: float,
            gen: torch.Generator, *, read_scale: float = 1.0, prog_scale: float = 1.0) -> torch.Tensor:
    """The conductances read ``t_s`` seconds after programming."""
    if device.name == "pcm":
        return pcm_at_time(g_prog, state, t_s, gen, read_scale)
    return rram_at_time(state, t_s, gen, prog_scale)
