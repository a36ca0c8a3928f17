"""Closed-form TTFS first-spike times against a fine-step integration of the neuron."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nonvon.errors import ConfigError
from nonvon.simulators.spiking.ttfs_kernels import (
    first_spike_times,
    first_spike_times_autograd,
    ttfs_encode,
    update_counts,
)


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


@pytest.mark.parametrize("method", ["grouped", "dense"])
def test_exact_gradients_match_finite_differences(method, seed):
    torch.manual_seed(seed)
    t_in = (torch.rand(2, 5, dtype=torch.float64) * 2).requires_grad_()
    w = (torch.randn(3, 5, dtype=torch.float64) * 1.5 + 0.8).requires_grad_()

    def finite_times(w, t_in):
        t = first_spike_times(t_in, w, method=method)
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


def integrate_layer(t_in: np.ndarray, w: np.ndarray, tau_s: float, theta: float, dt: float,
                    t_end: float) -> np.ndarray:
    """Forward Euler for a whole layer at once; each neuron's first crossing, then it stops."""
    B, n_out = len(t_in), len(w)
    current = np.zeros((B, n_out))
    v = np.zeros((B, n_out))
    out = np.full((B, n_out), np.inf)
    arrived = np.zeros(t_in.shape, dtype=bool)
    for step in range(int(t_end / dt)):
        t = step * dt
        new = (t_in <= t) & ~arrived
        if new.any():
            current += new.astype(float) @ w.T
            arrived |= new
        v += dt * (-v + current) / (2 * tau_s)
        current -= dt * current / tau_s
        fired = (v > theta) & ~np.isfinite(out)
        out[fired] = t + dt
    return out


def test_two_layer_network_matches_integration(seed):
    from nonvon.simulators.spiking.ttfs_training import TTFSNetwork

    torch.manual_seed(seed)
    net = TTFSNetwork((8, 6, 3), tau_syn=0.5, theta=0.8, init=[(6.0, 3.0), (5.0, 3.0)],
                      generator=torch.Generator().manual_seed(seed)).double()
    t_in = torch.rand(4, 8, dtype=torch.float64) * 1.5
    t_in[0, :3] = math.inf
    with torch.no_grad():
        hidden, out = net(t_in)
    w1, w2 = (w.detach().numpy() for w in net.weights)
    dt = 2e-4
    h_ref = integrate_layer(t_in.numpy(), w1, 0.5, 0.8, dt, 8.0)
    o_ref = integrate_layer(h_ref, w2, 0.5, 0.8, dt, 10.0)
    for closed, ref in ((hidden.numpy(), h_ref), (out.numpy(), o_ref)):
        assert np.isfinite(closed).sum() >= 3, "exercise firing neurons"
        np.testing.assert_array_equal(np.isfinite(closed), np.isfinite(ref))
        fin = np.isfinite(closed)
        np.testing.assert_allclose(closed[fin], ref[fin], atol=50 * dt)


