"""VQCs on MNIST: accuracy noise-free, with finite shots and with noise; twin; energy; published figures.

Settings (``--setting``, several comma-separated, or ``all``):

* ``tfq-4x4``: MNIST 3 vs 6 as 4x4 images (the TensorFlow Quantum input size), 16
  area-averaged grey levels re-uploaded on 8 qubits, every qubit read out. Target >= 98%.
  TFQ itself resizes with ``tf.image.resize`` (bilinear, no antialiasing), which from
  28 to 4 reads single pixels (rows and columns 3, 10, 17, 24); on those a classical
  MLP reaches only about 95% (92% binarized), so the 98% target is set on area
  averages, which keep the information (MLP about 99.4%).
* ``pca``: MNIST 3 vs 6, 16 principal components re-uploaded on 8 qubits.
* ``10class``: MNIST 10 classes, 20 principal components re-uploaded on 10 qubits with
  ring entanglement, one readout qubit per class. Target >= 80%.
* ``tfq-paper``: the TensorFlow Quantum tutorial reproduced: its 4x4 resize, its
  removal of contradictory images, binarized pixels on 16 data qubits plus a readout
  qubit (17), XX then ZZ couplings (32 parameters), hinge loss, Adam at 1e-3, batch 32,
  3 epochs. Published: > 85%.
* ``farhi-neven``: Farhi & Neven's form of the same QNN on the same data: ZX then XX
  couplings to a readout qubit prepared in ``|1>``, ``Y`` measured, loss ``1 - t <Y>``
  (equal to the hinge loss, since ``|<Y>| <= 1``).

Every setting prints the published figure beside ours with the ratio, and the classical
twin (same inputs, same number of trainable parameters, same training) beside the VQC.
VQC settings are also evaluated with ``--shots`` sampled shots on the device circuit, with
the noise model (qiskit-aer; first ``--noise-limit`` test samples) and priced on both QPU
presets. Results: ``<out>/<setting>.json`` (and ``.qasm``), written atomically.

Where to train: here (``python studies/vqc_mnist.py --setting tfq-4x4``), or on an
accelerator without qiskit, in three steps::

    python studies/vqc_mnist.py --setting all --export .device/vqc             # here (qiskit)
    python studies/vqc_train_jax.py .device/vqc/*.npz --out "$OUT"            # accelerator (JAX only)
    python studies/vqc_mnist.py --setting all --weights DIR --out docs/results/vqc-mnist   # here
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

# Published figures, each with its source. ``bound``: "lower" when the source states "> x".
PUBLISHED = {
    "tfq": {"accuracy": 0.85, "bound": "lower", "verified": True,
            "source": "TensorFlow Quantum tutorial 'MNIST classification' (tensorflow/quantum, "
                      "docs/tutorials/mnist.ipynb): 'Training this model to convergence should achieve "
                      ">85% accuracy on the test set' (16 data qubits + 1 readout, XX and ZZ layers, 32 "
                      "parameters, binarized 4x4 images of 3 and 6)"},
    "farhi": {"accuracy": 0.98, "bound": "approx", "verified": False,
              "source": "Farhi & Neven, 'Classification with Quantum Neural Networks on Near Term "
                        "Processors', arXiv:1802.06002 (2018), Sec. 3.3 (MNIST 3 vs 6 downsampled to 4x4, "
                        "17 qubits): a test-set categorization error of about 2%, as we recall it; NOT "
                        "re-checked against the paper (the stored copies searchable here hold only its "
                        "abstract). The TFQ tutorial, following the paper, notes that its data counts "
                        "'do not closely match the reported values, but the exact procedure is not "
                        "specified'"},
    "quantumnas": {"accuracy": 0.32, "bound": "approx", "verified": False,
                   "source": "QuantumNAS (Wang et al., HPCA 2022), MNIST 10-class on IBM hardware: 32%, the "
                             "anchor in nonvon's design brief (DESIGN.md section 5), not re-checked here"},
}


@dataclasses.dataclass(frozen=True)
class Setting:
    """One study setting: a VQC from :class:`nonvon.simulators.quantum.VQCConfig` options, or
    a readout-qubit QNN (``kind="qnn"``) on binarized 4x4 pixels."""

    kind: str
    classes: tuple | None
    cfg: dict
    target: float | None = None
    published: str | None = None
    note: str = ""
    noise_limit: int = 2000  # test samples run with the noise model (aer trajectories are slow)


SETTINGS = {
    "tfq-4x4": Setting("vqc", (3, 6), dict(preprocess="downsample", n_features=16, n_qubits=8,
                                           encoding="reupload", layers=4, entanglement="linear",
                                           readout="all", epochs=10, batch_size=32, lr=0.05,
                                           max_train=None),
                       target=0.98, published="tfq",
                       note="area-averaged 4x4 grey levels (the module docstring says why not TFQ's resize)"),
    "pca": Setting("vqc", (3, 6), dict(preprocess="pca", n_features=16, n_qubits=8, encoding="reupload",
                                       layers=4, entanglement="linear", readout="class", epochs=3,
                                       batch_size=32, lr=0.03, max_train=None),
                   target=0.98, published="tfq"),
    "10class": Setting("vqc", None, dict(preprocess="pca", n_features=20, n_qubits=10, encoding="reupload",
                                         layers=8, entanglement="ring", readout="class", epochs=10,
                                         batch_size=64, lr=0.05, max_train=None),
                       target=0.80, published="quantumnas", noise_limit=200),
    "tfq-paper": Setting("qnn", (3, 6), dict(style="tfq", couplings=("xx", "zz"), epochs=3, batch_size=32,
                                             lr=1e-3, lr_floor=1.0, loss="hinge"),
                         published="tfq", note="TFQ tutorial's data, circuit, loss and optimizer"),
    "farhi-neven": Setting("qnn", (3, 6), dict(style="farhi", couplings=("zx", "xx"), epochs=3,
                                               batch_size=32, lr=1e-3, lr_floor=1.0, loss="hinge"),
                           published="farhi",
                           note="Farhi & Neven's gates and readout on the TFQ tutorial's data pipeline "
                                "(the paper's exact pre-processing is not specified); Adam instead of "
                                "the paper's per-sample gradient steps"),
}


# -- data of the readout-qubit QNN settings ---------------------------------------------------------
def tfq_resize_4x4(images: np.ndarray) -> np.ndarray:
    """``tf.image.resize(x, (4, 4))`` of 28x28 images (bilinear, half-pixel centres, no antialias).

    Output pixel ``i`` samples input coordinate ``(i + 0.5) * 7 - 0.5 = 7 i + 3``, an integer,
    so bilinear interpolation reads single pixels: rows and columns 3, 10, 17, 24.
    """
    if images.shape[1:] != (28, 28):
        from nonvon.errors import IncompatibleError

        raise IncompatibleError(f"the TFQ resize is defined here for 28x28 images; got {images.shape[1:]}",
                                "use MNIST (or Fashion-MNIST) with the 'tfq-paper' setting")
    return images[:, 3::7, 3::7].reshape(len(images), 16).astype(np.float32)


def remove_contradicting(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Drop every image whose exact pixel values occur with more than one label (TFQ, Sec. 1.3)."""
    labels: dict[bytes, set] = {}
    for xi, yi in zip(x, y, strict=True):
        labels.setdefault(xi.tobytes(), set()).add(int(yi))
    keep = np.array([len(labels[xi.tobytes()]) == 1 for xi in x], dtype=bool)
    counts = {"unique_images": len(labels), "contradicting_unique": sum(len(v) > 1 for v in labels.values()),
              "initial": len(x), "remaining": int(keep.sum())}
    return x[keep], y[keep], counts


