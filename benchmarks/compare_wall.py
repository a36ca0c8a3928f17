"""Wall time of a whole ``nonvon compare`` from scratch, against DESIGN's targets.

The targets: every paradigm on both full tasks from scratch in one ``compare`` in <= 10 min on
one H100 or H200 (issue #23; DESIGN section 6 asks <= 15 min); ``make demo`` (``--quick``) in
<= 5 min on 2 CPU cores. There is no peer library, so the
ratio printed is target / measured (>= 1: met). The comparison runs into a fresh folder (no
cache), prints a line as each cell finishes, and ends with the slowest cells and one JSON line.

    NONVON_DATA=... python benchmarks/compare_wall.py --task mnist,fashion-mnist --jobs 4  # one GPU
    python benchmarks/compare_wall.py --task digits --quick                             # smoke
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path

FULL_TARGET_S = 10 * 60   # every paradigm, both full tasks, one GPU (issue #23)
QUICK_TARGET_S = 5 * 60   # make demo on 2 CPU cores (this times the compare alone, not the install)


def run(tasks: list[str], sims: list[str], jobs: int, quick: bool, out: Path | None,
        data_dir=None) -> dict:
    """Run the comparison from scratch and return the benchmark's record."""
    from nonvon.compare import compare
    from nonvon.result import machine_description

    start = time.perf_counter()

    def log(msg: str) -> None:  # every line stamped with the seconds since the start
        print(f"[{time.perf_counter() - start:6.0f} s] {msg}", flush=True)

    if out is not None and (out / "cache").exists() and any((out / "cache").iterdir()):
        raise SystemExit(f"{out}/cache already holds cells: a from-scratch time needs an empty "
                         "folder (drop --out to use a temporary one)")
    with contextlib.nullcontext(out) if out is not None else \
            tempfile.TemporaryDirectory(prefix="nonvon-compare-wall-") as folder:
        outcome = compare(tasks, sims, out_dir=Path(folder), jobs=jobs, quick=quick, data_dir=data_dir,
                          progress=False, log=log)
    wall = round(time.perf_counter() - start, 2)  # the ratio is computed from the figure reported
    cells = sorted(outcome.results, key=lambda r: -(r.fit_wall_s + r.sim_wall_s))
    target = QUICK_TARGET_S if quick else FULL_TARGET_S
    return {"bench": "compare", "peer": None, "task": ",".join(tasks), "quick": quick, "jobs": jobs,
            "cells": len(cells), "wall_s": wall, "target_s": target,
            "ratio": round(target / wall, 3), "met": wall <= target, "machine": machine_description(),
            "slowest": [{"simulator": r.simulator, "task": r.task, "fit_s": round(r.fit_wall_s, 1),
                         "eval_s": round(r.sim_wall_s, 1)} for r in cells[:5]]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="mnist", help="comma-separated task names")
    ap.add_argument("--sim", default="all", help="comma-separated simulator names, or 'all'")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (compare --jobs)")
    ap.add_argument("--quick", action="store_true", help="the demo's budget (each simulator's quick "
                    "settings on a subset)")
    ap.add_argument("--out", type=Path, default=None, help="keep the results here (must be empty)")
    ap.add_argument("--data-dir", default=None, help="where the IDX files are (else $NONVON_DATA)")
    args = ap.parse_args(argv)
    record = run(args.task.split(","), args.sim.split(","), args.jobs, args.quick, args.out, args.data_dir)
    for c in record["slowest"]:
        print(f"  {c['simulator']:<20} {c['task']:<14} fit {c['fit_s']:8.1f} s  eval {c['eval_s']:6.1f} s")
    print(f"{record['cells']} cells in {record['wall_s']:.0f} s on {record['machine']}: "
          f"{'within' if record['met'] else 'over'} the {record['target_s'] // 60} min target")
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
