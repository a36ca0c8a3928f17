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

How a gate is applied: the state ``(B, 2**n)`` is viewed as ``(B, hi, 2, lo)`` for a
one-qubit gate on qubit ``q`` (``lo = 2**q``) and as ``(B, hi, 2, mid, 2, lo)`` for a
two-qubit gate; each output block is the sum of the matrix entries times the input
blocks, skipping entries that are structurally zero, so diagonal gates (RZ, CZ, RZZ)
cost one multiply per amplitude and permutations (CX, SWAP) cost none.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import numpy as np

from nonvon.errors import ConfigError, IncompatibleError

__all__ = ["Op", "Program", "translate", "compile_program", "CompiledProgram", "SUPPORTED_GATES",
           "MAX_QUBITS", "statevector_bytes", "check_qubits"]

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


def _as_array(m: list, batch: int | None):
    """Nested entries -> (d, d) constant or (B, d, d) per-sample complex64 array."""
    import jax.numpy as jnp

    if all(_is_const(v) for row in m for v in row):
        return np.array(m, dtype=np.complex64)
    rows = [jnp.stack([jnp.broadcast_to(jnp.asarray(v, dtype=jnp.complex64), (batch,)) for v in row], -1)
            for row in m]
    return jnp.stack(rows, -2)


def _apply_matrix(psi, m: list, qubits: tuple[int, ...], n: int):
    import jax.numpy as jnp

    batch = psi.shape[0]
    d = len(m)
    axes = [1 + (n - 1 - q) for q in reversed(qubits)]  # qiskit: last qubit is the high bit
    if all(_is_const(m[i][j]) and m[i][j] == 0 for i in range(d) for j in range(d) if i != j):
        k = len(qubits)
        diag = _as_array([[m[i][i] for i in range(d)]], batch)  # (1, d) or (B, 1, d)
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
    u = _as_array(m, batch)
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


def _apply_op(psi, op: Op, values, n: int):
    if op.angles:
        angles = [_eval_poly(p, values) for p in op.angles]
        if all(isinstance(a, float) for a in angles):
            m = _const_matrix(op.name, tuple(angles))
        else:
            m = _param_matrix(op.name, angles)
    else:
        m = _entries(_FIXED_1Q[op.name] if op.name in _FIXED_1Q else _FIXED_2Q[op.name])
    return _apply_matrix(psi, m, op.qubits, n)


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
    state: object         # values -> (B, 2**n) complex64
    probabilities: object  # values -> (B, 2**n) float32
    expect_z: object       # (values, readout qubits as a static tuple) -> (B, k)

    def __call__(self, values):
        return self.state(values)


def _run(program: Program, values, segment: int | None):
    import jax
    import jax.numpy as jnp

    n = program.n_qubits
    b = values.shape[0]
    psi = jnp.zeros((b,) + (2,) * n, dtype=jnp.complex64).at[(slice(None),) + (0,) * n].set(1.0)
    ops = program.ops
    if not segment:
        for op in ops:
            psi = _apply_op(psi, op, values, n)
        return psi.reshape(b, 2 ** n)
    for start in range(0, len(ops), segment):
        chunk = ops[start:start + segment]

        def seg(p, v, chunk=chunk):
            for op in chunk:
                p = _apply_op(p, op, v, n)
            return p

        psi = jax.checkpoint(seg)(psi, values)
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
def compile_program(program: Program, segment: int | None = None) -> CompiledProgram:
    """Trace ``program`` into jit-compiled batched functions (cached per program).

    Args:
        program: from :func:`translate`.
        segment: rematerialize every ``segment`` gates in the backward pass
            (``jax.checkpoint``), trading about one extra forward pass for memory; ``None``
            keeps every intermediate state.
    """
    import jax
    import jax.numpy as jnp

    n = program.n_qubits

    def state(values):
        return _run(program, values.astype(jnp.float32), segment)

    def probabilities(values):
        psi = state(values)
        return jnp.real(psi) ** 2 + jnp.imag(psi) ** 2

    def expect_z(values, readout):
        return z_from_probabilities(probabilities(values), readout, n)

    return CompiledProgram(program, jax.jit(state), jax.jit(probabilities),
                           jax.jit(expect_z, static_argnums=1))