def qnn_data(task, threshold: float = 0.5) -> dict:
    """The TFQ tutorial's pipeline: resize to 4x4, drop contradictions (train), binarize at 0.5."""
    x_train, y_train, counts = remove_contradicting(tfq_resize_4x4(task.x_train), task.y_train)
    x_test = tfq_resize_4x4(task.x_test)
    return {"x_train": (x_train > threshold).astype(np.float32), "y_train": y_train.astype(np.int64),
            "x_test": (x_test > threshold).astype(np.float32), "y_test": task.y_test.astype(np.int64),
            "counts": counts}


def _qnn_model(s: Setting):
    from nonvon.simulators.quantum.circuits import build_readout_qnn

    return build_readout_qnn(16, tuple(s.cfg["couplings"]), style=s.cfg["style"])


def _qnn_init(model, seed: int) -> dict:
    """TFQ's PQC layer draws its symbols uniformly from [0, 2 pi); the same here for both styles."""
    return {"w": np.random.default_rng(seed).uniform(0.0, 2 * np.pi, len(model.weights)),
            **model.init_readout(np.random.default_rng(seed))}


def _scores(program, readout, readout_map, params, x, batch: int = 256) -> np.ndarray:
    """Noise-free logits of a trained program on ``x`` (exact expectations, batched)."""
    import jax
    import jax.numpy as jnp

    from nonvon.simulators.quantum.simulator import vqc_logits_fn

    fn = jax.jit(vqc_logits_fn(program, tuple(readout), True, None, readout_map))
    pj = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in params.items()}
    return np.concatenate([np.asarray(fn(pj, jnp.asarray(x[i:i + batch], dtype=jnp.float32)))
                           for i in range(0, len(x), batch)])


