"""Re-counting a cached cell from its stored parameters vs fitting it (DESIGN.md section 6:
the recount should take under a tenth of the fit).

For each simulator one ``compare`` cell is computed from scratch (fit, evaluate, parameters
kept beside the cell) in a fresh folder; ``recount`` then evaluates every cell again from its
parameters. The fit time is the cell's ``fit_wall_s``; the recount time is what the recount
spent on the cell (build the simulator, load the parameters, evaluate and count), without
loading the data set, which all cells of a task share (``task_load_s``, reported apart). The
recounted ledger and accuracy must equal the original ones.

    NONVON_DATA=/path/to/data python benchmarks/recount.py            # MNIST, default configs
    python benchmarks/recount.py --device cuda
    python benchmarks/recount.py --quick                              # digits, small budgets, CPU
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

TARGET = 10.0  # the fit over the recount, at least


def run(task: str, sims: list[str], quick: bool, device: str, subset: tuple[int, int] | None) -> dict:
    from nonvon.compare import compare, load_cell, recount
    from nonvon.registry import registry
    from nonvon.result import machine_description

    reg = registry()
    overrides = {}
    for name in sims:
        fields = reg.simulator(name).config.__dataclass_fields__
        if "device" in fields:
            overrides[name] = {"device": device}
    rec = {"bench": "recount", "peer": "fit (training the cell)", "task": task, "quick": quick,
           "device": device, "machine": machine_description(), "target_ratio": TARGET}
    with tempfile.TemporaryDirectory(prefix="nonvon-recount-bench-") as folder:
        start = time.perf_counter()
        compare([task], sims, quick=quick, subset=subset, overrides=overrides, out_dir=folder,
                report=False, progress=False, log=lambda m: None)
        rec["compare_s"] = round(time.perf_counter() - start, 3)
        before = {c.result.simulator: c for c in map(load_cell, _cells(folder))}
        out = recount(folder, progress=False, log=lambda m: None)
        rec["recount_command_s"] = round(out.wall_s, 3)
        after = {c.result.simulator: c for c in map(load_cell, _cells(folder))}
    cells = {}
    for name in sims:
        old, new = before[name], after[name]
        if new.recount is None:
            why = dict(out.no_parameters + out.unreadable + out.failed).get(old.label, "?")
            cells[name] = {"recounted": False, "why": why, "fit_s": old.result.fit_wall_s}
            continue
        fit, took = old.result.fit_wall_s, new.recount["wall_s"]
        cells[name] = {"recounted": True, "fit_s": float(f"{fit:.4g}"), "recount_s": float(f"{took:.4g}"),
                       "eval_s": round(new.recount["eval_wall_s"], 4),
                       "task_load_s": round(new.recount["task_load_s"], 4),
                       "ratio": round(fit / took, 2), "met": fit / took >= TARGET,
                       "same_ledger": new.result.ledger.to_dict() == old.result.ledger.to_dict(),
                       "same_accuracy": new.result.accuracy == old.result.accuracy,
                       "accuracy": old.result.accuracy}
    rec["cells"] = cells
    done = [c for c in cells.values() if c["recounted"]]
    rec["ratio"] = min((c["ratio"] for c in done), default=None)  # the worst cell
    rec["met"] = bool(done) and all(c["met"] for c in done)
    rec["same_outputs"] = bool(done) and all(c["same_ledger"] and c["same_accuracy"] for c in done)
    return rec


def _cells(folder: str) -> list:
    from pathlib import Path

    return sorted((Path(folder) / "cache").glob("*.json"))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default=None, help="default: mnist (digits with --quick)")
    ap.add_argument("--sims", default="gpu-mlp,snn-mlp", help="comma-separated simulators")
    ap.add_argument("--subset", default=None, metavar="TRAIN,TEST", help="e.g. 3000,500")
    ap.add_argument("--quick", action="store_true",
                    help="digits, each simulator's small settings, on the CPU: seconds")
    ap.add_argument("--device", default=None, choices=("cpu", "cuda", "auto"),
                    help="default: cpu with --quick, else auto")
    args = ap.parse_args(argv)
    task = args.task or ("digits" if args.quick else "mnist")
    device = args.device or ("cpu" if args.quick else "auto")
    subset = tuple(int(v) for v in args.subset.split(",")) if args.subset else None
    rec = run(task, [s for s in args.sims.split(",") if s], args.quick, device, subset)
    for name, c in rec["cells"].items():
        if c["recounted"]:
            print(f"{name}: fit {c['fit_s']:.3f} s, recount {c['recount_s']:.4f} s "
                  f"({c['ratio']:.0f}x; target {TARGET:.0f}x: {'met' if c['met'] else 'NOT met'}); "
                  f"same ledger {c['same_ledger']}, same accuracy {c['same_accuracy']}")
        else:
            print(f"{name}: not recounted ({c['why']})")
    print(json.dumps(rec))
    if not rec["same_outputs"]:
        sys.exit("a recounted cell differs from its original (or none was recounted)")
    return rec


if __name__ == "__main__":
    main()
