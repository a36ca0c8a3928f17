"""Göltz et al. 2021 reproduced: TTFS on MNIST (784-350-10) and on BrainScaleS-2 (16 x 16, 256-246-10).

Published (Göltz, Kriener, Baumbach, Billaudelle, Breitwieser, Cramer, Dold, Kungl, Senn,
Schemmel, Meier and Petrovici, "Fast and energy-efficient neuromorphic deep learning with
first-spike times", Nature Machine Intelligence 3, 823-835, 2021):

- 784-350-10 in software, full MNIST: 97.1 +- 0.1% test accuracy (97.0-97.2%);
- 256-246-10 on BrainScaleS-2, 16 x 16 MNIST (centre 24 x 24 crop, downsampled): 96.9%
  test accuracy, 8.4 µJ and 48 µs per image (measured on the chip).

What we run:

1. ``snn-ttfs`` (784-350-10, fp32, closed-form first-spike times of ``tau_m = 2 tau_s``
   LIF neurons, Göltz et al.'s loss, regularizer and weight bumping; plus, our addition,
   training images shifted by up to one pixel) on full MNIST, priced on the CMOS presets
   (an event-driven digital accelerator).
2. ``brainscales2-ttfs`` (the same recipe with Göltz et al.'s 16 x 16 batch size of 200;
   16 x 16 inputs, 256-246-10, 6-bit weights, two neuron circuits per neuron so the
   network fits the chip) priced on the ``brainscales2``
   preset: energy = chip power (Cramer et al. 2022, not fitted to 8.4 µJ) x emulation time
   per image (run window from our own output spike times + a relaxation pause, at a
   hardware time constant that is an assumption; see the simulator's docstring).

The DESIGN targets: 784-350-10 >= 97.5% on the full test split; BrainScaleS-2 energy per
image within 2x of 8.4 µJ. Where a figure is off, the study prints why.

Commands::

    NONVON_DATA=/path/to/data python studies/ttfs_goltz.py --device cuda --out results/ttfs-goltz
    python studies/ttfs_goltz.py --quick --task digits --out /tmp/ttfs-goltz        # smoke, seconds

Training stops at the per-setting wall-clock budget (``--budget-s``, re-planned after the
first epochs so the learning-rate schedule completes), so the two settings finish within
about the sum of the budgets plus evaluation. Writes (atomically) ``ttfs_goltz.json`` and
``ttfs_goltz.png`` and prints, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import nonvon
from nonvon._io import atomic_savefig, atomic_write_text
from nonvon.report import format_si
from nonvon.result import library_versions

PAPER = "Göltz et al., Nature Machine Intelligence 3, 823-835 (2021)"
PUBLISHED = {
    "software": {"source": f"{PAPER}: 784-350-10, full MNIST, simulation", "accuracy": 0.971,
                 "accuracy_range": [0.970, 0.972]},
    "brainscales2": {"source": f"{PAPER}: 256-246-10, 16x16 MNIST, on BrainScaleS-2",
                     "accuracy": 0.969, "energy_per_image_j": 8.4e-6, "time_per_image_s": 48e-6},
}
ACCURACY_TARGET = 0.975  # DESIGN.md section 5, TTFS 784-350-10


def settings(quick: bool, device: str, budgets: tuple[float, float], epochs: int) -> list[dict]:
    if quick:
        small = {"hidden": (32,), "epochs": 3, "batch_size": 20, "lr": 0.03, "device": device}
        return [{"key": "software", "simulator": "snn-ttfs", "config": small,
                 "presets": ["cmos-45nm", "cmos-7nm"]},
                {"key": "brainscales2", "simulator": "brainscales2-ttfs", "config": dict(small),
                 "presets": ["brainscales2"]}]
    common = {"epochs": epochs, "batch_size": 100, "lr": 5e-3, "lr_step": max(1, epochs // 4),
              "lr_gamma": 0.5, "time_noise": 0.1, "device": device}
    return [{"key": "software", "simulator": "snn-ttfs",
             "config": {**common, "hidden": (350,), "time_budget_s": budgets[0], "augment_shift": 1},
             "presets": ["cmos-45nm", "cmos-7nm"]},
            {"key": "brainscales2", "simulator": "brainscales2-ttfs",
             "config": {**common, "hidden": (246,), "time_budget_s": budgets[1], "batch_size": 200},
             "presets": ["brainscales2"]}]


def run_setting(reg, task, s: dict, seed: int, monitor: int, progress: bool) -> dict:
    sim = reg.simulator(s["simulator"], **s["config"])
    if monitor:
        sim.monitor = (task.x_test[:monitor], task.y_test[:monitor])
    start = time.perf_counter()
    sim.fit(task, seed=seed, progress=progress)
    fit_s = time.perf_counter() - start
    result = sim.evaluate(task)
    priced = {}
    for name in s["presets"]:
        e = result.priced(reg.preset(name)).energy
        priced[name] = {"energy_per_inference_j": e.energy_j, "low_j": e.low_j, "high_j": e.high_j,
                        "latency_per_inference_s": e.latency_s, "breakdown_j": e.breakdown_j}
    times = sim.spike_times
    record = {"key": s["key"], "simulator": s["simulator"],
              "network": "-".join(str(n) for n in sim.network.sizes),
              "config": {k: v for k, v in result.config.items()},
              "accuracy": result.accuracy, "n_evaluated": result.n_evaluated,
              "epochs_run": len(sim.history), "fit_wall_s": fit_s, "eval_wall_s": result.sim_wall_s,
              "history": sim.history, "events_per_inference": sim.counts,
              "ledger_per_inference": result.ledger.per_inference(), "priced": priced,
              "silent_output_fraction": float(np.mean(~np.isfinite(times[-1]).any(1))),
              "output_first_spike": [None if not np.isfinite(t) else float(t)
                                     for t in np.min(times[-1], axis=1, initial=np.inf)]}
    if s["simulator"] == "brainscales2-ttfs":
        c = sim.config
        record["chip"] = {"window_tau_s": sim.window, "relax_tau_m": c.relax_tau_m,
                          "tau_syn_hw_s": c.tau_syn_hw_s, "time_per_image_s": sim.image_time_s(),
                          "circuits_per_neuron": c.circuits_per_neuron, "weight_bits": c.weight_bits}
    return record


def compare(records: dict) -> dict:
    """Ours vs published, with ratios, and the reasons for any miss."""
    out, notes = {}, []
    sw, hw = records["software"], records["brainscales2"]
    pub_sw, pub_hw = PUBLISHED["software"], PUBLISHED["brainscales2"]
    out["software_accuracy_ratio"] = sw["accuracy"] / pub_sw["accuracy"]
    out["software_meets_target"] = sw["accuracy"] >= ACCURACY_TARGET
    if not out["software_meets_target"]:
        notes.append(f"{sw['network']} reached {100 * sw['accuracy']:.2f}%, below the "
                     f"{100 * ACCURACY_TARGET}% "
                     f"target after {sw['epochs_run']} epochs ({sw['fit_wall_s']:.0f} s of training; "
                     f"Göltz et al. train 150 epochs)")
    out["brainscales2_accuracy_ratio"] = hw["accuracy"] / pub_hw["accuracy"]
    e = hw["priced"]["brainscales2"]
    out["energy_ratio"] = e["energy_per_inference_j"] / pub_hw["energy_per_image_j"]
    out["energy_ratio_low"] = e["low_j"] / pub_hw["energy_per_image_j"]
    out["energy_ratio_high"] = e["high_j"] / pub_hw["energy_per_image_j"]
    out["time_ratio"] = hw["chip"]["time_per_image_s"] / pub_hw["time_per_image_s"]
    out["energy_within_2x"] = 0.5 <= out["energy_ratio"] <= 2.0
    # the two timing assumptions, moved: hardware tau_s and the pause between images
    chip, power_w = hw["chip"], e["energy_per_inference_j"] / hw["chip"]["time_per_image_s"]
    tau = hw["config"]["tau_syn"]
    out["sensitivity"] = [
        {"tau_syn_hw_s": t_hw, "relax_tau_m": relax,
         "energy_ratio": power_w * (chip["window_tau_s"] + relax * 2 * tau) * t_hw / tau
         / pub_hw["energy_per_image_j"]}
        for t_hw in (2.5e-6, 5e-6, 10e-6) for relax in (1.0, 3.0, 5.0)]
    if not out["energy_within_2x"]:
        power_w = e["energy_per_inference_j"] / hw["chip"]["time_per_image_s"]
        pub_power = pub_hw["energy_per_image_j"] / pub_hw["time_per_image_s"]
        notes.append(f"BrainScaleS-2 energy {out['energy_ratio']:.2f}x the measured 8.4 µJ: our time per "
                     f"image is {out['time_ratio']:.2f}x their 48 µs and our chip power "
                     f"{power_w * 1e3:.0f} mW is {power_w / pub_power:.2f}x the {pub_power * 1e3:.0f} mW "
                     "their two figures imply")
    out["notes"] = notes
    return out


def plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sw, hw = record["settings"]["software"], record["settings"]["brainscales2"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    ax = axes[0]
    shown = [100 * sw["accuracy"], 100 * hw["accuracy"]]
    for rec, label in ((sw, f"{sw['network']} (snn-ttfs)"), (hw, f"{hw['network']} (brainscales2-ttfs)")):
        epochs = [h["epoch"] for h in rec["history"]]
        train = [100 * h["train_accuracy"] for h in rec["history"]]
        line, = ax.plot(epochs, train, "--.", lw=1, label=f"{label}, train")
        shown += train
        if all("monitor_accuracy" in h for h in rec["history"]):
            test = [100 * h["monitor_accuracy"] for h in rec["history"]]
            ax.plot(epochs, test, "-o", ms=3, color=line.get_color(), label=f"{label}, test subset")
            shown += test
    for key, style in (("software", ":"), ("brainscales2", "-.")):
        ax.axhline(100 * PUBLISHED[key]["accuracy"], color="k", ls=style, lw=1,
                   label=f"Göltz et al. {'software' if key == 'software' else 'BSS-2'}: "
                         f"{100 * PUBLISHED[key]['accuracy']:.1f}%")
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title=f"training ({record['task']})",
           ylim=(max(0.0, min(shown) - 2), 100))
    ax.legend(fontsize=7)
    ax = axes[1]
    first = np.array([t for t in hw["output_first_spike"] if t is not None], dtype=float)
    first = first[np.isfinite(first)]
    if len(first):
        ax.hist(first, bins=40, color="C1", alpha=0.8, label="first output spike (decision)")
    chip = hw["chip"]
    ax.axvline(chip["window_tau_s"], color="k", ls="--", lw=1, label="run window (late spikes lost)")
    ax.axvline(hw["config"]["t_late"] * hw["config"]["tau_syn"], color="C0", lw=1,
               label="last input spike (black pixels)")
    ax.set(xlabel="time (units of tau_s)", ylabel="test images",
           title=f"BrainScaleS-2 setting: {chip['time_per_image_s'] * 1e6:.1f} µs per image")
    ax.legend(fontsize=7)
    ax = axes[2]
    e = hw["priced"]["brainscales2"]
    pub = PUBLISHED["brainscales2"]["energy_per_image_j"] * 1e6
    ax.bar(["Göltz et al.\n(measured)", "nonvon\n(brainscales2)"], [pub, e["energy_per_inference_j"] * 1e6],
           color=["0.6", "C1"], yerr=[[0, (e["energy_per_inference_j"] - e["low_j"]) * 1e6],
                                      [0, (e["high_j"] - e["energy_per_inference_j"]) * 1e6]], capsize=4)
    ax.axhspan(pub / 2, pub * 2, color="k", alpha=0.07, label="within 2x")
    ax.set(ylabel="energy per image (µJ)", yscale="log",
           title=f"ratio {record['comparison']['energy_ratio']:.2f}x")
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=130)
    plt.close(fig)


def _device_name(device: str) -> str:
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/ttfs-goltz")
    ap.add_argument("--task", default="mnist", help="registered task (full test split evaluated)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--quick", action="store_true", help="tiny networks and budgets (smoke runs)")
    ap.add_argument("--epochs", type=int, default=100,
                    help="most epochs per setting (the budget usually stops it first)")
    ap.add_argument("--budget-s", type=float, nargs=2, default=[280.0, 120.0],
                    metavar=("SOFTWARE", "BSS2"), help="training wall-clock budget per setting")
    ap.add_argument("--monitor", type=int, default=2000,
                    help="test images evaluated after every epoch for the curve (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    reg = nonvon.registry()
    task = reg.task(args.task)
    if args.quick:
        task = task.subset(min(600, len(task.y_train)), min(200, len(task.y_test)), seed=0)
    records = {}
    for s in settings(args.quick, args.device, tuple(args.budget_s), args.epochs):
        print(f"== {s['key']}: {s['simulator']} on {task.name}", flush=True)
        rec = run_setting(reg, task, s, args.seed, args.monitor, not args.no_progress)
        records[s["key"]] = rec
        print(f"   {rec['network']}: {100 * rec['accuracy']:.2f}% after {rec['epochs_run']} epochs "
              f"({rec['fit_wall_s']:.0f} s)", flush=True)
    record = {"study": "ttfs_goltz", "task": task.name, "data_source": task.source,
              "published": PUBLISHED, "accuracy_target": ACCURACY_TARGET, "settings": records,
              "versions": library_versions(), "device": _device_name(args.device)}
    record["comparison"] = compare(records)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "ttfs_goltz.json", json.dumps(record, indent=1, default=float, allow_nan=False))
    plot(record, out / "ttfs_goltz.png")

    cmp_, sw, hw = record["comparison"], records["software"], records["brainscales2"]
    pub_sw, pub_hw = PUBLISHED["software"], PUBLISHED["brainscales2"]
    e = hw["priced"]["brainscales2"]
    rows = [
        (f"{sw['network']} accuracy", f"{100 * sw['accuracy']:.2f}%", "97.0-97.2%",
         f"{cmp_['software_accuracy_ratio']:.3f}"),
        (f"{hw['network']} accuracy (BSS-2)", f"{100 * hw['accuracy']:.2f}%",
         f"{100 * pub_hw['accuracy']:.1f}%",
         f"{cmp_['brainscales2_accuracy_ratio']:.3f}"),
        ("energy per image (BSS-2)", f"{format_si(e['energy_per_inference_j'], 'J')} "
         f"({format_si(e['low_j'], 'J')}-{format_si(e['high_j'], 'J')})",
         format_si(pub_hw["energy_per_image_j"], "J"), f"{cmp_['energy_ratio']:.2f}"),
        ("time per image (BSS-2)", format_si(hw["chip"]["time_per_image_s"], "s"),
         format_si(pub_hw["time_per_image_s"], "s"), f"{cmp_['time_ratio']:.2f}"),
    ]
    for name, p in sw["priced"].items():
        rows.append((f"{sw['network']} energy, {name}", format_si(p["energy_per_inference_j"], "J"), "", ""))
    print(f"\n{'':32} {'ours':>26} {'published':>12} {'ratio':>7}")
    for r in rows:
        print(f"{r[0]:32} {r[1]:>26} {r[2]:>12} {r[3]:>7}")
    print(f"published: {pub_sw['source']}; {pub_hw['source']}")
    print("energy ratio if the timing assumptions move (tau_s on chip x pause in tau_m): " + ", ".join(
        f"{1e6 * r['tau_syn_hw_s']:g} µs x {r['relax_tau_m']:g}: {r['energy_ratio']:.2f}"
        for r in cmp_["sensitivity"]))
    for note in cmp_["notes"]:
        print(f"note: {note}")
    summary = {"study": "ttfs_goltz", "task": task.name, "accuracy_784_350_10": sw["accuracy"],
               "accuracy_bss2": hw["accuracy"], "energy_bss2_j": e["energy_per_inference_j"],
               "published_energy_j": pub_hw["energy_per_image_j"], "energy_ratio": cmp_["energy_ratio"],
               "time_bss2_s": hw["chip"]["time_per_image_s"], "time_ratio": cmp_["time_ratio"],
               "epochs": [sw["epochs_run"], hw["epochs_run"]]}
    print(json.dumps(summary))
    return record


if __name__ == "__main__":
    main()