# -- the published comparison ----------
def compare_published(key: str | None, ours: float) -> dict | None:
    """Published vs ours: the ratio ours / published, and what it means for a lower bound."""
    if key is None:
        return None
    pub = PUBLISHED[key]
    ratio = ours / pub["accuracy"]
    out = {"published_accuracy": pub["accuracy"], "bound": pub["bound"], "ours": ours, "ratio": ratio,
           "verified": pub["verified"], "source": pub["source"]}
    if pub["bound"] == "lower":
        out["consistent"] = bool(ours > pub["accuracy"])
    return out


def _print_published(setting: str, cmp: dict | None, note: str = "") -> None:
    if cmp is None:
        return
    rel = {"lower": "> ", "approx": "~ "}.get(cmp["bound"], "")
    flag = "" if cmp["verified"] else " (published figure not re-checked)"
    print(f"{setting}: published {rel}{cmp['published_accuracy']:.2%} vs ours {cmp['ours']:.2%} "
          f"(ratio {cmp['ratio']:.3f}){flag}{'; ' + note if note else ''}", flush=True)


_TRAINED_KEYS = ("trained_on", "train_wall_s", "accuracy_exact_on_training_machine")


# -- settings of kind "vqc" ----------
def _task(reg, s: Setting, subset):
    task = reg.task("mnist", progress=False)
    if s.classes:
        task = task.select_classes(*s.classes)
    if subset:
        task = task.subset(*subset, seed=0)
    return task


def _vqc_inputs(sim, task, seed: int):
    """Pre-process the train split and build the circuit without training (export / load)."""
    from nonvon.simulators.quantum.statevector import translate

    feats, y = sim._prepare(task, seed)
    sim.model = m = sim._model(feats.shape[1], task.n_classes)
    inputs = sim._circuit_inputs(feats, Counter())
    sim.symbols = tuple(m.inputs) + tuple(m.weights)
    sim.program = translate(m.circuit, sim.symbols)
    return inputs, y


def _install(sim, params: dict, seed: int, task) -> None:
    sim.params = {k: np.asarray(v) for k, v in params.items()}
    sim._seed_eval = seed
    sim._build_device_program()
    sim._fitted_on = (task.input_shape, task.n_classes)
    sim._seed = seed


