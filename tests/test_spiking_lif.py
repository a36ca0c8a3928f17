"""The fused LIF path against snnTorch's Leaky, the reference step, and the input codings."""

from __future__ import annotations

import math

import pytest
import torch

from nonvon.errors import ConfigError
from nonvon.simulators.spiking import (
    LIFConfig,
    Surrogate,
    encode,
    lif_sequence,
    lif_step,
    spiking_cnn,
    spiking_mlp,
)
from nonvon.simulators.spiking.lif_kernels import FusedLeaky

snntorch = pytest.importorskip("snntorch")
from snntorch import spikegen  # noqa: E402


def snntorch_run(x: torch.Tensor, beta, threshold: float, reset: str, surrogate: Surrogate,
                 learn_beta: bool = False):
    neuron = snntorch.Leaky(beta=beta, threshold=threshold, reset_mechanism=reset,
                            spike_grad=surrogate.snntorch(), learn_beta=learn_beta)
    mem = neuron.init_leaky()
    spk, mems = [], []
    for t in range(x.shape[0]):
        s, mem = neuron(x[t], mem)
        spk.append(s)
        mems.append(mem)
    return torch.stack(spk), torch.stack(mems), neuron


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid", "sigmoid"])
def test_fused_matches_snntorch_step_for_step(reset, surrogate, seed):
    torch.manual_seed(seed)
    sur = Surrogate(surrogate)
    T, B, N = 40, 4, 64
    # currents of a size that makes neurons fire often, and keeps |slope * u| small
    # enough that snnTorch's sigmoid surrogate does not overflow to NaN
    x = (torch.randn(T, B, N) * 0.5 + 0.35).requires_grad_()
    w_s, w_m = torch.randn(T, B, N), torch.randn(T, B, N)
    spk_ref, mem_ref, _ = snntorch_run(x, 0.85, 0.7, reset, sur)
    g_ref = torch.autograd.grad((spk_ref * w_s).sum() + (mem_ref * w_m).sum(), x)[0]
    spk, mem = lif_sequence(x, 0.85, 0.7, reset=reset, surrogate=sur)
    g = torch.autograd.grad((spk * w_s).sum() + (mem * w_m).sum(), x)[0]
    assert 0.05 < spk.mean() < 0.8, "the test should exercise spiking and resets"
    assert torch.equal(spk, spk_ref), "spikes must be identical"
    torch.testing.assert_close(mem, mem_ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)


def test_learned_beta_gradient_matches_snntorch(seed):
    torch.manual_seed(seed)
    sur = Surrogate("atan")
    x = torch.randn(30, 3, 20) * 0.6 + 0.4
    w = torch.randn(30, 3, 20)
    beta0 = torch.rand(20) * 0.5 + 0.45
    spk_ref, mem_ref, neuron = snntorch_run(x, beta0.clone(), 1.0, "subtract", sur, learn_beta=True)
    ((spk_ref * w).sum() + mem_ref.sum()).backward()
    layer = FusedLeaky(beta=beta0.clone(), learn_beta=True)
    spk, mem = layer(x)
    ((spk * w).sum() + mem.sum()).backward()
    assert torch.equal(spk, spk_ref)
    torch.testing.assert_close(layer.beta.grad, neuron.beta.grad, rtol=1e-4, atol=1e-4)


def test_reference_step_matches_snntorch(seed):
    torch.manual_seed(seed)
    x = torch.randn(25, 8, 16) + 0.3
    spk_ref, mem_ref, _ = snntorch_run(x, 0.9, 1.0, "subtract", Surrogate())
    mem = torch.zeros(8, 16)
    for t in range(25):
        s, mem = lif_step(x[t], mem, 0.9)
        assert torch.equal(s, spk_ref[t])
        assert torch.equal(mem, mem_ref[t])


@pytest.mark.parametrize("name", ["atan", "fast_sigmoid", "sigmoid"])
def test_surrogate_derivative_is_snntorchs(name):
    sur = Surrogate(name)
    u = torch.linspace(-2, 2, 101, requires_grad=True)
    sur.snntorch()(u).sum().backward()
    torch.testing.assert_close(sur.grad(u.detach()), u.grad, rtol=1e-5, atol=1e-5)
    # and the closed form in the docstring, at a point
    p, v = sur.param, 0.3
    closed = {"atan": p / 2 / (1 + (math.pi / 2 * p * v) ** 2),
              "fast_sigmoid": 1 / (p * v + 1) ** 2,
              "sigmoid": p * math.exp(-p * v) / (math.exp(-p * v) + 1) ** 2}[name]
    assert math.isclose(float(sur.grad(torch.tensor(v))), closed, rel_tol=1e-5)


