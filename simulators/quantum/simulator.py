"""Variational quantum classifiers on a QPU, and their classical twins.

:class:`VQC` trains a qiskit-defined classifier (:mod:`nonvon.simulators.quantum.circuits`) on
the compiled JAX statevector simulator with exact gradients, then evaluates it as a
device would: the circuit is transpiled to the device's native gates and
connectivity, run with a finite number of shots (sampled from the exact outcome
probabilities, or on qiskit-aer with a noise model from published device figures), and
every executed gate, measurement and shot is counted.

What one inference costs, in plain words: **shots x (time per shot) x system power,
plus the classical pre- and post-processing**. The ledger counts per inference

* ``qpu_gate_1q`` / ``qpu_gate_2q``: physical gates (virtual RZ frame changes excluded),
  shots x gates per shot;
* ``qpu_layer_1q`` / ``qpu_layer_2q``: critical-path layers, shots x layers per shot
  (the time of a device that runs gates in parallel);
* ``qpu_measure``: readout qubits x shots; ``qpu_readout`` and ``qpu_shot``: one each
  per shot (readout window; reset and repetition delay);
* the host's classical work, run as PyTorch layers (:mod:`.classical`) and counted by the
  GPU baseline's counter, so by the same rules as ``gpu-mlp``: the pre-processing (PCA
  projection or downsampling, scaling to angles), the readout map and the decision as
  ``mac/add/mul/cmp_fp32``, their memory traffic as ``sram_byte`` (the ledger's resident
  bytes are their weights and largest activation buffer) and one ``kernel_launch`` per
  layer call; plus averaging the shots into expectations (``add_fp32``, one per shot and
  readout qubit);
* ``host_transfer_byte``: the circuit's input angles sent to the QPU's control system
  (fp32, per inference), its trained weights (once per evaluation) and the measured bits
  sent back (readout qubits x shots, one bit each).

A QPU preset gives each kind its time (``time_s``) and the system power as static
power, so pricing charges the system's wall power over the modelled time of all shots:
at 1,000 shots and IBM's default 250 µs repetition delay that is about a quarter of a
second of a ~25 kW system, i.e. kilojoules per inference.

Precision: the circuit's trained parameters are continuous rotation angles applied by
analog pulses, so a VQC row says ``"analog"``; its classical host work is fp32. The twin
says ``"fp32"``.

:class:`VQCClassicalTwin` is the classical model with the same inputs (the same
pre-processing) and the same number of trainable parameters, trained the same way
(same loss, optimizer, schedule, batches and epochs): registered as
``vqc-classical-twin`` so ``nonvon compare --sim vqc,vqc-classical-twin`` puts the two
side by side. It runs as one PyTorch network (the same pre-processing, then the MLP) and
is counted exactly as ``gpu-mlp`` is (``tests/test_quantum_accounting.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import Counter
from typing import ClassVar

import numpy as np
import torch

from nonvon.config import choice, flag, integer, optional, positive, positive_int
from nonvon.energy_models import OpLedger
from nonvon.errors import ConfigError, IncompatibleError
from nonvon.simulator import Capabilities, Prediction, Simulator
from nonvon.simulators.gpu.counting import op_kinds_for
from nonvon.simulators.quantum.classical import (
    AmplitudeAngles,
    ClassicalCounter,
    count_decision,
    decide,
    front_end,
    readout_head,
    twin_network,
    without_transfer,
)
from nonvon.simulators.quantum.classical import (
    readout_map as readout_map_type,
)
from nonvon.simulators.quantum.statevector import MAX_QUBITS, STATE_DTYPES, check_qubits
from nonvon.tasks import Task

__all__ = ["VQCConfig", "VQC", "VQCClassicalTwin", "QPU_KINDS", "HOST_KINDS", "twin_hidden"]

QPU_KINDS = frozenset({"qpu_gate_1q", "qpu_gate_2q", "qpu_layer_1q", "qpu_layer_2q",
                       "qpu_measure", "qpu_readout", "qpu_shot"})
# What the classical layers may count: gpu-mlp's kinds at fp32, and multiplies (tanh, the
# per-feature angle map, area averaging's divide, the readout scale).
HOST_KINDS = op_kinds_for("fp32") | {"mul_fp32"}
_FP32_BYTES = 4


def circuit_metrics(counter, n: int, n_angles: int) -> dict[str, float]:
    """The NeuroBench figures of a VQC row (:mod:`nonvon.workload`): those of its host layers
    (``counter``, over ``n`` inferences), the footprint with the circuit's trained angles
    added (fp32). A gate is not a synaptic operation and a qubit has no activation:
    NeuroBench has no counterpart for the circuit, so ``effective_macs`` and ``dense_ops``
    are the host's alone."""
    m = counter.neurobench_metrics(n)
    m["footprint_bytes"] += _FP32_BYTES * n_angles
    return m
