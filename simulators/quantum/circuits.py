"""Variational quantum classifiers defined as qiskit circuits.

A model here says *what* is computed: a parameterized :class:`qiskit.QuantumCircuit`
with one set of :class:`~qiskit.circuit.Parameter` s for the encoded input angles and
one for the trainable weights, plus which qubits are read out as Pauli-Z expectations
and how those map to classes. How it runs (statevector, shots, noise, device basis) is
the simulator's business (:mod:`nonvon.simulators.quantum`).

Encodings (all take features that classical pre-processing has already reduced by
downsampling or PCA and scaled):

* ``"angle"``: one or two features per qubit as ``RY(x)`` then ``RZ(x)`` rotations
  (dense angle encoding, LaRose & Coyle, Phys. Rev. A 102, 032420, 2020), followed by
  ``layers`` hardware-efficient blocks.
* ``"reupload"``: data re-uploading (Pérez-Salinas et al., Quantum 4, 226, 2020): before
  every ansatz block the features are encoded again, each angle scaled by its own
  trainable weight, ``RY(w * x)``.
* ``"amplitude"``: the normalized feature vector becomes the amplitudes of
  ``ceil(log2 n_features)`` qubits, prepared by a tree of uniformly controlled
  ``RY`` rotations (Möttönen et al., Quantum Inf. Comput. 5, 467, 2005). The circuit's
  input parameters are the tree angles; :func:`amplitude_angles` computes them from the
  features (classical pre-processing).

The ansatz is hardware-efficient (Kandala et al., Nature 549, 242, 2017): per block an
``RY`` and an ``RZ`` on every qubit, then ``CZ`` between neighbours on a line (maps to a
heavy-hex or all-to-all device without SWAPs), or on a ring.

Readout (``readout=``):

* ``"class"``: two classes read ``<Z_0>`` (logit ``s <Z_0> + b``), ``C > 2`` classes read
  ``<Z_0> .. <Z_{C-1}>`` (logits ``s <Z_c> + b_c``, softmax), with ``s`` and ``b``
  trainable classical parameters counted in :attr:`VQCModel.n_params`.
* ``"all"``: every qubit's ``<Z_q>`` (one measurement of all qubits per shot gives them
  all), mapped to the logits by a trainable affine map ``W z + b``. A single readout
  qubit sees only its backward light cone: with CZs on a line, ``<Z_0>`` after ``L``
  blocks depends on qubits ``0 .. L - 1`` only, so on 8 qubits with 4 blocks half of the
  inputs never reach it. Reading every qubit removes that blind spot at no extra shots.

:func:`build_readout_qnn` builds the other family used for MNIST 3 vs 6 in the
literature: basis-encoded binary pixels on data qubits, each coupled to one readout
qubit by parameterized two-qubit gates (Farhi & Neven, arXiv:1802.06002, 2018; the
TensorFlow Quantum MNIST tutorial's model), read as one Pauli expectation.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from nonvon.errors import ConfigError

__all__ = ["VQCModel", "build_vqc", "build_readout_qnn", "amplitude_angles", "hardware_efficient_block",
           "ENCODINGS", "ENTANGLEMENTS", "READOUTS", "features_capacity"]

ENCODINGS = ("angle", "reupload", "amplitude")
ENTANGLEMENTS = ("linear", "ring")
READOUTS = ("class", "all")
_READOUT_MAPS = ("scale", "linear", "none")


@dataclasses.dataclass(frozen=True)
class VQCModel:
    """A variational classifier: the qiskit circuit plus how to read it.

    Attributes:
        circuit: parameterized circuit, no measurements.
        inputs: parameters bound to the (pre-processed) input angles, in feature order.
        weights: trainable circuit parameters, in the order of the weight vector.
        readout: qubits whose ``<Z>`` are read, one per class (one for two classes).
        n_classes: number of classes.
        encoding: one of :data:`ENCODINGS` (or ``"basis"`` for :func:`build_readout_qnn`).
        n_features: features the encoding takes.
        readout_map: how the read ``<Z>`` become logits: ``"scale"`` (``s z + b``, one
            shared scale, a bias per readout qubit), ``"linear"`` (``z W + b``, every
            readout qubit feeding every logit) or ``"none"`` (two classes only: the score
            is ``<Z>`` itself, no classical parameters).
    """

    circuit: object
    inputs: tuple
    weights: tuple
    readout: tuple[int, ...]
    n_classes: int
    encoding: str
    n_features: int
    readout_map: str = "scale"

    def __post_init__(self) -> None:
        if self.readout_map not in _READOUT_MAPS:
            raise ConfigError(f"unknown readout map {self.readout_map!r}", f"use one of {_READOUT_MAPS}")
        if self.readout_map == "none" and (self.n_classes != 2 or len(self.readout) != 1):
            raise ConfigError("readout_map='none' reads one qubit for two classes",
                              "use readout_map='scale' or 'linear' for more classes")

    @property
    def n_out(self) -> int:
        """Logits the readout map produces (one score for two classes)."""
        return 1 if self.n_classes == 2 else self.n_classes

    @property
    def n_qubits(self) -> int:
        return self.circuit.num_qubits

    @property
    def n_readout_params(self) -> int:
        """Classical readout parameters (see ``readout_map``)."""
        if self.readout_map == "none":
            return 0
        if self.readout_map == "linear":
            return (len(self.readout) + 1) * self.n_out
        return 1 + len(self.readout)

    def init_readout(self, rng: np.random.Generator, scale: float = 3.0) -> dict:
        """Initial classical readout parameters ``{"s": ..., "b": ...}`` (empty for ``"none"``).

        ``"scale"``: ``s = scale`` so the logits start with a useful range; ``"linear"``:
        ``W ~ N(0, scale^2 / k)`` over the ``k`` readout qubits, so each logit starts with
        the same spread as a single scaled ``<Z>``.
        """
        k = len(self.readout)
        if self.readout_map == "none":
            return {}
        if self.readout_map == "linear":
            return {"s": rng.normal(0.0, scale / math.sqrt(k), (k, self.n_out)), "b": np.zeros(self.n_out)}
        return {"s": np.array([scale]), "b": np.zeros(k)}

    @property
    def n_params(self) -> int:
        """All trainable parameters: circuit weights plus the classical readout."""
        return len(self.weights) + self.n_readout_params

    @property
    def scale_mask(self) -> np.ndarray:
        """True for weights that scale an input (re-uploading), False for rotation angles."""
        n, f = self.n_qubits, self.n_features
        if self.encoding != "reupload" or not self.weights:
            return np.zeros(len(self.weights), dtype=bool)
        block = np.r_[np.ones(f, dtype=bool), np.zeros(2 * n, dtype=bool)]
        return np.tile(block, len(self.weights) // len(block))

    def init_weights(self, rng: np.random.Generator, angle_std: float = 0.1) -> np.ndarray:
        """Initial weights: input scales at 1, rotation angles ~ N(0, angle_std).

        Small angles start the ansatz near the identity, which keeps gradients away
        from the barren-plateau regime of random deep circuits (McClean et al., Nat.
        Commun. 9, 4812, 2018; Grant et al., Quantum 3, 214, 2019).
        """
        w = rng.normal(0.0, angle_std, len(self.weights))
        w[self.scale_mask] = 1.0
        return w


def features_capacity(encoding: str, n_qubits: int) -> int:
    """How many features an encoding holds on ``n_qubits`` qubits."""
    if encoding == "amplitude":
        return 2 ** n_qubits
    return 2 * n_qubits  # RY and RZ per qubit


def _entangle(qc, entanglement: str) -> None:
    n = qc.num_qubits
    pairs = [(q, q + 1) for q in range(n - 1)]
    if entanglement == "ring" and n > 2:
        pairs.append((n - 1, 0))
    for a, b in pairs:
        qc.cz(a, b)


def hardware_efficient_block(qc, weights, entanglement: str = "linear") -> None:
    """Append one block: ``RY(w)`` and ``RZ(w)`` on each qubit, then a CZ entangler.

    Args:
        qc: the circuit to extend.
        weights: ``2 * qc.num_qubits`` parameters (RY angles then RZ angles).
        entanglement: ``"linear"`` (CZ between q, q+1) or ``"ring"`` (plus the wrap-around).
    """
    n = qc.num_qubits
    for q in range(n):
        qc.ry(weights[q], q)
    for q in range(n):
        qc.rz(weights[n + q], q)
    _entangle(qc, entanglement)


def _encode_angles(qc, angles) -> None:
    """Dense angle encoding: feature i on qubit i % n, RY for the first pass, RZ after."""
    n = qc.num_qubits
    for i, a in enumerate(angles):
        if i < n:
            qc.ry(a, i)
        else:
            qc.rz(a, i - n)


def _ucry(qc, angles: list, controls: list[int], target: int) -> None:
    """Uniformly controlled RY: ``RY(angles[v])`` on ``target`` when the controls read ``v``.

    ``v = sum_i bit(controls[i]) << i``. Decomposed recursively on the last control
    (Möttönen et al. 2005, Sec. 3): ``U(A) CX U(B) CX`` with ``A = (lo + hi) / 2`` and
    ``B = (lo - hi) / 2``, because ``X RY(B) X = RY(-B)`` when that control is 1.
    """
    if not controls:
        qc.ry(angles[0], target)
        return
    half = len(angles) // 2
    lo, hi = angles[:half], angles[half:]
    *rest, last = controls
    _ucry(qc, [(a + b) / 2 for a, b in zip(lo, hi, strict=True)], rest, target)
    qc.cx(last, target)
    _ucry(qc, [(a - b) / 2 for a, b in zip(lo, hi, strict=True)], rest, target)
    qc.cx(last, target)


def _amplitude_tree(qc, alphas) -> None:
    """Prepare ``sum_i a_i |i>`` from tree angles (see :func:`amplitude_angles`)."""
    n = qc.num_qubits
    k = 0
    for q in range(n - 1, -1, -1):
        m = 2 ** (n - 1 - q)  # one angle per value of the higher qubits q+1 .. n-1
        _ucry(qc, list(alphas[k:k + m]), list(range(q + 1, n)), q)
        k += m


def amplitude_angles(x: np.ndarray, n_qubits: int) -> np.ndarray:
    """Tree angles that prepare the amplitudes ``x / |x|`` (zero-padded to ``2**n``).

    Pure classical pre-processing for the ``"amplitude"`` encoding. Qubit order is
    qiskit's (little-endian: amplitude index ``i = sum_q b_q 2^q``). For qubit ``q`` and
    each value ``p`` of the higher qubits, ``alpha = 2 atan2(|x_{p,1}|, |x_{p,0}|)`` with
    the norms of the two halves; on qubit 0 the signed amplitudes are used, so real
    vectors of any sign are prepared exactly.

    Args:
        x: ``(N, F)`` real features, ``F <= 2**n_qubits``.
        n_qubits: qubits of the register.

    Returns:
        ``(N, 2**n_qubits - 1)`` angles in the order of the circuit's input parameters.

    Raises:
        ConfigError: more features than amplitudes, or an all-zero sample.
    """
    x = np.asarray(x, dtype=np.float64)
    dim = 2 ** n_qubits
    if x.ndim != 2 or x.shape[1] > dim:
        raise ConfigError(f"amplitude encoding on {n_qubits} qubits holds {dim} features; got "
                          f"shape {x.shape}", f"use at least {math.ceil(math.log2(max(x.shape[-1], 2)))} "
                          "qubits or fewer features (pca)")
    a = np.zeros((len(x), dim))
    a[:, :x.shape[1]] = x
    norms = np.linalg.norm(a, axis=1)
    if np.any(norms == 0):
        raise ConfigError("amplitude encoding got an all-zero feature vector",
                          "shift or rescale the features so no sample is all zeros")
    a /= norms[:, None]
    out = []
    for q in range(n_qubits - 1, -1, -1):
        blocks = a.reshape(len(a), 2 ** (n_qubits - 1 - q), 2, 2 ** q)  # (N, p, b_q, lower)
        if q == 0:
            out.append(2 * np.arctan2(blocks[:, :, 1, 0], blocks[:, :, 0, 0]))
        else:
            nrm = np.sqrt((blocks ** 2).sum(axis=3))
            out.append(2 * np.arctan2(nrm[:, :, 1], nrm[:, :, 0]))
    return np.concatenate(out, axis=1)


def build_vqc(n_qubits: int, n_features: int, n_classes: int, *, layers: int = 2,
              encoding: str = "angle", entanglement: str = "linear", readout: str = "class") -> VQCModel:
    """Build a variational classifier circuit.

    Args:
        n_qubits: register size.
        n_features: pre-processed features per sample.
        n_classes: 2 (one readout qubit) or up to ``n_qubits`` (one readout qubit each).
        layers: hardware-efficient blocks (re-uploading: encoding + block, repeated).
        encoding: one of :data:`ENCODINGS`.
        entanglement: one of :data:`ENTANGLEMENTS`.
        readout: one of :data:`READOUTS` (see the module docstring).

    Returns:
        A :class:`VQCModel`.

    Raises:
        ConfigError: an unknown encoding, features that do not fit the encoding, or
            more classes than readout qubits.

    Example:
        >>> m = build_vqc(4, 8, 2, layers=2)
        >>> m.circuit.num_qubits, len(m.inputs), len(m.weights), m.n_params
        (4, 8, 16, 18)
    """
    from qiskit.circuit import ParameterVector, QuantumCircuit

    if encoding not in ENCODINGS:
        raise ConfigError(f"unknown encoding {encoding!r}", f"use one of {ENCODINGS}")
    if entanglement not in ENTANGLEMENTS:
        raise ConfigError(f"unknown entanglement {entanglement!r}", f"use one of {ENTANGLEMENTS}")
    if readout not in READOUTS:
        raise ConfigError(f"unknown readout {readout!r}", f"use one of {READOUTS}")
    for name, v in (("n_qubits", n_qubits), ("n_features", n_features), ("layers", layers)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"{name}={v!r} must be a positive integer")
    cap = features_capacity(encoding, n_qubits)
    if n_features > cap:
        need = (math.ceil(math.log2(n_features)) if encoding == "amplitude"
                else math.ceil(n_features / 2))
        raise ConfigError(f"{n_features} features do not fit the {encoding!r} encoding on "
                          f"{n_qubits} qubits (it holds {cap})",
                          f"use n_qubits >= {need}, or reduce the features (pca / downsample)")
    if n_classes < 2 or (n_classes > 2 and n_classes > n_qubits):
        raise ConfigError(f"{n_classes} classes need {n_classes} readout qubits; the circuit "
                          f"has {n_qubits}", f"use n_qubits >= {n_classes}")
    qc = QuantumCircuit(n_qubits, name=f"vqc-{encoding}")
    w = ParameterVector("w", 2 * n_qubits * layers + (n_features * layers if encoding == "reupload" else 0))
    if encoding == "amplitude":
        x = ParameterVector("x", 2 ** n_qubits - 1)
        _amplitude_tree(qc, list(x))
    else:
        x = ParameterVector("x", n_features)
    k = 0
    for layer in range(layers):
        if encoding == "angle" and layer == 0:
            _encode_angles(qc, list(x))
        elif encoding == "reupload":
            scales = w[k:k + n_features]
            k += n_features
            _encode_angles(qc, [s * xi for s, xi in zip(scales, x, strict=True)])
        hardware_efficient_block(qc, w[k:k + 2 * n_qubits], entanglement)
        k += 2 * n_qubits
    if readout == "all":
        return VQCModel(qc, tuple(x), tuple(w), tuple(range(n_qubits)), n_classes, encoding, n_features,
                        readout_map="linear")
    qubits = (0,) if n_classes == 2 else tuple(range(n_classes))
    return VQCModel(qc, tuple(x), tuple(w), qubits, n_classes, encoding, n_features)


_COUPLINGS = {"xx": "rxx", "zz": "rzz", "zx": "rzx"}


def build_readout_qnn(n_data: int, couplings: tuple[str, ...] = ("xx", "zz"), *,
                      style: str = "tfq") -> VQCModel:
    """A readout-qubit QNN for binary pixels (Farhi & Neven 2018; TensorFlow Quantum tutorial).

    Qubits ``0 .. n_data - 1`` hold the pixels in the computational basis (``RX(pi x)``
    with ``x`` in {0, 1}: an X gate where the pixel is set, up to a global phase); qubit
    ``n_data`` is the readout. Each entry of ``couplings`` is a layer of one
    parameterized two-qubit gate between every data qubit and the readout.

    Args:
        n_data: data qubits (16 for a 4x4 image).
        couplings: layer gates, from ``"xx"`` (``RXX``), ``"zz"`` (``RZZ``) and ``"zx"``
            (``RZX``, Z on the data qubit, X on the readout).
        style: ``"tfq"``: the tutorial's model (readout prepared by X then H, H before
            measuring Z; gate ``G**t`` as ``R_G(pi t)`` with the exponent ``t`` trained);
            ``"farhi"``: Farhi & Neven's form (readout prepared in ``|1>``, gates
            ``exp(-i theta/2 Z_j X_r)`` and ``exp(-i theta/2 X_j X_r)`` with ``theta``
            trained, ``Y`` of the readout measured, as ``Z`` after ``S^dagger`` and ``H``).

    Returns:
        A :class:`VQCModel` with ``encoding="basis"`` and ``readout_map="none"``: the
        score is the readout's expectation, positive for the first class.

    Raises:
        ConfigError: an unknown coupling or style, or no data qubits.
    """
    from qiskit.circuit import ParameterVector, QuantumCircuit

    if isinstance(n_data, bool) or not isinstance(n_data, (int, np.integer)) or n_data < 1:
        raise ConfigError(f"n_data={n_data!r} must be a positive integer", "e.g. 16 for a 4x4 image")
    bad = [c for c in couplings if c not in _COUPLINGS]
    if bad or not couplings:
        raise ConfigError(f"unknown couplings {bad or couplings!r}",
                          f"use a sequence of {sorted(_COUPLINGS)}")
    if style not in ("tfq", "farhi"):
        raise ConfigError(f"unknown style {style!r}", "use 'tfq' or 'farhi'")
    r = n_data
    qc = QuantumCircuit(n_data + 1, name=f"qnn-{style}")
    x = ParameterVector("x", n_data)
    w = ParameterVector("w", n_data * len(couplings))
    for j in range(n_data):
        qc.rx(math.pi * x[j], j)
    qc.x(r)
    if style == "tfq":
        qc.h(r)
    for layer, name in enumerate(couplings):
        gate = getattr(qc, _COUPLINGS[name])
        for j in range(n_data):
            t = w[layer * n_data + j]
            gate(math.pi * t if style == "tfq" else t, j, r)
    if style == "tfq":
        qc.h(r)
    else:
        qc.sdg(r)
        qc.h(r)
    return VQCModel(qc, tuple(x), tuple(w), (r,), 2, "basis", n_data, readout_map="none")