@pytest.mark.parametrize("method", ["grouped", "dense"])
@pytest.mark.parametrize("ties", [False, True])
def test_fused_matches_autograd_reference(ties, method, seed):
    torch.manual_seed(seed)
    t_in = torch.rand(6, 25, dtype=torch.float64) * 2
    if ties:  # quantized times, as from 8-bit pixels: many inputs share a time
        t_in = torch.round(t_in * 4) / 4
    t_in[1, 4] = math.inf
    t_in = t_in.requires_grad_()
    w = (torch.randn(7, 25, dtype=torch.float64) * 0.6 + 0.3).requires_grad_()
    fused = first_spike_times(t_in, w, 0.7, 0.9, method=method)
    ref = first_spike_times_autograd(t_in, w, 0.7, 0.9)
    fin = torch.isfinite(ref)
    assert 10 <= int(fin.sum()) < fin.numel()
    assert torch.equal(torch.isfinite(fused), fin)
    torch.testing.assert_close(fused[fin], ref[fin], rtol=0, atol=1e-12)

    def grads(t):
        return torch.autograd.grad(torch.where(torch.isfinite(t), t, 0.0).sum(), (t_in, w))

    for a, b in zip(grads(fused), grads(ref), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_update_counts_match_an_event_loop(seed):
    torch.manual_seed(seed)
    t_in = torch.round(torch.rand(3, 10, dtype=torch.float64) * 8) / 4   # ties
    t_in[0, 0] = math.inf
    w = torch.randn(5, 10, dtype=torch.float64) * 0.8 + 0.4
    t_out = first_spike_times(t_in, w)
    updates, solves = update_counts(t_in, w)
    for b in range(3):
        times = sorted(set(float(t) for t in t_in[b] if math.isfinite(t)))
        for o in range(5):
            n_up = n_solve = 0
            for t in times:  # one state update per distinct input time, until the neuron fires
                n_up += 1
                arrived = t_in[b] <= t
                a = float(torch.where(arrived, w[o] * torch.exp(t_in[b] / 2.0), 0.0).sum())
                bb = float(torch.where(arrived, w[o] * torch.exp(t_in[b]), 0.0).sum())
                n_solve += a > 0 and bb > 0 and a * a - 4 * bb >= 0
                if math.isfinite(t_out[b, o]) and t_out[b, o] >= t and \
                        all(t_out[b, o] < u for u in times if u > t):
                    break
            assert (int(updates[b, o]), int(solves[b, o])) == (n_up, n_solve), (b, o)


def test_bad_layer_arguments():
    with pytest.raises(ConfigError, match="tau_syn"):
        first_spike_times(torch.zeros(1, 2), torch.ones(1, 2), tau_syn=-1.0)
    with pytest.raises(ConfigError, match="theta"):
        first_spike_times(torch.zeros(1, 2), torch.ones(1, 2), theta=float("nan"))
    with pytest.raises(ConfigError, match="do not match"):
        first_spike_times(torch.zeros(1, 3), torch.ones(1, 2))
    with pytest.raises(ConfigError, match="method"):
        first_spike_times(torch.zeros(1, 2), torch.ones(1, 2), method="fast")
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        ttfs_encode(torch.tensor([[-0.1]]))


def test_triton_method_needs_cuda_float32():
    from nonvon.simulators.spiking import _triton_ttfs

    if _triton_ttfs.usable(torch.zeros(1)):  # e.g. under TRITON_INTERPRET=1
        pytest.skip("Triton runs on CPU tensors here")
    with pytest.raises(ConfigError, match="triton"):
        first_spike_times(torch.zeros(1, 2), torch.ones(1, 2), method="triton")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (Triton kernels)")
def test_triton_kernels_match_the_dense_path(seed):
    """Göltz et al.'s input layer (784 -> 350) on image-like times with ties and silent
    pixels: same spikes, times and gradients as the torch dense path, to rounding."""
    from nonvon.simulators.spiking import _triton_ttfs

    assert _triton_ttfs.available()
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(64, 784, generator=g)
    pixels[pixels < 0.6] = 0.0  # most MNIST pixels are black
    t_in = ttfs_encode(torch.round(pixels * 255) / 255, t_max=2.0, t_min=0.15).cuda()
    t_in[:, :5] = math.inf  # inputs that never spike
    w = (4.0 / 784 * (4.0 + 2.0 * math.sqrt(784) * torch.randn(350, 784, generator=g))).cuda()
    upstream = torch.randn(64, 350, generator=g).cuda()
    runs = {}
    for method in ("dense", "triton"):
        ti, wi = t_in.clone().requires_grad_(), w.clone().requires_grad_()
        out = first_spike_times(ti, wi, method=method)
        torch.where(torch.isfinite(out), out * upstream, 0.0).sum().backward()
        runs[method] = (out.detach(), ti.grad, wi.grad)
    (t_d, gt_d, gw_d), (t_t, gt_t, gw_t) = runs["dense"], runs["triton"]
    fired = torch.isfinite(t_d)
    assert 0.2 < float(fired.float().mean()) < 0.99, "exercise firing and silent neurons"
    assert float((fired != torch.isfinite(t_t)).float().mean()) < 1e-4  # grazing crossings only
    both = fired & torch.isfinite(t_t)
    torch.testing.assert_close(t_t[both], t_d[both], rtol=0, atol=1e-4)
    for a, b in ((gt_t, gt_d), (gw_t, gw_d)):
        assert float((a - b).norm() / b.norm()) < 1e-3