_EVAL_AMPLITUDES = 2 ** 24  # amplitudes held at once in evaluation (128 MiB complex64)


@dataclasses.dataclass(frozen=True)
class VQCConfig:
    """Circuit, pre-processing, training budget and device settings of a VQC.

    Args:
        n_qubits: register size (at most ``MAX_QUBITS``; the device may hold fewer).
        encoding: ``"angle"``, ``"reupload"`` or ``"amplitude"`` (see
            :mod:`nonvon.simulators.quantum.circuits`).
        layers: hardware-efficient blocks (re-uploading: encode + block, repeated).
        entanglement: ``"linear"`` or ``"ring"`` CZ pattern.
        readout: ``"class"`` (one qubit per class, shared scale and a bias each) or
            ``"all"`` (every qubit's ``<Z>`` through a trainable affine map); see
            :mod:`nonvon.simulators.quantum.circuits`.
        preprocess: ``"pca"``, ``"downsample"`` or ``"none"`` (features as given).
        n_features: features after pre-processing (``None`` with ``"none"``).
        epochs, batch_size, lr: minibatch Adam with cosine decay to ``lr / 10``.
        angle_std: initial spread of the ansatz angles.
        max_train: train on a random subset of at most this many samples (``None``: all).
        shots: shots per inference in evaluation (> 0).
        noise: run evaluation on qiskit-aer with the device's noise model.
        device: ``"superconducting"`` (IBM Heron-class basis rz/sx/x/cz on a line) or
            ``"trapped-ion"`` (IonQ Aria-class rz/rx/ry/rxx, all-to-all).
        optimization_level: qiskit transpiler level for the device circuit.
        eval_batch_size: samples per evaluation batch (capped by memory).
        state_dtype: amplitudes of the statevector in evaluation: ``"complex64"`` (default;
            its error against qiskit's complex128 ``Statevector`` is measured in
            :mod:`nonvon.simulators.quantum.statevector`) or ``"complex128"``, the reference
            precision (twice the memory, slower). Training stays complex64 either way: it
            sets the weights, whose evaluation this option makes exact.
    """

    n_qubits: int = 10
    encoding: str = "reupload"
    layers: int = 8  # with ring CZs every class qubit's light cone covers the register
    entanglement: str = "ring"
    readout: str = "class"
    preprocess: str = "pca"
    n_features: int | None = 20
    epochs: int = 5
    batch_size: int = 64
    lr: float = 0.05
    angle_std: float = 0.1
    # a training subset that fits a CPU comparison (what it gives: docs/results/vqc-mnist/README.md)
    max_train: int | None = 20000
    shots: int = 1000
    noise: bool = False
    device: str = "superconducting"
    optimization_level: int = 1
    eval_batch_size: int = 1024
    state_dtype: str = "complex64"

    def __post_init__(self) -> None:
        from nonvon.simulators.quantum.circuits import ENCODINGS, ENTANGLEMENTS, READOUTS, features_capacity
        from nonvon.simulators.quantum.device import DEVICES

        positive_int("n_qubits", self.n_qubits, example=10)
        check_qubits(self.n_qubits, MAX_QUBITS, self.batch_size if isinstance(self.batch_size, int) else 1)
        for name in ("layers", "epochs", "batch_size", "eval_batch_size"):
            positive_int(name, getattr(self, name), example=8)
        integer("optimization_level", self.optimization_level, 0, example=1)
        choice("encoding", self.encoding, ENCODINGS)
        choice("entanglement", self.entanglement, ENTANGLEMENTS)
        choice("readout", self.readout, READOUTS)
        choice("preprocess", self.preprocess, ("pca", "downsample", "none"))
        choice("device", self.device, sorted(DEVICES))
        choice("state_dtype", self.state_dtype, tuple(STATE_DTYPES))
        positive_int("shots", self.shots, example=1000)
        if self.preprocess == "none":
            if self.n_features is not None:
                raise ConfigError("n_features is set but preprocess='none' takes the features as given",
                                  "set n_features=None, or preprocess='pca' / 'downsample'")
        else:
            positive_int("n_features", self.n_features, example=20)
            cap = features_capacity(self.encoding, self.n_qubits)
            if self.n_features > cap:
                raise ConfigError(f"{self.n_features} features do not fit the {self.encoding!r} encoding "
                                  f"on {self.n_qubits} qubits (it holds {cap})",
                                  "raise n_qubits or lower n_features")
        optional(positive_int, "max_train", self.max_train, example=20000)
        positive("lr", self.lr, example=0.05)
        positive("angle_std", self.angle_std, example=0.1)
        flag("noise", self.noise)


