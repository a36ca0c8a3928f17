"""DNN-to-SNN conversion of a trained ReLU MLP (rate-based, data-normalized).

The method of Diehl et al. ("Fast-classifying, high-accuracy spiking deep networks through
weight and threshold balancing", IJCNN 2015) and Rueckauer et al. ("Conversion of
continuous-valued deep networks to efficient event-driven networks for image
classification", Frontiers in Neuroscience 11:682, 2017):

- every ReLU becomes a layer of integrate-and-fire neurons (``beta = 1``, threshold 1)
  with **reset by subtraction**, so the charge above threshold is kept and the firing
  rate approximates the ReLU output over ``T`` steps;
- the input is the analog image as a **constant current** at every step;
- weights are **normalized by the activations** seen on training data: with ``lam_l`` the
  maximum (or the ``p``-th percentile, Rueckauer's robust variant; 99.9 by default) of
  layer ``l``'s ReLU outputs and ``lam_0 = 1``, ``W_l <- W_l lam_{l-1} / lam_l`` and
  ``b_l <- b_l / lam_l``, so no neuron needs to fire faster than once per step;
- the output layer integrates without firing; its mean current over ``T`` steps is the
  logit (``argmax`` of the final membrane).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nonvon.errors import ConfigError
from nonvon.simulators.spiking.networks import LIFConfig, SpikingClassifier

__all__ = ["convert_mlp", "activation_scales", "NORMALIZATIONS"]

NORMALIZATIONS = ("max", "percentile")


def _linears(model: nn.Sequential) -> list[nn.Linear]:
    layers = [m for m in model if isinstance(m, nn.Linear)]
    allowed = (nn.Linear, nn.ReLU, nn.Flatten, nn.Dropout, nn.Identity)
    bad = [type(m).__name__ for m in model if not isinstance(m, allowed)]
    if bad or not layers:
        raise ConfigError(f"cannot convert a network with layers {bad or 'none'}",
                          "convert an MLP of Linear + ReLU layers (nonvon.models.mlp)")
    return layers


@torch.no_grad()
def activation_scales(model: nn.Sequential, x: torch.Tensor, normalization: str = "percentile",
                      percentile: float = 99.9) -> list[float]:
    """``lam_l`` for each hidden ReLU layer and the output layer, from inputs ``x``."""
    if normalization not in NORMALIZATIONS:
        raise ConfigError(f"unknown normalization {normalization!r}", f"use one of {NORMALIZATIONS}")
    if not 0 < percentile <= 100:
        raise ConfigError(f"percentile={percentile} must lie in (0, 100]", "e.g. 99.9")
    model.eval()
    h = x.flatten(1)
    scales = []
    for m in model:
        if isinstance(m, nn.Flatten):
            continue
        h = m(h)
        if isinstance(m, nn.ReLU) or m is model[-1]:
            a = h.flatten()
            a = a[a > 0] if isinstance(m, nn.ReLU) else a.abs()
            if not len(a):
                scales.append(1.0)
            elif normalization == "max":
                scales.append(float(a.max()))
            else:
                scales.append(float(np.percentile(a.cpu().numpy(), percentile)))
    return [s if s > 0 else 1.0 for s in scales]


def convert_mlp(model: nn.Sequential, x_norm: np.ndarray | torch.Tensor, timesteps: int,
                input_shape: tuple[int, ...], normalization: str = "percentile",
                percentile: float = 99.9) -> SpikingClassifier:
    """Convert a trained ReLU MLP into an IF spiking network.

    Args:
        model: ``nn.Sequential`` of Flatten / Linear / ReLU / Dropout (``nonvon.models.mlp``).
        x_norm: training inputs used to measure the activations (a few thousand suffice).
        timesteps: ``T`` of the spiking network.
        input_shape: one sample's shape.
        normalization: ``"max"`` or ``"percentile"``.
        percentile: for ``"percentile"``, e.g. 99.9.

    Returns:
        A :class:`SpikingClassifier` (IF neurons, threshold 1, reset by subtraction, direct
        input) with normalized weights; the output layer's logits are scaled by ``1/lam_L``,
        which leaves the argmax unchanged.
    """
    linears = _linears(model)
    x = torch.as_tensor(np.asarray(x_norm), dtype=torch.float32)
    lam = activation_scales(model, x, normalization, percentile)
    layers = []
    prev = 1.0  # inputs are pixels in [0, 1]
    for lin, scale in zip(linears, lam, strict=True):
        new = nn.Linear(lin.in_features, lin.out_features, bias=lin.bias is not None)
        with torch.no_grad():
            new.weight.copy_(lin.weight * prev / scale)
            if lin.bias is not None:
                new.bias.copy_(lin.bias / scale)
        layers.append(new)
        prev = scale
    lif = LIFConfig(timesteps=timesteps, beta=1.0, threshold=1.0, reset="subtract", coding="direct")
    return SpikingClassifier(layers, input_shape, lif)
