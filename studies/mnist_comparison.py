"""Every simulator on full MNIST and Fashion-MNIST, priced on every preset that fits it.

nonvon's headline comparison (issue #7), written with the Python API: each registered
simulator is trained with its default configuration and evaluated on the full test split of
each task; every evaluation is priced on each preset declared for its paradigm that prices
all the op kinds it counts; on a machine with CUDA the GPU baseline is also measured with NVML
(batch 1 and batch 1024). It is ``nonvon compare --task mnist,fashion-mnist --sim all``
followed by the energy-sensitivity study (``studies/energy_sensitivity.py``).

Outputs in ``--out``: results.json, results.csv, report.md, report.html (self-contained),
accuracy_vs_energy.png, energy_breakdown.png, latency.png, sensitivity.json / .md,
sensitivity_tornado.png and, when an optical simulator ran, photon_budget.png. Finished cells
are cached in ``--out``/cache, so a rerun (or a killed run, restarted) recomputes nothing that
finished.

``--jobs N`` (``compare(jobs=N)``) first computes the cells in ``N`` worker processes (sharing
the GPU when there is one), longest first, then runs the comparison over the filled cache.
Cells that read a hardware energy counter (the GPU baseline under NVML) are left out of the
pool and run alone afterwards: anything running beside them would be measured too. Workers
sharing one GPU take turns on it: on an H200 with six workers, cells ran 4 to 5 times slower
than alone (docs/results/cell-times-h200), so more workers than GPUs mostly helps cells that
leave the GPU idle.

    NONVON_DATA=/path/to/data python studies/mnist_comparison.py --out results/mnist-comparison
    NONVON_DATA=/path/to/data python studies/mnist_comparison.py --jobs 2   # one GPU
    python studies/mnist_comparison.py --task digits --quick --subset 300,100 --out /tmp/smoke
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import nonvon
from nonvon.cli import parse_overrides
from nonvon.errors import ConfigError, NonvonError
from nonvon.report import BOUNDARY_ORDER, format_si, is_bound_preset, pareto_front, row_boundary, write_report

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sensitivity study beside this one
import energy_sensitivity  # noqa: E402


def parse_subset(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        n_train, n_test = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--subset {text!r} is not TRAIN,TEST", "e.g. --subset 2000,500") from None
    if n_train < 1 or n_test < 1:
        raise ConfigError(f"--subset {text!r} needs positive sizes", "e.g. --subset 2000,500")
    return n_train, n_test


def parse_seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise ConfigError(f"--seeds {text!r} must be comma-separated integers", "e.g. --seeds 0,1") from None


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA), torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()} CPU, torch {torch.__version__} (no CUDA: " \
           "cells computed here are modelled only, not measured)"


def cells_by_machine(rows: list[dict]) -> str:
    """Where the cells ran (cells taken from a cache may come from other machines)."""
    cells: dict[str, set] = {}
    for r in rows:
        cells.setdefault(r.get("machine") or "unknown", set()).add((r["task"], r["simulator"], r["seed"]))
    return "; ".join(f"{len(c)} on {m}" for m, c in sorted(cells.items(), key=lambda kv: -len(kv[1])))


def print_summary(rows: list[dict], elapsed_s: float) -> None:
    """Per task and boundary: the Pareto front of energy vs accuracy; then the GPU measurements."""
    for task in dict.fromkeys(r["task"] for r in rows):
        for boundary in BOUNDARY_ORDER:
            mine = [r for r in rows if r["task"] == task and r["energy_per_inference_j"] > 0
                    and r["kind"] == "modelled" and not is_bound_preset(r["preset"])
                    and row_boundary(r) == boundary]
            if not mine:
                continue
            print(f"\n{task}, {boundary} boundary: Pareto front (cheapest first)")
            for i in pareto_front([(r["energy_per_inference_j"], r["accuracy"]) for r in mine]):
                r = mine[i]
                print(f"  {r['simulator']:<20} {r['preset']:<22} {100 * r['accuracy']:6.2f}%  "
                      f"{format_si(r['energy_per_inference_j'], 'J'):>10}")
        for r in (r for r in rows if r["task"] == task and r["kind"] == "measured"):
            print(f"  measured (system): {r['simulator']} {r['preset']}: "
                  f"{format_si(r['energy_per_inference_j'], 'J')} per inference, "
                  f"{format_si(r['latency_per_inference_s'], 's')}")
    print(f"\nthis run: {machine()}; {elapsed_s / 60:.1f} min in all")
    print(f"cells computed: {cells_by_machine(rows)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/mnist-comparison")
    ap.add_argument("--task", default="mnist,fashion-mnist", help="comma-separated task names")
    ap.add_argument("--sim", default="all", help="comma-separated simulator names, or 'all'")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--quick", action="store_true",
                    help="each simulator's small budget on a 2,000 / 500 subset (smoke runs)")
    ap.add_argument("--subset", default=None, metavar="TRAIN,TEST",
                    help="evaluate on a random subset of each task, e.g. 2000,500")
    ap.add_argument("--set", action="append", default=[], metavar="SIM.OPTION=VALUE",
                    help="config override, e.g. --set gpu-mlp.epochs=3 (repeatable)")
    ap.add_argument("--data-dir", default=None, help="where the IDX files are (else $NONVON_DATA)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="compute cells in this many worker processes first (default 1: in order)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    out = Path(args.out)
    try:
        subset = parse_subset(args.subset)
        if args.jobs < 1:
            raise ConfigError(f"--jobs {args.jobs} must be at least 1", "e.g. --jobs 4")
        # --jobs N: the cells are computed in N worker processes first, longest first; the
        # NVML-measured GPU cells then run alone
        outcome = nonvon.compare(args.task.split(","), args.sim.split(","),
                                 seeds=parse_seeds(args.seeds), out_dir=out, quick=args.quick,
                                 subset=subset, jobs=args.jobs,
                                 overrides=parse_overrides(args.set), data_dir=args.data_dir,
                                 progress=not args.no_progress, report=False,
                                 log=lambda m: print(m, file=sys.stderr))
        # How the ranking of paradigms moves when the presets' constants span their bounds.
        sensitivity = energy_sensitivity.analyse(outcome.rows, log=lambda m: print(m, file=sys.stderr))
        energy_sensitivity.write_outputs(sensitivity, out)
        # report.md, report.html and figures, with the sensitivity section and (when an
        # optical simulator ran) the photon-budget curves beside Wang et al. 2022
        write_report(outcome.rows, out)
    except NonvonError as e:
        print(f"error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"  fix: {e.hint}", file=sys.stderr)
        return 2
    print_summary(outcome.rows, time.perf_counter() - started)
    print(f"wrote {out}/results.json, results.csv, report.md, report.html, figures and "
          "sensitivity.*", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
