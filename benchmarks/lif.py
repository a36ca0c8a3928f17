"""The Open Neuromorphic LIF benchmark: one Linear + LIF layer, forward and backward.

Setting (Lenz et al., "SNN library benchmarks", open-neuromorphic.org, 2023/2024):
``n`` neurons (``Linear(n, n)`` then LIF), batch 16, ``T`` = 500 steps, input
``randn(T, 16, n)``, loss = sum of the output spikes, one forward and one backward pass.

- peer: snnTorch's ``Leaky`` stepped in a Python loop as the benchmark writes it (the
  linear layer is applied step by step); when snnTorch is not installed, the same loop
  with our :func:`lif_step` in plain torch (``peer`` says which).
- nonvon: the linear layer on all ``T x batch`` rows at once, then the fused
  :func:`lif_sequence` (one Triton kernel per direction on CUDA).

``matmul_only_s`` times the linear layer alone (forward and weight gradient, same precision):
no implementation can beat it, so ``ratio_ceiling = peer_s / matmul_only_s`` is the best
ratio attainable on that machine and precision. Both start from the same weights and inputs.
The LIF dynamics are checked exactly (the peer's neuron run on our currents gives identical
spikes); the whole layer's spikes are
compared too, where the two matrix-product orders may round a current across the
threshold (``spike_agreement`` reports the fraction equal). Times are the median of the
repeats after one warm-up. The last line printed is one JSON object.

    python benchmarks/lif.py --quick                 # CPU, small, well under a minute
    python benchmarks/lif.py                         # CPU, benchmark setting (16,384 neurons)
    python benchmarks/lif.py --device cuda --tf32 both --sweep sweep.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import time

import torch

from nonvon._io import atomic_savefig, atomic_write_json
from nonvon.simulators.spiking.lif_kernels import lif_sequence, lif_step

BETA = 0.95  # as in the published snnTorch entry


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _peer_name() -> str:
    if importlib.util.find_spec("snntorch") is None:
        return "plain-torch step loop (snnTorch not installed)"
    import snntorch

    return f"snntorch {snntorch.__version__}"


def make_peer(fc: torch.nn.Linear):
    """The benchmark's snnTorch model (or the plain-torch equivalent), stepping through time."""
    if importlib.util.find_spec("snntorch") is not None:
        import snntorch

        neuron = snntorch.Leaky(beta=BETA).to(fc.weight.device)

        def step(cur, mem):
            return neuron(cur, mem)
    else:
        def step(cur, mem):
            return lif_step(cur, mem, BETA)

    def run(x: torch.Tensor, linear: bool = True) -> torch.Tensor:
        mem = torch.zeros(x.shape[1:2] + (fc.out_features,), device=x.device)
        out = []
        for t in range(x.shape[0]):
            spk, mem = step(fc(x[t]) if linear else x[t], mem)
            out.append(spk)
        return torch.stack(out)

    return run


def make_ours(fc: torch.nn.Linear):
    def run(x: torch.Tensor, linear: bool = True) -> torch.Tensor:
        cur = fc(x.reshape(-1, x.shape[-1])).reshape(x.shape[0], x.shape[1], -1) if linear else x
        return lif_sequence(cur, BETA)[0]

    return run


def make_linear_only(fc: torch.nn.Linear):
    def run(x: torch.Tensor, linear: bool = True) -> torch.Tensor:
        return fc(x.reshape(-1, x.shape[-1]))

    return run


