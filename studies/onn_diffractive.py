"""Diffractive network (``onn-diffractive``) on MNIST / Fashion-MNIST: accuracy, energy, robustness.

Reproduces the 5-layer phase-only diffractive classifier of Lin et al. 2018 and sets it beside
the published figures (issue #7):

* Lin et al., "All-optical machine learning using diffractive deep neural networks", Science 361,
  1004 (2018): 91.75% MNIST, 81.13% Fashion-MNIST (numerical, 5 phase-only layers, trained with a
  mean-squared-error loss);
* Mengu et al., "Analysis of diffractive optical neural networks and their integration with
  electronic neural networks", IEEE J. Sel. Top. Quantum Electron. 26, 3700114 (2020), abstract:
  97.18% / 89.13% with the same kind of stack trained with a softmax cross-entropy loss.

nonvon trains with softmax cross-entropy on the detector powers normalised by their sum, times a
learnable temperature (``DiffractiveNetwork.logits``), which is the change Mengu et al. credit.

Two configurations:

* ``--geometry lin2018`` (default): 0.4 THz, 200 x 200 pixels of 400 um, 30 mm spacing, 5
  phase-only layers. Training needs a GPU; on an H100, both tasks in about 6-7 minutes:

      NONVON_DATA=.device/data python studies/onn_diffractive.py --device cuda \\
          --train-budget-s 330 --out results/d2nn-lin --no-progress

  ``--train-budget-s`` times a few training steps on the device first and picks the number of
  epochs (at most ``--max-epochs``) that fits the budget, shared among the tasks; the epochs
  used are recorded in the results (rerun with ``--set onn-diffractive.epochs=N`` to repeat).
* ``--geometry small``: a 48 x 48-pixel, 5-layer stack with 10 mm spacing that trains on a CPU
  in minutes. It is NOT the Lin et al. geometry; it shows that the simulator learns.

The trained layers are then evaluated, without retraining, on the full test split with the
default device (shot noise, 8-bit input DAC and detector ADC; the result carries the
accuracy-vs-photons curve), the ideal device, and with the fabricated phase resolution and
static phase error varied (on the first ``--curve-limit`` test samples, 2,000 by default).
Writes ``results.json`` (after each task, so a cut-short run keeps what finished),
``robustness.png`` and ``photon_budget.png`` to ``--out``.

Targets (issue #4): MNIST >= 97.0%, Fashion-MNIST >= 89%.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

import nonvon
from nonvon._io import atomic_savefig, atomic_write_bytes, atomic_write_text
from nonvon.cli import parse_overrides
from nonvon.result import extras_to_dict
from nonvon.simulators.optical import DiffractiveConfig, DiffractiveOnn, lin2018_note
from nonvon.simulators.optical.diffraction import DiffractiveNetwork
from nonvon.simulators.optical.extras import DiffractiveRunStats
from nonvon.simulators.optical.figures import PHOTON_BUDGET_FIGURE, photon_budget_png

TARGETS = {"mnist": 0.970, "fashion-mnist": 0.89}  # issue #4
PUBLISHED = {  # (label, {task: test accuracy}); sources in the module docstring
    "Lin et al. 2018": {"mnist": 0.9175, "fashion-mnist": 0.8113},
    "Mengu et al. 2019": {"mnist": 0.9718, "fashion-mnist": 0.8913},
}
SMALL = {"n_pixels": 48, "pitch_um": 400.0, "spacing_mm": 10.0, "n_layers": 5, "input_fraction": 0.5,
         "detector_fraction": 0.1, "epochs": 2, "batch_size": 128, "lr": 2e-2}
IDEAL = {"shot_noise": False, "dac_bits": None, "adc_bits": None, "photon_curve": ()}
BITS = (1, 2, 3, 4, 6, 8)
SIGMAS = (0.0, 0.1, 0.2, 0.4, 0.8)


def seconds_per_step(cfg: DiffractiveConfig, x: np.ndarray, n_classes: int, device: torch.device,
                     steps: int = 8) -> float:
    """Wall time of one training step (forward, backward, Adam) of a fresh stack on ``device``."""
    torch.manual_seed(0)
    net = DiffractiveNetwork(cfg.geometry, n_classes, cfg.modulation, cfg.detection).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    xb = torch.from_numpy(np.ascontiguousarray(x[:cfg.batch_size])).to(device)
    yb = torch.arange(len(xb), device=device) % n_classes

    def step():
        loss = torch.nn.functional.cross_entropy(net(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def epochs_for_budget(budget_s: float, step_s: float, n_train: int, batch_size: int, max_epochs: int) -> int:
    """Whole epochs that fit ``budget_s`` (10% kept for the data shuffles and the last batch)."""
    per_epoch = step_s * math.ceil(n_train / batch_size)
    return max(1, min(max_epochs, int(0.9 * budget_s / per_epoch)))


def compare_published(task: str, accuracy: float, epochs: int) -> list[dict]:
    """Ours beside each published figure, with the ratio and, below the target, why."""
    rows = []
    for label, figures in PUBLISHED.items():
        if task in figures:
            rows.append({"reference": label, "published": figures[task], "ours": accuracy,
                         "ratio": accuracy / figures[task]})
    target = TARGETS.get(task)
    for r in rows:
        note = ""
        if r["reference"].startswith("Lin") and r["ratio"] > 1:
            note = "above Lin et al.: they trained with a mean-squared-error loss; cross-entropy is used here"
        elif target is not None and accuracy < target:
            note = (f"below the issue #4 target {100 * target:.1f}% after {epochs} epoch(s): the stack was "
                    "still learning (see train_loss); train longer (--train-budget-s or --set "
                    "onn-diffractive.epochs=N)")
        r["note"] = note
    return rows


def run_task(name, args, reg, cfg, budget_per_task) -> dict:
    task = reg.task(name)
    if args.limit_train or args.limit_test:
        task = task.subset(args.limit_train, args.limit_test, seed=0)
    chosen = dict(cfg)
    step_s = None
    if budget_per_task:
        probe = DiffractiveOnn(**chosen)
        step_s = seconds_per_step(probe.config, task.x_train, task.n_classes, probe.device)
        chosen["epochs"] = epochs_for_budget(budget_per_task, step_s, len(task.y_train),
                                             probe.config.batch_size, args.max_epochs)
        print(f"{name}: {1e3 * step_s:.1f} ms per training step on {probe.device}; "
              f"{chosen['epochs']} epoch(s) fit {budget_per_task:.0f} s", flush=True)
    sim = DiffractiveOnn(**chosen)
    t0 = time.perf_counter()
    sim.fit(task, seed=args.seed, progress=not args.no_progress)
    fit_s = time.perf_counter() - t0
    result = sim.evaluate(task)
    cl = args.curve_limit or None

    def ev(limit=None, **kw):
        return sim.with_config(**{"photon_curve": (), **kw}).evaluate(task, limit=limit).accuracy

    priced = {p.name: result.priced(p).energy.to_dict() for p in reg.presets_for("optical", sim.op_kinds)}
    row = {"task": name, "data_source": task.source, "n_train": len(task.y_train), "config": result.config,
           "geometry": args.geometry, "fit_wall_s": fit_s, "seconds_per_train_step": step_s,
           "train_loss": sim.train_loss, "accuracy_default_device": result.accuracy,
           "accuracy_ideal_device": ev(**IDEAL), "metrics": result.metrics,
           "stats": dataclasses.asdict(result.extra(DiffractiveRunStats)),
           "extras": extras_to_dict(result.extras),
           "ledger_per_inference": result.ledger.per_inference(), "energy": priced,
           "target": TARGETS.get(name), "curve_test_samples": cl or len(task.y_test),
           "phase_bits": [{"bits": b, "accuracy": ev(cl, phase_bits=b, **IDEAL)} for b in BITS],
           "phase_noise": [{"sigma_rad": s, "accuracy": ev(cl, phase_noise_rad=s, **IDEAL)} for s in SIGMAS]}
    row["published"] = compare_published(name, result.accuracy, sim.config.epochs)
    print(f"{name} ({args.geometry}): default device {100 * result.accuracy:.2f}%, ideal "
          f"{100 * row['accuracy_ideal_device']:.2f}%, {sim.config.epochs} epochs in {fit_s:.0f} s; "
          + ", ".join(f"{k} {v['energy_j']:.3g} J" for k, v in priced.items()), flush=True)
    print(f"  training loss per epoch: {', '.join(f'{v:.4f}' for v in sim.train_loss)}", flush=True)
    for p in row["published"]:
        print(f"  vs {p['reference']}: ours {100 * p['ours']:.2f}% / published {100 * p['published']:.2f}% "
              f"= {p['ratio']:.3f}" + (f"  ({p['note']})" if p["note"] else ""), flush=True)
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
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/onn-diffractive")
    ap.add_argument("--task", default="mnist,fashion-mnist")
    ap.add_argument("--geometry", default="lin2018", choices=["lin2018", "small"])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-budget-s", type=float, default=None,
                    help="training seconds for all tasks together; picks the epochs from a timed step")
    ap.add_argument("--max-epochs", type=int, default=30, help="cap on the epochs --train-budget-s picks")
    ap.add_argument("--limit-train", type=int, default=None, help="train on a random subset (smoke runs)")
    ap.add_argument("--limit-test", type=int, default=None, help="test on a random subset (smoke runs)")
    ap.add_argument("--curve-limit", type=int, default=2000, help="test samples for the robustness curves")
    ap.add_argument("--set", action="append", default=[], metavar="onn-diffractive.OPTION=VALUE")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = {**(SMALL if args.geometry == "small" else {}), "device": args.device,
           **parse_overrides(args.set).get("onn-diffractive", {})}
    if args.train_budget_s is not None and "epochs" in parse_overrides(args.set).get("onn-diffractive", {}):
        ap.error("give either --train-budget-s or --set onn-diffractive.epochs=N, not both")
    print("geometry:", lin2018_note() if args.geometry == "lin2018" else f"small (not Lin et al.): {SMALL}",
          flush=True)
    machine = torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" \
        else (platform.processor() or platform.machine() or "cpu")
    reg = nonvon.registry()
    tasks = args.task.split(",")
    budget = args.train_budget_s / len(tasks) if args.train_budget_s else None
    rows = []
    for t in tasks:
        rows.append(run_task(t, args, reg, cfg, budget))
        summary = {"study": "onn_diffractive", "machine": machine, "published": PUBLISHED, "rows": rows}
        atomic_write_text(out / "results.json", json.dumps(summary, indent=1, default=str))
    plot(rows, out / "robustness.png")
    png = photon_budget_png([{**r, "simulator": "onn-diffractive", "seed": args.seed} for r in rows])
    if png is not None:
        atomic_write_bytes(out / PHOTON_BUDGET_FIGURE, png)
    print(json.dumps({"study": "onn_diffractive", "geometry": args.geometry, "machine": machine,
                      "epochs": {r["task"]: r["config"]["epochs"] for r in rows},
                      "accuracy": {r["task"]: r["accuracy_default_device"] for r in rows},
                      "accuracy_ideal": {r["task"]: r["accuracy_ideal_device"] for r in rows},
                      "vs_published": {r["task"]: {p["reference"]: round(p["ratio"], 4)
                                                   for p in r["published"]} for r in rows},
                      "meets_target": {r["task"]: r["accuracy_default_device"] >= r["target"]
                                       for r in rows if r["target"] is not None}}))


if __name__ == "__main__":
    main()
