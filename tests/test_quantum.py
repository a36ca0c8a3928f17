"""Variational quantum classifiers: the JAX statevector simulator against qiskit, gradients
against the parameter-shift rule, shot statistics, noise, energy and bad input."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("qiskit")
pytest.importorskip("jax")

from qiskit.circuit import Parameter, ParameterVector, QuantumCircuit  # noqa: E402
from qiskit.circuit.library import UnitaryGate  # noqa: E402
from qiskit.quantum_info import Operator, Statevector  # noqa: E402

from nonvon.errors import ConfigError, IncompatibleError  # noqa: E402
from nonvon.simulators.quantum import VQC, VQCClassicalTwin, twin_hidden  # noqa: E402
from nonvon.simulators.quantum.circuits import amplitude_angles, build_vqc  # noqa: E402
from nonvon.simulators.quantum.device import (  # noqa: E402
    DEVICES,
    gate_counts,
    noise_model,
    run_noisy,
    sample_z,
    transpile_for,
)
from nonvon.simulators.quantum.simulator import twin_param_count  # noqa: E402
from nonvon.simulators.quantum.statevector import (  # noqa: E402
    _FIXED_1Q,
    _FIXED_2Q,
    SUPPORTED_GATES,
    _const_matrix,
    compile_program,
    translate,
)

ATOL = 1e-6  # complex64 amplitudes after ~100 gates stay within a few 1e-7



# A small config taking features as given (independent of VQC.quick, the demo budget).
SMALL = {"preprocess": "none", "n_features": None, "n_qubits": 5, "encoding": "angle", "layers": 3,
         "epochs": 15, "batch_size": 32, "lr": 0.1, "shots": 256}

def _random_circuit(rng, n: int, reps: int):
    """Every supported gate ``reps`` times, in random order on random qubits, angles = a*t + b."""
    qc = QuantumCircuit(n)
    th = ParameterVector("t", sum(na for _, na in SUPPORTED_GATES.values()) * reps)
    k = 0
    names = [g for g in SUPPORTED_GATES for _ in range(reps)]
    rng.shuffle(names)
    for name in names:
        nq, na = SUPPORTED_GATES[name]
        qs = [int(q) for q in rng.choice(n, nq, replace=False)]
        angles = []
        for _ in range(na):
            angles.append(float(rng.uniform(0.5, 1.5)) * th[k] + float(rng.uniform(-1, 1)))
            k += 1
        getattr(qc, name)(*angles, *qs)
    return qc


@pytest.mark.parametrize("name", sorted(SUPPORTED_GATES))
def test_gate_matrix_matches_qiskit(name):
    """Each gate's matrix, as the simulator builds it, equals qiskit's Operator (random angles)."""
    from qiskit.circuit import library as lib

    nq, na = SUPPORTED_GATES[name]
    angles = tuple(np.random.default_rng(hash(name) % 2**32).uniform(-np.pi, np.pi, na))
    qc = QuantumCircuit(nq)
    getattr(qc, name)(*angles, *range(nq))
    ref = Operator(qc).data
    if na:
        mine = np.array(_const_matrix(name, angles), dtype=complex)
    else:
        mine = (_FIXED_1Q if nq == 1 else _FIXED_2Q)[name]
    np.testing.assert_allclose(mine, ref, atol=1e-12)
    assert lib is not None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_circuits_match_qiskit_statevector(seed):
    """Random circuits holding every supported gate: batched JAX states == qiskit, to 1e-6."""
    rng = np.random.default_rng(seed)
    qc = _random_circuit(rng, n=4, reps=2)
    params = list(qc.parameters)
    prog = translate(qc, params)
    assert set(prog.count()) == set(SUPPORTED_GATES)
    values = rng.uniform(-np.pi, np.pi, (4, len(params)))
    states = np.asarray(compile_program(prog).state(values))
    for row, psi in zip(values, states, strict=True):
        ref = Statevector(qc.assign_parameters(dict(zip(params, row, strict=True)))).data
        np.testing.assert_allclose(psi, ref, atol=ATOL)
        assert abs(np.vdot(psi, psi).real - 1) < 1e-5  # norm preserved


def _z0(qc, params, vals) -> float:
    sv = Statevector(qc.assign_parameters(dict(zip(params, vals, strict=True))))
    p = sv.probabilities([0])
    return float(p[0] - p[1])


# Gates whose angle's generator has eigenvalue gaps {1}: f(t) = a + b cos t + c sin t, so
# df/dt = [f(t + pi/2) - f(t - pi/2)] / 2 (Schuld et al., PRA 99, 032331, 2019). Controlled
# rotations have gaps {1/2, 1}: the four-term rule with shifts pi/2 and 3pi/2 and weights
# (sqrt2 +- 1) / (4 sqrt2) (Anselmetti et al., New J. Phys. 23, 113010, 2021).
TWO_TERM = ("rx", "ry", "rz", "p", "u", "rxx", "ryy", "rzz", "rzx", "cp")
FOUR_TERM = ("crx", "cry", "crz")


def _shift_grad(f, vals, i, rule: str) -> float:
    def at(s):
        v = vals.copy()
        v[i] += s
        return f(v)

    if rule == "two":
        return (at(np.pi / 2) - at(-np.pi / 2)) / 2
    cp, cm = (math.sqrt(2) + 1) / (4 * math.sqrt(2)), (math.sqrt(2) - 1) / (4 * math.sqrt(2))
    return cp * (at(np.pi / 2) - at(-np.pi / 2)) - cm * (at(3 * np.pi / 2) - at(-3 * np.pi / 2))


def test_gradients_match_parameter_shift_rule():
    """Autodiff gradients of <Z_0> == the parameter-shift rule on qiskit's Statevector."""
    import jax
    import jax.numpy as jnp

    from nonvon.simulators.quantum.statevector import _run, z_from_probabilities

    rng = np.random.default_rng(7)
    qc = QuantumCircuit(3)
    for q in range(3):
        qc.h(q)
    rules = {}
    for name in TWO_TERM + FOUR_TERM + ("r",):
        nq, na = SUPPORTED_GATES[name]
        ps = [Parameter(f"{name}_{j}") for j in range(na)]
        qs = [int(q) for q in rng.choice(3, nq, replace=False)]
        getattr(qc, name)(*ps, *qs)
        qc.cx(0, 1)
        qc.ry(float(rng.uniform(0, 3)), 2)
        for j, p in enumerate(ps):
            rules[p.name] = "four" if name in FOUR_TERM else ("fd" if name == "r" and j == 1 else "two")
    params = list(qc.parameters)
    prog = translate(qc, params)
    vals = rng.uniform(-np.pi, np.pi, len(params))

    def f(v):
        psi = _run(prog, v[None, :], None)
        return z_from_probabilities(jnp.abs(psi) ** 2, (0,), 3)[0, 0]

    grad = np.asarray(jax.grad(f)(jnp.asarray(vals, dtype=jnp.float32)))
    assert abs(float(f(jnp.asarray(vals, dtype=jnp.float32))) - _z0(qc, params, vals)) < 1e-5
    for i, p in enumerate(params):
        rule = rules[p.name]
        if rule == "fd":  # R's phase angle appears twice (RZ RX RZ^-1): central difference
            h = 1e-5
            e = np.eye(len(vals))[i] * h
            ref = (_z0(qc, params, vals + e) - _z0(qc, params, vals - e)) / (2 * h)
        else:
            ref = _shift_grad(lambda v: _z0(qc, params, v), vals, i, rule)
        assert abs(grad[i] - ref) < 2e-4, (p.name, grad[i], ref)