def test_sigmoid_surrogate_has_no_overflow():
    assert torch.isfinite(Surrogate("sigmoid").grad(torch.tensor([-50.0, 50.0]))).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(threshold=0.0), "threshold"), (dict(threshold=-1.0), "threshold"),
    (dict(beta=1.5), "beta"), (dict(beta=-0.1), "beta"), (dict(reset="sideways"), "reset"),
])
def test_bad_lif_parameters_are_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        lif_sequence(torch.zeros(3, 2), **{"beta": 0.9, **kwargs})
    with pytest.raises(ConfigError, match=match):
        LIFConfig(**kwargs)


def test_zero_timesteps_and_bad_inputs_are_errors():
    with pytest.raises(ConfigError, match="T = 0"):
        lif_sequence(torch.zeros(0, 2), 0.9)
    with pytest.raises(ConfigError, match="timesteps"):
        LIFConfig(timesteps=0)
    with pytest.raises(ConfigError, match="timesteps"):
        encode(torch.rand(2, 3), -1)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        encode(torch.tensor([0.5, 1.2]), 5)
    with pytest.raises(ConfigError, match="coding"):
        encode(torch.rand(3), 5, "morse")


@pytest.mark.parametrize("T", [1, 7, 25])
def test_latency_coding_is_snntorchs(T, seed):
    torch.manual_seed(seed)
    x = torch.rand(16, 30)
    x[0, :4] = torch.tensor([0.0, 0.005, 0.01, 1.0])
    ref = spikegen.latency(x, num_steps=T, linear=True, normalize=True, clip=True)
    assert torch.equal(encode(x, T, "latency"), ref)


def test_rate_coding_is_snntorchs_and_seeded():
    x = torch.rand(8, 40)
    torch.manual_seed(5)
    ref = spikegen.rate(x, num_steps=12)
    torch.manual_seed(5)
    assert torch.equal(encode(x, 12, "rate"), ref)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(encode(x, 12, "rate", generator=g1), encode(x, 12, "rate", generator=g2))


@pytest.mark.parametrize("build", ["mlp", "cnn"])
def test_network_backends_agree(build, seed):
    torch.manual_seed(seed)
    lif = LIFConfig(timesteps=6, beta=0.8, threshold=0.5, coding="rate")
    net = (spiking_mlp(36, (20, 12), 3, lif, (6, 6)) if build == "mlp"
           else spiking_cnn(8, (4, 6), 10, 3, lif, kernel=3))
    x = torch.rand(5, *net.input_shape)
    outs, grads = {}, {}
    for backend in ("fused", "steps", "snntorch"):
        net.backend = backend
        net.zero_grad()
        net.generator = torch.Generator().manual_seed(3)
        out = net(x)
        out.pow(2).sum().backward()
        outs[backend] = out.detach()
        grads[backend] = torch.cat([p.grad.flatten() for p in net.parameters()])
    assert grads["fused"].abs().sum() > 0
    for b in ("steps", "snntorch"):
        torch.testing.assert_close(outs[b], outs["fused"], rtol=0, atol=1e-6)
        torch.testing.assert_close(grads[b], grads["fused"], rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (Triton kernels)")
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid", "sigmoid"])
def test_triton_kernels_match_the_cpu_loop(reset, surrogate, seed):
    from nonvon.simulators.spiking import _triton_lif

    assert _triton_lif.available()
    torch.manual_seed(seed)
    sur = Surrogate(surrogate)
    x = torch.randn(50, 4, 300) * 0.5 + 0.35
    w = torch.randn_like(x)
    beta = (torch.rand(300) * 0.5 + 0.5)
    out = {}
    for dev in ("cpu", "cuda"):
        xd = x.to(dev, copy=True).requires_grad_()
        bd = beta.to(dev, copy=True).requires_grad_()
        spk, mem = lif_sequence(xd, bd, 0.7, reset=reset, surrogate=sur)
        ((spk * w.to(dev)).sum() + mem.sum()).backward()
        out[dev] = [t.detach().cpu() for t in (spk, mem, xd.grad, bd.grad)]
    assert torch.equal(out["cuda"][0], out["cpu"][0])
    torch.testing.assert_close(out["cuda"][1], out["cpu"][1], rtol=0, atol=1e-5)
    torch.testing.assert_close(out["cuda"][2], out["cpu"][2], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out["cuda"][3], out["cpu"][3], rtol=1e-3, atol=1e-3)