def run_vqc(name: str, s: Setting, args, reg, trained: dict | None) -> dict:
    from nonvon.simulators.quantum import VQC, VQCClassicalTwin

    cfg = dict(s.cfg, shots=args.shots)
    cfg.update(args.overrides)
    task = _task(reg, s, args.subset)
    rec = {"setting": name, "kind": s.kind, "note": s.note, "task": task.name, "data_source": task.source,
           "config": cfg, "n_train": len(task.y_train), "n_test": len(task.y_test), "seed": args.seed}
    t0 = time.perf_counter()
    sim = VQC(**cfg)
    sim.name = "vqc"
    if trained is None:
        sim.fit(task, seed=args.seed, progress=False)
        rec["trained_on"] = _this_machine()
        rec["train_wall_s"] = time.perf_counter() - t0
    else:
        _vqc_inputs(sim, task, args.seed)
        _install(sim, trained["params"], args.seed, task)
        sim.history = trained["loss"]
        rec.update({k: trained[k] for k in _TRAINED_KEYS})
    rec["fit_wall_s"] = time.perf_counter() - t0
    rec["loss_per_epoch"] = sim.history
    rec["n_qubits"], rec["n_params"] = sim.model.n_qubits, sim.n_params
    rec["gate_counts_per_shot"] = sim.gate_counts.to_dict()
    exact = sim.predict_exact(task.x_test)
    rec["accuracy_noise_free_exact"] = float(np.mean(exact == task.y_test))
    if trained is None:  # keep what was trained here, so it can be evaluated again with --weights
        save_trained(args.out, name, sim.params, rec["train_wall_s"], sim.history,
                     rec["accuracy_noise_free_exact"])
    res = sim.evaluate(task)
    rec["accuracy_shots"] = res.accuracy
    rec["energy"] = {}
    for preset in ("qpu-superconducting", "qpu-trapped-ion"):
        e = res.priced(reg.preset(preset)).energy
        rec["energy"][preset] = {"energy_per_inference_j": e.energy_j, "low_j": e.low_j, "high_j": e.high_j,
                                 "latency_per_inference_s": e.latency_s, "breakdown_j": e.breakdown_j}
    rec["ledger_per_inference"] = res.ledger.per_inference()
    print(json.dumps({k: rec[k] for k in ("setting", "accuracy_noise_free_exact", "accuracy_shots")}),
          flush=True)

    lim = min(s.noise_limit if args.noise_limit is None else args.noise_limit, len(task.y_test))
    if lim > 0:
        noisy = VQC(dataclasses.replace(sim.config, noise=True))
        noisy.__dict__.update({k: v for k, v in sim.__dict__.items() if k != "config"})
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
    rec["target"] = s.target
    rec["target_met"] = None if s.target is None else rec["accuracy_noise_free_exact"] >= s.target
    rec["published"] = compare_published(s.published, rec["accuracy_noise_free_exact"])
    rec["versions"] = res.versions
    rec["qasm3"] = f"{name}.qasm"
    _write(args.out, name, rec, sim.qasm3())
    _print_published(name, rec["published"], f"twin {rec['twin']['accuracy']:.2%} "
                     f"({rec['twin']['n_params']} params vs {rec['n_params']})")
    print(json.dumps({k: rec.get(k) for k in ("setting", "accuracy_noise_free_exact", "accuracy_shots",
                                              "accuracy_noisy", "target_met", "twin")}, default=float),
          flush=True)
    return rec


# -- settings of kind "qnn" ----------
def _qnn_twin(d: dict, n_params: int, c: dict, seed: int) -> dict:
    """The classical twin of a readout QNN: tanh MLP, same binarized pixels, parameter count, loss."""
    import math

    from nonvon.simulators.quantum.simulator import mlp_logits_fn, twin_hidden, twin_param_count
    from nonvon.simulators.quantum.vqc_training import train_adam

    f = d["x_train"].shape[1]
    h = twin_hidden(n_params, f, 1)
    rng = np.random.default_rng(seed)
    p = ({"w2": rng.normal(0, 1 / math.sqrt(f), (f, 1)), "b2": np.zeros(1)} if h == 0 else
         {"w1": rng.normal(0, math.sqrt(1 / f), (f, h)), "b1": np.zeros(h),
          "w2": rng.normal(0, 1 / math.sqrt(h), (h, 1)), "b2": np.zeros(1)})
    fn = mlp_logits_fn(True, h > 0)
    p = train_adam(fn, p, d["x_train"], d["y_train"], epochs=c["epochs"], batch_size=c["batch_size"],
                   lr=c["lr"], seed=seed, lr_floor=c["lr_floor"], loss=c["loss"])
    hid = np.tanh(d["x_test"] @ p["w1"] + p["b1"]) if h else d["x_test"]
    score = (hid @ p["w2"] + p["b2"])[:, 0]
    return {"accuracy": float(np.mean((score > 0) == (d["y_test"] == 1))), "hidden": h,
            "n_params": twin_param_count(h, f, 1), "loss": c["loss"]}