def test_unknown_gate_is_a_clear_error():
    qc = QuantumCircuit(2)
    qc.append(UnitaryGate(np.eye(4), label="mystery"), [0, 1])
    with pytest.raises(IncompatibleError, match="'unitary'.*not supported.*transpile"):
        translate(qc)
    qc = QuantumCircuit(1, 1)
    qc.measure(0, 0)
    with pytest.raises(IncompatibleError, match="'measure'"):
        translate(qc)


def test_too_many_qubits_states_the_memory():
    with pytest.raises(ConfigError, match=r"30 qubits.*8\.0 GiB"):
        translate(QuantumCircuit(30))
    with pytest.raises(ConfigError, match=r"GiB"):
        VQC(n_qubits=28)
    with pytest.raises(ConfigError, match="trapped-ion device has 25"):
        transpile_for(QuantumCircuit(26), DEVICES["trapped-ion"])


@pytest.mark.parametrize("shots", [0, -3, True, 2.5])
def test_bad_shots(shots):
    with pytest.raises(ConfigError, match="shots"):
        VQC(shots=shots)
    with pytest.raises(ConfigError, match="shots"):
        sample_z(np.full((1, 2), 0.5), (0,), 1, shots, np.random.default_rng(0))


def test_features_that_do_not_fit_the_encoding(digits_task):
    with pytest.raises(ConfigError, match="do not fit the 'angle' encoding on 4 qubits"):
        VQC(n_qubits=4, encoding="angle", n_features=9)
    with pytest.raises(ConfigError, match="do not fit"):
        build_vqc(2, 5, 2, encoding="amplitude")
    sim = VQC(**SMALL)  # preprocess='none': the task must fit as given
    with pytest.raises(IncompatibleError, match="at most 10 input features"):
        sim.fit(digits_task.select_classes(0, 1), seed=0)
    with pytest.raises(ConfigError, match="readout qubits"):
        build_vqc(3, 4, 5)


