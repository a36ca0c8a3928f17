"""Diffractive network (``onn-diffractive``) on MNIST / Fashion-MNIST: accuracy, energy, robustness.

Two configurations:

* ``--geometry lin2018`` (default): the geometry of Lin et al., Science 361, 1004 (2018):
  0.4 THz, 200 x 200 pixels of 400 um, 30 mm spacing, 5 phase-only layers. Training it needs a
  GPU; on the H100:

      NONVON_DATA=.device/data python studies/onn_diffractive.py --device cuda --out results/d2nn-lin

* ``--geometry small``: a 48 x 48-pixel, 5-layer stack with 10 mm spacing that trains on a CPU
  in minutes. It is NOT the Lin et al. geometry; it shows that the simulator learns.

The trained layers are then evaluated, without retraining, on the full test split with the
default device (shot noise, 8-bit input DAC and detector ADC), the ideal device, and with the
fabricated phase resolution and static phase error varied (the curves on the first
``--curve-limit`` test samples, 2,000 by default; all 10,000 with ``--curve-limit 0``).
Writes ``results.json`` and ``robustness.png`` to ``--out``.

Targets (issue #4): MNIST >= 97.0%, Fashion-MNIST >= 89% (Lin et al. 2018: 91.75% / 81.13%;
Mengu et al. 2019: 97.18% / 89.13%).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import nonvon
from nonvon.cli import parse_overrides
from nonvon.report import format_si
from nonvon.simulators.optical import DiffractiveOnn, lin2018_note

TARGETS = {"mnist": 0.970, "fashion-mnist": 0.89}
SMALL = {"n_pixels": 48, "pitch_um": 400.0, "spacing_mm": 10.0, "n_layers": 5, "input_fraction": 0.5,
         "detector_fraction": 0.1, "epochs": 2, "batch_size": 128, "lr": 2e-2}
IDEAL = {"shot_noise": False, "dac_bits": None, "adc_bits": None}
BITS = (1, 2, 3, 4, 6, 8)
SIGMAS = (0.0, 0.1, 0.2, 0.4, 0.8)


def run_task(name, args, reg, cfg) -> dict:
    task = reg.task(name)
    if args.limit_train:
        task = task.subset(args.limit_train, None, seed=0)
    sim = DiffractiveOnn(**cfg)
    t0 = time.perf_counter()
    sim.fit(task, seed=args.seed, progress=not args.no_progress)
    fit_s = time.perf_counter() - t0
    result = sim.evaluate(task)
    ev = lambda limit=None, **kw: sim.with_config(**kw).evaluate(task, limit=limit).accuracy  # noqa: E731
    cl = args.curve_limit or None
    priced = {p.name: result.priced(p).energy.to_dict() for p in reg.presets_for("optical", sim.op_kinds)}
    row = {"task": name, "data_source": task.source, "n_train": len(task.y_train), "config": result.config,
           "geometry": args.geometry, "fit_wall_s": fit_s, "accuracy_default_device": result.accuracy,
           "accuracy_ideal_device": ev(**IDEAL), "stats": sim.last_stats,
           "ledger_per_inference": result.ledger.per_inference(), "energy": priced,
           "target": TARGETS.get(name),
           "curve_test_samples": cl or len(task.y_test),
           "phase_bits": [{"bits": b, "accuracy": ev(cl, phase_bits=b, **IDEAL)} for b in BITS],
           "phase_noise": [{"sigma_rad": s, "accuracy": ev(cl, phase_noise_rad=s, **IDEAL)} for s in SIGMAS]}
    print(f"{name} ({args.geometry}): default device {100 * result.accuracy:.2f}%, ideal "
          f"{100 * row['accuracy_ideal_device']:.2f}%, fit {fit_s:.0f} s; "
          + ", ".join(f"{k} {format_si(v['energy_j'], 'J')}" for k, v in priced.items()), flush=True)
    return row


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for r in rows:
        a.plot([p["bits"] for p in r["phase_bits"]], [100 * p["accuracy"] for p in r["phase_bits"]], "o-",
               label=f"{r['task']} ({r['geometry']})")
        b.plot([p["sigma_rad"] for p in r["phase_noise"]], [100 * p["accuracy"] for p in r["phase_noise"]],
               "o-", label=f"{r['task']} ({r['geometry']})")
    a.set(xlabel="fabricated phase levels (bits over 2 pi)", ylabel="test accuracy (%)")
    b.set(xlabel="static phase error sigma (rad)", ylabel="test accuracy (%)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("onn-diffractive: trained layers under fabrication errors (no retraining)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/onn-diffractive")
    ap.add_argument("--task", default="mnist,fashion-mnist")
    ap.add_argument("--geometry", default="lin2018", choices=["lin2018", "small"])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit-train", type=int, default=None, help="train on a random subset (smoke runs)")
    ap.add_argument("--curve-limit", type=int, default=2000, help="test samples for the robustness curves")
    ap.add_argument("--set", action="append", default=[], metavar="onn-diffractive.OPTION=VALUE")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = {**(SMALL if args.geometry == "small" else {}), "device": args.device,
           **parse_overrides(args.set).get("onn-diffractive", {})}
    print("geometry:", lin2018_note() if args.geometry == "lin2018" else f"small (not Lin et al.): {SMALL}")
    reg = nonvon.registry()
    rows = [run_task(t, args, reg, cfg) for t in args.task.split(",")]
    plot(rows, out / "robustness.png")
    import torch

    machine = torch.cuda.get_device_name() if torch.cuda.is_available() else (platform.processor() or "cpu")
    summary = {"study": "onn_diffractive", "machine": machine, "rows": rows}
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=str))
    print(json.dumps({"study": "onn_diffractive", "geometry": args.geometry, "machine": machine,
                      "accuracy": {r["task"]: r["accuracy_default_device"] for r in rows},
                      "accuracy_ideal": {r["task"]: r["accuracy_ideal_device"] for r in rows},
                      "phase_bits_curve": {r["task"]: [p["accuracy"] for p in r["phase_bits"]]
                                           for r in rows}}))


if __name__ == "__main__":
    main()