def run_qnn(name: str, s: Setting, args, reg, trained: dict | None) -> dict:
    from nonvon.simulators.quantum.statevector import translate
    from nonvon.simulators.quantum.vqc_training import train_adam

    task = _task(reg, s, args.subset)
    d = qnn_data(task)
    c = dict(s.cfg)
    c.update(args.overrides)
    model = _qnn_model(s)
    prog = translate(model.circuit, tuple(model.inputs) + tuple(model.weights))
    rec = {"setting": name, "kind": s.kind, "note": s.note, "task": task.name, "data_source": task.source,
           "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in c.items()},
           "data_counts": d["counts"], "n_train": len(d["y_train"]), "n_test": len(d["y_test"]),
           "seed": args.seed, "n_qubits": model.n_qubits, "n_params": model.n_params,
           "gates_per_circuit": prog.count()}
    if trained is None:
        hist: list[float] = []
        t0 = time.perf_counter()
        params = train_adam(_qnn_fn(prog, model), _qnn_init(model, args.seed), d["x_train"], d["y_train"],
                            epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"], seed=args.seed,
                            lr_floor=c["lr_floor"], loss=c["loss"], history=hist)
        rec.update({"trained_on": _this_machine(), "train_wall_s": time.perf_counter() - t0,
                    "loss_per_epoch": hist})
        save_trained(args.out, name, params, rec["train_wall_s"], hist, None)
    else:
        params = trained["params"]
        rec.update({k: trained[k] for k in _TRAINED_KEYS})
        rec["loss_per_epoch"] = trained["loss"]
    lg = _scores(prog, model.readout, model.readout_map, params, d["x_test"])
    rec["accuracy_noise_free_exact"] = float(np.mean(lg.argmax(1) == d["y_test"]))
    rec["twin"] = _qnn_twin(d, model.n_params, c, args.seed)
    rec["published"] = compare_published(s.published, rec["accuracy_noise_free_exact"])
    _write(args.out, name, rec, None)
    _print_published(name, rec["published"], f"twin {rec['twin']['accuracy']:.2%} "
                     f"({rec['twin']['n_params']} params vs {rec['n_params']})")
    return rec


def _qnn_fn(prog, model):
    from nonvon.simulators.quantum.simulator import vqc_logits_fn

    return vqc_logits_fn(prog, model.readout, True, None, model.readout_map)


# -- export for an accelerator, and loading what it trained ----------
def export(name: str, s: Setting, args, reg, folder: Path) -> Path:
    """Write what ``studies/vqc_train_jax.py`` needs: inputs, program, initial parameters, schedule."""
    import io

    from nonvon._io import atomic_write_bytes
    from nonvon.simulators.quantum import VQC
    from nonvon.simulators.quantum.statevector import translate

    task = _task(reg, s, args.subset)
    if s.kind == "vqc":
        cfg = dict(s.cfg, shots=args.shots)
        cfg.update(args.overrides)
        sim = VQC(**cfg)
        x_train, y_train = _vqc_inputs(sim, task, args.seed)
        m, prog = sim.model, sim.program
        x_test = sim._circuit_inputs(sim.pre.transform(task.x_test), Counter())
        y_test = task.y_test
        rng = np.random.default_rng(args.seed)
        p0 = {"w": m.init_weights(rng, sim.config.angle_std), **m.init_readout(rng)}
        sched = {"epochs": sim.config.epochs, "batch_size": sim.config.batch_size, "lr": sim.config.lr,
                 "lr_floor": 0.1, "loss": "cross_entropy"}
        binary = task.n_classes == 2
    else:
        d = qnn_data(task)
        c = dict(s.cfg)
        c.update(args.overrides)
        m = _qnn_model(s)
        prog = translate(m.circuit, tuple(m.inputs) + tuple(m.weights))
        x_train, y_train, x_test, y_test = d["x_train"], d["y_train"], d["x_test"], d["y_test"]
        p0 = _qnn_init(m, args.seed)
        sched = {k: c[k] for k in ("epochs", "batch_size", "lr", "lr_floor", "loss")}
        binary = True
    meta = {"program": dataclasses.asdict(prog), "readout": list(m.readout), "binary": binary,
            "readout_map": m.readout_map, "seed": args.seed, "setting": name, **sched}
    buf = io.BytesIO()
    np.savez(buf, x_train=np.asarray(x_train, dtype=np.float32), y_train=np.asarray(y_train),
             x_test=np.asarray(x_test, dtype=np.float32), y_test=np.asarray(y_test),
             meta=np.array(json.dumps(meta)), **{f"p0_{k}": np.asarray(v) for k, v in p0.items()})
    path = folder / f"{name}.npz"
    atomic_write_bytes(path, buf.getvalue())
    print(f"wrote {path} ({len(y_train)} train, {len(y_test)} test, {m.n_qubits} qubits)", flush=True)
    return path


