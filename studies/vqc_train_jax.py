"""Train exported VQC programs with JAX alone (no qiskit): for an accelerator machine.

``studies/vqc_mnist.py --export DIR`` writes, per setting, the pre-processed inputs, the
translated circuit program, the initial parameters and the training schedule; this
script trains each with the same loop as :class:`nonvon.simulators.quantum.VQC`
(:func:`~nonvon.simulators.quantum.vqc_training.train_adam` on
:func:`~nonvon.simulators.quantum.simulator.vqc_logits_fn`) on the default JAX device,
reports the noise-free test accuracy, and writes ``OUT/<setting>.trained.npz`` for
``vqc_mnist.py --weights OUT``. Last line: one JSON object with every setting's result.

    python studies/vqc_train_jax.py .device/vqc/*.npz --out "$OUT" [--epochs N]
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np


def _program(d: dict):
    from nonvon.simulators.quantum.statevector import Op, Program

    def poly(a):
        return tuple((float(c), tuple(int(i) for i in idx)) for c, idx in a)

    ops = tuple(Op(o["name"], tuple(o["qubits"]), tuple(poly(a) for a in o["angles"])) for o in d["ops"])
    return Program(int(d["n_qubits"]), ops, tuple(d["symbols"]))


def train_one(path: Path, out: Path, epochs: int | None = None) -> dict:
    """Train one exported setting; write ``out/<setting>.trained.npz``; return its summary."""
    import jax
    import jax.numpy as jnp

    from nonvon._io import atomic_write_bytes
    from nonvon.errors import ConfigError
    from nonvon.simulators.quantum.simulator import vqc_logits_fn
    from nonvon.simulators.quantum.vqc_training import train_adam

    with np.load(path, allow_pickle=False) as z:
        if "meta" not in z.files:
            raise ConfigError(f"{path} is not an export of studies/vqc_mnist.py (no 'meta')",
                              "create it with: python studies/vqc_mnist.py --setting NAME --export DIR")
        data = {k: z[k] for k in z.files}
    meta = json.loads(str(data["meta"]))
    prog = _program(meta["program"])
    segment = 64 if prog.n_qubits >= 14 else None
    readout = tuple(meta["readout"])
    fn = vqc_logits_fn(prog, readout, bool(meta["binary"]), segment, meta.get("readout_map", "scale"))
    params = {k[3:]: v for k, v in data.items() if k.startswith("p0_")}
    epochs = epochs or meta["epochs"]
    hist: list[float] = []
    t = time.perf_counter()
    p = train_adam(fn, params, data["x_train"], data["y_train"], epochs=epochs, batch_size=meta["batch_size"],
                   lr=meta["lr"], seed=meta["seed"], lr_floor=meta.get("lr_floor", 0.1),
                   loss=meta.get("loss", "cross_entropy"), history=hist)
    wall = time.perf_counter() - t
    logits = jax.jit(fn)
    pj = {k: jnp.asarray(v) for k, v in p.items()}
    xt = data["x_test"]
    bs = max(1, min(2048, 2 ** 24 // 2 ** prog.n_qubits))
    pred = np.concatenate([np.asarray(logits(pj, jnp.asarray(xt[i:i + bs]))).argmax(1)
                           for i in range(0, len(xt), bs)])
    acc = float(np.mean(pred == data["y_test"]))
    buf = io.BytesIO()
    np.savez(buf, **{f"p_{k}": v for k, v in p.items()}, test_acc=acc, train_wall_s=wall, epochs=epochs,
             lr=meta["lr"], loss=np.array(hist), device=str(jax.devices()[0]))
    atomic_write_bytes(out / f"{meta['setting']}.trained.npz", buf.getvalue())
    row = {"setting": meta["setting"], "n_qubits": prog.n_qubits, "test_acc_exact": acc,
           "train_wall_s": wall, "epochs": epochs, "loss": hist, "device": str(jax.devices()[0])}
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", help="exports of studies/vqc_mnist.py --export")
    ap.add_argument("--out", default=".", help="folder for <setting>.trained.npz")
    ap.add_argument("--epochs", type=int, default=None, help="override every setting's epochs")
    args = ap.parse_args(argv)
    out = Path(args.out)
    t = time.perf_counter()
    rows = [train_one(Path(p), out, args.epochs) for p in args.inputs]
    print(json.dumps({"study": "vqc_train_jax", "total_wall_s": time.perf_counter() - t,
                      "results": {r["setting"]: r["test_acc_exact"] for r in rows}}))
    return rows


if __name__ == "__main__":
    main()
