"""One VQC training epoch: nonvon's compiled JAX simulator vs qiskit-machine-learning.

Same circuit (a qiskit ``QuantumCircuit``: angle encoding + hardware-efficient ansatz,
readout ``<Z_0>``), same data (scikit-learn digits 0 vs 1, PCA, scaled to angles), same
loss (cross-entropy of ``s <Z_0> + b``), same optimizer (Adam, cosine decay), same
initial weights and batch order, in one process on the CPU. The peer computes ``<Z_0>``
and its weight gradient with ``EstimatorQNN`` (qiskit's reference ``StatevectorEstimator``
and parameter-shift gradients); nonvon with one jit-compiled step (exact reverse-mode
gradients). The final weights are asserted equal, so both did the same training.

Also records the cost curve of one training step against the number of qubits
(``--curve``, 4 to 16), which needs only JAX (programs are translated here and can be
shipped as JSON with ``--save-programs`` / ``--programs`` to a machine without qiskit).

Last line: one JSON object, e.g. ``{"bench": "vqc_training", "peer": "qiskit-machine-learning",
"ratio": ...}``.

    python benchmarks/vqc_training.py --quick
    python benchmarks/vqc_training.py --curve-only --programs progs.json --device cuda
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

import numpy as np


def _data(n: int, n_features: int):
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    d = load_digits()
    keep = d.target < 2
    x, y = d.data[keep], d.target[keep]
    x = PCA(n_features, random_state=0).fit_transform(x)
    lo, hi = x.min(0), x.max(0)
    return (np.pi * (x - lo) / (hi - lo))[:n].astype(np.float64), y[:n].astype(np.int64)


def _peer_epoch(model, x, y, params, *, batch_size, lr, seed, lr_floor=0.1):
    """One epoch with qiskit-machine-learning's EstimatorQNN and the same Adam in NumPy."""
    from qiskit.quantum_info import SparsePauliOp
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    n = model.n_qubits
    obs = SparsePauliOp("I" * (n - 1) + "Z")  # Z on qubit 0 (qiskit strings are big-endian)
    qnn = EstimatorQNN(circuit=model.circuit, observables=obs, input_params=list(model.inputs),
                       weight_params=list(model.weights))
    p = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    per_epoch = len(x) // batch_size
    total = per_epoch
    for t in range(per_epoch):
        idx = order[t * batch_size:(t + 1) * batch_size]
        xb, yb = x[idx], y[idx]
        z = qnn.forward(xb, p["w"])[:, 0]
        _, dz = qnn.backward(xb, p["w"])
        dz = dz[:, 0, :]
        logit = p["s"][0] * z + p["b"][0]
        prob = 1 / (1 + np.exp(-logit))
        g_logit = (prob - yb) / len(yb)
        g = {"w": (g_logit * p["s"][0]) @ dz, "s": np.array([g_logit @ z]), "b": np.array([g_logit.sum()])}
        rate = lr * (lr_floor + (1 - lr_floor) * 0.5 * (1 + math.cos(math.pi * t / total)))
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            p[k] = p[k] - rate * (m[k] / (1 - b1 ** (t + 1))) / (np.sqrt(v[k] / (1 - b2 ** (t + 1))) + eps)
    return p, qnn


def _nonvon_epoch(model, x, y, params, *, batch_size, lr, seed):
    from nonvon.simulators.quantum.simulator import vqc_logits_fn
    from nonvon.simulators.quantum.statevector import translate
    from nonvon.simulators.quantum.training import train_adam

    prog = translate(model.circuit, tuple(model.inputs) + tuple(model.weights))
    fn = vqc_logits_fn(prog, model.readout, True, None)
    return train_adam(fn, params, x, y, epochs=1, batch_size=batch_size, lr=lr, seed=seed)


def compare(n_qubits: int, layers: int, n: int, batch_size: int, lr: float = 0.05, seed: int = 0) -> dict:
    from nonvon.models.vqc_circuits import build_vqc

    x, y = _data(n, n_qubits)
    model = build_vqc(n_qubits, n_qubits, 2, layers=layers, encoding="angle")
    params = {"w": model.init_weights(np.random.default_rng(seed), 0.3), "s": np.array([3.0]),
              "b": np.array([0.0])}
    t = time.perf_counter()
    ours_first = _nonvon_epoch(model, x, y, params, batch_size=batch_size, lr=lr, seed=seed)
    nonvon_first_s = time.perf_counter() - t
    t = time.perf_counter()
    ours = _nonvon_epoch(model, x, y, params, batch_size=batch_size, lr=lr, seed=seed)
    nonvon_s = time.perf_counter() - t
    t = time.perf_counter()
    theirs, qnn = _peer_epoch(model, x, y, params, batch_size=batch_size, lr=lr, seed=seed)
    peer_s = time.perf_counter() - t
    # Weights outside <Z_0>'s light cone (e.g. the last RZs) have a zero gradient, which Adam
    # turns into +-lr steps driven by rounding noise (float32 here, float64 there): they
    # differ but do not change the model. Compare what the models compute, and the
    # readout parameters, on the data.
    z_ours = qnn.forward(x, ours["w"])[:, 0]
    z_theirs = qnn.forward(x, theirs["w"])[:, 0]
    diff = float(np.max(np.abs(ours["s"] * z_ours + ours["b"] - theirs["s"] * z_theirs - theirs["b"])))
    assert diff < 1e-3, f"nonvon and the peer trained different models (logits differ by {diff})"
    assert np.array_equal(ours["w"], ours_first["w"])
    return {"n_qubits": n_qubits, "layers": layers, "n_samples": n, "batch_size": batch_size,
            "n_weights": len(model.weights), "peer_epoch_s": peer_s, "nonvon_epoch_s": nonvon_s,
            "nonvon_first_epoch_incl_compile_s": nonvon_first_s, "max_logit_diff": diff,
            "ratio": peer_s / nonvon_s, "ratio_incl_compile": peer_s / nonvon_first_s}


