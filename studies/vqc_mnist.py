"""VQC on MNIST: accuracy noise-free, with finite shots and with noise; twin; energy per inference.

Settings (``--setting``):

* ``tfq-4x4``: MNIST 3 vs 6 downsampled to 4x4 (the TensorFlow Quantum tutorial's
  input), 16 features re-uploaded on 8 qubits.
* ``pca``: MNIST 3 vs 6, 16 principal components re-uploaded on 8 qubits.
* ``10class``: MNIST 10 classes, 20 principal components re-uploaded on 10 qubits.

For each: the VQC is trained on the compiled statevector simulator (exact gradients),
then evaluated on the full test split noise-free (exact expectations), with ``--shots``
sampled shots on the device circuit, and with the noise model (qiskit-aer; on the
first ``--noise-limit`` test samples, since density-level simulation is slower), plus
the classical twin (same inputs, same parameter count, same training). Energies are
priced on both QPU presets. Writes ``<out>/<setting>.json`` and ``<setting>.qasm``.

    NONVON_DATA=/path/to/data python studies/vqc_mnist.py --setting tfq-4x4 --out results/vqc
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

SETTINGS = {
    "tfq-4x4": dict(classes=(3, 6), cfg=dict(preprocess="downsample", n_features=16, n_qubits=8,
                                             encoding="reupload", layers=3, epochs=3, batch_size=32,
                                             lr=0.03, max_train=None)),
    "pca": dict(classes=(3, 6), cfg=dict(preprocess="pca", n_features=16, n_qubits=8, encoding="reupload",
                                         layers=3, epochs=3, batch_size=32, lr=0.03, max_train=None)),
    "10class": dict(classes=None, cfg=dict(preprocess="pca", n_features=20, n_qubits=10,
                                           encoding="reupload", layers=3, epochs=3, batch_size=64,
                                           lr=0.03, max_train=None)),
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setting", choices=sorted(SETTINGS), required=True)
    ap.add_argument("--out", default="results/vqc")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shots", type=int, default=1000)
    ap.add_argument("--noise-limit", type=int, default=2000)
    ap.add_argument("--set", action="append", default=[], help="config override key=value")
    ap.add_argument("--subset", type=int, nargs=2, default=None, help="n_train n_test (smoke runs)")
    ap.add_argument("--export", default="", help="write pre-processed inputs and the translated program "
                    "to this .npz (for studies/vqc_train_jax.py on a machine without qiskit) and stop")
    ap.add_argument("--weights", default="", help="use trained parameters from this .npz instead of training")
    args = ap.parse_args(argv)

    import nonvon
    from nonvon.simulators.quantum import VQC, VQCClassicalTwin

    reg = nonvon.registry()
    s = SETTINGS[args.setting]
    cfg = dict(s["cfg"], shots=args.shots)
    for kv in args.set:
        k, v = kv.split("=", 1)
        cfg[k] = json.loads(v)
    task = reg.task("mnist", progress=False)
    if s["classes"]:
        task = task.select_classes(*s["classes"])
    if args.subset:
        task = task.subset(*args.subset, seed=0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rec = {"setting": args.setting, "task": task.name, "data_source": task.source, "config": cfg,
           "n_train": len(task.y_train), "n_test": len(task.y_test), "seed": args.seed}

    t0 = time.perf_counter()
    sim = VQC(**cfg)
    sim.name = "vqc"
    if args.export or args.weights:
        _export_or_load(sim, task, args, rec)
        if args.export:
            return
    else:
        sim.fit(task, seed=args.seed, progress=False)
    rec["fit_wall_s"] = time.perf_counter() - t0
    rec["loss_per_epoch"] = sim.history
    rec["n_qubits"], rec["n_params"] = sim.model.n_qubits, sim.n_params
    rec["gate_counts_per_shot"] = sim.gate_counts.to_dict()
    exact = sim.predict_exact(task.x_test)
    rec["accuracy_noise_free_exact"] = float(np.mean(exact == task.y_test))
    res = sim.evaluate(task)
    rec["accuracy_shots"] = res.accuracy
    rec["energy"] = {}
    for name in ("qpu-superconducting", "qpu-trapped-ion"):
        e = res.priced(reg.preset(name)).energy
        rec["energy"][name] = {"energy_per_inference_j": e.energy_j, "low_j": e.low_j, "high_j": e.high_j,
                               "latency_per_inference_s": e.latency_s, "breakdown_j": e.breakdown_j}
    rec["ledger_per_inference"] = res.ledger.per_inference()
    (out / f"{args.setting}.qasm").write_text(sim.qasm3())
    print(json.dumps({k: rec[k] for k in ("setting", "accuracy_noise_free_exact", "accuracy_shots")}),
          flush=True)

    noisy = VQC(dataclasses.replace(sim.config, noise=True))
    noisy.__dict__.update({k: v for k, v in sim.__dict__.items() if k != "config"})
    lim = min(args.noise_limit, len(task.y_test))
    t1 = time.perf_counter()
    zn = noisy.expectations(task.x_test[:lim])
    rec["accuracy_noisy"] = float(np.mean(noisy.logits(zn).argmax(1) == task.y_test[:lim]))
    rec["noisy_n_test"], rec["noisy_wall_s"] = lim, time.perf_counter() - t1
    rec["noise_model"] = sim.config.device
    rec["accuracy_shots_same_subset"] = float(np.mean(
        sim.logits(sim.expectations(task.x_test[:lim])).argmax(1) == task.y_test[:lim]))

    twin = VQCClassicalTwin(**cfg)
    twin.name = "vqc-classical-twin"
    tres = twin.fit(task, seed=args.seed).evaluate(task)
    rec["twin"] = {"accuracy": tres.accuracy, "n_params": twin.n_params, "hidden": twin.hidden,
                   "vqc_n_params": twin.vqc_n_params,
                   "energy_cmos_45nm_j": tres.priced(reg.preset("cmos-45nm")).energy.energy_j}
    rec["versions"] = res.versions
    (out / f"{args.setting}.json").write_text(json.dumps(rec, indent=2, default=float))
    print(json.dumps({k: rec[k] for k in ("setting", "accuracy_noise_free_exact", "accuracy_shots",
                                          "accuracy_noisy", "twin")}, default=float))


def _export_or_load(sim, task, args, rec) -> None:
    """Export the training inputs, or install trained parameters (same pre-processing)."""
    import dataclasses as dc
    from collections import Counter

    from nonvon.simulators.quantum.statevector import translate

    feats, y = sim._prepare(task, args.seed)
    sim.model = m = sim._model(feats.shape[1], task.n_classes)
    inputs = sim._circuit_inputs(feats, Counter())
    sim.symbols = tuple(m.inputs) + tuple(m.weights)
    sim.program = translate(m.circuit, sim.symbols)
    if args.export:
        c = sim.config
        x_test = sim._circuit_inputs(sim.pre.transform(task.x_test), Counter())
        w0 = m.init_weights(np.random.default_rng(args.seed), c.angle_std)
        meta = {"program": dc.asdict(sim.program), "readout": list(m.readout), "binary": task.n_classes == 2,
                "epochs": c.epochs, "batch_size": c.batch_size, "lr": c.lr, "seed": args.seed,
                "setting": args.setting}
        np.savez(args.export, x_train=inputs.astype(np.float32), y_train=y, x_test=x_test.astype(np.float32),
                 y_test=task.y_test, w0=w0, meta=np.array(json.dumps(meta)))
        print(f"wrote {args.export}")
        return
    with np.load(args.weights, allow_pickle=False) as z:
        sim.params = {k: z[k] for k in ("w", "s", "b")}
        rec["trained_on"] = str(z["device"]) if "device" in z else "?"
        rec["train_wall_s"] = float(z["train_wall_s"]) if "train_wall_s" in z else None
        rec["accuracy_exact_on_training_machine"] = float(z["test_acc"]) if "test_acc" in z else None
        sim.history = [float(v) for v in z["loss"]] if "loss" in z else []
    sim._seed_eval = args.seed
    sim._build_device_program()
    sim._fitted_on = (task.input_shape, task.n_classes)
    sim._seed = args.seed


if __name__ == "__main__":
    main()
