"""HDC dimension sweep: accuracy and energy per inference vs D, per encoder, learner and model.

For every encoder (random projection, ID-level), hypervector dimension D, model (binary
BSC, bipolar MAP) and learner (centroid, AdaptHD-style, OnlineHD) the HDC simulator is
trained on the task's full training split, evaluated on its full test split, and its
counted ledger priced on every HDC preset that can price it. Each training set is
encoded once per (encoder, D) and shared by the learners and models.

    NONVON_DATA=/path/to/data python studies/hdc_dimension_sweep.py --task mnist \
        --out results/hdc-sweep

For binary cells the packed XOR/popcount predictions are compared with torchhd's
unpacked ``hamming_similarity`` over the whole test split (``packed_equals_unpacked``).
Writes ``sweep.json`` (one row per cell, rewritten atomically after each cell; a rerun
skips the cells already there) and ``accuracy_energy_vs_dimension.png``. Targets
(DESIGN.md section 5): MNIST >= 97.5% at D = 10,000 and >= 95% at D <= 1,024;
Fashion-MNIST >= 87% at D = 10,000.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import nonvon
from nonvon._io import atomic_savefig, atomic_write_text
from nonvon.report import format_si
from nonvon.simulators.hdc import HDCIDLevel, HDCProjection

PRESETS = ("hdc-cmos-45nm", "hdc-asic-28nm", "hdc-imc-pcm")


def _cells(args) -> list[dict]:
    return [{"encoder": e, "dimensions": d, "model": m, "learner": lr}
            for e in args.encoders for d in args.dims for m in args.models for lr in args.learners]


def _key(cell: dict) -> str:
    return f"{cell['encoder']}/{cell['dimensions']}/{cell['model']}/{cell['learner']}"


def run(args) -> list[dict]:
    reg = nonvon.registry()
    task = reg.task(args.task)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sweep.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    done = {_key(r) for r in rows if r["task"] == task.name and r["epochs"] == args.epochs}
    presets = [reg.preset(p) for p in PRESETS]
    cache: dict = {}
    last_encoding = None
    for cell in _cells(args):
        if _key(cell) in done:
            continue
        if (cell["encoder"], cell["dimensions"]) != last_encoding:
            cache.clear()  # keep one encoded training set in memory at a time
            last_encoding = (cell["encoder"], cell["dimensions"])
        rf = args.receptive_field if cell["encoder"] == "projection" else 0
        cls = HDCProjection if cell["encoder"] == "projection" else HDCIDLevel  # their defaults
        sim = cls(dimensions=cell["dimensions"], model=cell["model"], learner=cell["learner"],
                  receptive_field=rf, epochs=args.epochs, pad=True)
        sim.name = f"hdc-{cell['encoder']}"
        sim.encoding_cache = cache
        t0 = time.perf_counter()
        result = sim.fit(task, seed=args.seed, progress=not args.no_progress).evaluate(task)
        row = {"task": task.name, **cell, "epochs": args.epochs, "receptive_field": rf,
               "lr": sim.config.lr, "margin": sim.config.margin,
               "seed": args.seed, "accuracy": result.accuracy, "n_test": result.n_evaluated,
               "fit_wall_s": result.fit_wall_s, "sim_wall_s": result.sim_wall_s,
               "cell_wall_s": time.perf_counter() - t0,
               "ops_per_inference": result.ledger.per_inference(), "energy_j": {},
               "energy_breakdown_j": {}}
        for p in presets:
            if p.can_price(sim.op_kinds):
                continue
            rep = result.priced(p).energy
            row["energy_j"][p.name] = {"nominal": rep.energy_j, "low": rep.low_j, "high": rep.high_j}
            row["energy_breakdown_j"][p.name] = rep.breakdown_j
        if cell["model"] == "bsc":  # the packed path must agree with torchhd's unpacked one
            packed = sim._predict(task.x_test).labels
            row["packed_equals_unpacked"] = bool((packed == sim.predict_unpacked(task.x_test)).all())
        rows.append(row)
        cmos = row["energy_j"].get("hdc-cmos-45nm", {}).get("nominal")
        print(f"{_key(cell):<32} acc {100 * row['accuracy']:6.2f}%  "
              f"cmos-45nm {format_si(cmos, 'J') if cmos else '-':>9}  fit {row['fit_wall_s']:.0f} s",
              flush=True)
        atomic_write_text(path, json.dumps({"study": "hdc_dimension_sweep", "rows": rows}, indent=1))
    wanted = {_key(c) for c in _cells(args)}
    return [r for r in rows if r["task"] == task.name and r["epochs"] == args.epochs
            and _key(r) in wanted]


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    colors = {"projection": "tab:blue", "idlevel": "tab:orange"}
    styles = {"centroid": ":", "adapthd": "-", "onlinehd": "--"}
    markers = {"bsc": "o", "map": "s"}
    fig, (ax_a, ax_e) = plt.subplots(1, 2, figsize=(13, 6.4))
    groups = sorted({(r["encoder"], r["model"], r["learner"]) for r in rows})
    for enc, model, learner in groups:
        pts = sorted((r["dimensions"], r["accuracy"]) for r in rows
                     if (r["encoder"], r["model"], r["learner"]) == (enc, model, learner))
        ax_a.plot([p[0] for p in pts], [100 * (1 - p[1]) for p in pts], color=colors[enc],
                  ls=styles[learner], marker=markers[model], ms=4,
                  label=f"{enc} / {model.upper()} / {learner}")
    # error on a log axis spreads out the high-accuracy end, where the targets are
    for y, label in ((2.5, "MNIST target at D = 10,000 (97.5%)"), (5.0, "MNIST target at D <= 1,024 (95%)")):
        ax_a.axhline(y, color="grey", lw=0.7, ls="-.")
        ax_a.text(70, y * 1.04, label, fontsize=7, color="dimgrey", va="bottom")
    ax_a.set(xscale="log", yscale="log", xlabel="dimensions D", ylabel="test error (%), log scale",
             title="test error on the full test split (lower is better)")
    ax_a.yaxis.set_major_locator(matplotlib.ticker.FixedLocator([1, 2, 5, 10, 20, 50, 100]))
    ax_a.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax_a.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_a.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    ax_a.grid(alpha=0.3, which="both")

    pstyles = {"hdc-cmos-45nm": "-", "hdc-asic-28nm": "--", "hdc-imc-pcm": ":"}
    for enc in sorted({r["encoder"] for r in rows}):
        for model in sorted({r["model"] for r in rows}):
            for preset, ls in pstyles.items():
                # energy does not depend on the learner; take the first learner's row
                pts = {}
                for r in rows:
                    if (r["encoder"], r["model"]) == (enc, model) and preset in r["energy_j"]:
                        pts.setdefault(r["dimensions"], r["energy_j"][preset]["nominal"])
                if pts:
                    d = sorted(pts)
                    ax_e.plot(d, [pts[k] for k in d], color=colors[enc], ls=ls, marker=markers[model],
                              ms=4, label=f"{enc} / {model.upper()} on {preset}")
    ax_e.set(xscale="log", yscale="log", xlabel="dimensions D", ylabel="energy per inference (J)",
             title="modelled energy per inference (learner-independent)")
    ax_e.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    ax_e.grid(alpha=0.3, which="both")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=130)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="mnist")
    ap.add_argument("--out", default="results/hdc-sweep")
    ap.add_argument("--dims", default="64,128,256,512,1024,2048,4096,10000",
                    type=lambda s: [int(v) for v in s.split(",")])
    ap.add_argument("--encoders", default="projection,idlevel", type=lambda s: s.split(","))
    ap.add_argument("--learners", default="centroid,adapthd,onlinehd", type=lambda s: s.split(","))
    ap.add_argument("--models", default="bsc,map", type=lambda s: s.split(","))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--receptive-field", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (1 is much faster on a busy, shared CPU)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows = run(args)
    plot(rows, Path(args.out) / "accuracy_energy_vs_dimension.png",
         f"HDC on {args.task} ({rows[0]['n_test'] if rows else 0} test samples), seed {args.seed}, "
         f"{args.epochs} retraining epochs, machine {platform.machine()}")
    best = {}
    for r in rows:
        for lim in (1024, 10_000):
            if r["dimensions"] <= lim and r["accuracy"] > best.get(lim, {}).get("accuracy", -1):
                best[lim] = r
    print(json.dumps({"study": "hdc_dimension_sweep", "task": args.task,
                      "best_at_most_1024": {k: best[1024][k] for k in ("encoder", "model", "learner",
                                                                        "dimensions", "accuracy")}
                      if 1024 in best else None,
                      "best_at_most_10000": {k: best[10_000][k] for k in ("encoder", "model", "learner",
                                                                          "dimensions", "accuracy")}
                      if 10_000 in best else None,
                      "rows": len(rows)}))


if __name__ == "__main__":
    main()
