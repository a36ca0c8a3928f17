"""Hybrid MZI network (``onn-mzi``) on MNIST / Fashion-MNIST: accuracy, energy, robustness curves.

Trains the network once per task (phase-domain training, ideal optics), then evaluates the
same trained phases on chips with different non-idealities -- no retraining -- on the full
test split:

* the default device (shot noise at ``photons_per_mac``, 8-bit DAC and ADC), priced on every
  optical preset, and the ideal device (no noise, ideal converters);
* accuracy vs static phase-noise sigma (several chips per point: mean and spread);
* accuracy vs phase-shifter resolution (bits);
* one row per other non-ideality, each switched on alone.

Writes ``results.json``, ``model-<task>.safetensors`` and ``robustness.png`` to ``--out``.

    NONVON_DATA=/path/to/data nice python studies/onn_mzi.py --out results/onn-mzi
    python studies/onn_mzi.py --quick --out /tmp/onn-quick        # digits, seconds

Targets (issue #4): MNIST >= 98.0%, Fashion-MNIST >= 89% (Fu et al. 2019: 98%).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import numpy as np

import nonvon
from nonvon._io import atomic_savefig, atomic_write_text
from nonvon.cli import parse_overrides
from nonvon.report import format_si
from nonvon.result import extras_to_dict
from nonvon.simulators.optical import MziOnn
from nonvon.simulators.optical.extras import MziRunStats

TARGETS = {"mnist": 0.980, "fashion-mnist": 0.89}
TASK_OVERRIDES = {  # input size and augmentation per task (measured choices, see the report)
    "mnist": {},
    "fashion-mnist": {"n_inputs": 128, "augment_flip": True, "init": "svd", "dropout": 0.2, "epochs": 20,
                      "finetune_epochs": 2},
}
SIGMAS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1)
BITS = (3, 4, 5, 6, 7, 8, 10, 12)
ALONE = {
    "splitter_imbalance_rad=0.02": {"splitter_imbalance_rad": 0.02},
    "mzi_loss_db=0.1": {"mzi_loss_db": 0.1},
    "coupling_loss_db=3 (no shot noise: a calibrated gain undoes it)": {"coupling_loss_db": 3.0},
    "coupling_loss_db=10 with shot noise at photons_per_mac=1": {"coupling_loss_db": 10.0, "shot_noise": True,
                                                                   "photons_per_mac": 1.0},
    "thermal_crosstalk=0.01": {"thermal_crosstalk": 0.01},
    "phase_bits=8": {"phase_bits": 8},
    "phase_noise_rad=0.01": {"phase_noise_rad": 0.01},
    "shot noise at photons_per_mac=1": {"shot_noise": True, "photons_per_mac": 1.0},
    "shot noise at photons_per_mac=0.1": {"shot_noise": True, "photons_per_mac": 0.1},
    "adc_bits=4": {"adc_bits": 4},
    "dac_bits=4": {"dac_bits": 4},
}
IDEAL = {"shot_noise": False, "dac_bits": None, "adc_bits": None}
DEVICE_OPTIONS = {"wavelength_nm", "photons_per_mac", "lo_ratio", "shot_noise", "dac_bits", "adc_bits",
                  "phase_bits", "phase_noise_rad", "splitter_imbalance_rad", "mzi_loss_db",
                  "coupling_loss_db", "thermal_crosstalk", "chip_seed", "eval_batch_size"}


def evaluate(sim: MziOnn, task, limit=None, **changes) -> float:
    """Accuracy on another chip; no photon-budget curve (the default device's result carries it)."""
    return sim.with_config(**{"photon_curve": (), **changes}).evaluate(task, limit=limit).accuracy


def run_task(name: str, args, reg, overrides: dict) -> dict:
    task = reg.task(name)
    if args.quick:
        task = task.subset(1000, 300, seed=0)
    cfg = {**TASK_OVERRIDES.get(name, {}), **(MziOnn.quick if args.quick else {}), **overrides}
    out = Path(args.out)
    saved = Path(args.models) / f"model-{name}.safetensors" if args.models else None
    t0 = time.perf_counter()
    if saved is not None:  # evaluate a network trained earlier (device options may differ)
        sim = MziOnn.load(saved)
        device_cfg = {k: v for k, v in overrides.items() if k in DEVICE_OPTIONS}
        sim = sim.with_config(**device_cfg) if device_cfg else sim
    else:
        sim = MziOnn(**cfg)
        sim.fit(task, seed=args.seed, progress=not args.no_progress)
        sim.save(out / f"model-{name}.safetensors")
    fit_s = time.perf_counter() - t0 if saved is None else sim.fit_wall_s
    result = sim.evaluate(task)
    priced = {p.name: result.priced(p).energy.to_dict()
              for p in reg.presets_for("optical", sim.op_kinds)}
    row = {"task": name, "data_source": task.source, "config": result.config, "fit_wall_s": fit_s,
           "n_test": result.n_evaluated, "accuracy_default_device": result.accuracy,
           "accuracy_ideal_device": evaluate(sim, task, **IDEAL),
           "stats": dataclasses.asdict(result.extra(MziRunStats)),
           "ledger_per_inference": result.ledger.per_inference(), "energy": priced,
           "metrics": result.metrics, "extras": extras_to_dict(result.extras), "target": TARGETS.get(name)}
    chips = range(args.chips)
    row["phase_noise"] = [
        {"sigma_rad": s, "accuracy": [evaluate(sim, task, phase_noise_rad=s, chip_seed=k, **IDEAL)
                                      for k in (chips if s else [0])]} for s in SIGMAS]
    row["phase_bits"] = [{"bits": b, "accuracy": evaluate(sim, task, phase_bits=b, **IDEAL)} for b in BITS]
    row["alone"] = {k: evaluate(sim, task, **{**IDEAL, **v}) for k, v in ALONE.items()}
    print(f"{name}: default device {100 * row['accuracy_default_device']:.2f}%, ideal "
          f"{100 * row['accuracy_ideal_device']:.2f}% (target {100 * TARGETS.get(name, 0):.1f}%), "
          f"fit {fit_s:.0f} s; "
          + ", ".join(f"{k} {format_si(v['energy_j'], 'J')}" for k, v in priced.items()))
    return row


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for row in rows:
        s = [p["sigma_rad"] for p in row["phase_noise"]]
        m = [100 * np.mean(p["accuracy"]) for p in row["phase_noise"]]
        lo = [100 * np.min(p["accuracy"]) for p in row["phase_noise"]]
        hi = [100 * np.max(p["accuracy"]) for p in row["phase_noise"]]
        a.plot(s, m, "o-", label=row["task"])
        a.fill_between(s, lo, hi, alpha=0.2)
        b.plot([p["bits"] for p in row["phase_bits"]], [100 * p["accuracy"] for p in row["phase_bits"]],
               "o-", label=row["task"])
    a.set(xlabel="static phase error sigma (rad), every shifter", ylabel="test accuracy (%)",
          title="accuracy vs phase noise (min-max over chips)")
    b.set(xlabel="phase-shifter resolution (bits over 2 pi)", ylabel="test accuracy (%)",
          title="accuracy vs phase quantization")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("onn-mzi: one trained network per task, evaluated on imperfect chips (no retraining)")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/onn-mzi")
    ap.add_argument("--task", default="mnist,fashion-mnist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chips", type=int, default=3, help="chips (static error draws) per noise level")
    ap.add_argument("--set", action="append", default=[], metavar="onn-mzi.OPTION=VALUE")
    ap.add_argument("--quick", action="store_true", help="digits, small network: a smoke run")
    ap.add_argument("--models", default=None,
                    help="folder with model-<task>.safetensors from an earlier run: evaluate, do not train")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = parse_overrides(args.set).get("onn-mzi", {})
    reg = nonvon.registry()
    tasks = ["digits"] if args.quick else args.task.split(",")
    rows = [run_task(t, args, reg, overrides) for t in tasks]
    plot(rows, out / "robustness.png")
    summary = {"study": "onn_mzi", "machine": platform.processor() or platform.machine(), "rows": rows}
    atomic_write_text(out / "results.json", json.dumps(summary, indent=1, default=str))
    print(json.dumps({"study": "onn_mzi",
                      "accuracy": {r["task"]: r["accuracy_default_device"] for r in rows}}))


if __name__ == "__main__":
    main()
