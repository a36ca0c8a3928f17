"""The optical device model shared by both simulators: validation, converters, detection, phase errors.

Everything here is a pure function of its arguments (random draws take an explicit
``torch.Generator``), so each non-ideality can be tested on its own.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from nonvon import config
from nonvon.cells import torch_threads
from nonvon.context import RunContext
from nonvon.errors import ConfigError
from nonvon.result import Result
from nonvon.tasks import Task

__all__ = [
    "PLANCK_J_S", "LIGHT_M_S", "photon_energy_j", "check_positive", "check_nonneg", "check_bits",
    "check_choice", "quantize_signed", "quantize_phase", "held_phase", "crosstalk",
    "homodyne_detect", "intensity_detect", "db_to_amplitude", "ZJ", "torch_threads",
    "REFERENCE_BITS", "conversion_steps", "check_budgets", "ChipOptions",
]

PLANCK_J_S = 6.62607015e-34  # exact, SI 2019
LIGHT_M_S = 299_792_458.0    # exact
ZJ = 1e-21
REFERENCE_BITS = 8  # the resolution an ideal (bits=None) converter is priced at


def photon_energy_j(wavelength_m: float) -> float:
    """h c / lambda: 1.28e-19 J at 1550 nm."""
    return PLANCK_J_S * LIGHT_M_S / wavelength_m


# -- validation: nonvon.config's checks, in the argument order the optical configs use -------
def check_positive(name: str, value, example: str, *, integer: bool = False) -> None:
    if integer:
        config.positive_int(name, value, example=example)
    else:
        config.positive(name, value, example=example)


def check_nonneg(name: str, value, example: str, what: str = "") -> None:
    config.non_negative(name, value, example=example, what=what)


def check_bits(name: str, value, *, allow_none: bool = True, max_bits: int = 24) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= max_bits:
        raise ConfigError(f"{name}={value!r} must be an integer number of bits in [1, {max_bits}]"
                          + (" or None (ideal)" if allow_none else ""),
                          f"e.g. {name}=8" + (f", or {name}=None for no quantization" if allow_none else ""))


def check_choice(name: str, value, choices) -> None:
    config.choice(name, value, choices)


def db_to_amplitude(loss_db: float) -> float:
    """Field amplitude transmission of a loss in dB (power 10^(-dB/10))."""
    return 10.0 ** (-loss_db / 20.0)


def check_budgets(name: str, value, example: str) -> tuple[float, ...]:
    """A tuple of positive, finite photon budgets (may be empty: no curve)."""
    budgets = config.numbers_of(name, value, config.positive, example=example,
                                what=" (a number of photons)")
    return tuple(float(b) for b in budgets)


# -- converters -------------------------------------------------------------------------------
def conversion_steps(bits: int | None) -> int:
    """Conversion steps of one ``bits``-bit sample, ``2^bits`` (the Walden figure-of-merit scaling).

    Converter energy per sample is priced as ``FoM x 2^bits`` (R. H. Walden, IEEE J. Sel. Areas
    Commun. 17, 539 (1999)), so the simulators count ``2^bits`` steps per conversion. An ideal
    converter (``bits=None``, simulated without rounding) is priced at ``REFERENCE_BITS``.
    """
    return 2 ** (REFERENCE_BITS if bits is None else bits)


def quantize_signed(x: torch.Tensor, bits: int | None, full_scale: float | torch.Tensor) -> torch.Tensor:
    """Clip to ``[-full_scale, full_scale]`` and round to a signed ``bits``-bit code (mid-tread).

    ``2^(bits-1) - 1`` positive levels, the same negative, and zero (``bits=1``: the sign
    alone, levels -fs, 0, +fs collapse to +-fs). ``bits=None`` clips only (an ideal converter
    of that range).
    """
    x = torch.maximum(torch.minimum(x, torch.as_tensor(full_scale)), -torch.as_tensor(full_scale))
    if bits is None:
        return x
    if bits == 1:
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype) * full_scale
    levels = 2 ** (bits - 1) - 1
    return torch.round(x / full_scale * levels) / levels * full_scale


def held_phase(p: torch.Tensor) -> torch.Tensor:
    """The phase a shifter holds, wrapped to [0, 2 pi) (a heater cannot cool below ambient)."""
    r = torch.remainder(p, 2 * math.pi)
    return torch.where(r >= 2 * math.pi, r - 2 * math.pi, r)  # remainder of -tiny rounds to 2 pi


def quantize_phase(p: torch.Tensor, bits: int | None) -> torch.Tensor:
    """Round held phases to ``2^bits`` levels over [0, 2 pi) (the phase DAC's resolution)."""
    p = held_phase(p)
    if bits is None:
        return p
    step = 2 * math.pi / 2 ** bits
    return held_phase(torch.round(p / step) * step)


def crosstalk(p: torch.Tensor, neighbours: np.ndarray | torch.Tensor, kappa: float) -> torch.Tensor:
    """Nearest-neighbour thermal crosstalk: each shifter also sees ``kappa`` x each neighbour's phase.

    A linear model in the held phases (heater power is proportional to phase for a
    thermo-optic shifter), with ``neighbours`` an ``(n, k)`` index array, -1 for none; the
    uncompensated case (no crosstalk-aware calibration).
    """
    if kappa == 0:
        return p
    nb = torch.as_tensor(np.asarray(neighbours), dtype=torch.long)
    pad = torch.cat([p, p.new_zeros(1)])  # index -1 reads the appended zero
    return p + kappa * pad[nb].sum(-1)


# -- detection --------------------------------------------------------------------------------
def homodyne_detect(beta: torch.Tensor, lo_photons: float, *,
                    generator: torch.Generator | None, shot_noise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced homodyne readout of the real quadrature of ``beta`` (field in sqrt(photons)).

    The signal and a local oscillator of ``lo_photons`` (real amplitude ``g``) meet on a 50:50
    coupler; the two photodiodes count ``n_pm ~ Poisson(|g +- beta|^2 / 2)`` and the estimate
    is ``(n_plus - n_minus) / (2 g)``, unbiased for ``Re(beta)`` with variance
    ``(g^2 + |beta|^2) / (4 g^2)`` -- the shot noise of coherent detection (vacuum-limited,
    1/4, when the LO dominates).

    Returns:
        (estimate of Re(beta), mean photons absorbed by both diodes), both shaped like ``beta``.
    """
    g = math.sqrt(lo_photons)
    plus = (g + beta).abs() ** 2 / 2
    minus = (g - beta).abs() ** 2 / 2
    detected = plus + minus
    if not shot_noise:
        return beta.real, detected
    n_plus = torch.poisson(plus, generator=generator)
    n_minus = torch.poisson(minus, generator=generator)
    return (n_plus - n_minus) / (2 * g), detected


def intensity_detect(power: torch.Tensor, *, generator: torch.Generator | None,
                     shot_noise: bool) -> torch.Tensor:
    """Direct detection: photon counts ``~ Poisson(power)`` (power in photons per readout)."""
    if not shot_noise:
        return power
    return torch.poisson(power, generator=generator)


@dataclasses.dataclass(frozen=True)
class ChipOptions:
    """The device options both optical configs share, with the same names and defaults (each
    config's docstring documents them): shot noise, converter and phase-shifter resolution,
    static phase error, the seed of the chip's draws, and the photon curve's sample count."""

    shot_noise: bool = True
    dac_bits: int | None = 8
    adc_bits: int | None = 8
    phase_bits: int | None = None
    phase_noise_rad: float = 0.0
    chip_seed: int = 0
    photon_curve_samples: int = 1000

    def _check_chip_options(self, phase_noise_example: str) -> None:
        if not isinstance(self.shot_noise, bool):
            raise ConfigError(f"shot_noise={self.shot_noise!r} must be True or False", "e.g. shot_noise=True")
        for name in ("dac_bits", "adc_bits", "phase_bits"):
            check_bits(name, getattr(self, name))
        check_nonneg("phase_noise_rad", self.phase_noise_rad, phase_noise_example)
        if isinstance(self.chip_seed, bool) or not isinstance(self.chip_seed, int) or self.chip_seed < 0:
            raise ConfigError(f"chip_seed={self.chip_seed!r} must be an integer >= 0", "e.g. chip_seed=0")


class PhotonCurveEvaluation:
    """``evaluate`` that adds the simulator's accuracy-vs-photons curve to the result's extras.

    The host class defines ``photon_curve(x, y)`` and the config options ``photon_curve``
    (budgets; empty: no curve) and ``photon_curve_samples``; the curve runs on the first
    evaluated samples and the ledger stays the main run's alone.
    """

    @torch.no_grad()
    def evaluate(self, task: Task, *, split: str = "test", limit: int | None = None,
                 context: RunContext | None = None) -> Result:
        result = super().evaluate(task, split=split, limit=limit, context=context)
        if not self.config.photon_curve:
            return result
        x, y = task.split(split)
        n = min(len(y) if limit is None else limit, self.config.photon_curve_samples)
        return dataclasses.replace(result, extras=(*result.extras, self.photon_curve(x[:n], y[:n])))
