"""Count and price the trained spiking networks on the full test split, per simulator.

Loads the weights written by ``studies/spiking_targets.py`` (no retraining), deploys them on
each simulator (chips quantize their weights; ``qat_epochs=0`` here, so post-training
quantization only), evaluates on the full test split and prices the ledger: a chip on its
own preset, the generic simulators on every preset that prices them. Prints a table and, last, one JSON line.

    NONVON_DATA=/path/to/data python studies/spiking_energy.py --weights docs/results/spiking-h100
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nonvon
from nonvon._io import atomic_write_text
from nonvon.report import format_si

# (simulator, weights model, config overrides); chips need rate/latency coding, so they
# deploy the rate-coded MLP
RUNS = [("snn-mlp", "mlp", {}), ("snn-cnn", "cnn", {}),
        ("loihi", "mlp", {"qat_epochs": 0}), ("spinnaker2", "mlp", {"qat_epochs": 0})]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True, help="folder with snn-<model>-<task>.safetensors")
    ap.add_argument("--tasks", default="mnist,fashion-mnist")
    ap.add_argument("--sims", default=",".join(r[0] for r in RUNS))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=None, help="write the rows here (JSON)")
    args = ap.parse_args()
    reg = nonvon.registry()
    rows = []
    for task_name in args.tasks.split(","):
        task = reg.task(task_name)
        for sim_name, model, overrides in RUNS:
            if sim_name not in args.sims.split(","):
                continue
            path = Path(args.weights) / f"snn-{model}-{task_name}.safetensors"
            if not path.exists():
                print(f"skip {sim_name} on {task_name}: no {path}")
                continue
            sim = reg.simulator(sim_name, **overrides).load_weights(path, task)
            result = sim.evaluate(task, limit=args.limit)
            # a chip on its own preset; the generic simulators on every preset that prices them
            presets = ([reg.preset(sim_name)] if sim_name in reg.presets
                       else reg.presets_for(sim.paradigm, sim.op_kinds))
            for preset in presets:
                e = result.priced(preset).energy
                row = {"task": task_name, "simulator": sim_name, "preset": preset.name,
                       "accuracy": result.accuracy, "n_evaluated": result.n_evaluated,
                       "energy_per_inference_j": e.energy_j, "low_j": e.low_j, "high_j": e.high_j,
                       "breakdown_j": e.breakdown_j, "ledger": result.ledger.per_inference(),
                       "neurobench": sim.neurobench.to_dict(), "weights": path.name}
                rows.append(row)
                print(f"{task_name:<14} {sim_name:<11} {preset.name:<11} {100 * result.accuracy:6.2f}% "
                      f"{format_si(e.energy_j, 'J'):>10}  sparsity "
                      f"{sim.neurobench.activation_sparsity:.3f}  ACs {sim.neurobench.effective_acs:,.0f}"
                      f"  MACs {sim.neurobench.effective_macs:,.0f}", flush=True)
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(rows, indent=1))
    print(json.dumps({"study": "spiking_energy", "rows": [
        {k: r[k] for k in ("task", "simulator", "preset", "accuracy", "energy_per_inference_j")}
        for r in rows]}))


if __name__ == "__main__":
    main()