def _measure(fn, x, device: str, reps: int, linear: bool = True,
             fc: torch.nn.Linear | None = None) -> tuple[float, int | None]:
    def once():
        if fc is not None:
            fc.zero_grad(set_to_none=True)
        out = fn(x, linear)
        out.sum().backward()
        return out

    once()  # warm-up (Triton compilation, allocator)
    times = []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        once()
        _sync(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    return statistics.median(times), peak


def bench(neurons: int, batch: int, steps: int, device: str, reps: int, tf32: bool,
          check: bool = True) -> dict:
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.manual_seed(0)
    fc = torch.nn.Linear(neurons, neurons).to(device)
    # as in the published benchmark, the input needs no gradient (the weights do); for the
    # LIF-only timing below it does, so that a backward pass through the neurons happens
    x = torch.randn(steps, batch, neurons, device=device)
    x_lif = x.clone().requires_grad_()
    peer, ours = make_peer(fc), make_ours(fc)
    row = {"neurons": neurons, "batch": batch, "steps": steps, "tf32": tf32}
    if check:
        with torch.no_grad():
            cur = fc(x.reshape(-1, neurons)).reshape(steps, batch, neurons)
            a, b = peer(cur, linear=False), ours(cur, linear=False)
            exact = bool(torch.equal(a, b))
            lif_agree = float((a == b).float().mean())
            agree = float((peer(x) == ours(x)).float().mean())
        # recorded, not asserted, so a mismatch is reported with its timing (exact on CPU is
        # asserted by tests/test_spiking_lif.py)
        row.update(lif_exact=exact, lif_spike_agreement=lif_agree, spike_agreement=agree)
    row["peer_s"], row["peak_mem_peer_bytes"] = _measure(peer, x, device, reps, fc=fc)
    row["nonvon_s"], row["peak_mem_nonvon_bytes"] = _measure(ours, x, device, reps, fc=fc)
    row["ratio"] = row["peer_s"] / row["nonvon_s"]
    # the LIF alone (no linear layer): isolates the fused time loop
    row["lif_only_peer_s"], _ = _measure(peer, x_lif, device, reps, linear=False)
    row["lif_only_nonvon_s"], _ = _measure(ours, x_lif, device, reps, linear=False)
    row["lif_only_ratio"] = row["lif_only_peer_s"] / row["lif_only_nonvon_s"]
    # the linear layer alone (forward + weight gradient, same precision): no implementation
    # of the benchmark can be faster, so peer_s / matmul_only_s bounds the attainable ratio
    row["matmul_only_s"], _ = _measure(make_linear_only(fc), x, device, reps, fc=fc)
    row["ratio_ceiling"] = row["peer_s"] / row["matmul_only_s"]
    return row


def sweep(device: str, reps: int, tf32: bool, quick: bool) -> list[dict]:
    """Time vs neurons (T = 500) and vs T (4,096 neurons), batch 16."""
    neurons = (256, 1024, 4096) if quick else (512, 2048, 4096, 8192, 16384)
    steps = (50, 100, 200) if quick else (100, 250, 500, 1000)
    rows = [{"vary": "neurons", **bench(n, 16, 100 if quick else 500, device, reps, tf32, check=False)}
            for n in neurons]
    rows += [{"vary": "steps", **bench(1024 if quick else 4096, 16, t, device, reps, tf32, check=False)}
             for t in steps]
    return rows


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    by_n = [r for r in rows if r["vary"] == "neurons"]
    by_t = [r for r in rows if r["vary"] == "steps"]
    for ax, sel, key, label in ((axes[0], by_n, "neurons", "neurons (T fixed)"),
                                (axes[1], by_t, "steps", "timesteps T (neurons fixed)")):
        xs = [r[key] for r in sel]
        ax.plot(xs, [r["peer_s"] for r in sel], "o-", label="peer")
        ax.plot(xs, [r["nonvon_s"] for r in sel], "s-", label="nonvon fused")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(xs, [str(v) for v in xs])
        ax.minorticks_off()
        ax.set_xlabel(label)
        ax.set_ylabel("forward + backward (s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,024 neurons, T = 100 (CPU-friendly)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--neurons", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--tf32", choices=["off", "on", "both"], default="off",
                    help="TF32 matrix products on CUDA, for both sides alike")
    ap.add_argument("--sweep", metavar="JSON", help="also time vs neurons and vs T; write rows "
                    "here and a plot beside it (.png)")
    args = ap.parse_args()
    neurons = args.neurons or (1024 if args.quick else 16384)
    steps = args.steps or (100 if args.quick else 500)
    reps = args.reps or 3
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.tf32]
    if args.device == "cpu":
        modes = [False]
    rows = [bench(neurons, args.batch, steps, args.device, reps, m) for m in modes]
    for r in rows:
        print(json.dumps(r), flush=True)
    result = {"bench": "lif", "peer": _peer_name(), "device": args.device,
              "machine": torch.cuda.get_device_name() if args.device == "cuda"
              else (platform.processor() or platform.machine()),
              "torch": torch.__version__, **rows[0]}
    if len(rows) > 1:
        result.update({f"{k}_tf32": v for k, v in rows[1].items()
                       if k in ("peer_s", "nonvon_s", "ratio", "spike_agreement",
                                "matmul_only_s", "ratio_ceiling")})
    if args.sweep:
        srows = sweep(args.device, max(1, reps - 1), modes[-1], args.quick)
        atomic_write_json(args.sweep, srows)
        plot(srows, args.sweep.rsplit(".", 1)[0] + ".png")
        result["sweep"] = args.sweep
    print(json.dumps(result))


if __name__ == "__main__":
    main()
