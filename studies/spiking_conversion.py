"""DNN-to-SNN conversion: accuracy of the converted GPU-baseline MLP vs timesteps.

Trains the ReLU MLP of ``gpu-mlp`` (784-512-512-10, dropout 0.2, 20 epochs), converts it
with max and with 99.9th-percentile normalization, and evaluates the spiking network on
the full test split for each ``T``; also counts and prices the converted network at one
``T`` through the ``snn-converted`` simulator. Writes ``conversion.json`` and
``accuracy_vs_T.png`` and prints, last, one JSON line.

    NONVON_DATA=/path/to/data python studies/spiking_conversion.py --out results/conversion

Target (issue 3): within 0.5 pp of the ANN at T <= 64. The study prints ours beside the
published conversions in ``PUBLISHED`` (accuracy and gap to the ANN, with the ratio).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import nonvon
from nonvon._io import atomic_savefig, atomic_write_text
from nonvon.simulators.spiking.conversion import convert_mlp

# Published ANN -> SNN conversions on MNIST: (label, timesteps, ANN accuracy, SNN accuracy).
PUBLISHED = [
    # Rueckauer et al., "Conversion of continuous-valued deep networks to efficient
    # event-driven networks for image classification", Front. Neurosci. 11:682 (2017),
    # Table 1, MNIST LeNet-style CNN; their SNN ran until convergence, T not fixed
    ("Rueckauer et al. 2017 (CNN)", None, 0.9944, 0.9944),
    # SpikingJelly's ANN2SNN MNIST example (Fang et al., Science Advances 9, 2023), T = 50
    ("SpikingJelly ann2snn (T=50)", 50, 0.9870, 0.9841),
]


@torch.no_grad()
def snn_accuracy(net, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    correct = 0
    for i in range(0, len(x), batch):
        correct += int((net(torch.from_numpy(x[i:i + batch])).argmax(1).numpy() == y[i:i + batch]).sum())
    return correct / len(x)


def compare_published(curve: dict[int, float], ann: float) -> None:
    """Print ours (99.9th-percentile norm) beside each published conversion, with ratios."""
    for label, steps, p_ann, p_snn in PUBLISHED:
        usable = [t for t in curve if steps is None or t <= steps]
        t = max(usable) if usable else max(curve)
        ours = curve[t]
        print(f"{label:<30} SNN {100 * p_snn:6.2f}% (gap to ANN {100 * (p_ann - p_snn):+.2f} pp) | "
              f"ours T={t}: SNN {100 * ours:6.2f}% (gap {100 * (ann - ours):+.2f} pp) | "
              f"accuracy ratio ours/published {ours / p_snn:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/conversion")
    ap.add_argument("--task", default="mnist")
    ap.add_argument("--steps", default="1,2,4,8,16,32,64,128")
    ap.add_argument("--energy-steps", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--limit", type=int, default=None, help="test subset (smoke runs)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reg = nonvon.registry()
    task = reg.task(args.task)
    sim = reg.simulator("snn-converted", epochs=args.epochs, timesteps=args.energy_steps,
                        device="cpu")
    sim.fit(task, seed=0)
    x, y = task.x_test[:args.limit], task.y_test[:args.limit]
    ann = float((sim.ann(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    # normalization statistics from (up to) 10,000 training images
    n_norm = min(10000, len(task.x_train))
    idx = np.sort(np.random.default_rng(0).choice(len(task.x_train), n_norm, replace=False))
    curve = {}
    for norm in ("max", "percentile"):
        curve[norm] = {}
        for T in (int(t) for t in args.steps.split(",")):
            net = convert_mlp(sim.ann, task.x_train[idx], T, task.input_shape, norm, 99.9)
            curve[norm][T] = snn_accuracy(net, x, y)
            print(f"{norm:<10} T={T:<4} SNN {100 * curve[norm][T]:6.2f}%  ANN {100 * ann:6.2f}%",
                  flush=True)
    result = sim.evaluate(task, limit=args.limit)
    energy = {p.name: result.priced(p).energy.energy_j
              for p in reg.presets_for("spiking", sim.op_kinds)}
    record = {"study": "spiking_conversion", "task": args.task, "data_source": task.source,
              "n_test": len(y), "ann_accuracy": ann, "snn_accuracy": curve,
              "energy_steps": args.energy_steps, "energy_accuracy": result.accuracy,
              "energy_per_inference_j": energy, "neurobench": sim.neurobench.to_dict(),
              "ledger": result.ledger.per_inference()}
    atomic_write_text(out / "conversion.json", json.dumps(record, indent=1))
    compare_published(curve["percentile"], ann)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for norm, label in (("max", "max normalization"), ("percentile", "99.9th percentile")):
        ts = sorted(curve[norm])
        ax.semilogx(ts, [100 * curve[norm][t] for t in ts], "o-", base=2, label=label)
    ax.axhline(100 * ann, color="k", ls="--", lw=1, label=f"ANN {100 * ann:.2f}%")
    ax.axhline(100 * ann - 0.5, color="gray", ls=":", lw=1, label="ANN - 0.5 pp")
    ax.set_xlabel("timesteps T")
    ax.set_ylabel(f"{args.task} test accuracy (%)")
    ax.set_ylim(max(0, 100 * ann - 10), 100)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    atomic_savefig(fig, out / "accuracy_vs_T.png", dpi=120)
    print(json.dumps({k: record[k] for k in ("study", "task", "ann_accuracy", "snn_accuracy",
                                              "energy_per_inference_j")}))


if __name__ == "__main__":
    main()
