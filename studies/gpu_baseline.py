"""GPU baseline on full MNIST and Fashion-MNIST: accuracy, modelled and measured energy.

Trains the MLP and the CNN with their default (target-reaching) configurations,
prices each on every GPU-capable preset and, on a machine with an NVIDIA GPU,
measures energy per inference with NVML at batch 1 and batch 1024.

    NONVON_DATA=/path/to/data python studies/gpu_baseline.py --out results/gpu-baseline

Targets (DESIGN.md section 5): MNIST MLP >= 98.2%, CNN >= 99.3%;
Fashion-MNIST MLP >= 89.5%, CNN >= 91.5%.
"""

from __future__ import annotations

import argparse
import json
import platform

import torch

import nonvon
from nonvon.cli import parse_overrides
from nonvon.report import format_si

TARGETS = {("mnist", "gpu-mlp"): 0.982, ("mnist", "gpu-cnn"): 0.993,
           ("fashion-mnist", "gpu-mlp"): 0.895, ("fashion-mnist", "gpu-cnn"): 0.915}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/gpu-baseline")
    ap.add_argument("--task", default="mnist,fashion-mnist")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--set", action="append", default=[], metavar="SIM.OPTION=VALUE")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()

    outcome = nonvon.compare(args.task.split(","), ["gpu-mlp", "gpu-cnn"],
                             seeds=[int(s) for s in args.seeds.split(",")], out_dir=args.out,
                             overrides=parse_overrides(args.set), progress=not args.no_progress)
    machine = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor()
    print(f"\nmachine: {machine or platform.machine()}, torch {torch.__version__}")
    print(f"{'task':<14} {'simulator':<8} {'preset / measurement':<22} {'acc':>7} {'target':>7} "
          f"{'energy/inf':>11} {'latency/inf':>11}")
    for r in outcome.rows:
        target = TARGETS.get((r["task"], r["simulator"]))
        flag = "" if target is None else ("ok" if r["accuracy"] >= target else "MISSED")
        print(f"{r['task']:<14} {r['simulator']:<8} {r['preset']:<22} {100 * r['accuracy']:6.2f}% "
              f"{'' if target is None else f'{100 * target:.1f}%':>7} "
              f"{format_si(r['energy_per_inference_j'], 'J'):>11} "
              f"{format_si(r['latency_per_inference_s'], 's'):>11} {flag}")
    summary = [{k: r[k] for k in ("task", "simulator", "preset", "kind", "accuracy",
                                  "energy_per_inference_j", "latency_per_inference_s")}
               for r in outcome.rows]
    print(json.dumps({"study": "gpu_baseline", "machine": machine, "rows": summary}))


if __name__ == "__main__":
    main()
