"""One VQC training epoch: nonvon's compiled JAX simulator vs qiskit-machine-learning.

Same circuit (a qiskit ``QuantumCircuit``: angle encoding + hardware-efficient ansatz,
readout ``<Z_0>``), same data (scikit-learn digits 0 vs 1, PCA, scaled to angles), same
loss (cross-entropy of ``s <Z_0> + b``), same optimizer (Adam, cosine decay), same
initial weights and batch order, in one process on the CPU. The peer computes ``<Z_0>``
and its weight gradient with ``EstimatorQNN`` (qiskit's reference ``StatevectorEstimator``
and parameter-shift gradients); nonvon with one jit-compiled step (exact reverse-mode
gradients). The final weights are asserted equal, so both did the same training.

Also records the cost curve of one training step (forward, exact gradient, Adam update)
against the number of qubits (``--curve``, 4 to 16; re-uploading circuits with as many
features as qubits), and the epoch time it implies on the MNIST 3 vs 6 train split
(12,049 images). The curve needs only JAX: programs are translated here and can be
shipped as JSON (``--save-programs`` / ``--programs``) to a machine without qiskit.
``--plot`` draws it, with curves measured elsewhere (``--with-curve``) beside it.

Last line: one JSON object, e.g. ``{"bench": "vqc_training", "peer": "qiskit-machine-learning",
"ratio": ...}`` (``ratio`` is null in ``--curve-only`` runs, which time nonvon alone).

    python benchmarks/vqc_training.py --quick
    python benchmarks/vqc_training.py --curve 4,6,8,10,12,14,16 --save-programs progs.json
    python benchmarks/vqc_training.py --curve-only --programs progs.json --device cuda > cuda.jsonl
    python benchmarks/vqc_training.py --curve-only --programs progs.json --with-curve cuda.jsonl --plot c.png
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

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
    from nonvon.simulators.quantum.vqc_training import train_adam

    prog = translate(model.circuit, tuple(model.inputs) + tuple(model.weights))
    fn = vqc_logits_fn(prog, model.readout, True, None)
    return train_adam(fn, params, x, y, epochs=1, batch_size=batch_size, lr=lr, seed=seed)


def compare(n_qubits: int, layers: int, n: int, batch_size: int, lr: float = 0.05, seed: int = 0) -> dict:
    from nonvon.simulators.quantum.circuits import build_vqc

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

    from nonvon.simulators.quantum.circuits import build_vqc
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


MNIST_36_TRAIN = 12049  # MNIST train images of 3 and 6: one epoch of the 3 vs 6 studies


def _jax_device(device: str):
    import jax

    from nonvon.errors import IncompatibleError

    if device == "cpu":
        return jax.devices("cpu")[0]
    try:
        return jax.devices("gpu")[0]
    except RuntimeError:
        raise IncompatibleError("--device cuda: JAX has no GPU backend on this machine "
                                f"(backend {jax.default_backend()!r})",
                                "install a CUDA build of jax (pip install 'jax[cuda12]') or use --device cpu"
                                ) from None


def curve(programs: dict, batch_size: int, device: str, steps: int = 5) -> list[dict]:
    """Seconds per training step (forward + exact gradient + Adam) vs qubits."""
    import jax
    import jax.numpy as jnp

    from nonvon.simulators.quantum.simulator import vqc_logits_fn
    from nonvon.simulators.quantum.vqc_training import _adam_step

    dev = _jax_device(device)
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
                     "epoch_s_mnist36": step_s * (MNIST_36_TRAIN // batch_size),
                     "first_step_incl_compile_s": compile_s, "device": str(dev),
                     "device_kind": getattr(dev, "device_kind", dev.platform)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def read_curve(path: str) -> list[dict]:
    """Curve rows from a saved run: its last JSON line's ``curve``, or one row per line."""
    from nonvon.errors import ConfigError

    lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip().startswith("{")]
    rows = [json.loads(ln) for ln in lines]
    if rows and "curve" in rows[-1]:
        return rows[-1]["curve"]
    rows = [r for r in rows if "n_qubits" in r and "step_s" in r]
    if not rows:
        raise ConfigError(f"{path} holds no curve rows", "pass the output of a --curve run of this script")
    return rows


def plot(curves: dict[str, list[dict]], path: str) -> None:
    """Seconds per training step vs qubits, one line per machine, log scale (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nonvon._io import atomic_savefig

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, rows in curves.items():
        rows = sorted(rows, key=lambda r: r["n_qubits"])
        ax.plot([r["n_qubits"] for r in rows], [r["step_s"] for r in rows], marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("qubits")
    ax.set_ylabel(f"seconds per training step (batch {next(iter(curves.values()))[0]['batch_size']})")
    ax.set_title("VQC training step: forward + exact gradient + Adam")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small problem, CPU, well under a minute")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--qubits", type=int, default=6)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--curve", default="", help="comma-separated qubit counts, e.g. 4,6,8,10,12,14,16")
    ap.add_argument("--curve-only", action="store_true", help="time nonvon's curve only (no peer)")
    ap.add_argument("--curve-batch", type=int, default=32)
    ap.add_argument("--curve-steps", type=int, default=5)
    ap.add_argument("--save-programs", default="")
    ap.add_argument("--programs", default="")
    ap.add_argument("--with-curve", action="append", default=[],
                    help="LABEL=FILE or FILE: a curve measured elsewhere, drawn beside this one")
    ap.add_argument("--plot", default="", help="write the curve(s) as a PNG here")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples, args.qubits, args.curve = 64, 4, args.curve or "4,6,8"

    import jax

    out = {"bench": "vqc_training", "peer": "qiskit-machine-learning", "machine": platform.node(),
           "cpu_count": __import__("os").cpu_count(), "jax": jax.__version__, "device": args.device}
    qubits = [int(q) for q in args.curve.split(",") if q]
    if args.programs:
        with open(args.programs) as f:
            programs = json.load(f)
        if qubits:
            programs = {k: v for k, v in programs.items() if int(k) in qubits}
    elif qubits:
        programs = make_programs(qubits, args.layers)
    else:
        programs = {}
    if args.save_programs:
        from nonvon._io import atomic_write_text

        atomic_write_text(args.save_programs, json.dumps(programs))
    if not args.curve_only:
        from importlib.metadata import version

        out["peer_version"] = version("qiskit-machine-learning")
        out["qiskit"] = version("qiskit")
        out.update(compare(args.qubits, args.layers, args.samples, args.batch_size))
    else:
        out["ratio"] = None
    if programs:
        out["curve"] = curve(programs, args.curve_batch, args.device, args.curve_steps)
    if args.plot:
        curves = {}
        if out.get("curve"):
            curves[f"{out['curve'][0]['device_kind']} ({platform.node()})"] = out["curve"]
        for spec in args.with_curve:
            label, _, path = spec.rpartition("=")
            rows = read_curve(path)
            curves[label or rows[0].get("device_kind", path)] = rows
        plot(curves, args.plot)
        out["plot"] = args.plot
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
