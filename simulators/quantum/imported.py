"""A qiskit ``QuantumCircuit`` or an OpenQASM 3 file with a declared readout, on a QPU.

``nonvon.load_network(circuit, device="qpu-superconducting")`` takes a trained circuit whose
remaining free parameters are its inputs (qiskit's parameter order: input ``i`` gets
feature ``i``) and whose measurements declare the readout (the qubit measured into classical
bit ``k`` scores class ``k``; or ``readout=(q0, q1, ...)``). Nothing is trained: ``fit`` fits
the host's pre-processing on the task's training split (PCA to as many features as the
circuit has inputs, each scaled to ``[0, pi]``, as :class:`~.vqc_training.Preprocessor`),
then the circuit is transpiled to the device's basis and connectivity (:mod:`.device`),
simulated by nonvon's statevector engine (:mod:`.statevector`) and sampled with ``shots``
shots per inference. A class's score is ``readout_scale * <Z_k> + readout_bias[k]``
(default ``-<Z_k>``: the class whose qubit most often reads 1); with one readout qubit and two
classes, class 1 when the score is positive. The ledger is the ``vqc`` simulator's: gates,
layers, measurements, readouts and shots, and the host's pre-processing and decision.

A gate the statevector engine does not run is refused when the circuit is loaded, naming
the gate and its position, with the basis to transpile to. An OpenQASM 3 file is read with
qiskit's importer when ``qiskit_qasm3_import`` is installed, else with nonvon's reader of the
subset :func:`qiskit.qasm3.dumps` writes (``input float[64]`` angles, ``qubit``/``bit``
registers, standard gates with arithmetic angles, ``measure``, ``barrier``).
"""

from __future__ import annotations

import ast
import dataclasses
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nonvon.config import choice, positive_int
from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.importers import Imported, Importer, resolve_preset
from nonvon.simulator import Capabilities, Prediction, Simulator
from nonvon.simulators.quantum.classical import ClassicalCounter, front_end
from nonvon.simulators.quantum.simulator import HOST_KINDS, QPU_KINDS, circuit_metrics
from nonvon.tasks import Task

__all__ = ["ImportedCircuit", "ImportedCircuitConfig", "import_circuit", "read_qasm3", "IMPORTER"]

_FP32_BYTES = 4


@dataclasses.dataclass(frozen=True)
class ImportedCircuitConfig:
    """Args: ``network`` (what was imported), ``preset``, ``device`` (the QPU family of
    :data:`~.device.DEVICES`), ``shots``, ``readout`` (qubit per class), ``readout_scale`` and
    ``readout_bias`` (the class scores), ``optimization_level`` (qiskit's transpiler)."""

    network: str = ""
    preset: str = "qpu-superconducting"
    device: str = "superconducting"
    shots: int = 1000
    readout: tuple[int, ...] = ()
    readout_scale: float = -1.0
    readout_bias: tuple[float, ...] = ()
    optimization_level: int = 1

    def __post_init__(self) -> None:
        from nonvon.simulators.quantum.device import DEVICES

        choice("device", self.device, sorted(DEVICES))
        positive_int("shots", self.shots, example=1000)
        object.__setattr__(self, "readout", tuple(int(q) for q in self.readout))
        object.__setattr__(self, "readout_bias", tuple(float(b) for b in self.readout_bias))


