# ruff: noqa: E501  (kept as it ran on the H200)
"""Throwaway probe (not committed): is a TTFS training step launch-bound on the GPU, and what
does capturing it as a CUDA graph buy? Prints one JSON line."""
import json
import sys
import time

import torch

from nonvon.simulators.spiking.ttfs_kernels import first_spike_times
from nonvon.simulators.spiking.ttfs_training import (
    TTFSNetwork,
    TTFSTrainConfig,
    _bump,
    _silent_limits,
    ttfs_loss,
)

dev = torch.device(sys.argv[1] if len(sys.argv) > 1 else "cuda")
cuda = dev.type == "cuda"
cfg = TTFSTrainConfig()
B, N_STEPS = 100, 60
g = torch.Generator().manual_seed(0)
X = (0.15 + 1.85 * torch.rand(3 + N_STEPS, B, 784, generator=g)).to(dev)
Y = torch.randint(0, 10, (3 + N_STEPS, B), generator=g).to(dev)
NOISE = torch.randn(3 + N_STEPS, B, 350, generator=g).to(dev)
out = {"device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__}


def make():
    net = TTFSNetwork((784, 350, 10), init=[(4, 2), (4, 2)], generator=torch.Generator().manual_seed(1)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=torch.tensor(cfg.lr, device=dev) if cuda else cfg.lr,
                           capturable=cuda)
    state = {"bumped": torch.tensor(-1, device=dev), "scale": torch.tensor(1.0, dtype=torch.float64, device=dev),
             "limits": _silent_limits(cfg, 2, dev)}

    def step(xb, yb, noise):
        w = list(net.weights)
        t1 = first_spike_times(xb, w[0], net.tau_syn, net.theta) + cfg.time_noise * net.tau_syn * noise
        t2 = first_spike_times(t1, w[1], net.tau_syn, net.theta)
        loss = ttfs_loss(t2, yb, tau_syn=net.tau_syn, xi=cfg.xi, alpha=cfg.alpha, beta=cfg.beta,
                         t_silent=cfg.t_silent)
        loss.backward()
        for p in net.weights:
            torch.nan_to_num_(p.grad, nan=0.0, posinf=0.0, neginf=0.0)
            torch.nn.utils.clip_grad_norm_([p], cfg.max_grad_norm)
        opt.step()
        b, s = _bump(net, [t1.detach(), t2.detach()], yb, cfg, state["bumped"], state["scale"], state["limits"])
        state["bumped"].copy_(b)
        state["scale"].copy_(s)
        return loss.detach()

    return net, opt, step


def sync():
    if cuda:
        torch.cuda.synchronize()


# eager
net_a, opt_a, step_a = make()
for i in range(3):
    opt_a.zero_grad(set_to_none=True)
    step_a(X[i], Y[i], NOISE[i])
sync()
t0 = time.perf_counter()
for i in range(3, 3 + N_STEPS):
    opt_a.zero_grad(set_to_none=True)
    step_a(X[i], Y[i], NOISE[i])
sync()
out["eager_ms_per_step"] = 1e3 * (time.perf_counter() - t0) / N_STEPS

# kernels per eager step and GPU-busy time
try:
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        for i in range(3, 13):
            opt_a.zero_grad(set_to_none=True)
            step_a(X[i], Y[i], NOISE[i])
        sync()
    ev = prof.events()
    out["aten_ops_per_step"] = sum(1 for e in ev if e.name.startswith("aten::")) / 10
    if cuda:
        kernels = [e for e in ev if getattr(e, "device_type", None) is not None and "CUDA" in str(e.device_type)]
        out["cuda_kernels_per_step"] = len(kernels) / 10
        out["gpu_busy_ms_per_step"] = sum(getattr(e, "device_time", 0.0) or 0.0 for e in kernels) / 1e3 / 10
except Exception as e:  # the probe must still print its timings
    out["profile_error"] = repr(e)

if cuda:
    try:
        net_b, opt_b, step_b = make()
        static = [X[3].clone(), Y[3].clone(), NOISE[3].clone()]
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for i in range(3):
                opt_b.zero_grad(set_to_none=True)
                step_b(X[i], Y[i], NOISE[i])
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        opt_b.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            static_loss = step_b(*static)
        # same three eager steps on a fresh twin, then the replays against eager steps
        net_c, opt_c, step_c = make()
        for i in range(3):
            opt_c.zero_grad(set_to_none=True)
            step_c(X[i], Y[i], NOISE[i])
        sync()
        t0 = time.perf_counter()
        for i in range(3, 3 + N_STEPS):
            static[0].copy_(X[i])
            static[1].copy_(Y[i])
            static[2].copy_(NOISE[i])
            graph.replay()
        sync()
        out["graph_ms_per_step"] = 1e3 * (time.perf_counter() - t0) / N_STEPS
        for i in range(3, 3 + N_STEPS):
            opt_c.zero_grad(set_to_none=True)
            step_c(X[i], Y[i], NOISE[i])
        sync()
        out["graph_vs_eager_max_abs_weight_diff"] = max(
            float((wb - wc).abs().max()) for wb, wc in zip(net_b.weights, net_c.weights, strict=True))
        out["graph_speedup"] = out["eager_ms_per_step"] / out["graph_ms_per_step"]
    except Exception as e:
        out["graph_error"] = repr(e)[:500]
print(json.dumps(out))