def load_trained(path: Path) -> dict:
    """Parameters and metadata written by ``studies/vqc_train_jax.py`` (no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        params = {k[2:]: z[k] for k in z.files if k.startswith("p_")}
        acc = float(z["test_acc"])
        return {"params": params, "trained_on": str(z["device"]), "train_wall_s": float(z["train_wall_s"]),
                "accuracy_exact_on_training_machine": None if np.isnan(acc) else acc,
                "loss": [float(v) for v in z["loss"]]}


def save_trained(out: str, name: str, params: dict, wall_s: float, loss: list,
                 test_acc: float | None) -> Path:
    """Trained parameters as ``<out>/<setting>.trained.npz``, the format ``--weights`` reads."""
    import io

    import jax

    from nonvon._io import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, **{f"p_{k}": np.asarray(v) for k, v in params.items()}, train_wall_s=wall_s,
             loss=np.asarray(loss, dtype=np.float64), device=str(jax.devices()[0]),
             test_acc=np.nan if test_acc is None else test_acc)
    return atomic_write_bytes(Path(out) / f"{name}.trained.npz", buf.getvalue())


def _write(out: str, name: str, rec: dict, qasm: str | None) -> None:
    from nonvon._io import atomic_write_text

    folder = Path(out)
    if qasm is not None:
        atomic_write_text(folder / f"{name}.qasm", qasm)
    atomic_write_text(folder / f"{name}.json", json.dumps(rec, indent=2, default=_jsonable) + "\n")


def _jsonable(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def _this_machine() -> str:
    import platform

    import jax

    return f"{platform.node()} ({jax.devices()[0]})"


def _parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setting", required=True, help=f"comma-separated from {sorted(SETTINGS)}, or 'all'")
    ap.add_argument("--out", default="results/vqc")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shots", type=int, default=1000)
    ap.add_argument("--noise-limit", type=int, default=None,
                    help="test samples run with the noise model (default: the setting's, 2000 or 500)")
    ap.add_argument("--set", action="append", default=[], help="config override key=JSON value")
    ap.add_argument("--subset", type=int, nargs=2, default=None, help="n_train n_test (smoke runs)")
    ap.add_argument("--export", default="", help="write each setting's inputs and program to this folder "
                    "(for studies/vqc_train_jax.py on a machine without qiskit) and stop")
    ap.add_argument("--weights", default="", help="folder with <setting>.trained.npz from "
                    "studies/vqc_train_jax.py: evaluate those parameters instead of training")
    args = ap.parse_args(argv)
    from nonvon.errors import ConfigError

    names = sorted(SETTINGS) if args.setting == "all" else [n.strip() for n in args.setting.split(",")]
    bad = [n for n in names if n not in SETTINGS]
    if bad:
        raise ConfigError(f"unknown settings {bad}", f"choose from {sorted(SETTINGS)} or 'all'")
    args.names = names
    args.overrides = {}
    for kv in args.set:
        if "=" not in kv:
            raise ConfigError(f"--set {kv!r} is not key=value", "e.g. --set epochs=2")
        k, v = kv.split("=", 1)
        args.overrides[k] = json.loads(v)
    return args


def main(argv=None) -> list[dict]:
    import nonvon
    from nonvon.errors import ConfigError

    args = _parse(argv)
    reg = nonvon.registry()
    if args.export:
        folder = Path(args.export)
        for name in args.names:
            export(name, SETTINGS[name], args, reg, folder)
        return []
    out = []
    for name in args.names:
        s = SETTINGS[name]
        trained = None
        if args.weights:
            path = Path(args.weights) / f"{name}.trained.npz"
            if not path.is_file():
                raise ConfigError(f"no trained parameters for {name!r} at {path}",
                                  "run studies/vqc_train_jax.py on the exported inputs, or drop --weights")
            trained = load_trained(path)
        out.append((run_vqc if s.kind == "vqc" else run_qnn)(name, s, args, reg, trained))
    return out


if __name__ == "__main__":
    main()
