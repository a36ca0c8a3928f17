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

``--jobs N`` first computes the cells in ``N`` worker processes (``nonvon.sweep``, sharing the
GPU when there is one), longest first, then runs the comparison over the filled cache. Cells
that read a hardware energy counter (the GPU baseline under NVML) are left out of the pool and
run alone afterwards: anything running beside them would be measured too.

    NONVON_DATA=/path/to/data python studies/mnist_comparison.py --out results/mnist-comparison
    NONVON_DATA=/path/to/data python studies/mnist_comparison.py --jobs 6   # one GPU, 16 cores
    python studies/mnist_comparison.py --task digits --quick --subset 300,100 --out /tmp/smoke
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import nonvon
from nonvon.cli import parse_overrides
from nonvon.compare import QUICK_SUBSET
from nonvon.errors import ConfigError, IncompatibleError, NonvonError
from nonvon.report import format_si, is_bound_preset, pareto_front, write_report
from nonvon.sweep import run_sweep

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sensitivity study beside this one
import energy_sensitivity  # noqa: E402


def load_tasks(names: list[str], subset: tuple[int, int], data_dir: str | None) -> list[nonvon.Task]:
    """The registered tasks by name, each cut to ``subset`` (train, test) samples."""
    reg = nonvon.registry()
    tasks = []
    for name in names:
        task = reg.task(name, **({"data_dir": data_dir} if data_dir else {}))
        n_train, n_test = subset
        tasks.append(task.subset(min(n_train, len(task.y_train)), min(n_test, len(task.y_test)), seed=0))
    return tasks


# Fit times of the defaults on one H100 (docs/results), longest first: the worker pool starts
# these first so that no long cell starts last. Simulators not listed go after them.
LONGEST_FIRST = ("snn-ttfs", "brainscales2-ttfs", "onn-diffractive", "vqc", "snn-cnn", "loihi",
                 "truenorth", "spinnaker2", "brainscales2", "snn-mlp", "onn-mzi", "snn-converted")


def prefill_cache(task_names: list[str], sim_names: list[str], seeds: list[int], out: Path, *,
                  jobs: int, subset: tuple[int, int] | None, quick: bool, overrides: dict,
                  data_dir: str | None, progress: bool) -> None:
    """Compute the comparison's cells in ``jobs`` worker processes, into ``out``/cache.

    The cells are those :func:`nonvon.compare` would compute (same keys), except the ones that
    read a hardware energy counter: those must run alone, so compare computes them afterwards.
    """
    reg = nonvon.registry()
    names = sorted(reg.simulators) if sim_names == ["all"] else sim_names
    # The tasks exactly as compare builds them (so the cell keys match): --subset as given,
    # else --quick's subset, else the full splits.
    cut = subset or (QUICK_SUBSET if quick else None)
    tasks = {name: reg.task(name, **({"data_dir": data_dir} if data_dir else {}))
             for name in task_names}
    specs: dict = {}
    for name, full in tasks.items():
        specs[name] = name if cut is None else {
            "name": name, "subset": [min(cut[0], len(full.y_train)), min(cut[1], len(full.y_test)), 0]}
    # Group the simulators by the tasks they fit (compare skips the others and says so), so each
    # group is one rectangular sweep; a chip with a small fan-in skips 28x28 tasks here too.
    groups: dict[tuple[str, ...], list[dict]] = {}
    for name in names:
        cls = reg.simulators.get(name)
        cfg = {**(dict(getattr(cls, "quick", {})) if quick and cls else {}), **overrides.get(name, {})}
        sim = reg.simulator(name, **cfg)
        if sim.measures_hardware:
            continue
        fits = tuple(t for t, task in tasks.items() if _fits(sim, task))
        if fits:
            groups.setdefault(fits, []).append({"name": name, "set": cfg})
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    # jax (the VQC) would otherwise take most of the GPU's memory in its worker at start
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    for fits, sims in groups.items():
        run_sweep({"tasks": [specs[t] for t in fits], "simulators": sims, "seeds": seeds},
                  out_dir=out, jobs=jobs, threads=max(1, (os.cpu_count() or 1) // jobs),
                  data_dir=data_dir, progress=progress, write_report=False,
                  order=lambda cell: (rank.get(cell.simulator, len(rank)), cell.task_name),
                  log=lambda m: print(m, file=sys.stderr))


def _fits(sim, task) -> bool:
    try:
        sim.check_task(task)
        return True
    except IncompatibleError:
        return False


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
    """Per task: the Pareto front of energy vs accuracy and the GPU measurements."""
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task and r["energy_per_inference_j"] > 0
                and not (r["kind"] == "modelled" and is_bound_preset(r["preset"]))]
        print(f"\n{task}: Pareto front (cheapest first)")
        for i in pareto_front([(r["energy_per_inference_j"], r["accuracy"]) for r in mine]):
            r = mine[i]
            print(f"  {r['simulator']:<20} {r['preset']:<22} {100 * r['accuracy']:6.2f}%  "
                  f"{format_si(r['energy_per_inference_j'], 'J'):>10}  {r['kind']}")
        for r in (r for r in rows if r["task"] == task and r["kind"] == "measured"):
            print(f"  measured: {r['simulator']} {r['preset']}: "
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
        if args.jobs > 1:
            prefill_cache(args.task.split(","), args.sim.split(","), parse_seeds(args.seeds), out,
                          jobs=args.jobs, subset=subset, quick=args.quick,
                          overrides=parse_overrides(args.set), data_dir=args.data_dir,
                          progress=not args.no_progress)
        # names: compare loads them (--quick cuts them to 2,000 / 500); Tasks: used as given
        tasks = load_tasks(args.task.split(","), subset, args.data_dir) if subset else args.task.split(",")
        outcome = nonvon.compare(tasks, args.sim.split(","), seeds=parse_seeds(args.seeds), out_dir=out,
                                 quick=args.quick, overrides=parse_overrides(args.set),
                                 data_dir=args.data_dir,
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