class ImportedCircuit(Imported, Simulator):
    """A trained parameterized circuit on a QPU, inputs from a PCA front end."""

    paradigm = "quantum"
    Config = ImportedCircuitConfig
    op_kinds = QPU_KINDS | HOST_KINDS

    def __init__(self, circuit, config: ImportedCircuitConfig | None = None, /, **overrides):
        from nonvon.simulators.quantum.statevector import translate

        super().__init__(config, **overrides)
        self.circuit = circuit
        self.symbols = tuple(circuit.parameters)
        translate(circuit, self.symbols)  # an unsupported gate is refused here, named
        if not self.symbols:
            raise IncompatibleError("the circuit has no free parameters to take the inputs",
                                    "leave the input angles as qiskit Parameters (OpenQASM 3: "
                                    "'input float[64] x;')")
        self.name = f"qiskit:{circuit.name}"

    @property
    def precision(self) -> str:
        return "analog"

    @property
    def n_params(self) -> int:
        return len(self.circuit.data)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(input_kinds=("image", "vector"))

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        from nonvon.simulators.quantum.device import (
            device_model,
            gate_counts,
            readout_physical,
            transpile_for,
        )
        from nonvon.simulators.quantum.statevector import compile_program, translate
        from nonvon.simulators.quantum.vqc_training import Preprocessor

        c, k = self.config, len(self.config.readout)
        if k != task.n_classes and not (k == 1 and task.n_classes == 2):
            raise IncompatibleError(f"the circuit reads out {k} qubits; task {task.name!r} has "
                                    f"{task.n_classes} classes",
                                    "measure one qubit per class (one qubit for two classes)")
        if c.readout_bias and len(c.readout_bias) != k:
            raise ConfigError(f"readout_bias has {len(c.readout_bias)} values for {k} readout qubits",
                              "give one bias per readout qubit")
        self.pre = Preprocessor("pca", len(self.symbols), "angle").fit(task.x_train)
        self.front = torch.nn.Sequential(*front_end(self.pre)).eval()
        dev = device_model(c.device)
        self.transpiled = transpile_for(self.circuit, dev, optimization_level=c.optimization_level,
                                        seed=seed)
        self.readout_phys = readout_physical(self.transpiled, c.readout)
        self.gate_counts = gate_counts(self.transpiled, dev)
        self.program = compile_program(translate(self.transpiled, self.symbols))

    def _predict(self, x: np.ndarray) -> Prediction:
        from nonvon.simulators.quantum.device import sample_z

        c = self.config
        counter = ClassicalCounter(self.front, "fp32")
        with torch.inference_mode(), counter:
            inputs = self.front(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()
        rng = np.random.default_rng(self._seed + 1)
        z = np.concatenate([
            sample_z(np.asarray(self.program.probabilities(inputs[i:i + 256].astype(np.float64))),
                     self.readout_phys, self.transpiled.num_qubits, c.shots, rng)
            for i in range(0, len(inputs), 256)])
        k = len(c.readout)
        scores = c.readout_scale * z + (np.asarray(c.readout_bias) if c.readout_bias else 0.0)
        labels = (scores[:, 0] > 0).astype(np.int64) if k == 1 else scores.argmax(1)
        counts: Counter = Counter(counter.nonzero())
        n, g = len(x), self.gate_counts
        counts["host_transfer_byte"] += n * inputs.shape[1] * _FP32_BYTES + n * math.ceil(c.shots * k / 8)
        counts["add_fp32"] += n * c.shots * k + n * k     # accumulate the shots; the bias
        counts["mul_fp32"] += n * k                       # the scale
        counts["cmp_fp32"] += n * max(k - 1, 1)           # the decision
        for kind, per_shot in (("qpu_gate_1q", g.gates_1q), ("qpu_gate_2q", g.gates_2q),
                               ("qpu_layer_1q", g.layers_1q), ("qpu_layer_2q", g.layers_2q),
                               ("qpu_measure", k), ("qpu_readout", 1), ("qpu_shot", 1)):
            counts[kind] += n * c.shots * per_shot
        return Prediction(labels, OpLedger({a: v for a, v in counts.items() if v}, n_inferences=n,
                                           resident_bytes=counter.resident_bytes),
                          # the imported circuit's weights are bound into its gates: the
                          # footprint is the host front end's alone
                          metrics=circuit_metrics(counter, n, 0))


# -- OpenQASM 3 ---------------------------------------------------------------------------
_DECL = re.compile(r"input\s+float\[\d+\]\s+(\w+)$|(qubit|bit)\[(\d+)\]\s+(\w+)$")
_GATE = re.compile(r"(\w+)\s*(?:\(([^)]*)\))?\s+(.+)$")
_MEASURE = re.compile(r"(\w+)\[(\d+)\]\s*=\s*measure\s+(\w+)\[(\d+)\]$")
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b}


def _angle(text: str, names: dict, where: str):
    def ev(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name) and (node.id in names or node.id in ("pi", "π")):
            return names.get(node.id, math.pi)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
        raise IncompatibleError(f"{where}: the angle {text!r} is not arithmetic on inputs and pi",
                                "write angles with + - * / on inputs, numbers and pi")
    try:
        return ev(ast.parse(text.replace("π", "pi"), mode="eval").body)
    except SyntaxError:
        raise IncompatibleError(f"{where}: cannot read the angle {text!r}",
                                "write a plain expression") from None


