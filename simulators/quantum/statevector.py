"""A compiled, batched statevector simulator for qiskit circuits, in JAX.

:func:`translate` turns a parameterized :class:`qiskit.QuantumCircuit` into a
:class:`Program`: a flat tuple of gate ops whose angles are polynomials in the
circuit's parameters. :func:`compile_program` traces the program once into
``jax.jit`` functions that take a ``(batch, n_symbols)`` array of parameter values
(each sample its own inputs, the weights broadcast) and return statevectors,
probabilities or Pauli-Z expectations for the whole batch in one call. Gradients with
respect to any parameter are exact, by reverse-mode autodiff through the gate
sequence.

Conventions follow qiskit exactly: qubit ``q`` is bit ``q`` of the amplitude index
(little-endian), and a two-qubit gate on ``[a, b]`` indexes its matrix by
``2 * bit(b) + bit(a)``. ``tests/test_quantum.py`` checks every supported gate against
:class:`qiskit.quantum_info.Statevector` on random circuits to 1e-6, and gradients
against the parameter-shift rule (Schuld et al., Phys. Rev. A 99, 032331, 2019).

Precision: amplitudes are complex64 by default. Against qiskit's complex128
``Statevector``, 1 - fidelity is about 1e-6 at depth 20 and 1e-5 at depth 300 on 8 qubits
(layers of RY, RZ on every qubit, a CZ ring, an RXX and an H; measured on a CPU,
December 2026), as large as the norm error |1 - <psi|psi>|: the state drifts off the unit
sphere by about 4e-8 per layer, and its direction stays exact to far better.
``tests/test_quantum_precision.py`` prints it and bounds it.
``compile_program(..., dtype="complex128")`` (the VQC's ``state_dtype="complex128"``)
computes in complex128 with float64 angles, where states match qiskit to 1e-10 and stay
normalized to 1e-12.

How gates are applied: runs of one-qubit gates on a qubit (everything between two
multi-qubit gates touching it) are fused into one 2x2 matrix per sample
(:func:`fuse_ops`). All those matrices are built at once, vectorized over gates of the
same name, then multiplied position by position (``_fused_matrices``), so the traced
graph stays small and XLA's compile time stays flat as circuits grow; each fused run is
then one batched contraction over the state viewed as ``(B, hi, 2, lo)``. Multi-qubit
gates contract their matrix with the qubits' axes; diagonal ones (CZ, RZZ, CP) multiply
the state by a broadcast phase (timings: docs/results/vqc-mnist/README.md;
``tests/test_quantum_readout.py`` checks fused against gate-by-gate).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import numpy as np

from nonvon.errors import ConfigError, IncompatibleError

__all__ = ["Op", "Program", "translate", "compile_program", "CompiledProgram", "SUPPORTED_GATES",
           "MAX_QUBITS", "STATE_DTYPES", "statevector_bytes", "check_qubits"]

# Amplitude dtype -> the real dtype of the angles. complex64 is the default (the error it
# leaves, measured against qiskit's complex128 Statevector, is in the module docstring);
# complex128 is the reference precision (JAX's x64 mode, switched on only around its calls).
STATE_DTYPES = {"complex64": "float32", "complex128": "float64"}

# 2**24 complex64 amplitudes = 128 MiB per sample; training keeps one state per gate for
# the backward pass, so larger registers do not fit a batch in memory on one machine.
MAX_QUBITS = 24
BYTES_PER_AMPLITUDE = 8  # complex64

# name -> (qubits, angles); anything else in a circuit is an error naming the gate.
SUPPORTED_GATES: dict[str, tuple[int, int]] = {
    "id": (1, 0), "x": (1, 0), "y": (1, 0), "z": (1, 0), "h": (1, 0), "s": (1, 0), "sdg": (1, 0),
    "t": (1, 0), "tdg": (1, 0), "sx": (1, 0), "sxdg": (1, 0),
    "rx": (1, 1), "ry": (1, 1), "rz": (1, 1), "p": (1, 1), "r": (1, 2), "u": (1, 3),
    "cx": (2, 0), "cy": (2, 0), "cz": (2, 0), "ch": (2, 0), "swap": (2, 0), "iswap": (2, 0),
    "ecr": (2, 0), "crx": (2, 1), "cry": (2, 1), "crz": (2, 1), "cp": (2, 1),
    "rxx": (2, 1), "ryy": (2, 1), "rzz": (2, 1), "rzx": (2, 1),
}
_IGNORED = {"barrier"}  # no effect on the state


def statevector_bytes(n_qubits: int) -> int:
    """Bytes of one complex64 statevector of ``n_qubits`` qubits."""
    return BYTES_PER_AMPLITUDE * 2 ** n_qubits


def _fmt_bytes(b: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if b < 1024 or unit == "PiB":
            return f"{b:.1f} {unit}"
        b /= 1024
    return f"{b:.1f} PiB"


def check_qubits(n_qubits: int, limit: int = MAX_QUBITS, batch: int = 1) -> None:
    """Raise a :class:`ConfigError` that states the memory ``n_qubits`` would need."""
    if n_qubits > limit:
        per = statevector_bytes(n_qubits)
        raise ConfigError(
            f"{n_qubits} qubits exceed the statevector simulator's limit of {limit}: one "
            f"complex64 statevector needs 2^{n_qubits} x 8 B = {_fmt_bytes(per)}, a batch of "
            f"{batch} {_fmt_bytes(per * batch)}, and exact gradients keep one per gate",
            f"use at most {limit} qubits (fewer features, or the amplitude encoding)")


# -- programs -------------------------------------------------------------------------
Poly = tuple[tuple[float, tuple[int, ...]], ...]  # sum of coef * prod(values[idx])


@dataclasses.dataclass(frozen=True)
class Op:
    """One gate: qiskit name, qubits, and each angle as a polynomial in the symbols."""

    name: str
    qubits: tuple[int, ...]
    angles: tuple[Poly, ...] = ()


@dataclasses.dataclass(frozen=True)
class Program:
    """A translated circuit: ``n_qubits``, the gate ops, and the symbol names in order."""

    n_qubits: int
    ops: tuple[Op, ...]
    symbols: tuple[str, ...]

    def count(self) -> dict[str, int]:
        """Gates by name (what one execution of the program applies)."""
        out: dict[str, int] = {}
        for op in self.ops:
            out[op.name] = out.get(op.name, 0) + 1
        return out


def _to_poly(value, index: dict[str, int], where: str) -> Poly:
    """A gate parameter (number or ParameterExpression) as a polynomial in the symbols."""
    from qiskit.circuit import ParameterExpression

    if not isinstance(value, ParameterExpression):
        return ((float(value), ()),)
    if not value.parameters:
        return ((float(value), ()),)
    import sympy

    expr = value.sympify()
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    missing = [s.name for s in syms if s.name not in index]
    if missing:
        raise ConfigError(f"{where}: parameters {missing} are neither inputs nor weights",
                          "pass every circuit parameter in `symbols`")
    try:
        poly = sympy.Poly(expr, *syms)
    except sympy.PolynomialError:
        raise IncompatibleError(f"{where}: angle {value} is not a polynomial in the parameters",
                                "compute non-polynomial functions of the inputs classically and "
                                "feed the result as a parameter") from None
    terms = []
    for powers, coef in poly.terms():
        idx = tuple(index[s.name] for s, p in zip(syms, powers, strict=True) for _ in range(p))
        c = complex(coef)
        if abs(c.imag) > 1e-12:
            raise IncompatibleError(f"{where}: angle {value} has a complex coefficient",
                                    "use real-valued parameter expressions")
        terms.append((c.real, idx))
    return tuple(terms)


def translate(circuit, symbols: Sequence | None = None, *, max_qubits: int = MAX_QUBITS) -> Program:
    """Translate a qiskit circuit into a :class:`Program` for the JAX simulator.

    Args:
        circuit: a :class:`qiskit.QuantumCircuit` of supported gates (see
            :data:`SUPPORTED_GATES`); barriers are ignored.
        symbols: the circuit's parameters in the order of the value vector (default:
            ``circuit.parameters``, qiskit's sorted order).
        max_qubits: refuse larger registers (with the memory they would need).

    Returns:
        The program. Its ``symbols`` are the parameter names in value order.

    Raises:
        IncompatibleError: a gate the simulator does not implement (measurements,
            resets, classical control, custom gates), with how to decompose it.
        ConfigError: too many qubits, or a parameter missing from ``symbols``.
    """
    check_qubits(circuit.num_qubits, max_qubits)
    symbols = tuple(circuit.parameters) if symbols is None else tuple(symbols)
    names = tuple(p.name for p in symbols)
    if len(set(names)) != len(names):
        raise ConfigError("duplicate parameter names in symbols", "give each parameter once")
    index = {n: i for i, n in enumerate(names)}
    ops = []
    for pos, inst in enumerate(circuit.data):
        op = inst.operation
        name = op.name
        if name in _IGNORED:
            continue
        if name not in SUPPORTED_GATES:
            raise IncompatibleError(
                f"gate {name!r} (instruction {pos} of circuit {circuit.name!r}) is not supported "
                f"by the statevector simulator",
                f"decompose it first, e.g. transpile(circuit, basis_gates=['rz', 'sx', 'x', 'cz']); "
                f"supported: {', '.join(sorted(SUPPORTED_GATES))}")
        nq, na = SUPPORTED_GATES[name]
        if getattr(op, "condition", None) is not None:
            raise IncompatibleError(f"gate {name!r} at {pos} is classically conditioned",
                                    "the statevector simulator runs unitary circuits only")
        qubits = tuple(circuit.find_bit(q).index for q in inst.qubits)
        if len(qubits) != nq or len(op.params) != na:
            raise IncompatibleError(f"gate {name!r} at {pos} has {len(qubits)} qubits and "
                                    f"{len(op.params)} parameters, expected {nq} and {na}")
        angles = tuple(_to_poly(p, index, f"gate {name!r} at {pos}") for p in op.params)
        ops.append(Op(name, qubits, angles))
    return Program(circuit.num_qubits, tuple(ops), names)


# -- gate matrices (qiskit conventions) -------------------------------------------------
_SQ2 = 1 / math.sqrt(2)
_FIXED_1Q = {
    "id": np.eye(2), "x": np.array([[0, 1], [1, 0]]), "y": np.array([[0, -1j], [1j, 0]]),
    "z": np.diag([1, -1]), "h": np.array([[1, 1], [1, -1]]) * _SQ2, "s": np.diag([1, 1j]),
    "sdg": np.diag([1, -1j]), "t": np.diag([1, np.exp(1j * np.pi / 4)]),
    "tdg": np.diag([1, np.exp(-1j * np.pi / 4)]),
    "sx": np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]]) / 2,
    "sxdg": np.array([[1 - 1j, 1 + 1j], [1 + 1j, 1 - 1j]]) / 2,
}


def _controlled(u: np.ndarray) -> np.ndarray:
    """Controlled-U on [control, target] in qiskit's index order 2*b_target + b_control."""
    m = np.eye(4, dtype=complex)
    m[np.ix_([1, 3], [1, 3])] = u
    return m


