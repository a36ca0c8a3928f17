"""Train an exported VQC program with JAX alone (no qiskit): for an accelerator machine.

``studies/vqc_mnist.py --export inputs.npz`` writes the pre-processed inputs, the
translated circuit program and the initial weights; this script trains it with the same
loop as :class:`nonvon.simulators.quantum.VQC` (``train_adam`` on ``vqc_logits_fn``) on
the default JAX device and writes the parameters back for ``vqc_mnist.py --weights``.

    python studies/vqc_train_jax.py inputs.npz trained.npz [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs")
    ap.add_argument("out")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    args = ap.parse_args(argv)

    import jax
    import jax.numpy as jnp

    from nonvon.simulators.quantum.simulator import vqc_logits_fn
    from nonvon.simulators.quantum.statevector import Op, Program
    from nonvon.simulators.quantum.training import train_adam

    z = np.load(args.inputs, allow_pickle=False)
    meta = json.loads(str(z["meta"]))
    d = meta["program"]
    def poly(a):
        return tuple((float(c), tuple(int(i) for i in idx)) for c, idx in a)

    ops = tuple(Op(o["name"], tuple(o["qubits"]), tuple(poly(a) for a in o["angles"])) for o in d["ops"])
    prog = Program(int(d["n_qubits"]), ops, tuple(d["symbols"]))
    segment = 64 if prog.n_qubits >= 14 else None
    fn = vqc_logits_fn(prog, tuple(meta["readout"]), bool(meta["binary"]), segment)
    params = {"w": z["w0"], "s": np.array([3.0]), "b": np.zeros(len(meta["readout"]))}
    epochs = args.epochs or meta["epochs"]
    lr = args.lr or meta["lr"]
    hist: list[float] = []
    t = time.perf_counter()
    p = train_adam(fn, params, z["x_train"], z["y_train"], epochs=epochs, batch_size=meta["batch_size"],
                   lr=lr, seed=meta["seed"], history=hist)
    wall = time.perf_counter() - t
    logits = jax.jit(fn)
    pj = {k: jnp.asarray(v) for k, v in p.items()}
    xt = z["x_test"]
    pred = np.concatenate([np.asarray(logits(pj, jnp.asarray(xt[i:i + 2048]))).argmax(1)
                           for i in range(0, len(xt), 2048)])
    acc = float(np.mean(pred == z["y_test"]))
    np.savez(args.out, **p, test_acc=acc, train_wall_s=wall, epochs=epochs, lr=lr, loss=np.array(hist),
             device=str(jax.devices()[0]))
    print(json.dumps({"setting": meta["setting"], "test_acc_exact": acc, "train_wall_s": wall,
                      "epochs": epochs, "loss": hist, "device": str(jax.devices()[0])}), flush=True)


if __name__ == "__main__":
    main()