def read_qasm3(text: str, source: str = "<string>"):
    """A ``QuantumCircuit`` (with measurements) from OpenQASM 3 text (see the module docstring)."""
    try:
        import qiskit_qasm3_import  # noqa: F401  (qiskit's own importer, when installed)
        from qiskit import qasm3

        return qasm3.loads(text)
    except ImportError:
        pass
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
    from qiskit.circuit import Parameter

    names: dict[str, Any] = {}
    qregs: dict[str, QuantumRegister] = {}
    cregs: dict[str, ClassicalRegister] = {}
    qc = QuantumCircuit(name=Path(source).stem or "qasm3")
    body = re.sub(r"//[^\n]*", "", text)
    for n, stmt in enumerate(s.strip() for s in body.split(";")):
        where = f"{source}, statement {n + 1}"
        if not stmt or stmt.startswith(("OPENQASM", "include")):
            continue
        if m := _DECL.match(stmt):
            if m.group(1):
                names[m.group(1)] = Parameter(m.group(1))
            elif m.group(2) == "qubit":
                qregs[m.group(4)] = QuantumRegister(int(m.group(3)), m.group(4))
                qc.add_register(qregs[m.group(4)])
            else:
                cregs[m.group(4)] = ClassicalRegister(int(m.group(3)), m.group(4))
                qc.add_register(cregs[m.group(4)])
            continue
        if m := _MEASURE.match(stmt):
            qc.measure(qregs[m.group(3)][int(m.group(4))], cregs[m.group(1)][int(m.group(2))])
            continue
        m = _GATE.match(stmt)
        if m is None:
            raise IncompatibleError(f"{where}: OpenQASM 3 statement {stmt!r} is not supported by "
                                    "nonvon's reader", "install qiskit_qasm3_import (qiskit's full "
                                    "importer), or load the circuit in qiskit and pass it")
        gate, args, operands = m.groups()
        qubits = []
        for op in operands.split(","):
            reg, _, idx = op.strip().partition("[")
            if reg not in qregs or not idx.endswith("]"):
                raise IncompatibleError(f"{where}: operand {op.strip()!r} is not a declared qubit",
                                        "declare 'qubit[n] q;' and address q[i]")
            qubits.append(qregs[reg][int(idx[:-1])])
        params = [_angle(a.strip(), names, where) for a in args.split(",")] if args else []
        if gate == "barrier":
            qc.barrier(*qubits)
            continue
        method = getattr(qc, gate, None)
        if method is None:
            raise IncompatibleError(f"{where}: gate {gate!r} is not a qiskit standard gate",
                                    "decompose it into stdgates.inc gates")
        method(*params, *qubits)
    return qc


def _strip(circuit) -> tuple[Any, tuple[int, ...]]:
    """The unitary part of ``circuit`` and its readout: qubit measured into clbit ``k``."""
    out = circuit.copy_empty_like()
    measured: dict[int, int] = {}
    for inst in circuit.data:
        if inst.operation.name == "measure":
            measured[circuit.find_bit(inst.clbits[0]).index] = circuit.find_bit(inst.qubits[0]).index
        else:
            out.append(inst)
    return out, tuple(measured[k] for k in sorted(measured))


def import_circuit(circuit, *, device: str = "qpu-superconducting", preset: Any = "default",
                   **options) -> ImportedCircuit:
    """A circuit (``QuantumCircuit`` or the path of an OpenQASM 3 file) on the QPU preset
    ``device``; ``preset``: the price list (``"default"``: ``device``; ``None``: unpriced);
    options of :class:`ImportedCircuitConfig` (``shots``, ``readout``, ``readout_scale``,
    ``readout_bias``, ``optimization_level``)."""
    from nonvon.registry import registry
    from nonvon.simulators.quantum.device import DEVICES

    source = "circuit"
    if isinstance(circuit, Path):
        source = str(circuit)
        circuit = read_qasm3(circuit.read_text(), source)
    unitary, measured = _strip(circuit)
    target = registry().preset(device)
    family = device.removeprefix("qpu-")
    if "quantum" not in target.paradigms or family not in DEVICES:
        raise ConfigError(f"preset {device!r} is not a QPU preset nonvon has a device model for",
                          f"use one of {', '.join('qpu-' + d for d in sorted(DEVICES))}")
    readout = tuple(options.pop("readout", ()) or measured)
    if not readout:
        raise ConfigError(f"{source} declares no readout", "measure one qubit per class "
                          "(c[k] = measure q[i]), or pass readout=(qubit per class)")
    sim = ImportedCircuit(unitary, ImportedCircuitConfig(network=source, preset=target.name,
                                                         device=family, readout=readout, **options))
    sim.preset = resolve_preset(preset, target.name)
    return sim


def _accepts(obj) -> bool:
    if isinstance(obj, Path):
        return obj.suffix in (".qasm", ".qasm3")
    return type(obj).__name__ == "QuantumCircuit" and type(obj).__module__.startswith("qiskit")


IMPORTER = Importer("qiskit", _accepts, import_circuit,
                    "a qiskit QuantumCircuit or OpenQASM 3 file (.qasm) with measured readout "
                    "qubits onto a QPU preset (device='qpu-superconducting', 'qpu-trapped-ion')",
                    suffixes=(".qasm", ".qasm3"))