def make_programs(qubits, layers: int) -> dict:
    """Translated programs for the curve, as JSON-able data (needs qiskit)."""
    import dataclasses

    from nonvon.models.vqc_circuits import build_vqc
    from nonvon.simulators.quantum.statevector import translate

    out = {}
    for n in qubits:
        m = build_vqc(n, n, 2, layers=layers, encoding="reupload")
        prog = translate(m.circuit, tuple(m.inputs) + tuple(m.weights))
        out[str(n)] = {"n_inputs": len(m.inputs), "n_weights": len(m.weights),
                       "program": dataclasses.asdict(prog)}
    return out


def _program_from(d):
    from nonvon.simulators.quantum.statevector import Op, Program

    def poly(p):
        return tuple((float(c), tuple(int(i) for i in idx)) for c, idx in p)

    ops = tuple(Op(o["name"], tuple(o["qubits"]), tuple(poly(a) for a in o["angles"])) for o in d["ops"])
    return Program(int(d["n_qubits"]), ops, tuple(d["symbols"]))


def curve(programs: dict, batch_size: int, device: str, steps: int = 5) -> list[dict]:
    """Seconds per training step (forward + exact gradient + Adam) vs qubits."""
    import jax
    import jax.numpy as jnp

    from nonvon.simulators.quantum.simulator import vqc_logits_fn
    from nonvon.simulators.quantum.training import _adam_step

    dev = jax.devices("gpu" if device == "cuda" else "cpu")[0]
    rows = []
    for key in sorted(programs, key=int):
        spec = programs[key]
        prog = _program_from(spec["program"])
        n = prog.n_qubits
        segment = 64 if n >= 14 else None
        step = _adam_step(vqc_logits_fn(prog, (0,), True, segment))
        rng = np.random.default_rng(0)
        with jax.default_device(dev):
            p = {"w": jnp.asarray(rng.normal(0, 0.1, spec["n_weights"]), jnp.float32),
                 "s": jnp.ones(1), "b": jnp.zeros(1)}
            m = jax.tree.map(jnp.zeros_like, p)
            v = jax.tree.map(jnp.zeros_like, p)
            xb = jnp.asarray(rng.uniform(0, np.pi, (batch_size, spec["n_inputs"])), jnp.float32)
            yb = jnp.asarray(rng.integers(0, 2, batch_size), jnp.int32)
            hyper = (jnp.float32(0.01), jnp.float32(0.1), jnp.float32(100.0))
            t = time.perf_counter()
            out = step(p, m, v, jnp.float32(0), hyper, xb, yb)
            jax.block_until_ready(out)
            compile_s = time.perf_counter() - t
            t = time.perf_counter()
            for i in range(steps):
                out = step(*out[:3], jnp.float32(i + 1), hyper, xb, yb)
            jax.block_until_ready(out)
            step_s = (time.perf_counter() - t) / steps
        rows.append({"n_qubits": n, "gates": len(prog.ops), "batch_size": batch_size,
                     "step_s": step_s, "samples_per_s": batch_size / step_s,
                     "first_step_incl_compile_s": compile_s, "device": str(dev)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small problem, CPU, well under a minute")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--qubits", type=int, default=6)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--curve", default="", help="comma-separated qubit counts, e.g. 4,6,8,10,12,14,16")
    ap.add_argument("--curve-only", action="store_true")
    ap.add_argument("--curve-batch", type=int, default=32)
    ap.add_argument("--save-programs", default="")
    ap.add_argument("--programs", default="")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples, args.qubits, args.curve = 64, 4, args.curve or "4,6,8"

    import jax

    out = {"bench": "vqc_training", "peer": "qiskit-machine-learning", "machine": platform.node(),
           "cpu_count": __import__("os").cpu_count(), "jax": jax.__version__}
    qubits = [int(q) for q in args.curve.split(",") if q]
    if args.programs:
        with open(args.programs) as f:
            programs = json.load(f)
    elif qubits:
        programs = make_programs(qubits, args.layers)
    else:
        programs = {}
    if args.save_programs:
        with open(args.save_programs, "w") as f:
            json.dump(programs, f)
    if not args.curve_only:
        from importlib.metadata import version

        out["peer_version"] = version("qiskit-machine-learning")
        out["qiskit"] = version("qiskit")
        out.update(compare(args.qubits, args.layers, args.samples, args.batch_size))
    if programs:
        out["curve"] = curve(programs, args.curve_batch, args.device)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
