"""TTFS training step: eager, and captured as one CUDA graph.

``train_ttfs``'s own step (``train_step``: forward through both layers, Göltz et al.'s loss,
backward, NaN guard, per-layer clipping, Adam, weight bumping, the epoch sums) on Göltz et
al.'s 784-350-10 network at batch 100, the ``snn-ttfs`` defaults, with synthetic input
times. The peer is nonvon's own eager step: the question is how much of a step is launching
kernels rather than arithmetic.
Adam is ``capturable`` on CUDA in both runs, so their weights can be compared exactly.

Prints ms per step eager and (on CUDA) replayed as a graph, kernels per step and the time
the GPU is busy per step (from the profiler), and the largest weight difference between
the two runs after the same steps (0.0: identical). On a CPU only the eager step is timed.

    python benchmarks/ttfs_step.py --device cuda
    python benchmarks/ttfs_step.py --quick            # CPU, small hidden layer, seconds
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from nonvon.simulators.spiking.ttfs_training import StepState, TTFSNetwork, TTFSTrainConfig, train_step

WARMUP = 3  # eager steps before a capture (on a side stream, as CUDA graphs require)


def make_step(hidden: int, dev: torch.device, cfg: TTFSTrainConfig):
    """A fresh network and optimizer (same seed every call) and ``train_ttfs``'s own step on them."""
    cuda = dev.type == "cuda"
    net = TTFSNetwork((784, hidden, 10), init=[(4, 2), (4, 2)],
                      generator=torch.Generator().manual_seed(1)).to(dev)
    # a tensor learning rate and device-side step counts: what a captured Adam needs
    opt = torch.optim.Adam(net.parameters(), lr=torch.tensor(cfg.lr, device=dev) if cuda else cfg.lr,
                           capturable=cuda)
    state = StepState.new(cfg, len(net.weights), dev)

    def step(xb, yb, noise):
        train_step(net, opt, cfg, xb, yb, [noise], state)

    return net, opt, step


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _eager(opt, step, data, steps: range) -> None:
    for i in steps:
        opt.zero_grad(set_to_none=True)
        step(*(d[i] for d in data))


def _profile(opt, step, data, steps: range, dev) -> dict:
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        _eager(opt, step, data, steps)
        _sync(dev)
    events = prof.events()
    out = {"aten_ops_per_step": sum(e.name.startswith("aten::") for e in events) / len(steps)}
    if dev.type == "cuda":
        kernels = [e for e in events if "CUDA" in str(getattr(e, "device_type", ""))]
        out["cuda_kernels_per_step"] = len(kernels) / len(steps)
        busy_us = sum(getattr(e, "device_time", 0.0) or 0.0 for e in kernels)
        out["gpu_busy_ms_per_step"] = busy_us / 1e3 / len(steps)
    return out


def run(device: str, steps: int, hidden: int, batch: int) -> dict:
    dev = torch.device(device)
    cfg = TTFSTrainConfig()
    g = torch.Generator().manual_seed(0)
    n = WARMUP + steps
    data = [(0.15 + 1.85 * torch.rand(n, batch, 784, generator=g)).to(dev),  # input times
            torch.randint(0, 10, (n, batch), generator=g).to(dev),            # labels
            torch.randn(n, batch, hidden, generator=g).to(dev)]                # hidden time noise
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    rec = {"bench": "ttfs_step", "peer": "eager", "device": name, "torch": torch.__version__,
           "network": [784, hidden, 10], "batch": batch, "steps": steps}

    _, opt, step = make_step(hidden, dev, cfg)
    _eager(opt, step, data, range(WARMUP))
    _sync(dev)
    t0 = time.perf_counter()
    _eager(opt, step, data, range(WARMUP, n))
    _sync(dev)
    rec["eager_ms_per_step"] = 1e3 * (time.perf_counter() - t0) / steps
    rec.update(_profile(opt, step, data, range(WARMUP, min(n, WARMUP + 10)), dev))
    if dev.type != "cuda":
        rec["graph"] = "not run: CUDA graphs need a CUDA device"
        return rec

    # the same steps replayed from one captured graph, against a fresh eager twin
    net_g, opt_g, step_g = make_step(hidden, dev, cfg)
    static = [d[WARMUP].clone() for d in data]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        _eager(opt_g, step_g, data, range(WARMUP))
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt_g.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        step_g(*static)  # recorded, not run: the replays below run every step
    _sync(dev)
    t0 = time.perf_counter()
    for i in range(WARMUP, n):
        for buf, d in zip(static, data, strict=True):
            buf.copy_(d[i])
        graph.replay()
    _sync(dev)
    rec["graph_ms_per_step"] = 1e3 * (time.perf_counter() - t0) / steps
    net_e, opt_e, step_e = make_step(hidden, dev, cfg)
    _eager(opt_e, step_e, data, range(n))
    _sync(dev)
    with torch.no_grad():
        rec["graph_vs_eager_max_abs_weight_diff"] = max(
            float((a - b).abs().max()) for a, b in zip(net_g.weights, net_e.weights, strict=True))
    rec["ratio"] = rec["eager_ms_per_step"] / rec["graph_ms_per_step"]
    return rec


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true", help="3 steps of a 784-32-10 network")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--hidden", type=int, default=350)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args(argv)
    steps, hidden = (3, 32) if args.quick else (args.steps, args.hidden)
    rec = run(args.device, steps, hidden, args.batch)
    print(json.dumps(rec))
    return rec


if __name__ == "__main__":
    main()