def test_amplitude_encoding_prepares_the_normalized_vector():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 7))  # signed, padded to 8 amplitudes
    m = build_vqc(3, 7, 2, layers=1, encoding="amplitude")
    ang = amplitude_angles(x, 3)
    prep = QuantumCircuit(3)
    prep.compose(m.circuit, inplace=True)
    for row, a in zip(x, ang, strict=True):
        bind = dict(zip(m.inputs, a, strict=True)) | {w: 0.0 for w in m.weights}
        ref = np.zeros(8)
        ref[:7] = row / np.linalg.norm(row)
        # with zero weights the ansatz is CZs only: undo them to read the prepared state
        sv = Statevector(m.circuit.assign_parameters(bind))
        undo = QuantumCircuit(3)
        for q in range(2):
            undo.cz(q, q + 1)
        np.testing.assert_allclose(sv.evolve(undo).data, ref, atol=1e-10)


def test_sample_z_statistics():
    """Shot estimates are unbiased with the binomial spread: explicit 5-sigma tolerances."""
    rng = np.random.default_rng(11)
    probs = np.array([0.1, 0.2, 0.3, 0.4])  # qubit 0 reads 0 w.p. 0.4, qubit 1 w.p. 0.3
    z_true = np.array([0.4 - 0.6, 0.3 - 0.7])
    rows, shots = 2000, 500
    z = sample_z(np.tile(probs, (rows, 1)), (0, 1), 2, shots, rng)
    sigma = np.sqrt(1 - z_true ** 2) / math.sqrt(shots)
    assert np.all(np.abs(z - z_true) < 6 * sigma)
    assert np.all(np.abs(z.mean(0) - z_true) < 5 * sigma / math.sqrt(rows))
    assert np.all(np.abs(z.std(0) / sigma - 1) < 0.1)


def test_noise_model_matches_closed_form():
    """X then measure under depolarizing + readout error: P(read 1) from the channel algebra."""
    dev = DEVICES["superconducting"]
    qc = QuantumCircuit(1)
    qc.x(0)
    tq = transpile_for(qc, dev)
    shots = 40000
    z = run_noisy(tq, (0,), [], np.zeros((1, 0)), shots, dev, seed=1)[0, 0]
    p_dep = 2 * dev.error_1q  # one physical 'x' gate
    p1 = 1 - p_dep / 2
    read1 = p1 * (1 - dev.readout_p01) + (1 - p1) * dev.readout_p10
    z_ref = (1 - read1) - read1
    assert abs(z - z_ref) < 5 * math.sqrt(1 - z_ref ** 2) / math.sqrt(shots)
    assert z > -0.99  # the noise is visible: ideal is -1
    assert noise_model(DEVICES["trapped-ion"]) is not None


