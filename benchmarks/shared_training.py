"""Shared trainings in a comparison: ``snn-mlp``, ``loihi`` and ``spinnaker2`` with and without
the training memo (``nonvon.training_memo``).

The three simulators train the same LIF network before the chips quantize it. ``compare``
with an output folder trains it once and lets the other cells load it; without a folder
(here, the peer) each cell trains it. The benchmark runs the same three cells both ways in one
process and prints the wall times, their ratio and each cell's accuracy (which must agree).

    NONVON_DATA=/path/to/data python benchmarks/shared_training.py --subset 3000,500
    python benchmarks/shared_training.py --task digits --quick     # seconds
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

SIMS = ("snn-mlp", "loihi", "spinnaker2")


def run(task: str, subset: tuple[int, int] | None, quick: bool) -> dict:
    from nonvon.compare import compare
    from nonvon.result import machine_description

    rec = {"bench": "shared_training", "peer": "each cell trains", "task": task, "subset": subset,
           "quick": quick, "machine": machine_description()}
    for shared in (False, True):
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="nonvon-shared-training-") as folder:
            out = compare([task], list(SIMS), subset=subset, quick=quick, progress=False,
                          out_dir=folder if shared else None, log=lambda m: None, report=False)
        name = "shared" if shared else "each_trains"
        rec[f"{name}_wall_s"] = round(time.perf_counter() - start, 2)
        rec[f"{name}_cells"] = {r.simulator: {"accuracy": r.accuracy, "fit_s": round(r.fit_wall_s, 2)}
                               for r in out.results}
    rec["ratio"] = round(rec["each_trains_wall_s"] / rec["shared_wall_s"], 3)
    rec["same_accuracies"] = all(rec["shared_cells"][s]["accuracy"] == rec["each_trains_cells"][s]["accuracy"]
                                 for s in SIMS)
    return rec


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="mnist")
    ap.add_argument("--subset", default=None, metavar="TRAIN,TEST", help="e.g. 3000,500")
    ap.add_argument("--quick", action="store_true", help="each simulator's small settings")
    args = ap.parse_args(argv)
    subset = tuple(int(v) for v in args.subset.split(",")) if args.subset else None
    rec = run(args.task, subset, args.quick)
    print(f"three cells: {rec['each_trains_wall_s']:.1f} s each training, {rec['shared_wall_s']:.1f} s "
          f"sharing ({rec['ratio']:.2f}x); same accuracies: {rec['same_accuracies']}")
    print(json.dumps(rec))
    return rec


if __name__ == "__main__":
    main()
