"""Closed-form TTFS first-spike times against a fine-step integration of the neuron."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nonvon.errors import ConfigError
from nonvon.models.spiking.ttfs import first_spike_times, ttfs_encode


def integrate(t_in: np.ndarray, w: np.ndarray, tau_s: float, theta: float, dt: float,
              t_end: float) -> np.ndarray:
    """Forward Euler of tau_s dI/dt = -I (jump I += w at each input), tau_m dV/dt = -V + I."""
    out = np.full((len(t_in), len(w)), np.inf)
    for b, times in enumerate(t_in):
        order = np.argsort(times)
        current, v, k = np.zeros(len(w)), np.zeros(len(w)), 0
        for step in range(int(t_end / dt)):
            t = step * dt
            while k < len(order) and times[order[k]] <= t:
                current += w[:, order[k]]
                k += 1
            v += dt * (-v + current) / (2 * tau_s)
            current += dt * (-current) / tau_s
            fired = (v > theta) & ~np.isfinite(out[b])
            out[b, fired] = t + dt
    return out


@pytest.mark.parametrize("tau_s, theta", [(1.0, 1.0), (0.5, 0.6)])
def test_closed_form_matches_integration(tau_s, theta, seed):
    torch.manual_seed(seed)
    t_in = torch.rand(3, 6, dtype=torch.float64) * 2
    t_in[0, 2] = math.inf  # an input that never spikes
    w = torch.randn(5, 6, dtype=torch.float64) * 1.5 + 1.5 * theta
    w[-1] = -w[-1].abs()  # an inhibited neuron that must stay silent
    closed = first_spike_times(t_in, w, tau_s, theta).numpy()
    dt = 1e-4
    ref = integrate(t_in.numpy(), w.numpy(), tau_s, theta, dt, t_end=8 * tau_s + 2)
    assert 5 <= np.isfinite(closed).sum() < closed.size, "exercise firing and silent neurons"
    np.testing.assert_array_equal(np.isfinite(closed), np.isfinite(ref))
    fin = np.isfinite(closed)
    np.testing.assert_allclose(closed[fin], ref[fin], atol=20 * dt)  # Euler error ~ dt


def test_exact_gradients_match_finite_differences(seed):
    torch.manual_seed(seed)
    t_in = (torch.rand(2, 5, dtype=torch.float64) * 2).requires_grad_()
    w = (torch.randn(3, 5, dtype=torch.float64) * 1.5 + 0.8).requires_grad_()

    def finite_times(w, t_in):
        t = first_spike_times(t_in, w)
        return torch.where(torch.isfinite(t), t, torch.zeros_like(t))

    assert torch.autograd.gradcheck(finite_times, (w, t_in))


def test_single_input_spike_time_closed_form():
    # one input at 0 with weight w: V = w (e^{-t/2} - e^{-t}) = theta at x = e^{-t/2}
    w = torch.tensor([[3.0]], dtype=torch.float64)
    t = first_spike_times(torch.zeros(1, 1, dtype=torch.float64), w, 1.0, 0.5)
    x = (3.0 + math.sqrt(9.0 - 4 * 3.0 * 0.5)) / (2 * 3.0)
    assert math.isclose(float(t), -2 * math.log(x), rel_tol=1e-12)
    # too weak to reach threshold: the PSP peaks at w / 4
    assert math.isinf(float(first_spike_times(torch.zeros(1, 1), torch.tensor([[1.9]]), 1.0, 0.5)))


def test_bad_input():
    with pytest.raises(ConfigError, match="theta"):
        first_spike_times(torch.zeros(1, 2), torch.ones(1, 2), theta=0.0)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        ttfs_encode(torch.tensor([[1.5]]))
