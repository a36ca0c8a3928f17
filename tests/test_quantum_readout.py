"""VQC additions for MNIST: gate fusion, all-qubit readout, the readout-qubit QNN of Farhi &
Neven / TensorFlow Quantum, the hinge loss, the studies' data pipeline and the qubit cost curve."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qiskit")
pytest.importorskip("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from qiskit.quantum_info import Statevector  # noqa: E402

from nonvon.errors import ConfigError, IncompatibleError  # noqa: E402
from nonvon.simulators.quantum import VQC, VQCConfig  # noqa: E402
from nonvon.simulators.quantum.circuits import build_readout_qnn, build_vqc  # noqa: E402
from nonvon.simulators.quantum.simulator import vqc_logits_fn  # noqa: E402
from nonvon.simulators.quantum.statevector import (  # noqa: E402
    Op,
    _Fused,
    _run,
    compile_program,
    fuse_ops,
    translate,
    z_from_probabilities,
)
from nonvon.simulators.quantum.vqc_training import hinge, train_adam  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _load(relpath: str):
    spec = importlib.util.spec_from_file_location(Path(relpath).stem, ROOT / relpath)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _program(model):
    return translate(model.circuit, tuple(model.inputs) + tuple(model.weights))


# -- gate fusion ----------
def test_fusion_groups_one_qubit_runs_between_entanglers():
    """A re-uploading layer on 4 qubits: 4 RY/RZ pairs + 4 RY/RZ pairs -> one step per qubit + 3 CZs."""
    prog = _program(build_vqc(4, 8, 2, layers=1, encoding="reupload"))
    steps = fuse_ops(prog.ops)
    fused = [s for s in steps if isinstance(s, _Fused)]
    assert len(fused) == 4 and all(len(s.ops) == 4 for s in fused)
    assert [s.name for s in steps if isinstance(s, Op)] == ["cz"] * 3
    assert sorted(s.index for s in fused) == list(range(4))
    # nothing lost or duplicated
    assert sum(len(s.ops) if isinstance(s, _Fused) else 1 for s in steps) == len(prog.ops)


def test_fused_states_and_gradients_equal_gate_by_gate():
    """The fused path (the default) against applying every gate alone, states and gradients."""
    prog = _program(build_vqc(3, 6, 2, layers=2, encoding="reupload", entanglement="ring"))
    v = jnp.asarray(np.random.default_rng(0).uniform(-3, 3, (3, len(prog.symbols))), jnp.float32)

    def f(v, fuse, segment):
        return jnp.sum(z_from_probabilities(jnp.abs(_run(prog, v, segment, fuse)) ** 2, (0, 2), 3))

    @jax.jit
    def both(v):  # one compile for every variant
        states = [_run(prog, v, seg, fuse) for fuse, seg in ((True, None), (True, 5), (False, None))]
        grads = [jax.grad(f)(v, fuse, seg) for fuse, seg in ((True, None), (True, 5), (False, None))]
        return states, grads

    states, grads = both(v)
    for a, g in zip(states[:2], grads[:2], strict=True):
        np.testing.assert_allclose(a, states[2], atol=1e-6)
        np.testing.assert_allclose(g, grads[2], atol=1e-5)


# -- readout over every qubit ----------
def test_single_qubit_readout_is_blind_outside_its_light_cone():
    """With CZs on a line, <Z_0> after L blocks ignores inputs on qubits >= L; reading all sees them."""
    n, layers = 4, 2
    one = build_vqc(n, n, 2, layers=layers, encoding="reupload", readout="class")
    every = build_vqc(n, n, 2, layers=layers, encoding="reupload", readout="all")
    assert every.readout == tuple(range(n)) and every.readout_map == "linear"
    assert every.n_params == len(every.weights) + (n + 1) * 1
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.uniform(0, np.pi, (4, n)), jnp.float32)
    for model, blind in ((one, True), (every, False)):
        fn = vqc_logits_fn(_program(model), model.readout, True, None, model.readout_map)
        p = {"w": jnp.asarray(rng.normal(0, 1, len(model.weights)), jnp.float32),
             **{k: jnp.asarray(v, jnp.float32) for k, v in model.init_readout(rng).items()}}
        grad = jax.jit(jax.grad(lambda x, p=p, fn=fn: jnp.sum(fn(p, x)[:, 1])))
        g = np.abs(np.asarray(grad(x))).max(axis=0)
        assert np.all(g[:layers] > 1e-4)
        if blind:  # zero up to float32 rounding
            assert np.all(g[layers:] < 1e-6)
        else:
            assert np.all(g > 1e-4)


def test_vqc_with_all_readout_fits_counts_and_prices(digits_task, reg):
    task = digits_task.select_classes(0, 1).subset(100, 40, seed=0)
    cfg = {"preprocess": "pca", "n_features": 6, "n_qubits": 3, "encoding": "reupload", "layers": 2,
           "readout": "all", "epochs": 4, "batch_size": 16, "lr": 0.1, "shots": 200}
    sim = VQC(**cfg).fit(task, seed=0)
    assert sim.params["s"].shape == (3, 1) and sim.params["b"].shape == (1,)
    assert sim.n_params == sim.model.n_params == len(sim.model.weights) + 4
    res = sim.evaluate(task)
    assert res.accuracy >= 0.9
    per = res.ledger.per_inference()
    assert per["qpu_measure"] == 200 * 3  # every qubit read on every shot
    assert per["mac_fp32"] >= 3  # the affine readout on the host
    assert res.priced(reg.preset("qpu-trapped-ion")).energy.energy_j > 0


def test_bad_readout_is_a_clear_error():
    with pytest.raises(ConfigError, match="readout"):
        VQCConfig(readout="parity")
    with pytest.raises(ConfigError, match="readout"):
        build_vqc(3, 3, 2, readout="everything")


# -- the readout-qubit QNN (Farhi & Neven; TFQ tutorial) ----------
@pytest.mark.parametrize("style,couplings", [("tfq", ("xx", "zz")), ("farhi", ("zx", "xx"))])
def test_readout_qnn_matches_qiskit(style, couplings):
    m = build_readout_qnn(3, couplings, style=style)
    assert m.n_qubits == 4 and m.readout == (3,) and m.n_params == 6 and m.readout_map == "none"
    prog = _program(m)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 2, (4, 3)).astype(float)
    vals = np.concatenate([x, np.broadcast_to(rng.uniform(0, 2, 6), (4, 6))], axis=1)
    states = np.asarray(compile_program(prog).state(vals))
    syms = list(m.inputs) + list(m.weights)
    for row, psi in zip(vals, states, strict=True):
        ref = Statevector(m.circuit.assign_parameters(dict(zip(syms, row, strict=True)))).data
        np.testing.assert_allclose(psi, ref, atol=1e-6)


def test_readout_qnn_encodes_pixels_as_basis_states():
    """RX(pi x) flips the data qubits whose pixel is set; the readout starts in |1> (Farhi)."""
    m = build_readout_qnn(3, ("zx",), style="farhi")
    bound = m.circuit.assign_parameters({**dict(zip(m.inputs, (1.0, 0.0, 1.0), strict=True)),
                                         **dict.fromkeys(m.weights, 0.0)})
    probs = Statevector(bound).probabilities([0, 1, 2])
    assert probs[0b101] == pytest.approx(1.0)
    # readout |1> measured in Y (S^dagger then H before Z): <Y> = 0
    np.testing.assert_allclose(Statevector(bound).probabilities([3]), [0.5, 0.5], atol=1e-12)
    tfq = build_readout_qnn(3, ("xx",), style="tfq")
    bound = tfq.circuit.assign_parameters(dict.fromkeys(list(tfq.inputs) + list(tfq.weights), 0.0))
    # X, H, (identity couplings), H: the readout ends in |1>, so <Z> = -1 and the score says class 0
    assert Statevector(bound).probabilities([3])[1] == pytest.approx(1.0)


def test_readout_qnn_bad_input():
    with pytest.raises(ConfigError, match="couplings"):
        build_readout_qnn(4, ("yy",))
    with pytest.raises(ConfigError, match="style"):
        build_readout_qnn(4, style="keras")
    with pytest.raises(ConfigError, match="n_data"):
        build_readout_qnn(0)


def test_hinge_loss_closed_form_and_training():
    logits = jnp.array([[0.0, 0.5], [0.0, -0.2], [0.0, 2.0]])
    y = jnp.array([1, 0, 0])
    # t = +1, -1, -1: max(0, 1 - 0.5), max(0, 1 - 0.2), max(0, 1 + 2)
    assert float(hinge(logits, y)) == pytest.approx((0.5 + 0.8 + 3.0) / 3)
    with pytest.raises(ConfigError, match="loss"):
        train_adam(lambda p, x: x, {"w": np.zeros(1)}, np.zeros((2, 1)), np.zeros(2, int), epochs=1,
                   batch_size=2, lr=0.1, seed=0, loss="mse")


# -- the study's TFQ data pipeline ----------
def test_tfq_resize_equals_bilinear_half_pixel_and_contradictions_go():
    import torch
    import torch.nn.functional as F

    study = _load("studies/vqc_mnist.py")
    x = np.random.default_rng(3).random((5, 28, 28)).astype(np.float32)
    ref = F.interpolate(torch.from_numpy(x)[:, None], size=(4, 4), mode="bilinear", align_corners=False,
                        antialias=False)[:, 0].reshape(5, 16).numpy()
    np.testing.assert_allclose(study.tfq_resize_4x4(x), ref, atol=1e-6)
    with pytest.raises(IncompatibleError, match="28x28"):
        study.tfq_resize_4x4(np.zeros((2, 8, 8)))
    xs = np.array([[0, 1], [0, 1], [1, 1], [0, 0]], dtype=np.float32)
    ys = np.array([0, 1, 0, 1])
    kept_x, kept_y, counts = study.remove_contradicting(xs, ys)
    np.testing.assert_array_equal(kept_x, [[1, 1], [0, 0]])
    np.testing.assert_array_equal(kept_y, [0, 1])
    assert counts == {"unique_images": 3, "contradicting_unique": 1, "initial": 4, "remaining": 2}
    cmp = study.compare_published("tfq", 0.9)
    assert cmp["ratio"] == pytest.approx(0.9 / 0.85) and cmp["consistent"] is True
    assert study.compare_published("farhi", 0.5)["verified"] is False


def test_study_export_train_and_evaluate_round_trip(tmp_path, capsys):
    """Export here, train with JAX alone (studies/vqc_train_jax.py), evaluate the weights here."""
    study = _load("studies/vqc_mnist.py")
    trainer = _load("studies/vqc_train_jax.py")
    small = ["--subset", "60", "30", "--set", "layers=1", "--set", "epochs=1", "--set", "n_features=4",
             "--set", "n_qubits=2", "--noise-limit", "0", "--shots", "64"]
    study.main(["--setting", "tfq-4x4", "--export", str(tmp_path / "in"), *small])
    rows = trainer.main([str(tmp_path / "in" / "tfq-4x4.npz"), "--out", str(tmp_path / "w")])
    assert rows[0]["setting"] == "tfq-4x4" and 0.0 <= rows[0]["test_acc_exact"] <= 1.0
    (rec,) = study.main(["--setting", "tfq-4x4", "--weights", str(tmp_path / "w"),
                         "--out", str(tmp_path / "out"), *small])
    # the accelerator's exact accuracy is what the evaluation here reproduces from the weights
    assert rec["accuracy_noise_free_exact"] == pytest.approx(rows[0]["test_acc_exact"])
    assert set(rec["energy"]) == {"qpu-superconducting", "qpu-trapped-ion"}
    assert rec["published"]["published_accuracy"] == 0.85
    assert rec["twin"]["vqc_n_params"] == rec["n_params"]
    assert (tmp_path / "out" / "tfq-4x4.json").stat().st_size > 0
    assert "OPENQASM 3" in (tmp_path / "out" / "tfq-4x4.qasm").read_text()
    # trained here: the parameters are kept and evaluate to the same result with --weights
    (here,) = study.main(["--setting", "tfq-4x4", "--out", str(tmp_path / "cpu"), *small])
    (again,) = study.main(["--setting", "tfq-4x4", "--weights", str(tmp_path / "cpu"),
                           "--out", str(tmp_path / "again"), *small])
    assert again["accuracy_noise_free_exact"] == here["accuracy_noise_free_exact"]
    assert again["accuracy_exact_on_training_machine"] == here["accuracy_noise_free_exact"]
    with pytest.raises(ConfigError, match="no trained parameters"):
        study.main(["--setting", "10class", "--weights", str(tmp_path / "w"), *small])
    with pytest.raises(ConfigError, match="unknown settings"):
        study.main(["--setting", "tfq-5x5"])


# -- the qubit cost curve ----------
def test_cost_curve_rows_plot_and_missing_gpu(tmp_path):
    bench = _load("benchmarks/vqc_training.py")
    rows = bench.curve(bench.make_programs([3], layers=1), batch_size=4, device="cpu", steps=1)
    assert [r["n_qubits"] for r in rows] == [3] and rows[0]["gates"] == 3 + 6 + 2
    assert all(r["step_s"] > 0 and r["epoch_s_mnist36"] == pytest.approx(r["step_s"] * (12049 // 4))
               for r in rows)
    saved = tmp_path / "gpu.jsonl"
    saved.write_text("\n".join(__import__("json").dumps(dict(r, device_kind="H100")) for r in rows) + "\n")
    assert bench.read_curve(str(saved))[0]["device_kind"] == "H100"
    png = tmp_path / "curve.png"
    bench.plot({"cpu": rows, "H100": bench.read_curve(str(saved))}, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if jax.default_backend() == "cpu":
        with pytest.raises(IncompatibleError, match="no GPU backend"):
            bench.curve(bench.make_programs([3], layers=1), batch_size=2, device="cuda", steps=1)
