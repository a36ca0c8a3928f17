"""Input coding: turning an image with pixels in [0, 1] into ``T`` timesteps of input.

- ``rate``: Poisson-like (Bernoulli per step) spike trains, pixel value = spike probability
  per step; the coding of snnTorch's ``spikegen.rate`` (same draws from the same generator).
- ``latency``: one spike per pixel, earlier for brighter pixels, linear in the intensity and
  spread over the ``T`` steps; pixels below ``latency_threshold`` never fire. This is
  snnTorch's ``spikegen.latency(..., linear=True, normalize=True, clip=True)``.
- ``direct``: the analog pixel values as a constant input current at every step. The
  first layer then does multiply-accumulates, not spike-driven accumulates, and its
  current is the same at every step, so nonvon computes and counts it once per inference
  (effective MACs, dense ops). NeuroBench 2.3.0 runs the layer at every step and counts
  ``T`` times as many; ``counting.Conventions(direct_every_step=True)`` gives its figures.
"""

from __future__ import annotations

import math

import torch

from nonvon.errors import ConfigError

__all__ = ["CODINGS", "encode", "check_timesteps", "check_unit_interval"]

CODINGS = ("rate", "latency", "direct")


def check_timesteps(timesteps: int) -> None:
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps <= 0:
        raise ConfigError(f"timesteps={timesteps!r} must be a positive integer",
                          "e.g. timesteps=25")


def check_unit_interval(x: torch.Tensor) -> None:
    """Spike coding reads pixels as probabilities or intensities: they must lie in [0, 1]."""
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1 or math.isnan(lo) or math.isnan(hi):
        raise ConfigError(f"inputs to spike coding must lie in [0, 1]; got values in [{lo:g}, {hi:g}]",
                          "scale the data to [0, 1] (e.g. x / x.max()) before encoding")


def encode(x: torch.Tensor, timesteps: int, coding: str = "rate", *,
           generator: torch.Generator | None = None, latency_threshold: float = 0.01) -> torch.Tensor:
    """Encode ``x`` (values in [0, 1]) as ``timesteps`` steps of input, time first.

    Args:
        x: a batch of inputs, any shape.
        timesteps: ``T`` > 0.
        coding: ``"rate"``, ``"latency"`` or ``"direct"``.
        generator: random generator for rate coding (the global one if ``None``).
        latency_threshold: latency coding: intensities below this never spike.

    Returns:
        A tensor of shape ``(T, *x.shape)``: 0/1 spikes, or ``x`` repeated for ``direct``.

    Raises:
        ConfigError: ``timesteps`` <= 0, an unknown coding, or inputs outside [0, 1].
    """
    check_timesteps(timesteps)
    if coding not in CODINGS:
        raise ConfigError(f"unknown coding {coding!r}", f"use one of {CODINGS}")
    check_unit_interval(x)
    if coding == "direct":
        return x.unsqueeze(0).expand(timesteps, *x.shape)
    if coding == "rate":
        probs = x.unsqueeze(0).expand(timesteps, *x.shape)
        return torch.bernoulli(probs, generator=generator)
    # latency: spike time t = round((T - 1) * (1 - x)), linear in intensity (brightest first)
    t_spike = torch.round((timesteps - 1) * (1.0 - x)).long()
    steps = torch.arange(timesteps, device=x.device).view(-1, *([1] * x.dim()))
    return ((steps == t_spike.unsqueeze(0)) & (x.unsqueeze(0) >= latency_threshold)).to(x.dtype)
