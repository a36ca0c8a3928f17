"""Time-to-first-spike (TTFS) neurons: closed-form first-spike times (Göltz et al. 2021).

Neurons are current-based LIF neurons with ``tau_mem = 2 tau_syn`` (Göltz, Kriener et al.,
"Fast and energy-efficient neuromorphic deep learning with first-spike times", Nature
Machine Intelligence 3, 823-835, 2021). An input spike at ``t_i`` with weight ``w_i`` adds
``w_i (exp(-(t - t_i)/tau_m) - exp(-(t - t_i)/tau_s))`` to the membrane (the solution of
``tau_s dI/dt = -I`` with a jump ``I += w_i`` and ``tau_m dV/dt = -V + I``). With
``x = exp(-t / tau_m)`` and the inputs that arrived so far, ``V = A x - B x^2`` where
``A = sum w_i exp(t_i / tau_m)``, ``B = sum w_i exp(t_i / tau_s)``, so the first crossing of
the threshold ``theta`` is the larger root of a quadratic:

    t* = tau_m ln( 2 B / (A + sqrt(A^2 - 4 B theta)) ) = tau_m ln( (A - sqrt(A^2 - 4 B theta)) / (2 theta) )

It is valid for the set of the ``k`` earliest inputs if it falls after the ``k``-th input
and before the ``(k+1)``-th (causality); the earliest valid ``k`` gives the neuron's single
spike, and a neuron with no valid ``k`` stays silent (``inf``). The gradients with respect
to weights and input times are exact (autograd through the closed form of the selected
set). ``tests/test_spiking_ttfs.py`` checks the times against a fine-step integration of the
two differential equations and the gradients against finite differences.

Status: this is the layer only. Training a TTFS classifier with it (Göltz et al.'s loss,
regularizer and weight bumping) is not done yet: first attempts on 8 x 8 digits drove the
neurons silent within a few epochs.
"""

from __future__ import annotations

import math

import torch

from nonvon.errors import ConfigError

__all__ = ["first_spike_times", "ttfs_encode"]


def first_spike_times(t_in: torch.Tensor, w: torch.Tensor, tau_syn: float = 1.0,
                      theta: float = 1.0) -> torch.Tensor:
    """First spike time of each output neuron.

    Args:
        t_in: input spike times ``(B, n_in)``; ``inf`` for inputs that never spike.
        w: weights ``(n_out, n_in)``.
        tau_syn: synaptic time constant ``tau_s`` (``tau_m = 2 tau_s``).
        theta: threshold > 0.

    Returns:
        ``(B, n_out)`` spike times, ``inf`` where a neuron does not fire.
    """
    if theta <= 0 or tau_syn <= 0:
        raise ConfigError(f"theta={theta} and tau_syn={tau_syn} must be > 0", "e.g. theta=1.0")
    tau_m = 2.0 * tau_syn
    order = torch.argsort(t_in, dim=1)
    ts = torch.gather(t_in, 1, order)                                  # (B, n) sorted
    finite = torch.isfinite(ts)
    t0 = torch.where(finite, ts, torch.zeros_like(ts))
    # shift time by the batch row's first spike for numerical range of the exponentials
    ref = t0[:, :1]
    ea = torch.where(finite, torch.exp((t0 - ref) / tau_m), torch.zeros_like(t0))
    eb = ea * ea                                                       # exp((t - ref)/tau_s)
    ws = w.t()[order]                                                  # (B, n, n_out)
    a = torch.cumsum(ws * ea.unsqueeze(-1), dim=1)                     # (B, n, n_out)
    b = torch.cumsum(ws * eb.unsqueeze(-1), dim=1)
    disc = a * a - 4.0 * b * theta
    ok = disc >= 0
    root = a - torch.sqrt(torch.where(ok, disc, torch.ones_like(disc)))
    ok = ok & (root > 0)
    t_star = ref.unsqueeze(-1) + tau_m * torch.log(torch.where(ok, root, torch.ones_like(root)) / (2 * theta))
    next_t = torch.cat([ts[:, 1:], torch.full_like(ts[:, :1], math.inf)], dim=1).unsqueeze(-1)
    valid = ok & finite.unsqueeze(-1) & (t_star >= ts.unsqueeze(-1)) & (t_star < next_t)
    # earliest valid set: first index along the input axis where valid is true
    idx = torch.argmax(valid.to(torch.int8), dim=1, keepdim=True)      # (B, 1, n_out)
    any_valid = valid.any(dim=1)
    chosen = torch.gather(t_star, 1, idx).squeeze(1)
    return torch.where(any_valid, chosen, torch.full_like(chosen, math.inf))


def ttfs_encode(x: torch.Tensor, t_max: float = 2.0, t_min: float = 0.0) -> torch.Tensor:
    """Brighter pixels spike earlier: ``t = t_min + (1 - x) (t_max - t_min)``; black pixels at
    ``t_max`` (as in Göltz et al., every input spikes once)."""
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ConfigError("TTFS coding needs inputs in [0, 1]", "scale the data to [0, 1]")
    return t_min + (1.0 - x.flatten(1)) * (t_max - t_min)
