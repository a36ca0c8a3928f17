"""Evaluation as a device would run it: transpilation, gate counts, shots, noise, QASM 3.

* :func:`transpile_for` maps a logical circuit onto a device's native basis and
  connectivity (qiskit's transpiler) and :func:`gate_counts` counts what one shot of the
  result executes: physical one- and two-qubit gates, and the critical-path layers.
* :func:`sample_z` estimates ``<Z>`` from a finite number of shots drawn from exact
  probabilities (what a noise-free device returns).
* :func:`noise_model` builds a qiskit-aer model (depolarizing gate errors and readout
  errors from published device figures) and :func:`run_noisy` runs the transpiled
  circuit on ``AerSimulator`` with it.
* :func:`export_qasm3` writes the trained circuit as OpenQASM 3 (``qiskit.qasm3``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from nonvon.errors import ConfigError

__all__ = ["DeviceModel", "DEVICES", "GateCounts", "transpile_for", "gate_counts", "sample_z",
           "noise_model", "run_noisy", "export_qasm3", "readout_physical"]


@dataclasses.dataclass(frozen=True)
class DeviceModel:
    """A QPU family as the transpiler and the noise model see it.

    Attributes:
        name: ``"superconducting"`` or ``"trapped-ion"``.
        basis: native gates the circuit is translated to.
        virtual: gates done in software as frame changes (no pulse, no time).
        connectivity: ``"line"`` (nearest neighbours on a chain, which a heavy-hex lattice
            contains) or ``"all"`` (any pair).
        max_qubits: qubits of the device.
        error_1q, error_2q: average gate infidelities of physical 1q / 2q gates.
        readout_p10, readout_p01: P(read 1 | prepared 0), P(read 0 | prepared 1).
        source: where the figures come from.
    """

    name: str
    basis: tuple[str, ...]
    virtual: tuple[str, ...]
    connectivity: str
    max_qubits: int
    error_1q: float
    error_2q: float
    readout_p10: float
    readout_p01: float
    source: str


DEVICES = {
    "superconducting": DeviceModel(
        name="superconducting", basis=("rz", "sx", "x", "cz"), virtual=("rz",),
        connectivity="line", max_qubits=156, error_1q=2.5e-4, error_2q=3.0e-3,
        readout_p10=5e-3, readout_p01=1.2e-2,
        source=("IBM Heron r2 (ibm_fez, 156 qubits, basis cz/rz/sx/x): representative values read "
                "from IBM's calibration snapshot of 2025-01-22 shipped as qiskit-ibm-runtime's "
                "FakeFez (props_fez.json): sx/x gate_error about 2-3e-4, cz gate_error about "
                "2-4e-3, prob_meas1_prep0 about 0.2-1%, prob_meas0_prep1 about 0.5-2%; typical "
                "values, not medians over all qubits (not independently re-checked). RZ is "
                "virtual (McKay et al., Phys. Rev. A 96, 022330, 2017)")),
    "trapped-ion": DeviceModel(
        name="trapped-ion", basis=("rz", "rx", "ry", "rxx"), virtual=("rz",),
        connectivity="all", max_qubits=25, error_1q=5e-4, error_2q=4e-3,
        readout_p10=3.9e-3, readout_p01=3.9e-3,
        source=("IonQ Aria (25 qubits, all-to-all) as listed by Microsoft Azure Quantum, IonQ "
                "provider page: single-qubit gate fidelity 99.95% (SPAM corrected), two-qubit "
                "99.6% (not SPAM corrected), SPAM 99.61% (split evenly between 0 and 1). RX/RY/"
                "RXX stand for IonQ's GPI/GPI2/MS; GZ (RZ) is virtual (IonQ best-practices "
                "page)")),
}


def device_model(name: str) -> DeviceModel:
    if name not in DEVICES:
        raise ConfigError(f"unknown device {name!r}", f"use one of {sorted(DEVICES)}")
    return DEVICES[name]


def transpile_for(circuit, device: DeviceModel, *, optimization_level: int = 1, seed: int = 0):
    """Translate ``circuit`` to the device's basis and connectivity.

    Raises:
        ConfigError: the circuit needs more qubits than the device has.
    """
    from qiskit import transpile
    from qiskit.transpiler import CouplingMap

    n = circuit.num_qubits
    if n > device.max_qubits:
        raise ConfigError(f"the circuit has {n} qubits; the {device.name} device has "
                          f"{device.max_qubits}", f"use at most {device.max_qubits} qubits")
    coupling = CouplingMap.from_line(n) if device.connectivity == "line" and n > 1 else None
    return transpile(circuit, basis_gates=list(device.basis), coupling_map=coupling,
                     optimization_level=optimization_level, seed_transpiler=seed)


def readout_physical(transpiled, readout: Sequence[int]) -> tuple[int, ...]:
    """Physical qubits holding the logical readout qubits at the end of the circuit."""
    layout = getattr(transpiled, "layout", None)
    if layout is None:
        return tuple(readout)
    final = layout.final_index_layout()
    return tuple(final[q] for q in readout)


@dataclasses.dataclass(frozen=True)
class GateCounts:
    """What one shot of a transpiled circuit executes.

    ``layers_1q`` / ``layers_2q``: layers of an as-soon-as-possible schedule with unit
    steps (virtual gates take none); a layer holding a two-qubit gate counts as a 2q
    layer. On a device that runs gates in parallel, one shot's gate time is about
    ``layers_1q * t_1q + layers_2q * t_2q``; on one that runs them in sequence it is
    ``gates_1q * t_1q + gates_2q * t_2q``.
    """

    gates_1q: int
    gates_2q: int
    virtual: int
    layers_1q: int
    layers_2q: int
    by_name: dict

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def gate_counts(transpiled, device: DeviceModel) -> GateCounts:
    levels = [0] * transpiled.num_qubits
    layer_has_2q: dict[int, bool] = {}
    g1 = g2 = virt = 0
    by_name: dict[str, int] = {}
    for inst in transpiled.data:
        name = inst.operation.name
        if name in ("barrier", "measure", "delay"):
            continue
        by_name[name] = by_name.get(name, 0) + 1
        qs = [transpiled.find_bit(q).index for q in inst.qubits]
        if name in device.virtual:
            virt += 1
            continue
        if len(qs) == 1:
            g1 += 1
        elif len(qs) == 2:
            g2 += 1
        else:
            raise ConfigError(f"{len(qs)}-qubit gate {name!r} after transpilation",
                              "the device basis must hold 1- and 2-qubit gates only")
        lvl = 1 + max(levels[q] for q in qs)
        for q in qs:
            levels[q] = lvl
        layer_has_2q[lvl] = layer_has_2q.get(lvl, False) or len(qs) == 2
    l2 = sum(layer_has_2q.values())
    return GateCounts(g1, g2, virt, len(layer_has_2q) - l2, l2, by_name)


def sample_z(probs: np.ndarray, readout: Sequence[int], n_qubits: int, shots: int,
             rng: np.random.Generator) -> np.ndarray:
    """Estimate ``<Z_q>`` for the readout qubits from ``shots`` samples per row.

    Each row of ``probs`` (``(B, 2**n)``, exact outcome probabilities) is marginalized to
    the readout qubits and ``shots`` outcomes are drawn (a multinomial); the estimate is
    the mean of ``+1`` (read 0) and ``-1`` (read 1) over the shots, as on a device.
    """
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots <= 0:
        raise ConfigError(f"shots={shots!r} must be a positive integer", "e.g. shots=1000")
    probs = np.asarray(probs, dtype=np.float64)
    b = len(probs)
    k = len(readout)
    idx = np.arange(2 ** n_qubits)
    # outcome index over the readout bits: bit j of `out` is qubit readout[j]
    out = np.zeros_like(idx)
    for j, q in enumerate(readout):
        out |= ((idx >> q) & 1) << j
    marg = np.zeros((b, 2 ** k))
    for o in range(2 ** k):
        marg[:, o] = probs[:, out == o].sum(axis=1)
    marg = np.clip(marg, 0, None)
    marg /= marg.sum(axis=1, keepdims=True)
    counts = rng.multinomial(shots, marg)  # (B, 2**k)
    signs = np.array([[1 - 2 * ((o >> j) & 1) for j in range(k)] for o in range(2 ** k)])
    return counts @ signs / shots


def noise_model(device: DeviceModel):
    """A qiskit-aer noise model: depolarizing gates and asymmetric readout error.

    A depolarizing channel ``(1 - p) rho + p I / d`` has average infidelity
    ``p (d - 1) / d`` (Nielsen, Phys. Lett. A 303, 249, 2002), so ``p = r d / (d - 1)``
    reproduces the device's average gate infidelity ``r``.
    """
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

    nm = NoiseModel(basis_gates=list(device.basis))
    one_q = [g for g in device.basis if g not in device.virtual and g not in ("cz", "rxx", "cx", "ecr")]
    two_q = [g for g in device.basis if g in ("cz", "rxx", "cx", "ecr")]
    nm.add_all_qubit_quantum_error(depolarizing_error(device.error_1q * 2, 1), one_q)
    nm.add_all_qubit_quantum_error(depolarizing_error(device.error_2q * 4 / 3, 2), two_q)
    p10, p01 = device.readout_p10, device.readout_p01
    nm.add_all_qubit_readout_error(ReadoutError([[1 - p10, p10], [p01, 1 - p01]]))
    return nm


def run_noisy(transpiled, readout_phys: Sequence[int], symbols: Sequence, values: np.ndarray,
              shots: int, device: DeviceModel, seed: int, batch: int = 256) -> np.ndarray:
    """Run ``transpiled`` on qiskit-aer with the device's noise; ``<Z>`` per row of ``values``.

    Args:
        transpiled: the device-basis circuit (no measurements).
        readout_phys: physical qubits to measure.
        symbols: the circuit's parameters, in the column order of ``values``.
        values: ``(B, S)`` parameter values, one row per sample.
        shots: shots per sample.
    """
    from qiskit import ClassicalRegister
    from qiskit_aer import AerSimulator

    qc = transpiled.copy()
    creg = ClassicalRegister(len(readout_phys), "c")
    qc.add_register(creg)
    for j, q in enumerate(readout_phys):
        qc.measure(q, creg[j])
    present = set(qc.parameters)
    cols = [(i, p) for i, p in enumerate(symbols) if p in present]
    backend = AerSimulator(noise_model=noise_model(device), seed_simulator=seed)
    k = len(readout_phys)
    out = np.empty((len(values), k))
    for start in range(0, len(values), batch):
        chunk = values[start:start + batch]
        binds = {p: chunk[:, i].tolist() for i, p in cols}
        res = backend.run([qc], parameter_binds=[binds], shots=shots).result()
        for r in range(len(chunk)):
            counts = res.get_counts(r)
            z = np.zeros(k)
            for bits, c in counts.items():
                bits = bits.replace(" ", "")
                for j in range(k):
                    z[j] += c * (1 - 2 * int(bits[-1 - j]))
            out[start + r] = z / shots
    return out


def export_qasm3(circuit, weights: Sequence, weight_values: Sequence[float],
                 readout: Sequence[int]) -> str:
    """OpenQASM 3 of the trained circuit: weights bound, inputs left as ``input`` angles.

    Measurements of the readout qubits are appended, so the program runs as is on a
    device once the input angles are supplied.
    """
    from qiskit import ClassicalRegister, qasm3

    qc = circuit.assign_parameters(dict(zip(weights, map(float, weight_values), strict=True)))
    creg = ClassicalRegister(len(readout), "c")
    qc.add_register(creg)
    for j, q in enumerate(readout):
        qc.measure(q, creg[j])
    return qasm3.dumps(qc)