_FIXED_2Q = {
    "cx": _controlled(_FIXED_1Q["x"]), "cy": _controlled(_FIXED_1Q["y"]),
    "cz": np.diag([1, 1, 1, -1]), "ch": _controlled(_FIXED_1Q["h"]),
    "swap": np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]]),
    "iswap": np.array([[1, 0, 0, 0], [0, 0, 1j, 0], [0, 1j, 0, 0], [0, 0, 0, 1]]),
    "ecr": np.array([[0, 1, 0, 1j], [1, 0, -1j, 0], [0, 1j, 0, 1], [-1j, 0, 1, 0]]) * _SQ2,
}


def _param_matrix(name: str, a: list, jnp=None):
    """Entries of a parameterized gate as a nested list (arrays, or the int 0).

    Static zeros are the Python int 0, so the applier skips them. ``jnp`` is the array
    module (``jax.numpy`` for traced angles, ``numpy`` for constant ones, in float64).
    """
    if jnp is None:
        import jax.numpy as jnp

    def ex(t):
        return jnp.exp(1j * t)

    if name in ("rx", "ry", "rz", "crx", "cry", "crz", "rxx", "ryy", "rzz", "rzx"):
        c, s = jnp.cos(a[0] / 2), jnp.sin(a[0] / 2)
        mis = -1j * s
    if name == "rx":
        return [[c, mis], [mis, c]]
    if name == "ry":
        return [[c, -s], [s, c]]
    if name == "rz":
        return [[ex(-a[0] / 2), 0], [0, ex(a[0] / 2)]]
    if name == "p":
        return [[1, 0], [0, ex(a[0])]]
    if name == "r":  # R(theta, phi) = exp(-i theta/2 (cos(phi) X + sin(phi) Y))
        c, s = jnp.cos(a[0] / 2), jnp.sin(a[0] / 2)
        return [[c, -1j * ex(-a[1]) * s], [-1j * ex(a[1]) * s, c]]
    if name == "u":  # U(theta, phi, lambda)
        c, s = jnp.cos(a[0] / 2), jnp.sin(a[0] / 2)
        return [[c, -ex(a[2]) * s], [ex(a[1]) * s, ex(a[1] + a[2]) * c]]
    if name in ("crx", "cry", "crz", "cp"):
        inner = _param_matrix(name[1:], a, jnp)
        m = [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
        for i, r in enumerate((1, 3)):
            for j, col in enumerate((1, 3)):
                m[r][col] = inner[i][j]
        return m
    if name == "rxx":
        return [[c, 0, 0, mis], [0, c, mis, 0], [0, mis, c, 0], [mis, 0, 0, c]]
    if name == "ryy":
        pis = 1j * s
        return [[c, 0, 0, pis], [0, c, mis, 0], [0, mis, c, 0], [pis, 0, 0, c]]
    if name == "rzz":
        e0, e1 = ex(-a[0] / 2), ex(a[0] / 2)
        return [[e0, 0, 0, 0], [0, e1, 0, 0], [0, 0, e1, 0], [0, 0, 0, e0]]
    if name == "rzx":  # exp(-i theta/2 Z_a X_b) on [a, b]: index 2*b_b + b_a
        pis = 1j * s
        return [[c, 0, mis, 0], [0, c, 0, pis], [mis, 0, c, 0], [0, pis, 0, c]]
    raise AssertionError(name)  # translate() admitted only SUPPORTED_GATES


def _entries(m) -> list:
    """A constant matrix as nested lists with exact zeros and ones kept as ints."""
    out = []
    for row in np.asarray(m, dtype=complex):
        out.append([0 if v == 0 else (1 if v == 1 else complex(v)) for v in row])
    return out


# -- applying gates -------------------------------------------------------------------
# The state is a (B, 2, ..., 2) tensor; axis 1 + k holds qubit n - 1 - k, so reshaping it to
# (B, 2**n) gives qiskit's little-endian amplitude order. Diagonal gates multiply the state
# by a broadcast phase; the others contract the gate's matrix with the qubits' axes
# (einsum). A contraction is a fusion boundary for XLA: fusing long chains of elementwise
# gates, each reading the state more than once, blows up compile time exponentially.
def _is_const(v) -> bool:
    return isinstance(v, (int, float, complex))


def _complex_of(x) -> str:
    """The amplitude dtype that goes with an array of angles or amplitudes ``x``."""
    return "complex128" if str(x.dtype) in ("float64", "complex128") else "complex64"


def _as_array(m: list, batch: int | None, cdtype: str = "complex64"):
    """Nested entries -> (d, d) constant or (B, d, d) per-sample ``cdtype`` array."""
    import jax.numpy as jnp

    if all(_is_const(v) for row in m for v in row):
        return np.array(m, dtype=cdtype)
    rows = [jnp.stack([jnp.broadcast_to(jnp.asarray(v, dtype=cdtype), (batch,)) for v in row], -1)
            for row in m]
    return jnp.stack(rows, -2)


def _apply_matrix(psi, m: list, qubits: tuple[int, ...], n: int):
    import jax.numpy as jnp

    batch = psi.shape[0]
    d = len(m)
    axes = [1 + (n - 1 - q) for q in reversed(qubits)]  # qiskit: last qubit is the high bit
    if all(_is_const(m[i][j]) and m[i][j] == 0 for i in range(d) for j in range(d) if i != j):
        k = len(qubits)
        diag = _as_array([[m[i][i] for i in range(d)]], batch, _complex_of(psi))  # (1, d) / (B, 1, d)
        per_sample = diag.ndim == 3
        diag = diag.reshape(((batch,) if per_sample else ()) + (2,) * k)  # dims follow `axes`
        order = [int(i) for i in np.argsort(axes)]  # to increasing state axes, then broadcast
        diag = diag.transpose(([0] + [1 + i for i in order]) if per_sample else order)
        shape = [1] * psi.ndim
        for a in axes:
            shape[a] = 2
        if per_sample:
            shape[0] = batch
        return psi * jnp.asarray(diag).reshape(shape)
    u = _as_array(m, batch, _complex_of(psi))
    k = len(qubits)
    moved = jnp.moveaxis(psi, axes, list(range(psi.ndim - k, psi.ndim)))
    ins, outs = "jl"[:k], "ik"[:k]
    if u.ndim == 3:
        u = u.reshape((batch,) + (2,) * (2 * k))
        out = jnp.einsum(f"b{outs}{ins},b...{ins}->b...{outs}", u, moved)
    else:
        out = jnp.einsum(f"{outs}{ins},b...{ins}->b...{outs}", u.reshape((2,) * (2 * k)), moved)
    return jnp.moveaxis(out, list(range(psi.ndim - k, psi.ndim)), axes)


def _eval_poly(poly: Poly, values):
    """Evaluate a polynomial on ``values`` (B, S) -> (B,), or a Python float if constant."""
    const = sum(c for c, idx in poly if not idx)
    terms = [(c, idx) for c, idx in poly if idx]
    if not terms:
        return float(const)
    acc = None
    for c, idx in terms:
        t = values[:, idx[0]]
        for i in idx[1:]:
            t = t * values[:, i]
        t = t * c if c != 1.0 else t
        acc = t if acc is None else acc + t
    return acc + const if const else acc


def _op_entries(op: Op, values) -> list:
    """The gate's matrix as nested entries (constants, or (B,) arrays for per-sample angles)."""
    if op.angles:
        angles = [_eval_poly(p, values) for p in op.angles]
        if all(isinstance(a, float) for a in angles):
            return _const_matrix(op.name, tuple(angles))
        return _param_matrix(op.name, angles)
    return _entries(_FIXED_1Q[op.name] if op.name in _FIXED_1Q else _FIXED_2Q[op.name])


def _apply_op(psi, op: Op, values, n: int):
    return _apply_matrix(psi, _op_entries(op, values), op.qubits, n)


@dataclasses.dataclass(frozen=True)
class _Fused:
    """Consecutive one-qubit gates on one qubit, applied as their product (one pass).

    ``index`` is the step's slot in the stacked fused matrices (:func:`_fused_matrices`).
    """

    qubit: int
    ops: tuple[Op, ...]
    index: int


def fuse_ops(ops: Sequence[Op]) -> tuple:
    """Group a gate sequence for execution: runs of one-qubit gates on a qubit become one step.

    A run on qubit ``q`` collects every one-qubit gate on ``q`` until a multi-qubit gate
    touches ``q``; gates on other qubits commute with it, so applying the run's product
    there is exact. A hardware-efficient layer (``RY RZ`` encoding, ``RY RZ`` weights,
    then CZs) then makes one pass over the state per qubit instead of four, the idea of
    gate fusion in state-vector simulators such as qiskit-aer.

    Returns:
        A tuple of :class:`Op` (multi-qubit gates, unchanged) and :class:`_Fused` steps,
        equivalent to ``ops`` in this order.
    """
    steps: list = []
    pending: dict[int, list[Op]] = {}
    count = 0

    def flush(q):
        nonlocal count
        steps.append(_Fused(q, tuple(pending.pop(q)), count))
        count += 1

    for op in ops:
        if len(op.qubits) == 1:
            pending.setdefault(op.qubits[0], []).append(op)
            continue
        for q in op.qubits:
            if q in pending:
                flush(q)
        steps.append(op)
    for q in list(pending):
        flush(q)
    return tuple(steps)


def _eval_angles(polys: Sequence[Poly], values):
    """Every polynomial at once: ``(B, S)`` values -> ``(B, len(polys))`` angles (their dtype).

    Terms are grouped by degree; each group is one gather, one product and one
    scatter-add, so the traced graph does not grow with the number of gates.
    """
    import jax.numpy as jnp

    b = values.shape[0]
    real = str(values.dtype)
    const = np.zeros(len(polys), dtype=real)
    by_degree: dict[int, tuple[list, list, list]] = {}
    for a, poly in enumerate(polys):
        for c, idx in poly:
            if not idx:
                const[a] += c
            else:
                rows = by_degree.setdefault(len(idx), ([], [], []))
                rows[0].append(idx)
                rows[1].append(c)
                rows[2].append(a)
    out = jnp.broadcast_to(jnp.asarray(const), (b, len(polys)))
    for idx, coef, target in by_degree.values():
        idx = np.asarray(idx, dtype=np.int32)                       # (T, d)
        term = values[:, idx[:, 0]]
        for k in range(1, idx.shape[1]):
            term = term * values[:, idx[:, k]]
        out = out.at[:, np.asarray(target)].add(term * np.asarray(coef, dtype=real))
    return out


def _stack_entries(m: list, shape: tuple, cdtype: str = "complex64") -> object:
    """Nested 2x2 entries (constants or arrays of ``shape``) -> ``shape + (2, 2)`` ``cdtype``."""
    import jax.numpy as jnp

    rows = [jnp.stack([jnp.broadcast_to(jnp.asarray(v, dtype=cdtype), shape) for v in row], -1)
            for row in m]
    return jnp.stack(rows, -2)


def _fused_matrices(fused: Sequence[_Fused], values):
    """The product matrix of every fused step: ``(B, len(fused), 2, 2)``, complex64 (or
    complex128 for float64 ``values``).

    All one-qubit gates are built together: constant gates as one NumPy block, the
    parameterized ones grouped by gate name (one vectorized matrix per name over all its
    angles); then run position ``t`` of every step is multiplied in at once (batched
    2x2 matmuls, identity where a run is shorter). The graph is a few dozen ops whatever
    the circuit's size, which keeps XLA's compile time flat.
    """
    import jax.numpy as jnp

    b = values.shape[0]
    cdtype = _complex_of(values)
    const_mats: list[np.ndarray] = [np.eye(2, dtype=cdtype)]  # slot 0: identity padding
    groups: dict[str, list[int]] = {}   # name -> indices of its parameterized ops in `param_ops`
    param_ops: list[Op] = []
    slot_of: list[list[tuple[str, int]]] = []
    for st in fused:
        slots = []
        for op in st.ops:
            angles = [_eval_poly(p, None) if all(not i for _, i in p) else None for p in op.angles]
            if op.angles and any(a is None for a in angles):
                groups.setdefault(op.name, []).append(len(param_ops))
                slots.append(("p", len(param_ops)))
                param_ops.append(op)
            else:
                m = (_const_matrix(op.name, tuple(angles)) if op.angles else _entries(_FIXED_1Q[op.name]))
                slots.append(("c", len(const_mats)))
                const_mats.append(np.array(m, dtype=cdtype))
        slot_of.append(slots)
    blocks = [jnp.broadcast_to(jnp.asarray(np.stack(const_mats)), (b, len(const_mats), 2, 2))]
    position = {}  # ("c", i) / ("p", j) -> index in the concatenated gate array
    for i in range(len(const_mats)):
        position[("c", i)] = i
    offset = len(const_mats)
    if param_ops:
        polys = [p for op in param_ops for p in op.angles]
        angles = _eval_angles(polys, values)
        first, k = [], 0
        for op in param_ops:
            first.append(k)
            k += len(op.angles)
        for name, members in groups.items():
            na = len(param_ops[members[0]].angles)
            cols = [angles[:, [first[j] + t for j in members]] for t in range(na)]  # (B, G) each
            blocks.append(_stack_entries(_param_matrix(name, cols), (b, len(members)), cdtype))
            for r, j in enumerate(members):
                position[("p", j)] = offset + r
            offset += len(members)
    gates = jnp.concatenate(blocks, axis=1)                     # (B, n_gates, 2, 2)
    longest = max(len(s) for s in slot_of)
    u = None
    for t in range(longest):
        idx = np.array([position[s[t]] if t < len(s) else 0 for s in slot_of], dtype=np.int32)
        g = gates[:, idx]
        u = g if u is None else jnp.matmul(g, u)
    return u


def _apply_fused(psi, u, q: int, n: int):
    """Apply per-sample 2x2 matrices ``u`` ``(B, 2, 2)`` to qubit ``q`` of the state.

    The state is viewed as ``(B, hi, 2, lo)`` with ``lo = 2**q`` (a free reshape), so one
    batched contraction does it without moving axes.
    """
    import jax.numpy as jnp

    b = psi.shape[0]
    v = psi.reshape(b, 2 ** (n - 1 - q), 2, 2 ** q)
    return jnp.einsum("bij,bhjl->bhil", u, v).reshape(psi.shape)


def _step_size(step) -> int:
    return len(step.ops) if isinstance(step, _Fused) else 1


@functools.lru_cache(maxsize=4096)
def _const_matrix(name: str, angles: tuple[float, ...]) -> list:
    """A gate with constant angles, evaluated once in float64 NumPy."""
    m = _param_matrix(name, [np.float64(a) for a in angles], np)
    return _entries(np.array([[complex(v) for v in row] for row in m]))


# -- compiled programs ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CompiledProgram:
    """jit-compiled functions of one program; all take ``values`` of shape (B, S)."""

    program: Program
    state: object         # values -> (B, 2**n) complex64 (complex128 with dtype="complex128")
    probabilities: object  # values -> (B, 2**n) float32 (float64)
    expect_z: object       # (values, readout qubits as a static tuple) -> (B, k)

    def __call__(self, values):
        return self.state(values)


def _run(program: Program, values, segment: int | None, fuse: bool = True):
    """The final states ``(B, 2**n)`` for parameter values ``(B, S)``: complex64 for float32
    ``values``, complex128 for float64 ones (under JAX's x64 mode).

    Args:
        segment: rematerialize every ``segment`` gates in the backward pass.
        fuse: apply runs of one-qubit gates as one product (:func:`fuse_ops`); ``False``
            applies the gates one by one (the reference the tests compare against).
    """
    import jax
    import jax.numpy as jnp

    n = program.n_qubits
    b = values.shape[0]
    psi = jnp.zeros((b,) + (2,) * n, dtype=_complex_of(values)).at[(slice(None),) + (0,) * n].set(1.0)
    steps = fuse_ops(program.ops) if fuse else program.ops
    fused = [st for st in steps if isinstance(st, _Fused)]
    u = _fused_matrices(fused, values) if fused else None

    def apply(p, st, v, u):
        if isinstance(st, _Fused):
            return _apply_fused(p, u[:, st.index], st.qubit, n)
        return _apply_op(p, st, v, n)

    if not segment:
        for st in steps:
            psi = apply(psi, st, values, u)
        return psi.reshape(b, 2 ** n)
    chunks, cur, size = [], [], 0
    for st in steps:
        cur.append(st)
        size += _step_size(st)
        if size >= segment:
            chunks.append(cur)
            cur, size = [], 0
    if cur:
        chunks.append(cur)
    for chunk in chunks:

        def seg(p, v, u, chunk=chunk):
            for st in chunk:
                p = apply(p, st, v, u)
            return p

        psi = jax.checkpoint(seg)(psi, values, u)
    return psi.reshape(b, 2 ** n)


def z_from_probabilities(probs, readout: tuple[int, ...], n: int):
    """<Z_q> = P(q=0) - P(q=1) for each readout qubit, from (B, 2**n) probabilities."""
    import jax.numpy as jnp

    b = probs.shape[0]
    cols = []
    for q in readout:
        v = probs.reshape(b, 2 ** (n - 1 - q), 2, 2 ** q).sum(axis=(1, 3))
        cols.append(v[:, 0] - v[:, 1])
    return jnp.stack(cols, axis=1)


@functools.lru_cache(maxsize=64)
def compile_program(program: Program, segment: int | None = None,
                    dtype: str = "complex64") -> CompiledProgram:
    """Trace ``program`` into jit-compiled batched functions (cached per program).

    Args:
        program: from :func:`translate`.
        segment: rematerialize every ``segment`` gates in the backward pass
            (``jax.checkpoint``), trading about one extra forward pass for memory; ``None``
            keeps every intermediate state.
        dtype: amplitude dtype, ``"complex64"`` (default) or ``"complex128"`` (the reference
            precision, with float64 angles: twice the memory, several times the time on a
            CPU). JAX's x64 mode is switched on around each call, not for the process.
    """
    import jax
    import jax.numpy as jnp

    if dtype not in STATE_DTYPES:
        raise ConfigError(f"statevector dtype {dtype!r} is not supported",
                          f"choose one of: {', '.join(STATE_DTYPES)}")
    n = program.n_qubits
    real = STATE_DTYPES[dtype]

    def state(values):
        return _run(program, values.astype(real), segment)

    def probabilities(values):
        psi = state(values)
        return jnp.real(psi) ** 2 + jnp.imag(psi) ** 2

    def expect_z(values, readout):
        return z_from_probabilities(probabilities(values), readout, n)

    fns = jax.jit(state), jax.jit(probabilities), jax.jit(expect_z, static_argnums=1)
    if dtype == "complex128":
        fns = tuple(_in_x64(f) for f in fns)
    return CompiledProgram(program, *fns)


def _in_x64(fn):
    """``fn`` called with JAX's 64-bit types enabled (its inputs converted inside)."""
    import jax

    @functools.wraps(fn)
    def wrapped(values, *args):
        with jax.enable_x64(True):
            return fn(jax.numpy.asarray(np.asarray(values, dtype=np.float64)), *args)

    return wrapped
