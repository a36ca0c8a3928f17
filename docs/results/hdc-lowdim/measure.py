"""Accuracy of binary HDC at low dimension: the random projection vs the learned encoder (#24).

Run: OMP_NUM_THREADS=1 python docs/results/hdc-lowdim/measure.py mnist-5k 32 64 128 > rows.jsonl
     OMP_NUM_THREADS=1 NONVON_DATA=/work/shared/data python docs/results/hdc-lowdim/measure.py mnist 64

One JSON row per task, encoder, dimension and seed: test accuracy, fit time, resident bytes and the
energy per inference on every preset that prices the ledger (joules).
"""

from __future__ import annotations

import json
import sys
import time

from nonvon.registry import registry

# the old encoder at its defaults (periodic code, 10x10 receptive fields, AdaptHD), its sign
# variant over the whole input, and the learned encoder at its defaults
CONFIGS = {
    "projection-periodic-rf10": ("hdc-projection", {}),
    "projection-sign": ("hdc-projection", {"receptive_field": 0, "activation": "sign"}),
    "learned-2layer": ("hdc-lowdim", {}),
}


def main(argv: list[str]) -> None:
    reg = registry()
    task = reg.task(argv[0])
    seeds = [0]
    for d in (int(a) for a in argv[1:]):
        for label, (name, kw) in CONFIGS.items():
            for seed in seeds:
                t = time.perf_counter()
                sim = reg.simulator(name, dimensions=d, **kw).fit(task, seed=seed)
                fit_s = time.perf_counter() - t
                r = sim.evaluate(task)
                energy = {p.name: r.priced(p).energy.energy_j  # already per inference
                          for p in reg.presets_for(sim.paradigm, sim.op_kinds)}
                print(json.dumps({"task": task.name, "encoder": label, "simulator": name, "config": kw,
                                  "dimensions": d, "seed": seed, "accuracy": r.accuracy,
                                  "n_test": r.n_evaluated, "fit_s": round(fit_s, 1),
                                  "resident_bytes": r.ledger.resident_bytes,
                                  "energy_j_per_inference": energy}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