def test_device_program_equals_logical_and_counts(digits_task):
    """The transpiled device circuit gives the logical circuit's <Z>; the ledger counts it."""
    task = digits_task.select_classes(0, 1, 2, 3).downsample(2)
    sim = VQC(**SMALL).fit(task, seed=0)
    x = task.x_test[:16]
    feats = sim.pre.transform(x)
    vals = sim._values(feats, sim.params["w"])
    ref = np.asarray(sim.logical_program.expect_z(vals, sim.model.readout))
    dev_probs = np.asarray(sim.device_program.probabilities(vals))
    from nonvon.simulators.quantum.statevector import z_from_probabilities

    dev_z = np.asarray(z_from_probabilities(dev_probs, sim.readout_phys, sim.transpiled.num_qubits))
    np.testing.assert_allclose(dev_z, ref, atol=1e-5)
    res = sim.evaluate(task)
    shots, n = sim.config.shots, res.n_evaluated
    ops = sim.transpiled.count_ops()
    assert res.ledger.totals["qpu_gate_2q"] == n * shots * ops["cz"]
    assert res.ledger.totals["qpu_gate_1q"] == n * shots * (ops.get("sx", 0) + ops.get("x", 0))
    assert res.ledger.totals["qpu_shot"] == n * shots
    assert res.ledger.totals["qpu_measure"] == n * shots * len(sim.model.readout)
    g = gate_counts(sim.transpiled, DEVICES["superconducting"])
    assert g.layers_1q + g.layers_2q <= g.gates_1q + g.gates_2q
    qasm = sim.qasm3()
    assert qasm.startswith("OPENQASM 3.0") and "input float" in qasm
    assert qasm.count("cz ") == ops["cz"] // 1 or qasm.count("cz ") > 0


def test_energy_is_shots_times_shot_time_times_power(digits_task, reg):
    """Energy per inference = shots x (time per shot) x system power + the host's work."""
    task = digits_task.select_classes(0, 1, 2, 3).downsample(2)
    sim = VQC(**SMALL).fit(task, seed=0)
    res = sim.evaluate(task)
    per = res.ledger.per_inference()
    sc = reg.preset("qpu-superconducting")
    g = sim.gate_counts
    t_shot = (g.layers_1q * sc.ops["qpu_layer_1q"].time_s + g.layers_2q * sc.ops["qpu_layer_2q"].time_s
              + sc.ops["qpu_readout"].time_s + sc.ops["qpu_shot"].time_s)
    rep = res.priced(sc).energy
    assert rep.breakdown_j["static"] == pytest.approx(sim.config.shots * t_shot * sc.static_power_w,
                                                      rel=1e-9)
    assert rep.latency_s == pytest.approx(sim.config.shots * t_shot, rel=1e-9)
    # the QPU's kinds carry time, not energy; the rest is the host's classical work and link
    assert all(rep.breakdown_j[k] == 0 for k in per if k.startswith("qpu_"))
    for k in ("add_fp32", "cmp_fp32", "host_transfer_byte"):
        assert rep.breakdown_j[k] == pytest.approx(per[k] * sc.ops[k].value * 1e-12, rel=1e-12)
    host = [v for k, v in rep.breakdown_j.items() if k != "static" and not k.startswith("qpu_")]
    assert rep.energy_j == pytest.approx(rep.breakdown_j["static"] + sum(host), rel=1e-12)
    ion = reg.preset("qpu-trapped-ion")
    t_ion = (g.gates_1q * ion.ops["qpu_gate_1q"].time_s + g.gates_2q * ion.ops["qpu_gate_2q"].time_s
             + ion.ops["qpu_readout"].time_s + ion.ops["qpu_shot"].time_s)
    assert res.priced(ion).energy.latency_s == pytest.approx(sim.config.shots * t_ion, rel=1e-9)


def test_twin_matches_parameter_count(digits_task):
    for p, f, c in ((98, 16, 1), (21, 4, 4), (300, 20, 10), (5, 16, 1)):
        h = twin_hidden(p, f, c)
        best = min(abs(twin_param_count(k, f, c) - p) for k in range(0, 200))
        assert abs(twin_param_count(h, f, c) - p) == best
    task = digits_task.select_classes(0, 1, 2, 3).downsample(2)
    twin = VQCClassicalTwin(**SMALL).fit(task, seed=0)
    vqc = VQC(**SMALL).fit(task, seed=0)
    assert twin.vqc_n_params == vqc.n_params
    assert abs(twin.n_params - vqc.n_params) <= 4 + 1 + 4  # within one hidden unit (F + 1 + C)
    np.testing.assert_array_equal(twin.pre.transform(task.x_test), vqc.pre.transform(task.x_test))


def test_preprocess_counts_what_it_computes(digits_task):
    from nonvon.simulators.quantum.vqc_training import Preprocessor

    pre = Preprocessor("pca", 5).fit(digits_task.x_train)
    c = Counter()
    out = pre.transform(digits_task.x_test[:10], c)
    assert out.shape == (10, 5) and out.min() >= 0 and out.max() <= np.pi
    assert c["mac_fp32"] == 10 * 64 * 5
