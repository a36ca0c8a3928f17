"""Hyperdimensional classifiers from 16 to 10,000 dimensions: accuracy vs energy at the chip boundary.

One sweep (the project's cell runner: cached, resumable, parallel with ``--jobs``) over

- the random-projection and ID-level encoders (``hdc-projection``, ``hdc-idlevel``) at every
  dimension in ``--dims``;
- the trained low-dimensional encoder (``hdc-lowdim``, after Yan et al., ECML-PKDD 2023) up to
  ``--lowdim-max`` dimensions;
- the int8 dense baseline of the same size (``gpu-mlp-int8`` with one hidden layer of D units,
  one hidden layer of D units) for every D up to ``--lowdim-max``,

on each task's full training and test splits, priced on the HDC chips (``hdc-asic-28nm``,
``hdc-imc-pcm``) and the int8 accelerator (``npu-7nm``), all at the chip boundary.

    NONVON_DATA=/path/to/data python studies/hdc_lowdim.py --out results/hdc-lowdim --jobs 2
    python studies/hdc_lowdim.py --quick --out /tmp/hdc-lowdim          # digits, D = 16-64

Writes ``hdc_lowdim.json`` (one row per task, encoder, dimension and seed: accuracy and the
energy per inference on every preset that priced it), ``accuracy_vs_energy.png`` (one panel per
task, one curve per encoder, on the figure's chip preset) beside the sweep's own outputs, and
prints the reproduction lines against the papers' figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nonvon._io import atomic_savefig, atomic_write_json
from nonvon.errors import NonvonError
from nonvon.report import format_si
from nonvon.sweep import run_sweep

#: The encoders of the study and the simulator that runs each.
ENCODERS = {"projection": "hdc-projection", "idlevel": "hdc-idlevel", "learned": "hdc-lowdim",
            "int8 MLP, D hidden": "gpu-mlp-int8"}
#: Where each curve of the figure is priced (every one at the chip boundary).
FIGURE_PRESET = {"hdc-projection": "hdc-asic-28nm", "hdc-idlevel": "hdc-asic-28nm",
                 "hdc-lowdim": "hdc-asic-28nm", "gpu-mlp-int8": "npu-7nm"}
PRESETS = ("hdc-asic-28nm", "hdc-imc-pcm", "npu-7nm")

#: Published figures the study reproduces (task, encoder, dimensions, accuracy, source).
PUBLISHED = (
    ("mnist", "learned", 64, 0.9112,
     "Yan, Wang, Tang and Wong, 'Efficient Hyperdimensional Computing', ECML-PKDD 2023 "
     "(arXiv 2301.10902, abstract): 91.12% on MNIST with binary hypervectors of dimension 64"),
    ("mnist", "learned", 32, 0.9688,
     "the same work's earlier version (ICLR 2023 submission, abstract): 96.88% on MNIST at "
     "dimension 32"),
)


def parse_ints(text: str, what: str, least: int = 1) -> list[int]:
    """Comma-separated integers >= ``least``; a clear exit 2 otherwise."""
    try:
        values = [int(v) for v in text.split(",") if v]
    except ValueError:
        values = []
    if not values or min(values) < least:
        print(f"error: {what} {text!r} must be comma-separated integers >= {least}\n"
              f"  fix: e.g. {what} 16,64,1024", file=sys.stderr)
        raise SystemExit(2)
    return values


def build_grid(tasks: list[str], dims: list[int], lowdim_max: int, seeds: list[int],
               quick: bool) -> dict:
    small = [d for d in dims if d <= lowdim_max]
    sims = [{"name": "hdc-projection", "grid": {"dimensions": dims}},
            {"name": "hdc-idlevel", "grid": {"dimensions": dims}}]
    if small:
        sims += [{"name": "hdc-lowdim", "grid": {"dimensions": small}},
                 {"name": "gpu-mlp-int8", "grid": {"hidden": [[d] for d in small]}}]
    if quick:  # each simulator's small budget (a smoke run, not a measurement), on the CPU
        for sim in sims:
            if sim["name"] == "gpu-mlp-int8":
                sim["set"] = {"device": "cpu"}
    return {"description": "HDC dimension study (issue #24)", "tasks": tasks, "seeds": seeds,
            "presets": list(PRESETS), "simulators": sims, "quick": quick}


def dimension_of(row: dict) -> int:
    cfg = row.get("sim_config") or {}
    if isinstance(cfg, str):
        cfg = json.loads(cfg)
    if row["simulator"] == "gpu-mlp-int8":
        return int(cfg["hidden"][0])
    return int(cfg["dimensions"])


def study_rows(rows: list[dict]) -> list[dict]:
    """One row per task, encoder, dimension and seed, with the energy on every preset."""
    encoder_of = {sim: enc for enc, sim in ENCODERS.items()}
    out: dict[tuple, dict] = {}
    for r in rows:
        if r["kind"] != "modelled" or r["simulator"] not in encoder_of:
            continue
        key = (r["task"], encoder_of[r["simulator"]], dimension_of(r), r["seed"])
        row = out.setdefault(key, {"task": r["task"], "encoder": key[1], "simulator": r["simulator"],
                                   "dimensions": key[2], "seed": r["seed"],
                                   "accuracy": r["accuracy"], "n_test": r["n_evaluated"],
                                   "precision": r.get("precision"), "energy_j": {}})
        row["energy_j"][r["preset"]] = {"nominal": r["energy_per_inference_j"],
                                        "low": r["energy_low_j"], "high": r["energy_high_j"],
                                        "boundary": r["boundary"]}
    return sorted(out.values(), key=lambda r: (r["task"], r["encoder"], r["dimensions"], r["seed"]))


def reproduction_lines(rows: list[dict]) -> list[str]:
    lines = []
    for task, encoder, dim, acc, source in PUBLISHED:
        ours = [r["accuracy"] for r in rows
                if (r["task"], r["encoder"], r["dimensions"]) == (task, encoder, dim)]
        mine = (f"{100 * sum(ours) / len(ours):.2f}% (mean of {len(ours)} seed(s))" if ours
                else "not run")
        verdict = "" if not ours else (" - met" if sum(ours) / len(ours) >= acc else " - not met")
        lines.append(f"{task}, {encoder} encoder, D = {dim}: published {100 * acc:.2f}% "
                     f"({source}); ours {mine}{verdict}")
    return lines


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 5.2), squeeze=False)
    colours = {"projection": "tab:blue", "idlevel": "tab:orange", "learned": "tab:green",
               "int8 MLP, D hidden": "black"}
    for ax, task in zip(axes[0], tasks, strict=True):
        for encoder, sim in ENCODERS.items():
            preset = FIGURE_PRESET[sim]
            pts = sorted((r["dimensions"], r["energy_j"][preset]["nominal"], r["accuracy"])
                         for r in rows if r["task"] == task and r["encoder"] == encoder
                         and preset in r["energy_j"])
            if not pts:
                continue
            ax.plot([p[1] for p in pts], [100 * p[2] for p in pts], marker="o", ms=4,
                    color=colours[encoder], label=f"{encoder} on {preset}")
            for d, e, a in pts:
                ax.annotate(f"{d}", (e, 100 * a), fontsize=6, xytext=(3, 3),
                            textcoords="offset points", color=colours[encoder])
        ax.set(xscale="log", xlabel="energy per inference, chip boundary (J)",
               ylabel="test accuracy (%)", title=f"{task}: accuracy vs energy (labels: D)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/hdc-lowdim")
    ap.add_argument("--task", default="mnist,fashion-mnist", help="comma-separated task names")
    ap.add_argument("--dims", default=None,
                    help="comma-separated dimensions (default 16,32,...,1024,2048,4096,10000)")
    ap.add_argument("--lowdim-max", type=int, default=1024,
                    help="largest D for the trained encoder and the same-size int8 baseline")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--quick", action="store_true",
                    help="digits, D = 16,32,64 and each simulator's small budget (smoke run)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.task = "digits"
    dims = parse_ints(args.dims or ("16,32,64" if args.quick else
                                    "16,32,64,128,256,512,1024,2048,4096,10000"), "--dims")
    seeds = parse_ints(args.seeds, "--seeds", least=0)
    if args.lowdim_max < 1:
        print(f"error: --lowdim-max {args.lowdim_max} must be >= 1\n  fix: e.g. --lowdim-max 1024",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    grid = build_grid(args.task.split(","), dims, args.lowdim_max, seeds, args.quick)
    try:
        outcome = run_sweep(grid, out_dir=out, jobs=args.jobs, progress=not args.no_progress,
                            executor="local" if args.jobs > 1 else "inline")
    except NonvonError as e:
        print(f"error: {e.message}" + (f"\n  fix: {e.hint}" if e.hint else ""), file=sys.stderr)
        return 2
    rows = study_rows(outcome.rows)
    atomic_write_json(out / "hdc_lowdim.json", {"study": "hdc_lowdim", "quick": args.quick,
                                                "presets": list(PRESETS), "rows": rows})
    plot(rows, out / "accuracy_vs_energy.png")
    for r in rows:
        e = {p: format_si(v["nominal"], "J") for p, v in r["energy_j"].items()}
        print(f"{r['task']:<14} {r['encoder']:<18} D={r['dimensions']:<6} "
              f"{100 * r['accuracy']:6.2f}%  {e}")
    for line in reproduction_lines(rows):
        print(line)
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main())