class _QuantumBase(Simulator):
    """Shared: config, capabilities, pre-processing and the task checks."""

    Config = VQCConfig
    # re-uploading: on the --quick MNIST subset it beats angle encoding in the same time
    # (docs/results/vqc-mnist/README.md)
    quick: ClassVar[dict] = {"preprocess": "pca", "n_features": 10, "n_qubits": 10,
                             "encoding": "reupload", "layers": 4, "epochs": 10, "batch_size": 32,
                             "lr": 0.1, "shots": 256}

    @property
    def capabilities(self) -> Capabilities:
        from nonvon.simulators.quantum.circuits import features_capacity

        c = self.config
        max_features = features_capacity(c.encoding, c.n_qubits) if c.preprocess == "none" else None
        kinds = ("image",) if c.preprocess == "downsample" else ("image", "vector")
        return Capabilities(input_kinds=kinds, max_features=max_features,
                            max_classes=max(2, c.n_qubits))

    def _n_classes_out(self, n_classes: int) -> int:
        return 1 if n_classes == 2 else n_classes

    def _prepare(self, task: Task, seed: int):
        from nonvon.simulators.quantum.vqc_training import Preprocessor

        c = self.config
        x, y = task.x_train, task.y_train
        if c.max_train is not None and c.max_train < len(y):
            idx = np.sort(np.random.default_rng(seed).permutation(len(y))[:c.max_train])
            x, y = x[idx], y[idx]
        scale = "none" if c.encoding == "amplitude" else "angle"
        self.pre = Preprocessor(c.preprocess, c.n_features, scale).fit(x)
        return self.pre.transform(x), y

    def _load_preprocessor(self, tensors: dict, task: Task) -> int:
        """Restore the fitted pre-processing from ``pre.*`` tensors; returns its feature count."""
        from nonvon.simulators.quantum.vqc_training import Preprocessor

        c = self.config
        scale = "none" if c.encoding == "amplitude" else "angle"
        pre = {k.removeprefix("pre."): v for k, v in tensors.items() if k.startswith("pre.")}
        self.pre = Preprocessor(c.preprocess, c.n_features, scale).load_state_tensors(pre, task.input_shape)
        return self.pre.n_out

    def _check_state_keys(self, tensors: dict, allowed: set[str]) -> None:
        extra = sorted(k for k in tensors if k not in allowed and not k.startswith("pre."))
        if extra:
            raise ConfigError(f"{self.name}: unexpected state tensors {extra}",
                              f"load the state saved by {type(self).__name__} with this config")

    def _model(self, n_features: int, n_classes: int):
        from nonvon.simulators.quantum.circuits import build_vqc

        c = self.config
        return build_vqc(c.n_qubits, n_features, n_classes, layers=c.layers, encoding=c.encoding,
                         entanglement=c.entanglement, readout=c.readout)


class VQC(_QuantumBase):
    """A variational quantum classifier trained on the JAX statevector simulator."""

    cost_hint = 68.0
    paradigm = "quantum"
    op_kinds: ClassVar[frozenset[str]] = QPU_KINDS | HOST_KINDS
    chip_boundary_absent: ClassVar[str] = (
        "no sourced chip-boundary QPU exists: Heron-class processors are controlled from room "
        "temperature; published cryo-CMOS covers single-qubit drive only (Bardin et al., JSSC "
        "2019, < 2 mW at 3 K) and no flux/coupler control or per-line readout figures; and a chip "
        "figure would leave out the refrigeration that removes the chip's heat, about a million "
        "times cheaper than the system. vqc is ranked at the system boundary only")

    def __init__(self, config: VQCConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        self.params: dict | None = None
        self.model = None

    @property
    def precision(self) -> str:
        # trained rotation angles, applied as analog pulses (the host's work is fp32)
        return "analog"

    @property
    def n_params(self) -> int:
        return self.model.n_params if self.model is not None else 0

    # -- inputs to the circuit ----------------------------------------------------------
    def _circuit_inputs(self, feats: np.ndarray, counts: Counter) -> np.ndarray:
        """Input parameter values per sample (angles, or amplitude-tree angles)."""
        if self.model.encoding != "amplitude":
            return feats
        from nonvon.simulators.quantum.circuits import amplitude_angles

        n, f = feats.shape
        k = 2 ** self.model.n_qubits
        counts["mul_fp32"] += n * f                      # squares for the norms
        counts["add_fp32"] += n * (2 * k)                # partial sums over the tree
        counts["mul_fp32"] += n * 2 * (k - 1)            # a sqrt and an atan2 per angle, counted
        return amplitude_angles(feats, self.model.n_qubits)  # as one op each (a lower bound)

    def _values(self, inputs: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.concatenate([inputs, np.broadcast_to(weights, (len(inputs), len(weights)))],
                              axis=1).astype(np.float32)

    # -- training -----------------------------------------------------------------------
    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        from nonvon.simulators.quantum.statevector import translate
        from nonvon.simulators.quantum.vqc_training import train_adam

        feats, y = self._prepare(task, seed)
        self.model = m = self._model(feats.shape[1], task.n_classes)
        inputs = self._circuit_inputs(feats, Counter())
        self.symbols = tuple(m.inputs) + tuple(m.weights)
        self.program = prog = translate(m.circuit, self.symbols)
        n_in, readout = len(m.inputs), m.readout
        segment = 64 if m.n_qubits >= 14 else None  # rematerialize: memory bounds big registers
        logits_fn = vqc_logits_fn(prog, readout, task.n_classes == 2, segment, m.readout_map)

        rng = np.random.default_rng(seed)
        params = {"w": m.init_weights(rng, self.config.angle_std), **m.init_readout(rng)}
        assert n_in == inputs.shape[1]
        self.history: list[float] = []
        c = self.config
        self.params = train_adam(logits_fn, params, inputs, y, epochs=c.epochs, batch_size=c.batch_size,
                                 lr=c.lr, seed=seed, progress=progress, label=f"{self.name} train",
                                 history=self.history)
        self._seed_eval = seed
        self._build_device_program()

    def _build_device_program(self) -> None:
        from nonvon.simulators.quantum.device import (
            device_model,
            gate_counts,
            readout_physical,
            transpile_for,
        )
        from nonvon.simulators.quantum.statevector import compile_program, translate

        dev = device_model(self.config.device)
        self.transpiled = transpile_for(self.model.circuit, dev,
                                        optimization_level=self.config.optimization_level)
        self.readout_phys = readout_physical(self.transpiled, self.model.readout)
        self.gate_counts = gate_counts(self.transpiled, dev)
        dtype = self.config.state_dtype
        self.device_program = compile_program(translate(self.transpiled, self.symbols), dtype=dtype)
        self.logical_program = compile_program(self.program, dtype=dtype)
        self._build_host_layers()

    def _build_host_layers(self) -> None:
        """The host's classical work as PyTorch layers (counted like gpu-mlp's)."""
        front = front_end(self.pre)
        if self.model.encoding == "amplitude":
            front.append(AmplitudeAngles(self.model.n_qubits))
        self.front = torch.nn.Sequential(*front).eval()
        self.head = readout_head(self.model.readout_map, self.params)
        self.host_layers = torch.nn.ModuleDict({"front": self.front, "head": self.head})

    # -- trained state ------------------------------------------------------------------
    def state_tensors(self) -> dict[str, np.ndarray]:
        if self.params is None:
            raise ConfigError(f"{self.name} has not been fitted", "call fit(task) first")
        return {**{k: np.array(v) for k, v in self.params.items()},
                **{f"pre.{k}": v for k, v in self.pre.state_tensors().items()}}

    def _load_state_tensors(self, tensors: dict, task: Task) -> None:
        from nonvon.simulators.quantum.statevector import translate

        self._check_state_keys(tensors, {"w", "s", "b"})
        f = self._load_preprocessor(tensors, task)
        self.model = m = self._model(f, task.n_classes)
        want = {"w": (len(m.weights),), **{k: np.shape(v) for k, v in
                                           m.init_readout(np.random.default_rng(0)).items()}}
        got = {k: tuple(np.shape(tensors[k])) for k in want if k in tensors}
        if got != want:
            raise ConfigError(f"{self.name}: stored circuit parameters {got} do not match this "
                              f"config's circuit {want}", "load the state saved with the same config")
        self.params = {k: np.asarray(tensors[k]) for k in want}
        self.symbols = tuple(m.inputs) + tuple(m.weights)
        self.program = translate(m.circuit, self.symbols)
        self.history = []
        self._build_device_program()

    def load_state_tensors(self, tensors, task: Task, *, seed: int = 0, fit_wall_s: float = 0.0):
        super().load_state_tensors(tensors, task, seed=seed, fit_wall_s=fit_wall_s)
        self._seed_eval = seed  # the shots are sampled from the fit's seed
        return self

    # -- inference ----------------------------------------------------------------------
    def _batches(self, n: int):
        wide = 2 if self.config.state_dtype == "complex128" else 1  # bytes per amplitude x2
        cap = max(1, _EVAL_AMPLITUDES // (wide * 2 ** self.model.n_qubits))
        bs = min(self.config.eval_batch_size, cap)
        return range(0, n, bs), bs

    def _host_inputs(self, x: np.ndarray) -> np.ndarray:
        """Circuit input values per sample (fp32), computed by the host layers in batches."""
        xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
        bs = self.config.eval_batch_size
        with torch.inference_mode():
            return torch.cat([self.front(xt[i:i + bs]) for i in range(0, len(xt), bs)]).numpy()

    def _host_scores(self, z: np.ndarray, counter: ClassicalCounter | None = None) -> np.ndarray:
        """The readout map on the host, in batches; with ``counter``, the decision is counted
        too (on the host: no transfer)."""
        zt = torch.from_numpy(np.asarray(z, dtype=np.float32))
        bs, out = self.config.eval_batch_size, []
        with torch.inference_mode():
            for i in range(0, len(zt), bs):
                scores = self.head(zt[i:i + bs])
                if counter is not None:
                    without_transfer(counter, lambda s=scores: count_decision(counter, s))
                out.append(scores)
        return torch.cat(out).numpy()

    @staticmethod
    def _counted(module: torch.nn.Module, counts: Counter | None, fn):
        """``fn(counter)``, counting ``module``'s layers into ``counts`` (``None``: uncounted)."""
        if counts is None:
            return fn(None)
        counter = ClassicalCounter(module, "fp32")
        with counter:
            out = fn(counter)
        counts.update(counter.nonzero())
        return out

    def expectations(self, x: np.ndarray, *, exact: bool = False,
                     counts: Counter | None = None) -> np.ndarray:
        """``<Z>`` of the readout qubits per sample.

        Args:
            x: raw task inputs.
            exact: the noise-free statevector limit (infinitely many shots) instead of
                the configured shots / noise; runs the logical circuit.
            counts: a Counter to add the host's pre-processing ops to (``None``: not counted).
        """
        if self.params is None:
            raise ConfigError(f"{self.name} has not been fitted", "call fit(task) first")
        inputs = self._counted(self.front, counts, lambda _: self._host_inputs(x))
        return self._device_expectations(inputs, exact=exact)

    def _device_expectations(self, inputs: np.ndarray, *, exact: bool = False) -> np.ndarray:
        values = self._values(inputs, self.params["w"])
        c = self.config
        m = self.model
        if exact:
            starts, bs = self._batches(len(values))
            return np.concatenate([np.asarray(self.logical_program.expect_z(values[i:i + bs], m.readout))
                                   for i in starts])
        if c.noise:
            from nonvon.simulators.quantum.device import device_model, run_noisy

            return run_noisy(self.transpiled, self.readout_phys, self.symbols, values, c.shots,
                             device_model(c.device), seed=self._seed_eval)
        from nonvon.simulators.quantum.device import sample_z

        rng = np.random.default_rng(self._seed_eval + 1)
        starts, bs = self._batches(len(values))
        out = [sample_z(np.asarray(self.device_program.probabilities(values[i:i + bs])),
                        self.readout_phys, self.transpiled.num_qubits, c.shots, rng) for i in starts]
        return np.concatenate(out)

    def logits(self, z: np.ndarray, counts: Counter | None = None) -> np.ndarray:
        """Class logits from ``<Z>`` (two classes: ``[0, score]``), by the host's readout map;
        ``counts``: a Counter to add its ops to (``None``: not counted)."""
        lg = self._counted(self.head, counts, lambda counter: self._host_scores(z, counter))
        return np.concatenate([np.zeros_like(lg), lg], axis=1) if lg.shape[1] == 1 else lg

    def predict_exact(self, x: np.ndarray) -> np.ndarray:
        """Labels in the noise-free, infinite-shot limit (for reporting beside the shots)."""
        return self.logits(self.expectations(x, exact=True)).argmax(axis=1)

    def _predict(self, x: np.ndarray) -> Prediction:
        if self.params is None:
            raise ConfigError(f"{self.name} has not been fitted", "call fit(task) first")
        counter = ClassicalCounter(self.host_layers, "fp32")
        with torch.inference_mode(), counter:
            inputs = self._host_inputs(x)
            z = self._device_expectations(inputs)
            scores = self._host_scores(z, counter)
        labels = decide(torch.from_numpy(scores)).numpy()
        counts: Counter = Counter(counter.nonzero())
        n, shots = len(x), self.config.shots
        k = len(self.model.readout)
        g = self.gate_counts
        # angles out to the control system, the trained weights once, measured bits back
        counts["host_transfer_byte"] += (n * inputs.shape[1] * _FP32_BYTES
                                         + len(self.params["w"]) * _FP32_BYTES
                                         + n * math.ceil(shots * k / 8))
        counts["add_fp32"] += n * shots * k  # accumulate +-1 per shot into each expectation
        counts["qpu_gate_1q"] += n * shots * g.gates_1q
        counts["qpu_gate_2q"] += n * shots * g.gates_2q
        counts["qpu_layer_1q"] += n * shots * g.layers_1q
        counts["qpu_layer_2q"] += n * shots * g.layers_2q
        counts["qpu_measure"] += n * shots * k
        counts["qpu_readout"] += n * shots
        counts["qpu_shot"] += n * shots
        return Prediction(labels.astype(np.int64), OpLedger({k_: v for k_, v in counts.items() if v},
                                                            n_inferences=n,
                                                            resident_bytes=counter.resident_bytes),
                          metrics=circuit_metrics(counter, n, len(self.params["w"])))

    def qasm3(self) -> str:
        """The trained circuit as OpenQASM 3 (weights bound, input angles as ``input``)."""
        from nonvon.simulators.quantum.device import export_qasm3

        if self.params is None:
            raise ConfigError(f"{self.name} has not been fitted", "call fit(task) first")
        return export_qasm3(self.model.circuit, self.model.weights, self.params["w"], self.model.readout)


@functools.lru_cache(maxsize=32)
def vqc_logits_fn(program, readout: tuple[int, ...], binary: bool, segment: int | None,
                  readout_map: str = "scale"):
    """Logits of a VQC from the exact statevector (cached per circuit).

    ``p["w"]`` are the circuit weights (broadcast to every sample after its inputs).
    ``readout_map`` (see :class:`nonvon.simulators.quantum.circuits.VQCModel`): ``"scale"``:
    ``s <Z> + b`` with a shared scale ``p["s"]`` and biases ``p["b"]``; ``"linear"``:
    ``<Z> @ p["s"] + p["b"]``; ``"none"``: ``<Z>`` itself. Two classes give the logits
    ``[0, score]``.
    """
    import jax.numpy as jnp

    from nonvon.simulators.quantum.statevector import _run, z_from_probabilities

    n = program.n_qubits
    logits_map = readout_map_type(readout_map).logits

    def logits_fn(p, xb):
        vals = jnp.concatenate([xb, jnp.broadcast_to(p["w"], (xb.shape[0], p["w"].shape[0]))], axis=1)
        psi = _run(program, vals, segment)
        z = z_from_probabilities(jnp.real(psi) ** 2 + jnp.imag(psi) ** 2, readout, n)
        lg = logits_map(p, z)
        return jnp.concatenate([jnp.zeros_like(lg), lg], axis=1) if binary else lg

    return logits_fn


@functools.lru_cache(maxsize=8)
def mlp_logits_fn(binary: bool, hidden: bool):
    """Logits of the twin: tanh MLP (or logistic when ``hidden`` is false).

    tanh rather than ReLU: twins of small circuits have one or two hidden units, and a
    ReLU unit that starts dead never recovers.
    """
    import jax.numpy as jnp

    def logits_fn(p, xb):
        hid = jnp.tanh(xb @ p["w1"] + p["b1"]) if hidden else xb
        lg = hid @ p["w2"] + p["b2"]
        return jnp.concatenate([jnp.zeros_like(lg), lg], axis=1) if binary else lg

    return logits_fn


def twin_hidden(n_params: int, n_features: int, n_out: int) -> int:
    """Hidden width of the MLP twin whose parameter count is closest to ``n_params``.

    ``0`` means no hidden layer (logistic regression, ``(n_features + 1) * n_out``
    parameters); ``h > 0`` gives ``(n_features + 1) h + (h + 1) n_out``. Ties go to the
    smaller model.
    """
    best = (abs((n_features + 1) * n_out - n_params), 0)
    h = 1
    while (n_features + 1) * h + (h + 1) * n_out <= 2 * n_params + n_features + n_out:
        best = min(best, (abs((n_features + 1) * h + (h + 1) * n_out - n_params), h))
        h += 1
    return best[1]


def twin_param_count(h: int, n_features: int, n_out: int) -> int:
    return (n_features + 1) * n_out if h == 0 else (n_features + 1) * h + (h + 1) * n_out


class VQCClassicalTwin(_QuantumBase):
    """The classical model beside a VQC: same inputs, same parameter count, same training.

    Built from the same :class:`VQCConfig` (so ``--set`` options mirror the VQC's): the
    VQC circuit is built (not trained) to count its trainable parameters ``P``
    (circuit weights plus the readout scale and biases), and a tanh MLP
    ``F -> h -> C`` (or a logistic model) with the parameter count closest to ``P`` is
    trained on the same pre-processed angles with the same loss, Adam schedule,
    batches, epochs and seed. Runs on conventional digital hardware (paradigm
    ``"gpu"``) as one PyTorch network, the pre-processing included, counted exactly as
    ``gpu-mlp``'s network is (:class:`~.classical.ClassicalCounter`, batches of
    ``eval_batch_size``, inputs sent in and scores sent back over the host link).
    """

    cost_hint = 16.0

    paradigm = "gpu"
    op_kinds: ClassVar[frozenset[str]] = HOST_KINDS

    def __init__(self, config: VQCConfig | None = None, /, **overrides):
        super().__init__(config, **overrides)
        self.params: dict | None = None
        self.network: torch.nn.Module | None = None
        self.vqc_n_params = 0

    @property
    def precision(self) -> str:
        return "fp32"

    @property
    def n_params(self) -> int:
        return sum(int(np.size(v)) for v in self.params.values()) if self.params else 0

    def _fit(self, task: Task, *, seed: int, progress: bool) -> None:
        from nonvon.simulators.quantum.vqc_training import train_adam

        feats, y = self._prepare(task, seed)
        if self._normalize:  # the VQC sees normalized amplitudes
            feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)
        f = feats.shape[1]
        self._set_shapes(f, task.n_classes)
        h, n_out = self.hidden, self.n_out
        rng = np.random.default_rng(seed)
        if h == 0:
            params = {"w2": rng.normal(0, 1 / math.sqrt(f), (f, n_out)), "b2": np.zeros(n_out)}
        else:
            params = {"w1": rng.normal(0, math.sqrt(1 / f), (f, h)), "b1": np.zeros(h),
                      "w2": rng.normal(0, 1 / math.sqrt(h), (h, n_out)), "b2": np.zeros(n_out)}
        logits_fn = mlp_logits_fn(task.n_classes == 2, h > 0)

        c = self.config
        self.history: list[float] = []
        self.params = train_adam(logits_fn, params, feats, y, epochs=c.epochs, batch_size=c.batch_size,
                                 lr=c.lr, seed=seed, progress=progress, label=f"{self.name} train",
                                 history=self.history)
        self.network = twin_network(self.pre, self.params, normalize=self._normalize)

    @property
    def _normalize(self) -> bool:
        return self.config.encoding == "amplitude"

    def _set_shapes(self, n_features: int, n_classes: int) -> None:
        self.vqc_n_params = self._model(n_features, n_classes).n_params
        self.n_out = self._n_classes_out(n_classes)
        self.hidden = twin_hidden(self.vqc_n_params, n_features, self.n_out)

    # -- trained state ------------------------------------------------------------------
    def state_tensors(self) -> dict[str, np.ndarray]:
        if self.params is None:
            raise ConfigError(f"{self.name} has not been fitted", "call fit(task) first")
        return {**{k: np.array(v) for k, v in self.params.items()},
                **{f"pre.{k}": v for k, v in self.pre.state_tensors().items()}}

    def _load_state_tensors(self, tensors: dict, task: Task) -> None:
        self._check_state_keys(tensors, {"w1", "b1", "w2", "b2"})
        f = self._load_preprocessor(tensors, task)
        self._set_shapes(f, task.n_classes)
        h, n_out = self.hidden, self.n_out
        want = {"w2": (h or f, n_out), "b2": (n_out,)} | ({"w1": (f, h), "b1": (h,)} if h else {})
        got = {k: tuple(np.shape(tensors[k])) for k in want if k in tensors}
        if got != want or len(tensors) - sum(k.startswith("pre.") for k in tensors) != len(want):
            raise ConfigError(f"{self.name}: stored weights {got} do not match this config's twin "
                              f"{want}", "load the state saved with the same config")
        self.params = {k: np.asarray(tensors[k]) for k in want}
        self.history = []
        self.network = twin_network(self.pre, self.params, normalize=self._normalize)

    # -- inference: as GpuBaseline._predict counts gpu-mlp -------------------------------
    def _predict(self, x: np.ndarray) -> Prediction:
        if self.params is None:
            raise IncompatibleError(f"{self.name} has not been fitted", "call fit(task) first")
        net = self.network.eval()
        xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
        labels = []
        counter = ClassicalCounter(net, "fp32")
        bs = self.config.eval_batch_size
        with torch.inference_mode(), counter:
            for i in range(0, len(xt), bs):
                batch = xt[i:i + bs]
                counter.count_input(batch)
                scores = net(batch)
                count_decision(counter, scores)
                labels.append(decide(scores))
        return Prediction(torch.cat(labels).numpy(), counter.ledger(len(xt)),
                          metrics=counter.neurobench_metrics(len(xt)))
